// dropoutAdd, dropoutBackward and scale (assembly/elementwise.ts): element ranges split among
// threads. Dropout masks are counterHash32(seed, stream, element) — the reference's bits exactly.
import type { DropoutAttrs, OpArgs } from '@blankglm/tensor';
import type { KernelCall } from '../pool.js';
import type { WasmOp, WasmOpContext } from './context.js';

/** Elements worth waking a thread for (these kernels are memory-bound). */
const MIN_PER_THREAD = 1 << 15;

/** p, then seed and stream as 32-bit patterns (ToInt32, as counterHash32's own xor and imul see them). */
function dropoutArgs(d: DropoutAttrs): [number, number, number] {
  return [d.p, d.seed | 0, d.stream | 0];
}

export const dropoutAdd: WasmOp<'dropoutAdd'> = {
  run(ctx: WasmOpContext, a: OpArgs['dropoutAdd']): void {
    const args = [ctx.ptr(a.x, 'x'), a.residual ? ctx.ptr(a.residual, 'residual') : 0, a.residual ? 1 : 0, ctx.ptr(a.out, 'out'), ...dropoutArgs(a.dropout)];
    ctx.parallel(ctx.split(a.size, { align: 4, minPerThread: MIN_PER_THREAD }).map(([s, e]): KernelCall[] => [['dropoutAddRange', ...args, s, e]]));
  },
};

export const dropoutBackward: WasmOp<'dropoutBackward'> = {
  run(ctx: WasmOpContext, a: OpArgs['dropoutBackward']): void {
    const args = [ctx.ptr(a.dy, 'dy'), ctx.ptr(a.dx, 'dx'), a.accumulate ? 1 : 0, ...dropoutArgs(a.dropout)];
    ctx.parallel(ctx.split(a.size, { align: 4, minPerThread: MIN_PER_THREAD }).map(([s, e]): KernelCall[] => [['dropoutBackwardRange', ...args, s, e]]));
  },
};

export const scale: WasmOp<'scale'> = {
  run(ctx: WasmOpContext, a: OpArgs['scale']): void {
    if (!Number.isInteger(a.size) || a.size < 0) ctx.fail(`size must be a non-negative integer, got ${a.size}`);
    if (a.size === 0) return;
    const x = ctx.ptr(a.x, 'x');
    ctx.parallel(ctx.split(a.size, { align: 4, minPerThread: MIN_PER_THREAD }).map(([s, e]): KernelCall[] => [['scaleRange', x, a.factor, s, e]]));
  },
};
