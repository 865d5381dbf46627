// Matrix products: cuBLASLt loaded at run time with dlopen (no cuBLAS headers or libraries are
// needed to build), declaring only the types and entry points used, plus a plain tiled kernel
// used when BLANKGLM_GPU_GEMM=builtin (diagnosis, or a machine without cuBLASLt).
//
// All products here are row-major: C[M, N] = alpha · op(A)[M, K] · op(B)[K, N] + beta · C (+ bias[N]).
// cuBLASLt is column-major, so it computes Cᵀ = op(B)ᵀ · op(A)ᵀ: the operands swap places.
#pragma once
#include <dlfcn.h>
#include <cstring>
#include <string>
#include <unordered_map>
#include <vector>
#include "common.cuh"

// ---- the slice of cublasLt.h we use (values from cublasLt.h / cublas_api.h, CUDA 12 and 13) ----
typedef int cublasStatus_t;
typedef void* cublasLtHandle_t;
struct cublasLtMatmulDescOpaque_t { uint64_t data[32]; };
typedef cublasLtMatmulDescOpaque_t* cublasLtMatmulDesc_t;
struct cublasLtMatrixLayoutOpaque_t { uint64_t data[8]; };
typedef cublasLtMatrixLayoutOpaque_t* cublasLtMatrixLayout_t;
struct cublasLtMatmulPreferenceOpaque_t { uint64_t data[8]; };
typedef cublasLtMatmulPreferenceOpaque_t* cublasLtMatmulPreference_t;
struct cublasLtMatmulAlgo_t { uint64_t data[8]; };
struct cublasLtMatmulHeuristicResult_t {
  cublasLtMatmulAlgo_t algo;
  size_t workspaceSize;
  cublasStatus_t state;
  float wavesCount;
  int reserved[4];
};

enum : int { LT_COMPUTE_32F = 68, LT_COMPUTE_32F_FAST_TF32 = 77 };
enum : int { LT_R_32F = 0, LT_R_16BF = 14 };  // cudaDataType_t
enum : int { LT_OP_N = 0, LT_OP_T = 1 };
enum : int {
  LT_DESC_TRANSA = 3,
  LT_DESC_TRANSB = 4,
  LT_DESC_EPILOGUE = 7,
  LT_DESC_BIAS_POINTER = 8,
  LT_DESC_EPILOGUE_AUX_POINTER = 11,
  LT_DESC_EPILOGUE_AUX_LD = 12,
};
enum : uint32_t { LT_EPILOGUE_DEFAULT = 1, LT_EPILOGUE_BIAS = 4, LT_EPILOGUE_GELU_AUX = 160, LT_EPILOGUE_GELU_AUX_BIAS = 164 };
enum : int {
  LT_PREF_MAX_WORKSPACE_BYTES = 1,
  LT_PREF_MIN_ALIGNMENT_A_BYTES = 5,
  LT_PREF_MIN_ALIGNMENT_B_BYTES = 6,
  LT_PREF_MIN_ALIGNMENT_C_BYTES = 7,
  LT_PREF_MIN_ALIGNMENT_D_BYTES = 8,
};

struct LtApi {
  void* lib = nullptr;
  std::string path;
  size_t version = 0;
  cublasStatus_t (*create)(cublasLtHandle_t*) = nullptr;
  cublasStatus_t (*destroy)(cublasLtHandle_t) = nullptr;
  size_t (*getVersion)() = nullptr;
  cublasStatus_t (*descCreate)(cublasLtMatmulDesc_t*, int computeType, int scaleType) = nullptr;
  cublasStatus_t (*descDestroy)(cublasLtMatmulDesc_t) = nullptr;
  cublasStatus_t (*descSetAttribute)(cublasLtMatmulDesc_t, int attr, const void* buf, size_t size) = nullptr;
  cublasStatus_t (*layoutCreate)(cublasLtMatrixLayout_t*, int type, uint64_t rows, uint64_t cols, int64_t ld) = nullptr;
  cublasStatus_t (*layoutDestroy)(cublasLtMatrixLayout_t) = nullptr;
  cublasStatus_t (*prefCreate)(cublasLtMatmulPreference_t*) = nullptr;
  cublasStatus_t (*prefDestroy)(cublasLtMatmulPreference_t) = nullptr;
  cublasStatus_t (*prefSetAttribute)(cublasLtMatmulPreference_t, int attr, const void* buf, size_t size) = nullptr;
  cublasStatus_t (*heuristic)(cublasLtHandle_t, cublasLtMatmulDesc_t, cublasLtMatrixLayout_t, cublasLtMatrixLayout_t,
                              cublasLtMatrixLayout_t, cublasLtMatrixLayout_t, cublasLtMatmulPreference_t, int,
                              cublasLtMatmulHeuristicResult_t*, int*) = nullptr;
  cublasStatus_t (*matmul)(cublasLtHandle_t, cublasLtMatmulDesc_t, const void* alpha, const void* A, cublasLtMatrixLayout_t,
                           const void* B, cublasLtMatrixLayout_t, const void* beta, const void* C, cublasLtMatrixLayout_t,
                           void* D, cublasLtMatrixLayout_t, const cublasLtMatmulAlgo_t*, void* workspace, size_t workspaceSize,
                           cudaStream_t) = nullptr;
};

inline const char* ltStatusName(cublasStatus_t s) {
  switch (s) {
    case 0: return "CUBLAS_STATUS_SUCCESS";
    case 1: return "CUBLAS_STATUS_NOT_INITIALIZED";
    case 3: return "CUBLAS_STATUS_ALLOC_FAILED";
    case 7: return "CUBLAS_STATUS_INVALID_VALUE";
    case 8: return "CUBLAS_STATUS_ARCH_MISMATCH";
    case 11: return "CUBLAS_STATUS_MAPPING_ERROR";
    case 13: return "CUBLAS_STATUS_EXECUTION_FAILED";
    case 14: return "CUBLAS_STATUS_INTERNAL_ERROR";
    case 15: return "CUBLAS_STATUS_NOT_SUPPORTED";
    case 16: return "CUBLAS_STATUS_LICENSE_ERROR";
    default: return "CUBLAS_STATUS_UNKNOWN";
  }
}

inline void ltCheck(cublasStatus_t s, const char* what) {
  if (s != 0) throw GpuError("GPU_CUBLASLT_ERROR", std::string("cuBLASLt ") + what + " failed: " + ltStatusName(s) + " (" + std::to_string(s) + ")");
}

/**
 * Finds libcublasLt (CUDA 13, then 12): BLANKGLM_CUBLASLT if set, the default library path, then
 * pip's CUDA wheels under the given site-packages folders. Returns "" on success, else what was tried.
 */
inline std::string loadCublasLt(LtApi& api, const std::vector<std::string>& extraDirs) {
  std::vector<std::string> candidates;
  if (const char* env = getenv("BLANKGLM_CUBLASLT")) candidates.push_back(env);
  candidates.push_back("libcublasLt.so.13");
  candidates.push_back("libcublasLt.so.12");
  for (const auto& d : extraDirs) {
    candidates.push_back(d + "/nvidia/cu13/lib/libcublasLt.so.13");
    candidates.push_back(d + "/nvidia/cublas/lib/libcublasLt.so.12");
  }
  std::string tried;
  for (const auto& c : candidates) {
    void* lib = dlopen(c.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
      const char* e = dlerror();
      tried += "\n  " + c + ": " + (e ? e : "not found");
      continue;
    }
    auto sym = [&](const char* name) {
      void* p = dlsym(lib, name);
      if (!p) throw GpuError("GPU_NO_CUBLASLT", c + " has no symbol " + name);
      return p;
    };
    api.lib = lib;
    api.path = c;
    api.create = (decltype(api.create))sym("cublasLtCreate");
    api.destroy = (decltype(api.destroy))sym("cublasLtDestroy");
    api.getVersion = (decltype(api.getVersion))sym("cublasLtGetVersion");
    api.descCreate = (decltype(api.descCreate))sym("cublasLtMatmulDescCreate");
    api.descDestroy = (decltype(api.descDestroy))sym("cublasLtMatmulDescDestroy");
    api.descSetAttribute = (decltype(api.descSetAttribute))sym("cublasLtMatmulDescSetAttribute");
    api.layoutCreate = (decltype(api.layoutCreate))sym("cublasLtMatrixLayoutCreate");
    api.layoutDestroy = (decltype(api.layoutDestroy))sym("cublasLtMatrixLayoutDestroy");
    api.prefCreate = (decltype(api.prefCreate))sym("cublasLtMatmulPreferenceCreate");
    api.prefDestroy = (decltype(api.prefDestroy))sym("cublasLtMatmulPreferenceDestroy");
    api.prefSetAttribute = (decltype(api.prefSetAttribute))sym("cublasLtMatmulPreferenceSetAttribute");
    api.heuristic = (decltype(api.heuristic))sym("cublasLtMatmulAlgoGetHeuristic");
    api.matmul = (decltype(api.matmul))sym("cublasLtMatmul");
    api.version = api.getVersion();
    return "";
  }
  return tried;
}

// ---- the builtin product: 64×64 tiles, 4×4 outputs per thread, f32 accumulation ----
constexpr int BG_TILE = 64, BG_K = 16;

/** op(A)[m, k] of a row-major operand: A[m·lda + k], or A[k·lda + m] when transposed. */
__device__ inline float opAt(FPtr A, int lda, bool trans, long long r, long long c) {
  return trans ? A[c * lda + r] : A[r * lda + c];
}

__global__ void builtinGemmKernel(bool transA, bool transB, int M, int N, int K, float alpha, FPtr A, int lda, FPtr B, int ldb, float beta, FPtr C, int ldc,
                                  FPtr bias) {
  __shared__ float As[BG_K][BG_TILE + 1];
  __shared__ float Bs[BG_K][BG_TILE + 1];
  const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;  // 256 threads: 16 × 16, 4 × 4 outputs each
  const long long row0 = (long long)blockIdx.y * BG_TILE, col0 = (long long)blockIdx.x * BG_TILE;
  float acc[4][4] = {};
  for (int k0 = 0; k0 < K; k0 += BG_K) {
    for (int e = threadIdx.x; e < BG_K * BG_TILE; e += blockDim.x) {
      const int kk = e / BG_TILE, mm = e % BG_TILE;
      const long long r = row0 + mm, c = col0 + mm, k = k0 + kk;
      As[kk][mm] = (r < M && k < K) ? opAt(A, lda, transA, r, k) : 0.f;
      Bs[kk][mm] = (c < N && k < K) ? opAt(B, ldb, transB, k, c) : 0.f;
    }
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < BG_K; kk++) {
      float a[4], b[4];
#pragma unroll
      for (int i = 0; i < 4; i++) a[i] = As[kk][ty * 4 + i];
#pragma unroll
      for (int j = 0; j < 4; j++) b[j] = Bs[kk][tx * 4 + j];
#pragma unroll
      for (int i = 0; i < 4; i++)
#pragma unroll
        for (int j = 0; j < 4; j++) acc[i][j] = fmaf(a[i], b[j], acc[i][j]);
    }
    __syncthreads();
  }
  for (int i = 0; i < 4; i++) {
    const long long r = row0 + ty * 4 + i;
    if (r >= M) continue;
    for (int j = 0; j < 4; j++) {
      const long long c = col0 + tx * 4 + j;
      if (c >= N) continue;
      float v = alpha * acc[i][j];
      if (beta != 0.f) v += beta * C[r * ldc + c];
      if (bias) v += bias[c];
      C[r * ldc + c] = v;
    }
  }
}

struct GemmEngine {
  LtApi lt;
  cublasLtHandle_t handle = nullptr;
  void* workspace = nullptr;
  size_t workspaceBytes = 0;
  bool useBuiltin = false;
  bool tf32 = false;
  std::unordered_map<std::string, cublasLtMatmulAlgo_t> algoCache;

  static uint32_t alignmentOf(const void* p) {
    uintptr_t a = (uintptr_t)p;
    uint32_t al = 256;
    while (al > 4 && (a % al) != 0) al >>= 1;
    return al;
  }

  /**
   * Row-major C[M, N] = alpha · op(A) · op(B) + beta · C, with bias[N] added per row when given
   * (cuBLASLt's BIAS epilogue). `geluAux` (cuBLASLt GELU_AUX_BIAS, the tanh GELU) writes
   * gelu(z) to C and z to geluAux (row-major [M, N], ldc).
   */
  void gemm(cudaStream_t stream, bool transA, bool transB, int M, int N, int K, float alpha, FPtr A, int lda, FPtr B, int ldb, float beta, FPtr C,
            int ldc, FPtr bias, FPtr geluAux = FPtr()) {
    if (A.bf != B.bf) throw GpuError("GPU_INTERNAL", "gemm operands of different types");
    if (!A.bf && C.bf) throw GpuError("GPU_INTERNAL", "gemm with f32 inputs and a bf16 output");
    if (bias && bias.bf != C.bf) throw GpuError("GPU_INTERNAL", "gemm bias type differs from the output's");
    if (geluAux && geluAux.bf != C.bf) throw GpuError("GPU_INTERNAL", "gemm GELU aux type differs from the output's");
    if (M <= 0 || N <= 0) return;
    if (K <= 0) throw GpuError("GPU_INTERNAL", "gemm with K = 0");
    if (useBuiltin || !handle) {
      if (geluAux) throw GpuError("GPU_INTERNAL", "builtin gemm has no GELU epilogue");
      dim3 grid((N + BG_TILE - 1) / BG_TILE, (M + BG_TILE - 1) / BG_TILE);
      builtinGemmKernel<<<grid, 256, 0, stream>>>(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, bias);
      CK_LAUNCH("builtin gemm");
      return;
    }
    // Column-major view: Cᵀ[N, M] = op(B)ᵀ · op(A)ᵀ, i.e. A' = B (op transB), B' = A (op transA).
    const int opA = transB ? LT_OP_T : LT_OP_N, opB = transA ? LT_OP_T : LT_OP_N;
    const uint64_t aRows = opA == LT_OP_N ? N : K, aCols = opA == LT_OP_N ? K : N;
    const uint64_t bRows = opB == LT_OP_N ? K : M, bCols = opB == LT_OP_N ? M : K;
    const uint32_t epilogue = geluAux ? (bias ? LT_EPILOGUE_GELU_AUX_BIAS : LT_EPILOGUE_GELU_AUX) : bias ? LT_EPILOGUE_BIAS : LT_EPILOGUE_DEFAULT;
    // bf16 inputs: f32 accumulation (COMPUTE_32F) and f32 scale; TF32 only applies to f32 inputs.
    const int compute = (tf32 && !A.bf) ? LT_COMPUTE_32F_FAST_TF32 : LT_COMPUTE_32F;
    const int abType = A.bf ? LT_R_16BF : LT_R_32F, cType = C.bf ? LT_R_16BF : LT_R_32F;
    const uint32_t alA = alignmentOf(B.p), alB = alignmentOf(A.p), alC = alignmentOf(C.p);
    const uint32_t alBias = bias ? alignmentOf(bias.p) : 256, alAux = geluAux ? alignmentOf(geluAux.p) : 256;

    cublasLtMatmulDesc_t desc = nullptr;
    cublasLtMatrixLayout_t la = nullptr, lb = nullptr, lc = nullptr;
    cublasLtMatmulPreference_t pref = nullptr;
    auto cleanup = [&]() {
      if (pref) lt.prefDestroy(pref);
      if (lc) lt.layoutDestroy(lc);
      if (lb) lt.layoutDestroy(lb);
      if (la) lt.layoutDestroy(la);
      if (desc) lt.descDestroy(desc);
    };
    try {
      ltCheck(lt.descCreate(&desc, compute, 0 /* CUDA_R_32F */), "MatmulDescCreate");
      ltCheck(lt.descSetAttribute(desc, LT_DESC_TRANSA, &opA, sizeof(opA)), "set TRANSA");
      ltCheck(lt.descSetAttribute(desc, LT_DESC_TRANSB, &opB, sizeof(opB)), "set TRANSB");
      ltCheck(lt.descSetAttribute(desc, LT_DESC_EPILOGUE, &epilogue, sizeof(epilogue)), "set EPILOGUE");
      if (bias) ltCheck(lt.descSetAttribute(desc, LT_DESC_BIAS_POINTER, &bias.p, sizeof(bias.p)), "set BIAS_POINTER");
      if (geluAux) {
        const int64_t auxLd = ldc;
        ltCheck(lt.descSetAttribute(desc, LT_DESC_EPILOGUE_AUX_POINTER, &geluAux.p, sizeof(geluAux.p)), "set EPILOGUE_AUX_POINTER");
        ltCheck(lt.descSetAttribute(desc, LT_DESC_EPILOGUE_AUX_LD, &auxLd, sizeof(auxLd)), "set EPILOGUE_AUX_LD");
      }
      ltCheck(lt.layoutCreate(&la, abType, aRows, aCols, ldb), "layout A");
      ltCheck(lt.layoutCreate(&lb, abType, bRows, bCols, lda), "layout B");
      ltCheck(lt.layoutCreate(&lc, cType, (uint64_t)N, (uint64_t)M, ldc), "layout C");

      char key[256];
      snprintf(key, sizeof key, "%d%d|%d,%d,%d|%d,%d,%d|%u|%d|%d,%d|%d|%u,%u,%u,%u,%u", opA, opB, M, N, K, lda, ldb, ldc, epilogue, compute, abType,
               cType, beta != 0.f, alA, alB, alC, alBias, alAux);
      auto hit = algoCache.find(key);
      cublasLtMatmulAlgo_t algo;
      if (hit != algoCache.end()) {
        algo = hit->second;
      } else {
        ltCheck(lt.prefCreate(&pref), "MatmulPreferenceCreate");
        const uint64_t ws = workspaceBytes;
        ltCheck(lt.prefSetAttribute(pref, LT_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof(ws)), "set MAX_WORKSPACE_BYTES");
        ltCheck(lt.prefSetAttribute(pref, LT_PREF_MIN_ALIGNMENT_A_BYTES, &alA, sizeof(alA)), "set MIN_ALIGNMENT_A");
        ltCheck(lt.prefSetAttribute(pref, LT_PREF_MIN_ALIGNMENT_B_BYTES, &alB, sizeof(alB)), "set MIN_ALIGNMENT_B");
        ltCheck(lt.prefSetAttribute(pref, LT_PREF_MIN_ALIGNMENT_C_BYTES, &alC, sizeof(alC)), "set MIN_ALIGNMENT_C");
        ltCheck(lt.prefSetAttribute(pref, LT_PREF_MIN_ALIGNMENT_D_BYTES, &alC, sizeof(alC)), "set MIN_ALIGNMENT_D");
        cublasLtMatmulHeuristicResult_t result;
        memset(&result, 0, sizeof result);
        int found = 0;
        ltCheck(lt.heuristic(handle, desc, la, lb, lc, lc, pref, 1, &result, &found), "MatmulAlgoGetHeuristic");
        if (found == 0) {
          throw GpuError("GPU_CUBLASLT_ERROR", "cuBLASLt has no algorithm for a " + std::to_string(M) + "x" + std::to_string(N) + "x" +
                                                   std::to_string(K) + (A.bf ? " bf16" : " f32") + " product (epilogue " + std::to_string(epilogue) + ")");
        }
        algo = result.algo;
        algoCache.emplace(key, algo);
      }
      ltCheck(lt.matmul(handle, desc, &alpha, B.p, la, A.p, lb, &beta, C.p, lc, C.p, lc, &algo, workspace, workspaceBytes, stream), "Matmul");
    } catch (...) {
      cleanup();
      throw;
    }
    cleanup();
  }
};
