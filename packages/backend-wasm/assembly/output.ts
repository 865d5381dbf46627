// Cross-entropy on the tied output projection, walking the vocabulary in chunks of `vc` columns so
// no [T, V] logits array exists: each chunk of logits is computed by gemm into a [T, vc] buffer,
// folded into per-row running statistics (online log-sum-exp), and overwritten by the next chunk.
// Chunk boundaries depend only on V and vc (chosen by the host from T), never on the thread split,
// so every row's reduction order is fixed.
import { gemm } from './gemm';
import { vexp } from './simd-math';

// Per-row statistics, 4 f64: running max, Σ exp(z − max), Σ z, z[target].
const S_MAX: usize = 0;
const S_SUMEXP: usize = 8;
const S_SUMZ: usize = 16;
const S_ZT: usize = 24;

/**
 * losses[t] = (1−ε)(lse − z[target]) + ε(lse − mean z), lse[t] = log Σ exp z, for rows [t0, t1).
 * hidden [T, H]; wordEmb [V, H]; targets i32 [T]; chunk: a [T, ld] f32 buffer (rows t0..t1 used,
 * ld ≥ vc: a row stride off powers of two keeps rows from aliasing in the cache);
 * stats: [T, 4] f64; scratch: gemmScratchBytes().
 */
export function crossEntropyRows(
  hidden: usize, wordEmb: usize, targets: usize, H: i32, V: i32,
  t0: i32, t1: i32, chunk: usize, vc: i32, ld: i32, stats: usize,
  losses: usize, lse: usize, eps: f32, scratch: usize,
): void {
  if (t0 >= t1) return;
  for (let t = t0; t < t1; t++) {
    const s = stats + <usize>t * 32;
    store<f64>(s + S_MAX, -Infinity);
    store<f64>(s + S_SUMEXP, 0);
    store<f64>(s + S_SUMZ, 0);
    store<f64>(s + S_ZT, 0);
  }
  for (let v0 = 0; v0 < V; v0 += vc) {
    const width = min(vc, V - v0);
    gemm(hidden, H, 1, wordEmb + <usize>v0 * <usize>H * 4, H, 1, chunk, ld, 0, 0, 0, 0, 0, t0, t1, 0, width, H, scratch);
    const full = width & ~3;
    for (let t = t0; t < t1; t++) {
      const row = chunk + <usize>t * <usize>ld * 4;
      const s = stats + <usize>t * 32;
      // Chunk max and Σz: 4 lanes, then the lanes in order, then the scalar tail.
      let vmax = f32x4.splat(-Infinity);
      let vsum = f32x4.splat(0);
      for (let v = 0; v < full; v += 4) {
        const z = v128.load(row + <usize>v * 4);
        vmax = f32x4.max(vmax, z);
        vsum = f32x4.add(vsum, z);
      }
      let cmax: f32 = max(max(f32x4.extract_lane(vmax, 0), f32x4.extract_lane(vmax, 1)), max(f32x4.extract_lane(vmax, 2), f32x4.extract_lane(vmax, 3)));
      let csum: f64 = <f64>f32x4.extract_lane(vsum, 0) + <f64>f32x4.extract_lane(vsum, 1) + <f64>f32x4.extract_lane(vsum, 2) + <f64>f32x4.extract_lane(vsum, 3);
      for (let v = full; v < width; v++) {
        const z = load<f32>(row + <usize>v * 4);
        cmax = max(cmax, z);
        csum += <f64>z;
      }
      const oldMax = load<f64>(s + S_MAX);
      const newMax: f64 = max(oldMax, <f64>cmax);
      const m = f32x4.splat(<f32>newMax);
      let vexpSum = f32x4.splat(0);
      for (let v = 0; v < full; v += 4) {
        vexpSum = f32x4.add(vexpSum, vexp(f32x4.sub(v128.load(row + <usize>v * 4), m)));
      }
      let cexp: f64 = <f64>f32x4.extract_lane(vexpSum, 0) + <f64>f32x4.extract_lane(vexpSum, 1) + <f64>f32x4.extract_lane(vexpSum, 2) + <f64>f32x4.extract_lane(vexpSum, 3);
      for (let v = full; v < width; v++) {
        cexp += <f64>f32x4.extract_lane(vexp(f32x4.splat(load<f32>(row + <usize>v * 4) - <f32>newMax)), 0);
      }
      const scaled = oldMax == -Infinity ? 0 : load<f64>(s + S_SUMEXP) * Math.exp(oldMax - newMax);
      store<f64>(s + S_MAX, newMax);
      store<f64>(s + S_SUMEXP, scaled + cexp);
      store<f64>(s + S_SUMZ, load<f64>(s + S_SUMZ) + csum);
      const target = load<i32>(targets + <usize>t * 4);
      if (target >= v0 && target < v0 + width) store<f64>(s + S_ZT, <f64>load<f32>(row + <usize>(target - v0) * 4));
    }
  }
  for (let t = t0; t < t1; t++) {
    const s = stats + <usize>t * 32;
    const l = load<f64>(s + S_MAX) + Math.log(load<f64>(s + S_SUMEXP));
    const e = <f64>eps;
    store<f32>(lse + <usize>t * 4, <f32>l);
    store<f32>(losses + <usize>t * 4, <f32>((1 - e) * (l - load<f64>(s + S_ZT)) + e * (l - load<f64>(s + S_SUMZ) / <f64>V)));
  }
}

/**
 * One vocabulary chunk [v0, v0 + width) of the cross-entropy backward pass, rows [t0, t1):
 *   z = hidden·wordEmb[v0:v0+width]ᵀ (into chunk), dz = w_t·(exp(z − lse_t) − (1−ε)[v = target] − ε/V) in place,
 *   dHidden[t, :] (= on the first chunk, += after) Σ_v dz[t, v]·wordEmb[v0 + v, :].
 * The dWordEmb update of the chunk (split over its rows) is a separate gemm call after a barrier.
 */
export function crossEntropyBackwardRows(
  hidden: usize, wordEmb: usize, targets: usize, lse: usize, weights: usize, dHidden: usize,
  H: i32, V: i32, v0: i32, width: i32, t0: i32, t1: i32, chunk: usize, ld: i32, eps: f32, scratch: usize,
): void {
  if (t0 >= t1) return;
  const emb = wordEmb + <usize>v0 * <usize>H * 4;
  gemm(hidden, H, 1, emb, H, 1, chunk, ld, 0, 0, 0, 0, 0, t0, t1, 0, width, H, scratch);
  // What is subtracted from the probability: (1−ε) + ε/V at the target, ε/V elsewhere, each
  // rounded once from f64 (so with V = 1 the target's is exactly 1 and the gradient exactly 0).
  const offTarget = f32x4.splat(<f32>(<f64>eps / <f64>V));
  const atTarget = f32x4.splat(<f32>(1.0 - <f64>eps + <f64>eps / <f64>V));
  const iota = i32x4(0, 1, 2, 3);
  for (let t = t0; t < t1; t++) {
    const row = chunk + <usize>t * <usize>ld * 4;
    const w = f32x4.splat(load<f32>(weights + <usize>t * 4));
    const l = f32x4.splat(load<f32>(lse + <usize>t * 4));
    const target = i32x4.splat(load<i32>(targets + <usize>t * 4) - v0);
    // Whole vectors up to the padded width: columns past `width` hold junk nobody reads.
    for (let v = 0; v < width; v += 4) {
      const p = vexp(f32x4.sub(v128.load(row + <usize>v * 4), l));
      const isTarget = i32x4.eq(i32x4.add(iota, i32x4.splat(v)), target);
      v128.store(row + <usize>v * 4, f32x4.mul(w, f32x4.sub(p, v128.bitselect(atTarget, offTarget, isTarget))));
    }
  }
  gemm(chunk, ld, 1, emb, 1, H, dHidden, H, 0, 0, 0, 0, v0 > 0 ? 1 : 0, t0, t1, 0, H, width, scratch);
}
