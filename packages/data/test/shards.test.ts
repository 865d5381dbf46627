import { describe, expect, it } from 'vitest';
import { readFile, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Rng } from '@blankglm/tensor';
import { ShardError, openShards } from '../src/shards.js';
import { WindowSampler } from '../src/windows.js';
import { splitDocuments } from '../src/dataset.js';
import { writeTestShards } from './helpers.js';

function range(start: number, n: number): number[] {
  return Array.from({ length: n }, (_, i) => start + i);
}

describe('shards', () => {
  it('round-trips documents across several shards, documents never split', async () => {
    const docs = [range(1000, 7), range(2000, 3), range(3000, 12), [5], range(4000, 9)];
    const dir = await writeTestShards(docs, { shardTokens: 10 });
    const set = await openShards(dir, { verify: true });
    expect(set.manifest.shards.map((s) => s.documents)).toEqual([2, 1, 2]); // 7+3 | 12 (alone, over the limit) | 1+9
    expect(set.documentCount).toBe(5);
    expect(set.tokenCount).toBe(32);
    for (let d = 0; d < docs.length; d++) {
      expect(Array.from(set.document(d))).toEqual(docs[d]);
      expect(set.documentLength(d)).toBe(docs[d]!.length);
    }
    expect(() => set.document(5)).toThrow(/document 5 out of range 0\.\.4/);
  });

  it('reports a missing folder, damaged files and a changed checksum', async () => {
    await expect(openShards('/nonexistent/blankglm')).rejects.toThrow(/no prepared data at .*manifest\.json not found/);
    const dir = await writeTestShards([range(1, 20)], { shardTokens: 100 });
    const bin = join(dir, 'shard-00000.bin');
    const original = await readFile(bin);
    original[3] ^= 1;
    await writeFile(bin, original);
    await openShards(dir); // sizes still agree: only verify catches a flipped bit
    await expect(openShards(dir, { verify: true })).rejects.toThrow(/shard-00000\.bin: sha256 differs/);
    await truncate(bin, 10);
    await expect(openShards(dir)).rejects.toThrow(ShardError);
    await expect(openShards(dir)).rejects.toThrow(/10 bytes, expected 20 tokens × 2 bytes/);
    await writeFile(join(dir, 'manifest.json'), '{"format":"blankglm-shards","version":99}');
    await expect(openShards(dir)).rejects.toThrow(/version 99, this blankglm reads version 1/);
  });
});

describe('WindowSampler (GLM BlockDataset windows)', () => {
  const CLS = 101;
  const EOS = 0;
  const DOT = 1012;
  const sentenceEnd = new Uint8Array(30592);
  sentenceEnd[DOT] = 1;

  it('packs short documents as [CLS] doc eos [CLS] doc eos …, cut to the window', async () => {
    const docs = [range(2000, 5), range(3000, 6)];
    const set = await openShards(await writeTestShards(docs));
    const sampler = new WindowSampler(set, Uint32Array.from([0, 1]), { cls: CLS, eos: EOS, sentenceEnd }, { seqLength: 32 });
    const rng = new Rng(1);
    for (let i = 0; i < 50; i++) {
      const w = Array.from(sampler.window(rng));
      expect(w.length).toBeLessThanOrEqual(32);
      expect(w[0]).toBe(CLS);
      // Every [CLS] is followed by the start of one of the documents, and every full doc by eos.
      for (let j = 0; j < w.length; j++) {
        if (w[j] === CLS && j + 1 < w.length) expect([2000, 3000]).toContain(w[j + 1]);
        if (w[j] === 2004 || w[j] === 3005) if (j + 1 < w.length) expect(w[j + 1]).toBe(EOS);
      }
    }
    const single = new WindowSampler(set, Uint32Array.from([0]), { cls: CLS, eos: EOS, sentenceEnd }, { seqLength: 32, sampleAcrossDocuments: false });
    expect(Array.from(single.window(rng))).toEqual([CLS, ...docs[0]!, EOS]);
  });

  it('starts long documents at sentence boundaries and cuts them after a sentence end', async () => {
    // 40 sentences of 7 words + '.', ids unique per position so the window's origin is visible.
    const doc: number[] = [];
    for (let s = 0; s < 40; s++) doc.push(...range(5000 + s * 10, 7), DOT);
    const set = await openShards(await writeTestShards([doc], { shardTokens: 10_000 }));
    const sampler = new WindowSampler(set, Uint32Array.from([0]), { cls: CLS, eos: EOS, sentenceEnd }, { seqLength: 64 });
    const rng = new Rng(7);
    for (let i = 0; i < 100; i++) {
      const w = Array.from(sampler.window(rng));
      expect(w[0]).toBe(CLS);
      const startIdx = doc.indexOf(w[1]!);
      expect(startIdx % 8, `window ${i} starts mid-sentence at ${startIdx}`).toBe(0);
      expect(w.slice(1)).toEqual(doc.slice(startIdx, startIdx + w.length - 1));
      const last = w[w.length - 1]!;
      expect(last === DOT || last === EOS, `window ${i} ends mid-sentence`).toBe(true);
      expect(w.length).toBeGreaterThanOrEqual(32);
      expect(w.length).toBeLessThanOrEqual(64);
    }
  });

  it('draws documents in proportion to their length', async () => {
    const set = await openShards(await writeTestShards([range(1, 9), range(1, 29), range(1, 59)], { shardTokens: 10_000 }));
    const sampler = new WindowSampler(set, Uint32Array.from([0, 1, 2]), { cls: CLS, eos: EOS, sentenceEnd }, { seqLength: 128 });
    const rng = new Rng(3);
    const counts = [0, 0, 0];
    const n = 30_000;
    for (let i = 0; i < n; i++) counts[sampler.sampleDocument(rng)]!++;
    // weights 10 : 30 : 60
    expect(counts[0]! / n).toBeCloseTo(0.1, 1);
    expect(counts[1]! / n).toBeCloseTo(0.3, 1);
    expect(counts[2]! / n).toBeCloseTo(0.6, 1);
  });
});

describe('splitDocuments', () => {
  it('holds out about the given fraction, the same documents for any sampling seed, disjoint and complete', () => {
    const { train, valid } = splitDocuments(10_000, 0.05);
    expect(valid.length / 10_000).toBeGreaterThan(0.04);
    expect(valid.length / 10_000).toBeLessThan(0.06);
    expect(train.length + valid.length).toBe(10_000);
    const all = new Set([...train, ...valid]);
    expect(all.size).toBe(10_000);
    expect(Array.from(splitDocuments(10_000, 0.05).valid)).toEqual(Array.from(valid));
    expect(Array.from(splitDocuments(10_000, 0.05, 1).valid)).not.toEqual(Array.from(valid));
    expect(splitDocuments(3, 0.01).valid.length).toBe(1);
    expect(splitDocuments(3, 0).valid.length).toBe(0);
  });
});
