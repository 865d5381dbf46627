// Shared pieces of the CUDA backend: error type, the device-side error record, the dropout hash
// (bit-identical to counterHash32 in @blankglm/tensor random.ts) and block reductions.
#pragma once
#include <cuda_runtime.h>
#include <cuda_bf16.h>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>

/** An error with a machine-readable code; the Node-API layer throws it as a JS Error with `code`. */
struct GpuError : std::runtime_error {
  std::string code;
  GpuError(std::string c, const std::string& message) : std::runtime_error(message), code(std::move(c)) {}
};

inline void cudaCheck(cudaError_t e, const char* what) {
  if (e == cudaSuccess) return;
  std::string msg = std::string(what) + ": " + cudaGetErrorName(e) + " (" + cudaGetErrorString(e) + ")";
  if (e == cudaErrorIllegalAddress || e == cudaErrorLaunchFailure || e == cudaErrorAssert) {
    msg += "; the CUDA context is now unusable, restart the process";
  }
  throw GpuError(cudaGetErrorName(e), msg);
}
#define CK(call) cudaCheck((call), #call)
#define CK_LAUNCH(what) cudaCheck(cudaGetLastError(), what)

/**
 * Bad input found by a kernel (an id past its table, an empty key range). Kernels skip the bad
 * element and record the first one here (device memory); the host copies it back when it
 * synchronises and throws a message naming the op, the argument and the index.
 */
struct DeviceErrorRecord {
  int flag;
  int what;  // index into DEVICE_ERROR_KINDS (addon.cu)
  long long index;
  long long value;
  long long limit;
};

__device__ inline void reportDeviceError(DeviceErrorRecord* rec, int what, long long index, long long value, long long limit) {
  if (atomicCAS(&rec->flag, 0, 1) == 0) {
    rec->what = what;
    rec->index = index;
    rec->value = value;
    rec->limit = limit;
  }
}

// ---- the dropout hash: counterHash32(seed, stream, index) of random.ts ----
__host__ __device__ inline uint32_t fmix32(uint32_t h) {
  h = (h ^ (h >> 16)) * 0x85ebca6bu;
  h = (h ^ (h >> 13)) * 0xc2b2ae35u;
  return h ^ (h >> 16);
}

__host__ __device__ inline uint32_t counterHash32(uint32_t seed, uint32_t stream, uint32_t index) {
  uint32_t h = fmix32(seed ^ (stream * 0x9e3779b1u));
  return fmix32(h ^ (index * 0x85ebca77u) ^ 0xc2b2ae3du);
}

/**
 * Dropout attributes as kernels use them. An element is dropped when counterUniform < p, i.e.
 * hash / 2^32 < p, i.e. hash < ceil(p · 2^32) (exact: the scaling by 2^32 is exact in f64).
 */
struct Dropout {
  bool active;         // p > 0
  uint64_t threshold;  // ceil(p · 2^32)
  double keepScale;    // 1 / (1 − p)
  uint32_t seed;
  uint32_t stream;
};

__host__ __device__ inline double dropoutFactor(const Dropout& d, uint32_t stream, uint32_t element) {
  if (!d.active) return 1.0;
  return (uint64_t)counterHash32(d.seed, stream, element) < d.threshold ? 0.0 : d.keepScale;
}

/** Dropout from its wire words (p, seed, stream); seeds and streams wrap to 32 bits as in JS. */
inline Dropout dropoutFromWords(const double* w) {
  const double p = w[0];
  Dropout d;
  d.active = p > 0;
  d.threshold = (uint64_t)std::ceil(p * 4294967296.0);
  d.keepScale = p > 0 ? 1.0 / (1.0 - p) : 1.0;
  d.seed = (uint32_t)(int64_t)w[1];
  d.stream = (uint32_t)(int64_t)w[2];
  return d;
}

// ---- reductions (fixed order: results do not depend on timing) ----
template <typename T>
__device__ inline T warpSum(T v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

template <typename T>
__device__ inline T warpMax(T v) {
  for (int o = 16; o > 0; o >>= 1) v = max(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

/** Sum over the block (blockDim.x a multiple of 32, ≤ 1024); every thread gets the result. */
template <typename T>
__device__ inline T blockSum(T v, T* shared /* [32] */) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  v = warpSum(v);
  __syncthreads();
  if (lane == 0) shared[warp] = v;
  __syncthreads();
  T total = lane < warps ? shared[lane] : T(0);
  total = warpSum(total);
  return total;
}

template <typename T>
__device__ inline T blockMax(T v, T* shared /* [32] */, T lowest) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  v = warpMax(v);
  __syncthreads();
  if (lane == 0) shared[warp] = v;
  __syncthreads();
  T total = lane < warps ? shared[lane] : lowest;
  total = warpMax(total);
  return total;
}

inline unsigned blocksFor(long long n, int threads, long long cap = 65535LL * 16) {
  long long b = (n + threads - 1) / threads;
  if (b < 1) b = 1;
  return (unsigned)(b > cap ? cap : b);
}

// ---- float tensors of either storage type (f32 or bf16), read and written as float ----
// A kernel takes FPtr arguments and indexes them like float pointers: `x[i]` reads a float
// (bf16 widened exactly), `x[i] = v` stores v (rounded to nearest-even for bf16). The storage
// flag is uniform over a launch, so the branch costs nothing measurable in memory-bound kernels,
// and the f32 path computes exactly what it did with plain float pointers.
struct FRef {
  void* p;
  bool bf;
  long long i;
  __device__ operator float() const { return bf ? __bfloat162float(((const __nv_bfloat16*)p)[i]) : ((const float*)p)[i]; }
  __device__ const FRef& operator=(float v) const {
    if (bf) ((__nv_bfloat16*)p)[i] = __float2bfloat16_rn(v);
    else ((float*)p)[i] = v;
    return *this;
  }
};

/** Typed element access for kernels templated on the storage type (float or __nv_bfloat16); same conversions as FRef. */
__device__ inline float loadAsFloat(const float* p, long long i) { return p[i]; }
__device__ inline float loadAsFloat(const __nv_bfloat16* p, long long i) { return __bfloat162float(p[i]); }
__device__ inline void storeFloat(float* p, long long i, float v) { p[i] = v; }
__device__ inline void storeFloat(__nv_bfloat16* p, long long i, float v) { p[i] = __float2bfloat16_rn(v); }

struct FPtr {
  void* p = nullptr;
  bool bf = false;
  __host__ __device__ FPtr() {}
  __host__ __device__ FPtr(void* ptr, bool isBf16) : p(ptr), bf(isBf16) {}
  __host__ __device__ FPtr(float* ptr) : p(ptr), bf(false) {}
  __device__ FRef operator[](long long i) const { return FRef{p, bf, i}; }
  __host__ __device__ FPtr operator+(long long o) const { return FPtr(bf ? (void*)((__nv_bfloat16*)p + o) : (void*)((float*)p + o), bf); }
  __host__ __device__ explicit operator bool() const { return p != nullptr; }
  __host__ __device__ int bytes() const { return bf ? 2 : 4; }
};
