import { describe, expect, it } from 'vitest';
import { createReferenceBackend } from '@blankglm/backend-ref';
import { Rng } from '@blankglm/tensor';
import { AdamW, GlmModel } from '../src/index.js';
import { blankSample, microConfig, rowsBatch } from './model-helpers.js';

const text = (seed: number, n: number): number[] => {
  const r = new Rng(seed);
  return Array.from({ length: n }, () => 4 + r.int(60));
};

/** Losses and gradient norms of `steps` AdamW steps from the same start, in one precision. */
function run(precision: 'f32' | 'bf16', steps: number): { losses: number[]; norms: number[]; model: GlmModel; live: () => number } {
  const be = createReferenceBackend();
  const model = GlmModel.create(be, microConfig(), { rng: new Rng(3), precision });
  const opt = new AdamW(model, { lr: 1e-3 });
  const batch = rowsBatch([blankSample(text(1, 12), [[3, 6]]), blankSample(text(2, 12), [[1, 3], [7, 10]])]);
  const losses: number[] = [];
  const norms: number[] = [];
  for (let s = 0; s < steps; s++) {
    model.zeroGrad();
    losses.push(model.forward(batch, { mode: 'train', seed: s }).loss!);
    model.backward();
    norms.push(opt.update().gradNorm);
  }
  opt.dispose();
  return { losses, norms, model, live: () => be.liveBuffers() };
}

describe("precision 'bf16' (mixed precision: bf16 matrix operands, f32 parameters)", () => {
  it('tracks the f32 run within bf16 rounding and keeps f32 parameters', () => {
    const f = run('f32', 4);
    const b = run('bf16', 4);
    expect(b.model.precision).toBe('bf16');
    for (const t of b.model.trainables()) expect(t.param.dtype).toBe('f32');
    for (let s = 0; s < 4; s++) {
      expect(Math.abs(b.losses[s]! - f.losses[s]!) / f.losses[s]!).toBeLessThan(5e-3);
      expect(Math.abs(b.norms[s]! - f.norms[s]!) / f.norms[s]!).toBeLessThan(2e-2);
    }
    // Not bit-identical: the bf16 copies really are used.
    expect(b.losses.some((l, s) => l !== f.losses[s])).toBe(true);
    b.model.dispose();
    f.model.dispose();
    expect(b.live()).toBe(0);
  });

  it('rejects an unknown precision', () => {
    expect(() => GlmModel.create(createReferenceBackend(), microConfig(), { rng: new Rng(1), precision: 'fp8' as never })).toThrow(/precision must be 'f32' or 'bf16'/);
  });
});
