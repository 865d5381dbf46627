import { describe, expect, it } from 'vitest';
import { createReferenceBackend } from '@blankglm/backend-ref';
import { Rng } from '@blankglm/tensor';
import { GlmModel, initParameters, parameterSpecs, siteDropout } from '../src/index.js';
import { blankSample, microConfig, packedRow, patternText, rowsBatch } from './model-helpers.js';

const text = (seed: number, n: number): number[] => {
  const r = new Rng(seed);
  return Array.from({ length: n }, () => 4 + r.int(60));
};

describe('test helper layout', () => {
  it('reproduces the worked example of glm-reference §1.9', () => {
    const s = blankSample([10, 11, 12, 13, 14, 15, 16, 17], [[3, 4], [5, 7]], [1, 0]);
    expect(s.inputIds).toEqual([10, 11, 12, 1, 14, 1, 17, 2, 15, 16, 2, 13]);
    expect(s.targetIds.slice(7)).toEqual([15, 16, 3, 13, 3]);
    expect(s.positionIds).toEqual([0, 1, 2, 3, 4, 5, 6, 5, 5, 5, 3, 3]);
    expect(s.blockPositionIds).toEqual([0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 1, 2]);
    expect(s.sep).toBe(7);
  });
});

describe('GlmModel parameters', () => {
  it('round-trips a state dict and frees every buffer on dispose', () => {
    const be = createReferenceBackend();
    const config = microConfig();
    const state = initParameters(config, new Rng(1));
    const model = GlmModel.create(be, config, { stateDict: state });
    expect(be.liveBuffers()).toBe(parameterSpecs(config).length);
    const back = model.stateDict();
    expect([...back.keys()]).toEqual([...state.keys()]);
    for (const [name, data] of state) expect(back.get(name), name).toEqual(data);
    model.zeroGrad();
    model.dispose();
    expect(be.liveBuffers()).toBe(0);
    expect(() => model.stateDict()).toThrow(/after dispose/);
  });

  it('refuses a mismatched state dict, listing missing, unexpected and wrongly shaped names', () => {
    const be = createReferenceBackend();
    const config = microConfig();
    const state = initParameters(config, new Rng(1));
    state.delete('transformer.layers.1.mlp.dense_4h_to_h.bias');
    state.set('transformer.layers.0.attention.rotary.weight', new Float32Array(4));
    state.set('transformer.layers.0.attention.dense.weight', new Float32Array(10));
    expect(() => GlmModel.create(be, config, { stateDict: state })).toThrow(
      /wrongly shaped \(1\):\n  transformer\.layers\.0\.attention\.dense\.weight: expected \[16, 16\], got \[10\]\nmissing \(1\):\n  transformer\.layers\.1\.mlp\.dense_4h_to_h\.bias \[16\]\nunexpected \(1\):\n  transformer\.layers\.0\.attention\.rotary\.weight \[4\]/,
    );
    expect(be.liveBuffers()).toBe(0);
  });
});

describe('GlmModel forward', () => {
  const config = microConfig({ initializer_range: 0.2 });
  const state = initParameters(config, new Rng(7));

  it('returns the token-averaged loss, per-target log-probs and the requested logits rows', () => {
    const be = createReferenceBackend();
    const model = GlmModel.create(be, config, { stateDict: state });
    const a = blankSample(text(1, 10), [[2, 4], [6, 7]]);
    const b = blankSample(text(2, 8), [[1, 4]]);
    const batch = rowsBatch([a, b], 16);
    const sep = a.sep;
    const r = model.forward(batch, { logitsAt: [{ row: 0, position: sep }, { row: 1, position: b.sep + 1 }] });
    expect(r.numTargets).toBe(5 + 4);
    const mean = r.targets.loss.reduce((s, x) => s + x, 0) / r.numTargets;
    expect(r.loss).toBeCloseTo(mean, 6);
    expect(Array.from(r.targets.row)).toEqual([0, 0, 0, 0, 0, 1, 1, 1, 1]);
    expect(r.targets.position[0]).toBe(sep);
    // the logits at a target position give the same log-probability as the fused cross-entropy
    const V = config.vocab_size;
    const row = r.logits!.values.subarray(0, V);
    let max = -Infinity;
    for (const z of row) max = Math.max(max, z);
    let sum = 0;
    for (const z of row) sum += Math.exp(z - max);
    const logProb = row[r.targets.tokenId[0]!]! - max - Math.log(sum);
    expect(r.targets.logProb[0]).toBeCloseTo(logProb, 5);
    expect(r.targets.loss[0]).toBeCloseTo(-logProb, 5);
    // an untrained model is near uniform over the vocabulary
    expect(r.loss!).toBeGreaterThan(Math.log(V) - 1);
    expect(r.loss!).toBeLessThan(Math.log(V) + 1);
    model.dispose();
    expect(be.liveBuffers()).toBe(0);
  });

  it('gives each sample of a packed row the same per-target losses as alone in its own row', () => {
    const be = createReferenceBackend();
    const model = GlmModel.create(be, config, { stateDict: state });
    const samples = [blankSample(text(3, 9), [[2, 5]]), blankSample(text(4, 7), [[0, 1], [4, 6]]), blankSample(patternText(6, 1, 3), [[3, 6]])];
    const alone = samples.map((s) => model.forward(rowsBatch([s])).targets.loss);
    const padded = model.forward(rowsBatch(samples, 20)).targets.loss;
    const packed = model.forward(packedRow(samples, 36)).targets.loss;
    const flat = alone.flatMap((l) => Array.from(l));
    expect(packed.length).toBe(flat.length);
    for (let i = 0; i < flat.length; i++) {
      expect(Math.abs(packed[i]! - flat[i]!), `packed target ${i}`).toBeLessThan(1e-5);
      expect(Math.abs(padded[i]! - flat[i]!), `padded target ${i}`).toBeLessThan(1e-5);
    }
    model.dispose();
    expect(be.liveBuffers()).toBe(0);
  });

  it('applies dropout only in train mode, deterministically per seed', () => {
    const be = createReferenceBackend();
    const dropConfig = { ...config, embedding_dropout_prob: 0.1, attention_dropout_prob: 0.1, output_dropout_prob: 0.1 };
    const model = GlmModel.create(be, dropConfig, { stateDict: state });
    const batch = rowsBatch([blankSample(text(5, 12), [[3, 7]])]);
    const evalA = model.forward(batch).loss!;
    const evalB = model.forward(batch, { mode: 'eval' }).loss!;
    expect(evalA).toBe(evalB);
    const t1 = model.forward(batch, { mode: 'train', seed: 1, keepActivations: false }).loss!;
    const t1again = model.forward(batch, { mode: 'train', seed: 1, keepActivations: false }).loss!;
    const t2 = model.forward(batch, { mode: 'train', seed: 2, keepActivations: false }).loss!;
    expect(t1again).toBe(t1);
    expect(t2).not.toBe(t1);
    expect(t1).not.toBe(evalA);
    // eval mode of the dropout config equals the same parameters without dropout
    const plain = GlmModel.create(be, config, { stateDict: state });
    expect(plain.forward(batch).loss).toBe(evalA);
    expect(() => model.forward(batch, { mode: 'train' })).toThrow(/needs an integer dropout seed/);
    // every site has its own seed
    const seeds = new Set([siteDropout(0.1, 1, 'embedding').seed, siteDropout(0.1, 1, 'attentionProbs', 0).seed, siteDropout(0.1, 1, 'attentionOutput', 0).seed, siteDropout(0.1, 1, 'mlpOutput', 1).seed]);
    expect(seeds.size).toBe(4);
    model.dispose();
    plain.dispose();
    expect(be.liveBuffers()).toBe(0);
  });

  it('computes tanh GELU by default and exact erf GELU as an option: small but nonzero difference', () => {
    const be = createReferenceBackend();
    const batch = rowsBatch([blankSample(text(6, 12), [[3, 7]])]);
    const at = [{ row: 0, position: 11 }, { row: 0, position: 13 }];
    const tanh = GlmModel.create(be, config, { stateDict: state });
    const erf = GlmModel.create(be, { ...config, hidden_act: 'gelu_erf' }, { stateDict: state });
    const a = tanh.forward(batch, { logitsAt: at }).logits!.values;
    const b = erf.forward(batch, { logitsAt: at }).logits!.values;
    let maxDiff = 0;
    let maxAbs = 0;
    for (let i = 0; i < a.length; i++) {
      maxDiff = Math.max(maxDiff, Math.abs(a[i]! - b[i]!));
      maxAbs = Math.max(maxAbs, Math.abs(a[i]!));
    }
    // |gelu_tanh − gelu_erf| < 5e-4 pointwise, so the logits move by far less than their size
    expect(maxDiff).toBeGreaterThan(1e-7);
    expect(maxDiff).toBeLessThan(1e-3 * maxAbs);
    tanh.dispose();
    erf.dispose();
    expect(be.liveBuffers()).toBe(0);
  });

  it('names the field, row and index of bad input, and leaks nothing on the way out', () => {
    const be = createReferenceBackend();
    const model = GlmModel.create(be, config, { stateDict: state });
    const good = rowsBatch([blankSample(text(7, 8), [[2, 4]]), blankSample(text(8, 8), [[5, 6]])], 12);
    const live = be.liveBuffers();
    const bad = (patch: (b: typeof good) => void): typeof good => {
      const b = structuredClone(good);
      patch(b);
      return b;
    };
    expect(() => model.forward(bad((b) => (b.inputIds[12 + 3] = 64)))).toThrow(/batch\.inputIds\[row 1\]\[index 3\] = 64, expected a token id in 0\.\.63/);
    expect(() => model.forward(bad((b) => (b.positionIds[5] = 33)))).toThrow(/batch\.positionIds\[row 0\]\[index 5\] = 33.*33 rows/);
    expect(() => model.forward(bad((b) => (b.blockPositionIds[7] = -1)))).toThrow(/batch\.blockPositionIds\[row 0\]\[index 7\] = -1/);
    expect(() => model.forward(bad((b) => (b.sep[1] = 11)))).toThrow(/batch: sep\[1\]\[0\] = 11 lies outside its segment/);
    expect(() => model.forward({ ...good, inputIds: good.inputIds.subarray(0, 20) })).toThrow(/batch\.inputIds has 20 entries, expected batchSize × seqLength = 24/);
    expect(() => model.forward(bad((b) => (b.targetIds![8] = 99)))).toThrow(/batch\.targetIds\[row 0\]\[index 8\] = 99 \(a loss position\)/);
    expect(() => model.forward(bad((b) => (b.lossMask![3] = 2)))).toThrow(/batch\.lossMask\[row 0\]\[index 3\] = 2, expected 0 or 1/);
    expect(() => model.forward(good, { logitsAt: [{ row: 2, position: 0 }] })).toThrow(/logitsAt\[0\]\.row = 2, expected 0\.\.1/);
    expect(() => model.backward()).toThrow(/no kept forward pass/);
    expect(be.liveBuffers()).toBe(live);
    const ok = model.forward(good);
    expect(ok.numTargets).toBe(5);
    model.dispose();
    expect(be.liveBuffers()).toBe(0);
  });
});
