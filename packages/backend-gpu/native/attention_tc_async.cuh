// Pipelined tensor-core attention for bf16 q/k/v whose head rows are 16-byte loadable (head dim a
// multiple of 8, at most 64; views 16-byte aligned): the fast path of attention_tc.cuh, with
// the same math, masks and dropout stream/element numbering.
//
// What differs from the generic kernels of attention_tc.cuh:
//  - tiles are copied global → shared with cp.async into two stages, so the next tile's copy
//    runs while the tensor cores work on the current one;
//  - every tile stays row-major in shared memory: operand fragments come from ldmatrix, and the
//    products that need a tile transposed (P·V, dS·K, Pᵀ·dO, dSᵀ·Q) use ldmatrix.trans instead
//    of a transposed copy;
//  - softmax in base 2 (ex2.approx of scores pre-multiplied by scale·log2 e); lse is still natural;
//  - tiles that every query of the block sees in full skip the per-element range tests;
//  - the dropout hash's per-(b, h) half is computed once per block.
// No atomics on global memory (dq and dk/dv are separate kernels): deterministic.
//
// ldmatrix.x4 (PTX ISA): lanes 8m..8m+7 give the row addresses of 8×8 matrix m; lane l receives
// in register m the pair (row l/4, cols 2(l%4), 2(l%4)+1) of matrix m, or with .trans the pair
// (rows 2(l%4), 2(l%4)+1, col l/4) — exactly the mma.m16n8k16 A / B fragment pieces.
#pragma once
#include "attention_tc.cuh"

constexpr int TCA_MAX_QUERY_TILES = 256;  // dk/dv's list of query tiles: Lq ≤ 16384

__device__ inline uint32_t sharedAddress(const void* p) { return (uint32_t)__cvta_generic_to_shared(p); }

/** 16 bytes global → shared, asynchronously; zeros when !valid (src is then not read). */
__device__ inline void cpAsync16(void* dst, const void* src, bool valid) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(sharedAddress(dst)), "l"(src), "r"(valid ? 16 : 0));
#elif defined(BLANKGLM_EMU)
  if (valid) memcpy(dst, src, 16);
  else memset(dst, 0, 16);
#endif
}
__device__ inline void cpAsyncCommit() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile("cp.async.commit_group;\n" ::);
#endif
}
/** Waits until at most N committed groups of this thread are still in flight. */
template <int N>
__device__ inline void cpAsyncWait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
#endif
}

__device__ inline void ldmatrixX4(uint32_t (&r)[4], const void* p) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n" : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(sharedAddress(p)));
#elif defined(BLANKGLM_EMU)
  emu::ldmatrixX4(r, p, false);
#endif
}
__device__ inline void ldmatrixX4Trans(uint32_t (&r)[4], const void* p) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(sharedAddress(p)));
#elif defined(BLANKGLM_EMU)
  emu::ldmatrixX4(r, p, true);
#endif
}

typedef uint16_t TcTile[TC_ROWS][TC_LD];

/** Starts copying rows [r0, r0 + 64) of head h into `dst` (rows at or past `limit`, dims at or past D: zeros). */
__device__ inline void copyTileAsync(const TcView& v, int b, int r0, int limit, int h, int D, TcTile& dst) {
  for (int e = threadIdx.x; e < TC_ROWS * (TC_D / 8); e += TC_THREADS) {
    const int r = e >> 3, c8 = (e & 7) * 8;
    const bool valid = r0 + r < limit && c8 < D;
    cpAsync16(&dst[r][c8], valid ? v.row(b, r0 + r) + h * D + c8 : v.base, valid);
  }
}

/** A fragments of rows [16·warp, +16) × 64 dims of a tile (4 k steps). */
__device__ inline void rowFragments(const TcTile& tile, int warp, int lane, uint32_t (&a)[4][4]) {
  const int r = warp * 16 + (lane & 7) + ((lane >> 3) & 1) * 8, c = (lane >> 4) * 8;
#pragma unroll
  for (int ks = 0; ks < 4; ks++) ldmatrixX4(a[ks], &tile[r][ks * 16 + c]);
}

/** acc[n] = A (16 × 64) · Bᵀ where B's rows are the tile's rows row0 + n·8 .. + 7, n < N (16 × 8N result). */
template <int N = 8>
__device__ inline void productWithTileRows(const uint32_t (&a)[4][4], const TcTile& tile, int lane, int row0, float (&acc)[N][4]) {
#pragma unroll
  for (int n = 0; n < N; n++) {
    acc[n][0] = acc[n][1] = acc[n][2] = acc[n][3] = 0.f;
#pragma unroll
    for (int kp = 0; kp < 2; kp++) {
      uint32_t bq[4];  // b0, b1 of k step 2kp, then of 2kp + 1
      ldmatrixX4(bq, &tile[row0 + n * 8 + (lane & 7)][kp * 32 + (lane >> 3) * 8]);
      mmaBf16(acc[n], a[2 * kp], bq[0], bq[1]);
      mmaBf16(acc[n], a[2 * kp + 1], bq[2], bq[3]);
    }
  }
}

/**
 * acc += P · X: P (16 × 16·KK, C fragments over tile rows row0 .. row0 + 16·KK) times those rows
 * of X, the row-major tile (rows × 64 dims).
 */
template <int KK = 4>
__device__ inline void accumulateTileProduct(const float (&p)[2 * KK][4], const TcTile& tile, int lane, int row0, float (&acc)[8][4]) {
  const int r = row0 + (lane & 7) + ((lane >> 3) & 1) * 8, c = (lane >> 4) * 8;
#pragma unroll
  for (int kk = 0; kk < KK; kk++) {
    const uint32_t a[4] = {packBf16(p[2 * kk][0], p[2 * kk][1]), packBf16(p[2 * kk][2], p[2 * kk][3]), packBf16(p[2 * kk + 1][0], p[2 * kk + 1][1]),
                           packBf16(p[2 * kk + 1][2], p[2 * kk + 1][3])};
#pragma unroll
    for (int np = 0; np < 4; np++) {
      uint32_t bq[4];  // b0, b1 of dim tile 2np, then of 2np + 1
      ldmatrixX4Trans(bq, &tile[kk * 16 + r][np * 16 + c]);
      mmaBf16(acc[2 * np], a, bq[0], bq[1]);
      mmaBf16(acc[2 * np + 1], a, bq[2], bq[3]);
    }
  }
}

/**
 * The dropout decision with the (seed, stream) half of counterHash32 precomputed. kept(): the
 * element survives (hash ≥ ⌈p·2³²⌉, as the reference); factor(): 0 or 1/(1−p) as f32. With p = 1
 * the threshold is 2³² and nothing survives: keep is 0 then, so the 32-bit compare suffices.
 */
struct DropoutRow {
  uint32_t h0, threshold;
  float keep;
  bool active;
  __device__ DropoutRow(const Dropout& d, uint32_t stream)
      : h0(fmix32(d.seed ^ (stream * 0x9e3779b1u))),
        threshold(d.threshold >= (1ull << 32) ? 0xffffffffu : (uint32_t)d.threshold),
        keep(d.threshold >= (1ull << 32) ? 0.f : (float)d.keepScale),
        active(d.active) {}
  __device__ bool kept(uint32_t element) const { return !active || fmix32(h0 ^ (element * 0x85ebca77u) ^ 0xc2b2ae3du) >= threshold; }
  __device__ float factor(uint32_t element) const { return kept(element) ? keep : 0.f; }
  __device__ float factorOfBit(uint64_t bits, int bit) const { return (bits >> bit) & 1 ? keep : 0.f; }
};

/**
 * Keep bits: the forward records which probabilities survived dropout, one u64 per (b, h, query,
 * 64-key tile): word ((b·heads + h)·Lq + i)·keyTiles + j/64, bit j % 64. The backward kernels read
 * them instead of hashing again (the addon passes them only when the forward that wrote them had
 * the same dropout, shape and lse buffer). Tiles are aligned to 64 keys for that.
 */
__device__ inline long long keepWord(int b, int h, int i, int keyTile, const AttnShape& s) {
  return (((long long)b * s.heads + h) * s.Lq + i) * ((s.Lk + TC_ROWS - 1) / TC_ROWS) + keyTile;
}

inline size_t keepBitsBytes(const AttnShape& s) { return (size_t)s.B * s.heads * s.Lq * ((s.Lk + TC_ROWS - 1) / TC_ROWS) * 8; }

constexpr float LOG2E = 1.4426950408889634f, LN2 = 0.6931471805599453f;

/** 2^x in one MUFU instruction (subnormal results flush to 0; 2^−∞ = 0). */
__device__ inline float fastExp2(float x) {
#ifdef BLANKGLM_EMU
  const float y = exp2f(x);
  return std::fpclassify(y) == FP_SUBNORMAL ? 0.f : y;
#else
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
  return y;
#endif
}

/**
 * Key bounds of queries [q0, q0 + 64): bounds[0], bounds[1] = the union [min start, max end) of
 * their valid ranges; bounds[2], bounds[3] = [max start, min end), the keys every one of the 64
 * queries sees (empty when one of them is past Lq or has no valid range). A 64-key tile inside
 * that intersection needs no per-element range test.
 */
__device__ inline void blockKeyBounds(const int* keyStart, const int* keyEnd, int b, int q0, int Lq, int Lk, int* bounds) {
  if (threadIdx.x == 0) {
    bounds[0] = INT_MAX;
    bounds[1] = INT_MIN;
    bounds[2] = INT_MIN;
    bounds[3] = INT_MAX;
  }
  __syncthreads();
  if (threadIdx.x < TC_ROWS) {
    const int i = q0 + threadIdx.x;
    const int st = i < Lq ? keyStart[b * Lq + i] : 0, en = i < Lq ? keyEnd[b * Lq + i] : 0;
    if (i < Lq && rangeOk(st, en, Lk)) {
      atomicMin(&bounds[0], st);
      atomicMax(&bounds[1], en);
      atomicMax(&bounds[2], st);
      atomicMin(&bounds[3], en);
    } else {
      atomicMax(&bounds[2], INT_MAX);
    }
  }
  __syncthreads();
}

/** Whether the 64-key tile at kb lies inside every query's range (bounds from blockKeyBounds). */
__device__ inline bool fullTile(const int* bounds, int kb) { return kb >= bounds[2] && kb + TC_ROWS <= bounds[3]; }

/** Two bf16 outputs (d, d + 1) of a row; d is even and D is a multiple of 8, so both or neither are in range. */
__device__ inline void storePair(uint16_t* row, int d, float x0, float x1) { *reinterpret_cast<uint32_t*>(row + d) = packBf16(x0, x1); }

/**
 * One 64-key tile of the forward for this warp's 16 queries: scores, the online-softmax update of
 * (m, l, o), dropout (keep bits recorded when asked). FULL: every query sees every key of the tile.
 */
template <bool FULL>
__device__ __forceinline__ void forwardTile(const uint32_t (&qa)[4][4], const TcTile& Kt, const TcTile& Vt, int lane, int kb, const int (&qi)[2],
                                            const int (&qs)[2], const int (&qe)[2], float scaleLog2, const DropoutRow& dr, uint64_t* keepBits, int b, int h,
                                            const AttnShape& s, float (&o)[8][4], float (&m)[2], float (&l)[2]) {
  const int t = lane % 4;
  float sc[8][4];
  productWithTileRows(qa, Kt, lane, 0, sc);
  float tileMax[2] = {-INFINITY, -INFINITY};
#pragma unroll
  for (int n = 0; n < 8; n++)
#pragma unroll
    for (int e = 0; e < 4; e++) {
      const int r = e >> 1, j = kb + n * 8 + 2 * t + (e & 1);
      sc[n][e] = (FULL || (j >= qs[r] && j < qe[r])) ? sc[n][e] * scaleLog2 : -INFINITY;
      tileMax[r] = fmaxf(tileMax[r], sc[n][e]);
    }
  float base[2], correction[2];
#pragma unroll
  for (int r = 0; r < 2; r++) {
    tileMax[r] = fmaxf(tileMax[r], __shfl_xor_sync(0xffffffffu, tileMax[r], 1));
    tileMax[r] = fmaxf(tileMax[r], __shfl_xor_sync(0xffffffffu, tileMax[r], 2));
    const float newMax = fmaxf(m[r], tileMax[r]);
    base[r] = newMax == -INFINITY ? 0.f : newMax;  // a row with no key yet: every p is exp2(−∞) = 0
    correction[r] = fastExp2(m[r] - base[r]);
    m[r] = newMax;
    l[r] *= correction[r];
  }
  // This thread's keep bits of row r: halves[r][n / 4] bit (n % 4)·8 + (e & 1), shifted by 2t at the end (compile-time shifts).
  uint32_t halves[2][2] = {{0, 0}, {0, 0}};
#pragma unroll
  for (int n = 0; n < 8; n++) {
    o[n][0] *= correction[0];
    o[n][1] *= correction[0];
    o[n][2] *= correction[1];
    o[n][3] *= correction[1];
#pragma unroll
    for (int e = 0; e < 4; e++) {
      const int r = e >> 1, j = kb + n * 8 + 2 * t + (e & 1);
      const float p = fastExp2(sc[n][e] - base[r]);
      l[r] += p;
      const bool kept = (FULL || (j >= qs[r] && j < qe[r])) && dr.kept((uint32_t)(qi[r] * s.Lk + j));
      halves[r][n >> 2] |= (uint32_t)kept << ((n & 3) * 8 + (e & 1));
      sc[n][e] = kept ? p * dr.keep : 0.f;
    }
  }
  if (keepBits) {
#pragma unroll
    for (int r = 0; r < 2; r++) {
      uint32_t lo = halves[r][0] << (2 * t), hi = halves[r][1] << (2 * t);
      lo |= __shfl_xor_sync(0xffffffffu, lo, 1);
      hi |= __shfl_xor_sync(0xffffffffu, hi, 1);
      lo |= __shfl_xor_sync(0xffffffffu, lo, 2);
      hi |= __shfl_xor_sync(0xffffffffu, hi, 2);
      if (t == 0 && qi[r] < s.Lq) keepBits[keepWord(b, h, qi[r], kb / TC_ROWS, s)] = (uint64_t)hi << 32 | lo;
    }
  }
  accumulateTileProduct(sc, Vt, lane, 0, o);
}

__global__ void __launch_bounds__(TC_THREADS, 4) tcaForwardKernel(TcView q, TcView k, TcView v, const int* keyStart, const int* keyEnd, uint16_t* out, float* lseOut,
                                                              uint64_t* keepBits, AttnShape s, Dropout drop) {
  __shared__ __align__(128) TcTile Ks[2];
  __shared__ __align__(128) TcTile Vs[2];
  __shared__ int bounds[4];
  const int b = blockIdx.z, h = blockIdx.y, q0 = blockIdx.x * TC_ROWS;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
  const DropoutRow dr(drop, drop.stream + (uint32_t)(b * s.heads + h));
  const float scaleLog2 = s.scale * LOG2E;

  int qi[2], qs[2], qe[2];
  warpQueryRows(keyStart, keyEnd, b, q0, warp, g, s, qi, qs, qe);
  blockKeyBounds(keyStart, keyEnd, b, q0, s.Lq, s.Lk, bounds);
  const int kMin = bounds[0] & ~(TC_ROWS - 1), kMax = bounds[1];  // tiles aligned to 64 keys (the keep-bit words)

  // Q staged through stage 1 (refilled by the first iteration), the first K/V tile into stage 0.
  copyTileAsync(q, b, q0, s.Lq, h, s.D, Ks[1]);
  if (kMin < kMax) {
    copyTileAsync(k, b, kMin, s.Lk, h, s.D, Ks[0]);
    copyTileAsync(v, b, kMin, s.Lk, h, s.D, Vs[0]);
  }
  cpAsyncCommit();
  cpAsyncWait<0>();
  __syncthreads();
  uint32_t qa[4][4];
  rowFragments(Ks[1], warp, lane, qa);
  __syncthreads();

  float o[8][4];
#pragma unroll
  for (int n = 0; n < 8; n++) o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.f;
  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.f, 0.f};  // m in log2 units; l: this thread's partial row sums

  int stage = 0;
  for (int kb = kMin; kb < kMax; kb += TC_ROWS, stage ^= 1) {
    if (kb + TC_ROWS < kMax) {
      copyTileAsync(k, b, kb + TC_ROWS, s.Lk, h, s.D, Ks[stage ^ 1]);
      copyTileAsync(v, b, kb + TC_ROWS, s.Lk, h, s.D, Vs[stage ^ 1]);
    }
    cpAsyncCommit();
    cpAsyncWait<1>();  // this tile's group has landed; the next one may still be in flight
    __syncthreads();
    if (fullTile(bounds, kb))
      forwardTile<true>(qa, Ks[stage], Vs[stage], lane, kb, qi, qs, qe, scaleLog2, dr, keepBits, b, h, s, o, m, l);
    else
      forwardTile<false>(qa, Ks[stage], Vs[stage], lane, kb, qi, qs, qe, scaleLog2, dr, keepBits, b, h, s, o, m, l);
    __syncthreads();  // every warp is done with this stage before the next iteration refills it
  }

  const int W = s.heads * s.D;
#pragma unroll
  for (int r = 0; r < 2; r++) {
    l[r] += __shfl_xor_sync(0xffffffffu, l[r], 1);
    l[r] += __shfl_xor_sync(0xffffffffu, l[r], 2);
    if (qi[r] >= s.Lq) continue;
    const float inv = l[r] > 0.f ? 1.f / l[r] : 0.f;
    uint16_t* row = out + ((long long)b * s.Lq + qi[r]) * W + h * s.D;
#pragma unroll
    for (int n = 0; n < 8; n++) {
      const int d = n * 8 + 2 * t;
      if (d < s.D) storePair(row, d, o[n][2 * r] * inv, o[n][2 * r + 1] * inv);
    }
    if (lseOut && t == 0) lseOut[((long long)b * s.heads + h) * s.Lq + qi[r]] = l[r] > 0.f ? (m[r] + log2f(l[r])) * LN2 : 0.f;
  }
}

/**
 * Keys [kb + K32, kb + K32 + 32) of a dq tile for this warp's 16 queries: S and dP, then
 * dQ += dS · K. FULL: every query sees every key of the tile. bits: keep bits >> 2t (KEEP_BITS).
 */
template <bool FULL, bool KEEP_BITS, int K32>
__device__ __forceinline__ void dqHalf(const uint32_t (&qa)[4][4], const uint32_t (&ga)[4][4], const TcTile& Kt, const TcTile& Vt, int lane, int kb,
                                       const int (&qi)[2], const int (&qs)[2], const int (&qe)[2], const float (&lseR)[2], const float (&deltaR)[2],
                                       const uint64_t (&bits)[2], float scaleLog2, const DropoutRow& dr, const AttnShape& s, float (&acc)[8][4]) {
  const int t = lane % 4;
  float sc[4][4], dp[4][4];
  productWithTileRows(qa, Kt, lane, K32, sc);
  productWithTileRows(ga, Vt, lane, K32, dp);
#pragma unroll
  for (int n = 0; n < 4; n++)
#pragma unroll
    for (int e = 0; e < 4; e++) {
      const int r = e >> 1, j = kb + K32 + n * 8 + 2 * t + (e & 1);
      float ds = 0.f;
      if (FULL || (j >= qs[r] && j < qe[r])) {
        const float p = fastExp2(sc[n][e] * scaleLog2 - lseR[r]);
        const float c = KEEP_BITS ? dr.factorOfBit(bits[r], K32 + n * 8 + (e & 1)) : dr.factor((uint32_t)(qi[r] * s.Lk + j));
        ds = s.scale * p * (c * dp[n][e] - deltaR[r]);
      }
      sc[n][e] = ds;
    }
  accumulateTileProduct<2>(sc, Kt, lane, K32, acc);  // dQ += dS · K
}

/** dq: a block per 64 queries; K and V tiles streamed through two stages; dS·K accumulated in registers. */
template <bool KEEP_BITS>
__global__ void __launch_bounds__(TC_THREADS, 3) tcaDqKernel(TcView dOut, TcView q, TcView k, TcView v, const float* lse, const float* delta, const int* keyStart,
                                                         const int* keyEnd, const uint64_t* keepBits, TcView dq, AttnShape s, Dropout drop) {
  __shared__ __align__(128) TcTile Ks[2];
  __shared__ __align__(128) TcTile Vs[2];
  __shared__ int bounds[4];
  const int b = blockIdx.z, h = blockIdx.y, q0 = blockIdx.x * TC_ROWS;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
  const DropoutRow dr(drop, drop.stream + (uint32_t)(b * s.heads + h));
  const float scaleLog2 = s.scale * LOG2E;

  int qi[2], qs[2], qe[2];
  float lseR[2], deltaR[2];  // lse in log2 units
  warpQueryRows(keyStart, keyEnd, b, q0, warp, g, s, qi, qs, qe);
  warpQueryStats(lse, delta, b, h, qi, s, LOG2E, lseR, deltaR);
  blockKeyBounds(keyStart, keyEnd, b, q0, s.Lq, s.Lk, bounds);
  const int kMin = bounds[0] & ~(TC_ROWS - 1), kMax = bounds[1];  // the forward's tiles

  // Q and dOut staged through stage 1, the first K/V tile into stage 0.
  copyTileAsync(q, b, q0, s.Lq, h, s.D, Ks[1]);
  copyTileAsync(dOut, b, q0, s.Lq, h, s.D, Vs[1]);
  if (kMin < kMax) {
    copyTileAsync(k, b, kMin, s.Lk, h, s.D, Ks[0]);
    copyTileAsync(v, b, kMin, s.Lk, h, s.D, Vs[0]);
  }
  cpAsyncCommit();
  cpAsyncWait<0>();
  __syncthreads();
  uint32_t qa[4][4], ga[4][4];
  rowFragments(Ks[1], warp, lane, qa);
  rowFragments(Vs[1], warp, lane, ga);
  __syncthreads();  // stage 1 is refilled by the first iteration

  float acc[8][4];
#pragma unroll
  for (int n = 0; n < 8; n++) acc[n][0] = acc[n][1] = acc[n][2] = acc[n][3] = 0.f;

  int stage = 0;
  for (int kb = kMin; kb < kMax; kb += TC_ROWS, stage ^= 1) {
    if (kb + TC_ROWS < kMax) {
      copyTileAsync(k, b, kb + TC_ROWS, s.Lk, h, s.D, Ks[stage ^ 1]);
      copyTileAsync(v, b, kb + TC_ROWS, s.Lk, h, s.D, Vs[stage ^ 1]);
    }
    cpAsyncCommit();
    cpAsyncWait<1>();
    __syncthreads();
    uint64_t bits[2] = {0, 0};  // row r's keep bits of this tile, shifted right by 2t: bit n·8 + (e & 1) is element (n, e)
    if (KEEP_BITS)
#pragma unroll
      for (int r = 0; r < 2; r++)
        if (qi[r] < s.Lq) bits[r] = keepBits[keepWord(b, h, qi[r], kb / TC_ROWS, s)] >> (2 * t);
    // The tile's 64 keys in two halves of 32 (half the score registers: three blocks per SM).
    if (fullTile(bounds, kb)) {
      dqHalf<true, KEEP_BITS, 0>(qa, ga, Ks[stage], Vs[stage], lane, kb, qi, qs, qe, lseR, deltaR, bits, scaleLog2, dr, s, acc);
      dqHalf<true, KEEP_BITS, 32>(qa, ga, Ks[stage], Vs[stage], lane, kb, qi, qs, qe, lseR, deltaR, bits, scaleLog2, dr, s, acc);
    } else {
      dqHalf<false, KEEP_BITS, 0>(qa, ga, Ks[stage], Vs[stage], lane, kb, qi, qs, qe, lseR, deltaR, bits, scaleLog2, dr, s, acc);
      dqHalf<false, KEEP_BITS, 32>(qa, ga, Ks[stage], Vs[stage], lane, kb, qi, qs, qe, lseR, deltaR, bits, scaleLog2, dr, s, acc);
    }
    __syncthreads();
  }

#pragma unroll
  for (int r = 0; r < 2; r++) {
    if (qi[r] >= s.Lq) continue;
    uint16_t* row = const_cast<uint16_t*>(dq.row(b, qi[r])) + h * s.D;
#pragma unroll
    for (int n = 0; n < 8; n++) {
      const int d = n * 8 + 2 * t;
      if (d < s.D) storePair(row, d, acc[n][2 * r], acc[n][2 * r + 1]);
    }
  }
}

/** A dk/dv query tile's per-row values in shared memory (one stage). */
struct DkDvRows {
  const float* lse;  // log2 units
  const float* delta;
  const int* start;
  const int* end;
  const uint32_t (*keep)[2];  // keep-bit word halves for this key block
};

/**
 * Queries [i0 + Q32, i0 + Q32 + 32) of a dk/dv tile for this warp's 16 keys: Sᵀ and dPᵀ, then
 * dV += (P∘c)ᵀ · dO and dK += dSᵀ · Q. FULL: every query of the tile sees every key of the block.
 */
template <bool FULL, bool KEEP_BITS, int Q32>
__device__ __forceinline__ void dkdvHalf(const uint32_t (&ka)[4][4], const uint32_t (&va)[4][4], const TcTile& Qt, const TcTile& Gt, int lane, int i0, int k0,
                                         const int (&kj)[2], const DkDvRows& rows, float scaleLog2, const DropoutRow& dr, const AttnShape& s, float (&dkAcc)[8][4],
                                         float (&dvAcc)[8][4]) {
  const int t = lane % 4;
  float st[4][4], dpt[4][4];
  productWithTileRows(ka, Qt, lane, Q32, st);   // Sᵀ: keys × queries
  productWithTileRows(va, Gt, lane, Q32, dpt);  // dPᵀ = V · dOᵀ
#pragma unroll
  for (int nn = 0; nn < 4; nn++)
#pragma unroll
    for (int e = 0; e < 4; e++) {
      const int r = e >> 1, ii = Q32 + nn * 8 + 2 * t + (e & 1), j = kj[r];
      float pc = 0.f, ds = 0.f;
      if (FULL || (j >= rows.start[ii] && j < rows.end[ii])) {
        const float p = fastExp2(st[nn][e] * scaleLog2 - rows.lse[ii]);
        const int off = j - k0;  // this thread's key within the block: fixed per r
        const float c = KEEP_BITS ? ((rows.keep[ii][off >> 5] >> (off & 31)) & 1 ? dr.keep : 0.f) : dr.factor((uint32_t)((i0 + ii) * s.Lk + j));
        pc = p * c;
        ds = s.scale * p * (c * dpt[nn][e] - rows.delta[ii]);
      }
      st[nn][e] = pc;
      dpt[nn][e] = ds;
    }
  accumulateTileProduct<2>(st, Gt, lane, Q32, dvAcc);   // dV += (P∘c)ᵀ · dO
  accumulateTileProduct<2>(dpt, Qt, lane, Q32, dkAcc);  // dK += dSᵀ · Q
}

/**
 * dk and dv: a block per 64 keys. The query tiles whose key ranges touch the block are listed
 * first, then streamed (Q and dOut tiles, with their rows' lse, delta, ranges and keep-bit words)
 * through two stages. A tile whose queries all see every key of the block skips the range tests.
 */
template <bool KEEP_BITS>
__global__ void __launch_bounds__(TC_THREADS, 3) tcaDkDvKernel(TcView dOut, TcView q, TcView k, TcView v, const float* lse, const float* delta,
                                                           const int* keyStart, const int* keyEnd, const uint64_t* keepBits, TcView dk, TcView dv, AttnShape s,
                                                           Dropout drop) {
  __shared__ __align__(128) TcTile Qs[2];
  __shared__ __align__(128) TcTile Gs[2];
  __shared__ float lseS[2][TC_ROWS], deltaS[2][TC_ROWS];  // lse in log2 units
  __shared__ int startS[2][TC_ROWS], endS[2][TC_ROWS];
  __shared__ uint32_t keepS[2][TC_ROWS][2];  // each query's keep-bit word for this key block, as two halves
  __shared__ short tiles[TCA_MAX_QUERY_TILES];
  __shared__ bool tileFull[TCA_MAX_QUERY_TILES];
  __shared__ int tileCount;
  __shared__ int warpAny[TC_THREADS / 32], warpAll[TC_THREADS / 32];
  const int b = blockIdx.z, h = blockIdx.y, k0 = blockIdx.x * TC_ROWS;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
  const int kLast = min(s.Lk, k0 + TC_ROWS) - 1;
  const DropoutRow dr(drop, drop.stream + (uint32_t)(b * s.heads + h));
  const float scaleLog2 = s.scale * LOG2E;
  int kj[2];
#pragma unroll
  for (int r = 0; r < 2; r++) kj[r] = k0 + warp * 16 + g + 8 * r;

  // The query tiles (in order) with a query whose valid range overlaps keys [k0, kLast], and
  // whether every query of the tile sees all 64 keys: 128 queries (two tiles) per pass.
  if (threadIdx.x == 0) tileCount = 0;
  const int queryTiles = (s.Lq + TC_ROWS - 1) / TC_ROWS;
  for (int i0 = 0; i0 < queryTiles * TC_ROWS; i0 += TC_THREADS) {
    const int i = i0 + threadIdx.x;
    bool touches = false, sees = false;
    if (i < s.Lq) {
      const int st = keyStart[b * s.Lq + i], en = keyEnd[b * s.Lq + i];
      touches = rangeOk(st, en, s.Lk) && st <= kLast && en > k0;
      sees = rangeOk(st, en, s.Lk) && st <= k0 && en >= k0 + TC_ROWS;
    }
    const int any = __any_sync(0xffffffffu, touches), all = __all_sync(0xffffffffu, sees);
    if (lane == 0) {
      warpAny[warp] = any;
      warpAll[warp] = all;
    }
    __syncthreads();
    if (threadIdx.x == 0)
      for (int tt = 0; tt < TC_THREADS / TC_ROWS; tt++) {
        const int tile = i0 / TC_ROWS + tt;
        if (tile < queryTiles && (warpAny[2 * tt] | warpAny[2 * tt + 1])) {
          tileFull[tileCount] = warpAll[2 * tt] && warpAll[2 * tt + 1];
          tiles[tileCount++] = (short)tile;
        }
      }
    __syncthreads();
  }
  __syncthreads();  // (no pass ran when Lq = 0)
  const int count = tileCount;

  // Starts the copies of listed tile n into `stage` (rows' lse/delta/ranges with plain loads).
  auto prefetch = [&](int n, int stage) {
    const int i0 = tiles[n] * TC_ROWS;
    copyTileAsync(q, b, i0, s.Lq, h, s.D, Qs[stage]);
    copyTileAsync(dOut, b, i0, s.Lq, h, s.D, Gs[stage]);
    if (threadIdx.x < TC_ROWS) {
      const int i = i0 + threadIdx.x;
      int st = 0, en = 0;
      float ls = 0.f, dl = 0.f;
      uint64_t kw = 0;
      if (i < s.Lq) {
        st = keyStart[b * s.Lq + i];
        en = keyEnd[b * s.Lq + i];
        if (!rangeOk(st, en, s.Lk)) st = en = 0;
        const long long li = ((long long)b * s.heads + h) * s.Lq + i;
        ls = lse[li] * LOG2E;
        dl = delta[li];
        if (KEEP_BITS && en > k0 && st <= kLast) kw = keepBits[keepWord(b, h, i, k0 / TC_ROWS, s)];  // written by the forward for such queries
      }
      startS[stage][threadIdx.x] = st;
      endS[stage][threadIdx.x] = en;
      lseS[stage][threadIdx.x] = ls;
      deltaS[stage][threadIdx.x] = dl;
      keepS[stage][threadIdx.x][0] = (uint32_t)kw;
      keepS[stage][threadIdx.x][1] = (uint32_t)(kw >> 32);
    }
  };

  // K and V staged through stage 1, the first listed tile into stage 0.
  copyTileAsync(k, b, k0, s.Lk, h, s.D, Qs[1]);
  copyTileAsync(v, b, k0, s.Lk, h, s.D, Gs[1]);
  if (count > 0) prefetch(0, 0);
  cpAsyncCommit();
  cpAsyncWait<0>();
  __syncthreads();
  uint32_t ka[4][4], va[4][4];
  rowFragments(Qs[1], warp, lane, ka);
  rowFragments(Gs[1], warp, lane, va);
  __syncthreads();

  float dkAcc[8][4], dvAcc[8][4];
#pragma unroll
  for (int n = 0; n < 8; n++) {
    dkAcc[n][0] = dkAcc[n][1] = dkAcc[n][2] = dkAcc[n][3] = 0.f;
    dvAcc[n][0] = dvAcc[n][1] = dvAcc[n][2] = dvAcc[n][3] = 0.f;
  }

  for (int n = 0, stage = 0; n < count; n++, stage ^= 1) {
    if (n + 1 < count) prefetch(n + 1, stage ^ 1);
    cpAsyncCommit();
    cpAsyncWait<1>();
    __syncthreads();
    const int i0 = tiles[n] * TC_ROWS;
    const bool full = tileFull[n];
    // The tile's 64 queries in two halves of 32 (half the score registers: three blocks per SM).
    const DkDvRows rows{lseS[stage], deltaS[stage], startS[stage], endS[stage], keepS[stage]};
    if (full) {
      dkdvHalf<true, KEEP_BITS, 0>(ka, va, Qs[stage], Gs[stage], lane, i0, k0, kj, rows, scaleLog2, dr, s, dkAcc, dvAcc);
      dkdvHalf<true, KEEP_BITS, 32>(ka, va, Qs[stage], Gs[stage], lane, i0, k0, kj, rows, scaleLog2, dr, s, dkAcc, dvAcc);
    } else {
      dkdvHalf<false, KEEP_BITS, 0>(ka, va, Qs[stage], Gs[stage], lane, i0, k0, kj, rows, scaleLog2, dr, s, dkAcc, dvAcc);
      dkdvHalf<false, KEEP_BITS, 32>(ka, va, Qs[stage], Gs[stage], lane, i0, k0, kj, rows, scaleLog2, dr, s, dkAcc, dvAcc);
    }
    __syncthreads();
  }

#pragma unroll
  for (int r = 0; r < 2; r++) {
    if (kj[r] >= s.Lk) continue;
    uint16_t* kr = const_cast<uint16_t*>(dk.row(b, kj[r])) + h * s.D;
    uint16_t* vr = const_cast<uint16_t*>(dv.row(b, kj[r])) + h * s.D;
#pragma unroll
    for (int n = 0; n < 8; n++) {
      const int d = n * 8 + 2 * t;
      if (d < s.D) {
        storePair(kr, d, dkAcc[n][2 * r], dkAcc[n][2 * r + 1]);
        storePair(vr, d, dvAcc[n][2 * r], dvAcc[n][2 * r + 1]);
      }
    }
  }
}

/** The pipelined kernels need 16-byte rows: D a multiple of 8 (≤ 64) and every view 16-byte aligned. */
inline bool tcAsyncEligible(int D, std::initializer_list<AttnView> views) {
  if (D % 8 != 0 || D > TC_D) return false;
  for (const AttnView& v : views)
    if ((uintptr_t)v.base.p % 16 != 0 || v.rowStride % 8 != 0 || v.batchStride % 8 != 0) return false;
  return true;
}

/**
 * Forward. `keepBits` (keepBitsBytes(s) bytes, or null) receives the keep bits when the pipelined
 * kernel runs; returns whether it did (the generic kernel writes none).
 */
inline bool launchTcForward(cudaStream_t stream, AttnView q, AttnView k, AttnView v, const int* keyStart, const int* keyEnd, FPtr out, float* lse,
                            uint64_t* keepBits, const AttnShape& s, const Dropout& d) {
  dim3 grid((s.Lq + TC_ROWS - 1) / TC_ROWS, s.heads, s.B);
  uint16_t* o = (uint16_t*)out.p;
  const AttnView outView{out, (long long)s.Lq * s.heads * s.D, (long long)s.heads * s.D};
  const bool async = tcAsyncEligible(s.D, {q, k, v, outView});
  if (async)
    tcaForwardKernel<<<grid, TC_THREADS, 0, stream>>>(tcView(q), tcView(k), tcView(v), keyStart, keyEnd, o, lse, keepBits, s, d);
  else
    tcAttentionForwardKernel<<<grid, TC_THREADS, 0, stream>>>(tcView(q), tcView(k), tcView(v), keyStart, keyEnd, o, lse, s, d);
  CK_LAUNCH("attention (tensor cores)");
  return async && keepBits;
}

/** Backward; `keepBits`: the forward's keep bits for exactly this dropout and shape, or null (hash again). */
inline void launchTcBackward(cudaStream_t stream, FPtr dOut, AttnView q, AttnView k, AttnView v, const float* lse, const float* delta, const int* keyStart,
                             const int* keyEnd, const uint64_t* keepBits, AttnView dq, AttnView dk, AttnView dv, const AttnShape& s, const Dropout& d) {
  // dOut is contiguous [B, Lq, heads·D].
  const AttnView g{dOut, (long long)s.Lq * s.heads * s.D, (long long)s.heads * s.D};
  dim3 gq((s.Lq + TC_ROWS - 1) / TC_ROWS, s.heads, s.B), gk((s.Lk + TC_ROWS - 1) / TC_ROWS, s.heads, s.B);
  if (tcAsyncEligible(s.D, {q, k, v, g, dq})) {
    if (keepBits)
      tcaDqKernel<true><<<gq, TC_THREADS, 0, stream>>>(tcView(g), tcView(q), tcView(k), tcView(v), lse, delta, keyStart, keyEnd, keepBits, tcView(dq), s, d);
    else
      tcaDqKernel<false><<<gq, TC_THREADS, 0, stream>>>(tcView(g), tcView(q), tcView(k), tcView(v), lse, delta, keyStart, keyEnd, nullptr, tcView(dq), s, d);
  } else {
    tcAttentionDqKernel<<<gq, TC_THREADS, 0, stream>>>(tcView(g), tcView(q), tcView(k), tcView(v), lse, delta, keyStart, keyEnd, tcView(dq), s, d);
  }
  CK_LAUNCH("attentionBackward dq (tensor cores)");
  if (tcAsyncEligible(s.D, {q, k, v, g, dk, dv}) && (s.Lq + TC_ROWS - 1) / TC_ROWS <= TCA_MAX_QUERY_TILES) {
    if (keepBits)
      tcaDkDvKernel<true><<<gk, TC_THREADS, 0, stream>>>(tcView(g), tcView(q), tcView(k), tcView(v), lse, delta, keyStart, keyEnd, keepBits, tcView(dk), tcView(dv),
                                                          s, d);
    else
      tcaDkDvKernel<false><<<gk, TC_THREADS, 0, stream>>>(tcView(g), tcView(q), tcView(k), tcView(v), lse, delta, keyStart, keyEnd, nullptr, tcView(dk),
                                                           tcView(dv), s, d);
  } else {
    tcAttentionDkDvKernel<<<gk, TC_THREADS, 0, stream>>>(tcView(g), tcView(q), tcView(k), tcView(v), lse, delta, keyStart, keyEnd, tcView(dk), tcView(dv), s, d);
  }
  CK_LAUNCH("attentionBackward dk/dv (tensor cores)");
}
