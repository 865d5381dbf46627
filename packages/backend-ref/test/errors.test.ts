// Bad input: every mistake a kernel would silently get wrong fails with a message naming the op,
// the argument and the offending value, before anything is written.
import { describe, expect, it } from 'vitest';
import { createReferenceBackend, type ReferenceBackend } from '../src/index.js';
import { upload } from './helpers.js';

function embeddingArgs(be: ReferenceBackend, ids: { input?: number[]; position?: number[] } = {}) {
  const T = 40;
  const H = 2;
  const inputIds = upload(be, 'i32', ids.input ?? new Array(T).fill(1));
  const positionIds = upload(be, 'i32', ids.position ?? Array.from({ length: T }, (_, t) => t));
  return {
    wordEmb: be.alloc('f32', 10 * H, 'word_embeddings'),
    posEmb: be.alloc('f32', 513 * H, 'position_embeddings'),
    blockPosEmb: null,
    inputIds,
    positionIds,
    blockPositionIds: null,
    out: be.alloc('f32', T * H, 'embedded'),
    tokens: T,
    hiddenSize: H,
    vocab: 10,
    positions: 513,
  };
}

describe('data-dependent checks', () => {
  it('names the op, argument, index and value of a position id past the table, and writes nothing', () => {
    const be = createReferenceBackend();
    const position = Array.from({ length: 40 }, (_, t) => t);
    position[37] = 600;
    const args = embeddingArgs(be, { position });
    be.write(args.out, new Float32Array(80).fill(7));
    expect(() => be.run('embedding', args)).toThrow('embedding: positionIds[37] = 600 is past the position table (513 rows)');
    expect(be.read(args.out).every((v) => v === 7)).toBe(true);
  });

  it('rejects negative and too-large word ids, also in the backward op', () => {
    const be = createReferenceBackend();
    const input = new Array(40).fill(1);
    input[3] = -1;
    expect(() => be.run('embedding', embeddingArgs(be, { input }))).toThrow('embedding: inputIds[3] = -1 is negative; expected a row of the word embedding table (0..9)');
    input[3] = 10;
    const a = embeddingArgs(be, { input });
    expect(() =>
      be.run('embeddingBackward', { dOut: a.out, inputIds: a.inputIds, positionIds: a.positionIds, blockPositionIds: null, dWordEmb: a.wordEmb, dPosEmb: a.posEmb, dBlockPosEmb: null, tokens: 40, hiddenSize: 2, vocab: 10, positions: 513 }),
    ).toThrow('embeddingBackward: inputIds[3] = 10 is past the word embedding table (10 rows)');
  });

  it('rejects targets past the vocabulary and gather indices past the rows', () => {
    const be = createReferenceBackend();
    const hidden = be.alloc('f32', 2 * 4);
    const wordEmb = be.alloc('f32', 5 * 4);
    expect(() =>
      be.run('crossEntropy', { hidden, wordEmb, targets: upload(be, 'i32', [0, 5]), losses: be.alloc('f32', 2), lse: be.alloc('f32', 2), tokens: 2, hiddenSize: 4, vocab: 5, labelSmoothing: 0 }),
    ).toThrow('crossEntropy: targets[1] = 5 is past the vocabulary (5 rows)');
    expect(() => be.run('gatherRows', { x: wordEmb, index: upload(be, 'i32', [4, 9]), out: hidden, count: 2, rows: 5, width: 4 })).toThrow('gatherRows: index[1] = 9 is past x (5 rows)');
  });

  it('rejects key ranges that are empty or outside [0, keys]', () => {
    const be = createReferenceBackend();
    const W = 4;
    const qkv = be.alloc('f32', 3 * W);
    const view = { tensor: qkv, offset: 0, rowStride: W, batchStride: 3 * W };
    const attend = (start: number[], end: number[]) => () =>
      be.run('attention', {
        q: view,
        k: view,
        v: view,
        keyStart: upload(be, 'i32', start),
        keyEnd: upload(be, 'i32', end),
        out: be.alloc('f32', 3 * W),
        lse: null,
        batch: 1,
        queries: 3,
        keys: 3,
        heads: 1,
        headDim: W,
        scale: 0.5,
        dropout: { p: 0, seed: 0, stream: 0 },
      });
    expect(attend([0, 0, 0], [1, 2, 3])).not.toThrow();
    expect(attend([0, 0, 0], [1, 2, 4])).toThrow('attention: keyEnd[b=0, i=2] = 4 is past the keys (3)');
    expect(attend([0, 2, 0], [1, 2, 3])).toThrow('attention: query (b=0, i=1) has an empty key range [2, 2)');
    expect(attend([-1, 0, 0], [1, 2, 3])).toThrow('attention: keyStart[b=0, i=0] = -1 is negative');
  });
});

describe('argument checks', () => {
  it('names a wrong dtype', () => {
    const be = createReferenceBackend();
    const args = embeddingArgs(be);
    expect(() => be.run('embedding', { ...args, inputIds: be.alloc('f32', 40, 'ids') })).toThrow("embedding: inputIds (ids) has dtype f32, expected i32");
  });

  it('names a too-small output', () => {
    const be = createReferenceBackend();
    const args = embeddingArgs(be);
    expect(() => be.run('embedding', { ...args, out: be.alloc('f32', 79, 'embedded') })).toThrow('embedding: out (embedded) has 79 elements, needs at least 80');
  });

  it('names a tensor used after free, with its label', () => {
    const be = createReferenceBackend();
    const args = embeddingArgs(be);
    be.free(args.posEmb);
    expect(() => be.run('embedding', args)).toThrow("embedding: argument 'posEmb': tensor 'position_embeddings' (#4, f32[1026]) was used after it was freed");
    expect(() => be.read(args.posEmb)).toThrow("was used after it was freed");
    expect(() => be.free(args.posEmb)).toThrow("free: tensor 'position_embeddings' (#4, f32[1026]) was used after it was freed");
  });

  it('rejects a tensor of another backend', () => {
    const be = createReferenceBackend();
    const other = createReferenceBackend();
    const args = embeddingArgs(be);
    const foreign = other.alloc('f32', 80, 'elsewhere');
    expect(() => be.run('embedding', { ...args, out: foreign })).toThrow("embedding: argument 'out': tensor 'elsewhere' (#1, f32[80]) does not belong to this backend");
  });

  it('checks write and read bounds, naming the tensor', () => {
    const be = createReferenceBackend();
    const t = be.alloc('f32', 10, 'layers.0.bias');
    expect(() => be.write(t, new Float32Array(3), 8)).toThrow("write to 'layers.0.bias' (#1, f32[10]): 3 elements at offset 8 run past its end (10 elements)");
    expect(() => be.read(t, 5, 6)).toThrow("read from 'layers.0.bias' (#1, f32[10]): 6 elements at offset 5 run past its end (10 elements)");
    const ids = be.alloc('i32', 2, 'ids');
    expect(() => be.write(ids, [1, 2.5])).toThrow("write to 'ids' (#2, i32[2]): data[1] = 2.5 is not a i32 value");
    expect(() => be.write(be.alloc('u8', 1, 'mask'), [256])).toThrow('data[0] = 256 is not a u8 value');
  });

  it('rejects an unknown activation, an unknown op and use after dispose', () => {
    const be = createReferenceBackend();
    const x = be.alloc('f32', 4);
    expect(() =>
      be.run('linear', { x, weight: x, bias: null, y: x, preAct: x, rows: 2, inFeatures: 2, outFeatures: 2, activation: 'relu' as never }),
    ).toThrow("linear: activation must be one of none, gelu_tanh, gelu_erf, got 'relu'");
    expect(() => be.run('softmax' as never, {} as never)).toThrow("reference backend: unknown op 'softmax'");
    expect(be.supports('softmax' as never, {} as never)).toEqual({ supported: false, reason: "'softmax' is not an op of the catalogue" });
    be.dispose();
    expect(() => be.alloc('f32', 1)).toThrow('reference backend: used after dispose()');
  });

  it('checks fill and copy ranges', () => {
    const be = createReferenceBackend();
    const x = be.alloc('f32', 4, 'buf');
    expect(() => be.run('fill', { x, offset: -1, size: 2, value: 0 })).toThrow('fill: offset must be a non-negative integer, got -1');
    expect(() => be.run('fill', { x: be.alloc('i32', 2), offset: 0, size: 2, value: 0.5 })).toThrow('fill: value 0.5 is not an i32');
    expect(() => be.run('copy', { src: x, srcOffset: 0, dst: x, dstOffset: 1, size: 2 })).toThrow('copy: source and destination ranges overlap');
  });
});
