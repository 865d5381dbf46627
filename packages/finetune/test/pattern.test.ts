// Pattern syntax and the transforms the SuperGLUE patterns need.
import { describe, expect, it } from 'vitest';
import { applyTransforms, parsePattern, renderPattern } from '../src/index.js';

describe('patterns', () => {
  it('parses fields, transforms, the mask and literal braces', () => {
    const parts = parsePattern('"{hypothesis|strip-punct}" ? [MASK] , {{x}} "{premise}"');
    expect(parts.map((p) => p.type)).toEqual(['text', 'field', 'text', 'mask', 'text', 'field', 'text']);
    expect(parts[4]).toEqual({ type: 'text', text: ' , {x} "' });
  });

  it('needs exactly one [MASK]', () => {
    expect(() => parsePattern('{premise} Question: {question}?')).toThrow(/exactly one \[MASK\].*found 0/);
    expect(() => parsePattern('[MASK] and [MASK]')).toThrow(/found 2/);
    expect(() => parsePattern('{premise|shout} [MASK]')).toThrow(/unknown transform 'shout'/);
    expect(() => parsePattern('{premise [MASK]')).toThrow(/unclosed/);
  });

  it('renders the transforms of the original PVPs', () => {
    const row = { h: 'It rained.', c: 'The toilet filled.', q: 'effect', p: 'News.\n@highlight\nA fact', t: 'Bob said he left', i: 2, query: 'Then @placeholder won.' };
    expect(applyTransforms('It rained...!', [{ name: 'strip-punct' }], row)).toBe('It rained');
    const rendered = renderPattern(parsePattern('"{c|strip-punct|lower-first}"{q|map(cause= because;effect=, so)} [MASK] {p|highlight} {t|mark-word(i)} {query|before(@placeholder)}|{query|after(@placeholder)}'), row, new Set(['p']));
    const text = rendered.map((r) => (r.type === 'mask' ? '[M]' : r.text)).join('');
    expect(text).toBe('"the toilet filled", so [M] News.\n- A fact Bob said *he* left Then | won.');
    expect(rendered.filter((r) => r.type === 'text' && r.shortenable).map((r) => (r as { text: string }).text)).toEqual(['News.\n- A fact']);
    expect(() => renderPattern(parsePattern('{missing} [MASK]'), row, new Set())).toThrow(/field 'missing' is missing/);
  });
});
