// layerNorm and layerNormBackward: rows split among threads (assembly/layernorm.ts). The backward's
// dGamma/dBeta go through partial sums over fixed blocks of BLOCK_ROWS rows, then a second pass adds
// the blocks in order, column ranges split among threads: the same bits for any thread count.
import type { OpArgs } from '@blankglm/tensor';
import type { KernelCall } from '../pool.js';
import type { WasmOp, WasmOpContext } from './context.js';

/** Rows per dGamma/dBeta partial-sum block (fixed: it defines the summation order). */
const BLOCK_ROWS = 32;
/** Elements worth waking a thread for. */
const MIN_ELEMENTS_PER_THREAD = 16384;

export const layerNorm: WasmOp<'layerNorm'> = {
  run(ctx: WasmOpContext, a: OpArgs['layerNorm']): void {
    const { rows: R, hiddenSize: H, eps } = a;
    const x = ctx.ptr(a.x, 'x');
    const gamma = ctx.ptr(a.gamma, 'gamma');
    const beta = ctx.ptr(a.beta, 'beta');
    const y = ctx.ptr(a.y, 'y');
    const mean = ctx.ptr(a.mean, 'mean');
    const rstd = ctx.ptr(a.rstd, 'rstd');
    const ranges = ctx.split(R, { minPerThread: Math.ceil(MIN_ELEMENTS_PER_THREAD / H) });
    ctx.parallel(ranges.map(([s, e]): KernelCall[] => [['layerNormRows', x, gamma, beta, y, mean, rstd, H, eps, s, e]]));
  },
};

export const layerNormBackward: WasmOp<'layerNormBackward'> = {
  run(ctx: WasmOpContext, a: OpArgs['layerNormBackward']): void {
    const { rows: R, hiddenSize: H } = a;
    const blocks = Math.ceil(R / BLOCK_ROWS);
    const partials = ctx.temp(blocks * 2 * H * 4); // [blocks, 2, H]: Σ dy⊙x̂, Σ dy per block
    const dy = ctx.ptr(a.dy, 'dy');
    const x = ctx.ptr(a.x, 'x');
    const gamma = ctx.ptr(a.gamma, 'gamma');
    const mean = ctx.ptr(a.mean, 'mean');
    const rstd = ctx.ptr(a.rstd, 'rstd');
    const dx = ctx.ptr(a.dx, 'dx');
    const rowRanges = ctx.split(R, { align: BLOCK_ROWS, minPerThread: Math.max(BLOCK_ROWS, Math.ceil(MIN_ELEMENTS_PER_THREAD / H)) });
    ctx.parallel(
      rowRanges.map(([s, e]): KernelCall[] => [['layerNormBackwardRows', dy, x, gamma, mean, rstd, dx, partials, H, a.accumulate ? 1 : 0, BLOCK_ROWS, s, e]]),
    );
    const dGamma = ctx.ptr(a.dGamma, 'dGamma');
    const dBeta = ctx.ptr(a.dBeta, 'dBeta');
    const colRanges = ctx.split(H, { align: 4, minPerThread: Math.max(64, Math.ceil(MIN_ELEMENTS_PER_THREAD / blocks)) });
    ctx.parallel(colRanges.map(([s, e]): KernelCall[] => [['layerNormReduceBlocks', partials, blocks, dGamma, dBeta, H, s, e]]));
  },
};
