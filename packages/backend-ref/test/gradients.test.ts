// Finite-difference checks of every backward op of the reference backend. Each case runs the
// forward op(s) through the backend, defines loss = Σ w ⊙ output with fixed random w, runs the
// backward op with dOut = w, and compares against central differences (step 1e-2 on O(1)
// inputs: truncation ~1e-5, f32 storage noise ~1e-5 relative).
import { glmKeyRanges, type Activation, type DropoutAttrs, type StridedView, type Tensor } from '@blankglm/tensor';
import { describe, expect, it } from 'vitest';
import { createReferenceBackend, type ReferenceBackend } from '../src/index.js';
import { finiteDifferences, randn, rng, upload, weightedSum, type GradientReport } from './helpers.js';

const TOLERANCE = 5e-4;

function expectGradientsMatch(reports: GradientReport[]): void {
  if (process.env.SHOW_FD) console.log(reports.map((r) => `${r.name}: ${r.error.toExponential(2)} (scale ${r.scale.toFixed(2)})`).join('; ')); // SHOW_FD=1 prints each check
  for (const r of reports) {
    expect(r.scale, `${r.name}: analytic gradient is all zero`).toBeGreaterThan(1e-3);
    expect(r.error, `${r.name}: worst element ${r.worstIndex}`).toBeLessThan(TOLERANCE);
  }
}

function read64(be: ReferenceBackend, t: Tensor): Float64Array {
  return Float64Array.from(be.read(t));
}

describe('layerNormBackward', () => {
  it('matches finite differences for x, gamma and beta', () => {
    const be = createReferenceBackend();
    const r = rng(1);
    const R = 3;
    const H = 7;
    const xs = randn(r, R * H);
    for (let h = 0; h < H; h++) xs[H + h] = xs[H + h]! * 4 + 2; // a row with a large mean and spread
    const x = upload(be, 'f32', xs, 'x');
    const gamma = upload(be, 'f32', randn(r, H, 0.5).map((g) => 1 + g), 'gamma');
    const beta = upload(be, 'f32', randn(r, H), 'beta');
    const y = be.alloc('f32', R * H);
    const mean = be.alloc('f32', R);
    const rstd = be.alloc('f32', R);
    const w = randn(r, R * H);
    const forward = (): void => be.run('layerNorm', { x, gamma, beta, y, mean, rstd, rows: R, hiddenSize: H, eps: 1e-5 });
    forward();
    const dy = upload(be, 'f32', w);
    const dx = be.alloc('f32', R * H);
    const dGamma = be.alloc('f32', H);
    const dBeta = be.alloc('f32', H);
    be.run('layerNormBackward', { dy, x, gamma, mean, rstd, dx, dGamma, dBeta, rows: R, hiddenSize: H, accumulate: false });
    const loss = (): number => {
      forward();
      return weightedSum(be, y, w);
    };
    expectGradientsMatch(
      finiteDifferences(be, loss, [
        { name: 'x', tensor: x, analytic: read64(be, dx) },
        { name: 'gamma', tensor: gamma, analytic: read64(be, dGamma) },
        { name: 'beta', tensor: beta, analytic: read64(be, dBeta) },
      ]),
    );
  });
});

describe('linearBackward', () => {
  it.each<Activation>(['none', 'gelu_tanh', 'gelu_erf'])('matches finite differences with activation %s', (activation) => {
    const be = createReferenceBackend();
    const r = rng(2);
    const [M, K, N] = [3, 4, 5];
    const x = upload(be, 'f32', randn(r, M * K), 'x');
    const weight = upload(be, 'f32', randn(r, N * K, 0.8), 'weight');
    const bias = upload(be, 'f32', randn(r, N), 'bias');
    const y = be.alloc('f32', M * N);
    const preAct = be.alloc('f32', M * N);
    const w = randn(r, M * N);
    const forward = (): void =>
      be.run('linear', { x, weight, bias, y, preAct, rows: M, inFeatures: K, outFeatures: N, activation });
    forward();
    const dy = upload(be, 'f32', w);
    const dx = be.alloc('f32', M * K);
    const dWeight = be.alloc('f32', N * K);
    const dBias = be.alloc('f32', N);
    be.run('linearBackward', { dy, x, weight, preAct, dx, dWeight, dBias, rows: M, inFeatures: K, outFeatures: N, activation, accumulate: false });
    const loss = (): number => {
      forward();
      return weightedSum(be, y, w);
    };
    expectGradientsMatch(
      finiteDifferences(be, loss, [
        { name: 'x', tensor: x, analytic: read64(be, dx) },
        { name: 'weight', tensor: weight, analytic: read64(be, dWeight) },
        { name: 'bias', tensor: bias, analytic: read64(be, dBias) },
      ]),
    );
  });
});

interface AttentionCase {
  name: string;
  batch: number;
  queries: number;
  keys: number;
  heads: number;
  headDim: number;
  keyStart: Int32Array;
  keyEnd: Int32Array;
  /** Builds the q/k/v views over freshly allocated random tensors, and matching gradient views. */
  layout: 'fused-qkv' | 'separate' | 'kv-cache';
  dropout: DropoutAttrs;
}

const NO_DROPOUT: DropoutAttrs = { p: 0, seed: 0, stream: 0 };

/** Rows with the separator at 1, in the middle and at L−1 (GLM Part A / Part B). */
function prefixMaskCase(dropout: DropoutAttrs): AttentionCase {
  const L = 7;
  const ranges = glmKeyRanges({ batchSize: 3, seqLength: L, sep: Int32Array.from([1, 3, L - 1]), numSegments: 1 });
  return { name: `GLM prefix mask, sep 1/3/${L - 1}, p=${dropout.p}`, batch: 3, queries: L, keys: L, heads: 2, headDim: 3, ...ranges, layout: 'fused-qkv', dropout };
}

/** Two packed samples and a padding token in one row. */
function packedCase(): AttentionCase {
  const L = 9;
  const ranges = glmKeyRanges({
    batchSize: 1,
    seqLength: L,
    sep: Int32Array.from([2, 5]),
    numSegments: 2,
    segmentIds: Int32Array.from([0, 0, 0, 0, 1, 1, 1, 1, -1]),
  });
  return { name: 'packed segments + padding', batch: 1, queries: L, keys: L, heads: 2, headDim: 4, ...ranges, layout: 'separate', dropout: NO_DROPOUT };
}

/** Two new queries against a cache of 5 keys (prefix of 2 bidirectional, then causal). */
function kvCacheCase(): AttentionCase {
  const B = 2;
  const Lq = 2;
  const Lk = 5;
  const keyStart = new Int32Array(B * Lq);
  const keyEnd = Int32Array.from({ length: B * Lq }, (_, o) => Lk - Lq + (o % Lq) + 1);
  return { name: 'KV-cache layout (q separate, k/v strided in a cache)', batch: B, queries: Lq, keys: Lk, heads: 2, headDim: 3, keyStart, keyEnd, layout: 'kv-cache', dropout: { p: 0.2, seed: 7, stream: 3 } };
}

/** The operand tensors and views of one case; gradient views share the layout of their inputs. */
function attentionOperands(be: ReferenceBackend, c: AttentionCase, seed: number) {
  const r = rng(seed);
  const W = c.heads * c.headDim;
  const B = c.batch;
  if (c.layout === 'fused-qkv') {
    const L = c.queries;
    const qkv = upload(be, 'f32', randn(r, B * L * 3 * W), 'qkv'); // [B, L, 3W]
    const dqkv = be.alloc('f32', B * L * 3 * W, 'dqkv');
    const view = (t: Tensor, third: number): StridedView => ({ tensor: t, offset: third * W, rowStride: 3 * W, batchStride: L * 3 * W });
    return { inputs: [{ name: 'qkv', tensor: qkv, grad: dqkv }], q: view(qkv, 0), k: view(qkv, 1), v: view(qkv, 2), dq: view(dqkv, 0), dk: view(dqkv, 1), dv: view(dqkv, 2) };
  }
  if (c.layout === 'separate') {
    const contiguous = (t: Tensor, rows: number): StridedView => ({ tensor: t, offset: 0, rowStride: W, batchStride: rows * W });
    const q = upload(be, 'f32', randn(r, B * c.queries * W), 'q');
    const k = upload(be, 'f32', randn(r, B * c.keys * W), 'k');
    const v = upload(be, 'f32', randn(r, B * c.keys * W), 'v');
    const dq = be.alloc('f32', q.size);
    const dk = be.alloc('f32', k.size);
    const dv = be.alloc('f32', v.size);
    return {
      inputs: [
        { name: 'q', tensor: q, grad: dq },
        { name: 'k', tensor: k, grad: dk },
        { name: 'v', tensor: v, grad: dv },
      ],
      q: contiguous(q, c.queries),
      k: contiguous(k, c.keys),
      v: contiguous(v, c.keys),
      dq: contiguous(dq, c.queries),
      dk: contiguous(dk, c.keys),
      dv: contiguous(dv, c.keys),
    };
  }
  // KV cache: [B, capacity, 2W] holding k | v per row, with spare capacity past `keys`.
  const capacity = c.keys + 2;
  const q = upload(be, 'f32', randn(r, B * c.queries * W), 'q');
  const cache = upload(be, 'f32', randn(r, B * capacity * 2 * W), 'kvCache');
  const dq = be.alloc('f32', q.size);
  const dCache = be.alloc('f32', cache.size);
  const cacheView = (t: Tensor, half: number): StridedView => ({ tensor: t, offset: half * W, rowStride: 2 * W, batchStride: capacity * 2 * W });
  const qView = (t: Tensor): StridedView => ({ tensor: t, offset: 0, rowStride: W, batchStride: c.queries * W });
  return {
    inputs: [
      { name: 'q', tensor: q, grad: dq },
      { name: 'kvCache', tensor: cache, grad: dCache },
    ],
    q: qView(q),
    k: cacheView(cache, 0),
    v: cacheView(cache, 1),
    dq: qView(dq),
    dk: cacheView(dCache, 0),
    dv: cacheView(dCache, 1),
  };
}

describe('attentionBackward', () => {
  const cases = [prefixMaskCase(NO_DROPOUT), prefixMaskCase({ p: 0.25, seed: 99, stream: 5 }), packedCase(), kvCacheCase()];
  it.each(cases.map((c) => [c.name, c] as const))('matches finite differences: %s', (_name, c) => {
    const be = createReferenceBackend();
    const o = attentionOperands(be, c, 3);
    const W = c.heads * c.headDim;
    const keyStart = upload(be, 'i32', c.keyStart);
    const keyEnd = upload(be, 'i32', c.keyEnd);
    const out = be.alloc('f32', c.batch * c.queries * W);
    const lse = be.alloc('f32', c.batch * c.heads * c.queries);
    const shape = { batch: c.batch, queries: c.queries, keys: c.keys, heads: c.heads, headDim: c.headDim, scale: 1 / Math.sqrt(c.headDim), dropout: c.dropout };
    const forward = (): void => be.run('attention', { q: o.q, k: o.k, v: o.v, keyStart, keyEnd, out, lse, ...shape });
    forward();
    const w = randn(rng(4), out.size);
    const dOut = upload(be, 'f32', w);
    be.run('attentionBackward', { dOut, q: o.q, k: o.k, v: o.v, out, lse, keyStart, keyEnd, dq: o.dq, dk: o.dk, dv: o.dv, ...shape });
    const loss = (): number => {
      forward();
      return weightedSum(be, out, w);
    };
    expectGradientsMatch(finiteDifferences(be, loss, o.inputs.map((i) => ({ name: i.name, tensor: i.tensor, analytic: read64(be, i.grad) }))));
    expect(be.checkGuards()).toEqual([]);
  });
});

describe('embeddingBackward', () => {
  it('matches finite differences for all three tables, with repeated ids', () => {
    const be = createReferenceBackend();
    const r = rng(5);
    const [T, H, V, P] = [6, 3, 5, 4];
    const wordEmb = upload(be, 'f32', randn(r, V * H), 'wordEmb');
    const posEmb = upload(be, 'f32', randn(r, P * H), 'posEmb');
    const blockPosEmb = upload(be, 'f32', randn(r, P * H), 'blockPosEmb');
    const inputIds = upload(be, 'i32', [1, 4, 1, 0, 1, 3]);
    const positionIds = upload(be, 'i32', [0, 1, 2, 3, 1, 1]);
    const blockPositionIds = upload(be, 'i32', [0, 0, 0, 1, 2, 3]);
    const out = be.alloc('f32', T * H);
    const dims = { tokens: T, hiddenSize: H, vocab: V, positions: P };
    const w = randn(r, T * H);
    const forward = (): void => be.run('embedding', { wordEmb, posEmb, blockPosEmb, inputIds, positionIds, blockPositionIds, out, ...dims });
    const dWordEmb = be.alloc('f32', V * H);
    const dPosEmb = be.alloc('f32', P * H);
    const dBlockPosEmb = be.alloc('f32', P * H);
    be.run('embeddingBackward', { dOut: upload(be, 'f32', w), inputIds, positionIds, blockPositionIds, dWordEmb, dPosEmb, dBlockPosEmb, ...dims });
    const loss = (): number => {
      forward();
      return weightedSum(be, out, w);
    };
    expectGradientsMatch(
      finiteDifferences(be, loss, [
        { name: 'wordEmb', tensor: wordEmb, analytic: read64(be, dWordEmb) },
        { name: 'posEmb', tensor: posEmb, analytic: read64(be, dPosEmb) },
        { name: 'blockPosEmb', tensor: blockPosEmb, analytic: read64(be, dBlockPosEmb) },
      ]),
    );
    // Row 2 of the word table is never used: its gradient is exactly zero.
    expect(Array.from(be.read(dWordEmb, 2 * H, H))).toEqual([0, 0, 0]);
  });
});

describe('crossEntropyBackward', () => {
  it.each([0, 0.1])('matches finite differences for hidden and the tied embedding (label smoothing %s)', (labelSmoothing) => {
    const be = createReferenceBackend();
    const r = rng(6);
    const [T, H, V] = [4, 5, 11];
    const hidden = upload(be, 'f32', randn(r, T * H), 'hidden');
    const wordEmb = upload(be, 'f32', randn(r, V * H), 'wordEmb');
    const targets = upload(be, 'i32', [3, 10, 0, 3]);
    const lossWeights = [0.5, 1, 0, 0.25]; // a zero weight: that row contributes nothing
    const weights = upload(be, 'f32', lossWeights);
    const losses = be.alloc('f32', T);
    const lse = be.alloc('f32', T);
    const dims = { tokens: T, hiddenSize: H, vocab: V, labelSmoothing };
    const forward = (): void => be.run('crossEntropy', { hidden, wordEmb, targets, losses, lse, ...dims });
    forward();
    const dHidden = be.alloc('f32', T * H);
    const dWordEmb = be.alloc('f32', V * H);
    be.run('crossEntropyBackward', { hidden, wordEmb, targets, lse, weights, dHidden, dWordEmb, ...dims });
    const loss = (): number => {
      forward();
      return weightedSum(be, losses, lossWeights);
    };
    expectGradientsMatch(
      finiteDifferences(be, loss, [
        { name: 'hidden', tensor: hidden, analytic: read64(be, dHidden) },
        { name: 'wordEmb', tensor: wordEmb, analytic: read64(be, dWordEmb) },
      ]),
    );
    expect(Array.from(be.read(dHidden, 2 * H, H))).toEqual([0, 0, 0, 0, 0]);
  });
});

describe('dropoutBackward', () => {
  it('matches finite differences of dropoutAdd for x, and passes the residual gradient through', () => {
    const be = createReferenceBackend();
    const r = rng(7);
    const n = 40;
    const dropout = { p: 0.3, seed: 1234, stream: 9 };
    const x = upload(be, 'f32', randn(r, n), 'x');
    const residual = upload(be, 'f32', randn(r, n), 'residual');
    const out = be.alloc('f32', n);
    const w = randn(r, n);
    const dx = be.alloc('f32', n);
    be.run('dropoutBackward', { dy: upload(be, 'f32', w), dx, size: n, dropout, accumulate: false });
    const loss = (): number => {
      be.run('dropoutAdd', { x, residual, out, size: n, dropout });
      return weightedSum(be, out, w);
    };
    const reports = finiteDifferences(be, loss, [
      { name: 'x', tensor: x, analytic: read64(be, dx) },
      { name: 'residual', tensor: residual, analytic: Float64Array.from(w) },
    ]);
    expectGradientsMatch(reports);
    const dropped = Array.from(be.read(dx)).filter((g) => g === 0).length;
    expect(dropped).toBeGreaterThan(0);
    expect(dropped).toBeLessThan(n);
  });
});

describe('scatterAddRows', () => {
  it('is the gradient of gatherRows, summing repeated indices', () => {
    const be = createReferenceBackend();
    const r = rng(8);
    const [R, W, T] = [5, 3, 6];
    const x = upload(be, 'f32', randn(r, R * W), 'x');
    const index = upload(be, 'i32', [4, 0, 4, 2, 4, 0]);
    const out = be.alloc('f32', T * W);
    const w = randn(r, T * W);
    const dx = be.alloc('f32', R * W);
    be.run('scatterAddRows', { dOut: upload(be, 'f32', w), index, dx, count: T, rows: R, width: W });
    const loss = (): number => {
      be.run('gatherRows', { x, index, out, count: T, rows: R, width: W });
      return weightedSum(be, out, w);
    };
    expectGradientsMatch(finiteDifferences(be, loss, [{ name: 'x', tensor: x, analytic: read64(be, dx) }]));
  });
});

describe('accumulate flags', () => {
  it('adds into dx instead of overwriting for layerNorm, linear and dropout backward', () => {
    const be = createReferenceBackend();
    const r = rng(9);
    const [M, K, N] = [2, 3, 4];
    const x = upload(be, 'f32', randn(r, M * K));
    const weight = upload(be, 'f32', randn(r, N * K));
    const dy = upload(be, 'f32', randn(r, M * N));
    const run = (accumulate: boolean, dx: Tensor): void =>
      be.run('linearBackward', { dy, x, weight, preAct: null, dx, dWeight: be.alloc('f32', N * K), dBias: null, rows: M, inFeatures: K, outFeatures: N, activation: 'none', accumulate });
    const fresh = be.alloc('f32', M * K);
    run(false, fresh);
    const prior = randn(r, M * K);
    const accumulated = upload(be, 'f32', prior);
    run(true, accumulated);
    const overwritten = upload(be, 'f32', prior);
    run(false, overwritten);
    const g = be.read(fresh);
    const acc = be.read(accumulated);
    for (let e = 0; e < M * K; e++) expect(acc[e]).toBeCloseTo(prior[e]! + g[e]!, 5);
    expect(Array.from(be.read(overwritten))).toEqual(Array.from(g));

    const dx = upload(be, 'f32', [1, 1, 1, 1]);
    be.run('dropoutBackward', { dy: upload(be, 'f32', [2, 2, 2, 2]), dx, size: 4, dropout: NO_DROPOUT, accumulate: true });
    expect(Array.from(be.read(dx))).toEqual([3, 3, 3, 3]);
  });
});
