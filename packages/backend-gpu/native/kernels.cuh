// The element-wise, row and reduction kernels of the op catalogue (f32 storage; f64 where an
// accumulation or a single rounding per element is cheap). Semantics: @blankglm/tensor ops.ts,
// oracle: @blankglm/backend-ref. Every reduction has a fixed order, so results are bit-identical
// from run to run (no floating-point atomics anywhere).
#pragma once
#include <climits>

#include "common.cuh"
#include <type_traits>

// Kinds of bad input a kernel can report (index into DEVICE_ERROR_KINDS in addon.cu).
enum DeviceErrorKind : int {
  ERR_INPUT_ID = 0,
  ERR_POSITION_ID,
  ERR_BLOCK_POSITION_ID,
  ERR_ROW_INDEX,
  ERR_TARGET_ID,
  ERR_KEY_START,
  ERR_KEY_END,
  ERR_KEY_EMPTY,
};

// ---- dropout, scale, fill, AdamW ----
/**
 * dropoutAdd (out = residual + x·factor) and dropoutBackward (dx (+)= dy·factor), the factor 0 or
 * 1/(1−p) from the counter hash: f64 arithmetic, one rounding per element; the storage types are
 * template parameters (no per-element type test), four elements per thread a block apart (coalesced),
 * all four read before the first is written where all four exist (four loads in flight, not one).
 * R = void: no residual.
 */
template <typename R, typename O>
__device__ __forceinline__ void dropoutAddElement(float xe, float re, O* out, long long e, const Dropout& d) {
  const double dropped = (double)xe * dropoutFactor(d, d.stream, (uint32_t)e);
  double sum = dropped;
  if constexpr (!std::is_void<R>::value) sum = (double)re + dropped;
  storeFloat(out, e, (float)sum);
}

template <typename X, typename R, typename O>
__global__ void dropoutAddTypedKernel(const X* x, const R* residual, O* out, long long n, Dropout d) {
  const long long stride = (long long)gridDim.x * blockDim.x * 4;
  for (long long e0 = (long long)blockIdx.x * blockDim.x * 4 + threadIdx.x; e0 < n; e0 += stride) {
    float xv[4], rv[4] = {};
    if (e0 + 3LL * blockDim.x < n) {
#pragma unroll
      for (int k = 0; k < 4; k++) {
        xv[k] = loadAsFloat(x, e0 + (long long)k * blockDim.x);
        if constexpr (!std::is_void<R>::value) rv[k] = loadAsFloat(residual, e0 + (long long)k * blockDim.x);
      }
#pragma unroll
      for (int k = 0; k < 4; k++) dropoutAddElement<R>(xv[k], rv[k], out, e0 + (long long)k * blockDim.x, d);
      continue;
    }
    for (int k = 0; k < 4; k++) {
      const long long e = e0 + (long long)k * blockDim.x;
      if (e >= n) break;
      float re = 0.f;
      if constexpr (!std::is_void<R>::value) re = loadAsFloat(residual, e);
      dropoutAddElement<R>(loadAsFloat(x, e), re, out, e, d);
    }
  }
}

template <typename DX>
__device__ __forceinline__ void dropoutBackwardElement(float dye, float old, DX* dx, long long e, const Dropout& d, bool accumulate) {
  const double g = (double)dye * dropoutFactor(d, d.stream, (uint32_t)e);
  storeFloat(dx, e, (float)(accumulate ? (double)old + g : g));
}

template <typename DY, typename DX>
__global__ void dropoutBackwardTypedKernel(const DY* dy, DX* dx, long long n, Dropout d, bool accumulate) {
  const long long stride = (long long)gridDim.x * blockDim.x * 4;
  for (long long e0 = (long long)blockIdx.x * blockDim.x * 4 + threadIdx.x; e0 < n; e0 += stride) {
    if (e0 + 3LL * blockDim.x < n) {
      float g[4], old[4] = {};
#pragma unroll
      for (int k = 0; k < 4; k++) {
        g[k] = loadAsFloat(dy, e0 + (long long)k * blockDim.x);
        if (accumulate) old[k] = loadAsFloat(dx, e0 + (long long)k * blockDim.x);
      }
#pragma unroll
      for (int k = 0; k < 4; k++) dropoutBackwardElement(g[k], old[k], dx, e0 + (long long)k * blockDim.x, d, accumulate);
      continue;
    }
    for (int k = 0; k < 4; k++) {
      const long long e = e0 + (long long)k * blockDim.x;
      if (e >= n) break;
      dropoutBackwardElement(loadAsFloat(dy, e), accumulate ? loadAsFloat(dx, e) : 0.f, dx, e, d, accumulate);
    }
  }
}

/** dst[e] = src[e] between float storage types (one rounding when dst is bf16). */
__global__ void castKernel(FPtr src, FPtr dst, long long n) {
  for (long long e = blockIdx.x * (long long)blockDim.x + threadIdx.x; e < n; e += (long long)gridDim.x * blockDim.x) dst[e] = (float)src[e];
}

__global__ void scaleKernel(FPtr x, long long n, double factor) {
  for (long long e = blockIdx.x * (long long)blockDim.x + threadIdx.x; e < n; e += (long long)gridDim.x * blockDim.x) x[e] = (float)((double)x[e] * factor);
}

template <typename T>
__global__ void fillKernel(T* x, long long n, T value) {
  for (long long e = blockIdx.x * (long long)blockDim.x + threadIdx.x; e < n; e += (long long)gridDim.x * blockDim.x) x[e] = value;
}

struct AdamParams {
  double lr, beta1, beta2, eps, weightDecay, gradScale, biasCorrection1, biasCorrection2;
};

/** One AdamW step of one element from its stored values (f64 math); every AdamW kernel uses it, so all give the same bits. */
__device__ __forceinline__ void adamwMath(float wIn, float gIn, float mIn, float vIn, const AdamParams& p, float& wOut, float& mOut, float& vOut) {
  const double g = (double)gIn * p.gradScale;
  const double m = p.beta1 * (double)mIn + (1 - p.beta1) * g;
  const double v = p.beta2 * (double)vIn + (1 - p.beta2) * g * g;
  const double w = (double)wIn;
  const double update = m / p.biasCorrection1 / (sqrt(v / p.biasCorrection2) + p.eps) + p.weightDecay * w;
  wOut = (float)(w - p.lr * update);
  mOut = (float)m;
  vOut = (float)v;
}

__device__ __forceinline__ void adamwElement(FPtr param, FPtr grad, float* mState, float* vState, long long e, const AdamParams& p) {
  float w, m, v;
  adamwMath(param[e], grad[e], mState[e], vState[e], p, w, m, v);
  param[e] = w;
  mState[e] = m;
  vState[e] = v;
}

__global__ void adamwKernel(FPtr param, FPtr grad, float* mState, float* vState, long long n, AdamParams p) {
  for (long long e = blockIdx.x * (long long)blockDim.x + threadIdx.x; e < n; e += (long long)gridDim.x * blockDim.x) adamwElement(param, grad, mState, vState, e, p);
}

// ---- Σx²: per-block partial sums in f64, then one block sums the partials in order ----
constexpr int SUMSQ_BLOCKS = 1024;

__global__ void sumSquaresPartialKernel(FPtr x, long long n, double* partial) {
  __shared__ double shared[32];
  double s = 0;
  for (long long e = blockIdx.x * (long long)blockDim.x + threadIdx.x; e < n; e += (long long)gridDim.x * blockDim.x) {
    const double xe = x[e];
    s += xe * xe;
  }
  s = blockSum(s, shared);
  if (threadIdx.x == 0) partial[blockIdx.x] = s;
}

__global__ void sumSquaresFinalKernel(const double* partial, int count, float* out) {
  __shared__ double shared[32];
  double s = 0;
  for (int i = threadIdx.x; i < count; i += blockDim.x) s += partial[i];
  s = blockSum(s, shared);
  if (threadIdx.x == 0) *out = (float)s;
}

// ---- multi-tensor launches: one launch for a run of consecutive calls of one op (addon.cu) ----
// The tensors of a launch are cut into chunks of MT_CHUNK elements, one block per chunk, numbered
// over the flattened list (tensor t owns blocks firstBlock[t] .. firstBlock[t+1]−1), so a 23.5M-
// element table next to 768-element biases still balances. The table travels as one kernel
// parameter (__grid_constant__: read in place from the parameter bank, never copied to local
// memory; CUDA ≥ 12.1 allows 32764 bytes of parameters on sm_70+), so nothing is uploaded.
constexpr int MT_THREADS = 256;
constexpr long long MT_CHUNK = 16384;           // elements per block (64 per thread)
constexpr int MT_CAP = 384;                     // tensors per launch
constexpr long long MT_MAX_BLOCKS = 1LL << 30;  // blocks per launch (gridDim.x < 2^31)

/** Block b's tensor: the largest t with firstBlock[t] ≤ b (firstBlock[0] = 0, non-decreasing), so tensors without blocks are skipped. */
__host__ __device__ inline int mtTensorOf(const int* firstBlock, int count, int b) {
  int lo = 0, hi = count - 1;
  while (lo < hi) {
    const int mid = (lo + hi + 1) >> 1;
    if (firstBlock[mid] <= b) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

struct MtAdamw {
  int count;
  double lr, beta1, beta2, eps, gradScale, biasCorrection1, biasCorrection2;
  int firstBlock[MT_CAP];
  unsigned char paramBf[MT_CAP], gradBf[MT_CAP];
  long long n[MT_CAP];
  double weightDecay[MT_CAP];
  void* param[MT_CAP];
  void* grad[MT_CAP];
  float* m[MT_CAP];
  float* v[MT_CAP];
};

struct MtSumSquares {
  int count, totalBlocks;
  int firstBlock[MT_CAP];  // tensors with n = 0 keep an entry (no blocks): their out is set to 0
  unsigned char bf[MT_CAP];
  long long n[MT_CAP];
  void* x[MT_CAP];
  float* out[MT_CAP];
};

struct MtFill {
  int count;
  int firstBlock[MT_CAP];
  unsigned char bytes[MT_CAP];  // element size: 4, 2 or 1
  uint32_t bits[MT_CAP];        // the value's bit pattern in the tensor's type
  long long n[MT_CAP];
  void* x[MT_CAP];
};

struct MtCast {
  int count;
  int firstBlock[MT_CAP];
  unsigned char xBf[MT_CAP], outBf[MT_CAP];
  long long n[MT_CAP];
  void* x[MT_CAP];
  void* out[MT_CAP];
};

static_assert(sizeof(MtAdamw) <= 32000 && sizeof(MtSumSquares) + 8 <= 32000 && sizeof(MtFill) <= 32000 && sizeof(MtCast) <= 32000,
              "multi-tensor tables must fit the 32764-byte kernel parameter limit");

/** The element range [start, end) of block blockIdx.x in tensor *t. */
__device__ inline void mtChunk(const int* firstBlock, int count, const long long* n, int* t, long long* start, long long* end) {
  const int b = blockIdx.x;
  const int i = mtTensorOf(firstBlock, count, b);
  *t = i;
  *start = (long long)(b - firstBlock[i]) * MT_CHUNK;
  *end = min(n[i], *start + MT_CHUNK);
}

/**
 * The element-wise multi-tensor kernels take a chunk's elements MT_INFLIGHT per thread at a time
 * (a block apart: coalesced), issuing all their loads before the first store, so a thread has that
 * many loads in flight instead of one. The per-element math is that of the one-tensor kernels.
 */
constexpr int MT_INFLIGHT = 4;

/** adamwKernel over many tensors (shared lr, betas, eps, step, gradScale; weight decay per tensor): the same bits. */
template <typename W, typename G>
__device__ inline void adamwChunk(W* param, const G* grad, float* mState, float* vState, long long start, long long end, const AdamParams& p) {
  long long e = start + threadIdx.x;
  for (; e + (MT_INFLIGHT - 1) * MT_THREADS < end; e += MT_INFLIGHT * MT_THREADS) {
    float w[MT_INFLIGHT], g[MT_INFLIGHT], m[MT_INFLIGHT], v[MT_INFLIGHT];
#pragma unroll
    for (int k = 0; k < MT_INFLIGHT; k++) {
      const long long ek = e + k * MT_THREADS;
      w[k] = loadAsFloat(param, ek), g[k] = loadAsFloat(grad, ek), m[k] = mState[ek], v[k] = vState[ek];
    }
#pragma unroll
    for (int k = 0; k < MT_INFLIGHT; k++) {
      const long long ek = e + k * MT_THREADS;
      adamwMath(w[k], g[k], m[k], v[k], p, w[k], m[k], v[k]);
      storeFloat(param, ek, w[k]);
      mState[ek] = m[k];
      vState[ek] = v[k];
    }
  }
  for (; e < end; e += MT_THREADS) {
    float w, m, v;
    adamwMath(loadAsFloat(param, e), loadAsFloat(grad, e), mState[e], vState[e], p, w, m, v);
    storeFloat(param, e, w);
    mState[e] = m;
    vState[e] = v;
  }
}

__global__ void __launch_bounds__(MT_THREADS) adamwMultiKernel(const __grid_constant__ MtAdamw t) {
  int i;
  long long start, end;
  mtChunk(t.firstBlock, t.count, t.n, &i, &start, &end);
  const AdamParams p{t.lr, t.beta1, t.beta2, t.eps, t.weightDecay[i], t.gradScale, t.biasCorrection1, t.biasCorrection2};
  float* const m = t.m[i];
  float* const v = t.v[i];
  const bool wBf = t.paramBf[i] != 0, gBf = t.gradBf[i] != 0;
  if (!wBf && !gBf) adamwChunk((float*)t.param[i], (const float*)t.grad[i], m, v, start, end, p);
  else if (!wBf) adamwChunk((float*)t.param[i], (const __nv_bfloat16*)t.grad[i], m, v, start, end, p);
  else if (!gBf) adamwChunk((__nv_bfloat16*)t.param[i], (const float*)t.grad[i], m, v, start, end, p);
  else adamwChunk((__nv_bfloat16*)t.param[i], (const __nv_bfloat16*)t.grad[i], m, v, start, end, p);
}

/** Σx² per chunk (f64, fixed order) into partial[block]. */
__global__ void __launch_bounds__(MT_THREADS) sumSquaresMultiPartialKernel(const __grid_constant__ MtSumSquares t, double* partial) {
  __shared__ double shared[32];
  int i;
  long long start, end;
  mtChunk(t.firstBlock, t.count, t.n, &i, &start, &end);
  const FPtr x(t.x[i], t.bf[i] != 0);
  double s = 0;
  for (long long e = start + threadIdx.x; e < end; e += MT_THREADS) {
    const double xe = x[e];
    s += xe * xe;
  }
  s = blockSum(s, shared);
  if (threadIdx.x == 0) partial[blockIdx.x] = s;
}

/** Block i sums tensor i's partials in order into *out[i] (0 for an empty tensor). */
__global__ void __launch_bounds__(MT_THREADS) sumSquaresMultiFinalKernel(const __grid_constant__ MtSumSquares t, const double* partial) {
  __shared__ double shared[32];
  const int i = blockIdx.x;
  const int first = t.firstBlock[i], last = i + 1 < t.count ? t.firstBlock[i + 1] : t.totalBlocks;
  double s = 0;
  for (int k = first + (int)threadIdx.x; k < last; k += MT_THREADS) s += partial[k];
  s = blockSum(s, shared);
  if (threadIdx.x == 0) *t.out[i] = (float)s;
}

/** fillKernel over many tensors (each its own type and value). */
__global__ void __launch_bounds__(MT_THREADS) fillMultiKernel(const __grid_constant__ MtFill t) {
  int i;
  long long start, end;
  mtChunk(t.firstBlock, t.count, t.n, &i, &start, &end);
  const uint32_t bits = t.bits[i];
  switch (t.bytes[i]) {
    case 4:
      for (long long e = start + threadIdx.x; e < end; e += MT_THREADS) ((uint32_t*)t.x[i])[e] = bits;
      break;
    case 2:
      for (long long e = start + threadIdx.x; e < end; e += MT_THREADS) ((uint16_t*)t.x[i])[e] = (uint16_t)bits;
      break;
    default:
      for (long long e = start + threadIdx.x; e < end; e += MT_THREADS) ((uint8_t*)t.x[i])[e] = (uint8_t)bits;
  }
}

/**
 * dropoutAddTypedKernel with p = 0 and no residual (a float-type conversion) over many tensors: the
 * same bits (x · 1 in f64 is x, so out = x rounded once to out's type).
 */
template <typename X, typename O>
__device__ inline void castChunk(const X* x, O* out, long long start, long long end) {
  constexpr int U = 2 * MT_INFLIGHT;  // a cast holds one value per element
  long long e = start + threadIdx.x;
  for (; e + (U - 1) * MT_THREADS < end; e += U * MT_THREADS) {
    float v[U];
#pragma unroll
    for (int k = 0; k < U; k++) v[k] = loadAsFloat(x, e + k * MT_THREADS);
#pragma unroll
    for (int k = 0; k < U; k++) storeFloat(out, e + k * MT_THREADS, v[k]);
  }
  for (; e < end; e += MT_THREADS) storeFloat(out, e, loadAsFloat(x, e));
}

__global__ void __launch_bounds__(MT_THREADS) castMultiKernel(const __grid_constant__ MtCast t) {
  int i;
  long long start, end;
  mtChunk(t.firstBlock, t.count, t.n, &i, &start, &end);
  const bool xBf = t.xBf[i] != 0, oBf = t.outBf[i] != 0;
  if (!xBf && oBf) castChunk((const float*)t.x[i], (__nv_bfloat16*)t.out[i], start, end);
  else if (!xBf) castChunk((const float*)t.x[i], (float*)t.out[i], start, end);
  else if (oBf) castChunk((const __nv_bfloat16*)t.x[i], (__nv_bfloat16*)t.out[i], start, end);
  else castChunk((const __nv_bfloat16*)t.x[i], (float*)t.out[i], start, end);
}

// ---- embeddings and rows ----
/** out[t, :] = wordEmb[inputIds[t]] + posEmb[positionIds[t]] (+ blockPosEmb[blockPositionIds[t]]). */
__global__ void embeddingKernel(FPtr wordEmb, FPtr posEmb, FPtr blockPosEmb, const int* inputIds, const int* positionIds,
                                const int* blockIds, FPtr out, int T, int H, int V, int P, DeviceErrorRecord* err) {
  const int t = blockIdx.x;
  const int w = inputIds[t], p = positionIds[t], bp = blockIds ? blockIds[t] : 0;
  const bool okW = w >= 0 && w < V, okP = p >= 0 && p < P, okB = !blockIds || (bp >= 0 && bp < P);
  const bool ok = okW && okP && okB;
  if (threadIdx.x == 0 && !ok) {
    if (!okW) reportDeviceError(err, ERR_INPUT_ID, t, w, V);
    else if (!okP) reportDeviceError(err, ERR_POSITION_ID, t, p, P);
    else reportDeviceError(err, ERR_BLOCK_POSITION_ID, t, bp, P);
  }
  for (int h = threadIdx.x; h < H; h += blockDim.x) {
    if (!ok) {
      out[(long long)t * H + h] = 0.f;
      continue;
    }
    double s = (double)wordEmb[(long long)w * H + h] + (double)posEmb[(long long)p * H + h];
    if (blockPosEmb) s += (double)blockPosEmb[(long long)bp * H + h];
    out[(long long)t * H + h] = (float)s;
  }
}

/** out[t, :] = x[index[t], :]. */
__global__ void gatherRowsKernel(FPtr x, const int* index, FPtr out, int T, int R, int W, DeviceErrorRecord* err) {
  const int t = blockIdx.x;
  const int r = index[t];
  const bool ok = r >= 0 && r < R;
  if (threadIdx.x == 0 && !ok) reportDeviceError(err, ERR_ROW_INDEX, t, r, R);
  for (int c = threadIdx.x; c < W; c += blockDim.x) out[(long long)t * W + c] = ok ? (float)x[(long long)r * W + c] : 0.f;
}

// ---- a deterministic sort of (row id, t) pairs: bitonic network over 64-bit keys ----
// key = (uint32 id) << 32 | t, so equal ids keep increasing t (a stable order); padding is ~0.
// Several id arrays can be sorted in one pass: segment s holds keys [s·padded, (s+1)·padded)
// (padded a power of two ≥ SORT_CHUNK), and every segment ends up ascending.
constexpr int SORT_CHUNK = 2048;  // elements sorted in shared memory by one block of 1024 threads
constexpr int SORT_MAX_SEGMENTS = 3;

struct SortIds {
  const int* ids[SORT_MAX_SEGMENTS];
};

/** The direction of the bitonic stage of size k at (global) index i: ascending at k = padded. */
__host__ __device__ inline bool bitonicAscending(long long i, long long segMask, long long k) { return ((i & segMask) & k) == 0; }

__global__ void makeSortKeysKernel(SortIds src, int count, unsigned long long* keys, int padded, int segments) {
  const long long n = (long long)padded * segments;
  for (long long e = blockIdx.x * (long long)blockDim.x + threadIdx.x; e < n; e += (long long)gridDim.x * blockDim.x) {
    const int s = (int)(e / padded), i = (int)(e % padded);
    const int* ids = s == 0 ? src.ids[0] : s == 1 ? src.ids[1] : src.ids[2];
    keys[e] = i < count ? ((unsigned long long)(uint32_t)ids[i] << 32) | (uint32_t)i : ~0ULL;
  }
}

/** All stages with k in [kFirst, kLast] and j ≤ 1024, on chunks of 2048 (global index decides direction). */
__global__ void __launch_bounds__(1024) bitonicSharedKernel(unsigned long long* keys, int kFirst, int kLast, int segMask) {
  __shared__ unsigned long long s[SORT_CHUNK];
  const int base = blockIdx.x * SORT_CHUNK;
  s[threadIdx.x] = keys[base + threadIdx.x];
  s[threadIdx.x + 1024] = keys[base + threadIdx.x + 1024];
  for (int k = kFirst; k <= kLast; k <<= 1) {
    for (int j = min(k >> 1, 1024); j > 0; j >>= 1) {
      __syncthreads();
      const int t = threadIdx.x;
      const int i = (t / j) * 2 * j + (t % j), p = i + j;
      const bool ascending = bitonicAscending(base + i, segMask, k);
      const unsigned long long a = s[i], b = s[p];
      if ((a > b) == ascending) {
        s[i] = b;
        s[p] = a;
      }
    }
  }
  __syncthreads();
  keys[base + threadIdx.x] = s[threadIdx.x];
  keys[base + threadIdx.x + 1024] = s[threadIdx.x + 1024];
}

__global__ void bitonicGlobalKernel(unsigned long long* keys, int n, int j, int k, int segMask) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  const int p = i ^ j;
  if (p <= i) return;
  const bool ascending = bitonicAscending(i, segMask, k);
  const unsigned long long a = keys[i], b = keys[p];
  if ((a > b) == ascending) {
    keys[i] = b;
    keys[p] = a;
  }
}

// ---- segmented row sums over the sorted keys: dst[row, :] += Σ src[t, :] over index[t] = row ----
// Two levels, fixed orders, so results are bit-identical from run to run:
//  1. segmentedSumChunkKernel: block (q, columns, segment) owns sorted positions [q·C, q·C + C)
//     (C = SEG_CHUNK) and 128 columns. Warp w walks its unit of SEG_UNIT positions in order,
//     summing each piece (run of equal ids) in f64. A group (all positions of one id) inside the
//     unit goes straight to dst; a piece of a longer group goes to the unit's slot (0: the piece
//     holding the unit's first position, 1: the last piece). Then the warp whose unit first holds
//     such a group in this chunk adds the slots of the consecutive units in unit order; a group
//     inside the chunk goes to dst, a longer one to the chunk's partial (slot 0/1 as for units).
//  2. segmentedSumSpanKernel: block (q, columns, segment) handles the group that crosses the end
//     of chunk q and starts in it: it adds the partials of chunks q, q+1, … in chunk order to dst.
// Bad ids: the piece holding a group's first sorted position reports it (the first t of the
// group), and nothing of that group is added. Sums are f64 (the reference's accumulation).
constexpr int SEG_UNIT = 32;                       // sorted positions walked by one warp
constexpr int SEG_WARPS = 8;                       // warps per block
constexpr int SEG_CHUNK = SEG_UNIT * SEG_WARPS;    // sorted positions per block
constexpr int SEG_COLS = 4;                        // columns per lane: lane + 32·c of the block's 128
constexpr int SEG_BLOCK_COLS = SEG_COLS * 32;
constexpr int SEG_SPAN_COLS = 256;                 // columns per block of the span kernel
constexpr long long SEG_NO_ID = LLONG_MIN;         // window entry outside [0, count): equals no id

struct ScatterTargets {
  FPtr dst[SORT_MAX_SEGMENTS];
  int rows[SORT_MAX_SEGMENTS];
  int errKind[SORT_MAX_SEGMENTS];
};

/** a[s] for s in 0..2 without a dynamically indexed (local-memory) copy of a kernel parameter. */
template <typename T>
__host__ __device__ inline T pickSegment(const T (&a)[SORT_MAX_SEGMENTS], int s) {
  return s == 0 ? a[0] : s == 1 ? a[1] : a[2];
}

__host__ __device__ inline int sortedKeyId(unsigned long long k) { return (int)(uint32_t)(k >> 32); }
__host__ __device__ inline int sortedKeyT(unsigned long long k) { return (int)(uint32_t)k; }

// The window `win` holds the ids of sorted positions q·C − 1 … q·C + C: win[p + 1] is local
// position p of the chunk (SEG_NO_ID outside [0, count)). A unit starts at local u0 and has len
// (1…SEG_UNIT) positions.

/** Does the piece of the unit's walk end at its local position i (u0 + i)? */
__host__ __device__ inline bool segPieceEnds(const long long* win, int u0, int len, int i) {
  return i == len - 1 || win[u0 + i + 2] != win[u0 + i + 1];
}

/** For the piece [u0 + first, u0 + last]: does its group start before the unit / go on past it? */
__host__ __device__ inline void segPieceOpen(const long long* win, int u0, int len, int first, int last, bool& before, bool& after) {
  const long long g = win[u0 + first + 1];
  before = first == 0 && win[u0] == g;
  after = last == len - 1 && win[u0 + len + 1] == g;
}

/**
 * The groups that warp w combines over the units of the chunk: those with a piece in unit w that
 * is not a whole group and that do not come from an earlier unit of this chunk. At most two: the
 * piece holding the unit's first position (slot 0) and the unit's last piece (slot 1).
 */
struct SegHandled {
  int n;
  long long id[2];
  int slot[2];
};

__host__ __device__ inline SegHandled segHandled(const long long* win, int w, int u0, int len) {
  SegHandled h;
  h.n = 0;
  if (len <= 0) return h;
  const long long g1 = win[u0 + 1];
  const bool before1 = win[u0] == g1;
  const bool whole1 = win[u0 + len] == g1;  // the unit's last position has the first one's id
  const bool after1 = whole1 && win[u0 + len + 1] == g1;
  if ((before1 || after1) && (w == 0 || !before1)) {
    h.id[h.n] = g1;
    h.slot[h.n++] = 0;
  }
  if (!whole1) {
    const long long g2 = win[u0 + len];
    if (win[u0 + len + 1] == g2) {
      h.id[h.n] = g2;
      h.slot[h.n++] = 1;
    }
  }
  return h;
}

/** One past the last unit of the chunk (from w + 1 on) whose first position has id g. */
__host__ __device__ inline int segUnitsEnd(const long long* win, int w, int chunkLen, long long g) {
  int v = w + 1;
  while (v < SEG_WARPS && v * SEG_UNIT < chunkLen && win[v * SEG_UNIT + 1] == g) v++;
  return v;
}

/** Where group g of the chunk goes: dst when it neither starts before nor goes past the chunk, else the chunk's slot. */
__host__ __device__ inline bool segChunkInside(const long long* win, long long g, int& chunkSlot) {
  chunkSlot = win[1] == g ? 0 : 1;
  return win[0] != g && win[SEG_CHUNK + 1] != g;
}

__device__ inline void segAddToDst(FPtr dst, long long row, int W, int colBase, int lane, const double (&s)[SEG_COLS]) {
#pragma unroll
  for (int c = 0; c < SEG_COLS; c++) {
    const int col = colBase + c * 32 + lane;
    if (col < W) {
      const long long o = row * W + col;
      dst[o] = (float)((double)dst[o] + s[c]);
    }
  }
}

__global__ void __launch_bounds__(SEG_WARPS * 32) segmentedSumChunkKernel(FPtr src, const unsigned long long* keysAll, int padded, int count, int W,
                                                                           ScatterTargets tg, double* partialAll, DeviceErrorRecord* err) {
  __shared__ long long win[SEG_CHUNK + 2];
  __shared__ int tOf[SEG_CHUNK];
  __shared__ double slots[SEG_WARPS][2][SEG_BLOCK_COLS];
  const int seg = blockIdx.z, q = blockIdx.x;
  const unsigned long long* keys = keysAll + (long long)seg * padded;
  const int chunks = (count + SEG_CHUNK - 1) / SEG_CHUNK;
  double* partial = partialAll + (long long)seg * chunks * 2 * W;
  const FPtr dst = pickSegment(tg.dst, seg);
  const int rows = pickSegment(tg.rows, seg);
  const int c0 = q * SEG_CHUNK, chunkLen = min(SEG_CHUNK, count - c0);
  for (int i = threadIdx.x; i < SEG_CHUNK + 2; i += blockDim.x) {
    const long long p = (long long)c0 - 1 + i;
    const bool in = p >= 0 && p < count;
    const unsigned long long k = in ? keys[p] : 0ULL;
    win[i] = in ? (long long)sortedKeyId(k) : SEG_NO_ID;
    if (i >= 1 && i <= SEG_CHUNK) tOf[i - 1] = in ? sortedKeyT(k) : 0;
  }
  __syncthreads();

  const int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
  const int colBase = blockIdx.y * SEG_BLOCK_COLS;
  const int u0 = w * SEG_UNIT, len = max(0, min(SEG_UNIT, chunkLen - u0));
  double acc[SEG_COLS];
#pragma unroll
  for (int c = 0; c < SEG_COLS; c++) acc[c] = 0;
  int first = 0;
  constexpr int BATCH = 8;  // rows loaded ahead, so several loads are in flight per lane
  for (int i0 = 0; i0 < len; i0 += BATCH) {
    float v[BATCH][SEG_COLS];
#pragma unroll
    for (int k = 0; k < BATCH; k++) {
      const int i = i0 + k;
      const long long rowOff = (long long)tOf[u0 + min(i, len - 1)] * W;
#pragma unroll
      for (int c = 0; c < SEG_COLS; c++) {
        const int col = colBase + c * 32 + lane;
        v[k][c] = i < len && col < W ? (float)src[rowOff + col] : 0.f;
      }
    }
#pragma unroll
    for (int k = 0; k < BATCH; k++) {
      const int i = i0 + k;
      if (i >= len) break;
#pragma unroll
      for (int c = 0; c < SEG_COLS; c++) acc[c] += v[k][c];
      if (!segPieceEnds(win, u0, len, i)) continue;
      bool before, after;
      segPieceOpen(win, u0, len, first, i, before, after);
      const long long row = win[u0 + first + 1];
      const bool ok = row >= 0 && row < rows;
      if (!before && !ok && lane == 0 && blockIdx.y == 0) reportDeviceError(err, pickSegment(tg.errKind, seg), tOf[u0 + first], row, rows);
      if (!before && !after) {
        if (ok) segAddToDst(dst, row, W, colBase, lane, acc);
      } else {
#pragma unroll
        for (int c = 0; c < SEG_COLS; c++) slots[w][first == 0 ? 0 : 1][c * 32 + lane] = acc[c];
      }
#pragma unroll
      for (int c = 0; c < SEG_COLS; c++) acc[c] = 0;
      first = i + 1;
    }
  }
  __syncthreads();

  const SegHandled h = segHandled(win, w, u0, len);
#pragma unroll
  for (int m = 0; m < 2; m++) {
    if (m >= h.n) break;
    const long long g = h.id[m];
    double s[SEG_COLS];
#pragma unroll
    for (int c = 0; c < SEG_COLS; c++) s[c] = slots[w][h.slot[m]][c * 32 + lane];
    const int vEnd = segUnitsEnd(win, w, chunkLen, g);
    for (int v = w + 1; v < vEnd; v++) {
#pragma unroll
      for (int c = 0; c < SEG_COLS; c++) s[c] += slots[v][0][c * 32 + lane];
    }
    int chunkSlot;
    if (segChunkInside(win, g, chunkSlot)) {
      if (g >= 0 && g < rows) segAddToDst(dst, g, W, colBase, lane, s);
    } else {
#pragma unroll
      for (int c = 0; c < SEG_COLS; c++) {
        const int col = colBase + c * 32 + lane;
        if (col < W) partial[((long long)q * 2 + chunkSlot) * W + col] = s[c];
      }
    }
  }
}

/** Is chunk q the first chunk of a group that goes on past it? Then g is its id. */
__host__ __device__ inline bool segSpanStart(const unsigned long long* keys, int count, int q, int& g) {
  const long long e = (long long)(q + 1) * SEG_CHUNK;  // the next chunk's first position
  if (e >= count) return false;
  g = sortedKeyId(keys[e - 1]);
  if (sortedKeyId(keys[e]) != g) return false;
  return q == 0 || sortedKeyId(keys[(long long)q * SEG_CHUNK - 1]) != g;
}

/** Does chunk r (> the group's first) still hold group g, i.e. does it start with g? */
__host__ __device__ inline bool segChunkHolds(const unsigned long long* keys, int count, long long r, int g) {
  return r * SEG_CHUNK < count && sortedKeyId(keys[r * SEG_CHUNK]) == g;
}

__global__ void __launch_bounds__(256) segmentedSumSpanKernel(const unsigned long long* keysAll, int padded, int count, int W, ScatterTargets tg,
                                                              const double* partialAll) {
  __shared__ int firstOut;
  const int seg = blockIdx.z, q = blockIdx.x;
  const unsigned long long* keys = keysAll + (long long)seg * padded;
  const int chunks = (count + SEG_CHUNK - 1) / SEG_CHUNK;
  const double* partial = partialAll + (long long)seg * chunks * 2 * W;
  int g;
  if (!segSpanStart(keys, count, q, g)) return;  // uniform over the block
  if (g < 0 || g >= pickSegment(tg.rows, seg)) return;  // reported by the chunk kernel
  // The group's chunks are q … last: the chunks after q that start with g (contiguous, sorted).
  if (threadIdx.x == 0) firstOut = INT_MAX;
  __syncthreads();
  for (long long r0 = q + 1;; r0 += blockDim.x) {
    const long long r = r0 + threadIdx.x;
    if (!segChunkHolds(keys, count, r, g)) atomicMin(&firstOut, (int)r);
    __syncthreads();
    const bool found = firstOut != INT_MAX;
    __syncthreads();
    if (found) break;
  }
  const int last = firstOut - 1;
  const int col = blockIdx.y * SEG_SPAN_COLS + threadIdx.x;
  if (col >= W) return;
  const int firstSlot = sortedKeyId(keys[(long long)q * SEG_CHUNK]) == g ? 0 : 1;
  double s = partial[((long long)q * 2 + firstSlot) * W + col];
#pragma unroll 8
  for (int r = q + 1; r <= last; r++) s += partial[(long long)r * 2 * W + col];
  const FPtr dst = pickSegment(tg.dst, seg);
  const long long o = (long long)g * W + col;
  dst[o] = (float)((double)dst[o] + s);
}

// ---- layer norm ----
/** One block per row: two-pass mean and biased variance in f64; saves mean and rstd. */
__global__ void layerNormKernel(FPtr x, FPtr gamma, FPtr beta, FPtr y, float* meanOut, float* rstdOut, int H, double eps) {
  __shared__ double shared[32];
  const long long row = (long long)blockIdx.x * H;
  double s = 0;
  for (int h = threadIdx.x; h < H; h += blockDim.x) s += x[row + h];
  const double mean = blockSum(s, shared) / H;
  double sq = 0;
  for (int h = threadIdx.x; h < H; h += blockDim.x) {
    const double d = x[row + h] - mean;
    sq += d * d;
  }
  const double var = blockSum(sq, shared) / H;
  const double rstd = 1.0 / sqrt(var + eps);
  for (int h = threadIdx.x; h < H; h += blockDim.x) y[row + h] = (float)((x[row + h] - mean) * rstd * gamma[h] + beta[h]);
  if (threadIdx.x == 0) {
    meanOut[blockIdx.x] = (float)mean;
    rstdOut[blockIdx.x] = (float)rstd;
  }
}

/** dx = rstd · (g − mean(g) − x̂ · mean(g ⊙ x̂)), g = dy ⊙ gamma, per row (one block per row). */
__global__ void layerNormBackwardDxKernel(FPtr dy, FPtr x, FPtr gamma, const float* meanIn, const float* rstdIn, FPtr dx, int H,
                                          bool accumulate) {
  __shared__ double shared[32];
  const long long row = (long long)blockIdx.x * H;
  const double mean = meanIn[blockIdx.x], rstd = rstdIn[blockIdx.x];
  double gs = 0, gxs = 0;
  for (int h = threadIdx.x; h < H; h += blockDim.x) {
    const double xh = (x[row + h] - mean) * rstd;
    const double g = (double)dy[row + h] * gamma[h];
    gs += g;
    gxs += g * xh;
  }
  const double gMean = blockSum(gs, shared) / H;
  const double gxMean = blockSum(gxs, shared) / H;
  for (int h = threadIdx.x; h < H; h += blockDim.x) {
    const double xh = (x[row + h] - mean) * rstd;
    const double grad = rstd * ((double)dy[row + h] * gamma[h] - gMean - xh * gxMean);
    dx[row + h] = (float)(accumulate ? (double)dx[row + h] + grad : grad);
  }
}

/**
 * VEC consecutive elements of storage type T as floats, in one 4-, 8- or 16-byte access (p aligned
 * to VEC elements): the vectorised rows of the layer-norm and dense-column kernels. bf16 → f32 is
 * exact; f32 → bf16 rounds to nearest-even, as storeFloat.
 */
template <typename T, int VEC>
struct VecIO;

/** Two bf16 values (round to nearest-even) in one word, the first in the low half (little-endian). */
__device__ inline uint32_t packBf16x2(float lo, float hi) {
  return (uint32_t)__bfloat16_as_ushort(__float2bfloat16_rn(lo)) | ((uint32_t)__bfloat16_as_ushort(__float2bfloat16_rn(hi)) << 16);
}
__device__ inline float bf16Low(uint32_t w) { return __uint_as_float(w << 16); }
__device__ inline float bf16High(uint32_t w) { return __uint_as_float(w & 0xffff0000u); }

template <>
struct VecIO<float, 4> {
  __device__ static void load(const float* p, float* v) {
    const float4 q = *(const float4*)p;
    v[0] = q.x, v[1] = q.y, v[2] = q.z, v[3] = q.w;
  }
  __device__ static void store(float* p, const float* v) { *(float4*)p = make_float4(v[0], v[1], v[2], v[3]); }
};

template <>
struct VecIO<__nv_bfloat16, 4> {
  __device__ static void load(const __nv_bfloat16* p, float* v) {
    const uint2 q = *(const uint2*)p;
    v[0] = bf16Low(q.x), v[1] = bf16High(q.x), v[2] = bf16Low(q.y), v[3] = bf16High(q.y);
  }
  __device__ static void store(__nv_bfloat16* p, const float* v) { *(uint2*)p = make_uint2(packBf16x2(v[0], v[1]), packBf16x2(v[2], v[3])); }
};

template <>
struct VecIO<__nv_bfloat16, 8> {
  __device__ static void load(const __nv_bfloat16* p, float* v) {
    const uint4 q = *(const uint4*)p;
    const uint32_t w[4] = {q.x, q.y, q.z, q.w};
#pragma unroll
    for (int i = 0; i < 4; i++) v[2 * i] = bf16Low(w[i]), v[2 * i + 1] = bf16High(w[i]);
  }
  __device__ static void store(__nv_bfloat16* p, const float* v) {
    uint32_t w[4];
#pragma unroll
    for (int i = 0; i < 4; i++) w[i] = packBf16x2(v[2 * i], v[2 * i + 1]);
    *(uint4*)p = make_uint4(w[0], w[1], w[2], w[3]);
  }
};

template <>
struct VecIO<float, 1> {
  __device__ static void load(const float* p, float* v) { v[0] = *p; }
  __device__ static void store(float* p, const float* v) { *p = v[0]; }
};

template <>
struct VecIO<__nv_bfloat16, 1> {
  __device__ static void load(const __nv_bfloat16* p, float* v) { v[0] = __bfloat162float(*p); }
  __device__ static void store(__nv_bfloat16* p, const float* v) { *p = __float2bfloat16_rn(v[0]); }
};

// ---- layer norm, a warp per row (H ≤ 32·CPL ≤ 1024) ----
// Lane `lane` owns CPL columns of the row, kept in registers: with VEC (H = 32·CPL, CPL % 4 == 0,
// rows 4-element aligned) element j is column (j/4)·128 + 4·lane + j%4, loaded four at a time;
// otherwise element j is column 32·j + lane (columns ≥ H are skipped). Same f64 math as the
// block-per-row kernels above; row sums are warp sums in a fixed order.
__host__ __device__ inline int lnColumn(bool vec, int j, int lane) { return vec ? (j >> 2) * 128 + lane * 4 + (j & 3) : j * 32 + lane; }

template <int CPL, bool VEC>
__device__ inline void lnLoadRow(FPtr p, long long base, int H, int lane, float (&v)[CPL]) {
  if constexpr (VEC) {
    static_assert(CPL % 4 == 0, "VEC rows are read four columns at a time");
#pragma unroll
    for (int k = 0; k < CPL / 4; k++) {
      const long long o = base + k * 128 + lane * 4;
      if (!p.bf) VecIO<float, 4>::load((const float*)p.p + o, v + 4 * k);
      else VecIO<__nv_bfloat16, 4>::load((const __nv_bfloat16*)p.p + o, v + 4 * k);
    }
  } else {
#pragma unroll
    for (int j = 0; j < CPL; j++) {
      const int c = j * 32 + lane;
      v[j] = c < H ? (float)p[base + c] : 0.f;
    }
  }
}

template <int CPL, bool VEC>
__device__ inline void lnStoreRow(FPtr p, long long base, int H, int lane, const float (&v)[CPL]) {
  if constexpr (VEC) {
#pragma unroll
    for (int k = 0; k < CPL / 4; k++) {
      const long long o = base + k * 128 + lane * 4;
      if (!p.bf) VecIO<float, 4>::store((float*)p.p + o, v + 4 * k);
      else VecIO<__nv_bfloat16, 4>::store((__nv_bfloat16*)p.p + o, v + 4 * k);
    }
  } else {
#pragma unroll
    for (int j = 0; j < CPL; j++) {
      const int c = j * 32 + lane;
      if (c < H) p[base + c] = v[j];
    }
  }
}

constexpr int LN_WARPS = 8;  // warps (rows in flight) per block

/** layerNorm: one warp per row; two-pass mean and biased variance in f64; saves mean and rstd. */
template <int CPL, bool VEC>
__global__ void __launch_bounds__(LN_WARPS * 32) layerNormWarpKernel(FPtr x, FPtr gamma, FPtr beta, FPtr y, float* meanOut, float* rstdOut, int R, int H,
                                                                     double eps) {
  const int lane = threadIdx.x & 31;
  const int row = blockIdx.x * LN_WARPS + (threadIdx.x >> 5);
  if (row >= R) return;  // the whole warp
  const long long base = (long long)row * H;
  float v[CPL];
  lnLoadRow<CPL, VEC>(x, base, H, lane, v);
  double s = 0;
#pragma unroll
  for (int j = 0; j < CPL; j++)
    if (VEC || j * 32 + lane < H) s += v[j];
  const double mean = warpSum(s) / H;
  double sq = 0;
#pragma unroll
  for (int j = 0; j < CPL; j++)
    if (VEC || j * 32 + lane < H) {
      const double d = v[j] - mean;
      sq += d * d;
    }
  const double var = warpSum(sq) / H;
  const double rstd = 1.0 / sqrt(var + eps);
  float g[CPL], b[CPL];
  lnLoadRow<CPL, VEC>(gamma, 0, H, lane, g);
  lnLoadRow<CPL, VEC>(beta, 0, H, lane, b);
#pragma unroll
  for (int j = 0; j < CPL; j++) v[j] = (float)((v[j] - mean) * rstd * g[j] + b[j]);
  lnStoreRow<CPL, VEC>(y, base, H, lane, v);
  if (lane == 0) {
    meanOut[row] = (float)mean;
    rstdOut[row] = (float)rstd;
  }
}

/**
 * layerNorm for f32 x, gamma and beta (the residual stream; y f32 or bf16), H = 32·CPL with CPL % 4
 * == 0 and rows 4-element aligned: a warp per row with layerNormWarpKernel's VEC columns, but in
 * f32 arithmetic (per-lane sums in f32, the warp sums of those in f64; x̂ and y = x̂·γ + β in f32:
 * a few f32 roundings per element: NMSE 1.2e-14 against the reference on an H200 in the conformance
 * cases with H = 768 and 1024, the threshold being 1e-6). No f64 conversion per
 * element, and γ, β are read four columns at a time at the end instead of held for the whole row,
 * so it fits three blocks per SM where the f64 kernel (174 registers at H = 1024) fits one.
 */
template <int CPL, typename Y>
__global__ void __launch_bounds__(LN_WARPS * 32, 3) layerNormF32Kernel(const float* x, const float* gamma, const float* beta, Y* y, float* meanOut,
                                                                      float* rstdOut, int R, int H, double eps) {
  static_assert(CPL % 4 == 0, "rows are read four columns at a time");
  const int lane = threadIdx.x & 31;
  const int row = blockIdx.x * LN_WARPS + (threadIdx.x >> 5);
  if (row >= R) return;  // the whole warp
  const float* xRow = x + (long long)row * H;
  float v[CPL];
#pragma unroll
  for (int k = 0; k < CPL / 4; k++) VecIO<float, 4>::load(xRow + k * 128 + lane * 4, v + 4 * k);
  float s = 0.f;
#pragma unroll
  for (int j = 0; j < CPL; j++) s += v[j];
  const float mean = (float)(warpSum((double)s) / H);
  float sq = 0.f;
#pragma unroll
  for (int j = 0; j < CPL; j++) {
    const float d = v[j] - mean;
    sq += d * d;
  }
  const float rstd = (float)(1.0 / sqrt(warpSum((double)sq) / H + eps));
  Y* yRow = y + (long long)row * H;
#pragma unroll
  for (int k = 0; k < CPL / 4; k++) {
    const int c = k * 128 + lane * 4;
    float g[4], b[4], out[4];
    VecIO<float, 4>::load(gamma + c, g);
    VecIO<float, 4>::load(beta + c, b);
#pragma unroll
    for (int i = 0; i < 4; i++) out[i] = (v[4 * k + i] - mean) * rstd * g[i] + b[i];
    VecIO<Y, 4>::store(yRow + c, out);
  }
  if (lane == 0) {
    meanOut[row] = mean;
    rstdOut[row] = rstd;
  }
}

/**
 * The layer-norm backward's block step: adds the warps' per-lane column sums of dy·x̂ and dy in
 * warp order (colSum: [2][CPL·32] in shared memory) and writes them as the block's f64 partial
 * [blockIdx.x][0 = dGamma, 1 = dBeta][H].
 */
template <int CPL, typename Acc>
__device__ inline void blockColumnSums(const Acc (&dG)[CPL], const Acc (&dB)[CPL], Acc (*colSum)[CPL * 32], int H, double* partial) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  for (int w = 0; w < LN_WARPS; w++) {
    if (warp == w) {
#pragma unroll
      for (int j = 0; j < CPL; j++) {
        const int c = j * 32 + lane;
        if (c < H) {
          colSum[0][c] = (w == 0 ? Acc(0) : colSum[0][c]) + dG[j];
          colSum[1][c] = (w == 0 ? Acc(0) : colSum[1][c]) + dB[j];
        }
      }
    }
    __syncthreads();
  }
  for (int c = threadIdx.x; c < H; c += blockDim.x) {
    partial[((long long)blockIdx.x * 2) * H + c] = colSum[0][c];
    partial[((long long)blockIdx.x * 2 + 1) * H + c] = colSum[1][c];
  }
}

/**
 * layerNormBackward, fused: block b owns rows [b·LNB_ROWS, …); warp w takes rows b·LNB_ROWS + w,
 * + LN_WARPS, … in order. Per row (dy and x read once, columns 32·j + lane): dx as
 * layerNormBackwardDxKernel, and each lane adds dy·x̂ and dy of its columns to f64 column sums
 * (in registers: scalar loads keep this kernel under 255 registers for H = 1024). The warps' sums are then added in warp
 * order into partial[b][0 = dGamma, 1 = dBeta][H]; layerNormParamGradKernel adds the blocks'
 * partials in block order to dGamma and dBeta.
 */
constexpr int LNB_ROWS_PER_WARP = 8;
constexpr int LNB_ROWS = LN_WARPS * LNB_ROWS_PER_WARP;

template <int CPL>
__global__ void __launch_bounds__(LN_WARPS * 32) layerNormBackwardFusedKernel(FPtr dy, FPtr x, FPtr gamma, const float* meanIn, const float* rstdIn, FPtr dx,
                                                                              int R, int H, bool accumulate, double* partial) {
  __shared__ double colSum[2][CPL * 32];
  __shared__ float gammaS[CPL * 32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  for (int c = threadIdx.x; c < H; c += blockDim.x) gammaS[c] = gamma[c];
  __syncthreads();
  double dG[CPL], dB[CPL];
#pragma unroll
  for (int j = 0; j < CPL; j++) dG[j] = dB[j] = 0;
  for (int i = 0; i < LNB_ROWS_PER_WARP; i++) {
    const int row = blockIdx.x * LNB_ROWS + i * LN_WARPS + warp;
    if (row >= R) break;  // the whole warp
    const long long base = (long long)row * H;
    float d[CPL], xv[CPL];
    lnLoadRow<CPL, false>(dy, base, H, lane, d);
    lnLoadRow<CPL, false>(x, base, H, lane, xv);
    const double mean = meanIn[row], rstd = rstdIn[row];
    double gs = 0, gxs = 0;
#pragma unroll
    for (int j = 0; j < CPL; j++) {
      const int c = j * 32 + lane;
      if (c < H) {
        const double xh = (xv[j] - mean) * rstd;
        const double g = (double)d[j] * gammaS[c];
        gs += g;
        gxs += g * xh;
        dG[j] += (double)d[j] * xh;
        dB[j] += (double)d[j];
      }
    }
    const double gMean = warpSum(gs) / H;
    const double gxMean = warpSum(gxs) / H;
#pragma unroll
    for (int j = 0; j < CPL; j++) {
      const int c = j * 32 + lane;
      if (c < H) {
        const double xh = (xv[j] - mean) * rstd;
        const double grad = rstd * ((double)d[j] * gammaS[c] - gMean - xh * gxMean);
        dx[base + c] = (float)(accumulate ? (double)dx[base + c] + grad : grad);
      }
    }
  }
  blockColumnSums<CPL>(dG, dB, colSum, H, partial);
}

/**
 * layerNormBackward for f32 x, gamma and dx (the residual stream in training; dy f32 or bf16): as
 * the fused kernel above but in f32 arithmetic (row sums and per-lane column sums; the layer-norm threshold is NMSE 1e-6,
 * f32 rounding gives ~1e-12) with typed loads, 32 rows per block and two blocks per SM. Writes
 * the block's column sums as f64 partials for layerNormParamGradKernel.
 */
constexpr int LNF_ROWS_PER_WARP = 4;
constexpr int LNF_ROWS = LN_WARPS * LNF_ROWS_PER_WARP;

template <int CPL, typename DY>
__global__ void __launch_bounds__(LN_WARPS * 32, 2) layerNormBackwardF32Kernel(const DY* dy, const float* x, const float* gamma, const float* meanIn,
                                                                              const float* rstdIn, float* dx, int R, int H, bool accumulate, double* partial) {
  __shared__ float colSum[2][CPL * 32];
  __shared__ float gammaS[CPL * 32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  for (int c = threadIdx.x; c < H; c += blockDim.x) gammaS[c] = gamma[c];
  __syncthreads();
  float dG[CPL], dB[CPL];
#pragma unroll
  for (int j = 0; j < CPL; j++) dG[j] = dB[j] = 0.f;
  for (int i = 0; i < LNF_ROWS_PER_WARP; i++) {
    const int row = blockIdx.x * LNF_ROWS + i * LN_WARPS + warp;
    if (row >= R) break;  // the whole warp
    const DY* dyRow = dy + (long long)row * H;
    const float* xRow = x + (long long)row * H;
    float d[CPL], xh[CPL];
    const float mean = meanIn[row], rstd = rstdIn[row];
#pragma unroll
    for (int j = 0; j < CPL; j++) {
      const int c = j * 32 + lane;
      d[j] = c < H ? loadAsFloat(dyRow, c) : 0.f;
      xh[j] = c < H ? (xRow[c] - mean) * rstd : 0.f;
    }
    float gs = 0.f, gxs = 0.f;
#pragma unroll
    for (int j = 0; j < CPL; j++) {
      const int c = j * 32 + lane;
      const float g = c < H ? d[j] * gammaS[c] : 0.f;
      gs += g;
      gxs += g * xh[j];
      dG[j] += d[j] * xh[j];
      dB[j] += d[j];
    }
    const float gMean = warpSum(gs) / H, gxMean = warpSum(gxs) / H;
    float* dxRow = dx + (long long)row * H;
#pragma unroll
    for (int j = 0; j < CPL; j++) {
      const int c = j * 32 + lane;
      if (c < H) {
        const float grad = rstd * (d[j] * gammaS[c] - gMean - xh[j] * gxMean);
        dxRow[c] = accumulate ? dxRow[c] + grad : grad;
      }
    }
  }
  blockColumnSums<CPL>(dG, dB, colSum, H, partial);
}

/**
 * layerNormBackward in two passes (the default; BLANKGLM_GPU_LN_BACKWARD=fused for the one-pass
 * kernel above; f32 x/gamma/dx): layerNormBackwardDxSplitKernel keeps no column sums, so one warp
 * per row holds dy, x and the old dx of its row at once (all loads issued together, four columns
 * per load with VEC); then
 * layerNormColumnSumsKernel adds dy·x̂ and dy over 256-row chunks of 32 columns (f32 within a
 * thread, the 8 row lanes in order, f64 per chunk) for layerNormParamGradKernel. Same arithmetic
 * as layerNormBackwardF32Kernel up to the order of the column sums.
 */
template <int CPL, bool VEC, typename DY>
__global__ void __launch_bounds__(LN_WARPS * 32, 2) layerNormBackwardDxSplitKernel(const DY* dy, const float* x, const float* gamma, const float* meanIn,
                                                                                  const float* rstdIn, float* dx, int R, int H, bool accumulate) {
  __shared__ float gammaS[CPL * 32];
  const int lane = threadIdx.x & 31;
  for (int c = threadIdx.x; c < H; c += blockDim.x) gammaS[c] = gamma[c];
  __syncthreads();
  const int row = blockIdx.x * LN_WARPS + (threadIdx.x >> 5);
  if (row >= R) return;  // the whole warp
  const DY* dyRow = dy + (long long)row * H;
  const float* xRow = x + (long long)row * H;
  float* dxRow = dx + (long long)row * H;
  float d[CPL], xh[CPL], old[CPL];
  const float mean = meanIn[row], rstd = rstdIn[row];
  if constexpr (VEC) {
#pragma unroll
    for (int k = 0; k < CPL / 4; k++) {
      const int c = k * 128 + lane * 4;
      VecIO<DY, 4>::load(dyRow + c, d + 4 * k);
      VecIO<float, 4>::load(xRow + c, xh + 4 * k);
      if (accumulate) VecIO<float, 4>::load(dxRow + c, old + 4 * k);
      else old[4 * k] = old[4 * k + 1] = old[4 * k + 2] = old[4 * k + 3] = 0.f;
    }
  } else {
#pragma unroll
    for (int j = 0; j < CPL; j++) {
      const int c = j * 32 + lane;
      d[j] = c < H ? loadAsFloat(dyRow, c) : 0.f;
      xh[j] = c < H ? xRow[c] : 0.f;
      old[j] = c < H && accumulate ? dxRow[c] : 0.f;
    }
  }
  float gs = 0.f, gxs = 0.f;
#pragma unroll
  for (int j = 0; j < CPL; j++) {
    const int c = lnColumn(VEC, j, lane);
    xh[j] = (xh[j] - mean) * rstd;
    const float g = VEC || c < H ? d[j] * gammaS[c] : 0.f;
    gs += g;
    gxs += g * xh[j];
  }
  const float gMean = warpSum(gs) / H, gxMean = warpSum(gxs) / H;
#pragma unroll
  for (int j = 0; j < CPL; j++) d[j] = old[j] + rstd * (d[j] * gammaS[lnColumn(VEC, j, lane)] - gMean - xh[j] * gxMean);
  if constexpr (VEC) {
#pragma unroll
    for (int k = 0; k < CPL / 4; k++) VecIO<float, 4>::store(dxRow + k * 128 + lane * 4, d + 4 * k);
  } else {
#pragma unroll
    for (int j = 0; j < CPL; j++) {
      const int c = j * 32 + lane;
      if (c < H) dxRow[c] = d[j];
    }
  }
}

constexpr int LN_COLSUM_ROWS = 256;  // rows per chunk of layerNormColumnSumsKernel

/** Block (32 columns, chunk), 32 × 8 threads: partial[chunk][0 = Σ dy·x̂, 1 = Σ dy][H] (f64). */
template <typename DY>
__global__ void __launch_bounds__(256) layerNormColumnSumsKernel(const DY* dy, const float* x, const float* meanIn, const float* rstdIn, int R, int H,
                                                                 double* partial) {
  __shared__ float tile[2][8][33];
  const int c = blockIdx.x * 32 + threadIdx.x;
  const int r0 = blockIdx.y * LN_COLSUM_ROWS, r1 = min(R, r0 + LN_COLSUM_ROWS);
  float sG = 0.f, sB = 0.f;
  if (c < H) {
#pragma unroll 8
    for (int r = r0 + threadIdx.y; r < r1; r += 8) {
      const float d = loadAsFloat(dy, (long long)r * H + c);
      sG += d * ((x[(long long)r * H + c] - meanIn[r]) * rstdIn[r]);
      sB += d;
    }
  }
  tile[0][threadIdx.y][threadIdx.x] = sG;
  tile[1][threadIdx.y][threadIdx.x] = sB;
  __syncthreads();
  if (threadIdx.y < 2 && c < H) {
    double t = 0;
    for (int i = 0; i < 8; i++) t += tile[threadIdx.y][i][threadIdx.x];
    partial[((long long)blockIdx.y * 2 + threadIdx.y) * H + c] = t;
  }
}

/**
 * Sums of partials over a short axis, 32 columns per block: lane y of PARTIAL_LANES adds rows
 * y, y + PARTIAL_LANES, … (loads unrolled, so several are in flight), then lane 0 adds the lanes
 * in order. Deterministic: the order depends on the count only.
 */
constexpr int PARTIAL_LANES = 32;

template <typename At>
__device__ inline double sumPartials(At at, int count, int c, bool inRange) {
  __shared__ double tile[PARTIAL_LANES][33];
  double s = 0;
  if (inRange) {
#pragma unroll 4
    for (int i = threadIdx.y; i < count; i += PARTIAL_LANES) s += at(i);
  }
  tile[threadIdx.y][threadIdx.x] = s;
  __syncthreads();
  double t = 0;
  if (threadIdx.y == 0)
    for (int i = 0; i < PARTIAL_LANES; i++) t += tile[i][threadIdx.x];
  return t;  // valid in lane y = 0
}

/** Block (columns, which), 32 × PARTIAL_LANES threads: out[c] += Σ_b partial[b][which][c]. */
__global__ void layerNormParamGradKernel(const double* partial, int blocks, int H, FPtr dGamma, FPtr dBeta) {
  const int c = blockIdx.x * 32 + threadIdx.x, which = blockIdx.y;
  const double t = sumPartials([&](int b) { return partial[((long long)b * 2 + which) * H + c]; }, blocks, c, c < H);
  if (threadIdx.y == 0 && c < H) {
    const FPtr out = which == 0 ? dGamma : dBeta;
    out[c] = (float)((double)out[c] + t);
  }
}

/**
 * Column sums over rows in two deterministic stages. Stage 1: block (cx, cy) sums rows
 * [cy·ROWS_PER_CHUNK, …) of 32 columns into partial[cy, c] (f64). Stage 2: one thread per column
 * adds the partials in chunk order to out (+=). `Value` gives element (r, c) of what is summed.
 */
constexpr int COLSUM_ROWS_PER_CHUNK = 256;

template <typename Value>
__global__ void columnPartialKernel(Value value, int R, int C, double* partial) {
  __shared__ double tile[8][33];
  const int c = blockIdx.x * 32 + threadIdx.x;
  const int r0 = blockIdx.y * COLSUM_ROWS_PER_CHUNK, r1 = min(R, r0 + COLSUM_ROWS_PER_CHUNK);
  double s = 0;
  if (c < C)
    for (int r = r0 + threadIdx.y; r < r1; r += 8) s += value(r, c);
  tile[threadIdx.y][threadIdx.x] = s;
  __syncthreads();
  if (threadIdx.y == 0 && c < C) {
    double t = 0;
    for (int i = 0; i < 8; i++) t += tile[i][threadIdx.x];
    partial[(long long)blockIdx.y * C + c] = t;
  }
}

__global__ void columnFinalKernel(const double* partial, int chunks, int C, FPtr out) {
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= C) return;
  double s = 0;
  for (int i = 0; i < chunks; i++) s += partial[(long long)i * C + c];
  out[c] = (float)((double)out[c] + s);
}

struct DyTimesXHat {
  FPtr dy, x;
  const float *mean, *rstd;
  int H;
  __device__ double operator()(int r, int c) const {
    const long long o = (long long)r * H + c;
    return (double)dy[o] * (((double)x[o] - mean[r]) * rstd[r]);
  }
};

struct PlainValue {
  FPtr m;
  int C;
  __device__ double operator()(int r, int c) const { return m[(long long)r * C + c]; }
};

// ---- GELU (f64: these are single elementwise passes, memory bound) ----
__device__ inline double geluTanhD(double x) {
  const double t = tanh(0.7978845608028654 * (x + 0.044715 * x * x * x));
  return 0.5 * x * (1 + t);
}
__device__ inline double geluTanhDerivD(double x) {
  const double t = tanh(0.7978845608028654 * (x + 0.044715 * x * x * x));
  return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * 0.7978845608028654 * (1 + 3 * 0.044715 * x * x);
}
__device__ inline double normalCdfD(double x) { return 0.5 * erfc(-x * 0.7071067811865476); }
__device__ inline double geluErfD(double x) { return x * normalCdfD(x); }
__device__ inline double geluErfDerivD(double x) { return normalCdfD(x) + x * 0.3989422804014327 * exp(-0.5 * x * x); }

/** GELU in f32 for bf16 tensors (see geluTanhDerivF); beyond |x| > 9 the f64 value rounds to x or to ~0. */
__device__ inline float geluTanhF(float x) {
  if (fabsf(x) > 9.f) return x > 0.f ? x : 0.f;
  return x / (1.f + __expf(-2.f * 0.7978845608028654f * x * (1.f + 0.044715f * x * x)));  // x·σ(2u) = 0.5·x·(1 + tanh u)
}
__device__ inline float geluErfF(float x) {
  if (fabsf(x) > 9.f) return x > 0.f ? x : 0.f;
  return 0.5f * x * erfcf(-x * 0.7071067811865476f);
}

/** y = act(preAct) (activation 1 = gelu_tanh, 2 = gelu_erf); f32 math when both are bf16. */
__global__ void activationKernel(FPtr preAct, FPtr y, long long n, int activation) {
  const bool f32Math = preAct.bf && y.bf;
  for (long long e = blockIdx.x * (long long)blockDim.x + threadIdx.x; e < n; e += (long long)gridDim.x * blockDim.x) {
    if (f32Math) {
      const float z = preAct[e];
      y[e] = activation == 1 ? geluTanhF(z) : activation == 2 ? geluErfF(z) : z;
      continue;
    }
    const double z = preAct[e];
    y[e] = (float)(activation == 1 ? geluTanhD(z) : activation == 2 ? geluErfD(z) : z);
  }
}

/** dz = dy ⊙ act'(preAct). */
__global__ void activationBackwardKernel(FPtr dy, FPtr preAct, FPtr dz, long long n, int activation) {
  for (long long e = blockIdx.x * (long long)blockDim.x + threadIdx.x; e < n; e += (long long)gridDim.x * blockDim.x) {
    const double z = preAct[e];
    const double d = activation == 1 ? geluTanhDerivD(z) : geluErfDerivD(z);
    dz[e] = (float)((double)dy[e] * d);
  }
}

// ---- dense column sums of [R, C] matrices, fused with the activation backward ----
// One block of 32 × 8 threads covers a tile of 32·VEC columns and a chunk of `rowsPerChunk` rows:
// thread (tx, ty) reads VEC consecutive elements (one 16-byte load when vectorised) of rows
// r0 + ty, r0 + ty + 8, …, so a warp reads 32·VEC contiguous elements of one row. Each thread sums
// its rows in a fixed order (f32 for bf16 storage, f64 for f32), the 8 row lanes are added in
// f64 in lane order, and partial[chunk, c] gets the chunk's sum; columnPartialFinalKernel then adds
// the chunks in order. Deterministic: the partition depends on the shape only.
// With an activation (ACT 1 = gelu_tanh, 2 = gelu_erf) the kernel also writes dz = dy ⊙ act'(preAct)
// and sums dz as stored (rounded to bf16 when dz is bf16), so the bias gradient matches the products.
constexpr int DCOL_TX = 32, DCOL_TY = 8;


/** The value a store of f into T keeps, as a float (bf16: round to nearest-even). */
__device__ inline float storedAs(float f, float*) { return f; }
__device__ inline float storedAs(float f, __nv_bfloat16*) { return __bfloat162float(__float2bfloat16_rn(f)); }

/**
 * GELU derivatives in f32 for bf16 tensors, tanh through e^{-2u} (absolute error ~1e-6, far below
 * bf16's 2^-9); beyond |x| > 9 the f64 derivative rounds to 1 (x > 0) or to a value
 * below 1e-17 (x < 0), which also keeps x² and e^{-2u} finite (below 2^126, as __fdividef needs).
 * NaN propagates.
 */
__device__ inline float geluTanhDerivF(float x) {
  if (fabsf(x) > 9.f) return x > 0.f ? 1.f : 0.f;
  // 0.5·(1 + tanh u) = σ(2u) and 1 − tanh²u = 4σ(1 − σ), u = k(x + c·x³).
  const float k = 0.7978845608028654f, c = 0.044715f, x2 = x * x;
  const float sg = __fdividef(1.f, 1.f + __expf(-2.f * k * x * (1.f + c * x2)));
  return sg + 2.f * x * sg * (1.f - sg) * k * (1.f + 3.f * c * x2);
}
__device__ inline float geluErfDerivF(float x) {
  if (fabsf(x) > 9.f) return x > 0.f ? 1.f : 0.f;
  return 0.5f * erfcf(-x * 0.7071067811865476f) + x * 0.3989422804014327f * __expf(-0.5f * x * x);
}

/** dz for one element: f32 math for bf16 storage, the f64 math of activationBackwardKernel for f32. */
template <int ACT>
__device__ inline float dzOf(float dy, float z, __nv_bfloat16*) {
  return dy * (ACT == 1 ? geluTanhDerivF(z) : geluErfDerivF(z));
}
template <int ACT>
__device__ inline float dzOf(float dy, float z, float*) {
  return (float)((double)dy * (ACT == 1 ? geluTanhDerivD(z) : geluErfDerivD(z)));
}

template <typename T>
struct ColAcc {
  typedef double type;
};
template <>
struct ColAcc<__nv_bfloat16> {
  typedef float type;
};

/**
 * ACT 0: partial column sums of m = dy ([R, C]). ACT 1/2: dz = dy ⊙ act'(preAct) into dz, and
 * partial column sums of dz when `partial` is given. VEC > 1 needs C % VEC == 0 and 16-byte
 * aligned pointers (checked by the host). Grid: (ceil(C / (32·VEC)), ceil(R / rowsPerChunk)).
 */
template <typename T, int VEC, int ACT>
__global__ void __launch_bounds__(DCOL_TX * DCOL_TY) denseColumnPartialKernel(const T* dy, const T* preAct, T* dz, int R, int C, int rowsPerChunk,
                                                                              double* partial) {
  typedef typename ColAcc<T>::type Acc;
  __shared__ double tile[DCOL_TY][DCOL_TX * VEC];
  const int c0 = (blockIdx.x * DCOL_TX + threadIdx.x) * VEC;
  const int r0 = blockIdx.y * rowsPerChunk, r1 = min(R, r0 + rowsPerChunk);
  Acc s[VEC];
#pragma unroll
  for (int j = 0; j < VEC; j++) s[j] = Acc(0);
  if (c0 < C) {  // C % VEC == 0, so the whole vector is inside the row
    // Two rows per step keep two loads in flight per operand.
    int r = r0 + threadIdx.y;
    for (; r + DCOL_TY < r1; r += 2 * DCOL_TY) {
      const long long o0 = (long long)r * C + c0, o1 = o0 + (long long)DCOL_TY * C;
      float a0[VEC], a1[VEC];
      VecIO<T, VEC>::load(dy + o0, a0);
      VecIO<T, VEC>::load(dy + o1, a1);
      if (ACT != 0) {
        float z0[VEC], z1[VEC];
        VecIO<T, VEC>::load(preAct + o0, z0);
        VecIO<T, VEC>::load(preAct + o1, z1);
#pragma unroll
        for (int j = 0; j < VEC; j++) {
          a0[j] = storedAs(dzOf<ACT>(a0[j], z0[j], (T*)nullptr), (T*)nullptr);
          a1[j] = storedAs(dzOf<ACT>(a1[j], z1[j], (T*)nullptr), (T*)nullptr);
        }
        VecIO<T, VEC>::store(dz + o0, a0);
        VecIO<T, VEC>::store(dz + o1, a1);
      }
#pragma unroll
      for (int j = 0; j < VEC; j++) s[j] += (Acc)a0[j];
#pragma unroll
      for (int j = 0; j < VEC; j++) s[j] += (Acc)a1[j];
    }
    if (r < r1) {
      const long long o0 = (long long)r * C + c0;
      float a0[VEC];
      VecIO<T, VEC>::load(dy + o0, a0);
      if (ACT != 0) {
        float z0[VEC];
        VecIO<T, VEC>::load(preAct + o0, z0);
#pragma unroll
        for (int j = 0; j < VEC; j++) a0[j] = storedAs(dzOf<ACT>(a0[j], z0[j], (T*)nullptr), (T*)nullptr);
        VecIO<T, VEC>::store(dz + o0, a0);
      }
#pragma unroll
      for (int j = 0; j < VEC; j++) s[j] += (Acc)a0[j];
    }
  }
  if (!partial) return;  // uniform over the block
#pragma unroll
  for (int j = 0; j < VEC; j++) tile[threadIdx.y][threadIdx.x * VEC + j] = (double)s[j];
  __syncthreads();
  const int t = threadIdx.y * DCOL_TX + threadIdx.x;
  const int c = blockIdx.x * DCOL_TX * VEC + t;
  if (t < DCOL_TX * VEC && c < C) {
    double sum = 0;
#pragma unroll
    for (int i = 0; i < DCOL_TY; i++) sum += tile[i][t];
    partial[(long long)blockIdx.y * C + c] = sum;
  }
}

/** out[c] += Σ_chunks partial[chunk, c] (block 32 × PARTIAL_LANES). */
__global__ void columnPartialFinalKernel(const double* partial, int chunks, int C, FPtr out) {
  const int c = blockIdx.x * 32 + threadIdx.x;
  const double t = sumPartials([&](int i) { return partial[(long long)i * C + c]; }, chunks, c, c < C);
  if (threadIdx.y == 0 && c < C) out[c] = (float)((double)out[c] + t);
}

/** Rows per chunk of denseColumnPartialKernel: a function of the shape only (determinism). */
__host__ __device__ inline int denseColumnRowsPerChunk(long long R, long long colTiles) {
  int rows = 256;
  while (rows > 64 && colTiles * ((R + rows - 1) / rows) < 1024) rows >>= 1;
  while ((R + rows - 1) / rows > 65535) rows <<= 1;  // gridDim.y limit
  return rows;
}

// ---- cross-entropy over vocabulary chunks (online log-sum-exp per row, f64 state) ----
struct CeState {
  double max, sumExp, sumZ, zTarget;
};

__global__ void ceInitKernel(CeState* st, int T) {
  const int t = blockIdx.x * blockDim.x + threadIdx.x;
  if (t < T) st[t] = {-INFINITY, 0.0, 0.0, 0.0};
}

/** Folds logits z[t, 0:width] of vocabulary rows [v0, v0 + width) into row t's state (one block per row). */
__global__ void ceChunkKernel(const float* z, int width, int v0, const int* targets, int V, CeState* st, DeviceErrorRecord* err) {
  __shared__ double shared[32];
  const int t = blockIdx.x;
  const float* row = z + (long long)t * width;
  double m = -INFINITY, sz = 0;
  for (int v = threadIdx.x; v < width; v += blockDim.x) {
    m = fmax(m, (double)row[v]);
    sz += row[v];
  }
  m = blockMax(m, shared, (double)-INFINITY);
  sz = blockSum(sz, shared);
  double se = 0;
  for (int v = threadIdx.x; v < width; v += blockDim.x) se += exp((double)row[v] - m);
  se = blockSum(se, shared);
  if (threadIdx.x == 0) {
    CeState s = st[t];
    const double nm = fmax(s.max, m);
    s.sumExp = (s.sumExp == 0 ? 0 : s.sumExp * exp(s.max - nm)) + se * exp(m - nm);
    s.max = nm;
    s.sumZ += sz;
    const int target = targets[t];
    if (v0 == 0 && (target < 0 || target >= V)) reportDeviceError(err, ERR_TARGET_ID, t, target, V);
    if (target >= v0 && target < v0 + width) s.zTarget = row[target - v0];
    st[t] = s;
  }
}

__global__ void ceFinishKernel(const CeState* st, int T, int V, double eps, float* losses, float* lse) {
  const int t = blockIdx.x * blockDim.x + threadIdx.x;
  if (t >= T) return;
  const CeState s = st[t];
  const double l = s.max + log(s.sumExp);
  losses[t] = (float)((1 - eps) * (l - s.zTarget) + eps * (l - s.sumZ / V));
  lse[t] = (float)l;
}

/**
 * dz[t, v] = weights[t] · (exp(z − lse[t]) − (1 − ε)[v0 + v = target] − ε/V); dz may be z itself
 * (f32). Rows over blockIdx.y (a row's weight, lse and target read once), columns over blockIdx.x:
 * no 64-bit division per element.
 */
__global__ void ceGradKernel(const float* z, FPtr dz, int T, int width, int v0, const int* targets, const float* lse, const float* weights, int V, double eps) {
  for (int t = blockIdx.y; t < T; t += gridDim.y) {
    const double w = weights[t], l = lse[t];
    const int target = targets[t] - v0;
    const long long row = (long long)t * width;
    for (int v = blockIdx.x * blockDim.x + threadIdx.x; v < width; v += gridDim.x * blockDim.x) {
      if (w == 0) {
        dz[row + v] = 0.f;
        continue;
      }
      const double prob = exp((double)z[row + v] - l);
      const double tgt = v == target ? 1 - eps : 0;
      dz[row + v] = (float)(w * (prob - tgt - eps / V));
    }
  }
}
