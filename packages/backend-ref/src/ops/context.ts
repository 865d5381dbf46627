// What an op implementation sees: typed access to its tensors and a way to fail with a message
// naming the op. Kept tiny so each op file reads like the formula it implements.
import type { OpName, StridedView, Tensor } from '@blankglm/tensor';

export interface OpContext {
  readonly op: OpName;
  /** The f32 (or bf16-valued f32) elements of a float tensor; `arg` names it in errors. */
  floats(t: Tensor, arg: string): Float32Array;
  /** The elements of an i32 tensor. */
  ints(t: Tensor, arg: string): Int32Array;
  /** The elements of a tensor of any dtype (fill, copy). */
  any(t: Tensor, arg: string): Float32Array | Int32Array | Uint8Array;
  /** Throws a RangeError "<op>: <message>". */
  fail(message: string): never;
}

/** Element (b, t, c) of a strided [B, T, C] view lives at `viewIndex(view, b, t) + c`. */
export function viewIndex(view: StridedView, b: number, t: number): number {
  return view.offset + b * view.batchStride + t * view.rowStride;
}

/**
 * Checks that every id in `ids[0..count)` lies in [0, limit), before an op uses them as row
 * indices; e.g. "embedding: positionIds[37] = 600 is past the position table (513 rows)".
 */
export function checkIds(ctx: OpContext, ids: Int32Array, count: number, arg: string, limit: number, table: string): void {
  for (let i = 0; i < count; i++) {
    const id = ids[i]!;
    if (id < 0) ctx.fail(`${arg}[${i}] = ${id} is negative; expected a row of ${table} (0..${limit - 1})`);
    if (id >= limit) ctx.fail(`${arg}[${i}] = ${id} is past ${table} (${limit} rows)`);
  }
}
