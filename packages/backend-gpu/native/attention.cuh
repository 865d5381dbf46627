// Fused multi-head attention over per-query key ranges (GLM's prefix mask, packed segments, a
// key/value cache), flash style: scores are computed a tile of keys at a time with an online
// softmax, never as an [L, L] matrix. Dropout on the probabilities uses counterHash32 with
// stream = dropout.stream + b·heads + h and element i·keys + j, exactly as the reference.
//
// Forward:  one thread per query, q and the output accumulator in registers, K/V tiles in
//           shared memory (every thread reads the same key row: broadcast, no bank conflicts).
// Backward: Δ_i = dOut_i · out_i first; then dq with one thread per query (keys streamed) and
//           dk/dv with one thread per key (queries streamed). No atomics: deterministic.
#pragma once
#include "common.cuh"
#include "kernels.cuh"

struct AttnView {
  FPtr base;  // tensor + offset (f32 or bf16)
  long long batchStride, rowStride;
  __device__ FPtr at(int b, int t) const { return base + ((long long)b * batchStride + (long long)t * rowStride); }
};

/** Checks 0 ≤ keyStart < keyEnd ≤ keys for every (b, i); kernels skip bad queries. */
__global__ void checkKeyRangesKernel(const int* keyStart, const int* keyEnd, int n, int keys, DeviceErrorRecord* err) {
  for (int e = blockIdx.x * blockDim.x + threadIdx.x; e < n; e += gridDim.x * blockDim.x) {
    const int s = keyStart[e], t = keyEnd[e];
    if (s < 0) reportDeviceError(err, ERR_KEY_START, e, s, keys);
    else if (t > keys) reportDeviceError(err, ERR_KEY_END, e, t, keys);
    else if (t <= s) reportDeviceError(err, ERR_KEY_EMPTY, e, s, t);
  }
}

__host__ __device__ inline bool rangeOk(int s, int t, int keys) { return s >= 0 && t <= keys && t > s; }

/** The union [min start, max end) of the valid key ranges of queries [q0, q0 + rows) (rows ≤ blockDim.x); every thread calls it. */
__device__ inline void blockKeyRange(const int* keyStart, const int* keyEnd, int b, int q0, int rows, int Lq, int Lk, int* range) {
  if (threadIdx.x == 0) {
    range[0] = INT_MAX;
    range[1] = INT_MIN;
  }
  __syncthreads();
  if (threadIdx.x < rows) {
    const int i = q0 + threadIdx.x;
    if (i < Lq) {
      const int s = keyStart[b * Lq + i], e = keyEnd[b * Lq + i];
      if (rangeOk(s, e, Lk)) {
        atomicMin(&range[0], s);
        atomicMax(&range[1], e);
      }
    }
  }
  __syncthreads();
}

constexpr int ATT_QUERIES = 64;  // queries per block (forward, dq)
constexpr int ATT_KTILE = 32;    // keys per shared tile

struct AttnShape {
  int B, Lq, Lk, heads, D;
  float scale;
};

template <int DMAX>
__global__ void __launch_bounds__(ATT_QUERIES) attentionForwardKernel(AttnView q, AttnView k, AttnView v, const int* keyStart, const int* keyEnd, FPtr out,
                                                                      float* lseOut, AttnShape s, Dropout drop) {
  __shared__ float Ks[ATT_KTILE][DMAX];
  __shared__ float Vs[ATT_KTILE][DMAX];
  __shared__ int range[2];
  const int b = blockIdx.z, h = blockIdx.y, i = blockIdx.x * ATT_QUERIES + threadIdx.x;
  const int D = s.D, W = s.heads * s.D;
  const uint32_t stream = drop.stream + (uint32_t)(b * s.heads + h);

  int start = 0, end = 0;
  bool active = false;
  if (i < s.Lq) {
    start = keyStart[b * s.Lq + i];
    end = keyEnd[b * s.Lq + i];
    active = rangeOk(start, end, s.Lk);
  }
  blockKeyRange(keyStart, keyEnd, b, blockIdx.x * ATT_QUERIES, ATT_QUERIES, s.Lq, s.Lk, range);
  const int kMin = range[0], kMax = range[1];

  float qr[DMAX], acc[DMAX];
  const FPtr qp = active ? q.at(b, i) + h * D : FPtr();
#pragma unroll
  for (int d = 0; d < DMAX; d++) {
    qr[d] = (active && d < D) ? qp[d] : 0.f;
    acc[d] = 0.f;
  }
  float m = -INFINITY, l = 0.f;

  for (int kb = kMin; kb < kMax; kb += ATT_KTILE) {
    __syncthreads();
    for (int e = threadIdx.x; e < ATT_KTILE * DMAX; e += blockDim.x) {
      const int jj = e / DMAX, d = e % DMAX, j = kb + jj;
      const bool in = j < s.Lk && d < D;
      Ks[jj][d] = in ? k.at(b, j)[h * D + d] : 0.f;
      Vs[jj][d] = in ? v.at(b, j)[h * D + d] : 0.f;
    }
    __syncthreads();
    if (!active) continue;
    float sc[ATT_KTILE];
    float tileMax = -INFINITY;
#pragma unroll
    for (int jj = 0; jj < ATT_KTILE; jj++) {
      const int j = kb + jj;
      if (j >= start && j < end) {
        float dot = 0.f;
#pragma unroll
        for (int d = 0; d < DMAX; d++) dot = fmaf(qr[d], Ks[jj][d], dot);
        sc[jj] = s.scale * dot;
        tileMax = fmaxf(tileMax, sc[jj]);
      } else {
        sc[jj] = -INFINITY;
      }
    }
    if (tileMax == -INFINITY) continue;
    const float newMax = fmaxf(m, tileMax);
    const float correction = expf(m - newMax);
    l *= correction;
#pragma unroll
    for (int d = 0; d < DMAX; d++) acc[d] *= correction;
#pragma unroll
    for (int jj = 0; jj < ATT_KTILE; jj++) {
      if (sc[jj] == -INFINITY) continue;
      const float p = expf(sc[jj] - newMax);
      l += p;
      const float pk = p * (float)dropoutFactor(drop, stream, (uint32_t)(i * s.Lk + kb + jj));
      if (pk == 0.f) continue;
#pragma unroll
      for (int d = 0; d < DMAX; d++) acc[d] = fmaf(pk, Vs[jj][d], acc[d]);
    }
    m = newMax;
  }
  if (i >= s.Lq) return;
  const FPtr o = out + (((long long)b * s.Lq + i) * W + h * D);
  const float inv = active ? 1.f / l : 0.f;
#pragma unroll
  for (int d = 0; d < DMAX; d++)
    if (d < D) o[d] = acc[d] * inv;
  if (lseOut) lseOut[((long long)b * s.heads + h) * s.Lq + i] = active ? m + logf(l) : 0.f;
}

/**
 * Forward for few queries (decoding with a key/value cache: Lq ≤ ATT_DECODE_MAX_QUERIES): one
 * block per (query, head, row) spreads the keys over its threads instead of giving each query one
 * thread. Pass 1: the largest score; pass 2, a chunk of keys at a time: probabilities (with
 * dropout) into shared memory, then threads d < D add Σ p·v[d] in key order. Same results as
 * attentionForwardKernel up to f32 summation order; deterministic.
 */
constexpr int ATT_DECODE_MAX_QUERIES = 16;
constexpr int ATT_DECODE_THREADS = 128;
constexpr int ATT_DECODE_CHUNK = 1024;

template <int DMAX>
__global__ void __launch_bounds__(ATT_DECODE_THREADS) attentionDecodeKernel(AttnView q, AttnView k, AttnView v, const int* keyStart, const int* keyEnd, FPtr out,
                                                                           float* lseOut, AttnShape s, Dropout drop) {
  __shared__ float qs[DMAX];
  __shared__ float p[ATT_DECODE_CHUNK];
  __shared__ float red[32];
  const int i = blockIdx.x, h = blockIdx.y, b = blockIdx.z;
  const int D = s.D, W = s.heads * s.D;
  const uint32_t stream = drop.stream + (uint32_t)(b * s.heads + h);
  const int start = keyStart[b * s.Lq + i], end = keyEnd[b * s.Lq + i];
  const FPtr o = out + (((long long)b * s.Lq + i) * W + h * D);
  if (!rangeOk(start, end, s.Lk)) {  // reported by checkKeyRangesKernel; the row is zero
    for (int d = threadIdx.x; d < D; d += blockDim.x) o[d] = 0.f;
    if (lseOut && threadIdx.x == 0) lseOut[((long long)b * s.heads + h) * s.Lq + i] = 0.f;
    return;
  }
  for (int d = threadIdx.x; d < DMAX; d += blockDim.x) qs[d] = d < D ? (float)q.at(b, i)[h * D + d] : 0.f;
  __syncthreads();
  auto score = [&](int j) {
    const FPtr kr = k.at(b, j) + h * D;
    float dot = 0.f;
#pragma unroll
    for (int d = 0; d < DMAX; d++)
      if (d < D) dot = fmaf(qs[d], kr[d], dot);
    return s.scale * dot;
  };
  float m = -INFINITY;
  for (int j = start + threadIdx.x; j < end; j += blockDim.x) m = fmaxf(m, score(j));
  m = blockMax(m, red, -INFINITY);
  float l = 0.f, acc = 0.f;  // acc: output dim threadIdx.x (threads < D)
  for (int c0 = start; c0 < end; c0 += ATT_DECODE_CHUNK) {
    const int c1 = min(end, c0 + ATT_DECODE_CHUNK);
    for (int j = c0 + threadIdx.x; j < c1; j += blockDim.x) {
      const float pj = expf(score(j) - m);
      l += pj;
      p[j - c0] = pj * (float)dropoutFactor(drop, stream, (uint32_t)(i * s.Lk + j));
    }
    __syncthreads();
    if (threadIdx.x < D)
      for (int j = c0; j < c1; j++) acc = fmaf(p[j - c0], v.at(b, j)[h * D + threadIdx.x], acc);
    __syncthreads();
  }
  l = blockSum(l, red);
  if (threadIdx.x < D) o[threadIdx.x] = acc / l;
  if (lseOut && threadIdx.x == 0) lseOut[((long long)b * s.heads + h) * s.Lq + i] = m + logf(l);
}

constexpr int ATT_SPLIT_KEYS = 128;  // keys (and threads) per block of the split decode kernel

/** Keys [c0, c1) of split `sp` of a query's range [start, end) (c1 = c0: past its end, or no valid range). */
__host__ __device__ inline void decodeSplitKeys(int start, int end, int keys, int sp, int* c0, int* c1) {
  *c0 = start + sp * ATT_SPLIT_KEYS;
  const int last = *c0 + ATT_SPLIT_KEYS;
  *c1 = rangeOk(start, end, keys) ? (end < last ? end : last) : *c0;
}

/**
 * Decode attention split over the keys (flash-decoding; decodeAttention 'split', the default:
 * blank filling 489 vs 452 tokens/s on an H200 against the one-block kernel): block (sp, i·heads + h, b) takes keys [start + 128·sp, …) of query (b, i),
 * head h — one key per thread for the scores, then each thread one output dim over every G-th key
 * (G = 128 / DMAX groups, added in group order) — and writes its partial
 * part[((b·Lq + i)·heads + h)·splits + sp] = [max m, Σ exp l (without dropout), Σ p·v[0..DMAX)].
 * attentionDecodeCombineKernel merges the splits in order. Same dropout elements as the one-block
 * kernel; with one split the arithmetic is the same up to the order of the sums.
 */
template <int DMAX>
__global__ void __launch_bounds__(ATT_SPLIT_KEYS) attentionDecodeSplitKernel(AttnView q, AttnView k, AttnView v, const int* keyStart, const int* keyEnd,
                                                                           float* part, int splits, AttnShape s, Dropout drop) {
  constexpr int G = ATT_SPLIT_KEYS / DMAX;
  __shared__ float qs[DMAX];
  __shared__ float p[ATT_SPLIT_KEYS];
  __shared__ float red[32];
  __shared__ float accG[G][DMAX];
  const int sp = blockIdx.x, i = blockIdx.y / s.heads, h = blockIdx.y % s.heads, b = blockIdx.z;
  const int D = s.D, t = threadIdx.x;
  const uint32_t stream = drop.stream + (uint32_t)(b * s.heads + h);
  const int start = keyStart[b * s.Lq + i], end = keyEnd[b * s.Lq + i];
  float* out = part + ((((long long)b * s.Lq + i) * s.heads + h) * splits + sp) * (DMAX + 2);
  int c0, c1;
  decodeSplitKeys(start, end, s.Lk, sp, &c0, &c1);
  if (c0 >= c1) {  // no key of this query here (or no valid range): an empty partial (the whole block)
    if (t == 0) {
      out[0] = -INFINITY;
      out[1] = 0.f;
    }
    for (int d = t; d < DMAX; d += blockDim.x) out[2 + d] = 0.f;
    return;
  }
  const int n = c1 - c0;
  for (int d = t; d < DMAX; d += blockDim.x) qs[d] = d < D ? (float)q.at(b, i)[h * D + d] : 0.f;
  __syncthreads();
  float score = -INFINITY;
  if (t < n) {
    const FPtr kr = k.at(b, c0 + t) + h * D;
    float dot = 0.f;
#pragma unroll
    for (int d = 0; d < DMAX; d++)
      if (d < D) dot = fmaf(qs[d], kr[d], dot);
    score = s.scale * dot;
  }
  const float m = blockMax(score, red, -INFINITY);
  const float e = t < n ? expf(score - m) : 0.f;
  const float l = blockSum(e, red);
  p[t] = t < n ? e * (float)dropoutFactor(drop, stream, (uint32_t)(i * s.Lk + c0 + t)) : 0.f;
  __syncthreads();
  const int d = t % DMAX, g = t / DMAX;
  float a0 = 0.f, a1 = 0.f, a2 = 0.f, a3 = 0.f;  // four keys in flight per thread
  if (d < D) {
    const long long col = (long long)h * D + d;
    int j = g;
    for (; j + 3 * G < n; j += 4 * G) {
      a0 = fmaf(p[j], v.at(b, c0 + j)[col], a0);
      a1 = fmaf(p[j + G], v.at(b, c0 + j + G)[col], a1);
      a2 = fmaf(p[j + 2 * G], v.at(b, c0 + j + 2 * G)[col], a2);
      a3 = fmaf(p[j + 3 * G], v.at(b, c0 + j + 3 * G)[col], a3);
    }
    for (; j < n; j += G) a0 = fmaf(p[j], v.at(b, c0 + j)[col], a0);
  }
  accG[g][d] = (a0 + a1) + (a2 + a3);
  __syncthreads();
  if (g == 0) {
    float acc = 0.f;
#pragma unroll
    for (int gg = 0; gg < G; gg++) acc += accG[gg][d];
    out[2 + d] = acc;
  }
  if (t == 0) {
    out[0] = m;
    out[1] = l;
  }
}

/** Block (i·heads + h, b), DMAX threads: out and lse of query (b, i), head h from its splits' partials, merged in split order. */
template <int DMAX>
__global__ void __launch_bounds__(DMAX) attentionDecodeCombineKernel(const float* part, int splits, const int* keyStart, const int* keyEnd, FPtr out, float* lseOut,
                                                                    AttnShape s) {
  const int i = blockIdx.x / s.heads, h = blockIdx.x % s.heads, b = blockIdx.y, d = threadIdx.x;
  const float* pp = part + (((long long)b * s.Lq + i) * s.heads + h) * splits * (DMAX + 2);
  const FPtr o = out + (((long long)b * s.Lq + i) * s.heads * s.D + (long long)h * s.D);
  const long long lseAt = ((long long)b * s.heads + h) * s.Lq + i;
  if (!rangeOk(keyStart[b * s.Lq + i], keyEnd[b * s.Lq + i], s.Lk)) {  // reported by checkKeyRangesKernel; the row is zero
    if (d < s.D) o[d] = 0.f;
    if (lseOut && d == 0) lseOut[lseAt] = 0.f;
    return;
  }
  float M = -INFINITY;
  for (int sp = 0; sp < splits; sp++) M = fmaxf(M, pp[sp * (DMAX + 2)]);
  float L = 0.f, acc = 0.f;
  for (int sp = 0; sp < splits; sp++) {
    const float* x = pp + sp * (DMAX + 2);
    if (x[0] == -INFINITY) continue;  // an empty split
    const float w = expf(x[0] - M);
    L = fmaf(x[1], w, L);
    acc = fmaf(x[2 + d], w, acc);
  }
  if (d < s.D) o[d] = acc / L;
  if (lseOut && d == 0) lseOut[lseAt] = M + logf(L);
}

/** delta[b, h, i] = Σ_d dOut[b, i, h·D + d] · out[b, i, h·D + d] (one warp per (b, i, h)). */
__global__ void attentionDeltaKernel(FPtr dOut, FPtr out, float* delta, AttnShape s) {
  const long long warp = ((long long)blockIdx.x * blockDim.x + threadIdx.x) / 32;
  const int lane = threadIdx.x & 31;
  const long long total = (long long)s.B * s.heads * s.Lq;
  if (warp >= total) return;
  const int i = (int)(warp % s.Lq), h = (int)((warp / s.Lq) % s.heads), b = (int)(warp / ((long long)s.Lq * s.heads));
  const long long base = ((long long)b * s.Lq + i) * s.heads * s.D + (long long)h * s.D;
  double sum = 0;
  for (int d = lane; d < s.D; d += 32) sum += (double)dOut[base + d] * out[base + d];
  sum = warpSum(sum);
  if (lane == 0) delta[warp] = (float)sum;  // warp = (b·heads + h)·Lq + i
}

template <int DMAX>
__global__ void __launch_bounds__(ATT_QUERIES) attentionBackwardDqKernel(FPtr dOut, AttnView q, AttnView k, AttnView v, const float* lse,
                                                                         const float* delta, const int* keyStart, const int* keyEnd, AttnView dq, AttnShape s,
                                                                         Dropout drop) {
  __shared__ float Ks[ATT_KTILE][DMAX];
  __shared__ float Vs[ATT_KTILE][DMAX];
  __shared__ int range[2];
  const int b = blockIdx.z, h = blockIdx.y, i = blockIdx.x * ATT_QUERIES + threadIdx.x;
  const int D = s.D, W = s.heads * s.D;
  const uint32_t stream = drop.stream + (uint32_t)(b * s.heads + h);

  int start = 0, end = 0;
  bool active = false;
  if (i < s.Lq) {
    start = keyStart[b * s.Lq + i];
    end = keyEnd[b * s.Lq + i];
    active = rangeOk(start, end, s.Lk);
  }
  blockKeyRange(keyStart, keyEnd, b, blockIdx.x * ATT_QUERIES, ATT_QUERIES, s.Lq, s.Lk, range);
  const int kMin = range[0], kMax = range[1];

  float qr[DMAX], gr[DMAX], dqr[DMAX];
  const long long row = ((long long)b * s.Lq + i) * W + h * D;
#pragma unroll
  for (int d = 0; d < DMAX; d++) {
    qr[d] = (active && d < D) ? q.at(b, i)[h * D + d] : 0.f;
    gr[d] = (active && d < D) ? dOut[row + d] : 0.f;
    dqr[d] = 0.f;
  }
  const float lseI = active ? lse[((long long)b * s.heads + h) * s.Lq + i] : 0.f;
  const float deltaI = active ? delta[((long long)b * s.heads + h) * s.Lq + i] : 0.f;

  for (int kb = kMin; kb < kMax; kb += ATT_KTILE) {
    __syncthreads();
    for (int e = threadIdx.x; e < ATT_KTILE * DMAX; e += blockDim.x) {
      const int jj = e / DMAX, d = e % DMAX, j = kb + jj;
      const bool in = j < s.Lk && d < D;
      Ks[jj][d] = in ? k.at(b, j)[h * D + d] : 0.f;
      Vs[jj][d] = in ? v.at(b, j)[h * D + d] : 0.f;
    }
    __syncthreads();
    if (!active) continue;
    for (int jj = 0; jj < ATT_KTILE; jj++) {
      const int j = kb + jj;
      if (j < start || j >= end) continue;
      float dot = 0.f, gv = 0.f;
#pragma unroll
      for (int d = 0; d < DMAX; d++) {
        dot = fmaf(qr[d], Ks[jj][d], dot);
        gv = fmaf(gr[d], Vs[jj][d], gv);
      }
      const float p = expf(s.scale * dot - lseI);
      const float c = (float)dropoutFactor(drop, stream, (uint32_t)(i * s.Lk + j));
      const float ds = s.scale * p * (c * gv - deltaI);
#pragma unroll
      for (int d = 0; d < DMAX; d++) dqr[d] = fmaf(ds, Ks[jj][d], dqr[d]);
    }
  }
  if (i >= s.Lq) return;
  const FPtr o = dq.at(b, i) + h * D;
#pragma unroll
  for (int d = 0; d < DMAX; d++)
    if (d < D) o[d] = dqr[d];
}

template <int DMAX>
struct DkDvConfig {
  static constexpr int KEYS = DMAX <= 64 ? 64 : 32;    // keys (threads) per block
  static constexpr int QTILE = DMAX <= 64 ? 16 : 8;  // queries per shared tile
};

template <int DMAX>
__global__ void __launch_bounds__(DkDvConfig<DMAX>::KEYS) attentionBackwardDkDvKernel(FPtr dOut, AttnView q, AttnView k, AttnView v, const float* lse,
                                                                                    const float* delta, const int* keyStart, const int* keyEnd, AttnView dk,
                                                                                    AttnView dv, AttnShape s, Dropout drop) {
  constexpr int KEYS = DkDvConfig<DMAX>::KEYS, QT = DkDvConfig<DMAX>::QTILE;
  __shared__ float Kmine[KEYS][DMAX + 1];  // this thread's key row (padded: no bank conflicts)
  __shared__ float Vmine[KEYS][DMAX + 1];
  __shared__ float Qs[QT][DMAX];
  __shared__ float Gs[QT][DMAX];
  __shared__ float lseS[QT], deltaS[QT];
  __shared__ int startS[QT], endS[QT];
  __shared__ int anyOverlap;
  const int b = blockIdx.z, h = blockIdx.y, j0 = blockIdx.x * KEYS, j = j0 + threadIdx.x;
  const int D = s.D, W = s.heads * s.D;
  const int jLast = min(s.Lk, j0 + KEYS) - 1;
  const uint32_t stream = drop.stream + (uint32_t)(b * s.heads + h);
  const bool mine = j < s.Lk;
  for (int d = 0; d < DMAX; d++) {
    Kmine[threadIdx.x][d] = (mine && d < D) ? k.at(b, j)[h * D + d] : 0.f;
    Vmine[threadIdx.x][d] = (mine && d < D) ? v.at(b, j)[h * D + d] : 0.f;
  }
  float dkr[DMAX], dvr[DMAX];
#pragma unroll
  for (int d = 0; d < DMAX; d++) dkr[d] = dvr[d] = 0.f;

  for (int i0 = 0; i0 < s.Lq; i0 += QT) {
    __syncthreads();
    if (threadIdx.x == 0) anyOverlap = 0;
    __syncthreads();
    if (threadIdx.x < QT) {
      const int i = i0 + threadIdx.x;
      int st = 0, en = 0;
      if (i < s.Lq) {
        st = keyStart[b * s.Lq + i];
        en = keyEnd[b * s.Lq + i];
        if (!rangeOk(st, en, s.Lk)) st = en = 0;
      }
      startS[threadIdx.x] = st;
      endS[threadIdx.x] = en;
      const long long li = ((long long)b * s.heads + h) * s.Lq + i;
      lseS[threadIdx.x] = i < s.Lq ? lse[li] : 0.f;
      deltaS[threadIdx.x] = i < s.Lq ? delta[li] : 0.f;
      if (st <= jLast && en > j0 && en > st) atomicOr(&anyOverlap, 1);
    }
    __syncthreads();
    if (!anyOverlap) continue;
    for (int e = threadIdx.x; e < QT * DMAX; e += blockDim.x) {
      const int ii = e / DMAX, d = e % DMAX, i = i0 + ii;
      const bool in = i < s.Lq && d < D;
      Qs[ii][d] = in ? q.at(b, i)[h * D + d] : 0.f;
      Gs[ii][d] = in ? dOut[((long long)b * s.Lq + i) * W + h * D + d] : 0.f;
    }
    __syncthreads();
    if (!mine) continue;
    for (int ii = 0; ii < QT; ii++) {
      if (j < startS[ii] || j >= endS[ii]) continue;
      const int i = i0 + ii;
      float dot = 0.f, gv = 0.f;
#pragma unroll
      for (int d = 0; d < DMAX; d++) {
        dot = fmaf(Kmine[threadIdx.x][d], Qs[ii][d], dot);
        gv = fmaf(Vmine[threadIdx.x][d], Gs[ii][d], gv);
      }
      const float p = expf(s.scale * dot - lseS[ii]);
      const float c = (float)dropoutFactor(drop, stream, (uint32_t)(i * s.Lk + j));
      const float pc = p * c;
      const float ds = s.scale * p * (c * gv - deltaS[ii]);
#pragma unroll
      for (int d = 0; d < DMAX; d++) {
        dvr[d] = fmaf(pc, Gs[ii][d], dvr[d]);
        dkr[d] = fmaf(ds, Qs[ii][d], dkr[d]);
      }
    }
  }
  if (!mine) return;
  const FPtr ko = dk.at(b, j) + h * D;
  const FPtr vo = dv.at(b, j) + h * D;
#pragma unroll
  for (int d = 0; d < DMAX; d++) {
    if (d < D) {
      ko[d] = dkr[d];
      vo[d] = dvr[d];
    }
  }
}
