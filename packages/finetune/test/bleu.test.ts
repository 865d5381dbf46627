import { describe, expect, it } from 'vitest';
import { corpusBleu } from '../src/lm/index.js';

describe('corpus BLEU-4 (multi-bleu.perl)', () => {
  it('is 100 for an exact copy', () => {
    const r = corpusBleu(['the cat sat on the mat'], ['the cat sat on the mat']);
    expect(r.bleu).toBeCloseTo(100, 10);
    expect(r.brevityPenalty).toBe(1);
  });

  it('pools n-gram counts over the corpus and applies the brevity penalty (by hand)', () => {
    // 1: "a b c d e" vs "a b c d e f g": 5/5, 4/4, 3/3, 2/2; c 5, r 7
    // 2: "x y z w v" vs "x y z w u":     4/5, 3/4, 2/3, 1/2; c 5, r 5
    const r = corpusBleu(['a b c d e f g', 'x y z w u'], ['a b c d e', 'x y z w v']);
    expect(r.matches).toEqual([9, 7, 5, 3]);
    expect(r.totals).toEqual([10, 8, 6, 4]);
    expect(r.candidateLength).toBe(10);
    expect(r.referenceLength).toBe(12);
    expect(r.brevityPenalty).toBeCloseTo(Math.exp(1 - 12 / 10), 12);
    expect(r.bleu).toBeCloseTo(100 * Math.exp(-0.2) * Math.pow(0.9 * 0.875 * (5 / 6) * 0.75, 0.25), 10);
  });

  it('clips repeated n-grams and is 0 when some order has no match (no smoothing)', () => {
    const r = corpusBleu(['the cat is on the mat'], ['the cat the cat on the mat']);
    expect(r.matches).toEqual([5, 3, 1, 0]);
    expect(r.totals).toEqual([7, 6, 5, 4]);
    expect(r.bleu).toBe(0);
  });

  it('takes the closest reference length (ties: the shorter) and the per-reference maximum counts', () => {
    const r = corpusBleu([['a b c d', 'a b c d e f']], ['a b c d e']);
    expect(r.referenceLength).toBe(4);
    expect(r.brevityPenalty).toBe(1);
    expect(r.matches[0]).toBe(5);
    expect(r.bleu).toBeCloseTo(100, 10);
  });

  it('splits on whitespace only; -lc lower-cases', () => {
    // case and punctuation count: 'The' ≠ 'the', 'mat.' ≠ 'mat'; p = 4/6, 3/5, 2/4, 1/3; c 6, r 7
    const r = corpusBleu(['The cat sat on the mat .'], ['the cat sat on the mat.']);
    expect(r.matches).toEqual([4, 3, 2, 1]);
    expect(r.bleu).toBeCloseTo(100 * Math.exp(1 - 7 / 6) * Math.pow((4 / 6) * (3 / 5) * (2 / 4) * (1 / 3), 0.25), 10);
    expect(corpusBleu(['The cat sat on the mat'], ['the  cat\tsat on the mat'], { lowercase: true }).bleu).toBeCloseTo(100, 10);
    expect(() => corpusBleu(['a'], [])).toThrow(/1 reference entries but 0 candidates/);
  });
});
