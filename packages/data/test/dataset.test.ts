import { beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Rng, glmKeyRanges } from '@blankglm/tensor';
import { GlmDataset, embeddedCorpusFiles, openShards, prepareCorpus, type DatasetBatch, type GlmDatasetOptions, type ShardSet } from '../dist/index.js';

let shards: ShardSet;

beforeAll(async () => {
  // Two embedded books (one Latin-1, one CRLF) → ~170k BERT tokens.
  const files = embeddedCorpusFiles().filter((f) => /shakespeare-caesar|burgess-busterbrown/.test(f.path));
  const outDir = await mkdtemp(join(tmpdir(), 'blankglm-dataset-'));
  await prepareCorpus({ files, outDir, tokenizer: { kind: 'bert' }, encoding: 'auto', workers: 0 });
  shards = await openShards(outDir);
});

function bytesOf(b: DatasetBatch): Buffer {
  const x = b.batch;
  return Buffer.concat(
    [x.inputIds, x.positionIds, x.blockPositionIds, x.sep, x.segmentIds, x.targetIds, x.lossMask].map((a) => Buffer.from(a.buffer, a.byteOffset, a.byteLength)),
  );
}

const base = (seed: number, extra: Partial<GlmDatasetOptions> = {}): GlmDatasetOptions => ({
  seqLength: 128,
  batchSize: 6,
  validFraction: 0.05,
  corruption: { mixture: { token: 0.5, sentence: 0.25, document: 0.25 }, taskMask: true },
  rng: new Rng(seed),
  ...extra,
});

describe('GlmDataset', () => {
  it('yields well-formed GLM batches of fixed row length from [CLS]-led windows', () => {
    const ds = new GlmDataset(shards, base(1));
    for (const b of ds.take(10)) {
      expect(b.batch.batchSize).toBe(6);
      expect(b.batch.seqLength).toBe(ds.rowLength);
      expect(b.windows.every((w) => w[0] === 101 && w.length <= 128 && w.length >= 64)).toBe(true);
      glmKeyRanges(b.batch); // validates sep and segment ids
      let loss = 0;
      for (const v of b.batch.lossMask) loss += v;
      expect(loss).toBeGreaterThan(0);
    }
  });

  it('is deterministic in its seed', () => {
    const a = new GlmDataset(shards, base(5));
    const b = new GlmDataset(shards, base(5));
    const c = new GlmDataset(shards, base(6));
    const x = bytesOf(a.next());
    expect(bytesOf(b.next()).equals(x)).toBe(true);
    expect(bytesOf(c.next()).equals(x)).toBe(false);
  });

  it.each(['pad', 'pack'] as const)('resumes exactly from a saved state (%s layout): the same batches, byte for byte', (layout) => {
    const N = 7;
    const M = 9;
    const uninterrupted = new GlmDataset(shards, base(42, { layout }));
    for (let i = 0; i < N; i++) uninterrupted.next();
    const saved = JSON.parse(JSON.stringify(uninterrupted.state()));
    const expected = [...uninterrupted.take(M)].map(bytesOf);

    const resumed = new GlmDataset(shards, base(999, { layout })); // a different seed: the state must override it
    resumed.restore(saved);
    const got = [...resumed.take(M)];
    expect(got[0]!.index).toBe(N);
    for (let i = 0; i < M; i++) expect(bytesOf(got[i]!).equals(expected[i]!), `batch ${N + i}`).toBe(true);
  });

  it('cuts a batch into more, shorter [CLS]-led windows with shortSequenceProb (GLM short_seq_prob), resumably', () => {
    const ds = new GlmDataset(shards, base(3, { shortSequenceProb: 1, layout: 'pack' }));
    for (const b of ds.take(5)) {
      const longest = Math.max(...b.windows.map((w) => w.length));
      const T = longest - 1;
      expect(T).toBeGreaterThanOrEqual(32);
      expect(T).toBeLessThan(127);
      expect(b.windows.length).toBeGreaterThanOrEqual(6 * Math.floor(127 / T));
      for (const w of b.windows) {
        expect(w[0]).toBe(101);
        expect(w[1]).not.toBe(101);
      }
      glmKeyRanges(b.batch);
    }
    const a = new GlmDataset(shards, base(8, { shortSequenceProb: 0.5 }));
    for (let i = 0; i < 3; i++) a.next();
    const saved = a.state();
    const expected = [...a.take(6)].map(bytesOf);
    const b = new GlmDataset(shards, base(8, { shortSequenceProb: 0.5 }));
    b.restore(saved);
    expect([...b.take(6)].map(bytesOf).every((x, i) => x.equals(expected[i]!))).toBe(true);
  });

  it('refuses a state saved with a different configuration', () => {
    const state = new GlmDataset(shards, base(1)).state();
    const other = new GlmDataset(shards, base(1, { seqLength: 256 }));
    expect(() => other.restore(state)).toThrow(/saved with seqLength = 128, this dataset has 256/);
    expect(() => other.restore({ format: 'nope' } as never)).toThrow(/not a dataset state/);
  });

  it('keeps validation documents out of training windows', () => {
    const train = new GlmDataset(shards, base(1));
    const valid = new GlmDataset(shards, base(1, { split: 'valid' }));
    const validDocs = new Set(valid.sampler.documents);
    expect(validDocs.size).toBeGreaterThan(0);
    expect(train.documentCount + valid.documentCount).toBe(shards.documentCount);
    for (const d of train.sampler.documents) expect(validDocs.has(d)).toBe(false);
    expect(valid.next().batch.batchSize).toBe(6);
  });
});
