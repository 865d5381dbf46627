// Model-level finite differences: the analytic gradient of the loss with respect to every parameter
// tensor matches central differences of the forward loss. Parameters are stored in f32, so the
// step is large (eps = 1e-2 on parameters of scale ~0.3) and the comparison is
//   |analytic − numeric| ≤ 2e-2 · |numeric| + 5e-4        (per element and per direction).
import { describe, expect, it } from 'vitest';
import { createReferenceBackend } from '@blankglm/backend-ref';
import { Rng, type GlmBatch } from '@blankglm/tensor';
import { GlmModel, initParameters, type GlmConfig, type StateDict } from '../src/index.js';
import { blankSample, microConfig, rowsBatch, packedRow } from './model-helpers.js';

const EPS = 1e-2;
const RTOL = 2e-2;
const ATOL = 5e-4;

function randomState(config: GlmConfig, seed: number): StateDict {
  const rng = new Rng(seed);
  const state = initParameters(config, rng);
  // Move LayerNorms and biases away from (1, 0) so their gradients are generic.
  for (const [name, data] of state) {
    if (name.endsWith('layernorm.weight')) for (let i = 0; i < data.length; i++) data[i] = 1 + rng.normal(0, 0.2);
    else if (name.endsWith('.bias')) for (let i = 0; i < data.length; i++) data[i] = rng.normal(0, 0.1);
  }
  return state;
}

function gradcheck(config: GlmConfig, batch: GlmBatch, seed: number | null): { checked: number; worst: string } {
  const be = createReferenceBackend();
  const model = GlmModel.create(be, config, { stateDict: randomState(config, 11) });
  const options = seed === null ? { keepActivations: true } : { mode: 'train' as const, seed };
  model.zeroGrad();
  model.forward(batch, options);
  model.backward();
  const grads = model.gradDict();
  const params = model.stateDict();
  const lossAt = (): number => model.forward(batch, { ...options, keepActivations: false }).loss!;
  const rng = new Rng(99);
  let checked = 0;
  let worstRatio = 0;
  let worst = '';
  const compare = (label: string, analytic: number, numeric: number): void => {
    const allowed = RTOL * Math.abs(numeric) + ATOL;
    const ratio = Math.abs(analytic - numeric) / allowed;
    if (ratio > worstRatio) {
      worstRatio = ratio;
      worst = `${label}: analytic ${analytic}, numeric ${numeric}`;
    }
    expect(Math.abs(analytic - numeric), `${label}: analytic ${analytic} vs numeric ${numeric}`).toBeLessThanOrEqual(allowed);
    checked++;
  };

  for (const [name, p] of params) {
    const g = grads.get(name)!;
    // Elements: the largest |gradient|, and two random elements with a nonzero gradient (rows of
    // an embedding table that the batch never touches have exactly zero gradient).
    let top = 0;
    const nonzero: number[] = [];
    for (let i = 0; i < g.length; i++) {
      if (Math.abs(g[i]!) > Math.abs(g[top]!)) top = i;
      if (g[i] !== 0) nonzero.push(i);
    }
    const picks = [top, nonzero[rng.int(nonzero.length)]!, nonzero[rng.int(nonzero.length)]!];
    for (const i of picks) {
      const original = p[i]!;
      const plus = new Float32Array([original + EPS])[0]!;
      const minus = new Float32Array([original - EPS])[0]!;
      const probe = new Float32Array(p);
      probe[i] = plus;
      params.set(name, probe);
      model.loadStateDict(params);
      const lPlus = lossAt();
      probe[i] = minus;
      model.loadStateDict(params);
      const lMinus = lossAt();
      params.set(name, p);
      compare(`${name}[${i}]`, g[i]!, (lPlus - lMinus) / (plus - minus));
    }
    // Directional derivative along a random unit direction over the whole tensor.
    const dir = new Float64Array(p.length);
    let norm = 0;
    for (let i = 0; i < p.length; i++) norm += (dir[i] = rng.normal()) ** 2;
    norm = Math.sqrt(norm);
    let analytic = 0;
    for (let i = 0; i < p.length; i++) analytic += (g[i]! * dir[i]!) / norm;
    const shifted = (sign: number): number => {
      params.set(name, Float32Array.from(p, (x, i) => x + (sign * EPS * dir[i]!) / norm));
      model.loadStateDict(params);
      return lossAt();
    };
    const numeric = (shifted(1) - shifted(-1)) / (2 * EPS);
    params.set(name, p);
    model.loadStateDict(params);
    compare(`${name} along a random direction`, analytic, numeric);
  }
  expect(be.checkGuards()).toEqual([]); // no op wrote outside its buffers
  model.dispose();
  expect(be.liveBuffers()).toBe(0);
  return { checked, worst };
}

describe('model-level gradient check (reference backend)', () => {
  const samples = [
    blankSample([10, 11, 12, 13, 14, 15, 16, 17, 18], [[1, 3], [5, 8]], [1, 0]),
    blankSample([20, 21, 22, 23, 24, 25], [[2, 4]]),
  ];

  it('matches central differences for every parameter tensor (2 layers, h=16, 2 heads, vocab 64)', () => {
    const config = microConfig({ initializer_range: 0.3 });
    const { checked } = gradcheck(config, rowsBatch(samples, 14), null);
    expect(checked).toBe(4 * (3 + 12 * 2 + 2));
  });

  it('matches with exact-erf GELU, no block positions and a packed row', () => {
    const config = microConfig({ initializer_range: 0.3, hidden_act: 'gelu_erf', block_position_encoding: false });
    const { checked } = gradcheck(config, packedRow(samples, 26), null);
    expect(checked).toBe(4 * (2 + 12 * 2 + 2));
  });

  it('matches in train mode with dropout at every site (fixed seed, so fixed masks)', () => {
    const config = microConfig({ initializer_range: 0.3, num_layers: 1, embedding_dropout_prob: 0.1, attention_dropout_prob: 0.1, output_dropout_prob: 0.1 });
    const { checked } = gradcheck(config, rowsBatch(samples, 14), 1234);
    expect(checked).toBe(4 * (3 + 12 + 2));
  });
});
