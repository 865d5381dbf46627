// The exact layouts of docs/glm-reference.md §1.6 and §1.9, row by row.
import { describe, expect, it } from 'vitest';
import { Rng } from '@blankglm/tensor';
import { buildBlockSample, buildClmSample, buildMlmSample, buildPrefixSample } from '../src/index.js';
import { sampleKeyRanges, tokens } from './helpers.js';

const { cls, eos, mask, sop, eop, gMask } = tokens;
const [x1, x2, x3, x4, x5, x6] = [2001, 2002, 2003, 2004, 2005, 2006];
const layout = { objective: 'token' as const, maskId: mask, sopId: sop, eopId: eop };

describe('worked example of §1.9 (token mode)', () => {
  const text = [cls, x1, x2, x3, x4, x5, x6, eos];
  // spans (3,4)={x3}, (5,7)={x5,x6}; the shuffled order puts {x5,x6} first.
  const sample = buildBlockSample(text, [[3, 4], [5, 7]], [1, 0], layout);

  it('reproduces every row of the table', () => {
    expect(sample.sep).toBe(7);
    expect(Array.from(sample.inputIds)).toEqual([cls, x1, x2, mask, x4, mask, eos, sop, x5, x6, sop, x3]);
    expect(Array.from(sample.targetIds)).toEqual([cls, x1, x2, mask, x4, mask, eos, x5, x6, eop, x3, eop]);
    expect(Array.from(sample.lossMask)).toEqual([0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1]);
    expect(Array.from(sample.positionIds)).toEqual([0, 1, 2, 3, 4, 5, 6, 5, 5, 5, 3, 3]);
    expect(Array.from(sample.blockPositionIds)).toEqual([0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 1, 2]);
    expect(sample.spans).toEqual([
      { start: 5, end: 7, maskIndex: 5, partBStart: 7 },
      { start: 3, end: 4, maskIndex: 3, partBStart: 10 },
    ]);
  });

  it('has the attention of the table: rows 0–6 see cols 0–6, row i ≥ 7 sees 0..i', () => {
    const r = sampleKeyRanges(sample);
    for (let i = 0; i < 12; i++) {
      expect(r.keyStart[i]).toBe(0);
      expect(r.keyEnd[i]).toBe(i < 7 ? 7 : i + 1);
    }
  });

  it('no-shuffle ablation: left to right', () => {
    const s = buildBlockSample(text, [[3, 4], [5, 7]], [0, 1], layout);
    expect(Array.from(s.inputIds.subarray(7))).toEqual([sop, x3, sop, x5, x6]);
    expect(Array.from(s.positionIds.subarray(7))).toEqual([3, 3, 5, 5, 5]);
  });

  it('no-block-position ablation: block position 1 for all of Part B', () => {
    const s = buildBlockSample(text, [[3, 4], [5, 7]], [1, 0], { ...layout, blockPositions: false });
    expect(Array.from(s.blockPositionIds)).toEqual([0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1]);
  });

  it('sentinel ablation: distinct ids per Part-B rank, Part-B positions = max_seq_length', () => {
    const sentinel = { maskIds: [mask, 40001], sopIds: [sop, 40101], positionId: 512 };
    const s = buildBlockSample(text, [[3, 4], [5, 7]], [1, 0], { ...layout, sentinel });
    // {x5,x6} is generated first → [MASK]/sop; {x3} second → [MASK1]/sop1.
    expect(Array.from(s.inputIds)).toEqual([cls, x1, x2, 40001, x4, mask, eos, sop, x5, x6, 40101, x3]);
    expect(Array.from(s.positionIds)).toEqual([0, 1, 2, 3, 4, 5, 6, 512, 512, 512, 512, 512]);
    expect(() => buildBlockSample(text, [[1, 2], [3, 4], [5, 7]], [0, 1, 2], { ...layout, sentinel })).toThrow(/only 2 sentinel ids/);
  });

  it('[dBLOCK] corrupts Part-B inputs only (never sop or targets)', () => {
    const s = buildBlockSample(text, [[3, 4], [5, 7]], [1, 0], { ...layout, blockMask: { prob: 1, id: 30526, rng: new Rng(1) } });
    expect(Array.from(s.inputIds.subarray(7))).toEqual([sop, 30526, 30526, sop, 30526]);
    expect(Array.from(s.targetIds.subarray(7))).toEqual([x5, x6, eop, x3, eop]);
  });

  it('rejects overlapping or unsorted spans and a bad order, naming them', () => {
    expect(() => buildBlockSample(text, [[5, 7], [3, 4]], [0, 1], layout)).toThrow(/span 1 = \[3, 4\) is invalid/);
    expect(() => buildBlockSample(text, [[3, 6], [5, 7]], [0, 1], layout)).toThrow(/span 1/);
    expect(() => buildBlockSample(text, [[3, 9]], [0], layout)).toThrow(/inside the text of length 8/);
    expect(() => buildBlockSample(text, [[3, 4], [5, 7]], [0, 0], layout)).toThrow(/not a permutation/);
  });
});

describe('GPT/prefix example under §1.9 (N = 11, G = 5)', () => {
  const t = [3001, 3002, 3003, 3004, 3005, 3006, 3007, 3008, 3009];
  const text = [cls, ...t, eos];
  const s = buildPrefixSample(text, 5, { maskId: gMask, sopId: sop });

  it('reproduces input, targets, both position rows and sep', () => {
    expect(s.sep).toBe(7);
    expect(Array.from(s.inputIds)).toEqual([cls, t[0], t[1], t[2], t[3], t[4], gMask, sop, t[5], t[6], t[7], t[8]]);
    expect(Array.from(s.targetIds.subarray(7))).toEqual([t[5], t[6], t[7], t[8], eos]); // ends with eos, no eop
    expect(Array.from(s.positionIds)).toEqual([0, 1, 2, 3, 4, 5, 6, 6, 6, 6, 6, 6]);
    expect(Array.from(s.blockPositionIds)).toEqual([0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5]);
    expect(Array.from(s.lossMask)).toEqual([0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1]);
    expect(s.spans).toEqual([{ start: 6, end: 11, maskIndex: 6, partBStart: 7 }]);
  });
});

describe('baselines through the same code', () => {
  const text = [cls, x1, x2, x3, x4, x5, x6, eos];
  it('BERT MLM: spans masked in place, loss there, 1-D positions, sep = N (bidirectional)', () => {
    const s = buildMlmSample(text, [3, 5], [4, 7], 2, mask);
    expect(Array.from(s.inputIds)).toEqual([cls, x1, x2, mask, x4, mask, mask, eos]);
    expect(Array.from(s.targetIds)).toEqual(text);
    expect(Array.from(s.lossMask)).toEqual([0, 0, 0, 1, 0, 1, 1, 0]);
    expect(Array.from(s.positionIds)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(Array.from(s.blockPositionIds)).toEqual([0, 0, 0, 0, 0, 0, 0, 0]);
    expect(s.sep).toBe(8);
    const r = sampleKeyRanges(s);
    for (let i = 0; i < 8; i++) expect([r.keyStart[i], r.keyEnd[i]]).toEqual([0, 8]);
  });

  it('GPT CLM: next-token targets, sep = 0, purely causal', () => {
    const s = buildClmSample(text);
    expect(Array.from(s.inputIds)).toEqual(text.slice(0, 7));
    expect(Array.from(s.targetIds)).toEqual(text.slice(1));
    expect(Array.from(s.lossMask)).toEqual([1, 1, 1, 1, 1, 1, 1]);
    expect(s.sep).toBe(0);
    const r = sampleKeyRanges(s);
    for (let i = 0; i < 7; i++) expect([r.keyStart[i], r.keyEnd[i]]).toEqual([0, i + 1]);
    expect(() => buildClmSample([cls])).toThrow(/nothing to predict/);
  });
});
