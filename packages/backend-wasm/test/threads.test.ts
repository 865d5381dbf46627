// Results must not depend on the thread count: every op of the conformance suite's quick tier runs
// on a 1-thread and a 2-thread backend (same kernel build) with the same inputs, and every output
// must be bit-identical. This is what keeps training reproducible and resumable across machines
// with different core counts.
import { createReferenceBackend } from '@blankglm/backend-ref';
import { caseSeed, listCases } from '@blankglm/conformance';
import { OP_CATALOGUE, Rng, type Backend, type DType, type OpName, type StridedView, type Tensor } from '@blankglm/tensor';
import { afterAll, describe, expect, it } from 'vitest';
import { createWasmBackend } from '../dist/index.js';

type Host = Record<string, { dtype: DType; data: Float32Array | Int32Array | Uint8Array }>;

const one = createWasmBackend({ threads: 1 });
const two = createWasmBackend({ threads: 2 });
afterAll(() => {
  one.dispose();
  two.dispose();
});

function materialise(b: Backend, host: Host): Record<string, Tensor> {
  const out: Record<string, Tensor> = {};
  for (const [name, { dtype, data }] of Object.entries(host)) {
    out[name] = b.alloc(dtype, data.length, name);
    b.write(out[name]!, data);
  }
  return out;
}

/** Runs a case's op on `b` and returns the raw bits of every tensor it writes. */
function outputs(b: Backend, op: OpName, host: Host, args: (t: Record<string, Tensor>) => unknown): Record<string, Uint8Array> {
  const tensors = materialise(b, host);
  const a = args(tensors) as Record<string, Tensor | StridedView | null>;
  b.run(op, a as never);
  const out: Record<string, Uint8Array> = {};
  for (const name of OP_CATALOGUE[op].writes) {
    const target = a[name];
    if (!target) continue;
    const t = 'tensor' in target ? target.tensor : target;
    const data = b.read(t);
    out[name] = new Uint8Array(data.buffer, data.byteOffset, data.byteLength).slice();
  }
  for (const t of Object.values(tensors)) b.free(t);
  return out;
}

const byOp = new Map<OpName, ReturnType<typeof listCases>>();
for (const c of listCases({ tier: 'quick' })) byOp.set(c.op, [...(byOp.get(c.op) ?? []), c]);

describe('1 thread and 2 threads give bit-identical results', () => {
  it('uses the same kernel build on both', () => {
    expect(one.variant).toBe(two.variant);
    expect(two.threads).toBe(2);
  });
  for (const [op, cases] of byOp) {
    it(`${op} (${cases.length} cases)`, () => {
      for (const c of cases) {
        const inputs = c.build(new Rng(caseSeed(1, c.name)), 'f32');
        // Saved inputs (mean/rstd, preAct, lse, out) come from the reference, as in the suite.
        const ref = createReferenceBackend();
        const refTensors: Record<string, Tensor> = {};
        const dtypes: Record<string, DType> = {};
        for (const [name, init] of Object.entries(inputs.tensors)) {
          dtypes[name] = init.dtype === 'float' ? 'f32' : init.dtype;
          refTensors[name] = ref.alloc(dtypes[name]!, init.data.length);
          ref.write(refTensors[name]!, init.data);
        }
        for (const step of inputs.prepare ?? []) ref.run(step.op, step.args(refTensors) as never);
        const host: Host = {};
        for (const [name, t] of Object.entries(refTensors)) host[name] = { dtype: dtypes[name]!, data: ref.read(t) };
        ref.dispose();
        const a = outputs(one, c.op, host, inputs.args);
        const b = outputs(two, c.op, host, inputs.args);
        for (const name of Object.keys(a)) {
          const same = Buffer.compare(Buffer.from(a[name]!), Buffer.from(b[name]!)) === 0;
          expect(same, `${c.name}: output '${name}' differs between 1 and 2 threads`).toBe(true);
        }
      }
    });
  }
});

describe('matmul family at sizes where every thread gets work (rows, columns and vocabulary chunks split)', () => {
  function random(n: number, seed: number, scale = 1): Float32Array {
    const r = new Rng(seed);
    return Float32Array.from({ length: n }, () => (r.float() - 0.5) * scale);
  }
  function both(run: (b: typeof one) => Record<string, Float32Array>): void {
    const a = run(one);
    const b = run(two);
    for (const k of Object.keys(a)) expect(Buffer.compare(Buffer.from(a[k]!.buffer), Buffer.from(b[k]!.buffer)), `${k} differs`).toBe(0);
  }
  const put = (b: typeof one, data: Float32Array | Int32Array) => {
    const t = b.alloc(data instanceof Int32Array ? 'i32' : 'f32', data.length);
    b.write(t, data);
    return t;
  };

  it('linear + linearBackward (M=203, K=301, N=197, gelu_erf, bias)', () => {
    const [M, K, N] = [203, 301, 197];
    both((b) => {
      const x = put(b, random(M * K, 1));
      const w = put(b, random(N * K, 2, 0.2));
      const bias = put(b, random(N, 3));
      const y = b.alloc('f32', M * N);
      const pre = b.alloc('f32', M * N);
      b.run('linear', { x, weight: w, bias, y, preAct: pre, rows: M, inFeatures: K, outFeatures: N, activation: 'gelu_erf' });
      const dy = put(b, random(M * N, 4));
      const dx = put(b, random(M * K, 5));
      const dW = put(b, random(N * K, 6));
      const dB = put(b, random(N, 7));
      b.run('linearBackward', { dy, x, weight: w, preAct: pre, dx, dWeight: dW, dBias: dB, rows: M, inFeatures: K, outFeatures: N, activation: 'gelu_erf', accumulate: true });
      const out = { y: b.read(y), pre: b.read(pre), dx: b.read(dx), dW: b.read(dW), dB: b.read(dB) } as Record<string, Float32Array>;
      for (const t of [x, w, bias, y, pre, dy, dx, dW, dB]) b.free(t);
      return out;
    });
  });

  it('few-row linear and logits (generation shapes: 1 and 3 rows, columns split over threads)', () => {
    for (const [M, K, N] of [[1, 301, 1000], [3, 64, 5003]] as const) {
      both((b) => {
        const x = put(b, random(M * K, 13));
        const w = put(b, random(N * K, 14, 0.2));
        const bias = put(b, random(N, 15));
        const y = b.alloc('f32', M * N);
        const pre = b.alloc('f32', M * N);
        b.run('linear', { x, weight: w, bias, y, preAct: pre, rows: M, inFeatures: K, outFeatures: N, activation: 'gelu_tanh' });
        const logits = b.alloc('f32', M * N);
        b.run('logits', { hidden: x, wordEmb: w, out: logits, tokens: M, hiddenSize: K, vocab: N });
        const out = { y: b.read(y), pre: b.read(pre), logits: b.read(logits) } as Record<string, Float32Array>;
        for (const t of [x, w, bias, y, pre, logits]) b.free(t);
        return out;
      });
    }
  });

  it('crossEntropy + backward + logits (T=70, H=48, V=5000: several vocabulary chunks)', () => {
    const [T, H, V] = [70, 48, 5000];
    both((b) => {
      const hidden = put(b, random(T * H, 8));
      const emb = put(b, random(V * H, 9, 0.5));
      const tr = new Rng(10);
      const targets = put(b, Int32Array.from({ length: T }, () => tr.int(V)));
      const losses = b.alloc('f32', T);
      const lse = b.alloc('f32', T);
      b.run('crossEntropy', { hidden, wordEmb: emb, targets, losses, lse, tokens: T, hiddenSize: H, vocab: V, labelSmoothing: 0.1 });
      const weights = put(b, random(T, 11));
      const dH = b.alloc('f32', T * H);
      const dE = put(b, random(V * H, 12));
      b.run('crossEntropyBackward', { hidden, wordEmb: emb, targets, lse, weights, dHidden: dH, dWordEmb: dE, tokens: T, hiddenSize: H, vocab: V, labelSmoothing: 0.1 });
      const logits = b.alloc('f32', T * V);
      b.run('logits', { hidden, wordEmb: emb, out: logits, tokens: T, hiddenSize: H, vocab: V });
      const out = { losses: b.read(losses), lse: b.read(lse), dH: b.read(dH), dE: b.read(dE), logits: b.read(logits) } as Record<string, Float32Array>;
      for (const t of [hidden, emb, targets, losses, lse, weights, dH, dE, logits]) b.free(t);
      return out;
    });
  });
});
