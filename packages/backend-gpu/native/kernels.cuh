// The element-wise, row and reduction kernels of the op catalogue (f32 storage; f64 where an
// accumulation or a single rounding per element is cheap). Semantics: @blankglm/tensor ops.ts,
// oracle: @blankglm/backend-ref. Every reduction has a fixed order, so results are bit-identical
// from run to run (no floating-point atomics anywhere).
#pragma once
#include "common.cuh"

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
__global__ void dropoutAddKernel(FPtr x, FPtr residual, FPtr out, long long n, Dropout d) {
  for (long long e = blockIdx.x * (long long)blockDim.x + threadIdx.x; e < n; e += (long long)gridDim.x * blockDim.x) {
    const double dropped = (double)x[e] * dropoutFactor(d, d.stream, (uint32_t)e);
    out[e] = (float)(residual ? (double)residual[e] + dropped : dropped);
  }
}

__global__ void dropoutBackwardKernel(FPtr dy, FPtr dx, long long n, Dropout d, bool accumulate) {
  for (long long e = blockIdx.x * (long long)blockDim.x + threadIdx.x; e < n; e += (long long)gridDim.x * blockDim.x) {
    const double g = (double)dy[e] * dropoutFactor(d, d.stream, (uint32_t)e);
    dx[e] = (float)(accumulate ? (double)dx[e] + g : g);
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

/** One AdamW element (f64 math); adamwKernel and adamwMultiKernel share it, so both give the same bits. */
__device__ __forceinline__ void adamwElement(FPtr param, FPtr grad, float* mState, float* vState, long long e, const AdamParams& p) {
  const double g = (double)grad[e] * p.gradScale;
  const double m = p.beta1 * (double)mState[e] + (1 - p.beta1) * g;
  const double v = p.beta2 * (double)vState[e] + (1 - p.beta2) * g * g;
  const double w = (double)param[e];
  const double update = m / p.biasCorrection1 / (sqrt(v / p.biasCorrection2) + p.eps) + p.weightDecay * w;
  param[e] = (float)(w - p.lr * update);
  mState[e] = (float)m;
  vState[e] = (float)v;
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

/** adamwKernel over many tensors (shared lr, betas, eps, step, gradScale; weight decay per tensor): the same bits. */
__global__ void __launch_bounds__(MT_THREADS) adamwMultiKernel(const __grid_constant__ MtAdamw t) {
  int i;
  long long start, end;
  mtChunk(t.firstBlock, t.count, t.n, &i, &start, &end);
  const AdamParams p{t.lr, t.beta1, t.beta2, t.eps, t.weightDecay[i], t.gradScale, t.biasCorrection1, t.biasCorrection2};
  const FPtr param(t.param[i], t.paramBf[i] != 0), grad(t.grad[i], t.gradBf[i] != 0);
  float* const m = t.m[i];
  float* const v = t.v[i];
  for (long long e = start + threadIdx.x; e < end; e += MT_THREADS) adamwElement(param, grad, m, v, e, p);
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

/** dropoutAddKernel with p = 0 and no residual (a float-type conversion) over many tensors: the same bits. */
__global__ void __launch_bounds__(MT_THREADS) castMultiKernel(const __grid_constant__ MtCast t) {
  int i;
  long long start, end;
  mtChunk(t.firstBlock, t.count, t.n, &i, &start, &end);
  const FPtr x(t.x[i], t.xBf[i] != 0), out(t.out[i], t.outBf[i] != 0);
  for (long long e = start + threadIdx.x; e < end; e += MT_THREADS) {
    const double dropped = (double)x[e];  // dropoutAddKernel: x · 1 (the factor of an inactive dropout), no residual
    out[e] = (float)dropped;
  }
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
constexpr int SORT_CHUNK = 2048;  // elements sorted in shared memory by one block of 1024 threads

__global__ void makeSortKeysKernel(const int* ids, int count, unsigned long long* keys, int padded) {
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < padded; i += gridDim.x * blockDim.x)
    keys[i] = i < count ? ((unsigned long long)(uint32_t)ids[i] << 32) | (uint32_t)i : ~0ULL;
}

/** All stages with k in [kFirst, kLast] and j ≤ 1024, on chunks of 2048 (global index decides direction). */
__global__ void __launch_bounds__(1024) bitonicSharedKernel(unsigned long long* keys, int kFirst, int kLast) {
  __shared__ unsigned long long s[SORT_CHUNK];
  const int base = blockIdx.x * SORT_CHUNK;
  s[threadIdx.x] = keys[base + threadIdx.x];
  s[threadIdx.x + 1024] = keys[base + threadIdx.x + 1024];
  for (int k = kFirst; k <= kLast; k <<= 1) {
    for (int j = min(k >> 1, 1024); j > 0; j >>= 1) {
      __syncthreads();
      const int t = threadIdx.x;
      const int i = (t / j) * 2 * j + (t % j), p = i + j;
      const bool ascending = ((base + i) & k) == 0;
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

__global__ void bitonicGlobalKernel(unsigned long long* keys, int n, int j, int k) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  const int p = i ^ j;
  if (p <= i) return;
  const bool ascending = (i & k) == 0;
  const unsigned long long a = keys[i], b = keys[p];
  if ((a > b) == ascending) {
    keys[i] = b;
    keys[p] = a;
  }
}

/**
 * dst[row, :] += Σ src[t, :] over the t with index[t] = row, given the sorted keys: block s
 * handles the group starting at sorted position s (other blocks exit), summing in f64 in
 * increasing t — deterministic, and the reference's order.
 */
__global__ void segmentedRowSumKernel(FPtr src, const unsigned long long* keys, int count, int rows, int W, FPtr dst, int errKind,
                                      DeviceErrorRecord* err) {
  const int s = blockIdx.x;
  const int row = (int)(uint32_t)(keys[s] >> 32);
  if (s > 0 && (int)(uint32_t)(keys[s - 1] >> 32) == row) return;
  if (row < 0 || row >= rows) {
    if (threadIdx.x == 0) reportDeviceError(err, errKind, (long long)(keys[s] & 0xffffffffULL), row, rows);
    return;
  }
  int end = s + 1;
  while (end < count && (int)(uint32_t)(keys[end] >> 32) == row) end++;
  for (int c = threadIdx.x; c < W; c += blockDim.x) {
    double sum = 0;
    for (int g = s; g < end; g++) sum += (double)src[(long long)(keys[g] & 0xffffffffULL) * W + c];
    const long long o = (long long)row * W + c;
    dst[o] = (float)((double)dst[o] + sum);
  }
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

template <typename T, int VEC>
struct VecIO;

template <>
struct VecIO<float, 4> {
  __device__ static void load(const float* p, float (&v)[4]) {
    const float4 q = *(const float4*)p;
    v[0] = q.x, v[1] = q.y, v[2] = q.z, v[3] = q.w;
  }
  __device__ static void store(float* p, const float (&v)[4]) { *(float4*)p = make_float4(v[0], v[1], v[2], v[3]); }
};

template <>
struct VecIO<__nv_bfloat16, 8> {
  __device__ static void load(const __nv_bfloat16* p, float (&v)[8]) {
    const uint4 q = *(const uint4*)p;
    const uint32_t w[4] = {q.x, q.y, q.z, q.w};
#pragma unroll
    for (int i = 0; i < 4; i++) {
      v[2 * i] = __uint_as_float(w[i] << 16);  // element 2i is the low half (little-endian)
      v[2 * i + 1] = __uint_as_float(w[i] & 0xffff0000u);
    }
  }
  __device__ static void store(__nv_bfloat16* p, const float (&v)[8]) {
    uint32_t w[4];
#pragma unroll
    for (int i = 0; i < 4; i++)
      w[i] = (uint32_t)__bfloat16_as_ushort(__float2bfloat16_rn(v[2 * i])) | ((uint32_t)__bfloat16_as_ushort(__float2bfloat16_rn(v[2 * i + 1])) << 16);
    *(uint4*)p = make_uint4(w[0], w[1], w[2], w[3]);
  }
};

template <>
struct VecIO<float, 1> {
  __device__ static void load(const float* p, float (&v)[1]) { v[0] = *p; }
  __device__ static void store(float* p, const float (&v)[1]) { *p = v[0]; }
};

template <>
struct VecIO<__nv_bfloat16, 1> {
  __device__ static void load(const __nv_bfloat16* p, float (&v)[1]) { v[0] = __bfloat162float(*p); }
  __device__ static void store(__nv_bfloat16* p, const float (&v)[1]) { *p = __float2bfloat16_rn(v[0]); }
};

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

/** out[c] += Σ_chunks partial[chunk, c], chunk lanes of 8 then the lanes in order (block 32 × 8). */
__global__ void columnPartialFinalKernel(const double* partial, int chunks, int C, FPtr out) {
  __shared__ double tile[8][33];
  const int c = blockIdx.x * 32 + threadIdx.x;
  double s = 0;
  if (c < C)
    for (int i = threadIdx.y; i < chunks; i += 8) s += partial[(long long)i * C + c];
  tile[threadIdx.y][threadIdx.x] = s;
  __syncthreads();
  if (threadIdx.y == 0 && c < C) {
    double t = 0;
#pragma unroll
    for (int i = 0; i < 8; i++) t += tile[i][threadIdx.x];
    out[c] = (float)((double)out[c] + t);
  }
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

/** dz[t, v] = weights[t] · (exp(z − lse[t]) − (1 − ε)[v0 + v = target] − ε/V); dz may be z itself (f32). */
__global__ void ceGradKernel(const float* z, FPtr dz, int T, int width, int v0, const int* targets, const float* lse, const float* weights, int V, double eps) {
  const long long n = (long long)T * width;
  for (long long e = blockIdx.x * (long long)blockDim.x + threadIdx.x; e < n; e += (long long)gridDim.x * blockDim.x) {
    const int t = (int)(e / width), v = (int)(e % width) + v0;
    const double w = weights[t];
    if (w == 0) {
      dz[e] = 0.f;
      continue;
    }
    const double prob = exp((double)z[e] - (double)lse[t]);
    const double target = v == targets[t] ? 1 - eps : 0;
    dz[e] = (float)(w * (prob - target - eps / V));
  }
}
