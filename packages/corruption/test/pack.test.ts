// Packing samples into rows: isolation via segment ids, no truncation, original-style padding,
// and the non-isolated (original) document concatenation.
import { describe, expect, it } from 'vitest';
import { Rng, glmKeyRanges } from '@blankglm/tensor';
import { concatenateDocuments, corruptBatch, corruptSample, packSamples, padSamples, type CorruptionOptions } from '../src/index.js';
import { randomDocument, randomWindow, sentenceEnd, tokens } from './helpers.js';

const base: CorruptionOptions = { tokens, sentenceEnd, mixture: { token: 0.4, sentence: 0.3, document: 0.3 }, objectiveScope: 'sample' };

describe('packSamples', () => {
  const rng = new Rng(31);
  const texts = Array.from({ length: 40 }, () => randomWindow(rng.intBetween(20, 200), 1 + rng.int(2), rng));
  const { samples } = corruptBatch(texts, base, rng);
  const rowLength = 512;
  const batch = packSamples(samples, rowLength);

  it('puts every sample, unchanged, in one row as one segment with positions restarting', () => {
    let tokensIn = 0;
    samples.forEach((s, i) => {
      const o = batch.sampleRow[i]! * rowLength + batch.sampleOffset[i]!;
      const L = s.inputIds.length;
      tokensIn += L;
      expect(Array.from(batch.inputIds.subarray(o, o + L))).toEqual(Array.from(s.inputIds));
      expect(Array.from(batch.targetIds.subarray(o, o + L))).toEqual(Array.from(s.targetIds));
      expect(Array.from(batch.lossMask.subarray(o, o + L))).toEqual(Array.from(s.lossMask));
      expect(Array.from(batch.positionIds.subarray(o, o + L))).toEqual(Array.from(s.positionIds));
      expect(Array.from(batch.blockPositionIds.subarray(o, o + L))).toEqual(Array.from(s.blockPositionIds));
      const seg = batch.segmentIds[o]!;
      expect(Array.from(batch.segmentIds.subarray(o, o + L))).toEqual(new Array(L).fill(seg));
      expect(batch.sep[batch.sampleRow[i]! * batch.numSegments + seg]).toBe(batch.sampleOffset[i]! + s.sep);
    });
    // First-fit decreasing wastes little: fewer rows than one more than the tokens strictly need.
    expect(batch.batchSize).toBeLessThanOrEqual(Math.ceil(tokensIn / rowLength) + 1);
    let padding = 0;
    for (let i = 0; i < batch.segmentIds.length; i++) if (batch.segmentIds[i] === -1) padding++;
    expect(padding).toBe(batch.batchSize * rowLength - tokensIn);
  });

  it('isolates samples: every token attends only inside its own sample, by that sample\'s sep', () => {
    const r = glmKeyRanges(batch);
    samples.forEach((s, i) => {
      const rowStart = batch.sampleRow[i]! * rowLength;
      const off = batch.sampleOffset[i]!;
      for (let j = 0; j < s.inputIds.length; j++) {
        const q = rowStart + off + j;
        expect(r.keyStart[q]).toBe(off);
        expect(r.keyEnd[q]).toBe(j < s.sep ? off + s.sep : off + j + 1);
      }
    });
    for (let q = 0; q < batch.segmentIds.length; q++) {
      if (batch.segmentIds[q] === -1) expect(r.keyEnd[q]! - r.keyStart[q]!).toBe(1); // padding sees only itself
    }
  });

  it('never truncates: a sample longer than the row is an error naming it', () => {
    const long = corruptSample(randomWindow(600, 1, rng), { tokens }, rng);
    expect(() => packSamples([samples[0]!, long], 512)).toThrow(/sample 1 has \d+ tokens, more than the row length 512/);
    expect(() => padSamples([long], 512)).toThrow(/sample 0 has/);
  });
});

describe('padSamples (the original pad_batch)', () => {
  it('pads with token 0, target 0, loss 0, positions 0, one sample per row', () => {
    const rng = new Rng(32);
    const texts = [randomWindow(100, 1, rng), randomWindow(60, 1, rng)];
    const { samples } = corruptBatch(texts, { tokens }, rng);
    const batch = padSamples(samples);
    const L = Math.max(...samples.map((s) => s.inputIds.length));
    expect(batch.seqLength).toBe(L);
    expect(batch.batchSize).toBe(2);
    expect(Array.from(batch.sep)).toEqual(samples.map((s) => s.sep));
    const short = samples[1]!.inputIds.length;
    for (let j = short; j < L; j++) {
      const o = L + j;
      expect([batch.inputIds[o], batch.targetIds[o], batch.lossMask[o], batch.positionIds[o], batch.blockPositionIds[o], batch.segmentIds[o]]).toEqual([0, 0, 0, 0, 0, -1]);
    }
  });
});

describe('non-isolated packing (the original: documents concatenated before corruption)', () => {
  it('keeps every document token, splitting long ones across windows', () => {
    const rng = new Rng(33);
    const docs = Array.from({ length: 12 }, () => randomDocument(rng.intBetween(5, 300), rng));
    const windows = concatenateDocuments(docs, 256, tokens);
    const body = windows.flatMap((w) => Array.from(w.subarray(1)));
    expect(body).toEqual(docs.flatMap((d) => [...d, tokens.eos]));
    for (const w of windows) {
      expect(w[0]).toBe(tokens.cls);
      expect(w.length).toBeLessThanOrEqual(256);
    }
  });

  it('positions continue across documents and Part A is bidirectional across them', () => {
    const rng = new Rng(34);
    const docs = [randomDocument(80, rng), randomDocument(90, rng)];
    const [window] = concatenateDocuments(docs, 256, tokens);
    const sample = corruptSample(window!, { tokens }, rng);
    const batch = padSamples([sample]);
    const r = glmKeyRanges(batch);
    // The second document's first Part-A token sees the first document's tokens and vice versa.
    expect(r.keyStart[1]).toBe(0);
    expect(r.keyEnd[1]).toBe(sample.sep);
    expect(Array.from(sample.positionIds.subarray(0, sample.sep))).toEqual(Array.from({ length: sample.sep }, (_, i) => i));
    // ... while spans still never cross the document boundary (eos at index 81).
    for (const s of sample.spans) expect(s.start > 81 || s.end <= 81).toBe(true);
  });
});
