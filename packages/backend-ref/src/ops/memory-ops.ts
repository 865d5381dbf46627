// Whole-buffer utilities: fill a range, copy a range, scale.
import type { OpArgs, Tensor } from '@blankglm/tensor';
import type { OpContext } from './context.js';

function checkRange(ctx: OpContext, t: Tensor, arg: string, offset: number, size: number, offsetName: string): void {
  if (!Number.isInteger(offset) || offset < 0) ctx.fail(`${offsetName} must be a non-negative integer, got ${offset}`);
  if (!Number.isInteger(size) || size < 0) ctx.fail(`size must be a non-negative integer, got ${size}`);
  if (offset + size > t.size) ctx.fail(`${arg}: range [${offset}, ${offset + size}) is past its end (${t.size} elements)`);
}

/** x[offset + i] = value for i < size (any dtype; integer dtypes need a representable integer). */
export function fill(ctx: OpContext, a: OpArgs['fill']): void {
  checkRange(ctx, a.x, 'x', a.offset, a.size, 'offset');
  if (a.x.dtype === 'i32' && !(Number.isInteger(a.value) && a.value >= -2147483648 && a.value <= 2147483647)) ctx.fail(`value ${a.value} is not an i32`);
  if (a.x.dtype === 'u8' && !(Number.isInteger(a.value) && a.value >= 0 && a.value <= 255)) ctx.fail(`value ${a.value} is not a u8`);
  ctx.any(a.x, 'x').fill(a.value, a.offset, a.offset + a.size);
}

/** dst[dstOffset + i] = src[srcOffset + i] for i < size (same dtype). */
export function copy(ctx: OpContext, a: OpArgs['copy']): void {
  checkRange(ctx, a.src, 'src', a.srcOffset, a.size, 'srcOffset');
  checkRange(ctx, a.dst, 'dst', a.dstOffset, a.size, 'dstOffset');
  const src = ctx.any(a.src, 'src');
  const dst = ctx.any(a.dst, 'dst');
  dst.set(src.subarray(a.srcOffset, a.srcOffset + a.size), a.dstOffset);
}

/** x[e] *= factor for e < size. */
export function scale(ctx: OpContext, a: OpArgs['scale']): void {
  checkRange(ctx, a.x, 'x', 0, a.size, 'offset');
  const x = ctx.floats(a.x, 'x');
  for (let e = 0; e < a.size; e++) x[e] = x[e]! * a.factor;
}
