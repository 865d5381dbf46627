// Tensor-core attention for bf16 q/k/v (flash-attention-2 style): mma.sync m16n8k16 with bf16
// inputs and f32 accumulators, head dims up to 64 (zero-padded to 64), GLM's per-query key
// ranges, probability dropout with the same counter hash (stream = dropout.stream + b·heads + h,
// element i·keys + j) as the reference and the scalar kernels in attention.cuh.
//
// A block is 4 warps; each warp owns 16 rows (queries in the forward and dq kernels, keys in the
// dk/dv kernel) and keeps its operand fragments and accumulators in registers. The other side is
// streamed through shared memory in tiles of 64 rows (row-major, and transposed where it is the
// B operand of a product over rows). No atomics: dq and dk/dv are separate kernels, each writing
// its own rows, so results are deterministic.
//
// These are the generic kernels (any head dim up to 64, any alignment, scalar loads); rows that
// are 16-byte loadable take the pipelined kernels of attention_tc_async.cuh, whose launchers
// (at its end) choose between the two.
//
// Fragment layouts (PTX ISA, mma.m16n8k16 .bf16), g = lane / 4, t = lane % 4:
//   A (16×16, row): reg0 (g, 2t..2t+1), reg1 (g+8, 2t..), reg2 (g, 2t+8..), reg3 (g+8, 2t+8..)
//   B (16×8, col):  reg0 (k = 2t..2t+1, n = g), reg1 (k = 2t+8.., n = g)
//   C (16×8, f32):  c0, c1 (g, 2t..2t+1), c2, c3 (g+8, 2t..2t+1)
// so the C fragments of two neighbouring 8-column tiles are exactly the A fragment of a 16-wide
// k step: probabilities go from one product to the next without leaving registers.
#pragma once
#include "attention.cuh"

constexpr int TC_D = 64;     // head dims are zero-padded to this
constexpr int TC_ROWS = 64;  // rows per block (4 warps × 16) and per streamed tile
constexpr int TC_LD = 72;    // shared row length in bf16: 144 bytes, 16-byte aligned, conflict-free 32-bit fragment loads
constexpr int TC_THREADS = 128;

/** A bf16 view: element (b, t, c) at base[b·batchStride + t·rowStride + c]. */
struct TcView {
  const uint16_t* base;
  long long batchStride, rowStride;
  __device__ const uint16_t* row(int b, int t) const { return base + (long long)b * batchStride + (long long)t * rowStride; }
};

inline TcView tcView(const AttnView& v) { return {(const uint16_t*)v.base.p, v.batchStride, v.rowStride}; }

__device__ inline void mmaBf16(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
#elif defined(BLANKGLM_EMU)
  emu::mmaM16N8K16(c, a, b0, b1);
#endif
}

/** Two floats as a bf16 pair (round to nearest even); `lo` is the lower-indexed element. */
__device__ inline uint32_t packBf16(float lo, float hi) {
  __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<uint32_t*>(&v);
}

__device__ inline uint32_t sharedPair(const uint16_t (*tile)[TC_LD], int r, int c) { return *reinterpret_cast<const uint32_t*>(&tile[r][c]); }

/** Rows [r0, r0 + 64) of head h (D dims) into `dst` (rows × dims) and/or `dstT` (dims × rows); rows at or past `limit` and dims at or past D are zero. */
__device__ inline void loadTile(const TcView& v, int b, int r0, int limit, int h, int D, uint16_t (*dst)[TC_LD], uint16_t (*dstT)[TC_LD]) {
  for (int e = threadIdx.x; e < TC_ROWS * TC_D; e += blockDim.x) {
    const int r = e / TC_D, d = e % TC_D;
    uint16_t x = 0;
    if (r0 + r < limit && d < D) x = v.row(b, r0 + r)[h * D + d];
    if (dst) dst[r][d] = x;
    if (dstT) dstT[d][r] = x;
  }
}

/** The A fragments (16 rows × 64 dims, 4 k steps) of rows [16·warp, 16·warp + 16) of a staged tile. */
__device__ inline void loadRowFragments(const uint16_t (*tile)[TC_LD], int warp, int g, int t, uint32_t (&a)[4][4]) {
#pragma unroll
  for (int ks = 0; ks < 4; ks++) {
    a[ks][0] = sharedPair(tile, warp * 16 + g, ks * 16 + 2 * t);
    a[ks][1] = sharedPair(tile, warp * 16 + g + 8, ks * 16 + 2 * t);
    a[ks][2] = sharedPair(tile, warp * 16 + g, ks * 16 + 8 + 2 * t);
    a[ks][3] = sharedPair(tile, warp * 16 + g + 8, ks * 16 + 8 + 2 * t);
  }
}

/** acc[n][·] = A (16 × 64, fragments) · Bᵀ where B's rows are tile rows n·8 .. (64 × 64 → 16 × 64). */
__device__ inline void productWithRows(const uint32_t (&a)[4][4], const uint16_t (*tile)[TC_LD], int g, int t, float (&acc)[8][4]) {
#pragma unroll
  for (int n = 0; n < 8; n++) {
    acc[n][0] = acc[n][1] = acc[n][2] = acc[n][3] = 0.f;
#pragma unroll
    for (int ks = 0; ks < 4; ks++) mmaBf16(acc[n], a[ks], sharedPair(tile, n * 8 + g, ks * 16 + 2 * t), sharedPair(tile, n * 8 + g, ks * 16 + 8 + 2 * t));
  }
}

/** acc += P (16 × 64, C fragments) · X where tileT holds Xᵀ (dims × rows). */
__device__ inline void accumulateProduct(const float (&p)[8][4], const uint16_t (*tileT)[TC_LD], int g, int t, float (&acc)[8][4]) {
#pragma unroll
  for (int kk = 0; kk < 4; kk++) {
    const uint32_t a[4] = {packBf16(p[2 * kk][0], p[2 * kk][1]), packBf16(p[2 * kk][2], p[2 * kk][3]), packBf16(p[2 * kk + 1][0], p[2 * kk + 1][1]),
                           packBf16(p[2 * kk + 1][2], p[2 * kk + 1][3])};
#pragma unroll
    for (int n = 0; n < 8; n++) mmaBf16(acc[n], a, sharedPair(tileT, n * 8 + g, kk * 16 + 2 * t), sharedPair(tileT, n * 8 + g, kk * 16 + 8 + 2 * t));
  }
}

/**
 * This thread's two query rows of the warp's 16 (r = 0 → row g, r = 1 → row g + 8) and their key
 * ranges; a row past Lq or with an invalid range gets the empty range [0, 0).
 */
__device__ inline void warpQueryRows(const int* keyStart, const int* keyEnd, int b, int q0, int warp, int g, const AttnShape& s, int (&qi)[2], int (&qs)[2],
                                     int (&qe)[2]) {
#pragma unroll
  for (int r = 0; r < 2; r++) {
    qi[r] = q0 + warp * 16 + g + 8 * r;
    qs[r] = qe[r] = 0;
    if (qi[r] < s.Lq) {
      const int st = keyStart[b * s.Lq + qi[r]], en = keyEnd[b * s.Lq + qi[r]];
      if (rangeOk(st, en, s.Lk)) {
        qs[r] = st;
        qe[r] = en;
      }
    }
  }
}

/** lse (times lseScale) and Δ of this thread's two query rows (0 past Lq). */
__device__ inline void warpQueryStats(const float* lse, const float* delta, int b, int h, const int (&qi)[2], const AttnShape& s, float lseScale, float (&lseR)[2],
                                      float (&deltaR)[2]) {
#pragma unroll
  for (int r = 0; r < 2; r++) {
    lseR[r] = deltaR[r] = 0.f;
    if (qi[r] < s.Lq) {
      const long long li = ((long long)b * s.heads + h) * s.Lq + qi[r];
      lseR[r] = lse[li] * lseScale;
      deltaR[r] = delta[li];
    }
  }
}

__global__ void __launch_bounds__(TC_THREADS) tcAttentionForwardKernel(TcView q, TcView k, TcView v, const int* keyStart, const int* keyEnd, uint16_t* out,
                                                                     float* lseOut, AttnShape s, Dropout drop) {
  __shared__ __align__(16) uint16_t Ks[TC_ROWS][TC_LD];
  __shared__ __align__(16) uint16_t Vt[TC_D][TC_LD];
  __shared__ int range[2];
  const int b = blockIdx.z, h = blockIdx.y, q0 = blockIdx.x * TC_ROWS;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
  const uint32_t stream = drop.stream + (uint32_t)(b * s.heads + h);

  int qi[2], qs[2], qe[2];
  warpQueryRows(keyStart, keyEnd, b, q0, warp, g, s, qi, qs, qe);
  blockKeyRange(keyStart, keyEnd, b, q0, TC_ROWS, s.Lq, s.Lk, range);
  const int kMin = range[0], kMax = range[1];

  // Q fragments (staged through Ks).
  uint32_t qa[4][4];
  loadTile(q, b, q0, s.Lq, h, s.D, Ks, nullptr);
  __syncthreads();
  loadRowFragments(Ks, warp, g, t, qa);

  float o[8][4];
#pragma unroll
  for (int n = 0; n < 8; n++) o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.f;
  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.f, 0.f};  // l: this thread's partial row sums

  for (int kb = kMin; kb < kMax; kb += TC_ROWS) {
    __syncthreads();
    loadTile(k, b, kb, s.Lk, h, s.D, Ks, nullptr);
    loadTile(v, b, kb, s.Lk, h, s.D, nullptr, Vt);
    __syncthreads();
    float sc[8][4];
    productWithRows(qa, Ks, g, t, sc);
    float tileMax[2] = {-INFINITY, -INFINITY};
#pragma unroll
    for (int n = 0; n < 8; n++)
#pragma unroll
      for (int e = 0; e < 4; e++) {
        const int r = e >> 1, j = kb + n * 8 + 2 * t + (e & 1);
        const bool in = j >= qs[r] && j < qe[r];
        sc[n][e] = in ? sc[n][e] * s.scale : -INFINITY;
        tileMax[r] = fmaxf(tileMax[r], sc[n][e]);
      }
    float base[2], correction[2];
#pragma unroll
    for (int r = 0; r < 2; r++) {
      tileMax[r] = fmaxf(tileMax[r], __shfl_xor_sync(0xffffffffu, tileMax[r], 1));
      tileMax[r] = fmaxf(tileMax[r], __shfl_xor_sync(0xffffffffu, tileMax[r], 2));
      const float newMax = fmaxf(m[r], tileMax[r]);
      base[r] = newMax == -INFINITY ? 0.f : newMax;  // a row with no key yet: every p is exp(−∞) = 0
      correction[r] = expf(m[r] - base[r]);
      m[r] = newMax;
      l[r] *= correction[r];
    }
#pragma unroll
    for (int n = 0; n < 8; n++) {
      o[n][0] *= correction[0];
      o[n][1] *= correction[0];
      o[n][2] *= correction[1];
      o[n][3] *= correction[1];
#pragma unroll
      for (int e = 0; e < 4; e++) {
        const int r = e >> 1, j = kb + n * 8 + 2 * t + (e & 1);
        const float p = expf(sc[n][e] - base[r]);
        l[r] += p;
        sc[n][e] = p == 0.f ? 0.f : p * (float)dropoutFactor(drop, stream, (uint32_t)(qi[r] * s.Lk + j));
      }
    }
    accumulateProduct(sc, Vt, g, t, o);
  }

  const int W = s.heads * s.D;
#pragma unroll
  for (int r = 0; r < 2; r++) {
    l[r] += __shfl_xor_sync(0xffffffffu, l[r], 1);
    l[r] += __shfl_xor_sync(0xffffffffu, l[r], 2);
    if (qi[r] >= s.Lq) continue;
    const float inv = l[r] > 0.f ? 1.f / l[r] : 0.f;
    __nv_bfloat16* row = reinterpret_cast<__nv_bfloat16*>(out) + ((long long)b * s.Lq + qi[r]) * W + h * s.D;
#pragma unroll
    for (int n = 0; n < 8; n++)
#pragma unroll
      for (int e = 0; e < 2; e++) {
        const int d = n * 8 + 2 * t + e;
        if (d < s.D) row[d] = __float2bfloat16_rn(o[n][2 * r + e] * inv);
      }
    if (lseOut && t == 0) lseOut[((long long)b * s.heads + h) * s.Lq + qi[r]] = l[r] > 0.f ? m[r] + logf(l[r]) : 0.f;
  }
}

/** dq: a block per 64 queries; key tiles streamed; dS·K accumulated in registers. */
__global__ void __launch_bounds__(TC_THREADS) tcAttentionDqKernel(TcView dOut, TcView q, TcView k, TcView v, const float* lse, const float* delta,
                                                                const int* keyStart, const int* keyEnd, TcView dq, AttnShape s, Dropout drop) {
  __shared__ __align__(16) uint16_t Ks[TC_ROWS][TC_LD];
  __shared__ __align__(16) uint16_t Kt[TC_D][TC_LD];
  __shared__ __align__(16) uint16_t Vs[TC_ROWS][TC_LD];
  __shared__ int range[2];
  const int b = blockIdx.z, h = blockIdx.y, q0 = blockIdx.x * TC_ROWS;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
  const uint32_t stream = drop.stream + (uint32_t)(b * s.heads + h);

  int qi[2], qs[2], qe[2];
  float lseR[2], deltaR[2];
  warpQueryRows(keyStart, keyEnd, b, q0, warp, g, s, qi, qs, qe);
  warpQueryStats(lse, delta, b, h, qi, s, 1.f, lseR, deltaR);
  blockKeyRange(keyStart, keyEnd, b, q0, TC_ROWS, s.Lq, s.Lk, range);
  const int kMin = range[0], kMax = range[1];

  // Q and dOut fragments (staged through Ks and Vs).
  uint32_t qa[4][4], ga[4][4];
  loadTile(q, b, q0, s.Lq, h, s.D, Ks, nullptr);
  loadTile(dOut, b, q0, s.Lq, h, s.D, Vs, nullptr);
  __syncthreads();
  loadRowFragments(Ks, warp, g, t, qa);
  loadRowFragments(Vs, warp, g, t, ga);

  float acc[8][4];
#pragma unroll
  for (int n = 0; n < 8; n++) acc[n][0] = acc[n][1] = acc[n][2] = acc[n][3] = 0.f;

  for (int kb = kMin; kb < kMax; kb += TC_ROWS) {
    __syncthreads();
    loadTile(k, b, kb, s.Lk, h, s.D, Ks, Kt);
    loadTile(v, b, kb, s.Lk, h, s.D, Vs, nullptr);
    __syncthreads();
    float sc[8][4], dp[8][4];
    productWithRows(qa, Ks, g, t, sc);
    productWithRows(ga, Vs, g, t, dp);
#pragma unroll
    for (int n = 0; n < 8; n++)
#pragma unroll
      for (int e = 0; e < 4; e++) {
        const int r = e >> 1, j = kb + n * 8 + 2 * t + (e & 1);
        float ds = 0.f;
        if (j >= qs[r] && j < qe[r]) {
          const float p = expf(s.scale * sc[n][e] - lseR[r]);
          const float c = (float)dropoutFactor(drop, stream, (uint32_t)(qi[r] * s.Lk + j));
          ds = s.scale * p * (c * dp[n][e] - deltaR[r]);
        }
        sc[n][e] = ds;
      }
    accumulateProduct(sc, Kt, g, t, acc);
  }

#pragma unroll
  for (int r = 0; r < 2; r++) {
    if (qi[r] >= s.Lq) continue;
    __nv_bfloat16* row = reinterpret_cast<__nv_bfloat16*>(const_cast<uint16_t*>(dq.row(b, qi[r]))) + h * s.D;
#pragma unroll
    for (int n = 0; n < 8; n++)
#pragma unroll
      for (int e = 0; e < 2; e++) {
        const int d = n * 8 + 2 * t + e;
        if (d < s.D) row[d] = __float2bfloat16_rn(acc[n][2 * r + e]);
      }
  }
}

/** dk and dv: a block per 64 keys; query tiles streamed (those whose ranges touch the block). */
__global__ void __launch_bounds__(TC_THREADS) tcAttentionDkDvKernel(TcView dOut, TcView q, TcView k, TcView v, const float* lse, const float* delta,
                                                                  const int* keyStart, const int* keyEnd, TcView dk, TcView dv, AttnShape s, Dropout drop) {
  __shared__ __align__(16) uint16_t Qs[TC_ROWS][TC_LD];
  __shared__ __align__(16) uint16_t Qt[TC_D][TC_LD];
  __shared__ __align__(16) uint16_t Gs[TC_ROWS][TC_LD];
  __shared__ __align__(16) uint16_t Gt[TC_D][TC_LD];
  __shared__ float lseS[TC_ROWS], deltaS[TC_ROWS];
  __shared__ int startS[TC_ROWS], endS[TC_ROWS];
  __shared__ int anyOverlap;
  const int b = blockIdx.z, h = blockIdx.y, k0 = blockIdx.x * TC_ROWS;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
  const int kLast = min(s.Lk, k0 + TC_ROWS) - 1;
  const uint32_t stream = drop.stream + (uint32_t)(b * s.heads + h);
  int kj[2];
#pragma unroll
  for (int r = 0; r < 2; r++) kj[r] = k0 + warp * 16 + g + 8 * r;

  // K and V fragments (staged through Qs and Gs).
  uint32_t ka[4][4], va[4][4];
  loadTile(k, b, k0, s.Lk, h, s.D, Qs, nullptr);
  loadTile(v, b, k0, s.Lk, h, s.D, Gs, nullptr);
  __syncthreads();
  loadRowFragments(Qs, warp, g, t, ka);
  loadRowFragments(Gs, warp, g, t, va);

  float dkAcc[8][4], dvAcc[8][4];
#pragma unroll
  for (int n = 0; n < 8; n++) {
    dkAcc[n][0] = dkAcc[n][1] = dkAcc[n][2] = dkAcc[n][3] = 0.f;
    dvAcc[n][0] = dvAcc[n][1] = dvAcc[n][2] = dvAcc[n][3] = 0.f;
  }

  for (int i0 = 0; i0 < s.Lq; i0 += TC_ROWS) {
    __syncthreads();
    if (threadIdx.x == 0) anyOverlap = 0;
    __syncthreads();
    if (threadIdx.x < TC_ROWS) {
      const int i = i0 + threadIdx.x;
      int st = 0, en = 0;
      float ls = 0.f, dl = 0.f;
      if (i < s.Lq) {
        st = keyStart[b * s.Lq + i];
        en = keyEnd[b * s.Lq + i];
        if (!rangeOk(st, en, s.Lk)) st = en = 0;
        const long long li = ((long long)b * s.heads + h) * s.Lq + i;
        ls = lse[li];
        dl = delta[li];
      }
      startS[threadIdx.x] = st;
      endS[threadIdx.x] = en;
      lseS[threadIdx.x] = ls;
      deltaS[threadIdx.x] = dl;
      if (st <= kLast && en > k0 && en > st) atomicOr(&anyOverlap, 1);
    }
    __syncthreads();
    if (!anyOverlap) continue;
    loadTile(q, b, i0, s.Lq, h, s.D, Qs, Qt);
    loadTile(dOut, b, i0, s.Lq, h, s.D, Gs, Gt);
    __syncthreads();
    float st[8][4], dpt[8][4];
    productWithRows(ka, Qs, g, t, st);   // Sᵀ: keys × queries
    productWithRows(va, Gs, g, t, dpt);  // dPᵀ = V · dOᵀ
#pragma unroll
    for (int n = 0; n < 8; n++)
#pragma unroll
      for (int e = 0; e < 4; e++) {
        const int r = e >> 1, ii = n * 8 + 2 * t + (e & 1), i = i0 + ii, j = kj[r];
        float pc = 0.f, ds = 0.f;
        if (j >= startS[ii] && j < endS[ii]) {
          const float p = expf(s.scale * st[n][e] - lseS[ii]);
          const float c = (float)dropoutFactor(drop, stream, (uint32_t)(i * s.Lk + j));
          pc = p * c;
          ds = s.scale * p * (c * dpt[n][e] - deltaS[ii]);
        }
        st[n][e] = pc;
        dpt[n][e] = ds;
      }
    accumulateProduct(st, Gt, g, t, dvAcc);   // dV += (P∘c)ᵀ · dO
    accumulateProduct(dpt, Qt, g, t, dkAcc);  // dK += dSᵀ · Q
  }

#pragma unroll
  for (int r = 0; r < 2; r++) {
    if (kj[r] >= s.Lk) continue;
    __nv_bfloat16* kr = reinterpret_cast<__nv_bfloat16*>(const_cast<uint16_t*>(dk.row(b, kj[r]))) + h * s.D;
    __nv_bfloat16* vr = reinterpret_cast<__nv_bfloat16*>(const_cast<uint16_t*>(dv.row(b, kj[r]))) + h * s.D;
#pragma unroll
    for (int n = 0; n < 8; n++)
#pragma unroll
      for (int e = 0; e < 2; e++) {
        const int d = n * 8 + 2 * t + e;
        if (d < s.D) {
          kr[d] = __float2bfloat16_rn(dkAcc[n][2 * r + e]);
          vr[d] = __float2bfloat16_rn(dvAcc[n][2 * r + e]);
        }
      }
  }
}
