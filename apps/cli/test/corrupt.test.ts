// `blankglm corrupt`, run in-process with the embedded BERT tokenizer.
import { PassThrough, Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { runCli } from '../src/index.js';

async function run(argv: string[], stdin = ''): Promise<{ code: number; out: string; err: string }> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (c) => (out += c));
  stderr.on('data', (c) => (err += c));
  const code = await runCli(['corrupt', ...argv], { stdin: Readable.from([stdin]), stdout, stderr, isTTY: false, cwd: process.cwd() });
  return { code, out, err };
}

const TEXT = 'The quick brown fox jumps over the lazy dog. It was not amused! Then it ran away into the woods; nobody saw it again.';

describe('blankglm corrupt', () => {
  it('prints Part A, Part B, the rows and the attention mask of a token-mode sample', async () => {
    const { code, out, err } = await run(['--seed', '3', TEXT]);
    expect(err).toBe('');
    expect(code).toBe(0);
    expect(out).toMatch(/sample 1\/1: objective token, \d+ tokens, Part A \d+ \(sep = \d+\)/);
    expect(out).toMatch(/^Part A: \[CLS\] .*\[MASK\].*\[PAD\]$/m); // BERT: eos is [PAD]
    expect(out).toMatch(/^Part B: <\|startofpiece\|> /m);
    expect(out).toContain('idx  input');
    expect(out).toContain('(sep)');
    expect(out).toContain("attention mask (row = query, column = key, 'x' = attends):");
  });

  it('--json: one object per sample whose targets rebuild the tokenized text', async () => {
    const { code, out } = await run(['--json', '--count', '4', '--mode', 'mixed', '--preset', 'glm-2b', '--seed', '9', TEXT]);
    expect(code).toBe(0);
    const lines = out.trim().split('\n');
    expect(lines).toHaveLength(4);
    const plain = JSON.parse((await run(['--json', '--mode', 'token', TEXT])).out);
    for (const line of lines) {
      const s = JSON.parse(line);
      expect(s.position_ids).toHaveLength(2);
      expect(s.position_ids[0]).toHaveLength(s.input_ids.length);
      expect(s.target_ids).toHaveLength(s.input_ids.length);
      expect(s.loss_mask).toHaveLength(s.input_ids.length);
      expect(s.input_ids[0]).toBe(101);
      expect(s.sep).toBeGreaterThan(0);
      expect(s.spans.length).toBeGreaterThan(0);
      for (let i = s.sep; i < s.input_ids.length; i++) expect(s.loss_mask[i]).toBe(1);
      expect(['token', 'sentence', 'document-prefix', 'document-infill']).toContain(s.objective);
    }
    expect(plain.objective).toBe('token');
  });

  it('reads stdin, and the same seed gives the same samples', async () => {
    const a = await run(['--json', '--mode', 'sentence', '--seed', '5'], TEXT);
    const b = await run(['--json', '--mode', 'sentence', '--seed', '5', TEXT]);
    expect(a.code).toBe(0);
    expect(a.out).toBe(b.out);
    const s = JSON.parse(a.out);
    expect(s.objective).toBe('sentence');
    expect(s.input_tokens).toContain('[sMASK]');
  });

  it('document mode uses [gMASK]', async () => {
    const { out } = await run(['--json', '--mode', 'document', '--seed', '1', TEXT]);
    const s = JSON.parse(out);
    expect(s.objective).toMatch(/^document-/);
    expect(s.input_tokens[s.spans[0].mask_index]).toBe('[gMASK]');
  });

  it('errors clearly: empty text, unknown mode, unknown preset, bad count', async () => {
    const empty = await run([], '   \n');
    expect(empty.code).toBe(2);
    expect(empty.err).toMatch(/empty text/);
    const mode = await run(['--mode', 'words', TEXT]);
    expect(mode.code).toBe(2);
    expect(mode.err).toMatch(/unknown --mode 'words'; expected one of: token, sentence, document, mixed/);
    const preset = await run(['--mode', 'mixed', '--preset', 'glm-3', TEXT]);
    expect(preset.err).toMatch(/unknown --preset 'glm-3'/);
    const count = await run(['--count', '0', TEXT]);
    expect(count.err).toMatch(/--count must be an integer/);
  });

  it('handles a one-word text (every objective still yields a sample)', async () => {
    for (const mode of ['token', 'sentence', 'document', 'mixed']) {
      const { code, out, err } = await run(['--json', '--mode', mode, 'hello']);
      expect(err).toBe('');
      expect(code).toBe(0);
      expect(JSON.parse(out).spans).toHaveLength(1);
    }
  });
});
