// Metrics against hand-computed cases.
import { describe, expect, it } from 'vitest';
import { accuracy, answerSetScores, binaryF1, groupExactMatch, macroF1, normalizeAnswer, tokenF1 } from '../src/index.js';

describe('classification metrics', () => {
  it('accuracy', () => {
    expect(accuracy(['a', 'b', 'a', 'c'], ['a', 'b', 'b', 'c'])).toBe(0.75);
    expect(() => accuracy(['a'], ['a', 'b'])).toThrow(/1 predictions but 2/);
    expect(() => accuracy([], [])).toThrow(/no examples/);
  });

  it('macro-F1 over the classes of gold and predictions (CB)', () => {
    // gold:  E E E C C N      pred: E E C C N N
    // E: tp 2 fp 0 fn 1 → 4/5;  C: tp 1 fp 1 fn 1 → 2/4;  N: tp 1 fp 1 fn 0 → 2/3
    const f = macroF1(['E', 'E', 'C', 'C', 'N', 'N'], ['E', 'E', 'E', 'C', 'C', 'N']);
    expect(f).toBeCloseTo((0.8 + 0.5 + 2 / 3) / 3, 12);
    // a class predicted but never gold counts with F1 0 (scikit-learn's label union)
    expect(macroF1(['x', 'y'], ['x', 'x'])).toBeCloseTo((2 / 3 + 0) / 2, 12);
  });

  it('MultiRC F1a over all answer options and per-question EM', () => {
    const pred = ['1', '0', '1', '1', '0', '0'];
    const gold = ['1', '0', '0', '1', '1', '0'];
    const question = ['q1', 'q1', 'q1', 'q2', 'q2', 'q3'];
    // positives: tp 2 (0,3), fp 1 (2), fn 1 (4) → 4/6
    expect(binaryF1(pred, gold, '1')).toBeCloseTo(2 / 3, 12);
    // q1 wrong (option 2), q2 wrong (option 4), q3 right → 1/3
    expect(groupExactMatch(pred, gold, question)).toBeCloseTo(1 / 3, 12);
  });

  it('ReCoRD token F1 / EM against the gold set with SQuAD normalisation', () => {
    expect(normalizeAnswer('The  Eiffel-Tower!')).toBe('eiffeltower');
    expect(normalizeAnswer('An apple, a day')).toBe('apple day');
    // "Barack Obama" vs "Obama": common 1, precision 1/2, recall 1 → 2/3
    expect(tokenF1('Barack Obama', 'Obama')).toBeCloseTo(2 / 3, 12);
    expect(tokenF1('the cat', 'a dog')).toBe(0);
    const s = answerSetScores(['Barack Obama', 'Paris'], [['Obama', 'Barack Obama'], ['London']]);
    expect(s.em).toBe(0.5); // first matches "Barack Obama" exactly
    expect(s.f1).toBe(0.5); // best F1 1 for the first, 0 for the second
  });
});
