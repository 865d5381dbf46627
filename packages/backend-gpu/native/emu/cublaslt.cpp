// A CPU cuBLASLt for the CUDA emulator (emu.h): the entry points gemm.cuh loads, computing the
// column-major product D = alpha · op(A) · op(B) + beta · C with the epilogues the addon asks for
// (BIAS, GELU_AUX, GELU_AUX_BIAS; GELU is the tanh form), bf16 or f32 operands, f32 accumulation.
// Built by scripts/build-emu.mjs into build/emu/libcublasLt-emu.so; never used with a real GPU.
#include <cuda_bf16.h>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

namespace {
enum : int { R_32F = 0, R_16BF = 14 };
enum : int { DESC_TRANSA = 3, DESC_TRANSB = 4, DESC_EPILOGUE = 7, DESC_BIAS_POINTER = 8, DESC_AUX_POINTER = 11, DESC_AUX_LD = 12 };
enum : uint32_t { EPI_DEFAULT = 1, EPI_BIAS = 4, EPI_GELU_AUX = 160, EPI_GELU_AUX_BIAS = 164 };
enum : int { OK = 0, INVALID_VALUE = 7, NOT_SUPPORTED = 15 };

struct Desc {
  int transA = 0, transB = 0;
  uint32_t epilogue = EPI_DEFAULT;
  const void* bias = nullptr;
  void* aux = nullptr;
  int64_t auxLd = 0;
};
struct Layout {
  int type;
  uint64_t rows, cols;
  int64_t ld;
};

// bf16 conversions as the kernels do them (cuda_bf16.h's host versions: round to nearest even).
float load(const void* p, int type, size_t i) {
  return type == R_32F ? ((const float*)p)[i] : __bfloat162float(((const __nv_bfloat16*)p)[i]);
}
void store(void* p, int type, size_t i, float v) {
  if (type == R_32F) ((float*)p)[i] = v;
  else ((__nv_bfloat16*)p)[i] = __float2bfloat16_rn(v);
}
float geluTanh(float z) {
  const float k = 0.7978845608028654f;
  return 0.5f * z * (1.f + tanhf(k * (z + 0.044715f * z * z * z)));
}
}  // namespace

extern "C" {
__attribute__((visibility("default"))) int cublasLtCreate(void** h) {
  static int handle;
  *h = &handle;
  return OK;
}
__attribute__((visibility("default"))) int cublasLtDestroy(void*) { return OK; }
__attribute__((visibility("default"))) size_t cublasLtGetVersion() { return 130000; }
__attribute__((visibility("default"))) int cublasLtMatmulDescCreate(Desc** d, int, int) {
  *d = new Desc();
  return OK;
}
__attribute__((visibility("default"))) int cublasLtMatmulDescDestroy(Desc* d) {
  delete d;
  return OK;
}
__attribute__((visibility("default"))) int cublasLtMatmulDescSetAttribute(Desc* d, int attr, const void* buf, size_t size) {
  switch (attr) {
    case DESC_TRANSA: memcpy(&d->transA, buf, 4); return OK;
    case DESC_TRANSB: memcpy(&d->transB, buf, 4); return OK;
    case DESC_EPILOGUE:
      memcpy(&d->epilogue, buf, 4);
      return d->epilogue == EPI_DEFAULT || d->epilogue == EPI_BIAS || d->epilogue == EPI_GELU_AUX || d->epilogue == EPI_GELU_AUX_BIAS ? OK : NOT_SUPPORTED;
    case DESC_BIAS_POINTER: memcpy(&d->bias, buf, sizeof(void*)); return OK;
    case DESC_AUX_POINTER: memcpy(&d->aux, buf, sizeof(void*)); return OK;
    case DESC_AUX_LD: memcpy(&d->auxLd, buf, size < 8 ? size : 8); return OK;
    default: return INVALID_VALUE;
  }
}
__attribute__((visibility("default"))) int cublasLtMatrixLayoutCreate(Layout** l, int type, uint64_t rows, uint64_t cols, int64_t ld) {
  if (type != R_32F && type != R_16BF) return NOT_SUPPORTED;
  if (ld < (int64_t)rows) return INVALID_VALUE;
  *l = new Layout{type, rows, cols, ld};
  return OK;
}
__attribute__((visibility("default"))) int cublasLtMatrixLayoutDestroy(Layout* l) {
  delete l;
  return OK;
}
__attribute__((visibility("default"))) int cublasLtMatmulPreferenceCreate(void** p) {
  *p = new char[64];
  return OK;
}
__attribute__((visibility("default"))) int cublasLtMatmulPreferenceDestroy(void* p) {
  delete[] (char*)p;
  return OK;
}
__attribute__((visibility("default"))) int cublasLtMatmulPreferenceSetAttribute(void*, int, const void*, size_t) { return OK; }
__attribute__((visibility("default"))) int cublasLtMatmulAlgoGetHeuristic(void*, Desc*, Layout*, Layout*, Layout*, Layout*, void*, int requested, void* results,
                                                                           int* found) {
  if (requested < 1) return INVALID_VALUE;
  memset(results, 0, 96);  // one cublasLtMatmulHeuristicResult_t (64-byte algo, size_t, int, float, int[4])
  *found = 1;
  return OK;
}
__attribute__((visibility("default"))) int cublasLtMatmul(void*, Desc* d, const void* alphaP, const void* A, Layout* la, const void* B, Layout* lb,
                                                          const void* betaP, const void* C, Layout* lc, void* D, Layout* ld, const void*, void*, size_t,
                                                          void*) {
  const float alpha = *(const float*)alphaP, beta = *(const float*)betaP;
  // op(A) is [m, k], op(B) is [k, n], D is [m, n]; all column-major.
  const uint64_t m = ld->rows, n = ld->cols;
  const uint64_t k = d->transA ? la->rows : la->cols;
  if ((d->transA ? la->cols : la->rows) != m || (d->transB ? lb->cols : lb->rows) != k || (d->transB ? lb->rows : lb->cols) != n) return INVALID_VALUE;
  if (lc->rows != m || lc->cols != n || la->type != lb->type) return INVALID_VALUE;
  std::vector<float> a(m * k), b(n * k), out(m * n);
  for (uint64_t i = 0; i < m; i++)
    for (uint64_t p = 0; p < k; p++) a[i * k + p] = load(A, la->type, d->transA ? p + i * la->ld : i + p * la->ld);
  for (uint64_t j = 0; j < n; j++)
    for (uint64_t p = 0; p < k; p++) b[j * k + p] = load(B, lb->type, d->transB ? j + p * lb->ld : p + j * lb->ld);
  for (uint64_t j = 0; j < n; j++)
    for (uint64_t i = 0; i < m; i++) {
      const float* ar = &a[i * k];
      const float* bc = &b[j * k];
      float part[8] = {};  // eight running sums, so the loop is not one long dependency chain
      uint64_t p = 0;
      for (; p + 8 <= k; p += 8)
        for (int q = 0; q < 8; q++) part[q] = fmaf(ar[p + q], bc[p + q], part[q]);
      for (; p < k; p++) part[0] = fmaf(ar[p], bc[p], part[0]);
      const float s = ((part[0] + part[1]) + (part[2] + part[3])) + ((part[4] + part[5]) + (part[6] + part[7]));
      float v = alpha * s;
      if (beta != 0.f) v += beta * load(C, lc->type, i + j * lc->ld);
      out[i + j * m] = v;
    }
  const bool bias = d->epilogue == EPI_BIAS || d->epilogue == EPI_GELU_AUX_BIAS;
  const bool gelu = d->epilogue == EPI_GELU_AUX || d->epilogue == EPI_GELU_AUX_BIAS;
  if ((bias && !d->bias) || (gelu && (!d->aux || d->auxLd < (int64_t)m))) return INVALID_VALUE;
  for (uint64_t j = 0; j < n; j++)
    for (uint64_t i = 0; i < m; i++) {
      float v = out[i + j * m];
      if (bias) v += load(d->bias, ld->type, i);
      if (gelu) {
        store(d->aux, ld->type, i + j * d->auxLd, v);
        v = geluTanh(v);
      }
      store(D, ld->type, i + j * ld->ld, v);
    }
  return OK;
}
}
