// The comparison thresholds, in one table (after ggml's tests/test-backend-ops.cpp).
//
// Every float output is compared with the reference by its normalised mean squared error,
// NMSE = Σ(a−b)² / Σb², where b is the reference. NMSE is a relative measure over the whole
// tensor: 1e-7 means the error's energy is a ten-millionth of the signal's, i.e. an RMS relative
// error of about 3e-4 — a few ulps of f32 spread over every element (f32 has 2^-24 ≈ 6e-8 relative
// precision, so NMSE of elementwise ops on f32 is ~1e-14 when results differ only by rounding).
import type { OpName } from '@blankglm/tensor';

/** How much a backend may legitimately differ from the reference, by the kind of computation. */
export type ThresholdClass = 'elementwise' | 'norm' | 'matmul';

/** NMSE thresholds for f32 by class, and one for every float output when the tensors are bf16. */
export const THRESHOLDS = {
  /** Copies, fills, scaling, dropout, gathers and scatter-adds, embeddings, AdamW: one rounding per element. */
  elementwise: 1e-7,
  /** Reductions along a row (layer norm, softmax / log-sum-exp, losses, Σx²): summation order may differ. */
  norm: 1e-6,
  /** Long dot products (linear, attention, logits, cross-entropy gradients): blocked f32 accumulation, fused multiply-add, fast exp. */
  matmul: 5e-4,
  /** Any float output when the backend computes in bf16 (8 mantissa bits: relative rounding 2^-9 ≈ 2e-3). */
  bf16: 5e-3,
} as const;

/** The class of each op's outputs: `default`, with per-output exceptions by argument name. */
export const OP_THRESHOLD_CLASS: Record<OpName, { default: ThresholdClass; outputs?: Record<string, ThresholdClass> }> = {
  embedding: { default: 'elementwise' },
  embeddingBackward: { default: 'elementwise' },
  layerNorm: { default: 'norm' },
  layerNormBackward: { default: 'norm' },
  linear: { default: 'matmul' },
  linearBackward: { default: 'matmul' },
  attention: { default: 'matmul', outputs: { lse: 'norm' } },
  attentionBackward: { default: 'matmul' },
  dropoutAdd: { default: 'elementwise' },
  dropoutBackward: { default: 'elementwise' },
  gatherRows: { default: 'elementwise' },
  scatterAddRows: { default: 'elementwise' },
  logits: { default: 'matmul' },
  crossEntropy: { default: 'norm' },
  crossEntropyBackward: { default: 'matmul' },
  adamw: { default: 'elementwise' },
  sumSquares: { default: 'norm' },
  fill: { default: 'elementwise' },
  copy: { default: 'elementwise' },
  scale: { default: 'elementwise' },
};

/** The NMSE threshold for output `output` of `op` when float tensors are `dtype`. */
export function thresholdFor(op: OpName, output: string, dtype: 'f32' | 'bf16'): number {
  if (dtype === 'bf16') return THRESHOLDS.bf16;
  const entry = OP_THRESHOLD_CLASS[op];
  return THRESHOLDS[entry.outputs?.[output] ?? entry.default];
}
