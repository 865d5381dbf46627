// `blankglm fill`, in-process, on a tiny random checkpoint with the real BERT vocabulary.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createReferenceBackend } from '@blankglm/backend-ref';
import { GlmModel, fillBlanks, loadCheckpoint } from '@blankglm/model-spec';
import { loadBertTokenizer } from '@blankglm/tokenizer';
import { buildFillContext } from '../src/commands/fill.js';
import { runCommand, saveTinyCheckpoint } from './fill-helpers.js';

const work = mkdtempSync(join(tmpdir(), 'blankglm-fill-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));
const ckpt = saveTinyCheckpoint(work);
const fill = (args: string[]) => runCommand(['fill', ...args], work);

interface FillJson {
  prompt: string;
  text: string;
  marked: string;
  strategy: string;
  context_tokens: number;
  blanks: Array<{ mask: string; position: number; tokens: number[]; token_strings: string[]; text: string; finished: boolean; log_prob: number; score: number; token_log_probs: number[] }>;
}

const PROMPT = 'the old man [MASK] to the sea . [sMASK] and then [gMASK]';

describe('blankglm fill', () => {
  it('fills [MASK], [sMASK] and [gMASK] left to right, as the library does on the same context (--json)', async () => {
    const r = await fill([ckpt, PROMPT, '--json', '--max-tokens', '3', '--backend', 'ref']);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out) as FillJson;
    expect(j.blanks.map((b) => b.mask)).toEqual(['[MASK]', '[sMASK]', '[gMASK]']);
    // the same computation through the library: [CLS] text, no end token after a final mask
    const tokenizer = loadBertTokenizer();
    const { ids, maskIds, endsWithMask } = buildFillContext(tokenizer, PROMPT);
    expect(endsWithMask).toBe(true);
    expect(ids[0]).toBe(101);
    expect(ids[ids.length - 1]).toBe(tokenizer.special.gMask);
    expect(j.context_tokens).toBe(ids.length);
    const ck = loadCheckpoint(ckpt);
    const model = GlmModel.create(createReferenceBackend(), ck.config, { stateDict: ck.stateDict });
    const lib = fillBlanks(model, ids, { maskIds, sopId: 30522, eopId: 30523, maxTokens: 3 });
    model.dispose();
    expect(j.blanks.map((b) => b.tokens)).toEqual(lib.blanks);
    j.blanks.forEach((b, i) => {
      expect(b.position).toBe(lib.fills[i]!.maskPosition);
      expect(b.token_strings).toEqual(b.tokens.map((t) => tokenizer.idToToken(t)));
      expect(b.text).toBe(tokenizer.decode(b.tokens));
      expect(b.log_prob).toBeCloseTo(lib.fills[i]!.logProb, 6);
      expect(b.score).toBe(b.log_prob); // greedy ranks by log p
      expect(b.token_log_probs.length).toBe(b.tokens.length + (b.finished ? 1 : 0));
    });
    expect(j.text).toBe(tokenizer.decode(lib.filled.slice(1)));
    for (const b of j.blanks) expect(j.marked).toContain(`[[${b.text}]]`);
    expect(j.marked.startsWith('the old man [[')).toBe(true);
  });

  it('appends the end token unless the prompt ends with a mask', () => {
    const tokenizer = loadBertTokenizer();
    const mid = buildFillContext(tokenizer, 'a [MASK] b');
    expect(mid.ids).toEqual([101, ...tokenizer.encodeIds('a'), 103, ...tokenizer.encodeIds('b'), 0]);
    expect(buildFillContext(tokenizer, 'a [sMASK]').ids).toEqual([101, ...tokenizer.encodeIds('a'), 30525]);
  });

  it('beam search and seeded sampling; text output marks each fill', async () => {
    const beam = JSON.parse((await fill([ckpt, PROMPT, '--json', '--max-tokens', '3', '--num-beams', '3', '--no-repeat-ngram', '1'])).out) as FillJson;
    expect(beam.strategy).toBe('beam search (3 beams, length penalty 1)');
    for (const b of beam.blanks) {
      expect(new Set(b.tokens).size).toBe(b.tokens.length);
      expect(b.score).toBeCloseTo(b.log_prob / (1 + b.tokens.length), 6);
    }
    const sample = async (seed: string) => JSON.parse((await fill([ckpt, PROMPT, '--json', '--max-tokens', '3', '--strategy', 'sample', '--top-p', '0.9', '--seed', seed])).out) as FillJson;
    const [a, b, c] = [await sample('3'), await sample('3'), await sample('4')];
    expect(a.blanks).toEqual(b.blanks);
    expect(a.blanks.map((x) => x.tokens)).not.toEqual(c.blanks.map((x) => x.tokens));
    const text = await fill([ckpt, 'paris is the capital of [MASK] .', '--max-tokens', '2', '--backend', 'ref']);
    expect(text.code).toBe(0);
    const lines = text.out.split('\n');
    expect(lines[0]).toMatch(/^paris is the capital of \[\[.*\]\] \.$/);
    expect(text.out).toMatch(/blank 1 \[MASK\] at token 6: ".*" \(\d tokens, (ended|cut off at 2 tokens), log p -?\d+\.\d{3}, score -?\d+\.\d{3}\)/);
    expect(text.out).toMatch(/greedy on the ref backend, 9 context tokens/);
  });

  it('bad input: no blank, a prompt past the context, an unknown checkpoint, misplaced options', async () => {
    const none = await fill([ckpt, 'no blank here']);
    expect(none.code).toBe(2);
    expect(none.err).toContain('the prompt has no blank to fill: put [MASK]');
    expect(none.err).toContain('"no blank here [gMASK]"');
    const long = await fill([ckpt, 'word '.repeat(80) + '[MASK]']);
    expect(long.code).toBe(2);
    expect(long.err).toContain('the prompt is 82 tokens long ([CLS] and the end token included) but this model reads at most 64 (max_sequence_length 64): shorten the prompt by 18 tokens');
    const missing = await fill([join(work, 'nope'), 'a [MASK]']);
    expect(missing.code).toBe(2);
    expect(missing.err).toContain(`${join(work, 'nope')}: no such checkpoint folder`);
    expect((await fill([ckpt, 'a [MASK]', '--top-k', '5'])).err).toContain('--top-k only applies to --strategy sample');
    expect((await fill([ckpt, 'a [MASK]', '--strategy', 'nucleus'])).err).toContain("unknown --strategy 'nucleus'; expected greedy, sample, beam");
    expect((await fill([ckpt, 'a [MASK]', '--max-tokens', '64'])).err).toContain('--max-tokens 64 is too large for this model');
    expect((await fill([ckpt, 'a [MASK]', '--backend', 'tpu'])).err).toContain("unknown --backend 'tpu'");
  });

  it('documents itself with --help', async () => {
    for (const cmd of ['fill', 'eval', 'doctor']) {
      const r = await runCommand([cmd, '--help'], work);
      expect(r.code).toBe(0);
      expect(r.out).toMatch(new RegExp(`^Usage: blankglm ${cmd}`));
      expect(r.out).toContain('Examples:');
    }
  });
});
