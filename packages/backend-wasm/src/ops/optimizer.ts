// adamw and sumSquares (assembly/optimizer.ts). Σx² is summed over fixed blocks of SUM_BLOCK
// elements (f32 lanes inside a block, f64 per block), then the block sums are added in order on one
// thread: the same bits for any thread count.
import type { OpArgs } from '@blankglm/tensor';
import type { KernelCall } from '../pool.js';
import type { WasmOp, WasmOpContext } from './context.js';

/** Elements per Σx² block (fixed: it defines the summation order). */
const SUM_BLOCK = 16384;
/** Elements worth waking a thread for (memory-bound kernels). */
const MIN_PER_THREAD = 1 << 15;

export const adamw: WasmOp<'adamw'> = {
  run(ctx: WasmOpContext, a: OpArgs['adamw']): void {
    // Bias corrections in f64, as the reference computes them.
    const bc1 = 1 - a.beta1 ** a.step;
    const bc2 = 1 - a.beta2 ** a.step;
    const args = [
      ctx.ptr(a.param, 'param'), ctx.ptr(a.grad, 'grad'), ctx.ptr(a.m, 'm'), ctx.ptr(a.v, 'v'),
      a.lr, a.beta1, a.beta2, a.eps, a.weightDecay, a.gradScale, bc1, bc2,
    ];
    ctx.parallel(ctx.split(a.size, { align: 4, minPerThread: MIN_PER_THREAD }).map(([s, e]): KernelCall[] => [['adamwRange', ...args, s, e]]));
  },
};

export const sumSquares: WasmOp<'sumSquares'> = {
  run(ctx: WasmOpContext, a: OpArgs['sumSquares']): void {
    const blocks = Math.ceil(a.size / SUM_BLOCK);
    const partials = ctx.temp(blocks * 8); // f64 [blocks]
    const x = ctx.ptr(a.x, 'x');
    ctx.parallel(
      ctx.split(blocks, { minPerThread: Math.ceil(MIN_PER_THREAD / SUM_BLOCK) }).map(([s, e]): KernelCall[] => [['sumSquaresBlocks', x, a.size, SUM_BLOCK, partials, s, e]]),
    );
    ctx.parallel([[['sumSquaresFinish', partials, blocks, ctx.ptr(a.out, 'out', a.outIndex)]]]);
  },
};
