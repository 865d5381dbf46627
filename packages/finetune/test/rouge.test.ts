import { describe, expect, it } from 'vitest';
import { corpusRouge, porterStem, rougeL, rougeLsum, rougeN, rougeScores, rougeTokenize } from '../src/lm/index.js';

describe('rouge_score tokenisation', () => {
  it('lower-cases, turns non-alphanumerics into spaces and stems words longer than 3 characters', () => {
    expect(rougeTokenize("Hello, World! It's 3pm.", { stem: false })).toEqual(['hello', 'world', 'it', 's', '3pm']);
    expect(rougeTokenize('Running cats, ponies & the sky', { stem: true })).toEqual(['run', 'cat', 'poni', 'the', 'sky']);
    expect(rougeTokenize('naïve café')).toEqual(['na', 've', 'caf']);
  });

  it("stems Porter's published examples", () => {
    const cases: Record<string, string> = {
      caresses: 'caress', ponies: 'poni', ties: 'ti', cats: 'cat', feed: 'feed', agreed: 'agre', plastered: 'plaster',
      motoring: 'motor', sing: 'sing', conflated: 'conflat', hopping: 'hop', falling: 'fall', filing: 'file', happy: 'happi',
      sky: 'sky', relational: 'relat', generalizations: 'gener', running: 'run', adjustment: 'adjust', effective: 'effect',
      controll: 'control', roll: 'roll', hopeful: 'hope', goodness: 'good', allowance: 'allow', adoption: 'adopt',
    };
    for (const [word, stem] of Object.entries(cases)) expect(porterStem(word), word).toBe(stem);
  });
});

describe('ROUGE', () => {
  const ref = 'the cat sat on the mat'.split(' ');
  const cand = 'the cat on the mat'.split(' ');

  it('ROUGE-1/2/L by hand', () => {
    // unigrams: the×2, cat, on, mat = 5 of 5 candidate / 6 reference
    const r1 = rougeN(ref, cand, 1);
    expect(r1.precision).toBe(1);
    expect(r1.recall).toBeCloseTo(5 / 6, 12);
    expect(r1.fmeasure).toBeCloseTo(10 / 11, 12);
    // bigrams: the cat, on the, the mat = 3 of 4 / 5
    const r2 = rougeN(ref, cand, 2);
    expect(r2.precision).toBeCloseTo(3 / 4, 12);
    expect(r2.recall).toBeCloseTo(3 / 5, 12);
    expect(r2.fmeasure).toBeCloseTo(2 / 3, 12);
    // LCS "the cat on the mat" = 5
    expect(rougeL(ref, cand).fmeasure).toBeCloseTo(10 / 11, 12);
    expect(rougeN(ref, [], 1)).toEqual({ precision: 0, recall: 0, fmeasure: 0 });
    expect(rougeL([], cand).fmeasure).toBe(0);
  });

  it('stemming decides whether inflected forms match', () => {
    expect(rougeScores('The cat runs', 'running cats').rouge1.fmeasure).toBeCloseTo(0.8, 12); // P 2/2, R 2/3
    expect(rougeScores('The cat runs', 'running cats', { stem: false }).rouge1.fmeasure).toBe(0);
  });

  it('ROUGE-Lsum takes the union of LCS hits over sentences; plain ROUGE-L does not', () => {
    // r1 = a b c: LCS with "a c e" = {a, c}, with "b d" = {b} → 3 hits; r2 = d e: {e} ∪ {d} → 2 hits
    const s = rougeLsum([['a', 'b', 'c'], ['d', 'e']], [['a', 'c', 'e'], ['b', 'd']]);
    expect(s).toEqual({ precision: 1, recall: 1, fmeasure: 1 });
    const scores = rougeScores('a b c\nd e', 'a c e\nb d', { stem: false });
    expect(scores.rougeLsum.fmeasure).toBe(1);
    expect(scores.rougeL.fmeasure).toBeCloseTo(3 / 5, 12); // LCS of the flat lists is 3
    // each token counts at most as often as it occurs in both summaries
    expect(rougeLsum([['a', 'b'], ['a', 'b']], [['a', 'b']]).recall).toBeCloseTo(2 / 4, 12);
  });

  it('corpus scores are means of per-example scores; mismatched lists are refused', () => {
    const c = corpusRouge(['the cat sat on the mat', 'a b'], ['the cat on the mat', 'x y'], { stem: false });
    expect(c.rouge1.fmeasure).toBeCloseTo((10 / 11 + 0) / 2, 12);
    expect(() => corpusRouge(['a'], ['a', 'b'])).toThrow(/1 references but 2 candidates/);
  });
});
