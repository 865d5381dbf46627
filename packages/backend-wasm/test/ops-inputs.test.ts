// Bad data-dependent inputs of the non-matmul ops fail with the reference's messages before anything
// is written; and attention over a key range longer than the per-thread scratch still works.
import { createReferenceBackend } from '@blankglm/backend-ref';
import { Rng, type Backend, type OpArgs, type Tensor } from '@blankglm/tensor';
import { afterAll, describe, expect, it } from 'vitest';
import { createWasmBackend } from '../dist/index.js';

const wasm = createWasmBackend({ threads: 2 });
afterAll(() => wasm.dispose());

function tensorOf(be: Backend, dtype: 'f32' | 'i32', data: ArrayLike<number>): Tensor {
  const t = be.alloc(dtype, data.length);
  be.write(t as Tensor & { dtype: typeof dtype }, data);
  return t;
}

/** Expects `run` to throw `message` and `watched` to keep its contents. */
function expectRejected(watched: Tensor, run: () => void, message: RegExp): void {
  const before = wasm.read(watched);
  expect(run).toThrow(message);
  expect(wasm.read(watched)).toEqual(before);
}

describe('bad ids and key ranges', () => {
  const H = 8;
  const table = tensorOf(wasm, 'f32', Float32Array.from({ length: 5 * H }, (_, i) => i));
  const rows = tensorOf(wasm, 'f32', new Float32Array(4 * H).fill(7));

  it('embedding and embeddingBackward name the id and the table', () => {
    const good = tensorOf(wasm, 'i32', [0, 1, 2, 3]);
    const bad = tensorOf(wasm, 'i32', [0, 1, 5, 3]);
    const negative = tensorOf(wasm, 'i32', [0, -1, 2, 3]);
    const base = { wordEmb: table, posEmb: table, blockPosEmb: null, blockPositionIds: null, out: rows, tokens: 4, hiddenSize: H, vocab: 5, positions: 5 };
    expectRejected(rows, () => wasm.run('embedding', { ...base, inputIds: bad, positionIds: good }), /embedding: inputIds\[2\] = 5 is past the word embedding table \(5 rows\)/);
    expectRejected(rows, () => wasm.run('embedding', { ...base, inputIds: good, positionIds: negative }), /positionIds\[1\] = -1 is negative/);
    const grads = { dOut: rows, dWordEmb: table, dPosEmb: table, dBlockPosEmb: null, blockPositionIds: null, tokens: 4, hiddenSize: H, vocab: 5, positions: 5 };
    expectRejected(table, () => wasm.run('embeddingBackward', { ...grads, inputIds: good, positionIds: bad }), /embeddingBackward: positionIds\[2\] = 5 is past the position table/);
  });

  it('gatherRows and scatterAddRows check every index', () => {
    const bad = tensorOf(wasm, 'i32', [4, 0, 9, 1]);
    expectRejected(rows, () => wasm.run('gatherRows', { x: table, index: bad, out: rows, count: 4, rows: 5, width: H }), /gatherRows: index\[2\] = 9 is past x \(5 rows\)/);
    expectRejected(table, () => wasm.run('scatterAddRows', { dOut: rows, index: bad, dx: table, count: 4, rows: 5, width: H }), /scatterAddRows: index\[2\] = 9 is past dx \(5 rows\)/);
  });

  it('attention rejects empty, negative and out-of-range key ranges', () => {
    const L = 4;
    const view = { tensor: rows, offset: 0, rowStride: H, batchStride: L * H };
    const out = tensorOf(wasm, 'f32', new Float32Array(L * H).fill(3));
    const run = (start: number[], end: number[]) => () =>
      wasm.run('attention', {
        q: view, k: view, v: view, keyStart: tensorOf(wasm, 'i32', start), keyEnd: tensorOf(wasm, 'i32', end), out, lse: null,
        batch: 1, queries: L, keys: L, heads: 2, headDim: 4, scale: 0.5, dropout: { p: 0, seed: 0, stream: 0 },
      });
    expectRejected(out, run([0, 0, 0, 0], [1, 2, 5, 4]), /attention: keyEnd\[b=0, i=2\] = 5 is past the keys \(4\)/);
    expectRejected(out, run([0, 0, 2, 0], [1, 2, 2, 4]), /query \(b=0, i=2\) has an empty key range \[2, 2\)/);
    expectRejected(out, run([0, -3, 0, 0], [1, 2, 3, 4]), /keyStart\[b=0, i=1\] = -3 is negative/);
  });
});

describe('attention over more keys than the per-thread scratch holds', () => {
  it('matches the reference (2 queries × 132,000 keys: Σ over a host temporary)', () => {
    const Lq = 2;
    const Lk = 132_000; // pass 1 keeps P and dP of two queries: 4·Lk floats > 2 MiB of scratch
    const D = 4;
    const rng = new Rng(11);
    const normal = (n: number) => Float32Array.from({ length: n }, () => rng.normal(0, 1));
    const host = { q: normal(Lq * D), k: normal(Lk * D), v: normal(Lk * D), dOut: normal(Lq * D) };
    const results = [wasm, createReferenceBackend()].map((be) => {
      const t = Object.fromEntries(Object.entries(host).map(([n, d]) => [n, tensorOf(be, 'f32', d)])) as Record<string, Tensor>;
      const view = (x: Tensor, rowsPerBatch: number) => ({ tensor: x, offset: 0, rowStride: D, batchStride: rowsPerBatch * D });
      const args: OpArgs['attention'] = {
        q: view(t.q!, Lq), k: view(t.k!, Lk), v: view(t.v!, Lk), keyStart: tensorOf(be, 'i32', [0, 1000]), keyEnd: tensorOf(be, 'i32', [Lk, Lk - 5]),
        out: be.alloc('f32', Lq * D), lse: be.alloc('f32', Lq), batch: 1, queries: Lq, keys: Lk, heads: 1, headDim: D, scale: 0.5, dropout: { p: 0.1, seed: 5, stream: 9 },
      };
      be.run('attention', args);
      const grads = { dq: view(be.alloc('f32', Lq * D), Lq), dk: view(be.alloc('f32', Lk * D), Lk), dv: view(be.alloc('f32', Lk * D), Lk) };
      be.run('attentionBackward', { ...args, lse: args.lse!, dOut: t.dOut!, ...grads });
      return [be.read(args.out), be.read(args.lse!), be.read(grads.dq.tensor), be.read(grads.dk.tensor), be.read(grads.dv.tensor)] as Float32Array[];
    });
    results[0]!.forEach((got, o) => {
      const want = results[1]![o]!;
      let err = 0;
      let energy = 0;
      for (let i = 0; i < want.length; i++) {
        err += (got[i]! - want[i]!) ** 2;
        energy += want[i]! ** 2;
      }
      expect(err / energy, `output ${['out', 'lse', 'dq', 'dk', 'dv'][o]}`).toBeLessThan(5e-4);
    });
  });
});
