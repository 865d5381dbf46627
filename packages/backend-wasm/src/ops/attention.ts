// attention and attentionBackward (assembly/attention.ts): flash-style over each query's key range.
// Work is split into contiguous ranges of items, balanced by cost (visible keys per query, or
// queries per key), so a GLM mask's causal Part B does not leave threads idle. Every item is
// computed by one thread in a fixed order, so results do not depend on the thread count.
//
// The backward runs in two passes: queries (dq, and Δ_i = Σ_j P_ij·dP_ij into a temporary), then
// keys (dk, dv summed over the queries that see each key) — no two threads ever add into the
// same element.
import type { OpArgs, StridedView } from '@blankglm/tensor';
import type { KernelCall } from '../pool.js';
import type { WasmOp, WasmOpContext } from './context.js';

/** Keys per forward block; mirrors KEY_BLOCK in assembly/attention.ts. */
const KEY_BLOCK = 64;
/** Fixed cost of an item (loop set-up, the output row), in units of one key·head-dim step. */
const ITEM_OVERHEAD = 8;
/** Items' total cost worth waking a thread for. */
const MIN_COST_PER_THREAD = 4096;

/** Per-thread scratch bytes of the attention kernels (twin of attentionScratchBytes in AS). */
export function attentionScratchBytes(keys: number, headDim: number): number {
  const d4 = (headDim + 3) & ~3;
  const k4 = (Math.max(keys, KEY_BLOCK) + 7) & ~3;
  return (4 * k4 + 4 * d4 + 16) * 4;
}

/**
 * Thread t's scratch address: the pool's per-thread scratch when it is large enough, else a slice
 * of one host temporary (very long key ranges), so no key count is unsupported.
 */
function scratchFor(ctx: WasmOpContext, keys: number, headDim: number): (thread: number) => number {
  const need = attentionScratchBytes(keys, headDim);
  if (need <= ctx.scratchBytes) return (t) => ctx.scratch(t);
  const stride = Math.ceil(need / 16) * 16;
  const base = ctx.temp(stride * ctx.threads);
  return (t) => base + t * stride;
}

/** [address of element (0, 0, 0), rowStride, batchStride] of a view. */
function viewArgs(ctx: WasmOpContext, v: StridedView, arg: string): [number, number, number] {
  return [ctx.ptr(v.tensor, arg, v.offset), v.rowStride, v.batchStride];
}

/** Checks 0 ≤ keyStart < keyEnd ≤ keys for every query, like the reference, before any kernel runs. */
function checkKeyRanges(ctx: WasmOpContext, a: OpArgs['attention']): { keyStart: Int32Array; keyEnd: Int32Array } {
  const n = a.batch * a.queries;
  const keyStart = ctx.ints(a.keyStart, 'keyStart', n);
  const keyEnd = ctx.ints(a.keyEnd, 'keyEnd', n);
  for (let o = 0; o < n; o++) {
    const s = keyStart[o]!;
    const e = keyEnd[o]!;
    const b = Math.floor(o / a.queries);
    const i = o % a.queries;
    if (s < 0) ctx.fail(`keyStart[b=${b}, i=${i}] = ${s} is negative`);
    if (e > a.keys) ctx.fail(`keyEnd[b=${b}, i=${i}] = ${e} is past the keys (${a.keys})`);
    if (e <= s) ctx.fail(`query (b=${b}, i=${i}) has an empty key range [${s}, ${e})`);
  }
  return { keyStart, keyEnd };
}

/**
 * Contiguous item ranges, one per thread at most, with about equal total cost. Items are
 * (b·heads + h)·n + r for r < n, and cost(b, r) does not depend on the head.
 */
function splitByCost(ctx: WasmOpContext, batch: number, heads: number, n: number, cost: (b: number, r: number) => number): Array<[number, number]> {
  const items = batch * heads * n;
  let total = 0;
  for (let b = 0; b < batch; b++) for (let r = 0; r < n; r++) total += cost(b, r);
  total *= heads;
  const threads = Math.max(1, Math.min(ctx.threads, Math.floor(total / MIN_COST_PER_THREAD), items));
  if (threads === 1) return [[0, items]];
  const ranges: Array<[number, number]> = [];
  let start = 0;
  let acc = 0;
  let item = 0;
  for (let t = 1; t < threads; t++) {
    const target = (total * t) / threads;
    while (item < items && acc < target) {
      const r = item % n;
      const b = Math.floor(item / (heads * n));
      acc += cost(b, r);
      item++;
    }
    ranges.push([start, item]);
    start = item;
  }
  ranges.push([start, items]);
  return ranges;
}

/** The dropout attributes as kernel arguments: p, seed and stream (32-bit patterns). */
function dropoutArgs(d: OpArgs['attention']['dropout']): [number, number, number] {
  return [d.p, d.seed | 0, d.stream | 0];
}

export const attention: WasmOp<'attention'> = {
  run(ctx: WasmOpContext, a: OpArgs['attention']): void {
    const { keyStart, keyEnd } = checkKeyRanges(ctx, a);
    const { batch: B, queries: Lq, keys: Lk, heads, headDim: D } = a;
    const scratch = scratchFor(ctx, Lk, D);
    const head = [
      ...viewArgs(ctx, a.q, 'q'),
      ...viewArgs(ctx, a.k, 'k'),
      ...viewArgs(ctx, a.v, 'v'),
      ctx.ptr(a.keyStart, 'keyStart'),
      ctx.ptr(a.keyEnd, 'keyEnd'),
      ctx.ptr(a.out, 'out'),
      a.lse ? ctx.ptr(a.lse, 'lse') : 0,
      a.lse ? 1 : 0,
      Lq, Lk, heads, D, a.scale,
      ...dropoutArgs(a.dropout),
    ];
    const cost = (b: number, i: number): number => (keyEnd[b * Lq + i]! - keyStart[b * Lq + i]! + ITEM_OVERHEAD) * D;
    const ranges = splitByCost(ctx, B, heads, Lq, cost);
    ctx.parallel(ranges.map(([s, e], t): KernelCall[] => [['attentionForward', ...head, scratch(t), s, e]]));
  },
};

export const attentionBackward: WasmOp<'attentionBackward'> = {
  run(ctx: WasmOpContext, a: OpArgs['attentionBackward']): void {
    const { keyStart, keyEnd } = checkKeyRanges(ctx, a);
    const { batch: B, queries: Lq, keys: Lk, heads, headDim: D } = a;
    const scratch = scratchFor(ctx, Lk, D);
    const delta = ctx.temp(B * heads * Lq * 4); // [B, heads, Lq]: Δ_i of pass 1
    const inputs = [
      ...viewArgs(ctx, a.q, 'q'),
      ...viewArgs(ctx, a.k, 'k'),
      ...viewArgs(ctx, a.v, 'v'),
      ctx.ptr(a.dOut, 'dOut'),
      ctx.ptr(a.lse, 'lse'),
      ctx.ptr(a.keyStart, 'keyStart'),
      ctx.ptr(a.keyEnd, 'keyEnd'),
    ];
    const attrs = [Lq, Lk, heads, D, a.scale, ...dropoutArgs(a.dropout)];

    const queryCost = (b: number, i: number): number => (keyEnd[b * Lq + i]! - keyStart[b * Lq + i]! + ITEM_OVERHEAD) * D;
    const queryRanges = splitByCost(ctx, B, heads, Lq, queryCost);
    const dq = viewArgs(ctx, a.dq, 'dq');
    ctx.parallel(queryRanges.map(([s, e], t): KernelCall[] => [['attentionBackwardQueries', ...inputs, ...dq, delta, ...attrs, scratch(t), s, e]]));

    // Queries seeing each key (b, j), by a difference array over the key ranges.
    const seenBy = new Int32Array(B * (Lk + 1));
    for (let b = 0; b < B; b++) {
      for (let i = 0; i < Lq; i++) {
        seenBy[b * (Lk + 1) + keyStart[b * Lq + i]!]! += 1;
        seenBy[b * (Lk + 1) + keyEnd[b * Lq + i]!]! -= 1;
      }
      for (let j = 1; j <= Lk; j++) seenBy[b * (Lk + 1) + j]! += seenBy[b * (Lk + 1) + j - 1]!;
    }
    // Each key scans all Lq query ranges; each query that sees it costs a few dot products.
    const keyCost = (b: number, j: number): number => seenBy[b * (Lk + 1) + j]! * D + Lq + ITEM_OVERHEAD * D;
    const keyRanges = splitByCost(ctx, B, heads, Lk, keyCost);
    const dk = viewArgs(ctx, a.dk, 'dk');
    const dv = viewArgs(ctx, a.dv, 'dv');
    ctx.parallel(keyRanges.map(([s, e], t): KernelCall[] => [['attentionBackwardKeys', ...inputs, ...dk, ...dv, delta, ...attrs, scratch(t), s, e]]));
  },
};
