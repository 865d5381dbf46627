import { describe, expect, it } from 'vitest';
import { drawAttentionMask, glmKeyRanges } from '../src/index.js';

describe('glmKeyRanges', () => {
  it('gives Part A bidirectional and Part B causal attention (reference §1.9 mask)', () => {
    // 12 tokens, sep = 7: rows 0–6 see cols 0–6; row 7 sees 0–7; …; row 11 sees 0–11.
    const r = glmKeyRanges({ batchSize: 1, seqLength: 12, sep: Int32Array.of(7), numSegments: 1 });
    for (let i = 0; i < 7; i++) expect([r.keyStart[i], r.keyEnd[i]]).toEqual([0, 7]);
    for (let i = 7; i < 12; i++) expect([r.keyStart[i], r.keyEnd[i]]).toEqual([0, i + 1]);
  });

  it('isolates packed segments and padding', () => {
    // row: seg0 = [0,5) with sep 3, seg1 = [5,9) with sep 7, padding [9,10)
    const segmentIds = Int32Array.from([0, 0, 0, 0, 0, 1, 1, 1, 1, -1]);
    const r = glmKeyRanges({ batchSize: 1, seqLength: 10, sep: Int32Array.of(3, 7), numSegments: 2, segmentIds });
    expect(drawAttentionMask(r, 10)).toBe(
      ['xxx.......', 'xxx.......', 'xxx.......', 'xxxx......', 'xxxxx.....', '.....xx...', '.....xx...', '.....xxx..', '.....xxxx.', '.........x'].join('\n'),
    );
  });

  it('rejects a sep outside its segment and non-contiguous segments, naming them', () => {
    expect(() => glmKeyRanges({ batchSize: 1, seqLength: 4, sep: Int32Array.of(5), numSegments: 1 })).toThrow(/sep\[0\]\[0\] = 5/);
    expect(() =>
      glmKeyRanges({ batchSize: 1, seqLength: 4, sep: Int32Array.of(1, 3), numSegments: 2, segmentIds: Int32Array.from([0, 1, 0, 1]) }),
    ).toThrow(/not contiguous|in order/);
  });
});
