// The matmul family's one kernel: C[i, j] (= or +=) Σ_r A(i, r)·B(j, r), rows [i0, i1) and columns
// [j0, j1) of the output, with an optional bias and a fused activation epilogue.
//
// Operands are strided so one kernel serves every product the model needs:
//   A(i, r) at a + 4·(i·aRow + r·aRed)      B(j, r) at b + 4·(j·bCol + r·bRed)
//   linear:          C = x·Wᵀ        A = x [M,K] (aRow K, aRed 1)   B = W [N,K] (bCol K, bRed 1)
//   linear dx:       dx = dz·W       A = dz [M,N] (N, 1)             B(k, n) = W[n,k] (bCol 1, bRed K)
//   linear dWeight:  dW += dzᵀ·x     A(n, m) = dz[m,n] (1, N)         B(k, m) = x[m,k] (1, K)
//
// Blocking (GotoBLAS style): columns in blocks of NC, the reduction in blocks of KC; each
// (KC × NC) block of B is packed into 8-column panels (KC·8 floats, L1-resident) and the
// register-blocked micro-kernel computes 4 rows × 8 columns (8 f32x4 accumulators) per pass.
//
// Determinism: every output element is computed by the same sequence of operations — initialised
// from 0, the bias or C, then madd over r = 0, 1, …, K−1 in order, stored between K blocks — in
// the 4-row kernel, the 1-row kernel and the padded column-tail path alike. So the result does
// not depend on how the host splits rows or columns across threads.
import { madd, vactivate, vactivationDerivative } from './simd-math';

const KC: i32 = 256;
const NC: i32 = 512;
const NR: i32 = 8;
const MC: i32 = 64;

/** Bytes of scratch one gemm call needs (packed B, packed bias, two tail tiles). */
export function gemmScratchBytes(): i32 {
  return KC * NC * 4 + NC * 4 + 2 * 4 * NR * 4;
}

/** How a block's accumulators start: 0, the packed bias, or the current C. */
const INIT_ZERO: i32 = 0;
const INIT_LOAD: i32 = 1;
const INIT_BIAS: i32 = 2;

// @ts-ignore: decorator
@inline function kernel4x8(pa: usize, aRowB: usize, aRedB: usize, pb: usize, kc: i32, pc: usize, ldcB: usize, init: i32, pbias: usize, act: i32, py: usize, ldyB: usize): void {
  let c00: v128, c01: v128, c10: v128, c11: v128, c20: v128, c21: v128, c30: v128, c31: v128;
  if (init == INIT_LOAD) {
    c00 = v128.load(pc); c01 = v128.load(pc, 16);
    c10 = v128.load(pc + ldcB); c11 = v128.load(pc + ldcB, 16);
    c20 = v128.load(pc + 2 * ldcB); c21 = v128.load(pc + 2 * ldcB, 16);
    c30 = v128.load(pc + 3 * ldcB); c31 = v128.load(pc + 3 * ldcB, 16);
  } else if (init == INIT_BIAS) {
    c00 = v128.load(pbias); c01 = v128.load(pbias, 16);
    c10 = c00; c11 = c01; c20 = c00; c21 = c01; c30 = c00; c31 = c01;
  } else {
    c00 = f32x4.splat(0); c01 = c00; c10 = c00; c11 = c00; c20 = c00; c21 = c00; c30 = c00; c31 = c00;
  }
  let a0 = pa;
  let a1 = pa + aRowB;
  let a2 = a1 + aRowB;
  let a3 = a2 + aRowB;
  for (let r = 0; r < kc; r++) {
    const b0 = v128.load(pb);
    const b1 = v128.load(pb, 16);
    let x = v128.load32_splat(a0);
    c00 = madd(x, b0, c00); c01 = madd(x, b1, c01);
    x = v128.load32_splat(a1);
    c10 = madd(x, b0, c10); c11 = madd(x, b1, c11);
    x = v128.load32_splat(a2);
    c20 = madd(x, b0, c20); c21 = madd(x, b1, c21);
    x = v128.load32_splat(a3);
    c30 = madd(x, b0, c30); c31 = madd(x, b1, c31);
    pb += 32;
    a0 += aRedB; a1 += aRedB; a2 += aRedB; a3 += aRedB;
  }
  v128.store(pc, c00); v128.store(pc, c01, 16);
  v128.store(pc + ldcB, c10); v128.store(pc + ldcB, c11, 16);
  v128.store(pc + 2 * ldcB, c20); v128.store(pc + 2 * ldcB, c21, 16);
  v128.store(pc + 3 * ldcB, c30); v128.store(pc + 3 * ldcB, c31, 16);
  if (py != 0) {
    v128.store(py, vactivate(act, c00)); v128.store(py, vactivate(act, c01), 16);
    v128.store(py + ldyB, vactivate(act, c10)); v128.store(py + ldyB, vactivate(act, c11), 16);
    v128.store(py + 2 * ldyB, vactivate(act, c20)); v128.store(py + 2 * ldyB, vactivate(act, c21), 16);
    v128.store(py + 3 * ldyB, vactivate(act, c30)); v128.store(py + 3 * ldyB, vactivate(act, c31), 16);
  }
}

// @ts-ignore: decorator
@inline function kernel1x8(pa: usize, aRedB: usize, pb: usize, kc: i32, pc: usize, init: i32, pbias: usize, act: i32, py: usize): void {
  let c0: v128, c1: v128;
  if (init == INIT_LOAD) {
    c0 = v128.load(pc); c1 = v128.load(pc, 16);
  } else if (init == INIT_BIAS) {
    c0 = v128.load(pbias); c1 = v128.load(pbias, 16);
  } else {
    c0 = f32x4.splat(0); c1 = c0;
  }
  let a0 = pa;
  for (let r = 0; r < kc; r++) {
    const x = v128.load32_splat(a0);
    c0 = madd(x, v128.load(pb), c0);
    c1 = madd(x, v128.load(pb, 16), c1);
    pb += 32;
    a0 += aRedB;
  }
  v128.store(pc, c0); v128.store(pc, c1, 16);
  if (py != 0) {
    v128.store(py, vactivate(act, c0)); v128.store(py, vactivate(act, c1), 16);
  }
}

/** Packs B(j, r) for j in [jc, jcEnd), r in [rc, rc + kc) into 8-column panels, zero-padded. */
function packB(b: usize, bCol: i32, bRed: i32, jc: i32, jcEnd: i32, rc: i32, kc: i32, out: usize): void {
  const panels = (jcEnd - jc + NR - 1) / NR;
  for (let p = 0; p < panels; p++) {
    const j = jc + p * NR;
    const width = min(NR, jcEnd - j);
    const dst = out + <usize>(p * kc * NR) * 4;
    if (width == NR && bCol == 1) {
      for (let r = 0; r < kc; r++) {
        const src = b + (<usize>j + <usize>(rc + r) * <usize>bRed) * 4;
        v128.store(dst + <usize>(r * 32), v128.load(src));
        v128.store(dst + <usize>(r * 32), v128.load(src, 16), 16);
      }
      continue;
    }
    if (width == NR && bRed == 1) {
      // B rows contiguous along r (x·Wᵀ's weight): transpose 4×4 blocks with shuffles — 8 loads
      // and 8 stores per 4 values of r instead of 32 scalar moves.
      const rowStep = <usize>bCol * 4;
      const src0 = b + (<usize>j * <usize>bCol + <usize>rc) * 4;
      let r = 0;
      for (; r + 4 <= kc; r += 4) {
        const p0 = src0 + <usize>r * 4;
        const v0 = v128.load(p0);
        const v1 = v128.load(p0 + rowStep);
        const v2 = v128.load(p0 + 2 * rowStep);
        const v3 = v128.load(p0 + 3 * rowStep);
        const v4 = v128.load(p0 + 4 * rowStep);
        const v5 = v128.load(p0 + 5 * rowStep);
        const v6 = v128.load(p0 + 6 * rowStep);
        const v7 = v128.load(p0 + 7 * rowStep);
        const t0 = v128.shuffle<i32>(v0, v1, 0, 4, 1, 5);
        const t1 = v128.shuffle<i32>(v2, v3, 0, 4, 1, 5);
        const t2 = v128.shuffle<i32>(v0, v1, 2, 6, 3, 7);
        const t3 = v128.shuffle<i32>(v2, v3, 2, 6, 3, 7);
        const u0 = v128.shuffle<i32>(v4, v5, 0, 4, 1, 5);
        const u1 = v128.shuffle<i32>(v6, v7, 0, 4, 1, 5);
        const u2 = v128.shuffle<i32>(v4, v5, 2, 6, 3, 7);
        const u3 = v128.shuffle<i32>(v6, v7, 2, 6, 3, 7);
        const d = dst + <usize>(r * 32);
        v128.store(d, v128.shuffle<i32>(t0, t1, 0, 1, 4, 5));
        v128.store(d, v128.shuffle<i32>(u0, u1, 0, 1, 4, 5), 16);
        v128.store(d, v128.shuffle<i32>(t0, t1, 2, 3, 6, 7), 32);
        v128.store(d, v128.shuffle<i32>(u0, u1, 2, 3, 6, 7), 48);
        v128.store(d, v128.shuffle<i32>(t2, t3, 0, 1, 4, 5), 64);
        v128.store(d, v128.shuffle<i32>(u2, u3, 0, 1, 4, 5), 80);
        v128.store(d, v128.shuffle<i32>(t2, t3, 2, 3, 6, 7), 96);
        v128.store(d, v128.shuffle<i32>(u2, u3, 2, 3, 6, 7), 112);
      }
      for (; r < kc; r++) {
        for (let q = 0; q < NR; q++) store<f32>(dst + <usize>(r * 32 + q * 4), load<f32>(src0 + <usize>q * rowStep + <usize>r * 4));
      }
      continue;
    }
    for (let q = 0; q < NR; q++) {
      if (q < width) {
        let src = b + (<usize>(j + q) * <usize>bCol + <usize>rc * <usize>bRed) * 4;
        const step = <usize>bRed * 4;
        for (let r = 0; r < kc; r++) {
          store<f32>(dst + <usize>(r * 32 + q * 4), load<f32>(src));
          src += step;
        }
      } else {
        for (let r = 0; r < kc; r++) store<f32>(dst + <usize>(r * 32 + q * 4), 0);
      }
    }
  }
}

/**
 * C[i, j] for i in [i0, i1), j in [j0, j1):
 *   accumulate = 0: C = bias[j] (or 0) + Σ_r A(i, r)·B(j, r)
 *   accumulate = 1: C += Σ_r A(i, r)·B(j, r)
 * When y ≠ 0, also y[i, j] = act(C[i, j]) (act: 0 none, 1 gelu_tanh, 2 gelu_erf): C then holds
 * the pre-activation. ldc and ldy are row strides in elements. `scratch`: gemmScratchBytes() bytes,
 * 16-byte aligned, private to the calling thread.
 */
export function gemm(
  a: usize, aRow: i32, aRed: i32,
  b: usize, bCol: i32, bRed: i32,
  c: usize, ldc: i32, y: usize, ldy: i32,
  bias: usize, act: i32, accumulate: i32,
  i0: i32, i1: i32, j0: i32, j1: i32, K: i32,
  scratch: usize,
): void {
  if (i0 >= i1 || j0 >= j1) return;
  const packed = scratch;
  const packedBias = scratch + <usize>(KC * NC * 4);
  const tileC = packedBias + <usize>(NC * 4);
  const tileY = tileC + <usize>(4 * NR * 4);
  const aRowB = <usize>aRow * 4;
  const aRedB = <usize>aRed * 4;
  const ldcB = <usize>ldc * 4;
  const ldyB = <usize>ldy * 4;
  for (let jc = j0; jc < j1; jc += NC) {
    const jcEnd = min(jc + NC, j1);
    const panels = (jcEnd - jc + NR - 1) / NR;
    if (bias != 0 && accumulate == 0) {
      for (let q = 0; q < panels * NR; q++) {
        store<f32>(packedBias + <usize>(q * 4), jc + q < jcEnd ? load<f32>(bias + <usize>(jc + q) * 4) : 0);
      }
    }
    for (let rc = 0; rc < K; rc += KC) {
      const kc = min(KC, K - rc);
      packB(b, bCol, bRed, jc, jcEnd, rc, kc, packed);
      const init = rc > 0 || accumulate != 0 ? INIT_LOAD : bias != 0 ? INIT_BIAS : INIT_ZERO;
      const writeY = rc + kc >= K && y != 0;
      for (let ic = i0; ic < i1; ic += MC) {
        const icEnd = min(ic + MC, i1);
        for (let p = 0; p < panels; p++) {
          const j = jc + p * NR;
          const width = min(NR, jcEnd - j);
          const pb = packed + <usize>(p * kc * NR) * 4;
          const pbias = packedBias + <usize>(p * NR) * 4;
          let i = ic;
          while (i < icEnd) {
            const rows = icEnd - i >= 4 ? 4 : 1;
            const pa = a + (<usize>i * <usize>aRow + <usize>rc * <usize>aRed) * 4;
            const pc = c + (<usize>i * <usize>ldc + <usize>j) * 4;
            const py = writeY ? y + (<usize>i * <usize>ldy + <usize>j) * 4 : 0;
            if (width == NR) {
              if (rows == 4) kernel4x8(pa, aRowB, aRedB, pb, kc, pc, ldcB, init, pbias, act, py, ldyB);
              else kernel1x8(pa, aRedB, pb, kc, pc, init, pbias, act, py);
            } else {
              // Column tail: run the same kernel on an 8-wide tile, copy back the valid columns.
              if (init == INIT_LOAD) {
                for (let q = 0; q < rows; q++) for (let w = 0; w < width; w++) {
                  store<f32>(tileC + <usize>(q * 32 + w * 4), load<f32>(pc + <usize>q * ldcB + <usize>(w * 4)));
                }
              }
              const ty = writeY ? tileY : 0;
              if (rows == 4) kernel4x8(pa, aRowB, aRedB, pb, kc, tileC, 32, init, pbias, act, ty, 32);
              else kernel1x8(pa, aRedB, pb, kc, tileC, init, pbias, act, ty);
              for (let q = 0; q < rows; q++) for (let w = 0; w < width; w++) {
                store<f32>(pc + <usize>q * ldcB + <usize>(w * 4), load<f32>(tileC + <usize>(q * 32 + w * 4)));
                if (writeY) store<f32>(py + <usize>q * ldyB + <usize>(w * 4), load<f32>(tileY + <usize>(q * 32 + w * 4)));
              }
            }
            i += rows;
          }
        }
      }
    }
  }
}

/** dz[i, :] = dy[i, :] ⊙ act'(preAct[i, :]) for rows [i0, i1) of width n (dz may be dy). */
export function activationBackward(dy: usize, preAct: usize, dz: usize, act: i32, i0: i32, i1: i32, n: i32): void {
  const start = <usize>i0 * <usize>n;
  const end = <usize>i1 * <usize>n;
  let e = start;
  for (; e + 4 <= end; e += 4) {
    const o = e * 4;
    v128.store(dz + o, f32x4.mul(v128.load(dy + o), vactivationDerivative(act, v128.load(preAct + o))));
  }
  for (; e < end; e++) {
    // Scalar tail through a lane of the same vector code, so results match the vector path.
    const o = e * 4;
    const d = f32x4.extract_lane(vactivationDerivative(act, f32x4.splat(load<f32>(preAct + o))), 0);
    store<f32>(dz + o, load<f32>(dy + o) * d);
  }
}


/** dBias[j] += Σ_i dz[i, j] for columns [j0, j1), rows summed in order 0..M−1. */
export function columnSums(dz: usize, M: i32, N: i32, out: usize, j0: i32, j1: i32): void {
  let j = j0;
  for (; j + 4 <= j1; j += 4) {
    let acc = v128.load(out + <usize>j * 4);
    for (let i = 0; i < M; i++) acc = f32x4.add(acc, v128.load(dz + (<usize>i * <usize>N + <usize>j) * 4));
    v128.store(out + <usize>j * 4, acc);
  }
  for (; j < j1; j++) {
    let acc = load<f32>(out + <usize>j * 4);
    for (let i = 0; i < M; i++) acc += load<f32>(dz + (<usize>i * <usize>N + <usize>j) * 4);
    store<f32>(out + <usize>j * 4, acc);
  }
}

/** Σ_k a[k]·b[k] for one (row, column) pair: 4-lane partial sums over whole vectors, lanes
 *  combined as (0+1)+(2+3), then the scalar tail in order. The same sequence wherever it runs. */
// @ts-ignore: decorator
@inline function dotRow(a: usize, b: usize, K: i32): f32 {
  let acc = f32x4.splat(0);
  const k4 = K & ~3;
  for (let k = 0; k < k4; k += 4) acc = madd(v128.load(a + <usize>k * 4), v128.load(b + <usize>k * 4), acc);
  return lanesSum(acc, a, b, k4, K);
}

/**
 * The few-rows path (generation: one token or a few beams): C[i, j] (= bias + | +=) Σ_k A[i, k]·B[j, k]
 * with both operands contiguous along k, as dot products — no packing, which would cost as much
 * as the product itself at one row. y = act(C) as in gemm. The host picks it from the shape alone.
 */
export function gemmFewRows(
  a: usize, aRow: i32, b: usize, bCol: i32,
  c: usize, ldc: i32, y: usize, ldy: i32,
  bias: usize, act: i32, accumulate: i32,
  i0: i32, i1: i32, j0: i32, j1: i32, K: i32,
): void {
  const k4 = K & ~3;
  const bStep = <usize>bCol * 4;
  // Columns outer, rows inner: four rows of B (L1-resident) serve every row of A.
  let j = j0;
  // Four columns at once (four independent chains hide the multiply-add latency); each column's
  // operations are exactly dotRow's, so the grouping does not change any result.
  for (; j + 4 <= j1; j += 4) {
    const b0 = b + <usize>j * bStep;
    const b1 = b0 + bStep;
    const b2 = b1 + bStep;
    const b3 = b2 + bStep;
    for (let i = i0; i < i1; i++) {
      const arow = a + <usize>i * <usize>aRow * 4;
      let s0 = f32x4.splat(0), s1 = s0, s2 = s0, s3 = s0;
      for (let k = 0; k < k4; k += 4) {
        const x = v128.load(arow + <usize>k * 4);
        const o = <usize>k * 4;
        s0 = madd(x, v128.load(b0 + o), s0);
        s1 = madd(x, v128.load(b1 + o), s1);
        s2 = madd(x, v128.load(b2 + o), s2);
        s3 = madd(x, v128.load(b3 + o), s3);
      }
      fewRowsStore(lanesSum(s0, arow, b0, k4, K), c, ldc, y, ldy, bias, act, accumulate, i, j);
      fewRowsStore(lanesSum(s1, arow, b1, k4, K), c, ldc, y, ldy, bias, act, accumulate, i, j + 1);
      fewRowsStore(lanesSum(s2, arow, b2, k4, K), c, ldc, y, ldy, bias, act, accumulate, i, j + 2);
      fewRowsStore(lanesSum(s3, arow, b3, k4, K), c, ldc, y, ldy, bias, act, accumulate, i, j + 3);
    }
  }
  for (; j < j1; j++) {
    for (let i = i0; i < i1; i++) {
      const arow = a + <usize>i * <usize>aRow * 4;
      fewRowsStore(dotRow(arow, b + <usize>j * bStep, K), c, ldc, y, ldy, bias, act, accumulate, i, j);
    }
  }
}

/** dotRow's ending: lanes (0+1)+(2+3), then the scalar tail k4..K−1 in order. */
// @ts-ignore: decorator
@inline function lanesSum(acc: v128, a: usize, b: usize, k4: i32, K: i32): f32 {
  let s: f32 = (f32x4.extract_lane(acc, 0) + f32x4.extract_lane(acc, 1)) + (f32x4.extract_lane(acc, 2) + f32x4.extract_lane(acc, 3));
  for (let k = k4; k < K; k++) s += load<f32>(a + <usize>k * 4) * load<f32>(b + <usize>k * 4);
  return s;
}

// @ts-ignore: decorator
@inline function fewRowsStore(dot: f32, c: usize, ldc: i32, y: usize, ldy: i32, bias: usize, act: i32, accumulate: i32, i: i32, j: i32): void {
  let z = dot;
  const pc = c + (<usize>i * <usize>ldc + <usize>j) * 4;
  if (accumulate != 0) z = load<f32>(pc) + z;
  else if (bias != 0) z = load<f32>(bias + <usize>j * 4) + z;
  store<f32>(pc, z);
  if (y != 0) store<f32>(y + (<usize>i * <usize>ldy + <usize>j) * 4, f32x4.extract_lane(vactivate(act, f32x4.splat(z)), 0));
}
