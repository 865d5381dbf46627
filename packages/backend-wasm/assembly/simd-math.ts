// Shared SIMD helpers for every kernel: the multiply-add (fused with relaxed SIMD), a vector exp,
// and the two GELUs with their derivatives. All f32x4.
//
// `ASC_FEATURE_RELAXED_SIMD` is a compile-time constant: the plain SIMD builds contain no relaxed
// opcodes, the relaxed build uses f32x4.relaxed_madd (one rounding on CPUs with FMA).

/** a·b + c, fused in the relaxed build. Every matmul-family kernel uses exactly this, so a given
 *  output element is computed with the same operations whichever code path (main block, row
 *  tail, column tail) or thread handles it. */
// @ts-ignore: decorator
@inline export function madd(a: v128, b: v128, c: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return f32x4.relaxed_madd(a, b, c);
  return f32x4.add(f32x4.mul(a, b), c);
}

// Cephes expf: exp(x) = 2^n · p(r), r = x − n·ln2 in [−ln2/2, ln2/2]; ~1 ulp over the range.
// The clamps use pmin/pmax (one instruction each; the NaN-propagating min/max take ~8 in V8) and
// n = round(x·log2 e) comes from the 1.5·2^23 "magic number" add, which leaves n in the low
// mantissa bits, so no float→int conversion is needed.
const EXP_HI: f32 = 88.0;
const EXP_LO: f32 = -87.3365447504;
const LOG2E: f32 = 1.44269504088896341;
const LN2_HI: f32 = 0.693359375;
const LN2_LO: f32 = -2.12194440e-4;
const ROUND_MAGIC: f32 = 12582912.0; // 1.5 · 2^23

/** exp(x) lane-wise; underflows to ~1.2e-38 below −87.3, saturates at exp(88) ≈ 1.65e38 above 88. */
// @ts-ignore: decorator
@inline export function vexp(x0: v128): v128 {
  const x = f32x4.pmax(f32x4.pmin(x0, f32x4.splat(EXP_HI)), f32x4.splat(EXP_LO));
  const t = f32x4.add(f32x4.mul(x, f32x4.splat(LOG2E)), f32x4.splat(ROUND_MAGIC));
  const n = f32x4.sub(t, f32x4.splat(ROUND_MAGIC)); // round(x·log2 e) ∈ [−126, 127]
  let r = f32x4.sub(x, f32x4.mul(n, f32x4.splat(LN2_HI)));
  r = f32x4.sub(r, f32x4.mul(n, f32x4.splat(LN2_LO)));
  let p = f32x4.splat(1.9875691500e-4);
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(1.3981999507e-3));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(8.3334519073e-3));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(4.1665795894e-2));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(1.6666665459e-1));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(5.0000001201e-1));
  p = f32x4.add(f32x4.add(f32x4.mul(f32x4.mul(p, r), r), r), f32x4.splat(1.0));
  // 2^n: n sits in the low bits of t (t's bits minus the magic number's bits), shifted into the exponent.
  const bits = i32x4.shl(i32x4.add(i32x4.sub(t, f32x4.splat(ROUND_MAGIC)), i32x4.splat(127)), 23);
  return f32x4.mul(p, bits);
}

const SQRT_2_OVER_PI: f32 = 0.7978845608028654;
const GELU_CUBIC: f32 = 0.044715;
const SQRT_HALF: f32 = 0.7071067811865476;
const INV_SQRT_2PI: f32 = 0.3989422804014327;

/** tanh(u) = 1 − 2/(1 + e^{2u}); exact limits ±1 for large |u|. */
// @ts-ignore: decorator
@inline function vtanh(u: v128): v128 {
  const e = vexp(f32x4.add(u, u));
  return f32x4.sub(f32x4.splat(1.0), f32x4.div(f32x4.splat(2.0), f32x4.add(f32x4.splat(1.0), e)));
}

/** erf(x) by Abramowitz & Stegun 7.1.26 (absolute error ≤ 1.5e-7). */
// @ts-ignore: decorator
@inline function verf(x: v128): v128 {
  const ax = f32x4.abs(x);
  const t = f32x4.div(f32x4.splat(1.0), f32x4.add(f32x4.splat(1.0), f32x4.mul(f32x4.splat(0.3275911), ax)));
  let p = f32x4.splat(1.061405429);
  p = f32x4.add(f32x4.mul(p, t), f32x4.splat(-1.453152027));
  p = f32x4.add(f32x4.mul(p, t), f32x4.splat(1.421413741));
  p = f32x4.add(f32x4.mul(p, t), f32x4.splat(-0.284496736));
  p = f32x4.add(f32x4.mul(p, t), f32x4.splat(0.254829592));
  p = f32x4.mul(p, t);
  const e = vexp(f32x4.neg(f32x4.mul(ax, ax)));
  const r = f32x4.sub(f32x4.splat(1.0), f32x4.mul(p, e));
  // copysign(r, x)
  const signMask = i32x4.splat(0x80000000);
  return v128.or(v128.andnot(r, signMask), v128.and(x, signMask));
}

/** Activation codes shared with the host: 0 none, 1 gelu_tanh, 2 gelu_erf. */
export const ACT_NONE: i32 = 0;
export const ACT_GELU_TANH: i32 = 1;
export const ACT_GELU_ERF: i32 = 2;

/** act(z) lane-wise. */
// @ts-ignore: decorator
@inline export function vactivate(act: i32, z: v128): v128 {
  if (act == ACT_GELU_TANH) {
    const u = f32x4.mul(f32x4.splat(SQRT_2_OVER_PI), f32x4.add(z, f32x4.mul(f32x4.splat(GELU_CUBIC), f32x4.mul(z, f32x4.mul(z, z)))));
    return f32x4.mul(f32x4.mul(f32x4.splat(0.5), z), f32x4.add(f32x4.splat(1.0), vtanh(u)));
  }
  if (act == ACT_GELU_ERF) {
    return f32x4.mul(f32x4.mul(f32x4.splat(0.5), z), f32x4.add(f32x4.splat(1.0), verf(f32x4.mul(z, f32x4.splat(SQRT_HALF)))));
  }
  return z;
}

/** act'(z) lane-wise. */
// @ts-ignore: decorator
@inline export function vactivationDerivative(act: i32, z: v128): v128 {
  if (act == ACT_GELU_TANH) {
    const z2 = f32x4.mul(z, z);
    const u = f32x4.mul(f32x4.splat(SQRT_2_OVER_PI), f32x4.add(z, f32x4.mul(f32x4.splat(GELU_CUBIC), f32x4.mul(z, z2))));
    const t = vtanh(u);
    const du = f32x4.mul(f32x4.splat(SQRT_2_OVER_PI), f32x4.add(f32x4.splat(1.0), f32x4.mul(f32x4.splat(3.0 * GELU_CUBIC), z2)));
    const left = f32x4.mul(f32x4.splat(0.5), f32x4.add(f32x4.splat(1.0), t));
    const right = f32x4.mul(f32x4.mul(f32x4.mul(f32x4.splat(0.5), z), f32x4.sub(f32x4.splat(1.0), f32x4.mul(t, t))), du);
    return f32x4.add(left, right);
  }
  if (act == ACT_GELU_ERF) {
    const cdf = f32x4.mul(f32x4.splat(0.5), f32x4.add(f32x4.splat(1.0), verf(f32x4.mul(z, f32x4.splat(SQRT_HALF)))));
    const pdf = f32x4.mul(f32x4.splat(INV_SQRT_2PI), vexp(f32x4.mul(f32x4.splat(-0.5), f32x4.mul(z, z))));
    return f32x4.add(cdf, f32x4.mul(z, pdf));
  }
  return f32x4.splat(1.0);
}
