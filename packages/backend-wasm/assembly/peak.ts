// The machine's SIMD multiply-add peak as this runtime compiles it: 12 independent f32x4
// accumulator chains, no memory traffic. Benchmarks report kernels as a fraction of it.
import { madd } from './simd-math';

/** Runs `iterations` × 12 madds of f32x4 (96 flops each with FMA counted as 2); returns a checksum. */
export function simdPeak(iterations: i32, seed: f32): f32 {
  const m = f32x4.splat(0.999999);
  const a = f32x4.splat(1e-7);
  let c0 = f32x4.splat(seed), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0;
  let c6 = c0, c7 = c0, c8 = c0, c9 = c0, c10 = c0, c11 = c0;
  for (let i = 0; i < iterations; i++) {
    c0 = madd(a, m, c0); c1 = madd(a, m, c1); c2 = madd(a, m, c2); c3 = madd(a, m, c3);
    c4 = madd(a, m, c4); c5 = madd(a, m, c5); c6 = madd(a, m, c6); c7 = madd(a, m, c7);
    c8 = madd(a, m, c8); c9 = madd(a, m, c9); c10 = madd(a, m, c10); c11 = madd(a, m, c11);
  }
  const s = f32x4.add(f32x4.add(f32x4.add(c0, c1), f32x4.add(c2, c3)), f32x4.add(f32x4.add(f32x4.add(c4, c5), f32x4.add(c6, c7)), f32x4.add(f32x4.add(c8, c9), f32x4.add(c10, c11))));
  return f32x4.extract_lane(s, 0);
}
