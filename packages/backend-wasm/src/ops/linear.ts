// The matmul family's host side: linear (+ fused bias and GELU epilogue), its backward pass and
// the tied output projection. Every product is the one `gemm` kernel with different strides
// (assembly/gemm.ts); each thread gets a range of output rows (or columns when there are few
// rows), so every output element is computed by exactly one thread in a fixed order.
import type { Activation, OpArgs } from '@blankglm/tensor';
import type { KernelCall } from '../pool.js';
import type { WasmOp, WasmOpContext } from './context.js';

export const ACTIVATION_CODES: Record<Activation, number> = { none: 0, gelu_tanh: 1, gelu_erf: 2 };

/** Micro-kernel tile: 4 rows × 8 columns. */
const ROW_ALIGN = 4;
const COL_ALIGN = 8;
/** Split rows when each thread gets at least this many, else split columns. */
const MIN_ROWS_PER_THREAD = 32;

export interface GemmOperands {
  a: number;
  aRow: number;
  aRed: number;
  b: number;
  bCol: number;
  bRed: number;
  c: number;
  ldc: number;
  /** y = act(C) is also written when y ≠ 0. */
  y?: number;
  ldy?: number;
  bias?: number;
  act?: number;
  accumulate: boolean;
  rows: number;
  cols: number;
  /** Length of the reduction. */
  depth: number;
}

/** The gemm call of thread `t` for output rows [i0, i1) and columns [j0, j1). */
export function gemmCall(ctx: WasmOpContext, g: GemmOperands, t: number, i0: number, i1: number, j0: number, j1: number): KernelCall {
  return ['gemm', g.a, g.aRow, g.aRed, g.b, g.bCol, g.bRed, g.c, g.ldc, g.y ?? 0, g.ldy ?? 0, g.bias ?? 0, g.act ?? 0, g.accumulate ? 1 : 0, i0, i1, j0, j1, g.depth, ctx.scratch(t)];
}

/** At most this many rows (generation: one token, a few beams) run as dot products, unpacked. */
const FEW_ROWS = 8;

/**
 * Splits a product's output over the threads: by rows when there are enough, else by columns.
 * A handful of rows with both operands contiguous along the reduction takes the dot-product
 * kernel instead (packing B would cost as much as the product). The choice depends on the shape
 * only, never on the thread count, so results stay thread-independent.
 */
export function splitGemm(ctx: WasmOpContext, g: GemmOperands): KernelCall[][] {
  if (g.rows <= FEW_ROWS && g.aRed === 1 && g.bRed === 1) {
    return ctx.split(g.cols, { align: 4, minPerThread: 256 }).map(([s, e]) => [
      ['gemmFewRows', g.a, g.aRow, g.b, g.bCol, g.c, g.ldc, g.y ?? 0, g.ldy ?? 0, g.bias ?? 0, g.act ?? 0, g.accumulate ? 1 : 0, 0, g.rows, s, e, g.depth],
    ]);
  }
  if (g.rows >= MIN_ROWS_PER_THREAD * ctx.threads || g.cols < COL_ALIGN * ctx.threads) {
    return ctx.split(g.rows, { align: ROW_ALIGN, minPerThread: MIN_ROWS_PER_THREAD }).map(([s, e], t) => [gemmCall(ctx, g, t, s, e, 0, g.cols)]);
  }
  return ctx.split(g.cols, { align: COL_ALIGN, minPerThread: 64 }).map(([s, e], t) => [gemmCall(ctx, g, t, 0, g.rows, s, e)]);
}

export const linear: WasmOp<'linear'> = {
  run(ctx: WasmOpContext, a: OpArgs['linear']): void {
    const { rows: M, inFeatures: K, outFeatures: N } = a;
    const y = ctx.ptr(a.y, 'y');
    const preAct = a.preAct ? ctx.ptr(a.preAct, 'preAct') : 0;
    // With preAct, the product lands there and the epilogue writes y = act(preAct) (a copy for
    // 'none'); without it, the product lands in y directly.
    const g: GemmOperands = {
      a: ctx.ptr(a.x, 'x'),
      aRow: K,
      aRed: 1,
      b: ctx.ptr(a.weight, 'weight'),
      bCol: K,
      bRed: 1,
      c: preAct || y,
      ldc: N,
      y: preAct ? y : 0,
      ldy: N,
      bias: a.bias ? ctx.ptr(a.bias, 'bias') : 0,
      act: ACTIVATION_CODES[a.activation],
      accumulate: false,
      rows: M,
      cols: N,
      depth: K,
    };
    ctx.parallel(splitGemm(ctx, g));
  },
};

export const linearBackward: WasmOp<'linearBackward'> = {
  run(ctx: WasmOpContext, a: OpArgs['linearBackward']): void {
    const { rows: M, inFeatures: K, outFeatures: N } = a;
    const act = ACTIVATION_CODES[a.activation];
    const dy = ctx.ptr(a.dy, 'dy');
    // dz = dy ⊙ act'(preAct): a temporary [M, N] unless there is no activation.
    let dz = dy;
    if (act !== 0) {
      dz = ctx.temp(M * N * 4);
      const preAct = ctx.ptr(a.preAct!, 'preAct');
      ctx.parallel(ctx.split(M, { minPerThread: 8 }).map(([s, e]): KernelCall[] => [['activationBackward', dy, preAct, dz, act, s, e, N]]));
    }
    const x = ctx.ptr(a.x, 'x');
    const w = ctx.ptr(a.weight, 'weight');
    const perThread: KernelCall[][] = Array.from({ length: ctx.threads }, () => []);
    if (a.dx) {
      // dx[m, k] = Σ_n dz[m, n]·W[n, k]
      const g: GemmOperands = { a: dz, aRow: N, aRed: 1, b: w, bCol: 1, bRed: K, c: ctx.ptr(a.dx, 'dx'), ldc: K, accumulate: a.accumulate, rows: M, cols: K, depth: N };
      splitGemm(ctx, g).forEach((calls, t) => perThread[t]!.push(...calls));
    }
    // dW[n, k] += Σ_m dz[m, n]·x[m, k]; dBias[n] += Σ_m dz[m, n] — both split over n.
    const dW: GemmOperands = { a: dz, aRow: 1, aRed: N, b: x, bCol: 1, bRed: K, c: ctx.ptr(a.dWeight, 'dWeight'), ldc: K, accumulate: true, rows: N, cols: K, depth: M };
    splitGemm(ctx, dW).forEach((calls, t) => perThread[t]!.push(...calls));
    if (a.dBias) {
      const dBias = ctx.ptr(a.dBias, 'dBias');
      ctx.split(N, { align: 4, minPerThread: 64 }).forEach(([s, e], t) => perThread[t]!.push(['columnSums', dz, M, N, dBias, s, e]));
    }
    ctx.parallel(perThread);
  },
};

export const logits: WasmOp<'logits'> = {
  run(ctx: WasmOpContext, a: OpArgs['logits']): void {
    const { tokens: T, hiddenSize: H, vocab: V } = a;
    const g: GemmOperands = {
      a: ctx.ptr(a.hidden, 'hidden'),
      aRow: H,
      aRed: 1,
      b: ctx.ptr(a.wordEmb, 'wordEmb'),
      bCol: H,
      bRed: 1,
      c: ctx.ptr(a.out, 'out'),
      ldc: V,
      accumulate: false,
      rows: T,
      cols: V,
      depth: H,
    };
    ctx.parallel(splitGemm(ctx, g));
  },
};
