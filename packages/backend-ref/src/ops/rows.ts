// Row gather and its backward, scatter-add (also used by the embedding backward).
import type { OpArgs } from '@blankglm/tensor';
import { checkIds, type OpContext } from './context.js';

/** out[t, :] = x[index[t], :].  x: [R, W], out: [T, W] */
export function gatherRows(ctx: OpContext, a: OpArgs['gatherRows']): void {
  const { count: T, width: W } = a;
  const index = ctx.ints(a.index, 'index');
  checkIds(ctx, index, T, 'index', a.rows, 'x');
  const x = ctx.floats(a.x, 'x');
  const out = ctx.floats(a.out, 'out');
  for (let t = 0; t < T; t++) {
    const src = index[t]! * W;
    for (let c = 0; c < W; c++) out[t * W + c] = x[src + c]!;
  }
}

/** dx[index[t], :] += dOut[t, :].  dOut: [T, W], dx: [R, W] */
export function scatterAddRows(ctx: OpContext, a: OpArgs['scatterAddRows']): void {
  const index = ctx.ints(a.index, 'index');
  checkIds(ctx, index, a.count, 'index', a.rows, 'dx');
  scatterAddRowsInto(ctx.floats(a.dOut, 'dOut'), index, ctx.floats(a.dx, 'dx'), a.count, a.width);
}

/**
 * dst[index[t], :] += src[t, :] for t < count. Rows hit several times are summed in f64 first and
 * added to dst once, so the result does not depend on the order of the indices.
 * Indices must already be checked.
 */
export function scatterAddRowsInto(src: Float32Array, index: Int32Array, dst: Float32Array, count: number, width: number): void {
  // Visit the sources grouped by destination row: sort t by index (stable), then sum each group.
  const order = Array.from({ length: count }, (_, t) => t).sort((s, t) => index[s]! - index[t]! || s - t);
  const rowSum = new Float64Array(width);
  let g = 0;
  while (g < count) {
    const row = index[order[g]!]!;
    rowSum.fill(0);
    for (; g < count && index[order[g]!] === row; g++) {
      const t = order[g]!;
      for (let c = 0; c < width; c++) rowSum[c] += src[t * width + c]!;
    }
    for (let c = 0; c < width; c++) dst[row * width + c] = dst[row * width + c]! + rowSum[c]!;
  }
}
