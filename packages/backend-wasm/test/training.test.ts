// A small GLM (glm-tiny's layout at a CI-sized width) trained with AdamW on the WASM backend and
// on the reference backend from the same initial weights and batches: the losses must track each
// other step by step (f32 blocked kernels vs f64 reference accumulation), dropout included.
import { createReferenceBackend } from '@blankglm/backend-ref';
import { AdamW, GlmModel, type GlmConfig } from '@blankglm/model-spec';
import { Rng, type Backend } from '@blankglm/tensor';
import { describe, expect, it } from 'vitest';
import { createWasmBackend } from '../dist/index.js';
import { blankBatch } from './glm-batch.js';

const CONFIG: GlmConfig = {
  model_type: 'blankglm',
  num_layers: 2,
  vocab_size: 256,
  hidden_size: 64,
  num_attention_heads: 4,
  max_sequence_length: 64,
  embedding_dropout_prob: 0.1,
  attention_dropout_prob: 0.1,
  output_dropout_prob: 0.1,
  block_position_encoding: true,
  attention_scale: 1,
  initializer_range: 0.02,
  hidden_act: 'gelu_tanh',
  layernorm_epsilon: 1e-5,
  tokenizer_family: 'bert',
};
const STEPS = 12;
/** Relative loss difference allowed at every step (measured: ≤ 2e-6 over 12 steps). */
const TOLERANCE = 1e-4;

function train(be: Backend): number[] {
  const model = GlmModel.create(be, CONFIG, { rng: new Rng(5) });
  const optimizer = new AdamW(model, { lr: 3e-3, beta2: 0.98, eps: 1e-6, weightDecay: 0.01, maxGradNorm: 1 });
  const data = new Rng(17);
  const losses: number[] = [];
  for (let step = 0; step < STEPS; step++) {
    const batch = blankBatch(data, 4, 24, 32, CONFIG.vocab_size);
    model.zeroGrad();
    losses.push(model.forward(batch, { mode: 'train', seed: step }).loss!);
    model.backward();
    optimizer.update();
  }
  optimizer.dispose();
  model.dispose();
  expect(be.liveBuffers()).toBe(0);
  return losses;
}

describe('GLM training on WASM tracks the reference', () => {
  it(`${STEPS} AdamW steps with dropout: losses within ${TOLERANCE} relative, step by step`, () => {
    const ref = createReferenceBackend();
    const expected = train(ref);
    ref.dispose();
    const wasm = createWasmBackend({ threads: 2 });
    const got = train(wasm);
    wasm.dispose();
    let worst = 0;
    for (let i = 0; i < STEPS; i++) {
      const rel = Math.abs(got[i]! - expected[i]!) / Math.abs(expected[i]!);
      worst = Math.max(worst, rel);
      expect(rel, `step ${i}: wasm ${got[i]} vs reference ${expected[i]}`).toBeLessThan(TOLERANCE);
    }
    expect(got[STEPS - 1]!).toBeLessThan(got[0]!); // it does learn
    console.log(`worst relative loss difference ${worst.toExponential(2)}; losses (wasm / reference): ${got.map((g, i) => `${g.toFixed(5)}/${expected[i]!.toFixed(5)}`).join(' ')}`);
  });
});
