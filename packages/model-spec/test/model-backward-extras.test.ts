// backward's per-target weights, logits gradients and hidden-state gradients: consistency with the
// scalar-weight path and central differences of the objective they define.
import { describe, expect, it } from 'vitest';
import { createReferenceBackend } from '@blankglm/backend-ref';
import { Rng, type GlmBatch } from '@blankglm/tensor';
import { GlmModel, type RowPosition, type StateDict } from '../src/index.js';
import { blankSample, microConfig, patternText, rowsBatch } from './model-helpers.js';

function microModel(dropout = 0): GlmModel {
  const config = microConfig({ embedding_dropout_prob: dropout, attention_dropout_prob: dropout, output_dropout_prob: dropout });
  return GlmModel.create(createReferenceBackend(), config, { rng: new Rng(5) });
}

function twoRows(): GlmBatch {
  return rowsBatch([blankSample(patternText(12, 4, 3), [[2, 5], [8, 10]]), blankSample(patternText(10, 7, 5), [[1, 4]])], 16);
}

function gradientsOf(model: GlmModel, batch: GlmBatch, run: () => void): StateDict {
  model.zeroGrad();
  model.forward(batch, { mode: 'train', seed: 3 });
  run();
  return model.gradDict();
}

function maxAbsDiff(a: StateDict, b: StateDict): number {
  let worst = 0;
  for (const [name, x] of a) {
    const y = b.get(name)!;
    for (let i = 0; i < x.length; i++) worst = Math.max(worst, Math.abs(x[i]! - y[i]!));
  }
  return worst;
}

function maxAbs(a: StateDict): number {
  let m = 0;
  for (const x of a.values()) for (const v of x) m = Math.max(m, Math.abs(v));
  return m;
}

/** Σ direction · gradient, and the central difference of `objective` along `direction`. */
function directional(model: GlmModel, grads: StateDict, objective: () => number, seed: number): { analytic: number; numeric: number } {
  const params = model.stateDict();
  const rng = new Rng(seed);
  const direction = new Map([...params].map(([k, v]) => [k, Float32Array.from(v, () => rng.normal())]));
  let analytic = 0;
  for (const [k, g] of grads) {
    const d = direction.get(k)!;
    for (let i = 0; i < g.length; i++) analytic += g[i]! * d[i]!;
  }
  const at = (eps: number): number => {
    model.loadStateDict(new Map([...params].map(([k, v]) => [k, Float32Array.from(v, (x, i) => x + eps * direction.get(k)![i]!)])));
    return objective();
  };
  const eps = 1e-3;
  const numeric = (at(eps) - at(-eps)) / (2 * eps);
  model.loadStateDict(params);
  return { analytic, numeric };
}

describe('backward({ targetWeights })', () => {
  it('equal weights give the scalar-weight gradients; a zero weight removes that target', () => {
    const model = microModel(0.1);
    const batch = twoRows();
    const n = model.forward(batch).numTargets;
    expect(n).toBeGreaterThan(4);
    const scalar = gradientsOf(model, batch, () => model.backward({ targetWeight: 0.37 }));
    const perTarget = gradientsOf(model, batch, () => model.backward({ targetWeights: new Float32Array(n).fill(0.37) }));
    expect(maxAbs(scalar)).toBeGreaterThan(1e-3);
    expect(maxAbsDiff(scalar, perTarget)).toBeLessThan(1e-7);

    // Zero weight on target 1 ≡ the same batch without that loss position.
    const targets = model.forward(batch).targets;
    const weights = Float32Array.from({ length: n }, (_, i) => (i === 1 ? 0 : 0.5 - 0.2 * i));
    const zeroed = gradientsOf(model, batch, () => model.backward({ targetWeights: weights }));
    const without = { ...batch, lossMask: Uint8Array.from(batch.lossMask!) };
    without.lossMask[targets.row[1]! * batch.seqLength + targets.position[1]!] = 0;
    const rest = weights.filter((_, i) => i !== 1);
    const reference = gradientsOf(model, without, () => model.backward({ targetWeights: rest }));
    expect(maxAbsDiff(zeroed, reference)).toBeLessThan(1e-6);
    expect(maxAbsDiff(zeroed, perTarget)).toBeGreaterThan(1e-4);
    model.dispose();
  });

  it('matches central differences of Σ w_i·loss_i, negative weights included', () => {
    const model = microModel();
    const batch = twoRows();
    const n = model.forward(batch).numTargets;
    const w = Float32Array.from({ length: n }, (_, i) => [0.8, -0.3, 0.2, 0.6, -0.5][i % 5]!);
    const grads = gradientsOf(model, batch, () => model.backward({ targetWeights: w }));
    const objective = (): number => {
      const r = model.forward(batch);
      let sum = 0;
      for (let i = 0; i < w.length; i++) sum += w[i]! * r.targets.loss[i]!;
      return sum;
    };
    const { analytic, numeric } = directional(model, grads, objective, 21);
    expect(Math.abs(analytic)).toBeGreaterThan(1e-2);
    expect(Math.abs(analytic - numeric)).toBeLessThan(2e-2 * Math.abs(numeric) + 1e-3);
    model.dispose();
  });

  it('rejects weights that do not fit the last forward', () => {
    const model = microModel();
    const batch = twoRows();
    const n = model.forward(batch, { keepActivations: true }).numTargets;
    expect(() => model.backward({ targetWeights: new Float32Array(4) })).toThrow(`targetWeights has 4 entries, expected the targets of the last forward = ${n}`);
    expect(() => model.backward({ targetWeights: Float32Array.from({ length: n }, (_, i) => (i === 2 ? Number.NaN : 1)) })).toThrow(/targetWeights\[2\] = NaN/);
    expect(() => model.backward({ targetWeight: 1, targetWeights: new Float32Array(n) })).toThrow(/not both/);
    model.dispose();
  });
});

describe('backward({ logitsGrad, hiddenGrad })', () => {
  const at: RowPosition[] = [{ row: 0, position: 0 }, { row: 1, position: 3 }, { row: 0, position: 13 }];

  it('logitsGrad: the gradient of Σ g·logits[logitsAt] (through the tied projection)', () => {
    const model = microModel();
    const batch = twoRows();
    const V = model.config.vocab_size;
    const rng = new Rng(8);
    const g = Float32Array.from({ length: at.length * V }, () => rng.normal());
    const grads = gradientsOf(model, batch, () => undefined);
    model.zeroGrad();
    model.forward(batch, { keepActivations: true, logitsAt: at });
    model.backward({ logitsGrad: g, targetWeight: 0 });
    const got = model.gradDict();
    expect(maxAbs(grads)).toBe(0);
    const objective = (): number => {
      const values = model.forward(batch, { logitsAt: at }).logits!.values;
      let sum = 0;
      for (let i = 0; i < g.length; i++) sum += g[i]! * values[i]!;
      return sum;
    };
    const { analytic, numeric } = directional(model, got, objective, 22);
    expect(Math.abs(analytic)).toBeGreaterThan(1e-2);
    expect(Math.abs(analytic - numeric)).toBeLessThan(2e-2 * Math.abs(numeric) + 1e-3);
    model.dispose();
  });

  it('hiddenGrad: the gradient of Σ g·hidden[hiddenAt], added to the loss gradient', () => {
    const model = microModel();
    const batch = twoRows();
    const H = model.hiddenSize;
    const rng = new Rng(9);
    const g = Float32Array.from({ length: at.length * H }, () => rng.normal());
    const first = model.forward(batch, { hiddenAt: at });
    expect(first.hidden!.values.length).toBe(at.length * H);
    // The hidden rows are what the output projection reads: logits = hidden · Eᵀ.
    const logits = model.forward(batch, { logitsAt: at }).logits!.values;
    const emb = model.stateDict().get('word_embeddings.weight')!;
    let dot = 0;
    for (let j = 0; j < H; j++) dot += first.hidden!.values[H + j]! * emb[7 * H + j]!;
    expect(dot).toBeCloseTo(logits[model.config.vocab_size + 7]!, 4);

    model.zeroGrad();
    model.forward(batch, { keepActivations: true, hiddenAt: at });
    model.backward({ hiddenGrad: g, targetWeight: 0.5 });
    const got = model.gradDict();
    const objective = (): number => {
      const r = model.forward(batch, { hiddenAt: at });
      let sum = 0.5 * r.targets.loss.reduce((s, v) => s + v, 0);
      for (let i = 0; i < g.length; i++) sum += g[i]! * r.hidden!.values[i]!;
      return sum;
    };
    const { analytic, numeric } = directional(model, got, objective, 23);
    expect(Math.abs(analytic)).toBeGreaterThan(1e-2);
    expect(Math.abs(analytic - numeric)).toBeLessThan(2e-2 * Math.abs(numeric) + 1e-3);
    model.dispose();
  });

  it('rejects gradients without the matching forward rows or of the wrong size', () => {
    const model = microModel();
    const batch = twoRows();
    model.forward(batch, { keepActivations: true });
    expect(() => model.backward({ hiddenGrad: new Float32Array(16) })).toThrow(/hiddenGrad needs a forward with hiddenAt/);
    expect(() => model.backward({ logitsGrad: new Float32Array(64) })).toThrow(/logitsGrad needs a forward with logitsAt/);
    model.forward(batch, { keepActivations: true, hiddenAt: at });
    expect(() => model.backward({ hiddenGrad: new Float32Array(5) })).toThrow(/hiddenGrad has 5 entries, expected hiddenAt rows × hidden_size = 48/);
    expect(() => model.forward(batch, { hiddenAt: [{ row: 2, position: 0 }] })).toThrow(/hiddenAt\[0\]\.row = 2/);
    model.releaseState();
    model.dispose();
  });
});
