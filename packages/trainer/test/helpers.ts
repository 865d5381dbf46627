// Shared test fixtures: a small prepared corpus (a slice of an embedded Gutenberg book, BERT ids)
// and a micro GLM configuration that trains in milliseconds per step on the reference backend.
import { mkdtempSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { embeddedCorpusFiles, listCorpusFiles, prepareCorpus } from '@blankglm/data';
import type { PretrainConfig } from '../src/index.js';

export function tempDir(prefix = 'blankglm-trainer-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

const prepared = new Map<number, string>();

/** Shards of the first `bytes` of Moby Dick (paragraph documents), prepared once per process. */
export async function smallCorpus(bytes = 60_000): Promise<string> {
  const cached = prepared.get(bytes);
  if (cached && existsSync(join(cached, 'manifest.json'))) return cached;
  const book = embeddedCorpusFiles().find((f) => f.path.endsWith('melville-moby_dick.txt'))!;
  const dir = tempDir('blankglm-trainer-corpus-');
  const text = readFileSync(book.path, 'utf8').replace(/\r\n/g, '\n').slice(20_000, 20_000 + bytes);
  writeFileSync(join(dir, 'moby.txt'), text);
  await prepareCorpus({ files: await listCorpusFiles([join(dir, 'moby.txt')]), outDir: join(dir, 'data'), tokenizer: { kind: 'bert' }, workers: 0 });
  prepared.set(bytes, join(dir, 'data'));
  return join(dir, 'data');
}

/** A one-layer, 32-wide GLM over the BERT vocabulary; no dropout unless asked. */
export function microConfig(data: string, outDir: string, over: Partial<PretrainConfig> = {}): PretrainConfig {
  return {
    preset: 'glm-tiny',
    model: { num_layers: 1, hidden_size: 32, num_attention_heads: 2, max_sequence_length: 64, embedding_dropout_prob: 0.1, attention_dropout_prob: 0.1, output_dropout_prob: 0.1 },
    data,
    outDir,
    steps: 6,
    batchSize: 2,
    seqLength: 32,
    accumulation: 1,
    lr: 3e-3,
    warmup: 0.2,
    decayStyle: 'cosine',
    decayRatio: 0.1,
    weightDecay: 0.1,
    beta1: 0.9,
    beta2: 0.98,
    eps: 1e-6,
    maxGradNorm: 1,
    seed: 7,
    objective: 'mixture',
    layout: 'pack',
    validFraction: 0.05,
    evalEvery: 3,
    evalBatches: 2,
    checkpointEvery: 3,
    keep: 3,
    ...over,
  };
}
