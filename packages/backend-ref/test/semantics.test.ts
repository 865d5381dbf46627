// What the ops compute, checked against independent naive formulas.
import { counterUniform, glmKeyRanges, type Activation, type Tensor } from '@blankglm/tensor';
import { describe, expect, it } from 'vitest';
import { createReferenceBackend, roundToBf16, type ReferenceBackend } from '../src/index.js';
import { randn, rng, upload } from './helpers.js';

/** The naive attention: materialise the [L, L] mask and scores, softmax with −∞, multiply by V. */
function naiveAttention(
  q: Float32Array,
  k: Float32Array,
  v: Float32Array,
  mask: boolean[][][], // [B][L][L]
  B: number,
  L: number,
  heads: number,
  D: number,
  keepFactor: (b: number, h: number, i: number, j: number) => number,
): { out: Float64Array; lse: Float64Array } {
  const W = heads * D;
  const out = new Float64Array(B * L * W);
  const lse = new Float64Array(B * heads * L);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < heads; h++) {
      for (let i = 0; i < L; i++) {
        const scores = Array.from({ length: L }, (_, j) => {
          if (!mask[b]![i]![j]) return -Infinity;
          let s = 0;
          for (let d = 0; d < D; d++) s += q[(b * L + i) * W + h * D + d]! * k[(b * L + j) * W + h * D + d]!;
          return s / Math.sqrt(D);
        });
        const max = Math.max(...scores);
        const exps = scores.map((s) => Math.exp(s - max));
        const total = exps.reduce((x, y) => x + y, 0);
        lse[(b * heads + h) * L + i] = max + Math.log(total);
        for (let j = 0; j < L; j++) {
          const p = (exps[j]! / total) * keepFactor(b, h, i, j);
          for (let d = 0; d < D; d++) out[(b * L + i) * W + h * D + d] += p * v[(b * L + j) * W + h * D + d]!;
        }
      }
    }
  }
  return { out, lse };
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

describe('attention', () => {
  // Two rows: row 0 packs two samples and padding, row 1 is one sample with sep in the middle.
  const B = 2;
  const L = 10;
  const heads = 3;
  const D = 4;
  const W = heads * D;
  const segmentIds = Int32Array.from([0, 0, 0, 0, 1, 1, 1, 1, 1, -1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
  const sep = Int32Array.from([1, 7, 5, 0]);
  const ranges = glmKeyRanges({ batchSize: B, seqLength: L, sep, numSegments: 2, segmentIds });
  const mask = Array.from({ length: B }, (_, b) =>
    Array.from({ length: L }, (_, i) => Array.from({ length: L }, (_, j) => j >= ranges.keyStart[b * L + i]! && j < ranges.keyEnd[b * L + i]!)),
  );

  function run(be: ReferenceBackend, p: number) {
    const r = rng(11);
    const qs = randn(r, B * L * W, 1.5);
    const ks = randn(r, B * L * W, 1.5);
    const vs = randn(r, B * L * W);
    const view = (t: Tensor) => ({ tensor: t, offset: 0, rowStride: W, batchStride: L * W });
    const out = be.alloc('f32', B * L * W);
    const lse = be.alloc('f32', B * heads * L);
    const dropout = { p, seed: 42, stream: 100 };
    be.run('attention', {
      q: view(upload(be, 'f32', qs)),
      k: view(upload(be, 'f32', ks)),
      v: view(upload(be, 'f32', vs)),
      keyStart: upload(be, 'i32', ranges.keyStart),
      keyEnd: upload(be, 'i32', ranges.keyEnd),
      out,
      lse,
      batch: B,
      queries: L,
      keys: L,
      heads,
      headDim: D,
      scale: 1 / Math.sqrt(D),
      dropout,
    });
    const keep = (b: number, h: number, i: number, j: number): number =>
      p === 0 ? 1 : counterUniform(dropout.seed, dropout.stream + b * heads + h, i * L + j) < p ? 0 : 1 / (1 - p);
    return { got: be.read(out), gotLse: be.read(lse), want: naiveAttention(qs, ks, vs, mask, B, L, heads, D, keep) };
  }

  it('equals a materialised masked softmax built from glmKeyRanges for a packed batch', () => {
    const { got, gotLse, want } = run(createReferenceBackend(), 0);
    expect(maxAbsDiff(got, want.out)).toBeLessThan(1e-6);
    expect(maxAbsDiff(gotLse, want.lse)).toBeLessThan(1e-5);
  });

  it('applies dropout to probabilities with stream = dropout.stream + b·heads + h and element i·keys + j', () => {
    const { got, gotLse, want } = run(createReferenceBackend(), 0.3);
    expect(maxAbsDiff(got, want.out)).toBeLessThan(1e-6);
    expect(maxAbsDiff(gotLse, want.lse)).toBeLessThan(1e-5); // lse is taken before dropout
    const noDropout = run(createReferenceBackend(), 0).got;
    expect(maxAbsDiff(got, noDropout)).toBeGreaterThan(1e-2);
  });

  it('gives a padding token exactly its own value row', () => {
    const be = createReferenceBackend();
    const { got } = run(be, 0);
    const v = randn(rng(11), 3 * B * L * W).subarray(2 * B * L * W); // the third draw is v
    for (let c = 0; c < W; c++) expect(got[9 * W + c]).toBeCloseTo(v[9 * W + c]!, 6);
  });
});

describe('dropoutAdd', () => {
  it('drops a fraction ≈ p, scales kept elements by 1/(1−p), and repeats for the same (seed, stream)', () => {
    const be = createReferenceBackend();
    const n = 100_000;
    const p = 0.1;
    const x = upload(be, 'f32', new Float32Array(n).fill(1));
    const outA = be.alloc('f32', n);
    const outB = be.alloc('f32', n);
    const outC = be.alloc('f32', n);
    be.run('dropoutAdd', { x, residual: null, out: outA, size: n, dropout: { p, seed: 5, stream: 1 } });
    be.run('dropoutAdd', { x, residual: null, out: outB, size: n, dropout: { p, seed: 5, stream: 1 } });
    be.run('dropoutAdd', { x, residual: null, out: outC, size: n, dropout: { p, seed: 5, stream: 2 } });
    const a = be.read(outA);
    const dropped = a.filter((y) => y === 0).length;
    // Binomial(n, p): σ ≈ 95; allow 5σ.
    expect(Math.abs(dropped - n * p)).toBeLessThan(5 * Math.sqrt(n * p * (1 - p)));
    expect(a.every((y) => y === 0 || y === Math.fround(1 / (1 - p)))).toBe(true);
    expect(Array.from(be.read(outB))).toEqual(Array.from(a));
    expect(maxAbsDiff(be.read(outC), a)).toBeGreaterThan(0);
  });

  it('adds in place when out is the residual, and is the identity plus residual at p = 0', () => {
    const be = createReferenceBackend();
    const residual = upload(be, 'f32', [1, 2, 3]);
    be.run('dropoutAdd', { x: upload(be, 'f32', [10, 20, 30]), residual, out: residual, size: 3, dropout: { p: 0, seed: 0, stream: 0 } });
    expect(Array.from(be.read(residual))).toEqual([11, 22, 33]);
  });
});

describe('GELU', () => {
  function linearAt(activation: Activation, value: number): number {
    const be = createReferenceBackend();
    const y = be.alloc('f32', 1);
    const preAct = be.alloc('f32', 1);
    be.run('linear', { x: upload(be, 'f32', [value]), weight: upload(be, 'f32', [1]), bias: null, y, preAct, rows: 1, inFeatures: 1, outFeatures: 1, activation });
    expect(be.read(preAct)[0]).toBe(value);
    return be.read(y)[0]!;
  }

  it('pins the tanh and erf GELUs at 1 and −3 (values from mpmath) and their known difference', () => {
    const tanh1 = linearAt('gelu_tanh', 1);
    const erf1 = linearAt('gelu_erf', 1);
    expect(tanh1).toBe(Math.fround(0.8411919906082767));
    expect(erf1).toBe(Math.fround(0.8413447460685429));
    expect(erf1 - tanh1).toBeCloseTo(1.5275546026624e-4, 7);
    expect(linearAt('gelu_tanh', -3)).toBe(Math.fround(-0.0036373920817730188));
    expect(linearAt('gelu_erf', -3)).toBe(Math.fround(-0.00404969409489028358));
    expect(linearAt('none', -3)).toBe(-3);
  });
});

describe('linear', () => {
  it('computes x·Wᵀ + b with PyTorch layout', () => {
    const be = createReferenceBackend();
    const y = be.alloc('f32', 4);
    // x: [2, 3], W: [2, 3]
    be.run('linear', {
      x: upload(be, 'f32', [1, 2, 3, 4, 5, 6]),
      weight: upload(be, 'f32', [1, 0, -1, 0.5, 0.5, 0.5]),
      bias: upload(be, 'f32', [10, 20]),
      y,
      preAct: null,
      rows: 2,
      inFeatures: 3,
      outFeatures: 2,
      activation: 'none',
    });
    expect(Array.from(be.read(y))).toEqual([1 - 3 + 10, 3 + 20, 4 - 6 + 10, 7.5 + 20]);
  });
});

describe('adamw', () => {
  it('matches a hand-computed PyTorch AdamW step 1 and step 2', () => {
    const be = createReferenceBackend();
    const param = upload(be, 'f32', [1, -2]);
    const grad = upload(be, 'f32', [0.5, 0.25]);
    const m = be.alloc('f32', 2);
    const v = be.alloc('f32', 2);
    const hyper = { lr: 0.1, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01, gradScale: 2 };
    be.run('adamw', { param, grad, m, v, size: 2, step: 1, ...hyper });
    // Element 0, step 1: g = 1, m = 0.1, v = 0.001, m̂ = 1, v̂ = 1, update = 1/(1 + 1e-8) + 0.01·1.
    const update1 = 1 / (1 + 1e-8) + 0.01;
    expect(be.read(param)[0]).toBe(Math.fround(1 - 0.1 * update1));
    expect(be.read(m)[0]).toBe(Math.fround(0.1));
    expect(be.read(v)[0]).toBe(Math.fround(0.001));
    // Element 1: g = 0.5, m̂ = 0.5, v̂ = 0.25 → update = 0.5/(0.5 + 1e-8) + 0.01·(−2).
    expect(be.read(param)[1]).toBeCloseTo(-2 - 0.1 * (0.5 / (0.5 + 1e-8) - 0.02), 6);

    // Step 2 with the same gradient, from the stored f32 state.
    const p1 = be.read(param)[0]!;
    const m1 = be.read(m)[0]!;
    const v1 = be.read(v)[0]!;
    be.run('adamw', { param, grad, m, v, size: 2, step: 2, ...hyper });
    const m2 = 0.9 * m1 + 0.1 * 1;
    const v2 = 0.999 * v1 + 0.001 * 1;
    const update2 = m2 / (1 - 0.81) / (Math.sqrt(v2 / (1 - 0.999 ** 2)) + 1e-8) + 0.01 * p1;
    expect(be.read(param)[0]).toBeCloseTo(p1 - 0.1 * update2, 6);
    expect(be.read(m)[0]).toBeCloseTo(m2, 7);
  });
});

describe('layerNorm', () => {
  it('normalises each row to mean 0 and variance 1 (γ = 1, β = 0), and saves mean and rstd', () => {
    const be = createReferenceBackend();
    const [R, H] = [4, 64];
    const xs = randn(rng(12), R * H, 3).map((v, e) => v + (e < H ? 100 : 0)); // one row far from 0
    const y = be.alloc('f32', R * H);
    const mean = be.alloc('f32', R);
    const rstd = be.alloc('f32', R);
    be.run('layerNorm', { x: upload(be, 'f32', xs), gamma: upload(be, 'f32', new Float32Array(H).fill(1)), beta: be.alloc('f32', H), y, mean, rstd, rows: R, hiddenSize: H, eps: 1e-5 });
    const ys = be.read(y);
    for (let r = 0; r < R; r++) {
      const row = Array.from(ys.subarray(r * H, (r + 1) * H));
      const mu = row.reduce((a, b) => a + b, 0) / H;
      const variance = row.reduce((a, b) => a + (b - mu) ** 2, 0) / H;
      expect(Math.abs(mu)).toBeLessThan(1e-6);
      expect(Math.abs(variance - 1)).toBeLessThan(1e-5);
      const xRow = Array.from(xs.subarray(r * H, (r + 1) * H));
      const xMean = xRow.reduce((a, b) => a + b, 0) / H;
      const xVar = xRow.reduce((a, b) => a + (b - xMean) ** 2, 0) / H; // biased
      expect(be.read(mean)[r]).toBeCloseTo(xMean, 4);
      expect(be.read(rstd)[r]).toBeCloseTo(1 / Math.sqrt(xVar + 1e-5), 6);
    }
  });
});

describe('logits and crossEntropy', () => {
  it('agree: the loss from materialised logits equals crossEntropy, with and without label smoothing', () => {
    const be = createReferenceBackend();
    const r = rng(13);
    const [T, H, V] = [3, 8, 50];
    const hidden = upload(be, 'f32', randn(r, T * H));
    const wordEmb = upload(be, 'f32', randn(r, V * H));
    const targetIds = [7, 49, 0];
    const out = be.alloc('f32', T * V);
    be.run('logits', { hidden, wordEmb, out, tokens: T, hiddenSize: H, vocab: V });
    const z = be.read(out);
    for (const eps of [0, 0.1]) {
      const losses = be.alloc('f32', T);
      const lse = be.alloc('f32', T);
      be.run('crossEntropy', { hidden, wordEmb, targets: upload(be, 'i32', targetIds), losses, lse, tokens: T, hiddenSize: H, vocab: V, labelSmoothing: eps });
      for (let t = 0; t < T; t++) {
        const row = Array.from(z.subarray(t * V, (t + 1) * V));
        const max = Math.max(...row);
        const logSumExp = max + Math.log(row.reduce((a, b) => a + Math.exp(b - max), 0));
        // Cross-entropy against the smoothed target distribution (1 − ε)·onehot + ε/V.
        let want = 0;
        for (let v = 0; v < V; v++) want += -((v === targetIds[t] ? 1 - eps : 0) + eps / V) * (row[v]! - logSumExp);
        expect(be.read(losses)[t]).toBeCloseTo(want, 4);
        expect(be.read(lse)[t]).toBeCloseTo(logSumExp, 4);
      }
    }
  });
});

describe('embedding', () => {
  it('adds word, position and block-position rows', () => {
    const be = createReferenceBackend();
    const out = be.alloc('f32', 4);
    be.run('embedding', {
      wordEmb: upload(be, 'f32', [1, 2, 3, 4, 5, 6]), // [3, 2]
      posEmb: upload(be, 'f32', [10, 20, 30, 40]), // [2, 2]
      blockPosEmb: upload(be, 'f32', [100, 200, 300, 400]),
      inputIds: upload(be, 'i32', [2, 0]),
      positionIds: upload(be, 'i32', [1, 0]),
      blockPositionIds: upload(be, 'i32', [0, 1]),
      out,
      tokens: 2,
      hiddenSize: 2,
      vocab: 3,
      positions: 2,
    });
    expect(Array.from(be.read(out))).toEqual([5 + 30 + 100, 6 + 40 + 200, 1 + 10 + 300, 2 + 20 + 400]);
  });
});

describe('small ops', () => {
  it('sumSquares, fill, copy and scale', () => {
    const be = createReferenceBackend();
    const x = upload(be, 'f32', [1, 2, 3, 4]);
    const norms = be.alloc('f32', 3);
    be.run('sumSquares', { x, size: 4, out: norms, outIndex: 2 });
    expect(Array.from(be.read(norms))).toEqual([0, 0, 30]);
    be.run('fill', { x, offset: 1, size: 2, value: -1 });
    expect(Array.from(be.read(x))).toEqual([1, -1, -1, 4]);
    const ids = be.alloc('i32', 5);
    be.run('fill', { x: ids, offset: 0, size: 5, value: 7 });
    be.run('copy', { src: ids, srcOffset: 0, dst: ids, dstOffset: 3, size: 2 }); // same buffer, disjoint ranges
    be.run('copy', { src: upload(be, 'i32', [1, 2]), srcOffset: 0, dst: ids, dstOffset: 0, size: 2 });
    expect(Array.from(be.read(ids))).toEqual([1, 2, 7, 7, 7]);
    be.run('scale', { x, size: 4, factor: 0.5 });
    expect(Array.from(be.read(x))).toEqual([0.5, -0.5, -0.5, 2]);
    const bytes = be.alloc('u8', 4);
    be.run('fill', { x: bytes, offset: 2, size: 2, value: 255 });
    expect(Array.from(be.read(bytes))).toEqual([0, 0, 255, 255]);
  });
});

describe('bf16 storage', () => {
  it('rounds to nearest even on write and after every op', () => {
    expect(roundToBf16(1 + 2 ** -8)).toBe(1); // tie → even (1)
    expect(roundToBf16(1 + 3 * 2 ** -8)).toBe(1 + 2 ** -6); // tie → even (1 + 2^-6)
    expect(roundToBf16(1 + 2 ** -8 + 2 ** -12)).toBe(1 + 2 ** -7); // above the tie → up
    expect(roundToBf16(3.4e38)).toBe(Infinity); // past bf16's largest finite value
    expect(Number.isNaN(roundToBf16(NaN))).toBe(true);
    const be = createReferenceBackend();
    const x = be.alloc('bf16', 3);
    be.write(x, [1 + 2 ** -8, 1.00390625 + 2 ** -12, -2]);
    expect(Array.from(be.read(x))).toEqual([1, 1 + 2 ** -7, -2]);
    be.run('scale', { x, size: 3, factor: 1 + 2 ** -8 }); // 1·(1 + 2^-8) is a tie → 1
    expect(Array.from(be.read(x))).toEqual([1, roundToBf16((1 + 2 ** -7) * (1 + 2 ** -8)), -2]);
    // A bf16 linear layer: f64 arithmetic, bf16 outputs.
    const y = be.alloc('bf16', 1);
    be.run('linear', { x: upload(be, 'bf16', [1, 1]), weight: upload(be, 'bf16', [0.1, 0.2]), bias: null, y, preAct: null, rows: 1, inFeatures: 2, outFeatures: 1, activation: 'none' });
    expect(be.read(y)[0]).toBe(roundToBf16(roundToBf16(0.1) + roundToBf16(0.2)));
  });
});
