// What a host wrapper (src/ops/<op>.ts) sees: pointers into the one memory, per-thread scratch,
// host temporaries, a splitter and the pool. See CONTRIBUTING-KERNELS.md.
import type { OpArgs, OpName, SupportResult, Tensor } from '@blankglm/tensor';
import type { KernelCall } from '../pool.js';

export interface SplitOptions {
  /** Range starts are multiples of this (e.g. 4 rows for the matmul micro-kernel). */
  align?: number;
  /** Fewest items worth a thread of their own; fewer threads are used below it. */
  minPerThread?: number;
}

export interface WasmOpContext {
  readonly op: OpName;
  /** Threads in the pool (thread 0 is the calling thread). */
  readonly threads: number;
  /** Byte offset in the memory of element `offset` of a live tensor; `arg` names it in errors. */
  ptr(t: Tensor, arg: string, offset?: number): number;
  /** Byte offset of thread t's private scratch area (`scratchBytes` bytes, 16-aligned). */
  scratch(thread: number): number;
  readonly scratchBytes: number;
  /** A host temporary of `bytes` bytes (16-aligned), freed automatically when the op returns. */
  temp(bytes: number): number;
  /** Contiguous ranges [start, end) covering [0, count), at most one per thread, in thread order. */
  split(count: number, options?: SplitOptions): Array<[number, number]>;
  /** Runs each thread's kernel calls (entry t for thread t) and waits for all of them. */
  parallel(perThread: readonly (readonly KernelCall[] | null)[]): void;
  /** A live view of an i32 tensor's first `count` elements (for checking ids before a kernel runs). */
  ints(t: Tensor, arg: string, count: number): Int32Array;
  /** Throws a RangeError "<op>: <message>". */
  fail(message: string): never;
}

/** One op of the catalogue on the WASM backend. */
export interface WasmOp<K extends OpName> {
  /** Conditions beyond "every float tensor is f32", checked by Backend.supports. */
  supports?(args: OpArgs[K]): SupportResult;
  run(ctx: WasmOpContext, args: OpArgs[K]): void;
}

export type WasmOpTable = { [K in OpName]?: WasmOp<K> };

/** Checks ids[0..count) ∈ [0, limit) before a kernel uses them as row indices. */
export function checkIds(ctx: WasmOpContext, ids: Tensor, count: number, arg: string, limit: number, table: string): void {
  const v = ctx.ints(ids, arg, count);
  for (let i = 0; i < count; i++) {
    const id = v[i]!;
    if (id < 0) ctx.fail(`${arg}[${i}] = ${id} is negative; expected a row of ${table} (0..${limit - 1})`);
    if (id >= limit) ctx.fail(`${arg}[${i}] = ${id} is past ${table} (${limit} rows)`);
  }
}
