// `blankglm evaluate` on the zero-shot LM tasks (glm-reference §4.8): LAMBADA (OpenAI JSONL, both
// protocols) and WikiText-2 perplexity on a prefix of the real file, with a tiny random checkpoint
// (reference backend). A random model predicts ≈ uniformly over the 30,592-row vocabulary, which
// pins the numbers: perplexity ≈ V, last-word NLL ≈ ln V per token.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { hasSharedData, sharedData } from '../../../test-support/shared-data.js';
import { runCommand, saveTinyCheckpoint, tinyConfig } from './fill-helpers.js';

const LAMBADA = 'lambada/lambada_openai.first500.jsonl';
const WIKITEXT = 'wikitext-2/valid.tokens.txt';

interface EvalJson {
  task: string;
  kind: string;
  data: string;
  metrics: Record<string, number>;
}

describe.skipIf(!hasSharedData(LAMBADA) || !hasSharedData(WIKITEXT))('blankglm evaluate: LAMBADA and WikiText (shared data)', () => {
  const work = mkdtempSync(join(tmpdir(), 'blankglm-evaluate-lm-'));
  afterAll(() => rmSync(work, { recursive: true, force: true }));
  const ckpt = saveTinyCheckpoint(work);
  const lnV = Math.log(tinyConfig.vocab_size);

  it('LAMBADA, bidirectional and left-to-right, over the 500-row file', async () => {
    const lines = readFileSync(sharedData(LAMBADA), 'utf8').trim().split('\n').length;
    for (const task of ['lambada', 'lambada-uni']) {
      const r = await runCommand(['evaluate', ckpt, '--task', task, '--data', sharedData(LAMBADA), '--backend', 'ref', '--batch-size', '32', '--json'], work);
      expect(r.code, r.err).toBe(0);
      const out = JSON.parse(r.out) as EvalJson;
      expect(out.task).toBe(task);
      expect(out.kind).toBe('lambada');
      expect(out.metrics.examples).toBe(lines);
      // a random model essentially never gets every token of the last word right
      expect(out.metrics.accuracy).toBeGreaterThanOrEqual(0);
      expect(out.metrics.accuracy).toBeLessThan(0.05);
      // NLL of the last word (≥ 1 token) under a near-uniform model: about ln V per token
      expect(out.metrics['last-word-nll']).toBeGreaterThan(0.9 * lnV);
      expect(out.metrics['last-word-nll']).toBeLessThan(4 * lnV);
    }
  });

  it('WikiText-2 perplexity on a prefix of the validation file, token- and word-normalised', async () => {
    const raw = readFileSync(sharedData(WIKITEXT), 'utf8');
    const prefix = raw.split('\n').slice(0, 16).join('\n') + '\n';
    const file = join(work, 'wiki-prefix.tokens.txt');
    writeFileSync(file, prefix);
    const r = await runCommand(['evaluate', ckpt, '--task', 'wikitext', '--data', file, '--backend', 'ref', '--json'], work);
    expect(r.code, r.err).toBe(0);
    const m = (JSON.parse(r.out) as EvalJson).metrics;
    // windows follow the model's 64 positions (overlap scaled from 256/1024)
    expect(m['seq-length']).toBe(tinyConfig.max_sequence_length);
    expect(m.overlap).toBe(16);
    expect(m.tokens).toBeGreaterThan(500);
    expect(m.windows).toBeGreaterThan(10);
    expect(m.loss).toBeCloseTo(Math.log(m.perplexity!), 6);
    expect(m.perplexity).toBeGreaterThan(0.5 * tinyConfig.vocab_size);
    expect(m.perplexity).toBeLessThan(2 * tinyConfig.vocab_size);
    // fewer words than word pieces: the word-normalised perplexity is larger
    expect(m['adjusted-perplexity']).toBeGreaterThan(m.perplexity!);

  });

  it('prints a text report; a LAMBADA file that is not JSONL is a clear error naming the file and line', async () => {
    const r = await runCommand(['evaluate', ckpt, '--task', 'lambada', '--data', sharedData(WIKITEXT), '--backend', 'ref'], work);
    expect(r.code).not.toBe(0);
    expect(r.err).toMatch(/valid\.tokens\.txt:\d+/);
    // the text report, on the first 40 rows
    const few = join(work, 'lambada-40.jsonl');
    writeFileSync(few, readFileSync(sharedData(LAMBADA), 'utf8').split('\n').slice(0, 40).join('\n') + '\n');
    const text = await runCommand(['evaluate', ckpt, '--task', 'lambada', '--data', few, '--backend', 'ref'], work);
    expect(text.code, text.err).toBe(0);
    expect(text.out).toMatch(/^task lambada on .*lambada-40\.jsonl \(40 examples, ref backend/);
    expect(text.out).toMatch(/\naccuracy: 0(\.\d{4})?\nlast-word-nll: \d+\.\d{4}\n/);
  });
});
