// Cases for multi-head attention over per-query key ranges and its backward.
//
// Masks come from glmKeyRanges (the GLM prefix mask, packed segments with padding) or, for a
// key/value cache, from the absolute position of each new query. Layouts exercise StridedView:
//   separate  q, k, v in their own [B, L, W] buffers (W = heads·D)
//   fusedQKV  one [B, L, 3W] buffer, q/k/v at offsets 0, W, 2W with rowStride 3W
//   kvCache   q in its own [B, Lq, W] buffer; k and v interleaved in a [B, capacity, 2W] cache with
//             capacity > Lk (spare rows at the end of every batch), and Lq ≠ Lk
import { glmKeyRanges, type OpArgs, type Rng, type StridedView, type Tensor } from '@blankglm/tensor';
import { defineCase, f, f32, i32, normal, type ConformanceCase, type TensorInit } from '../case.js';

type Mask =
  | { kind: 'glm'; sep: 'first' | 'mid' | 'last' | 'random' }
  | { kind: 'packed'; segments: number; padding: number }
  | { kind: 'kvCache'; context: number };
type Layout = 'separate' | 'fusedQKV' | 'kvCache';

interface AttentionSpec {
  batch: number;
  queries: number;
  keys: number;
  heads: number;
  headDim: number;
  mask: Mask;
  layout: Layout;
  /** Rows per batch in the k/v buffer (kvCache layout); `keys` otherwise. */
  capacity: number;
  p: number;
  tier: 'quick' | 'full';
}

function maskName(m: Mask): string {
  if (m.kind === 'glm') return `glm(sep=${{ first: '1', mid: 'L/2', last: 'L-1', random: 'random' }[m.sep]})`;
  if (m.kind === 'packed') return `packed(segments=${m.segments},pad=${m.padding})`;
  return `kvCache(context=${m.context})`;
}

function specs(): AttentionSpec[] {
  const out: AttentionSpec[] = [];
  const self = (batch: number, L: number, heads: number, headDim: number, mask: Mask, layout: Layout, p: number, tier: 'quick' | 'full' = 'quick'): void => {
    out.push({ batch, queries: L, keys: L, heads, headDim, mask, layout, capacity: L, p, tier });
  };
  const cache = (batch: number, Lq: number, Lk: number, capacity: number, heads: number, headDim: number, context: number, p: number, tier: 'quick' | 'full' = 'quick'): void => {
    out.push({ batch, queries: Lq, keys: Lk, heads, headDim, mask: { kind: 'kvCache', context }, layout: 'kvCache', capacity, p, tier });
  };
  self(1, 1, 1, 1, { kind: 'glm', sep: 'first' }, 'separate', 0);
  for (const sep of ['first', 'mid', 'last'] as const) {
    for (const p of [0, 0.1]) self(2, 63, 4, 16, { kind: 'glm', sep }, 'separate', p);
  }
  self(3, 33, 2, 64, { kind: 'glm', sep: 'random' }, 'fusedQKV', 0);
  self(1, 65, 3, 31, { kind: 'glm', sep: 'mid' }, 'fusedQKV', 0.1);
  self(2, 65, 2, 16, { kind: 'packed', segments: 3, padding: 5 }, 'separate', 0);
  self(1, 127, 1, 33, { kind: 'packed', segments: 4, padding: 0 }, 'fusedQKV', 0.1);
  cache(2, 1, 65, 80, 4, 16, 40, 0);
  cache(1, 5, 33, 40, 2, 64, 20, 0);
  cache(1, 31, 63, 64, 2, 32, 30, 0.1);
  // Decoding over more than 128 cached keys (the split decode kernel's block): several splits, with dropout.
  cache(1, 2, 300, 320, 3, 32, 150, 0.1);
  cache(2, 1, 260, 272, 2, 64, 100, 0.1);
  // A real GLM length and head size with one head: long key ranges stay in the quick tier.
  self(1, 512, 1, 64, { kind: 'glm', sep: 'mid' }, 'fusedQKV', 0.1);
  // GLM-base (12 heads) and GLM-large (16 heads) of 64 dims at L = 512.
  self(1, 512, 12, 64, { kind: 'glm', sep: 'mid' }, 'fusedQKV', 0.1, 'full');
  self(1, 512, 16, 64, { kind: 'packed', segments: 3, padding: 17 }, 'separate', 0, 'full');
  cache(2, 1, 511, 512, 16, 64, 300, 0, 'full');
  return out;
}

/** Per-query key ranges [B, Lq] for the spec's mask. */
function keyRanges(rng: Rng, s: AttentionSpec): { keyStart: Int32Array; keyEnd: Int32Array } {
  const { batch: B, queries: Lq, keys: Lk, mask } = s;
  if (mask.kind === 'kvCache') {
    // New query i sits at absolute position Lk−Lq+i; Part A (the cached context) is bidirectional.
    const keyStart = new Int32Array(B * Lq);
    const keyEnd = new Int32Array(B * Lq);
    for (let b = 0; b < B; b++) {
      for (let i = 0; i < Lq; i++) {
        const pos = Lk - Lq + i;
        keyEnd[b * Lq + i] = pos < mask.context ? mask.context : pos + 1;
      }
    }
    return { keyStart, keyEnd };
  }
  const L = Lq;
  if (mask.kind === 'glm') {
    const sep = new Int32Array(B);
    for (let b = 0; b < B; b++) {
      sep[b] = mask.sep === 'first' ? Math.min(1, L) : mask.sep === 'mid' ? L >> 1 : mask.sep === 'last' ? L - 1 : rng.intBetween(0, L);
    }
    return glmKeyRanges({ batchSize: B, seqLength: L, sep, numSegments: 1 });
  }
  // Packed: S segments of random lengths filling L − padding, each with its own sep; padding at the end.
  const S = mask.segments;
  const used = L - mask.padding;
  const segmentIds = new Int32Array(B * L).fill(-1);
  const sep = new Int32Array(B * S);
  for (let b = 0; b < B; b++) {
    const cuts = [0];
    for (let s2 = 1; s2 < S; s2++) cuts.push(rng.intBetween(1, used - 1));
    cuts.sort((x, y) => x - y);
    cuts.push(used);
    for (let s2 = 0; s2 < S; s2++) {
      const start = cuts[s2]!;
      const end = Math.max(start, cuts[s2 + 1]!);
      for (let i = start; i < end; i++) segmentIds[b * L + i] = s2;
      sep[b * S + s2] = rng.intBetween(start, end);
    }
  }
  return glmKeyRanges({ batchSize: B, seqLength: L, sep, numSegments: S, segmentIds });
}

interface Views {
  q: StridedView;
  k: StridedView;
  v: StridedView;
}

/** The three views of a layout over buffers named `${prefix}q`, `${prefix}qkv`, `${prefix}kv` … */
function views(s: AttentionSpec, t: Record<string, Tensor>, prefix: string): Views {
  const W = s.heads * s.headDim;
  if (s.layout === 'separate') {
    return {
      q: { tensor: t[`${prefix}q`]!, offset: 0, rowStride: W, batchStride: s.queries * W },
      k: { tensor: t[`${prefix}k`]!, offset: 0, rowStride: W, batchStride: s.keys * W },
      v: { tensor: t[`${prefix}v`]!, offset: 0, rowStride: W, batchStride: s.keys * W },
    };
  }
  if (s.layout === 'fusedQKV') {
    const qkv = t[`${prefix}qkv`]!;
    const stride = 3 * W;
    return {
      q: { tensor: qkv, offset: 0, rowStride: stride, batchStride: s.queries * stride },
      k: { tensor: qkv, offset: W, rowStride: stride, batchStride: s.keys * stride },
      v: { tensor: qkv, offset: 2 * W, rowStride: stride, batchStride: s.keys * stride },
    };
  }
  const kv = t[`${prefix}kv`]!;
  return {
    q: { tensor: t[`${prefix}q`]!, offset: 0, rowStride: W, batchStride: s.queries * W },
    k: { tensor: kv, offset: 0, rowStride: 2 * W, batchStride: s.capacity * 2 * W },
    v: { tensor: kv, offset: W, rowStride: 2 * W, batchStride: s.capacity * 2 * W },
  };
}

/** Host buffers backing the views of a layout (values ~N(0, std)). */
function viewBuffers(rng: Rng, s: AttentionSpec, prefix: string, std: number): Record<string, TensorInit> {
  const W = s.heads * s.headDim;
  if (s.layout === 'separate') {
    return {
      [`${prefix}q`]: f(normal(rng, s.batch * s.queries * W, std)),
      [`${prefix}k`]: f(normal(rng, s.batch * s.keys * W, std)),
      [`${prefix}v`]: f(normal(rng, s.batch * s.keys * W, std)),
    };
  }
  if (s.layout === 'fusedQKV') return { [`${prefix}qkv`]: f(normal(rng, s.batch * s.queries * 3 * W, std)) };
  return {
    [`${prefix}q`]: f(normal(rng, s.batch * s.queries * W, std)),
    [`${prefix}kv`]: f(normal(rng, s.batch * s.capacity * 2 * W, std)),
  };
}

function params(s: AttentionSpec): Record<string, string | number> {
  const p: Record<string, string | number> = { B: s.batch };
  if (s.queries === s.keys) p.L = s.queries;
  else Object.assign(p, { Lq: s.queries, Lk: s.keys, capacity: s.capacity });
  return { ...p, heads: s.heads, D: s.headDim, mask: maskName(s.mask), layout: s.layout, dropout: s.p };
}

function forwardArgs(s: AttentionSpec, t: Record<string, Tensor>, dropout: OpArgs['attention']['dropout']): OpArgs['attention'] {
  return {
    ...views(s, t, ''),
    keyStart: t.keyStart!, keyEnd: t.keyEnd!, out: t.out!, lse: t.lse ?? null,
    batch: s.batch, queries: s.queries, keys: s.keys, heads: s.heads, headDim: s.headDim, scale: 1 / Math.sqrt(s.headDim), dropout,
  };
}

function commonTensors(rng: Rng, s: AttentionSpec): { tensors: Record<string, TensorInit>; dropout: OpArgs['attention']['dropout'] } {
  const W = s.heads * s.headDim;
  const ranges = keyRanges(rng, s);
  const dropout = { p: s.p, seed: rng.nextU32(), stream: rng.int(1 << 16) };
  return {
    dropout,
    tensors: {
      ...viewBuffers(rng, s, '', 1.5),
      keyStart: i32(ranges.keyStart),
      keyEnd: i32(ranges.keyEnd),
      out: f(normal(rng, s.batch * s.queries * W)),
      lse: f32(normal(rng, s.batch * s.heads * s.queries)),
    },
  };
}

export function attentionCases(): ConformanceCase[] {
  const out: ConformanceCase[] = [];
  for (const s of specs()) {
    // lse is saved for training; a key/value cache is inference, where it is null.
    for (const withLse of s.layout === 'kvCache' ? [false, true] : [true]) {
      out.push(
        defineCase('attention', s.tier, { ...params(s), lse: withLse }, (rng) => {
          const { tensors, dropout } = commonTensors(rng, s);
          if (!withLse) delete tensors.lse;
          return { tensors, args: (t) => forwardArgs(s, t, dropout) };
        }),
      );
    }
  }
  return out;
}

export function attentionBackwardCases(): ConformanceCase[] {
  return specs().map((s) =>
    defineCase('attentionBackward', s.tier, params(s), (rng) => {
      const { tensors, dropout } = commonTensors(rng, s);
      const W = s.heads * s.headDim;
      Object.assign(tensors, viewBuffers(rng, s, 'd', 1), { dOut: f(normal(rng, s.batch * s.queries * W)) });
      return {
        tensors,
        prepare: [{ op: 'attention', args: (t) => forwardArgs(s, t, dropout) }],
        args: (t) => {
          const fwd = forwardArgs(s, t, dropout);
          const d = views(s, t, 'd');
          return { ...fwd, lse: t.lse!, dOut: t.dOut!, dq: d.q, dk: d.k, dv: d.v };
        },
      };
    }),
  );
}
