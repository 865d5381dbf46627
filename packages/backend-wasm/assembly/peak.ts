// The machine's SIMD multiply-add peak as this runtime compiles it: 8 independent f32x4
// accumulator chains (enough to cover the FMA latency; 12 make V8 spill registers), no memory
// traffic. Benchmarks report kernels as a fraction of it.
import { madd } from './simd-math';

/** Runs `iterations` × 8 madds of f32x4 (64 flops, a multiply-add counted as 2); returns a checksum. */
export function simdPeak(iterations: i32, seed: f32): f32 {
  const m = f32x4.splat(0.999999);
  const a = f32x4.splat(1e-7);
  let c0 = f32x4.splat(seed), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0, c6 = c0, c7 = c0;
  for (let i = 0; i < iterations; i++) {
    c0 = madd(c0, m, a); c1 = madd(c1, m, a); c2 = madd(c2, m, a); c3 = madd(c3, m, a);
    c4 = madd(c4, m, a); c5 = madd(c5, m, a); c6 = madd(c6, m, a); c7 = madd(c7, m, a);
  }
  const s = f32x4.add(f32x4.add(f32x4.add(c0, c1), f32x4.add(c2, c3)), f32x4.add(f32x4.add(c4, c5), f32x4.add(c6, c7)));
  return f32x4.extract_lane(s, 0);
}
