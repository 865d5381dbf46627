// Thread-count independence of the non-matmul ops: every output is bit-identical on 1, 2 and 3
// threads (3 gives uneven splits). Sizes are chosen so each op really splits its work: rows, key
// ranges, destination rows, Σx² blocks and the layer-norm partial-sum blocks all cross threads.
import { glmKeyRanges, Rng, type OpArgs, type OpName, type Tensor } from '@blankglm/tensor';
import { afterAll, describe, expect, it } from 'vitest';
import { createWasmBackend, resolveVariant, type WasmBackend } from '../dist/index.js';

type Init = { dtype: 'f32' | 'i32'; data: Float32Array | Int32Array };

interface Spec<K extends OpName> {
  op: K;
  tensors: Record<string, Init>;
  args: (t: Record<string, Tensor>) => OpArgs[K];
  outputs: string[];
  /** Forward ops run first on the same backend (saved statistics for a backward op). */
  prepare?: Array<{ op: OpName; args: (t: Record<string, Tensor>) => OpArgs[OpName] }>;
}

const rng = new Rng('ops-threads');
const normal = (n: number, std = 1, mean = 0): Float32Array => Float32Array.from({ length: n }, () => rng.normal(mean, std));
const f = (data: Float32Array): Init => ({ dtype: 'f32', data });
const ids = (n: number, bound: number): Init => ({ dtype: 'i32', data: Int32Array.from({ length: n }, () => rng.int(bound)) });

// The variant `auto` picks for several threads, forced for every thread count so only the split changes.
const variant = resolveVariant({ threads: 2 }).variant;
const backends = new Map<number, WasmBackend>();
function backendWith(threads: number): WasmBackend {
  let be = backends.get(threads);
  if (!be) {
    be = createWasmBackend({ threads, variant });
    backends.set(threads, be);
  }
  return be;
}
afterAll(() => {
  for (const be of backends.values()) be.dispose();
});

function runOn<K extends OpName>(be: WasmBackend, spec: Spec<K>): Uint8Array[] {
  const t: Record<string, Tensor> = {};
  for (const [name, init] of Object.entries(spec.tensors)) {
    t[name] = be.alloc(init.dtype, init.data.length, name);
    be.write(t[name] as Tensor & { dtype: typeof init.dtype }, init.data);
  }
  for (const p of spec.prepare ?? []) be.run(p.op, p.args(t) as never);
  be.run(spec.op, spec.args(t));
  const out = spec.outputs.map((name) => {
    const data = be.read(t[name]!);
    return new Uint8Array(data.buffer, data.byteOffset, data.byteLength).slice();
  });
  for (const tensor of Object.values(t)) be.free(tensor);
  expect(be.checkGuards()).toEqual([]);
  return out;
}

function expectSameOnAllThreadCounts<K extends OpName>(spec: Spec<K>): void {
  const single = runOn(backendWith(1), spec);
  for (const threads of [2, 3]) {
    const multi = runOn(backendWith(threads), spec);
    spec.outputs.forEach((name, o) => {
      const same = Buffer.compare(Buffer.from(single[o]!), Buffer.from(multi[o]!)) === 0;
      expect(same, `${spec.op}: output '${name}' differs between 1 and ${threads} threads`).toBe(true);
    });
  }
}

describe(`wasm ops give the same bits on 1, 2 and 3 threads (${variant} build)`, () => {
  it('layerNorm and layerNormBackward (2048 × 768: 64 partial-sum blocks)', () => {
    const R = 2048;
    const H = 768;
    const tensors = {
      x: f(normal(R * H, 1, 0.3)), gamma: f(normal(H, 0.2, 1)), beta: f(normal(H, 0.2)),
      y: f(new Float32Array(R * H)), mean: f(new Float32Array(R)), rstd: f(new Float32Array(R)),
      dy: f(normal(R * H)), dx: f(normal(R * H)), dGamma: f(normal(H)), dBeta: f(normal(H)),
    };
    const forward = (t: Record<string, Tensor>): OpArgs['layerNorm'] => ({ x: t.x!, gamma: t.gamma!, beta: t.beta!, y: t.y!, mean: t.mean!, rstd: t.rstd!, rows: R, hiddenSize: H, eps: 1e-5 });
    expectSameOnAllThreadCounts({ op: 'layerNorm', tensors, args: forward, outputs: ['y', 'mean', 'rstd'] });
    expectSameOnAllThreadCounts({
      op: 'layerNormBackward',
      tensors,
      prepare: [{ op: 'layerNorm', args: forward as never }],
      args: (t) => ({ dy: t.dy!, x: t.x!, gamma: t.gamma!, mean: t.mean!, rstd: t.rstd!, dx: t.dx!, dGamma: t.dGamma!, dBeta: t.dBeta!, rows: R, hiddenSize: H, accumulate: true }),
      outputs: ['dx', 'dGamma', 'dBeta'],
    });
  });

  it('attention and attentionBackward (GLM masks, fused QKV views, dropout 0.1)', () => {
    const B = 2;
    const L = 160;
    const heads = 4;
    const D = 32;
    const W = heads * D;
    const ranges = glmKeyRanges({ batchSize: B, seqLength: L, sep: Int32Array.from([40, 121]), numSegments: 1 });
    const tensors = {
      qkv: f(normal(B * L * 3 * W, 1.5)), dqkv: f(normal(B * L * 3 * W)), dOut: f(normal(B * L * W)),
      keyStart: { dtype: 'i32', data: ranges.keyStart } as Init, keyEnd: { dtype: 'i32', data: ranges.keyEnd } as Init,
      out: f(new Float32Array(B * L * W)), lse: f(new Float32Array(B * heads * L)),
    };
    const view = (t: Tensor, third: number) => ({ tensor: t, offset: third * W, rowStride: 3 * W, batchStride: L * 3 * W });
    const forward = (t: Record<string, Tensor>): OpArgs['attention'] => ({
      q: view(t.qkv!, 0), k: view(t.qkv!, 1), v: view(t.qkv!, 2), keyStart: t.keyStart!, keyEnd: t.keyEnd!, out: t.out!, lse: t.lse!,
      batch: B, queries: L, keys: L, heads, headDim: D, scale: 1 / Math.sqrt(D), dropout: { p: 0.1, seed: 0x9e3779b9, stream: 7 },
    });
    expectSameOnAllThreadCounts({ op: 'attention', tensors, args: forward, outputs: ['out', 'lse'] });
    expectSameOnAllThreadCounts({
      op: 'attentionBackward',
      tensors,
      prepare: [{ op: 'attention', args: forward as never }],
      args: (t) => ({ ...forward(t), lse: t.lse!, dOut: t.dOut!, dq: view(t.dqkv!, 0), dk: view(t.dqkv!, 1), dv: view(t.dqkv!, 2) }),
      outputs: ['dqkv'],
    });
  });

  it('embedding and embeddingBackward (repeated ids)', () => {
    const T = 600;
    const H = 96;
    const V = 50;
    const P = 64;
    const tensors = {
      wordEmb: f(normal(V * H)), posEmb: f(normal(P * H)), blockPosEmb: f(normal(P * H)),
      inputIds: ids(T, V), positionIds: ids(T, P), blockPositionIds: ids(T, P),
      out: f(new Float32Array(T * H)), dOut: f(normal(T * H)),
      dWordEmb: f(normal(V * H)), dPosEmb: f(normal(P * H)), dBlockPosEmb: f(normal(P * H)),
    };
    expectSameOnAllThreadCounts({
      op: 'embedding',
      tensors,
      args: (t) => ({
        wordEmb: t.wordEmb!, posEmb: t.posEmb!, blockPosEmb: t.blockPosEmb!, inputIds: t.inputIds!, positionIds: t.positionIds!,
        blockPositionIds: t.blockPositionIds!, out: t.out!, tokens: T, hiddenSize: H, vocab: V, positions: P,
      }),
      outputs: ['out'],
    });
    expectSameOnAllThreadCounts({
      op: 'embeddingBackward',
      tensors,
      args: (t) => ({
        dOut: t.dOut!, inputIds: t.inputIds!, positionIds: t.positionIds!, blockPositionIds: t.blockPositionIds!,
        dWordEmb: t.dWordEmb!, dPosEmb: t.dPosEmb!, dBlockPosEmb: t.dBlockPosEmb!, tokens: T, hiddenSize: H, vocab: V, positions: P,
      }),
      outputs: ['dWordEmb', 'dPosEmb', 'dBlockPosEmb'],
    });
  });

  it('gatherRows and scatterAddRows (repeated indices)', () => {
    const count = 700;
    const rows = 90;
    const width = 100;
    const tensors = { x: f(normal(rows * width)), index: ids(count, rows), out: f(new Float32Array(count * width)), dOut: f(normal(count * width)), dx: f(normal(rows * width)) };
    expectSameOnAllThreadCounts({ op: 'gatherRows', tensors, args: (t) => ({ x: t.x!, index: t.index!, out: t.out!, count, rows, width }), outputs: ['out'] });
    expectSameOnAllThreadCounts({ op: 'scatterAddRows', tensors, args: (t) => ({ dOut: t.dOut!, index: t.index!, dx: t.dx!, count, rows, width }), outputs: ['dx'] });
  });

  it('dropoutAdd, dropoutBackward, scale, adamw and sumSquares (odd sizes)', () => {
    const n = 200_003;
    const tensors = { x: f(normal(n)), residual: f(normal(n)), out: f(new Float32Array(n)), dx: f(normal(n)), m: f(normal(n, 1e-3)), v: f(Float32Array.from({ length: n }, () => rng.float() * 1e-6)), sums: f(new Float32Array(4)) };
    const dropout = { p: 0.3, seed: 123456789, stream: 4000000000 };
    expectSameOnAllThreadCounts({ op: 'dropoutAdd', tensors, args: (t) => ({ x: t.x!, residual: t.residual!, out: t.out!, size: n, dropout }), outputs: ['out'] });
    expectSameOnAllThreadCounts({ op: 'dropoutBackward', tensors, args: (t) => ({ dy: t.x!, dx: t.dx!, size: n, dropout, accumulate: true }), outputs: ['dx'] });
    expectSameOnAllThreadCounts({ op: 'scale', tensors, args: (t) => ({ x: t.x!, size: n, factor: 0.37 }), outputs: ['x'] });
    expectSameOnAllThreadCounts({
      op: 'adamw',
      tensors,
      args: (t) => ({ param: t.residual!, grad: t.x!, m: t.m!, v: t.v!, size: n, lr: 1e-4, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01, step: 17, gradScale: 0.5 }),
      outputs: ['residual', 'm', 'v'],
    });
    expectSameOnAllThreadCounts({ op: 'sumSquares', tensors, args: (t) => ({ x: t.x!, size: n, out: t.sums!, outIndex: 2 }), outputs: ['sums'] });
  });
});
