// AdamW (decoupled weight decay, PyTorch AdamW / apex FusedAdam adam_w_mode) and Σx² for
// gradient-norm clipping.
import type { OpArgs } from '@blankglm/tensor';
import type { OpContext } from './context.js';

/**
 * In place, per element (f64, stored back to f32):
 *   g = grad·gradScale;  m = β1·m + (1 − β1)·g;  v = β2·v + (1 − β2)·g²
 *   param −= lr·( (m / (1 − β1^step)) / (√(v / (1 − β2^step)) + eps) + weightDecay·param )
 */
export function adamw(ctx: OpContext, a: OpArgs['adamw']): void {
  const { lr, beta1, beta2, eps, weightDecay, step, gradScale } = a;
  if (!(beta1 >= 0 && beta1 < 1) || !(beta2 >= 0 && beta2 < 1)) ctx.fail(`beta1 and beta2 must be in [0, 1), got ${beta1} and ${beta2}`);
  if (!(eps > 0)) ctx.fail(`eps must be > 0, got ${eps}`);
  const param = ctx.floats(a.param, 'param');
  const grad = ctx.floats(a.grad, 'grad');
  const mState = ctx.floats(a.m, 'm');
  const vState = ctx.floats(a.v, 'v');
  const biasCorrection1 = 1 - beta1 ** step;
  const biasCorrection2 = 1 - beta2 ** step;
  for (let e = 0; e < a.size; e++) {
    const g = grad[e]! * gradScale;
    const m = beta1 * mState[e]! + (1 - beta1) * g;
    const v = beta2 * vState[e]! + (1 - beta2) * g * g;
    const update = m / biasCorrection1 / (Math.sqrt(v / biasCorrection2) + eps) + weightDecay * param[e]!;
    param[e] = param[e]! - lr * update;
    mState[e] = m;
    vState[e] = v;
  }
}

/** out[outIndex] = Σ_e x[e]² in f64. */
export function sumSquares(ctx: OpContext, a: OpArgs['sumSquares']): void {
  if (!Number.isInteger(a.outIndex) || a.outIndex < 0) ctx.fail(`outIndex must be a non-negative integer, got ${a.outIndex}`);
  const x = ctx.floats(a.x, 'x');
  let sum = 0;
  for (let e = 0; e < a.size; e++) sum += x[e]! * x[e]!;
  ctx.floats(a.out, 'out')[a.outIndex] = sum;
}
