// Patterns: text with `{field}` placeholders (dotted paths into the JSON row, with `|transform`
// filters) and exactly one `[MASK]`, e.g.
//
//   "\"{hypothesis|strip-punct}\" ? [MASK] , \"{premise}\""
//
// Rendering yields parts — literal text, field values, the mask — that are tokenized one by one as
// the original PVPs do (`tasks/superglue/pvp.py` encodes each part separately). `{{` and `}}` are
// literal braces.

/** What the original PVPs do to field values (glm-reference §4.3). */
export const TRANSFORMS = {
  /** Drop trailing punctuation (Python's `rstrip(string.punctuation)`). */
  'strip-punct': (v: string) => v.replace(/[!"#$%&'()*+,\-./:;<=>?@[\\\]^_`{|}~]+$/u, ''),
  /** Lower-case the first character. */
  'lower-first': (v: string) => (v.length > 0 ? v[0]!.toLowerCase() + v.slice(1) : v),
  /** ReCoRD passages: "@highlight\n" → "- ". */
  highlight: (v: string) => v.replace(/@highlight\n/g, '- '),
  trim: (v: string) => v.trim(),
} as const satisfies Record<string, (v: string) => string>;

/** Transforms with an argument: `mark-word(path)`, `before(text)`, `after(text)`, `map(a=b;c=d)`. */
export const ARG_TRANSFORMS = ['mark-word', 'before', 'after', 'map'] as const;

export type Transform =
  | { name: keyof typeof TRANSFORMS }
  /** Whitespace-split words, the one at index `row[path]` wrapped in `*…*`, joined by spaces (WSC). */
  | { name: 'mark-word'; path: string }
  /** The text before / after the first occurrence of `marker` (ReCoRD's @placeholder). */
  | { name: 'before' | 'after'; marker: string }
  /** Value lookup, e.g. COPA's `{question|map(cause= because;effect=, so)}`. */
  | { name: 'map'; table: Record<string, string> };

export type PatternPart = { type: 'text'; text: string } | { type: 'field'; path: string; transforms: Transform[] } | { type: 'mask' };

export const MASK_MARKER = '[MASK]';

/**
 * Parses a pattern; throws with a message naming what is wrong (the caller adds the file and field).
 * `masks`: how many [MASK] it must hold (1 for cloze patterns, 0 for the classifier head's texts).
 */
export function parsePattern(pattern: string, masks = 1): PatternPart[] {
  const parts: PatternPart[] = [];
  let text = '';
  const flush = (): void => {
    if (text !== '') parts.push({ type: 'text', text });
    text = '';
  };
  let i = 0;
  while (i < pattern.length) {
    if (pattern.startsWith('{{', i) || pattern.startsWith('}}', i)) {
      text += pattern[i];
      i += 2;
    } else if (pattern.startsWith(MASK_MARKER, i)) {
      flush();
      parts.push({ type: 'mask' });
      i += MASK_MARKER.length;
    } else if (pattern[i] === '{') {
      const end = pattern.indexOf('}', i);
      if (end < 0) throw new Error(`unclosed '{' at character ${i}`);
      flush();
      parts.push(parseField(pattern.slice(i + 1, end)));
      i = end + 1;
    } else if (pattern[i] === '}') {
      throw new Error(`unmatched '}' at character ${i} (write '}}' for a literal brace)`);
    } else {
      text += pattern[i];
      i++;
    }
  }
  flush();
  const found = parts.filter((p) => p.type === 'mask').length;
  if (masks === 1 && found !== 1) throw new Error(`a pattern needs exactly one ${MASK_MARKER} (the blank the answer fills), found ${found}`);
  if (masks === 0 && found !== 0) throw new Error(`takes no ${MASK_MARKER} (the classifier reads the [CLS] hidden state)`);
  return parts;
}

function parseField(spec: string): PatternPart {
  const [path, ...filters] = spec.split('|').map((s) => s.trim());
  if (!path || !/^[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*$/.test(path)) throw new Error(`'{${spec}}': '${path ?? ''}' is not a field path (letters, digits, _ and dots)`);
  const transforms: Transform[] = filters.map((f) => {
    const m = /^([a-z-]+)(?:\((.*)\))?$/.exec(f);
    if (!m) throw new Error(`'{${spec}}': cannot read the transform '${f}'`);
    const [, name, arg] = m as unknown as [string, string, string | undefined];
    if (name in TRANSFORMS) {
      if (arg !== undefined) throw new Error(`'{${spec}}': the transform '${name}' takes no argument`);
      return { name: name as keyof typeof TRANSFORMS };
    }
    if (!(ARG_TRANSFORMS as readonly string[]).includes(name)) {
      throw new Error(`'{${spec}}': unknown transform '${name}'; known: ${[...Object.keys(TRANSFORMS), ...ARG_TRANSFORMS.map((t) => `${t}(…)`)].join(', ')}`);
    }
    if (arg === undefined || arg === '') throw new Error(`'{${spec}}': the transform '${name}' needs an argument, e.g. ${name}(…)`);
    if (name === 'mark-word') return { name, path: arg };
    if (name === 'before' || name === 'after') return { name, marker: arg };
    const table: Record<string, string> = {};
    for (const pair of arg.split(';')) {
      const k = pair.indexOf('=');
      if (k < 0) throw new Error(`'{${spec}}': map entries are key=value separated by ';', got '${pair}'`);
      table[pair.slice(0, k).trim()] = pair.slice(k + 1);
    }
    return { name: 'map', table };
  });
  return { type: 'field', path, transforms };
}

/** The value at a dotted path of a JSON row, or undefined. */
export function getPath(row: unknown, path: string): unknown {
  let v: unknown = row;
  for (const key of path.split('.')) {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) return undefined;
    v = (v as Record<string, unknown>)[key];
  }
  return v;
}

/** Field paths a pattern reads (transform arguments included). */
export function patternFields(parts: readonly PatternPart[]): string[] {
  const out = new Set<string>();
  for (const p of parts) {
    if (p.type !== 'field') continue;
    out.add(p.path);
    for (const t of p.transforms) if (t.name === 'mark-word') out.add(t.path);
  }
  return [...out];
}

/** A value as pattern text: strings as they are, numbers and booleans printed; anything else is a problem. */
export function fieldText(row: unknown, path: string): string | null {
  const v = getPath(row, path);
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return null;
}

export function applyTransforms(value: string, transforms: readonly Transform[], row: unknown): string {
  let v = value;
  for (const t of transforms) {
    switch (t.name) {
      case 'mark-word': {
        const index = Number(getPath(row, t.path));
        const words = v.split(/\s+/).filter((w) => w !== '');
        if (!Number.isInteger(index) || index < 0 || index >= words.length) throw new Error(`mark-word(${t.path}): word index ${String(getPath(row, t.path))} is outside the ${words.length} words`);
        words[index] = `*${words[index]}*`;
        v = words.join(' ');
        break;
      }
      case 'before':
      case 'after': {
        const k = v.indexOf(t.marker);
        if (k < 0) throw new Error(`${t.name}(${t.marker}): the text has no '${t.marker}'`);
        v = t.name === 'before' ? v.slice(0, k) : v.slice(k + t.marker.length);
        break;
      }
      case 'map': {
        const mapped = t.table[v];
        if (mapped === undefined) throw new Error(`map: no entry for '${v}' (entries: ${Object.keys(t.table).join(', ')})`);
        v = mapped;
        break;
      }
      default:
        v = TRANSFORMS[t.name](v);
    }
  }
  return v;
}

/** A rendered part: text to tokenize (or the mask), and whether truncation may cut it. */
export type RenderedPart = { type: 'text'; text: string; shortenable: boolean } | { type: 'mask' };

/** Fills a parsed pattern from a row. Throws (with the field) when a value is missing or a transform fails. */
export function renderPattern(parts: readonly PatternPart[], row: unknown, shortenable: ReadonlySet<string>): RenderedPart[] {
  return parts.map((p): RenderedPart => {
    if (p.type === 'mask') return p;
    if (p.type === 'text') return { type: 'text', text: p.text, shortenable: false };
    const value = fieldText(row, p.path);
    if (value === null) throw new Error(`field '${p.path}' is missing or not text`);
    try {
      return { type: 'text', text: applyTransforms(value, p.transforms, row), shortenable: shortenable.has(p.path) };
    } catch (e) {
      throw new Error(`field '${p.path}': ${(e as Error).message}`);
    }
  });
}
