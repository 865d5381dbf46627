import { describe, expect, it } from 'vitest';
import { createReferenceBackend } from '../src/index.js';

describe('reference backend smoke', () => {
  it('runs embedding + layerNorm + linear', () => {
    const be = createReferenceBackend();
    const wordEmb = be.alloc('f32', 4 * 2, 'wordEmb');
    const posEmb = be.alloc('f32', 3 * 2, 'posEmb');
    be.write(wordEmb, [1, 2, 3, 4, 5, 6, 7, 8]);
    be.write(posEmb, [0.5, 0.5, 1, 1, 2, 2]);
    const ids = be.alloc('i32', 2);
    const pos = be.alloc('i32', 2);
    be.write(ids, [3, 0]);
    be.write(pos, [0, 2]);
    const out = be.alloc('f32', 4);
    be.run('embedding', { wordEmb, posEmb, blockPosEmb: null, inputIds: ids, positionIds: pos, blockPositionIds: null, out, tokens: 2, hiddenSize: 2, vocab: 4, positions: 3 });
    expect(Array.from(be.read(out))).toEqual([7.5, 8.5, 3, 4]);
    expect(be.checkGuards()).toEqual([]);
  });
});
