// Dropout on activations, fused with the residual add, and its backward.
// Element e is dropped when counterUniform(seed, stream, e) < p; kept elements are scaled by 1/(1−p).
import { counterUniform, type DropoutAttrs, type OpArgs } from '@blankglm/tensor';
import type { OpContext } from './context.js';

/** 0 for a dropped element, 1/(1−p) for a kept one; 1 everywhere when p = 0 (no hashing). */
export function dropoutFactor(dropout: DropoutAttrs, element: number): number {
  if (dropout.p === 0) return 1;
  return counterUniform(dropout.seed, dropout.stream, element) < dropout.p ? 0 : 1 / (1 - dropout.p);
}

/** out[e] = (residual?[e] ?? 0) + x[e]·factor(e); out may be residual (in place).  all: [n] */
export function dropoutAdd(ctx: OpContext, a: OpArgs['dropoutAdd']): void {
  const x = ctx.floats(a.x, 'x');
  const residual = a.residual ? ctx.floats(a.residual, 'residual') : null;
  const out = ctx.floats(a.out, 'out');
  for (let e = 0; e < a.size; e++) {
    const dropped = x[e]! * dropoutFactor(a.dropout, e);
    out[e] = residual ? residual[e]! + dropped : dropped;
  }
}

/** dx[e] (= or +=) dy[e]·factor(e), with the same mask as dropoutAdd.  all: [n] */
export function dropoutBackward(ctx: OpContext, a: OpArgs['dropoutBackward']): void {
  const dy = ctx.floats(a.dy, 'dy');
  const dx = ctx.floats(a.dx, 'dx');
  for (let e = 0; e < a.size; e++) {
    const grad = dy[e]! * dropoutFactor(a.dropout, e);
    dx[e] = a.accumulate ? dx[e]! + grad : grad;
  }
}
