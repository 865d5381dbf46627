// `blankglm eval`, in-process: a tiny random checkpoint on a slice of an embedded book.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { embeddedCorpusFiles } from '@blankglm/data';
import { runCommand, saveTinyCheckpoint } from './fill-helpers.js';

const work = mkdtempSync(join(tmpdir(), 'blankglm-eval-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));
const ckpt = saveTinyCheckpoint(work);
// ~40 KB of a real book: a few hundred paragraphs
const book = embeddedCorpusFiles().find((f) => f.path.endsWith('austen-emma.txt')) ?? embeddedCorpusFiles()[0]!;
const corpus = join(work, 'corpus.txt');
writeFileSync(corpus, readFileSync(book.path, 'utf8').slice(20000, 60000));
const evalCmd = (args: string[]) => runCommand(['eval', ...args], work);

interface EvalJson { loss: number; perplexity: number; targets: number; batches: number; seq_length: number; split: string; objective: string; corpus: string }

describe('blankglm eval', () => {
  it('reports the mean target loss and perplexity, reproducibly for a seed', async () => {
    const args = [ckpt, 'corpus.txt', '--batches', '2', '--batch-size', '2', '--seq-length', '48', '--workers', '0', '--json'];
    const r = await evalCmd(args);
    expect(r.code, r.err).toBe(0);
    const j = JSON.parse(r.out) as EvalJson;
    expect(j.targets).toBeGreaterThan(10);
    expect(j.perplexity).toBeCloseTo(Math.exp(j.loss), 6);
    // a random model is close to uniform over the 30592 rows: loss ≈ ln 30592 = 10.33
    expect(Math.abs(j.loss - Math.log(30592))).toBeLessThan(0.3);
    expect(j.split).toBe('all documents');
    expect(j.seq_length).toBe(48);
    const again = JSON.parse((await evalCmd(args)).out) as EvalJson;
    expect(again.loss).toBe(j.loss);
    const other = JSON.parse((await evalCmd([...args, '--seed', '2'])).out) as EvalJson;
    expect(other.loss).not.toBe(j.loss);
    const text = await evalCmd([ckpt, 'corpus.txt', '--batches', '1', '--batch-size', '1', '--seq-length', '32', '--workers', '0', '--objective', 'mixed', '--valid-fraction', '0.2']);
    expect(text.code, text.err).toBe(0);
    expect(text.out).toMatch(/corpus: corpus\.txt \(held-out 0\.2\); mixed blanks, 1 batches × 1 windows of 32 tokens, seed 1/);
    expect(text.out).toMatch(/loss: \d+\.\d{4} \(mean over \d+ target tokens\)\nperplexity: \d+\.\d{2}/);
  });

  it('bad input: unknown objective, a window past the context, a missing corpus', async () => {
    expect((await evalCmd([ckpt, 'corpus.txt', '--objective', 'lm'])).err).toContain("unknown --objective 'lm'; expected token, sentence, document, mixed");
    expect((await evalCmd([ckpt, 'corpus.txt', '--seq-length', '100'])).err).toContain("--seq-length 100 exceeds this model's max_sequence_length (64)");
    const missing = await evalCmd([ckpt, 'nothing.txt', '--workers', '0']);
    expect(missing.code).toBe(2);
    expect(missing.err).toContain('nothing.txt');
  });
});
