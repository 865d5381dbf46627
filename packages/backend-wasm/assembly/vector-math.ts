// Vector helpers for the non-matmul kernels, on top of simd-math's madd and vexp: horizontal sums,
// dot products and axpys four rows at a time, and the dropout counter hash (bit-identical to
// counterHash32 of @blankglm/tensor's random.ts: 32-bit multiply, xor and shifts only).
import { madd, vexp } from './simd-math';

/** The sum of the four lanes, in the fixed order (l0 + l2) + (l1 + l3). */
// @ts-ignore: decorator
@inline export function hsum(v: v128): f32 {
  const pairs = f32x4.add(v, v128.shuffle<f32>(v, v, 2, 3, 0, 1));
  return f32x4.extract_lane(pairs, 0) + f32x4.extract_lane(pairs, 1);
}

/** The maximum of the four lanes. */
// @ts-ignore: decorator
@inline export function hmax(v: v128): f32 {
  const pairs = f32x4.max(v, v128.shuffle<f32>(v, v, 2, 3, 0, 1));
  return max(f32x4.extract_lane(pairs, 0), f32x4.extract_lane(pairs, 1));
}

/** e^x on four lanes (simd-math's vexp), with −∞ giving exactly 0 (masked keys, the first block). */
// @ts-ignore: decorator
@inline export function exp4(x: v128): v128 {
  return v128.andnot(vexp(x), f32x4.eq(x, f32x4.splat(-Infinity)));
}

/** Scalar e^x with the same formula as exp4 (for tails), so a value never depends on its lane. */
// @ts-ignore: decorator
@inline export function exp1(x: f32): f32 {
  return f32x4.extract_lane(exp4(f32x4.splat(x)), 0);
}

// @ts-ignore: decorator
@inline function fmix32(h: u32): u32 {
  h = (h ^ (h >>> 16)) * 0x85ebca6b;
  h = (h ^ (h >>> 13)) * 0xc2b2ae35;
  return h ^ (h >>> 16);
}

// @ts-ignore: decorator
@inline function fmix32x4(h: v128): v128 {
  h = i32x4.mul(v128.xor(h, i32x4.shr_u(h, 16)), i32x4.splat(0x85ebca6b));
  h = i32x4.mul(v128.xor(h, i32x4.shr_u(h, 13)), i32x4.splat(0xc2b2ae35));
  return v128.xor(h, i32x4.shr_u(h, 16));
}

/** The first half of counterHash32, which depends only on (seed, stream). */
// @ts-ignore: decorator
@inline export function streamHash(seed: u32, stream: u32): u32 {
  return fmix32(seed ^ (stream * 0x9e3779b1));
}

/** counterHash32(seed, stream, index) given streamHash(seed, stream). */
// @ts-ignore: decorator
@inline export function counterHash(streamKey: u32, index: u32): u32 {
  return fmix32(streamKey ^ (index * 0x85ebca77) ^ 0xc2b2ae3d);
}

/** counterHash32 of four indices (one per lane). */
// @ts-ignore: decorator
@inline export function counterHash4(streamKey: u32, index: v128): v128 {
  const h = v128.xor(v128.xor(i32x4.splat(streamKey), i32x4.mul(index, i32x4.splat(0x85ebca77))), i32x4.splat(0xc2b2ae3d));
  return fmix32x4(h);
}

/** The four consecutive indices index0 .. index0+3. */
// @ts-ignore: decorator
@inline export function consecutive4(index0: u32): v128 {
  return i32x4.add(i32x4.splat(index0), i32x4(0, 1, 2, 3));
}

/**
 * Dropout of one element: element e is dropped when counterHash32 / 2^32 < p, i.e. when the hash is
 * below ceil(p·2^32). `threshold` is that bound as a u32; `dropAll` covers ceil(p·2^32) = 2^32.
 * Returns the factor 0 or 1/(1−p) for four element indices (one per lane).
 */
// @ts-ignore: decorator
@inline export function keepFactor4(streamKey: u32, index: v128, threshold: u32, dropAll: bool, keepScale: f32): v128 {
  if (dropAll) return f32x4.splat(0);
  const kept = i32x4.ge_u(counterHash4(streamKey, index), i32x4.splat(threshold));
  return v128.and(kept, f32x4.splat(keepScale));
}

// @ts-ignore: decorator
@inline export function keepFactor1(streamKey: u32, index: u32, threshold: u32, dropAll: bool, keepScale: f32): f32 {
  if (dropAll) return 0;
  return counterHash(streamKey, index) >= threshold ? keepScale : 0;
}

/** ceil(p·2^32) clamped to u32 (see keepFactor4); p in [0, 1). */
export function dropThreshold(p: f64): u32 {
  const t = Math.ceil(p * 4294967296.0);
  return t >= 4294967296.0 ? <u32>0xffffffff : <u32>t;
}

/** Whether p is so close to 1 that every element is dropped (ceil(p·2^32) = 2^32). */
export function dropsAll(p: f64): bool {
  return Math.ceil(p * 4294967296.0) >= 4294967296.0;
}

/**
 * [Σ a0, Σ a1, Σ a2, Σ a3] with each lane summed in hsum's order (l0 + l2) + (l1 + l3), so a dot
 * product has the same bits whether it was computed alone or four at a time.
 */
// @ts-ignore: decorator
@inline export function transposeSum(a0: v128, a1: v128, a2: v128, a3: v128): v128 {
  const s01 = f32x4.add(v128.shuffle<f32>(a0, a1, 0, 1, 4, 5), v128.shuffle<f32>(a0, a1, 2, 3, 6, 7));
  const s23 = f32x4.add(v128.shuffle<f32>(a2, a3, 0, 1, 4, 5), v128.shuffle<f32>(a2, a3, 2, 3, 6, 7));
  return f32x4.add(v128.shuffle<f32>(s01, s23, 0, 2, 4, 6), v128.shuffle<f32>(s01, s23, 1, 3, 5, 7));
}

/**
 * Four dot products of length n: [a·b0, a·b1, a·b2, a·b3] (f32 rows at byte addresses). Lanes
 * accumulate with madd over groups of four, then transposeSum, then the n % 4 tail in order.
 */
// @ts-ignore: decorator
@inline export function dot4(a: usize, b0: usize, b1: usize, b2: usize, b3: usize, n: usize): v128 {
  let s0 = f32x4.splat(0), s1 = f32x4.splat(0), s2 = f32x4.splat(0), s3 = f32x4.splat(0);
  const n4 = n & ~(<usize>3);
  let o: usize = 0;
  for (; o < n4 * 4; o += 16) {
    const av = v128.load(a + o);
    s0 = madd(av, v128.load(b0 + o), s0);
    s1 = madd(av, v128.load(b1 + o), s1);
    s2 = madd(av, v128.load(b2 + o), s2);
    s3 = madd(av, v128.load(b3 + o), s3);
  }
  let r = transposeSum(s0, s1, s2, s3);
  for (; o < n * 4; o += 4) {
    const b = f32x4.replace_lane(f32x4.replace_lane(f32x4.replace_lane(f32x4.splat(load<f32>(b0 + o)), 1, load<f32>(b1 + o)), 2, load<f32>(b2 + o)), 3, load<f32>(b3 + o));
    r = f32x4.add(r, f32x4.mul(f32x4.splat(load<f32>(a + o)), b));
  }
  return r;
}

/** acc[0..n) += c0·x0 + c1·x1 + c2·x2 + c3·x3 (applied in that order), with c = [c0, c1, c2, c3]. */
// @ts-ignore: decorator
@inline export function axpy4(acc: usize, c: v128, x0: usize, x1: usize, x2: usize, x3: usize, n: usize): void {
  const c0 = f32x4.splat(f32x4.extract_lane(c, 0));
  const c1 = f32x4.splat(f32x4.extract_lane(c, 1));
  const c2 = f32x4.splat(f32x4.extract_lane(c, 2));
  const c3 = f32x4.splat(f32x4.extract_lane(c, 3));
  const n4 = n & ~(<usize>3);
  let o: usize = 0;
  for (; o < n4 * 4; o += 16) {
    let s = v128.load(acc + o);
    s = madd(c0, v128.load(x0 + o), s);
    s = madd(c1, v128.load(x1 + o), s);
    s = madd(c2, v128.load(x2 + o), s);
    s = madd(c3, v128.load(x3 + o), s);
    v128.store(acc + o, s);
  }
  if (o < n * 4) {
    const d0 = f32x4.extract_lane(c0, 0), d1 = f32x4.extract_lane(c1, 0), d2 = f32x4.extract_lane(c2, 0), d3 = f32x4.extract_lane(c3, 0);
    for (; o < n * 4; o += 4) {
      // The same single-rounding-or-not as madd, one element at a time.
      const s = f32x4.splat(load<f32>(acc + o));
      let t = madd(f32x4.splat(d0), f32x4.splat(load<f32>(x0 + o)), s);
      t = madd(f32x4.splat(d1), f32x4.splat(load<f32>(x1 + o)), t);
      t = madd(f32x4.splat(d2), f32x4.splat(load<f32>(x2 + o)), t);
      t = madd(f32x4.splat(d3), f32x4.splat(load<f32>(x3 + o)), t);
      store<f32>(acc + o, f32x4.extract_lane(t, 0));
    }
  }
}

/** x[0..n) *= c. */
// @ts-ignore: decorator
@inline export function scaleRow(x: usize, c: f32, n: usize): void {
  const cv = f32x4.splat(c);
  const n4 = n & ~(<usize>3);
  let o: usize = 0;
  for (; o < n4 * 4; o += 16) v128.store(x + o, f32x4.mul(v128.load(x + o), cv));
  for (; o < n * 4; o += 4) store<f32>(x + o, load<f32>(x + o) * c);
}

/** dst[0..n) = src[0..n) · c. */
// @ts-ignore: decorator
@inline export function scaledCopy(dst: usize, src: usize, c: f32, n: usize): void {
  const cv = f32x4.splat(c);
  const n4 = n & ~(<usize>3);
  let o: usize = 0;
  for (; o < n4 * 4; o += 16) v128.store(dst + o, f32x4.mul(v128.load(src + o), cv));
  for (; o < n * 4; o += 4) store<f32>(dst + o, load<f32>(src + o) * c);
}

/**
 * Two rows against four: stores [a·b0, a·b1, a·b2, a·b3] at outA and [c·b0, …, c·b3] at outC, each
 * lane summed exactly as dot4 sums it (so a score has the same bits alone or paired). The b rows
 * are loaded once for both.
 */
// @ts-ignore: decorator
@inline export function dot2x4(a: usize, c: usize, b0: usize, b1: usize, b2: usize, b3: usize, n: usize, outA: usize, outC: usize): void {
  let s0 = f32x4.splat(0), s1 = f32x4.splat(0), s2 = f32x4.splat(0), s3 = f32x4.splat(0);
  let t0 = f32x4.splat(0), t1 = f32x4.splat(0), t2 = f32x4.splat(0), t3 = f32x4.splat(0);
  const n4 = n & ~(<usize>3);
  let o: usize = 0;
  for (; o < n4 * 4; o += 16) {
    const av = v128.load(a + o);
    const cv = v128.load(c + o);
    const x0 = v128.load(b0 + o), x1 = v128.load(b1 + o), x2 = v128.load(b2 + o), x3 = v128.load(b3 + o);
    s0 = madd(av, x0, s0);
    t0 = madd(cv, x0, t0);
    s1 = madd(av, x1, s1);
    t1 = madd(cv, x1, t1);
    s2 = madd(av, x2, s2);
    t2 = madd(cv, x2, t2);
    s3 = madd(av, x3, s3);
    t3 = madd(cv, x3, t3);
  }
  let r = transposeSum(s0, s1, s2, s3);
  let u = transposeSum(t0, t1, t2, t3);
  for (; o < n * 4; o += 4) {
    const b = f32x4.replace_lane(f32x4.replace_lane(f32x4.replace_lane(f32x4.splat(load<f32>(b0 + o)), 1, load<f32>(b1 + o)), 2, load<f32>(b2 + o)), 3, load<f32>(b3 + o));
    r = f32x4.add(r, f32x4.mul(f32x4.splat(load<f32>(a + o)), b));
    u = f32x4.add(u, f32x4.mul(f32x4.splat(load<f32>(c + o)), b));
  }
  v128.store(outA, r);
  v128.store(outC, u);
}

/**
 * accA[0..n) += Σ_l cA[l]·x_l and accC[0..n) += Σ_l cC[l]·x_l (l = 0..3, in that order), each
 * exactly as axpy4 computes it; the x rows are loaded once for both.
 */
// @ts-ignore: decorator
@inline export function axpy2x4(accA: usize, cA: v128, accC: usize, cC: v128, x0: usize, x1: usize, x2: usize, x3: usize, n: usize): void {
  const a0 = f32x4.splat(f32x4.extract_lane(cA, 0)), a1 = f32x4.splat(f32x4.extract_lane(cA, 1));
  const a2 = f32x4.splat(f32x4.extract_lane(cA, 2)), a3 = f32x4.splat(f32x4.extract_lane(cA, 3));
  const c0 = f32x4.splat(f32x4.extract_lane(cC, 0)), c1 = f32x4.splat(f32x4.extract_lane(cC, 1));
  const c2 = f32x4.splat(f32x4.extract_lane(cC, 2)), c3 = f32x4.splat(f32x4.extract_lane(cC, 3));
  const n4 = n & ~(<usize>3);
  let o: usize = 0;
  for (; o < n4 * 4; o += 16) {
    const y0 = v128.load(x0 + o), y1 = v128.load(x1 + o), y2 = v128.load(x2 + o), y3 = v128.load(x3 + o);
    let s = v128.load(accA + o);
    let t = v128.load(accC + o);
    s = madd(a0, y0, s);
    t = madd(c0, y0, t);
    s = madd(a1, y1, s);
    t = madd(c1, y1, t);
    s = madd(a2, y2, s);
    t = madd(c2, y2, t);
    s = madd(a3, y3, s);
    t = madd(c3, y3, t);
    v128.store(accA + o, s);
    v128.store(accC + o, t);
  }
  if (o < n * 4) {
    axpy4(accA + o, cA, x0 + o, x1 + o, x2 + o, x3 + o, n - n4);
    axpy4(accC + o, cC, x0 + o, x1 + o, x2 + o, x3 + o, n - n4);
  }
}
