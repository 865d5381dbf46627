// `blankglm forward`, in-process: reproduces the PyTorch fixture's loss and logits.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { readSafetensors } from '@blankglm/model-spec';
import { runCommand } from './fill-helpers.js';

const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'packages', 'model-spec', 'fixtures');
const THUDM = join(FIXTURES, 'tiny-thudm');
const BATCH = join(FIXTURES, 'batch.json');
const expected = readSafetensors(join(FIXTURES, 'expected.safetensors')).tensors;
const work = mkdtempSync(join(tmpdir(), 'blankglm-forward-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const run = (argv: string[]): ReturnType<typeof runCommand> => runCommand(['forward', ...argv], work);

interface ForwardJson {
  backend: string;
  loss: number;
  num_targets: number;
  lengths: number[];
  targets: { row: number; position: number; token: number; log_prob: number }[];
  logits?: { row: number; position: number; values: number[] }[];
  grad_norms?: Record<string, number>;
}

/** Writes a batch.json variant and returns its path. */
function batchFile(name: string, edit: (b: Record<string, unknown[]>) => void): string {
  const b = JSON.parse(readFileSync(BATCH, 'utf8'));
  edit(b);
  const p = join(work, name);
  writeFileSync(p, JSON.stringify(b));
  return p;
}

describe('blankglm forward', () => {
  it('reproduces the fixture loss, logits and gradient norms (THUDM folder, ref backend)', async () => {
    const r = await run([THUDM, '--inputs', BATCH, '--json', '--logits', '1,9', '--logits', '3,15', '--grads', '--backend', 'ref']);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out) as ForwardJson;
    expect(j.backend).toBe('ref');
    expect(j.num_targets).toBe(31);
    const loss = expected.get('loss')!.data[0] as number;
    expect(Math.abs(j.loss - loss) / loss).toBeLessThan(1e-6);
    // the mean of the per-target log-probs is minus the loss
    expect(-j.targets.reduce((s, t) => s + t.log_prob, 0) / j.targets.length).toBeCloseTo(j.loss, 5);
    const all = expected.get('logits')!.data as Float32Array; // [4, 16, 128]
    for (const l of j.logits!) {
      const want = all.subarray((l.row * 16 + l.position) * 128, (l.row * 16 + l.position + 1) * 128);
      const scale = Math.max(...Array.from(want, Math.abs));
      for (let v = 0; v < 128; v++) expect(Math.abs(l.values[v]! - want[v]!)).toBeLessThan(1e-5 * scale);
    }
    const gradWord = expected.get('grad.word_embeddings.weight')!.data as Float32Array;
    const norm = Math.sqrt(gradWord.reduce((s, x) => s + x * x, 0));
    expect(Math.abs(j.grad_norms!['word_embeddings.weight']! - norm) / norm).toBeLessThan(1e-5);
    expect(Object.keys(j.grad_norms!)).toHaveLength(29);
  });

  it('reproduces the fixture on the default (fastest) backend too, within the conformance bounds', async () => {
    const r = await run([THUDM, '--inputs', BATCH, '--json', '--logits', '3,15', '--grads']);
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out) as ForwardJson;
    const loss = expected.get('loss')!.data[0] as number;
    expect(Math.abs(j.loss - loss) / loss).toBeLessThan(1e-5);
    const want = (expected.get('logits')!.data as Float32Array).subarray((3 * 16 + 15) * 128, (3 * 16 + 16) * 128);
    const scale = Math.max(...Array.from(want, Math.abs));
    for (let v = 0; v < 128; v++) expect(Math.abs(j.logits![0]!.values[v]! - want[v]!)).toBeLessThan(1e-4 * scale);
    const gradWord = expected.get('grad.word_embeddings.weight')!.data as Float32Array;
    const norm = Math.sqrt(gradWord.reduce((s, x) => s + x * x, 0));
    expect(Math.abs(j.grad_norms!['word_embeddings.weight']! - norm) / norm).toBeLessThan(1e-4);
  });

  it('prints a readable summary without --json, and gives the same answer through an MP=2 original folder', async () => {
    const r = await run([THUDM, '--inputs', BATCH]);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^loss: 8\.4933\d\d \(mean over 31 target positions\)$/m);
    expect(r.out).toMatch(/^row {2}pos {2}target {2}log p\(target\)$/m);
    const mp2 = await run([join(FIXTURES, 'tiny-original-mp2'), '--config', join(THUDM, 'config.json'), '--inputs', BATCH, '--json']);
    const a = JSON.parse((await run([THUDM, '--inputs', BATCH, '--json'])).out) as ForwardJson;
    expect((JSON.parse(mp2.out) as ForwardJson).targets).toEqual(a.targets);
  });

  it('pads rows of different lengths as the original (real outputs unchanged)', async () => {
    const short = batchFile('short.json', (b) => {
      const cut = (row: unknown[], n: number): unknown[] => row.slice(0, n);
      // row 1 (sep 8) keeps 12 tokens
      b.input_ids![1] = cut(b.input_ids![1] as unknown[], 12);
      b.position_ids![1] = (b.position_ids![1] as unknown[][]).map((r) => cut(r, 12));
      b.targets![1] = cut(b.targets![1] as unknown[], 12);
      b.loss_mask![1] = cut(b.loss_mask![1] as unknown[], 12);
    });
    const full = JSON.parse((await run([THUDM, '--inputs', BATCH, '--json'])).out) as ForwardJson;
    const r = await run([THUDM, '--inputs', short, '--json']);
    expect(r.err).toBe('');
    const j = JSON.parse(r.out) as ForwardJson;
    expect(j.lengths).toEqual([16, 12, 16, 16]);
    const kept = full.targets.filter((t) => t.row !== 1 || t.position < 12);
    expect(j.targets.map((t) => [t.row, t.position])).toEqual(kept.map((t) => [t.row, t.position]));
    j.targets.forEach((t, k) => expect(t.log_prob).toBeCloseTo(kept[k]!.log_prob, 5));
  });

  it('names the field and row of bad input', async () => {
    const cases: [string, (b: Record<string, unknown[]>) => void, RegExp][] = [
      ['pos.json', (b) => ((b.position_ids![2] as number[][])[0]![4] = 33), /position_ids\[2\]\[0\]\[4\] = 33, expected a position in 0\.\.32 \(the table has max_sequence_length \+ 1 = 33 rows\)/],
      ['sep.json', (b) => (b.sep![3] = 17), /sep\[3\] = 17, expected 0\.\.16 \(the row's length\)/],
      ['tok.json', (b) => ((b.input_ids![0] as number[])[2] = 128), /input_ids\[0\]\[2\] = 128, expected a token id in 0\.\.127 \(vocab_size 128\)/],
      ['mask.json', (b) => ((b.loss_mask![1] as number[])[0] = 2), /loss_mask\[1\]\[0\] = 2, expected 0 or 1/],
      ['len.json', (b) => (b.targets![2] = (b.targets![2] as number[]).slice(1)), /targets\[2\] has 15 entries, expected 16 \(the row's length\)/],
      ['nosep.json', (b) => delete (b as Record<string, unknown>).sep, /field 'sep' must be a list of 4 integers/],
    ];
    for (const [name, edit, message] of cases) {
      const r = await run([THUDM, '--inputs', batchFile(name, edit)]);
      expect(r.code, name).toBe(2);
      expect(r.err, name).toMatch(message);
    }
    let r = await run([THUDM, '--inputs', BATCH, '--logits', '0,16']);
    expect(r.err).toMatch(/--logits 0,16: position 16 is past row 0's end \(length 16\)/);
    r = await run([THUDM, '--inputs', BATCH, '--backend', 'gpu']);
    expect(r.err).toMatch(/the gpu backend is not available here/);
    r = await run([THUDM, '--inputs', batchFile('notargets.json', (b) => (delete (b as Record<string, unknown>).targets, delete (b as Record<string, unknown>).loss_mask)), '--grads']);
    expect(r.err).toMatch(/--grads needs 'targets'/);
    r = await run([THUDM, '--inputs', join(work, 'missing.json')]);
    expect(r.err).toMatch(/--inputs: .*missing\.json does not exist/);
  });
});
