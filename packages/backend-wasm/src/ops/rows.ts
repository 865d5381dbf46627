// Row movement: embedding, embeddingBackward, gatherRows, scatterAddRows (assembly/rows.ts).
// Ids are checked against their tables before any kernel runs. The scatter-adds split the
// DESTINATION rows among threads; each thread walks every source row in order and adds the ones
// that land in its range, so each destination row sums its sources in the same order for any
// thread count, and no two threads write the same row.
import type { OpArgs, Tensor } from '@blankglm/tensor';
import type { KernelCall } from '../pool.js';
import { checkIds, type WasmOp, type WasmOpContext } from './context.js';

/** Elements worth waking a thread for. */
const MIN_ELEMENTS_PER_THREAD = 16384;

function minRows(width: number): number {
  return Math.max(1, Math.ceil(MIN_ELEMENTS_PER_THREAD / width));
}

/** Per-thread scatter calls adding src rows into `table` ([rows, width]) at `index`. */
function scatterCalls(ctx: WasmOpContext, src: number, index: Tensor, indexArg: string, table: Tensor, tableArg: string, count: number, rows: number, width: number): KernelCall[] {
  const idx = ctx.ptr(index, indexArg);
  const dst = ctx.ptr(table, tableArg);
  // Rows are split by count, not by hits: at most the busiest rows decide the balance.
  return ctx.split(rows, { minPerThread: minRows(width) }).map(([s, e]): KernelCall => ['scatterAddRowsRange', src, idx, dst, count, width, s, e]);
}

export const embedding: WasmOp<'embedding'> = {
  run(ctx: WasmOpContext, a: OpArgs['embedding']): void {
    const { tokens: T, hiddenSize: H } = a;
    checkIds(ctx, a.inputIds, T, 'inputIds', a.vocab, 'the word embedding table');
    checkIds(ctx, a.positionIds, T, 'positionIds', a.positions, 'the position table');
    if (a.blockPositionIds) checkIds(ctx, a.blockPositionIds, T, 'blockPositionIds', a.positions, 'the block position table');
    const hasBlock = a.blockPosEmb !== null && a.blockPositionIds !== null;
    const args = [
      ctx.ptr(a.wordEmb, 'wordEmb'),
      ctx.ptr(a.posEmb, 'posEmb'),
      hasBlock ? ctx.ptr(a.blockPosEmb!, 'blockPosEmb') : 0,
      ctx.ptr(a.inputIds, 'inputIds'),
      ctx.ptr(a.positionIds, 'positionIds'),
      hasBlock ? ctx.ptr(a.blockPositionIds!, 'blockPositionIds') : 0,
      hasBlock ? 1 : 0,
      ctx.ptr(a.out, 'out'),
      H,
    ];
    ctx.parallel(ctx.split(T, { minPerThread: minRows(H) }).map(([s, e]): KernelCall[] => [['embeddingRows', ...args, s, e]]));
  },
};

export const embeddingBackward: WasmOp<'embeddingBackward'> = {
  run(ctx: WasmOpContext, a: OpArgs['embeddingBackward']): void {
    const { tokens: T, hiddenSize: H } = a;
    checkIds(ctx, a.inputIds, T, 'inputIds', a.vocab, 'the word embedding table');
    checkIds(ctx, a.positionIds, T, 'positionIds', a.positions, 'the position table');
    if (a.blockPositionIds) checkIds(ctx, a.blockPositionIds, T, 'blockPositionIds', a.positions, 'the block position table');
    const dOut = ctx.ptr(a.dOut, 'dOut');
    const perThread: KernelCall[][] = Array.from({ length: ctx.threads }, () => []);
    const add = (calls: KernelCall[]): void => calls.forEach((c, t) => perThread[t]!.push(c));
    add(scatterCalls(ctx, dOut, a.inputIds, 'inputIds', a.dWordEmb, 'dWordEmb', T, a.vocab, H));
    add(scatterCalls(ctx, dOut, a.positionIds, 'positionIds', a.dPosEmb, 'dPosEmb', T, a.positions, H));
    if (a.blockPositionIds && a.dBlockPosEmb) add(scatterCalls(ctx, dOut, a.blockPositionIds, 'blockPositionIds', a.dBlockPosEmb, 'dBlockPosEmb', T, a.positions, H));
    ctx.parallel(perThread);
  },
};

export const gatherRows: WasmOp<'gatherRows'> = {
  run(ctx: WasmOpContext, a: OpArgs['gatherRows']): void {
    checkIds(ctx, a.index, a.count, 'index', a.rows, 'x');
    const args = [ctx.ptr(a.x, 'x'), ctx.ptr(a.index, 'index'), ctx.ptr(a.out, 'out'), a.width];
    ctx.parallel(ctx.split(a.count, { minPerThread: minRows(a.width) }).map(([s, e]): KernelCall[] => [['gatherRowsRange', ...args, s, e]]));
  },
};

export const scatterAddRows: WasmOp<'scatterAddRows'> = {
  run(ctx: WasmOpContext, a: OpArgs['scatterAddRows']): void {
    checkIds(ctx, a.index, a.count, 'index', a.rows, 'dx');
    ctx.parallel(scatterCalls(ctx, ctx.ptr(a.dOut, 'dOut'), a.index, 'index', a.dx, 'dx', a.count, a.rows, a.width).map((c) => [c]));
  },
};
