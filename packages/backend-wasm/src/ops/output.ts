// Cross-entropy on the tied output projection, chunked over the vocabulary (assembly/output.ts):
// the [T, V] logits never exist, only a [T, chunk] buffer.
import type { OpArgs } from '@blankglm/tensor';
import type { KernelCall } from '../pool.js';
import { checkIds, type WasmOp, type WasmOpContext } from './context.js';
import { gemmCall } from './linear.js';

/** Bytes of the chunk buffer at most (L2-sized blocks per thread); the chunk width follows from T
 *  (never from the threads), so the reduction order does too. */
const CHUNK_BYTES = 2 << 20;
/** Row stride = chunk width + 16 floats: a power-of-two stride would make the micro-kernel's rows
 *  alias in the L1 cache (measured: 2× slower at vc = 4096). */
const STRIDE_PAD = 16;

/** Vocabulary columns per chunk for T rows: a multiple of 8 in [64, 4096]. */
export function vocabChunk(tokens: number, vocab: number): number {
  const byBudget = Math.floor(CHUNK_BYTES / 4 / tokens / 8) * 8;
  return Math.min(Math.max(64, byBudget), 4096, Math.ceil(vocab / 8) * 8);
}

export const crossEntropy: WasmOp<'crossEntropy'> = {
  run(ctx: WasmOpContext, a: OpArgs['crossEntropy']): void {
    const { tokens: T, hiddenSize: H, vocab: V } = a;
    checkIds(ctx, a.targets, T, 'targets', V, 'the vocabulary');
    const vc = vocabChunk(T, V);
    const ld = vc + STRIDE_PAD;
    const chunk = ctx.temp(T * ld * 4);
    const stats = ctx.temp(T * 32);
    const hidden = ctx.ptr(a.hidden, 'hidden');
    const wordEmb = ctx.ptr(a.wordEmb, 'wordEmb');
    const targets = ctx.ptr(a.targets, 'targets');
    const losses = ctx.ptr(a.losses, 'losses');
    const lse = ctx.ptr(a.lse, 'lse');
    ctx.parallel(
      ctx.split(T, { align: 4, minPerThread: 4 }).map(([s, e], t): KernelCall[] => [
        ['crossEntropyRows', hidden, wordEmb, targets, H, V, s, e, chunk, vc, ld, stats, losses, lse, a.labelSmoothing, ctx.scratch(t)],
      ]),
    );
  },
};

export const crossEntropyBackward: WasmOp<'crossEntropyBackward'> = {
  run(ctx: WasmOpContext, a: OpArgs['crossEntropyBackward']): void {
    const { tokens: T, hiddenSize: H, vocab: V } = a;
    checkIds(ctx, a.targets, T, 'targets', V, 'the vocabulary');
    const vc = vocabChunk(T, V);
    const ld = vc + STRIDE_PAD;
    const chunk = ctx.temp(T * ld * 4);
    const hidden = ctx.ptr(a.hidden, 'hidden');
    const wordEmb = ctx.ptr(a.wordEmb, 'wordEmb');
    const targets = ctx.ptr(a.targets, 'targets');
    const lse = ctx.ptr(a.lse, 'lse');
    const weights = ctx.ptr(a.weights, 'weights');
    const dHidden = ctx.ptr(a.dHidden, 'dHidden');
    const dWordEmb = ctx.ptr(a.dWordEmb, 'dWordEmb');
    const rowRanges = ctx.split(T, { align: 4, minPerThread: 4 });
    for (let v0 = 0; v0 < V; v0 += vc) {
      const width = Math.min(vc, V - v0);
      // Phase 1, split over tokens: dz for the chunk (in place) and dHidden (= then +=).
      ctx.parallel(
        rowRanges.map(([s, e], t): KernelCall[] => [
          ['crossEntropyBackwardRows', hidden, wordEmb, targets, lse, weights, dHidden, H, V, v0, width, s, e, chunk, ld, a.labelSmoothing, ctx.scratch(t)],
        ]),
      );
      // Phase 2, split over the chunk's vocabulary rows: dWordEmb[v0 + v, :] += Σ_t dz[t, v]·hidden[t, :].
      const g = { a: chunk, aRow: 1, aRed: ld, b: hidden, bCol: 1, bRed: H, c: dWordEmb + v0 * H * 4, ldc: H, accumulate: true, rows: width, cols: H, depth: T };
      ctx.parallel(ctx.split(width, { align: 4, minPerThread: 16 }).map(([s, e], t): KernelCall[] => [gemmCall(ctx, g, t, s, e, 0, H)]));
    }
  },
};
