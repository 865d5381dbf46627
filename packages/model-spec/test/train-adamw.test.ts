import { describe, expect, it } from 'vitest';
import { createReferenceBackend } from '@blankglm/backend-ref';
import { Rng } from '@blankglm/tensor';
import { AdamW, GlmModel, initParameters, type StateDict } from '../src/index.js';
import { FIRST_TEXT_TOKEN, blankSample, microConfig, rowsBatch, type Sample } from './model-helpers.js';

/** Four fixed 12-token "sentences": a blank is learnable from the rest of its sentence. */
const SENTENCES = Array.from({ length: 4 }, (_, k) => {
  const r = new Rng(`sentence-${k}`);
  return Array.from({ length: 12 }, () => FIRST_TEXT_TOKEN + r.int(60));
});

/** A blank-infilling sample: one of the fixed sentences with 1–2 spans blanked, spans in random order. */
function patternSample(rng: Rng): Sample {
  const n = 12;
  const text = SENTENCES[rng.int(SENTENCES.length)]!;
  const first = 1 + rng.int(4);
  const firstEnd = first + 1 + rng.int(3);
  const spans: Array<[number, number]> = [[first, firstEnd]];
  if (rng.float() < 0.5 && firstEnd + 2 < n - 1) {
    const s = firstEnd + 1 + rng.int(n - 2 - firstEnd - 1);
    spans.push([s, Math.min(n - 1, s + 1 + rng.int(2))]);
  }
  return blankSample(text, spans, rng.float() < 0.5 ? spans.map((_, i) => i) : spans.map((_, i) => spans.length - 1 - i));
}

function maxRelDiff(a: StateDict, b: StateDict): number {
  let worst = 0;
  for (const [name, x] of a) {
    const y = b.get(name)!;
    let scale = 1e-6;
    for (let i = 0; i < x.length; i++) scale = Math.max(scale, Math.abs(x[i]!));
    for (let i = 0; i < x.length; i++) worst = Math.max(worst, Math.abs(x[i]! - y[i]!) / scale);
  }
  return worst;
}

describe('training', () => {
  it('learns a synthetic blank-infilling task: the loss falls substantially over 150 AdamW steps', () => {
    const be = createReferenceBackend();
    const config = microConfig({ hidden_size: 32, num_attention_heads: 4, embedding_dropout_prob: 0.05, attention_dropout_prob: 0.05, output_dropout_prob: 0.05 });
    const model = GlmModel.create(be, config, { rng: new Rng(5) });
    const optimizer = new AdamW(model, { lr: 1e-2, beta2: 0.98, eps: 1e-6, weightDecay: 0.01, maxGradNorm: 1 });
    const data = new Rng(17);
    const heldOut = rowsBatch(Array.from({ length: 16 }, () => patternSample(new Rng(1000 + data.int(1e6)))), 20);
    const before = model.forward(heldOut).loss!;
    const losses: number[] = [];
    for (let step = 0; step < 150; step++) {
      const batch = rowsBatch(Array.from({ length: 8 }, () => patternSample(data)), 20);
      model.zeroGrad();
      losses.push(model.forward(batch, { mode: 'train', seed: step }).loss!);
      model.backward();
      const r = optimizer.update();
      expect(r.gradScale).toBeLessThanOrEqual(1);
    }
    const after = model.forward(heldOut).loss!;
    const early = losses.slice(0, 10).reduce((s, x) => s + x, 0) / 10;
    const late = losses.slice(-10).reduce((s, x) => s + x, 0) / 10;
    expect(before).toBeGreaterThan(3.5); // ≈ ln 64 untrained
    expect(late).toBeLessThan(early * 0.5);
    expect(after).toBeLessThan(before * 0.4); // measured: 4.15 → 1.04
    optimizer.dispose();
    model.dispose();
    expect(be.liveBuffers()).toBe(0);
  }, 30_000);
});

describe('gradients', () => {
  const config = microConfig({ initializer_range: 0.2 });
  const state = initParameters(config, new Rng(3));
  const rng = new Rng(8);
  const a = [patternSample(rng), patternSample(rng)];
  const b = [patternSample(rng), patternSample(rng), patternSample(rng)];
  const targets = (s: Sample[]): number => s.reduce((n, x) => n + x.lossMask.filter((m) => m === 1).length, 0);

  it('accumulate over micro-batches: two halves with weight 1/total equal one batch of both', () => {
    const be = createReferenceBackend();
    const model = GlmModel.create(be, config, { stateDict: state });
    model.zeroGrad();
    model.forward(rowsBatch([...a, ...b], 20), { keepActivations: true });
    model.backward();
    const whole = model.gradDict();
    const total = targets(a) + targets(b);
    model.zeroGrad();
    model.forward(rowsBatch(a, 20), { keepActivations: true });
    model.backward({ targetWeight: 1 / total });
    model.forward(rowsBatch(b, 16), { keepActivations: true });
    model.backward({ targetWeight: 1 / total });
    expect(maxRelDiff(whole, model.gradDict())).toBeLessThan(1e-5);
    // zeroGrad really zeroes
    model.zeroGrad();
    expect(model.globalGradNorm()).toBe(0);
    model.dispose();
    expect(be.liveBuffers()).toBe(0);
  });

  it('report per-parameter norms consistent with the global norm, and clip to a max norm', () => {
    const be = createReferenceBackend();
    const model = GlmModel.create(be, config, { stateDict: state });
    model.zeroGrad();
    model.forward(rowsBatch(a, 20), { keepActivations: true });
    model.backward();
    const norms = model.gradNorms();
    expect([...norms.keys()]).toEqual(model.specs.map((s) => s.name));
    const global = model.globalGradNorm();
    const fromParts = Math.sqrt([...norms.values()].reduce((s, x) => s + x * x, 0));
    expect(fromParts).toBeCloseTo(global, 6);
    expect(norms.get('word_embeddings.weight')!).toBeGreaterThan(0);
    const host = model.gradDict().get('transformer.layers.1.mlp.dense_4h_to_h.weight')!;
    expect(norms.get('transformer.layers.1.mlp.dense_4h_to_h.weight')!).toBeCloseTo(Math.hypot(...host), 5);
    const maxNorm = global / 4;
    expect(model.clipGradNorm(maxNorm)).toBeCloseTo(global, 6);
    expect(model.globalGradNorm()).toBeCloseTo(maxNorm, 5);
    model.dispose();
  });
});

describe('AdamW', () => {
  const config = microConfig({ initializer_range: 0.2 });
  const state = initParameters(config, new Rng(4));
  const rng = new Rng(9);
  const batches = Array.from({ length: 5 }, () => rowsBatch([patternSample(rng), patternSample(rng)], 20));

  it('decays weights but not biases or LayerNorm parameters', () => {
    const be = createReferenceBackend();
    const model = GlmModel.create(be, config, { stateDict: state });
    const opt = new AdamW(model, { lr: 0.1, weightDecay: 0.5 });
    model.zeroGrad(); // zero gradients: only the decay moves parameters
    opt.update();
    const after = model.stateDict();
    const w = 'transformer.layers.0.attention.dense.weight';
    expect(after.get(w)![3]).toBeCloseTo(state.get(w)![3]! * (1 - 0.1 * 0.5), 6);
    expect(after.get('transformer.layers.0.input_layernorm.weight')).toEqual(state.get('transformer.layers.0.input_layernorm.weight'));
    expect(after.get('transformer.layers.0.mlp.dense_h_to_4h.bias')).toEqual(state.get('transformer.layers.0.mlp.dense_h_to_4h.bias'));
    opt.dispose();
    model.dispose();
    expect(be.liveBuffers()).toBe(0);
  });

  it('clips through gradScale and reports the norm before clipping', () => {
    const be = createReferenceBackend();
    const model = GlmModel.create(be, config, { stateDict: state });
    const opt = new AdamW(model, { lr: 1e-3, maxGradNorm: 1e-3 });
    model.zeroGrad();
    model.forward(batches[0]!, { keepActivations: true });
    model.backward();
    const norm = model.globalGradNorm();
    const r = opt.update();
    expect(r.gradNorm).toBeCloseTo(norm, 6);
    expect(r.gradScale).toBeCloseTo(1e-3 / (norm + 1e-6), 8);
    expect(r.step).toBe(1);
    opt.dispose();
    model.dispose();
  });

  it('resumes exactly from its saved state (moments and step) and a parameter snapshot', () => {
    const run = (steps: number, from?: { params: StateDict; opt: ReturnType<AdamW['getState']> }, firstBatch = 0) => {
      const be = createReferenceBackend();
      const model = GlmModel.create(be, config, { stateDict: from?.params ?? state });
      const opt = new AdamW(model, { lr: 1e-2, maxGradNorm: 1, weightDecay: 0.1 });
      if (from) opt.setState(from.opt);
      for (let i = 0; i < steps; i++) {
        model.zeroGrad();
        model.forward(batches[firstBatch + i]!, { keepActivations: true });
        model.backward();
        opt.update();
      }
      const out = { params: model.stateDict(), opt: opt.getState() };
      opt.dispose();
      model.dispose();
      expect(be.liveBuffers()).toBe(0);
      return out;
    };
    const straight = run(5);
    const resumed = run(2, run(3), 3);
    expect(resumed.opt.step).toBe(5);
    expect(maxRelDiff(straight.params, resumed.params)).toBe(0);
    expect(maxRelDiff(straight.opt.v, resumed.opt.v)).toBe(0);
    const broken = { ...straight.opt, m: new Map(straight.opt.m) };
    broken.m.delete('word_embeddings.weight');
    const be = createReferenceBackend();
    const model = GlmModel.create(be, config, { stateDict: state });
    const opt = new AdamW(model, { lr: 1e-2 });
    expect(() => opt.setState(broken)).toThrow(/AdamW state: m is missing parameter 'word_embeddings\.weight'/);
    opt.dispose();
    model.dispose();
  });
});
