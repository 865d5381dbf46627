// Element-wise kernels: dropout fused with the residual add, its backward, and scale. Each works on
// an element range [start, end) the host picks; element e's result never depends on the range.
import { consecutive4, counterHash, counterHash4, dropsAll, dropThreshold, keepFactor1, keepFactor4, streamHash } from './vector-math';

/**
 * out[e] = (residual[e] when hasResidual) + x[e]·factor(e), factor 0 when
 * counterHash32(seed, stream, e) / 2^32 < p, else 1/(1−p); p = 0 hashes nothing. out may be residual.
 */
export function dropoutAddRange(x: usize, residual: usize, hasResidual: bool, out: usize, p: f64, seed: u32, stream: u32, start: i32, end: i32): void {
  const useDropout = p > 0;
  const threshold = dropThreshold(p);
  const dropAll = dropsAll(p);
  const keepScale = <f32>(1.0 / (1.0 - p));
  const streamKey = streamHash(seed, stream);
  let e = start;
  for (; e <= end - 4; e += 4) {
    const o = <usize>e * 4;
    let v = v128.load(x + o);
    if (useDropout) v = f32x4.mul(v, keepFactor4(streamKey, consecutive4(<u32>e), threshold, dropAll, keepScale));
    if (hasResidual) v = f32x4.add(v128.load(residual + o), v);
    v128.store(out + o, v);
  }
  for (; e < end; e++) {
    const o = <usize>e * 4;
    let v = load<f32>(x + o);
    if (useDropout) v *= keepFactor1(streamKey, <u32>e, threshold, dropAll, keepScale);
    if (hasResidual) v = load<f32>(residual + o) + v;
    store<f32>(out + o, v);
  }
}

/**
 * dx[e] (= or += by accumulate) dy[e]·factor(e), the mask of dropoutAddRange. dx may be dy.
 * It is dropoutAddRange with dx as both the residual (when accumulating) and the output.
 */
export function dropoutBackwardRange(dy: usize, dx: usize, accumulate: bool, p: f64, seed: u32, stream: u32, start: i32, end: i32): void {
  dropoutAddRange(dy, dx, accumulate, dx, p, seed, stream, start, end);
}

/** x[e] *= factor for e in [start, end). */
export function scaleRange(x: usize, factor: f32, start: i32, end: i32): void {
  const f = f32x4.splat(factor);
  let e = start;
  for (; e <= end - 4; e += 4) v128.store(x + <usize>e * 4, f32x4.mul(v128.load(x + <usize>e * 4), f));
  for (; e < end; e++) store<f32>(x + <usize>e * 4, load<f32>(x + <usize>e * 4) * factor);
}

/**
 * out[k] = counterHash32(seed, stream, start + k) for k < count (u32, indices wrap at 2^32), through
 * the same four-lane and scalar paths the dropout kernels use: lets tests check the port bit for bit.
 */
export function counterHashRange(out: usize, seed: u32, stream: u32, start: u32, count: i32): void {
  const streamKey = streamHash(seed, stream);
  let k = 0;
  for (; k <= count - 4; k += 4) v128.store(out + <usize>k * 4, counterHash4(streamKey, consecutive4(start + <u32>k)));
  for (; k < count; k++) store<u32>(out + <usize>k * 4, counterHash(streamKey, start + <u32>k));
}
