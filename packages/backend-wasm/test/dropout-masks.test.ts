// Dropout masks are the reference's bit for bit: the AssemblyScript port of counterHash32 (four-lane
// and scalar paths), the activation dropout of dropoutAdd/dropoutBackward, and the attention
// dropout's indexing (stream = dropout.stream + b·heads + h, element = i·keys + j) in the forward
// pass and in the backward's key pass.
import { readFileSync } from 'node:fs';
import { createReferenceBackend } from '@blankglm/backend-ref';
import { counterHash32, glmKeyRanges, type Backend, type OpArgs, type Tensor } from '@blankglm/tensor';
import { afterAll, describe, expect, it } from 'vitest';
import { createWasmBackend, resolveVariant } from '../dist/index.js';

const variant = resolveVariant({ threads: 2 }).variant;
const wasm = createWasmBackend({ threads: 2, variant });
afterAll(() => wasm.dispose());

describe('counterHash32 in AssemblyScript', () => {
  // The kernel module alone, on a plain memory: counterHashRange writes hashes for [start, end).
  for (const file of ['kernels.simd.wasm', 'kernels.relaxed.wasm']) {
    it(`${file}: equals counterHash32 for every lane and tail position`, () => {
      const shared = file !== 'kernels.simd.wasm';
      const memory = new WebAssembly.Memory({ initial: 32, maximum: 65536, ...(shared ? { shared: true } : {}) });
      const module = new WebAssembly.Module(readFileSync(new URL(`../dist/${file}`, import.meta.url)));
      const kernels = new WebAssembly.Instance(module, { env: { memory, abort: () => {} } }).exports as Record<string, (...a: number[]) => number>;
      const out = kernels.heapBase!() + 64;
      const seeds = [0, 1, 0x9e3779b9, 0x80000000, 0xffffffff];
      const streams = [0, 1, 65535, 0x7fffffff, 0xfffffffe];
      const starts = [0, 1, 4093, 2 ** 31 - 515, 2 ** 32 - 1029]; // the last two cross 2^31 and wrap past 2^32
      for (const seed of seeds) {
        for (const stream of streams) {
          for (const start of starts) {
            const n = 1030; // not a multiple of 4: the scalar tail runs too
            kernels.counterHashRange!(out, seed | 0, stream | 0, start | 0, n);
            const got = new Uint32Array(memory.buffer, out, n);
            for (let e = 0; e < n; e++) {
              const index = (start + e) >>> 0;
              if (got[e] !== counterHash32(seed, stream, index)) {
                expect.fail(`counterHash32(${seed}, ${stream}, ${index}): wasm ${got[e]}, reference ${counterHash32(seed, stream, index)}`);
              }
            }
          }
        }
      }
    });
  }
});

function tensorOf(be: Backend, dtype: 'f32' | 'i32', data: ArrayLike<number>): Tensor {
  const t = be.alloc(dtype, data.length);
  be.write(t as Tensor & { dtype: typeof dtype }, data);
  return t;
}

describe('dropoutAdd and dropoutBackward masks', () => {
  it('keep exactly the elements the reference keeps (x = 1, so the output is the mask)', () => {
    const ref = createReferenceBackend();
    for (const [p, seed, stream] of [[0.1, 7, 0], [0.5, 0xdeadbeef, 4_000_000_000], [0.9, 2 ** 31, 12345]] as const) {
      const n = 4099;
      const outputs = [wasm, ref].map((be) => {
        const x = tensorOf(be, 'f32', new Float32Array(n).fill(1));
        const out = be.alloc('f32', n);
        const dx = be.alloc('f32', n);
        be.run('dropoutAdd', { x, residual: null, out, size: n, dropout: { p, seed, stream } });
        be.run('dropoutBackward', { dy: x, dx, size: n, dropout: { p, seed, stream }, accumulate: false });
        const r = [be.read(out), be.read(dx)];
        for (const t of [x, out, dx]) be.free(t);
        return r;
      });
      const kept = outputs[0]![0]!.filter((v) => v !== 0).length;
      expect(Math.abs(kept / n - (1 - p))).toBeLessThan(0.03);
      expect(outputs[0]![0]).toEqual(outputs[1]![0]);
      expect(outputs[0]![1]).toEqual(outputs[1]![1]);
    }
    ref.dispose();
  });
});

describe('attention dropout indexing', () => {
  // q = k = 0 makes every visible key equally likely; one-hot values (D = L) make out[b, i, h, j]
  // the (dropped-out) probability of key j, and one-hot dOut makes dv[b, j, h, i] that of query i.
  const B = 2;
  const heads = 3;
  const L = 24;
  const D = L;
  const W = heads * D;
  const p = 0.5;
  const dropout = { p, seed: 0xc0ffee, stream: 0xfffffffe }; // the stream wraps past 2^32 for b, h > 0
  const ranges = glmKeyRanges({ batchSize: B, seqLength: L, sep: Int32Array.from([9, 17]), numSegments: 1 });
  const oneHot = new Float32Array(B * L * W);
  for (let b = 0; b < B; b++) for (let t = 0; t < L; t++) for (let h = 0; h < heads; h++) oneHot[(b * L + t) * W + h * D + t] = 1;
  const dropped = (b: number, h: number, i: number, j: number): boolean =>
    counterHash32(dropout.seed, (dropout.stream + b * heads + h) >>> 0, i * L + j) / 4294967296 < p;

  it('forward and backward drop exactly counterHash32(seed, stream + b·heads + h, i·L + j) < p', () => {
    const contiguous = (t: Tensor) => ({ tensor: t, offset: 0, rowStride: W, batchStride: L * W });
    const zeros = tensorOf(wasm, 'f32', new Float32Array(B * L * W));
    const values = tensorOf(wasm, 'f32', oneHot);
    const keyStart = tensorOf(wasm, 'i32', ranges.keyStart);
    const keyEnd = tensorOf(wasm, 'i32', ranges.keyEnd);
    const out = wasm.alloc('f32', B * L * W);
    const lse = wasm.alloc('f32', B * heads * L);
    const dq = wasm.alloc('f32', B * L * W);
    const dk = wasm.alloc('f32', B * L * W);
    const dv = wasm.alloc('f32', B * L * W);
    const args: OpArgs['attention'] = {
      q: contiguous(zeros), k: contiguous(zeros), v: contiguous(values), keyStart, keyEnd, out, lse,
      batch: B, queries: L, keys: L, heads, headDim: D, scale: 1 / Math.sqrt(D), dropout,
    };
    wasm.run('attention', args);
    wasm.run('attentionBackward', { ...args, lse, dOut: values, dq: contiguous(dq), dk: contiguous(dk), dv: contiguous(dv) });
    const probs = wasm.read(out);
    const dvs = wasm.read(dv);
    let checked = 0;
    for (let b = 0; b < B; b++) {
      for (let h = 0; h < heads; h++) {
        for (let i = 0; i < L; i++) {
          const s = ranges.keyStart[b * L + i]!;
          const e = ranges.keyEnd[b * L + i]!;
          for (let j = 0; j < L; j++) {
            const visible = j >= s && j < e;
            const expected = visible && !dropped(b, h, i, j) ? 1 / (1 - p) / (e - s) : 0;
            const got = probs[(b * L + i) * W + h * D + j]!;
            const gotBackward = dvs[(b * L + j) * W + h * D + i]!;
            for (const [what, v] of [['out', got], ['dv', gotBackward]] as const) {
              if (expected === 0 ? v !== 0 : Math.abs(v - expected) > 1e-6 * expected) {
                expect.fail(`${what} for (b=${b}, h=${h}, i=${i}, j=${j}): got ${v}, expected ${expected}`);
              }
            }
            checked++;
          }
        }
      }
    }
    expect(checked).toBe(B * heads * L * L);
    for (const t of [zeros, values, keyStart, keyEnd, out, lse, dq, dk, dv]) wasm.free(t);
  });
});
