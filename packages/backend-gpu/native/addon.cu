// @blankglm/backend-gpu: the Node-API addon. One CUDA stream, device buffers keyed by the
// tensor ids of the TypeScript wrapper, and `run(words)`, which decodes a whole op sequence
// (src/schema.ts; generated build/generated/schema.h) and launches it without returning to JS.
//
// Exports: probe, init, alloc, free, write, read, run, synchronize, memInfo, schema, decode,
// setOptions. Errors are thrown as JS Errors with a `code` (GPU_*, or a cudaError name).
#include <node_api.h>
#include <cuda_runtime.h>
#include <algorithm>
#include <climits>
#include <cmath>
#include <cstring>
#include <functional>
#include <type_traits>
#include <initializer_list>
#include <string>
#include <unordered_map>
#include <vector>

#include "common.cuh"
#include "gemm.cuh"
#include "kernels.cuh"
#include "attention.cuh"
#include "attention_tc_async.cuh"
#include "schema.h"  // generated from src/schema.ts by scripts/build-native.mjs

enum DType : int { DT_F32 = 0, DT_BF16 = 1, DT_I32 = 2, DT_U8 = 3 };
static const int DTYPE_BYTES[] = {4, 2, 4, 1};
static const char* const DTYPE_NAMES[] = {"f32", "bf16", "i32", "u8"};

struct Buffer {
  void* ptr = nullptr;
  size_t elements = 0;
  int dtype = DT_F32;
};

static const char* const DEVICE_ERROR_KINDS[] = {
    "embedding/embeddingBackward: inputIds[%lld] = %lld is outside the word embedding table (%lld rows)",
    "embedding/embeddingBackward: positionIds[%lld] = %lld is outside the position table (%lld rows)",
    "embedding/embeddingBackward: blockPositionIds[%lld] = %lld is outside the block position table (%lld rows)",
    "gatherRows/scatterAddRows: index[%lld] = %lld is outside x (%lld rows)",
    "crossEntropy: targets[%lld] = %lld is outside the vocabulary (%lld entries)",
    "attention: keyStart[%lld] = %lld is negative (keys: %lld)",
    "attention: keyEnd[%lld] = %lld is past the keys (%lld)",
    "attention: query %lld has an empty key range [%lld, %lld)",
};

struct State {
  bool ready = false;
  int device = 0;
  cudaDeviceProp prop{};
  cudaStream_t stream = nullptr;
  std::unordered_map<long long, Buffer> buffers;
  DeviceErrorRecord* errHost = nullptr;  // pinned copy, read after a synchronise
  DeviceErrorRecord* errDev = nullptr;
  GemmEngine gemm;
  bool ltGelu = false;
  bool tcAttention = true;  // tensor-core attention for bf16 operands (BLANKGLM_GPU_ATTENTION=scalar turns it off)
  bool multiTensor = true;  // one launch per run of consecutive adamw/sumSquares/fill/cast calls (BLANKGLM_GPU_MULTITENSOR=0: one by one)
  bool lnSplit = true;      // layerNormBackward in two passes (setOptions; BLANKGLM_GPU_LN_BACKWARD=fused for the one-pass kernel)
  bool splitDecode = true;  // decode attention (≤ 16 queries) split over the keys (setOptions; BLANKGLM_GPU_DECODE_ATTENTION=one-block: a block per query)
  std::string cublasNote;
};
static State S;

/**
 * Per-op GPU time (setProfiling): a cudaEvent pair around every op, keyed by the op and its
 * shape; events are resolved when the report is asked for (after a synchronise).
 */
struct Profiler {
  bool on = false;
  std::vector<cudaEvent_t> pool;
  struct Pending {
    std::string key;
    cudaEvent_t start, stop;
    long long calls = 1;  // a multi-tensor group counts as its calls
  };
  std::vector<Pending> pending;
  struct Total {
    long long calls = 0;
    double ms = 0;
  };
  std::vector<std::pair<std::string, Total>> totals;  // in first-seen order

  cudaEvent_t event() {
    if (!pool.empty()) {
      cudaEvent_t e = pool.back();
      pool.pop_back();
      return e;
    }
    cudaEvent_t e;
    CK(cudaEventCreate(&e));
    return e;
  }
  void resolve() {
    if (pending.empty()) return;
    CK(cudaEventSynchronize(pending.back().stop));
    for (auto& p : pending) {
      float ms = 0;
      CK(cudaEventElapsedTime(&ms, p.start, p.stop));
      auto it = totals.begin();
      while (it != totals.end() && it->first != p.key) ++it;
      if (it == totals.end()) {
        totals.push_back({p.key, Total{}});
        it = totals.end() - 1;
      }
      it->second.calls += p.calls;
      it->second.ms += ms;
      pool.push_back(p.start);
      pool.push_back(p.stop);
    }
    pending.clear();
  }
};
static Profiler PROF;

// ---------------------------------------------------------------------------------------------
// Memory
static std::string mib(size_t bytes) {
  char b[64];
  snprintf(b, sizeof b, "%.1f MiB", bytes / 1048576.0);
  return b;
}

/**
 * Attention keep bits (attention_tc_async.cuh), keyed by the lse buffer the forward wrote: the
 * dropout decisions of a training forward, reused by the backward that gets the same lse buffer,
 * dropout and shape. A cache only: dropped when the lse buffer is freed, and all of it when memory
 * runs short (the backward then hashes again, with the same result).
 */
struct KeepBits {
  void* bits = nullptr;
  size_t bytes = 0;
  bool valid = false;
  uint32_t seed = 0, stream = 0;
  uint64_t threshold = 0;
  int B = 0, heads = 0, Lq = 0, Lk = 0;
  bool matches(const AttnShape& s, const Dropout& d) const {
    return valid && seed == d.seed && stream == d.stream && threshold == d.threshold && B == s.B && heads == s.heads && Lq == s.Lq && Lk == s.Lk;
  }
};
static std::unordered_map<const void*, KeepBits> KEEP_BITS;

static void releaseKeepBits(const void* lo = nullptr, const void* hi = nullptr) {
  for (auto it = KEEP_BITS.begin(); it != KEEP_BITS.end();) {
    if (lo && (it->first < lo || it->first >= hi)) {
      ++it;
      continue;
    }
    if (it->second.bits) cudaFreeAsync(it->second.bits, S.stream);
    it = KEEP_BITS.erase(it);
  }
}

/** What to do when the model's memory does not fit (parameters and optimizer state, or activations). */
static const char* const MODEL_MEMORY_HINT =
    "Use a smaller batch size or sequence length (activations grow linearly with both) or a smaller model, or free other GPU processes.";

static void* deviceAlloc(size_t bytes, const std::string& what, const char* hint = MODEL_MEMORY_HINT) {
  if (bytes == 0) return nullptr;
  void* p = nullptr;
  cudaError_t e = cudaMallocAsync(&p, bytes, S.stream);
  if (e == cudaErrorMemoryAllocation && !KEEP_BITS.empty()) {
    cudaGetLastError();
    releaseKeepBits();
    e = cudaMallocAsync(&p, bytes, S.stream);
  }
  if (e == cudaErrorMemoryAllocation) {
    cudaGetLastError();
    size_t freeB = 0, totalB = 0;
    cudaMemGetInfo(&freeB, &totalB);
    throw GpuError("GPU_OUT_OF_MEMORY", "out of GPU memory: " + what + " needs " + mib(bytes) + ", " + mib(freeB) + " free of " + mib(totalB) +
                                            " on " + S.prop.name + ". " + hint);
  }
  CK(e);
  return p;
}

/** Temporary device memory for one op, freed in stream order (the pool caches it). */
struct Scratch {
  void* p = nullptr;
  Scratch(size_t bytes, const char* what) { p = deviceAlloc(bytes, std::string("scratch for ") + what); }
  ~Scratch() {
    if (p) cudaFreeAsync(p, S.stream);
  }
  template <typename T>
  T* as() const { return (T*)p; }
};

/** Waits for the stream, then throws the first bad input a kernel recorded since the last check. */
static void synchronizeStream() {
  DeviceErrorRecord r;
  CK(cudaMemcpyAsync(S.errHost, S.errDev, sizeof(DeviceErrorRecord), cudaMemcpyDeviceToHost, S.stream));
  CK(cudaStreamSynchronize(S.stream));
  r = *S.errHost;
  if (!r.flag) return;
  CK(cudaMemsetAsync(S.errDev, 0, sizeof(DeviceErrorRecord), S.stream));
  char msg[512];
  const int what = r.what >= 0 && r.what < (int)(sizeof DEVICE_ERROR_KINDS / sizeof *DEVICE_ERROR_KINDS) ? r.what : 0;
  snprintf(msg, sizeof msg, DEVICE_ERROR_KINDS[what], r.index, r.value, r.limit);
  throw GpuError("GPU_BAD_INPUT", std::string(msg) + " (found by a kernel; the offending element was skipped and the outputs are not valid)");
}

// ---------------------------------------------------------------------------------------------
// Decoding the wire format (src/schema.ts)
struct FieldInfo {
  std::string name;
  char kind;
  int offset;
};
struct OpInfo {
  std::string name;
  std::vector<FieldInfo> fields;
  int words = 0;
  std::function<void(const struct Call&)> handler;
};
static std::vector<OpInfo> OPS;

static int kindWords(char k) {
  switch (k) {
    case 'v': return 4;
    case 'd': return 3;
    default: return 1;
  }
}

static void parseSchema() {
  if (!OPS.empty()) return;
  for (int i = 0; i < OP_SCHEMA_COUNT; i++) {
    OpInfo op;
    op.name = OP_SCHEMA_NAMES[i];
    std::string spec = OP_SCHEMA_FIELDS[i];
    size_t pos = 0;
    while (pos < spec.size()) {
      size_t comma = spec.find(',', pos);
      if (comma == std::string::npos) comma = spec.size();
      std::string f = spec.substr(pos, comma - pos);
      size_t colon = f.find(':');
      op.fields.push_back({f.substr(0, colon), f[colon + 1], op.words});
      op.words += kindWords(f[colon + 1]);
      pos = comma + 1;
    }
    OPS.push_back(std::move(op));
  }
}

static std::string schemaSignature() {
  parseSchema();
  std::string s;
  for (size_t i = 0; i < OPS.size(); i++) {
    if (i) s += ';';
    s += OPS[i].name + "(";
    for (size_t f = 0; f < OPS[i].fields.size(); f++) s += (f ? "," : "") + OPS[i].fields[f].name + ":" + OPS[i].fields[f].kind;
    s += ")";
  }
  return s;
}

struct View {
  FPtr base;  // element (b, t, c) at base + b·batchStride + t·rowStride + c
  long long rowStride, batchStride;
  AttnView attn() const { return {base, batchStride, rowStride}; }
};

struct Call {
  const OpInfo* info;
  const double* w;

  const FieldInfo& field(const char* name, char kind) const {
    for (const auto& f : info->fields)
      if (f.name == name) {
        if (f.kind != kind) throw GpuError("GPU_INTERNAL", info->name + ": field " + name + " has kind " + f.kind + ", read as " + kind);
        return f;
      }
    throw GpuError("GPU_INTERNAL", info->name + ": the schema has no field " + name);
  }
  long long i(const char* n) const { return (long long)w[field(n, 'i').offset]; }
  double f(const char* n) const { return w[field(n, 'f').offset]; }
  bool b(const char* n) const { return w[field(n, 'b').offset] != 0; }
  int act(const char* n) const { return (int)w[field(n, 'a').offset]; }
  Buffer* buffer(const char* n, char kind) const {
    const long long id = (long long)w[field(n, kind).offset];
    if (id < 0) return nullptr;
    auto it = S.buffers.find(id);
    if (it == S.buffers.end()) throw GpuError("GPU_BAD_TENSOR", info->name + ": argument '" + n + "' is tensor #" + std::to_string(id) + ", which is not allocated on the GPU");
    return &it->second;
  }
  /** A float tensor (f32 or bf16), or a null FPtr when absent. */
  FPtr fpopt(const char* n) const {
    Buffer* b = buffer(n, 't');
    if (!b) return FPtr();
    if (b->dtype != DT_F32 && b->dtype != DT_BF16) throw GpuError("GPU_UNSUPPORTED", info->name + ": argument '" + n + "' is " + DTYPE_NAMES[b->dtype] + ", expected f32 or bf16");
    return FPtr(b->ptr, b->dtype == DT_BF16);
  }
  FPtr fp(const char* n) const {
    if (!buffer(n, 't')) throw GpuError("GPU_INTERNAL", info->name + ": argument '" + n + "' is required");
    return fpopt(n);
  }
  /** An f32-only tensor (saved statistics, optimizer moments, losses), or null when absent. */
  float* fopt(const char* n) const {
    Buffer* b = buffer(n, 't');
    if (!b) return nullptr;
    if (b->dtype != DT_F32) throw GpuError("GPU_UNSUPPORTED", info->name + ": argument '" + n + "' is " + DTYPE_NAMES[b->dtype] + "; it must be f32");
    return (float*)b->ptr;
  }
  float* fl(const char* n) const {
    float* p = fopt(n);
    if (!p && !buffer(n, 't')) throw GpuError("GPU_INTERNAL", info->name + ": argument '" + n + "' is required");
    return p;
  }
  const int* ints(const char* n) const {
    Buffer* b = buffer(n, 't');
    if (!b) return nullptr;
    if (b->dtype != DT_I32) throw GpuError("GPU_UNSUPPORTED", info->name + ": argument '" + n + "' must be i32");
    return (const int*)b->ptr;
  }
  Buffer* any(const char* n) const {
    Buffer* b = buffer(n, 't');
    if (!b) throw GpuError("GPU_INTERNAL", info->name + ": argument '" + n + "' is required");
    return b;
  }
  View view(const char* n) const {
    const FieldInfo& fi = field(n, 'v');
    const long long id = (long long)w[fi.offset];
    auto it = S.buffers.find(id);
    if (it == S.buffers.end()) throw GpuError("GPU_BAD_TENSOR", info->name + ": view '" + n + "' is over tensor #" + std::to_string(id) + ", which is not allocated on the GPU");
    const Buffer& b = it->second;
    if (b.dtype != DT_F32 && b.dtype != DT_BF16) throw GpuError("GPU_UNSUPPORTED", info->name + ": view '" + n + "' is not a float tensor");
    return {FPtr(b.ptr, b.dtype == DT_BF16) + (long long)w[fi.offset + 1], (long long)w[fi.offset + 2], (long long)w[fi.offset + 3]};
  }
  Dropout dropout(const char* n) const { return dropoutFromWords(w + field(n, 'd').offset); }
};

// ---------------------------------------------------------------------------------------------
// Op handlers
static void cast(FPtr src, FPtr dst, long long n) {
  if (n <= 0) return;
  castKernel<<<blocksFor(n, 256), 256, 0, S.stream>>>(src, dst, n);
  CK_LAUNCH("cast");
}

/** A bf16 copy of `src` (elements) in scratch memory; `src` itself when it already is bf16. */
struct Bf16Copy {
  FPtr ptr;
  Scratch buf;
  Bf16Copy(FPtr src, long long elements, const char* what) : buf(src.bf ? 0 : (size_t)elements * 2, what) {
    if (src.bf) {
      ptr = src;
      return;
    }
    ptr = FPtr(buf.p, true);
    cast(src, ptr, elements);
  }
};

/**
 * Row-major C[M, N] = alpha · op(A) · op(B) + beta · C (+ bias[N]) for operands of either float
 * type: bf16 products (f32 accumulation) when either input is bf16, the other converted; f32
 * (or TF32) products when both are f32. `geluAux` (same type as C) selects the GELU_AUX epilogue.
 */
static void product(bool tA, bool tB, int M, int N, int K, float alpha, FPtr A, int lda, FPtr B, int ldb, float beta, FPtr C, int ldc, FPtr bias,
                    FPtr geluAux = FPtr()) {
  if (M <= 0 || N <= 0) return;
  const long long aElems = (long long)((tA ? K : M) - 1) * lda + (tA ? M : K);
  const long long bElems = (long long)((tB ? N : K) - 1) * ldb + (tB ? K : N);
  const bool bf = A.bf || B.bf;
  Bf16Copy a16(bf ? A : FPtr(), bf ? aElems : 0, "a bf16 matrix operand"), b16(bf ? B : FPtr(), bf ? bElems : 0, "a bf16 matrix operand");
  if (bf) {
    A = a16.ptr;
    B = b16.ptr;
  }
  if (!bf && C.bf) {
    // f32 inputs, bf16 output: an f32 product in scratch, then one rounding into C.
    const long long cElems = (long long)(M - 1) * ldc + N;
    Scratch c32((size_t)cElems * 4, "an f32 product");
    FPtr tmp(c32.p, false);
    if (beta != 0.f) cast(C, tmp, cElems);
    Scratch bias32(bias && bias.bf ? (size_t)N * 4 : 0, "an f32 bias");
    if (bias && bias.bf) {
      cast(bias, FPtr(bias32.p, false), N);
      bias = FPtr(bias32.p, false);
    }
    if (geluAux) throw GpuError("GPU_INTERNAL", "GELU epilogue with f32 inputs and a bf16 output");
    S.gemm.gemm(S.stream, tA, tB, M, N, K, alpha, A, lda, B, ldb, beta, tmp, ldc, bias);
    cast(tmp, C, cElems);
    return;
  }
  // The bias in the output's type (cuBLASLt's default bias type is D's).
  Scratch biasConv(bias && bias.bf != C.bf ? (size_t)N * 4 : 0, "a bias in the output's type");
  if (bias && bias.bf != C.bf) {
    FPtr conv(biasConv.p, C.bf);
    cast(bias, conv, N);
    bias = conv;
  }
  S.gemm.gemm(S.stream, tA, tB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, bias, geluAux);
}

/** One id array of a sorted row scatter: dst[ids[t], :] += src[t, :], bad ids reported as errKind. */
struct ScatterJob {
  const int* ids;
  int rows;
  FPtr dst;
  int errKind;
};

/**
 * dst[ids[t], :] += src[t, :] for t < count, for up to three id arrays over the same src: one
 * batched bitonic sort of the (id, t) keys, then the two-level segmented sum (kernels.cuh).
 */
static void scatterAddRowsSorted(FPtr src, int count, int width, const ScatterJob* jobs, int n) {
  if (count <= 0 || width <= 0 || n <= 0) return;
  int padded = SORT_CHUNK;
  while (padded < count) padded <<= 1;
  bool alias = false;
  for (int a = 0; a < n; a++)
    for (int b = a + 1; b < n; b++) alias = alias || jobs[a].dst.p == jobs[b].dst.p;
  if (n > 1 && (alias || (long long)padded * n > INT_MAX)) {
    for (int a = 0; a < n; a++) scatterAddRowsSorted(src, count, width, jobs + a, 1);
    return;
  }
  const int total = padded * n;
  Scratch keys((size_t)total * 8, "a row scatter's sort");
  unsigned long long* k = keys.as<unsigned long long>();
  SortIds ids{};
  ScatterTargets tg{};
  for (int a = 0; a < n; a++) {
    ids.ids[a] = jobs[a].ids;
    tg.dst[a] = jobs[a].dst;
    tg.rows[a] = jobs[a].rows;
    tg.errKind[a] = jobs[a].errKind;
  }
  makeSortKeysKernel<<<blocksFor(total, 256), 256, 0, S.stream>>>(ids, count, k, padded, n);
  CK_LAUNCH("sort keys");
  const int segMask = padded - 1;
  bitonicSharedKernel<<<total / SORT_CHUNK, 1024, 0, S.stream>>>(k, 2, SORT_CHUNK, segMask);
  CK_LAUNCH("bitonic sort");
  for (int kk = 2 * SORT_CHUNK; kk <= padded; kk <<= 1) {
    for (int j = kk >> 1; j >= SORT_CHUNK; j >>= 1) {
      bitonicGlobalKernel<<<blocksFor(total, 256), 256, 0, S.stream>>>(k, total, j, kk, segMask);
      CK_LAUNCH("bitonic sort");
    }
    bitonicSharedKernel<<<total / SORT_CHUNK, 1024, 0, S.stream>>>(k, kk, kk, segMask);
    CK_LAUNCH("bitonic sort");
  }
  const int chunks = (count + SEG_CHUNK - 1) / SEG_CHUNK;
  Scratch partial((size_t)n * chunks * 2 * width * sizeof(double), "a row scatter's partial sums");
  segmentedSumChunkKernel<<<dim3(chunks, (width + SEG_BLOCK_COLS - 1) / SEG_BLOCK_COLS, n), SEG_WARPS * 32, 0, S.stream>>>(
      src, k, padded, count, width, tg, partial.as<double>(), S.errDev);
  CK_LAUNCH("segmented row sum");
  segmentedSumSpanKernel<<<dim3(chunks, (width + SEG_SPAN_COLS - 1) / SEG_SPAN_COLS, n), 256, 0, S.stream>>>(k, padded, count, width, tg,
                                                                                                              partial.as<double>());
  CK_LAUNCH("segmented row sum");
}

template <typename Value>
static void columnSumAdd(Value value, int R, int C, FPtr out, const char* what) {
  const int chunks = (R + COLSUM_ROWS_PER_CHUNK - 1) / COLSUM_ROWS_PER_CHUNK;
  Scratch partial((size_t)chunks * C * sizeof(double), what);
  columnPartialKernel<<<dim3((C + 31) / 32, chunks), dim3(32, 8), 0, S.stream>>>(value, R, C, partial.as<double>());
  CK_LAUNCH(what);
  columnFinalKernel<<<(C + 255) / 256, 256, 0, S.stream>>>(partial.as<double>(), chunks, C, out);
  CK_LAUNCH(what);
}

template <typename T, int ACT>
static void denseColumnLaunch(FPtr dy, FPtr preAct, FPtr dz, int R, int C, int rowsPerChunk, double* partial, const char* what) {
  constexpr int V = sizeof(T) == 2 ? 8 : 4;
  auto al = [](const void* p) { return ((uintptr_t)p & 15) == 0; };
  const bool vec = C % V == 0 && al(dy.p) && (ACT == 0 || (al(preAct.p) && al(dz.p)));
  const long long width = (long long)DCOL_TX * (vec ? V : 1);
  const dim3 grid((unsigned)((C + width - 1) / width), (unsigned)((R + rowsPerChunk - 1) / rowsPerChunk)), block(DCOL_TX, DCOL_TY);
  if (vec)
    denseColumnPartialKernel<T, V, ACT><<<grid, block, 0, S.stream>>>((const T*)dy.p, (const T*)preAct.p, (T*)dz.p, R, C, rowsPerChunk, partial);
  else
    denseColumnPartialKernel<T, 1, ACT><<<grid, block, 0, S.stream>>>((const T*)dy.p, (const T*)preAct.p, (T*)dz.p, R, C, rowsPerChunk, partial);
  CK_LAUNCH(what);
}

/**
 * act = 0: out += Σ_rows dy ([R, C]). act ≠ 0: dz = dy ⊙ act'(preAct) (dz in dy's type), and
 * out += Σ_rows dz (as stored) when out is given. One pass over the matrix plus a small final
 * kernel; the summation order depends on the shape only (the same with or without 16-byte
 * vectors), so results are deterministic.
 */
static void denseColumnPass(FPtr dy, FPtr preAct, FPtr dz, int act, int R, int C, FPtr out, const char* what) {
  if (R <= 0 || C <= 0 || (act == 0 && !out)) return;
  if (act != 0 && (preAct.bf != dy.bf || dz.bf != dy.bf)) {  // mixed storage types: the generic kernels
    const long long n = (long long)R * C;
    activationBackwardKernel<<<blocksFor(n, 256), 256, 0, S.stream>>>(dy, preAct, dz, n, act);
    CK_LAUNCH(what);
    denseColumnPass(dz, FPtr(), FPtr(), 0, R, C, out, what);
    return;
  }
  const long long colTiles = (C + (long long)DCOL_TX * (dy.bf ? 8 : 4) - 1) / ((long long)DCOL_TX * (dy.bf ? 8 : 4));
  const int rows = denseColumnRowsPerChunk(R, colTiles), chunks = (R + rows - 1) / rows;
  Scratch partial(out ? (size_t)chunks * C * sizeof(double) : 0, what);
  double* pp = partial.as<double>();  // null without out: the kernel only writes dz
  if (dy.bf) {
    if (act == 0) denseColumnLaunch<__nv_bfloat16, 0>(dy, preAct, dz, R, C, rows, pp, what);
    else if (act == 1) denseColumnLaunch<__nv_bfloat16, 1>(dy, preAct, dz, R, C, rows, pp, what);
    else denseColumnLaunch<__nv_bfloat16, 2>(dy, preAct, dz, R, C, rows, pp, what);
  } else {
    if (act == 0) denseColumnLaunch<float, 0>(dy, preAct, dz, R, C, rows, pp, what);
    else if (act == 1) denseColumnLaunch<float, 1>(dy, preAct, dz, R, C, rows, pp, what);
    else denseColumnLaunch<float, 2>(dy, preAct, dz, R, C, rows, pp, what);
  }
  if (!out) return;
  columnPartialFinalKernel<<<(C + 31) / 32, dim3(32, PARTIAL_LANES), 0, S.stream>>>(pp, chunks, C, out);
  CK_LAUNCH(what);
}

static void opEmbedding(const Call& c) {
  const int T = (int)c.i("tokens"), H = (int)c.i("hiddenSize");
  embeddingKernel<<<T, 256, 0, S.stream>>>(c.fp("wordEmb"), c.fp("posEmb"), c.fpopt("blockPosEmb"), c.ints("inputIds"), c.ints("positionIds"),
                                           c.ints("blockPositionIds"), c.fp("out"), T, H, (int)c.i("vocab"), (int)c.i("positions"), S.errDev);
  CK_LAUNCH("embedding");
}

static void opEmbeddingBackward(const Call& c) {
  const int T = (int)c.i("tokens"), H = (int)c.i("hiddenSize"), V = (int)c.i("vocab"), P = (int)c.i("positions");
  ScatterJob jobs[SORT_MAX_SEGMENTS] = {{c.ints("inputIds"), V, c.fp("dWordEmb"), ERR_INPUT_ID}, {c.ints("positionIds"), P, c.fp("dPosEmb"), ERR_POSITION_ID}};
  int n = 2;
  const int* blockIds = c.ints("blockPositionIds");
  const FPtr dBlock = c.fpopt("dBlockPosEmb");
  if (blockIds && dBlock) jobs[n++] = {blockIds, P, dBlock, ERR_BLOCK_POSITION_ID};
  scatterAddRowsSorted(c.fp("dOut"), T, H, jobs, n);
}

/** Columns per lane of the warp-per-row layer-norm kernels for H (0: H > 1024, the block-per-row kernels). */
static int lnColumnsPerLane(int H, bool vec) {
  const int need = (H + 31) / 32;
  if (vec) return H % 128 == 0 && (need == 4 || need == 8 || need == 16 || need == 24 || need == 32) ? need : 0;
  for (int cpl : {1, 2, 4, 8, 16, 24, 32})
    if (need <= cpl) return cpl;
  return 0;
}

/** Can rows of H columns be read four elements at a time from each of ps (a VEC width, every base aligned to 4 elements)? */
static bool lnVecRows(int H, std::initializer_list<FPtr> ps) {
  if (lnColumnsPerLane(H, true) == 0) return false;
  for (const FPtr& p : ps)
    if ((uintptr_t)p.p % (uintptr_t)(4 * p.bytes()) != 0) return false;
  return true;
}

/** Calls f(std::integral_constant<int, CPL>{}, std::bool_constant<VEC>{}) for the instantiated (cpl, vec). */
template <typename F>
static void lnDispatch(int cpl, bool vec, F&& f) {
  if (vec) {
    switch (cpl) {
      case 4: return f(std::integral_constant<int, 4>{}, std::true_type{});
      case 8: return f(std::integral_constant<int, 8>{}, std::true_type{});
      case 16: return f(std::integral_constant<int, 16>{}, std::true_type{});
      case 24: return f(std::integral_constant<int, 24>{}, std::true_type{});
      case 32: return f(std::integral_constant<int, 32>{}, std::true_type{});
    }
  } else {
    switch (cpl) {
      case 1: return f(std::integral_constant<int, 1>{}, std::false_type{});
      case 2: return f(std::integral_constant<int, 2>{}, std::false_type{});
      case 4: return f(std::integral_constant<int, 4>{}, std::false_type{});
      case 8: return f(std::integral_constant<int, 8>{}, std::false_type{});
      case 16: return f(std::integral_constant<int, 16>{}, std::false_type{});
      case 24: return f(std::integral_constant<int, 24>{}, std::false_type{});
      case 32: return f(std::integral_constant<int, 32>{}, std::false_type{});
    }
  }
  throw GpuError("GPU_INTERNAL", "layer norm: no kernel for " + std::to_string(cpl) + " columns per lane");
}

static void opLayerNorm(const Call& c) {
  const int R = (int)c.i("rows"), H = (int)c.i("hiddenSize");
  const FPtr x = c.fp("x"), gamma = c.fp("gamma"), beta = c.fp("beta"), y = c.fp("y");
  if (R <= 0) return;
  const bool vec = lnVecRows(H, {x, gamma, beta, y});
  const int cpl = lnColumnsPerLane(H, vec);
  if (cpl == 0) {
    layerNormKernel<<<R, 256, 0, S.stream>>>(x, gamma, beta, y, c.fl("mean"), c.fl("rstd"), H, c.f("eps"));
    CK_LAUNCH("layerNorm");
    return;
  }
  const unsigned blocks = (unsigned)((R + LN_WARPS - 1) / LN_WARPS);
  lnDispatch(cpl, vec, [&](auto C, auto V) {
    constexpr int CPL = decltype(C)::value;
    if constexpr (decltype(V)::value) {
      if (!x.bf && !gamma.bf && !beta.bf) {  // the residual stream: f32 arithmetic
        const float *xp = (const float*)x.p, *gp = (const float*)gamma.p, *bp = (const float*)beta.p;
        if (y.bf) layerNormF32Kernel<CPL><<<blocks, LN_WARPS * 32, 0, S.stream>>>(xp, gp, bp, (__nv_bfloat16*)y.p, c.fl("mean"), c.fl("rstd"), R, H, c.f("eps"));
        else layerNormF32Kernel<CPL><<<blocks, LN_WARPS * 32, 0, S.stream>>>(xp, gp, bp, (float*)y.p, c.fl("mean"), c.fl("rstd"), R, H, c.f("eps"));
        return;
      }
    }
    layerNormWarpKernel<CPL, decltype(V)::value><<<blocks, LN_WARPS * 32, 0, S.stream>>>(x, gamma, beta, y, c.fl("mean"), c.fl("rstd"), R, H, c.f("eps"));
  });
  CK_LAUNCH("layerNorm");
}

static void opLayerNormBackward(const Call& c) {
  const int R = (int)c.i("rows"), H = (int)c.i("hiddenSize");
  const FPtr dy = c.fp("dy"), x = c.fp("x"), gamma = c.fp("gamma"), dx = c.fp("dx");
  const float *mean = c.fl("mean"), *rstd = c.fl("rstd");
  if (R <= 0 || H <= 0) return;
  const int cpl = lnColumnsPerLane(H, false);
  if (cpl == 0) {
    layerNormBackwardDxKernel<<<R, 256, 0, S.stream>>>(dy, x, gamma, mean, rstd, dx, H, c.b("accumulate"));
    CK_LAUNCH("layerNormBackward dx");
    columnSumAdd(DyTimesXHat{dy, x, mean, rstd, H}, R, H, c.fp("dGamma"), "layerNormBackward dGamma");
    columnSumAdd(PlainValue{dy, H}, R, H, c.fp("dBeta"), "layerNormBackward dBeta");
    return;
  }
  const bool accumulate = c.b("accumulate");
  // The split path reads dy and x again after dx is written: only for a dx of its own.
  if (!x.bf && !gamma.bf && !dx.bf && S.lnSplit && dx.p != dy.p && dx.p != x.p) {
    const int chunks = (R + LN_COLSUM_ROWS - 1) / LN_COLSUM_ROWS;
    Scratch partial((size_t)chunks * 2 * H * sizeof(double), "layerNormBackward column sums");
    const float *xp = (const float*)x.p, *gp = (const float*)gamma.p;
    const bool vec = lnVecRows(H, {dy, x, dx});
    lnDispatch(lnColumnsPerLane(H, vec), vec, [&](auto C, auto V) {
      constexpr int CPL = decltype(C)::value;
      constexpr bool VEC = decltype(V)::value;
      const unsigned rowBlocks = (unsigned)((R + LN_WARPS - 1) / LN_WARPS);
      if (dy.bf)
        layerNormBackwardDxSplitKernel<CPL, VEC, __nv_bfloat16>
            <<<rowBlocks, LN_WARPS * 32, 0, S.stream>>>((const __nv_bfloat16*)dy.p, xp, gp, mean, rstd, (float*)dx.p, R, H, accumulate);
      else
        layerNormBackwardDxSplitKernel<CPL, VEC, float><<<rowBlocks, LN_WARPS * 32, 0, S.stream>>>((const float*)dy.p, xp, gp, mean, rstd, (float*)dx.p, R, H, accumulate);
    });
    CK_LAUNCH("layerNormBackward dx");
    const dim3 grid((H + 31) / 32, chunks);
    if (dy.bf) layerNormColumnSumsKernel<__nv_bfloat16><<<grid, dim3(32, 8), 0, S.stream>>>((const __nv_bfloat16*)dy.p, xp, mean, rstd, R, H, partial.as<double>());
    else layerNormColumnSumsKernel<float><<<grid, dim3(32, 8), 0, S.stream>>>((const float*)dy.p, xp, mean, rstd, R, H, partial.as<double>());
    CK_LAUNCH("layerNormBackward column sums");
    layerNormParamGradKernel<<<dim3((H + 31) / 32, 2), dim3(32, PARTIAL_LANES), 0, S.stream>>>(partial.as<double>(), chunks, H, c.fp("dGamma"), c.fp("dBeta"));
    CK_LAUNCH("layerNormBackward dGamma/dBeta");
    return;
  }
  if (!x.bf && !gamma.bf && !dx.bf) {
    const int blocks = (R + LNF_ROWS - 1) / LNF_ROWS;
    Scratch partial((size_t)blocks * 2 * H * sizeof(double), "layerNormBackward column sums");
    lnDispatch(cpl, false, [&](auto C, auto) {
      constexpr int CPL = decltype(C)::value;
      const float *xp = (const float*)x.p, *gp = (const float*)gamma.p;
      if (dy.bf)
        layerNormBackwardF32Kernel<CPL, __nv_bfloat16><<<blocks, LN_WARPS * 32, 0, S.stream>>>((const __nv_bfloat16*)dy.p, xp, gp, mean, rstd, (float*)dx.p, R, H,
                                                                                               accumulate, partial.as<double>());
      else
        layerNormBackwardF32Kernel<CPL, float><<<blocks, LN_WARPS * 32, 0, S.stream>>>((const float*)dy.p, xp, gp, mean, rstd, (float*)dx.p, R, H, accumulate,
                                                                                       partial.as<double>());
    });
    CK_LAUNCH("layerNormBackward");
    layerNormParamGradKernel<<<dim3((H + 31) / 32, 2), dim3(32, PARTIAL_LANES), 0, S.stream>>>(partial.as<double>(), blocks, H, c.fp("dGamma"), c.fp("dBeta"));
    CK_LAUNCH("layerNormBackward dGamma/dBeta");
    return;
  }
  const int blocks = (R + LNB_ROWS - 1) / LNB_ROWS;
  Scratch partial((size_t)blocks * 2 * H * sizeof(double), "layerNormBackward column sums");
  lnDispatch(cpl, false, [&](auto C, auto) {
    layerNormBackwardFusedKernel<decltype(C)::value>
        <<<blocks, LN_WARPS * 32, 0, S.stream>>>(dy, x, gamma, mean, rstd, dx, R, H, accumulate, partial.as<double>());
  });
  CK_LAUNCH("layerNormBackward");
  layerNormParamGradKernel<<<dim3((H + 31) / 32, 2), dim3(32, PARTIAL_LANES), 0, S.stream>>>(partial.as<double>(), blocks, H, c.fp("dGamma"), c.fp("dBeta"));
  CK_LAUNCH("layerNormBackward dGamma/dBeta");
}

static void opLinear(const Call& c) {
  const int M = (int)c.i("rows"), K = (int)c.i("inFeatures"), N = (int)c.i("outFeatures"), act = c.act("activation");
  const FPtr x = c.fp("x"), W = c.fp("weight"), bias = c.fpopt("bias"), y = c.fp("y"), preAct = c.fpopt("preAct");
  if (act == 0) {
    product(false, true, M, N, K, 1.f, x, K, W, K, 0.f, y, N, bias);
    if (preAct) cast(y, preAct, (long long)M * N);
    return;
  }
  if (!preAct) throw GpuError("GPU_INTERNAL", "linear: preAct is required with an activation");
  // cuBLASLt's GELU epilogue is the tanh approximation: y = gelu_tanh(z), preAct = z. Used when
  // asked for (ltGelu), and always for bf16 products (their tolerance covers its f32 tanh).
  const bool bf = x.bf || W.bf;
  if (act == 1 && (S.ltGelu || bf) && !S.gemm.useBuiltin && N % 8 == 0 && preAct.bf == y.bf && (bf || !y.bf)) {
    product(false, true, M, N, K, 1.f, x, K, W, K, 0.f, y, N, bias, preAct);
    return;
  }
  product(false, true, M, N, K, 1.f, x, K, W, K, 0.f, preAct, N, bias);
  const long long n = (long long)M * N;
  activationKernel<<<blocksFor(n, 256), 256, 0, S.stream>>>(preAct, y, n, act);
  CK_LAUNCH("linear activation");
}

static void opLinearBackward(const Call& c) {
  const int M = (int)c.i("rows"), K = (int)c.i("inFeatures"), N = (int)c.i("outFeatures"), act = c.act("activation");
  const FPtr dy = c.fp("dy"), x = c.fp("x"), W = c.fp("weight"), dx = c.fpopt("dx"), dW = c.fp("dWeight"), dBias = c.fpopt("dBias");
  const long long n = (long long)M * N;
  FPtr dz = dy;
  // dz keeps dy's type: bf16 activations give bf16 products.
  Scratch dzBuf(act != 0 ? (size_t)n * dy.bytes() : 0, "linearBackward dz");
  // One pass: dz (with an activation) and dBias += Σ_rows dz.
  if (act != 0) {
    dz = FPtr(dzBuf.p, dy.bf);
    denseColumnPass(dy, c.fp("preAct"), dz, act, M, N, dBias, "linearBackward activation");
  } else {
    denseColumnPass(dy, FPtr(), FPtr(), 0, M, N, dBias, "linearBackward dBias");
  }
  if (dx) product(false, false, M, K, N, 1.f, dz, N, W, K, c.b("accumulate") ? 1.f : 0.f, dx, K, FPtr());
  product(true, false, N, K, M, 1.f, dz, N, x, K, 1.f, dW, K, FPtr());
}

static AttnShape attnShape(const Call& c) {
  return {(int)c.i("batch"), (int)c.i("queries"), (int)c.i("keys"), (int)c.i("heads"), (int)c.i("headDim"), (float)c.f("scale")};
}

template <template <int> class Launch, typename... Args>
static void byHeadDim(int D, Args&&... args) {
  if (D <= 16) Launch<16>::go(args...);
  else if (D <= 32) Launch<32>::go(args...);
  else if (D <= 64) Launch<64>::go(args...);
  else throw GpuError("GPU_UNSUPPORTED", "attention: headDim " + std::to_string(D) + " is above 64");
}

template <int DMAX>
struct LaunchForward {
  static void go(const Call& c, const AttnShape& s, const Dropout& d, float* lse) {
    if (s.Lq <= ATT_DECODE_MAX_QUERIES && S.splitDecode) {
      const int splits = (s.Lk + ATT_SPLIT_KEYS - 1) / ATT_SPLIT_KEYS;
      Scratch part((size_t)s.B * s.Lq * s.heads * splits * (DMAX + 2) * sizeof(float), "attention (split decode)");
      attentionDecodeSplitKernel<DMAX><<<dim3(splits, s.Lq * s.heads, s.B), ATT_SPLIT_KEYS, 0, S.stream>>>(
          c.view("q").attn(), c.view("k").attn(), c.view("v").attn(), c.ints("keyStart"), c.ints("keyEnd"), part.as<float>(), splits, s, d);
      CK_LAUNCH("attention (split decode)");
      attentionDecodeCombineKernel<DMAX><<<dim3(s.Lq * s.heads, s.B), DMAX, 0, S.stream>>>(part.as<float>(), splits, c.ints("keyStart"), c.ints("keyEnd"),
                                                                                           c.fp("out"), lse, s);
      CK_LAUNCH("attention (split decode combine)");
      return;
    }
    if (s.Lq <= ATT_DECODE_MAX_QUERIES) {
      attentionDecodeKernel<DMAX><<<dim3(s.Lq, s.heads, s.B), ATT_DECODE_THREADS, 0, S.stream>>>(c.view("q").attn(), c.view("k").attn(), c.view("v").attn(),
                                                                                                c.ints("keyStart"), c.ints("keyEnd"), c.fp("out"), lse, s, d);
      CK_LAUNCH("attention (decode)");
      return;
    }
    dim3 grid((s.Lq + ATT_QUERIES - 1) / ATT_QUERIES, s.heads, s.B);
    attentionForwardKernel<DMAX><<<grid, ATT_QUERIES, 0, S.stream>>>(c.view("q").attn(), c.view("k").attn(), c.view("v").attn(), c.ints("keyStart"),
                                                                     c.ints("keyEnd"), c.fp("out"), lse, s, d);
    CK_LAUNCH("attention");
  }
};

template <int DMAX>
struct LaunchBackward {
  static void go(const Call& c, const AttnShape& s, const Dropout& d, const float* delta) {
    dim3 gq((s.Lq + ATT_QUERIES - 1) / ATT_QUERIES, s.heads, s.B);
    attentionBackwardDqKernel<DMAX><<<gq, ATT_QUERIES, 0, S.stream>>>(c.fp("dOut"), c.view("q").attn(), c.view("k").attn(), c.view("v").attn(), c.fl("lse"),
                                                                      delta, c.ints("keyStart"), c.ints("keyEnd"), c.view("dq").attn(), s, d);
    CK_LAUNCH("attentionBackward dq");
    constexpr int KEYS = DkDvConfig<DMAX>::KEYS;
    dim3 gk((s.Lk + KEYS - 1) / KEYS, s.heads, s.B);
    attentionBackwardDkDvKernel<DMAX><<<gk, KEYS, 0, S.stream>>>(c.fp("dOut"), c.view("q").attn(), c.view("k").attn(), c.view("v").attn(), c.fl("lse"), delta,
                                                                 c.ints("keyStart"), c.ints("keyEnd"), c.view("dk").attn(), c.view("dv").attn(), s, d);
    CK_LAUNCH("attentionBackward dk/dv");
  }
};

static void checkRanges(const Call& c, const AttnShape& s) {
  const int n = s.B * s.Lq;
  checkKeyRangesKernel<<<blocksFor(n, 256), 256, 0, S.stream>>>(c.ints("keyStart"), c.ints("keyEnd"), n, s.Lk, S.errDev);
  CK_LAUNCH("attention key ranges");
}

/** Tensor-core kernels (attention_tc.cuh) for bf16 q/k/v/out with D ≤ 64, unless BLANKGLM_GPU_ATTENTION=scalar. */
static bool useTensorCoreAttention(const Call& c, const AttnShape& s, bool backward) {
  if (!S.tcAttention || s.D > TC_D) return false;
  const char* names[] = {"q", "k", "v", "dq", "dk", "dv"};
  for (int i = 0; i < (backward ? 6 : 3); i++)
    if (!c.view(names[i]).base.bf) return false;
  return c.fp(backward ? "dOut" : "out").bf;
}

static void opAttention(const Call& c) {
  const AttnShape s = attnShape(c);
  checkRanges(c, s);
  if (useTensorCoreAttention(c, s, false)) {
    const Dropout d = c.dropout("dropout");
    float* lse = c.fopt("lse");
    // A training forward (dropout, lse kept for the backward) records its keep bits when memory allows.
    KeepBits* kb = nullptr;
    if (d.active && lse) {
      kb = &KEEP_BITS[lse];
      kb->valid = false;
      const size_t need = keepBitsBytes(s);
      if (kb->bytes < need) {
        if (kb->bits) cudaFreeAsync(kb->bits, S.stream);
        kb->bits = nullptr;
        kb->bytes = 0;
        if (cudaMallocAsync(&kb->bits, need, S.stream) == cudaSuccess) kb->bytes = need;
        else {
          cudaGetLastError();
          kb->bits = nullptr;
        }
      }
    }
    const bool wrote = launchTcForward(S.stream, c.view("q").attn(), c.view("k").attn(), c.view("v").attn(), c.ints("keyStart"), c.ints("keyEnd"), c.fp("out"),
                                       lse, kb && kb->bits ? (uint64_t*)kb->bits : nullptr, s, d);
    if (kb && wrote) *kb = KeepBits{kb->bits, kb->bytes, true, d.seed, d.stream, d.threshold, s.B, s.heads, s.Lq, s.Lk};
    return;
  }
  byHeadDim<LaunchForward>(s.D, c, s, c.dropout("dropout"), c.fopt("lse")); // lse is optional (inference)
}

static void opAttentionBackward(const Call& c) {
  const AttnShape s = attnShape(c);
  checkRanges(c, s);
  const long long rows = (long long)s.B * s.heads * s.Lq;
  Scratch delta((size_t)rows * 4, "attentionBackward");
  attentionDeltaKernel<<<blocksFor(rows * 32, 256, LLONG_MAX), 256, 0, S.stream>>>(c.fp("dOut"), c.fp("out"), delta.as<float>(), s);
  CK_LAUNCH("attentionBackward delta");
  if (useTensorCoreAttention(c, s, true)) {
    const Dropout d = c.dropout("dropout");
    const float* lse = c.fl("lse");
    auto it = d.active ? KEEP_BITS.find(lse) : KEEP_BITS.end();
    const uint64_t* keepBits = it != KEEP_BITS.end() && it->second.matches(s, d) ? (const uint64_t*)it->second.bits : nullptr;
    launchTcBackward(S.stream, c.fp("dOut"), c.view("q").attn(), c.view("k").attn(), c.view("v").attn(), lse, delta.as<float>(), c.ints("keyStart"),
                     c.ints("keyEnd"), keepBits, c.view("dq").attn(), c.view("dk").attn(), c.view("dv").attn(), s, d);
    return;
  }
  byHeadDim<LaunchBackward>(s.D, c, s, c.dropout("dropout"), (const float*)delta.as<float>());
}

/** Calls f((float*)0 or (__nv_bfloat16*)0): the storage type of p as a typed null pointer. */
template <typename F>
static void byStorage(FPtr p, F&& f) {
  if (p.bf) f((__nv_bfloat16*)nullptr);
  else f((float*)nullptr);
}

static void opDropoutAdd(const Call& c) {
  const long long n = c.i("size");
  if (n == 0) return;
  const FPtr x = c.fp("x"), residual = c.fpopt("residual"), out = c.fp("out");
  const Dropout d = c.dropout("dropout");
  const unsigned blocks = blocksFor((n + 3) / 4, 256);
  byStorage(x, [&](auto xt) {
    byStorage(out, [&](auto ot) {
      using X = std::remove_pointer_t<decltype(xt)>;
      using O = std::remove_pointer_t<decltype(ot)>;
      if (!residual) {
        dropoutAddTypedKernel<X, void, O><<<blocks, 256, 0, S.stream>>>((const X*)x.p, nullptr, (O*)out.p, n, d);
        return;
      }
      byStorage(residual, [&](auto rt) {
        using R = std::remove_pointer_t<decltype(rt)>;
        dropoutAddTypedKernel<X, R, O><<<blocks, 256, 0, S.stream>>>((const X*)x.p, (const R*)residual.p, (O*)out.p, n, d);
      });
    });
  });
  CK_LAUNCH("dropoutAdd");
}

static void opDropoutBackward(const Call& c) {
  const long long n = c.i("size");
  if (n == 0) return;
  const FPtr dy = c.fp("dy"), dx = c.fp("dx");
  const unsigned blocks = blocksFor((n + 3) / 4, 256);
  byStorage(dy, [&](auto yt) {
    byStorage(dx, [&](auto xt) {
      using DY = std::remove_pointer_t<decltype(yt)>;
      using DX = std::remove_pointer_t<decltype(xt)>;
      dropoutBackwardTypedKernel<DY, DX><<<blocks, 256, 0, S.stream>>>((const DY*)dy.p, (DX*)dx.p, n, c.dropout("dropout"), c.b("accumulate"));
    });
  });
  CK_LAUNCH("dropoutBackward");
}

static void opGatherRows(const Call& c) {
  const int T = (int)c.i("count");
  gatherRowsKernel<<<T, 256, 0, S.stream>>>(c.fp("x"), c.ints("index"), c.fp("out"), T, (int)c.i("rows"), (int)c.i("width"), S.errDev);
  CK_LAUNCH("gatherRows");
}

static void opScatterAddRows(const Call& c) {
  const ScatterJob job{c.ints("index"), (int)c.i("rows"), c.fp("dx"), ERR_ROW_INDEX};
  scatterAddRowsSorted(c.fp("dOut"), (int)c.i("count"), (int)c.i("width"), &job, 1);
}

static void opLogits(const Call& c) {
  const int T = (int)c.i("tokens"), H = (int)c.i("hiddenSize"), V = (int)c.i("vocab");
  product(false, true, T, V, H, 1.f, c.fp("hidden"), H, c.fp("wordEmb"), H, 0.f, c.fp("out"), V, FPtr());
}

/** Vocabulary rows per chunk: at most 64 Mi logits (256 MiB) at once, a multiple of 256. */
static int vocabChunk(int T, int V) {
  long long w = (64LL << 20) / (T > 0 ? T : 1);
  w = (w / 256) * 256;
  if (w < 256) w = 256;
  return (int)(w < V ? w : V);
}

static void opCrossEntropy(const Call& c) {
  const int T = (int)c.i("tokens"), H = (int)c.i("hiddenSize"), V = (int)c.i("vocab");
  FPtr hidden = c.fp("hidden"), wordEmb = c.fp("wordEmb");
  const int* targets = c.ints("targets");
  const int Vc = vocabChunk(T, V);
  // Mixed operand types: one bf16 conversion for the whole op instead of one per chunk.
  const bool bf = hidden.bf || wordEmb.bf;
  Bf16Copy h16(bf ? hidden : FPtr(), bf ? (long long)T * H : 0, "crossEntropy hidden"), e16(bf ? wordEmb : FPtr(), bf ? (long long)V * H : 0, "crossEntropy table");
  if (bf) {
    hidden = h16.ptr;
    wordEmb = e16.ptr;
  }
  Scratch z((size_t)T * Vc * 4, "crossEntropy logits chunk"), st((size_t)T * sizeof(CeState), "crossEntropy");
  ceInitKernel<<<(T + 255) / 256, 256, 0, S.stream>>>(st.as<CeState>(), T);
  CK_LAUNCH("crossEntropy init");
  for (int v0 = 0; v0 < V; v0 += Vc) {
    const int w = V - v0 < Vc ? V - v0 : Vc;
    product(false, true, T, w, H, 1.f, hidden, H, wordEmb + (long long)v0 * H, H, 0.f, FPtr(z.p, false), w, FPtr());
    ceChunkKernel<<<T, 256, 0, S.stream>>>(z.as<float>(), w, v0, targets, V, st.as<CeState>(), S.errDev);
    CK_LAUNCH("crossEntropy chunk");
  }
  ceFinishKernel<<<(T + 255) / 256, 256, 0, S.stream>>>(st.as<CeState>(), T, V, c.f("labelSmoothing"), c.fl("losses"), c.fl("lse"));
  CK_LAUNCH("crossEntropy finish");
}

static void opCrossEntropyBackward(const Call& c) {
  const int T = (int)c.i("tokens"), H = (int)c.i("hiddenSize"), V = (int)c.i("vocab");
  FPtr hidden = c.fp("hidden"), wordEmb = c.fp("wordEmb");
  const float *lse = c.fl("lse"), *weights = c.fl("weights");
  const FPtr dHidden = c.fp("dHidden"), dWordEmb = c.fp("dWordEmb");
  const int* targets = c.ints("targets");
  const int Vc = vocabChunk(T, V);
  const bool bf = hidden.bf || wordEmb.bf;
  Bf16Copy h16(bf ? hidden : FPtr(), bf ? (long long)T * H : 0, "crossEntropyBackward hidden"), e16(bf ? wordEmb : FPtr(), bf ? (long long)V * H : 0, "crossEntropyBackward table");
  if (bf) {
    hidden = h16.ptr;
    wordEmb = e16.ptr;
  }
  Scratch z((size_t)T * Vc * 4, "crossEntropyBackward logits chunk");
  // dz in the products' type: bf16 products take a bf16 copy written by the gradient kernel.
  Scratch dz16(bf ? (size_t)T * Vc * 2 : 0, "crossEntropyBackward dz");
  const FPtr dz = bf ? FPtr(dz16.p, true) : FPtr(z.p, false);
  for (int v0 = 0; v0 < V; v0 += Vc) {
    const int w = V - v0 < Vc ? V - v0 : Vc;
    const FPtr E = wordEmb + (long long)v0 * H;
    product(false, true, T, w, H, 1.f, hidden, H, E, H, 0.f, FPtr(z.p, false), w, FPtr());
    const dim3 grid((unsigned)std::max(1, std::min(64, (w + 255) / 256)), (unsigned)std::max(1, std::min(T, 65535)));
    ceGradKernel<<<grid, 256, 0, S.stream>>>(z.as<float>(), dz, T, w, v0, targets, lse, weights, V, c.f("labelSmoothing"));
    CK_LAUNCH("crossEntropyBackward dz");
    product(false, false, T, H, w, 1.f, dz, w, E, H, v0 == 0 ? 0.f : 1.f, dHidden, H, FPtr());
    product(true, false, w, H, T, 1.f, dz, w, hidden, H, 1.f, dWordEmb + (long long)v0 * H, H, FPtr());
  }
}

/** An adamw call's hyperparameters with its bias corrections (also the multi-tensor launch's, so both give the same bits). */
static AdamParams adamParams(const Call& c) {
  const double beta1 = c.f("beta1"), beta2 = c.f("beta2");
  const double step = (double)c.i("step");
  return {c.f("lr"), beta1, beta2, c.f("eps"), c.f("weightDecay"), c.f("gradScale"), 1 - std::pow(beta1, step), 1 - std::pow(beta2, step)};
}

static void opAdamw(const Call& c) {
  const long long n = c.i("size");
  const AdamParams p = adamParams(c);
  adamwKernel<<<blocksFor(n, 256), 256, 0, S.stream>>>(c.fp("param"), c.fp("grad"), c.fl("m"), c.fl("v"), n, p);
  CK_LAUNCH("adamw");
}

static void opSumSquares(const Call& c) {
  const long long n = c.i("size");
  const int blocks = (int)blocksFor(n, 256, SUMSQ_BLOCKS);
  Scratch partial((size_t)blocks * sizeof(double), "sumSquares");
  sumSquaresPartialKernel<<<blocks, 256, 0, S.stream>>>(c.fp("x"), n, partial.as<double>());
  CK_LAUNCH("sumSquares");
  sumSquaresFinalKernel<<<1, 1024, 0, S.stream>>>(partial.as<double>(), blocks, c.fl("out") + c.i("outIndex"));
  CK_LAUNCH("sumSquares final");
}

static uint16_t bf16Bits(float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40);  // NaN stays NaN
  u += 0x7fffu + ((u >> 16) & 1u);  // round to nearest even
  return (uint16_t)(u >> 16);
}

static void opFill(const Call& c) {
  Buffer* b = c.any("x");
  const long long off = c.i("offset"), n = c.i("size");
  const double value = c.f("value");
  if (n == 0) return;
  const unsigned g = blocksFor(n, 256);
  switch (b->dtype) {
    case DT_F32: fillKernel<float><<<g, 256, 0, S.stream>>>((float*)b->ptr + off, n, (float)value); break;
    case DT_BF16: fillKernel<uint16_t><<<g, 256, 0, S.stream>>>((uint16_t*)b->ptr + off, n, bf16Bits((float)value)); break;
    case DT_I32: fillKernel<int><<<g, 256, 0, S.stream>>>((int*)b->ptr + off, n, (int)value); break;
    default: fillKernel<uint8_t><<<g, 256, 0, S.stream>>>((uint8_t*)b->ptr + off, n, (uint8_t)value); break;
  }
  CK_LAUNCH("fill");
}

static void opCopy(const Call& c) {
  Buffer *src = c.any("src"), *dst = c.any("dst");
  const long long n = c.i("size"), so = c.i("srcOffset"), dof = c.i("dstOffset");
  if (n == 0 || (src == dst && so == dof)) return;
  const int e = DTYPE_BYTES[src->dtype];
  CK(cudaMemcpyAsync((char*)dst->ptr + dof * e, (const char*)src->ptr + so * e, (size_t)n * e, cudaMemcpyDeviceToDevice, S.stream));
}

static void opScale(const Call& c) {
  const long long n = c.i("size");
  if (n == 0) return;
  scaleKernel<<<blocksFor(n, 256), 256, 0, S.stream>>>(c.fp("x"), n, c.f("factor"));
  CK_LAUNCH("scale");
}

/** The profile key of a call: the op, with the shape for products and attention. */
static std::string profileKey(const Call& c) {
  const std::string& n = c.info->name;
  static const char* const ACTS[] = {"", " gelu_tanh", " gelu_erf"};
  char buf[160];
  if (n == "linear" || n == "linearBackward") {
    const int act = c.act("activation");
    snprintf(buf, sizeof buf, "%s %lldx%lld->%lld%s", n.c_str(), c.i("rows"), c.i("inFeatures"), c.i("outFeatures"), ACTS[act >= 0 && act <= 2 ? act : 0]);
    return buf;
  }
  if (n == "attention" || n == "attentionBackward") {
    snprintf(buf, sizeof buf, "%s B%lld L%lldx%lld h%lld d%lld%s", n.c_str(), c.i("batch"), c.i("queries"), c.i("keys"), c.i("heads"), c.i("headDim"),
             c.dropout("dropout").active ? " dropout" : "");
    return buf;
  }
  return n;
}

static void bindMultiTensorLayout();

static void bindHandlers() {
  parseSchema();
  const std::unordered_map<std::string, void (*)(const Call&)> table = {
      {"embedding", opEmbedding},       {"embeddingBackward", opEmbeddingBackward},
      {"layerNorm", opLayerNorm},       {"layerNormBackward", opLayerNormBackward},
      {"linear", opLinear},             {"linearBackward", opLinearBackward},
      {"attention", opAttention},       {"attentionBackward", opAttentionBackward},
      {"dropoutAdd", opDropoutAdd},     {"dropoutBackward", opDropoutBackward},
      {"gatherRows", opGatherRows},     {"scatterAddRows", opScatterAddRows},
      {"logits", opLogits},             {"crossEntropy", opCrossEntropy},
      {"crossEntropyBackward", opCrossEntropyBackward},
      {"adamw", opAdamw},               {"sumSquares", opSumSquares},
      {"fill", opFill},                 {"copy", opCopy},
      {"scale", opScale},
  };
  for (auto& op : OPS) {
    auto it = table.find(op.name);
    if (it == table.end()) throw GpuError("GPU_INTERNAL", "no CUDA implementation of op " + op.name);
    op.handler = it->second;
  }
  bindMultiTensorLayout();
}

/** Walks a sequence buffer; `visit(callIndex, op, words)` for each call. */
template <typename Visit>
static void walkSequence(const double* words, size_t count, Visit visit) {
  parseSchema();
  if (count < 1) throw GpuError("GPU_BAD_SEQUENCE", "empty sequence buffer");
  const long long calls = (long long)words[0];
  size_t pos = 1;
  for (long long k = 0; k < calls; k++) {
    if (pos + 2 > count) throw GpuError("GPU_BAD_SEQUENCE", "sequence buffer ends inside call #" + std::to_string(k));
    const long long opId = (long long)words[pos], n = (long long)words[pos + 1];
    if (opId < 0 || opId >= (long long)OPS.size()) throw GpuError("GPU_BAD_SEQUENCE", "call #" + std::to_string(k) + ": unknown op id " + std::to_string(opId));
    const OpInfo& op = OPS[opId];
    if (n != op.words) {
      throw GpuError("GPU_BAD_SEQUENCE", "call #" + std::to_string(k) + " (" + op.name + "): " + std::to_string(n) + " words, the schema has " + std::to_string(op.words));
    }
    if (pos + 2 + n > count) throw GpuError("GPU_BAD_SEQUENCE", "call #" + std::to_string(k) + " (" + op.name + ") runs past the buffer");
    visit(k, op, words + pos + 2);
    pos += 2 + n;
  }
  if (pos != count) throw GpuError("GPU_BAD_SEQUENCE", std::to_string(count - pos) + " words after the last call");
}

// ---------------------------------------------------------------------------------------------
// Multi-tensor groups (Run). A maximal run of consecutive calls of one op that can share a launch
// becomes one launch of a *MultiKernel (kernels.cuh) with the same per-element math: adamw with
// the same lr, betas, eps, step and gradScale (weight decay per tensor), sumSquares, fill, and
// dropoutAdd with p = 0 and no residual (a type conversion: refreshing bf16 weight copies). The
// training step issues ~150 of each in a row. Calls whose memory overlaps with one of them
// writing are split into separate launches, so the result is always that of the calls in order.
enum MtKind { MT_NONE = 0, MT_ADAMW, MT_SUMSQ, MT_FILL, MT_CAST };

/** The ops and word offsets the grouping reads, resolved once from the schema (bindHandlers). */
struct MtLayout {
  const OpInfo *adamw = nullptr, *sumSquares = nullptr, *fill = nullptr, *dropoutAdd = nullptr;
  int aParam, aGrad, aM, aV, aSize, aLr, aBeta1, aBeta2, aEps, aWeightDecay, aStep, aGradScale;
  int sX, sSize, sOut, sOutIndex;
  int fX, fOffset, fSize, fValue;
  int dX, dResidual, dOut, dSize, dDropout;
};
static MtLayout MTL;

static void bindMultiTensorLayout() {
  auto op = [](const char* name) -> const OpInfo* {
    for (const auto& o : OPS)
      if (o.name == name) return &o;
    throw GpuError("GPU_INTERNAL", std::string("the schema has no op ") + name);
  };
  auto off = [](const OpInfo* o, const char* field, char kind) { return Call{o, nullptr}.field(field, kind).offset; };
  MtLayout& L = MTL;
  L.adamw = op("adamw");
  L.aParam = off(L.adamw, "param", 't'), L.aGrad = off(L.adamw, "grad", 't'), L.aM = off(L.adamw, "m", 't'), L.aV = off(L.adamw, "v", 't');
  L.aSize = off(L.adamw, "size", 'i'), L.aLr = off(L.adamw, "lr", 'f'), L.aBeta1 = off(L.adamw, "beta1", 'f'), L.aBeta2 = off(L.adamw, "beta2", 'f');
  L.aEps = off(L.adamw, "eps", 'f'), L.aWeightDecay = off(L.adamw, "weightDecay", 'f'), L.aStep = off(L.adamw, "step", 'i');
  L.aGradScale = off(L.adamw, "gradScale", 'f');
  L.sumSquares = op("sumSquares");
  L.sX = off(L.sumSquares, "x", 't'), L.sSize = off(L.sumSquares, "size", 'i'), L.sOut = off(L.sumSquares, "out", 't');
  L.sOutIndex = off(L.sumSquares, "outIndex", 'i');
  L.fill = op("fill");
  L.fX = off(L.fill, "x", 't'), L.fOffset = off(L.fill, "offset", 'i'), L.fSize = off(L.fill, "size", 'i'), L.fValue = off(L.fill, "value", 'f');
  L.dropoutAdd = op("dropoutAdd");
  L.dX = off(L.dropoutAdd, "x", 't'), L.dResidual = off(L.dropoutAdd, "residual", 't'), L.dOut = off(L.dropoutAdd, "out", 't');
  L.dSize = off(L.dropoutAdd, "size", 'i'), L.dDropout = off(L.dropoutAdd, "dropout", 'd');
}

struct SeqCall {
  long long k;  // index in the sequence
  const OpInfo* op;
  const double* w;
};

static MtKind mtKindOf(const SeqCall& c) {
  if (c.op == MTL.adamw) return MT_ADAMW;
  if (c.op == MTL.sumSquares) return MT_SUMSQ;
  if (c.op == MTL.fill) return MT_FILL;
  if (c.op == MTL.dropoutAdd && c.w[MTL.dResidual] < 0 && !dropoutFromWords(c.w + MTL.dDropout).active) return MT_CAST;
  return MT_NONE;
}

static bool sameBits(double a, double b) { return memcmp(&a, &b, sizeof a) == 0; }

/** Whether call c can join a group of kind g that starts with `first`. */
static bool mtJoins(MtKind g, const SeqCall& first, const SeqCall& c) {
  if (mtKindOf(c) != g) return false;
  if (g != MT_ADAMW) return true;
  for (int o : {MTL.aLr, MTL.aBeta1, MTL.aBeta2, MTL.aEps, MTL.aStep, MTL.aGradScale})
    if (!sameBits(first.w[o], c.w[o])) return false;
  return true;
}

/** Bytes [lo, hi) a call reads or writes. */
struct MtRange {
  uintptr_t lo, hi;
  bool write;
};

/** One call of a group, decoded. */
struct MtEntry {
  long long n = 0;
  void* p[4] = {};       // adamw: param, grad, m, v; sumSquares: x, out slot; fill: first element; cast: x, out
  bool bf[2] = {};       // bf16 storage of p[0], p[1] (adamw, sumSquares, cast)
  double weightDecay = 0;
  uint32_t bits = 0;     // fill: the value's bit pattern
  int bytes = 0;         // fill: element size
  size_t r0 = 0, r1 = 0; // its ranges in the group's list
};

// The argument checks of Call::any/fp/fl, by word offset (same messages).
static Buffer* mtBuffer(const SeqCall& c, int off, const char* name) {
  const long long id = (long long)c.w[off];
  if (id < 0) throw GpuError("GPU_INTERNAL", c.op->name + ": argument '" + name + "' is required");
  auto it = S.buffers.find(id);
  if (it == S.buffers.end()) throw GpuError("GPU_BAD_TENSOR", c.op->name + ": argument '" + name + "' is tensor #" + std::to_string(id) + ", which is not allocated on the GPU");
  return &it->second;
}
static FPtr mtFloat(const SeqCall& c, int off, const char* name) {
  Buffer* b = mtBuffer(c, off, name);
  if (b->dtype != DT_F32 && b->dtype != DT_BF16) throw GpuError("GPU_UNSUPPORTED", c.op->name + ": argument '" + name + "' is " + DTYPE_NAMES[b->dtype] + ", expected f32 or bf16");
  return FPtr(b->ptr, b->dtype == DT_BF16);
}
static float* mtF32(const SeqCall& c, int off, const char* name) {
  Buffer* b = mtBuffer(c, off, name);
  if (b->dtype != DT_F32) throw GpuError("GPU_UNSUPPORTED", c.op->name + ": argument '" + name + "' is " + DTYPE_NAMES[b->dtype] + "; it must be f32");
  return (float*)b->ptr;
}

static MtEntry mtDecode(MtKind g, const SeqCall& c, std::vector<MtRange>& ranges) {
  MtEntry e;
  const double* w = c.w;
  e.r0 = ranges.size();
  auto range = [&](const void* p, long long n, int bytes, bool write) {
    if (p && n > 0) ranges.push_back({(uintptr_t)p, (uintptr_t)p + (uintptr_t)n * (uintptr_t)bytes, write});
  };
  switch (g) {
    case MT_ADAMW: {
      const FPtr param = mtFloat(c, MTL.aParam, "param"), grad = mtFloat(c, MTL.aGrad, "grad");
      float* m = mtF32(c, MTL.aM, "m");
      float* v = mtF32(c, MTL.aV, "v");
      e.n = (long long)w[MTL.aSize];
      e.p[0] = param.p, e.p[1] = grad.p, e.p[2] = m, e.p[3] = v;
      e.bf[0] = param.bf, e.bf[1] = grad.bf;
      e.weightDecay = w[MTL.aWeightDecay];
      range(param.p, e.n, param.bytes(), true);
      range(grad.p, e.n, grad.bytes(), false);
      range(m, e.n, 4, true);
      range(v, e.n, 4, true);
      break;
    }
    case MT_SUMSQ: {
      const FPtr x = mtFloat(c, MTL.sX, "x");
      float* out = mtF32(c, MTL.sOut, "out") + (long long)w[MTL.sOutIndex];
      e.n = (long long)w[MTL.sSize];
      e.p[0] = x.p, e.p[1] = out;
      e.bf[0] = x.bf;
      range(x.p, e.n, x.bytes(), false);
      range(out, 1, 4, true);
      break;
    }
    case MT_FILL: {
      Buffer* b = mtBuffer(c, MTL.fX, "x");
      const long long off = (long long)w[MTL.fOffset];
      const double value = w[MTL.fValue];
      e.n = (long long)w[MTL.fSize];
      e.bytes = DTYPE_BYTES[b->dtype];
      e.p[0] = (char*)b->ptr + off * e.bytes;
      switch (b->dtype) {  // opFill's conversions
        case DT_F32: {
          const float f = (float)value;
          memcpy(&e.bits, &f, 4);
          break;
        }
        case DT_BF16: e.bits = bf16Bits((float)value); break;
        case DT_I32: {
          const int i = (int)value;
          memcpy(&e.bits, &i, 4);
          break;
        }
        default: e.bits = (uint8_t)value;
      }
      range(e.p[0], e.n, e.bytes, true);
      break;
    }
    case MT_CAST: {
      const FPtr x = mtFloat(c, MTL.dX, "x"), out = mtFloat(c, MTL.dOut, "out");
      e.n = (long long)w[MTL.dSize];
      e.p[0] = x.p, e.p[1] = out.p;
      e.bf[0] = x.bf, e.bf[1] = out.bf;
      range(x.p, e.n, x.bytes(), false);
      range(out.p, e.n, out.bytes(), true);
      break;
    }
    default: throw GpuError("GPU_INTERNAL", "mtDecode: not a multi-tensor op");
  }
  e.r1 = ranges.size();
  return e;
}

static bool mtConflict(const MtRange& a, const MtRange& b) { return a.lo < b.hi && b.lo < a.hi && (a.write || b.write); }

/** Whether no two calls touch overlapping bytes with one of them writing (a sweep over the ranges by start). */
static bool mtIndependent(const std::vector<MtEntry>& es, const std::vector<MtRange>& ranges) {
  std::vector<std::pair<size_t, size_t>> order;  // (range, entry)
  order.reserve(ranges.size());
  for (size_t m = 0; m < es.size(); m++)
    for (size_t r = es[m].r0; r < es[m].r1; r++) order.push_back({r, m});
  std::sort(order.begin(), order.end(), [&](const auto& a, const auto& b) { return ranges[a.first].lo < ranges[b.first].lo; });
  std::vector<std::pair<size_t, size_t>> open;  // earlier ranges that reach past the current start
  for (const auto& x : order) {
    const MtRange& a = ranges[x.first];
    size_t kept = 0;
    for (const auto& o : open)
      if (ranges[o.first].hi > a.lo) open[kept++] = o;
    open.resize(kept);
    for (const auto& o : open)
      if (o.second != x.second && (ranges[o.first].write || a.write)) return false;
    open.push_back(x);
  }
  return true;
}

/** Starts of the sub-runs without conflicts (greedy, in order); only when mtIndependent says no. */
static std::vector<size_t> mtCuts(const std::vector<MtEntry>& es, const std::vector<MtRange>& ranges) {
  std::vector<size_t> starts{0};
  for (size_t m = 1; m < es.size(); m++) {
    bool clash = false;
    for (size_t q = starts.back(); q < m && !clash; q++)
      for (size_t r = es[m].r0; r < es[m].r1 && !clash; r++)
        for (size_t s = es[q].r0; s < es[q].r1 && !clash; s++) clash = mtConflict(ranges[r], ranges[s]);
    if (clash) starts.push_back(m);
  }
  return starts;
}

/**
 * Packs entries [a, b) into tables of at most MT_CAP tensors and MT_MAX_BLOCKS blocks and calls
 * go(table, blocks) for each; `put(table, slot, entry)` fills a slot. Entries without elements
 * are left out unless keepEmpty (sumSquares still writes their 0).
 */
template <typename Table, typename Put, typename Go>
static void mtPack(const std::vector<MtEntry>& es, size_t a, size_t b, bool keepEmpty, Table& t, Put put, Go go) {
  t.count = 0;
  long long blocks = 0;
  for (size_t m = a; m < b; m++) {
    const MtEntry& e = es[m];
    if (e.n <= 0 && !keepEmpty) continue;
    const long long nb = e.n > 0 ? (e.n + MT_CHUNK - 1) / MT_CHUNK : 0;
    if (nb > MT_MAX_BLOCKS) throw GpuError("GPU_UNSUPPORTED", "a tensor of " + std::to_string(e.n) + " elements is too large for one launch");
    if (t.count == MT_CAP || blocks + nb > MT_MAX_BLOCKS) {
      go(t, (int)blocks);
      t.count = 0;
      blocks = 0;
    }
    t.firstBlock[t.count] = (int)blocks;
    put(t, t.count, e);
    t.count++;
    blocks += nb;
  }
  if (t.count > 0) go(t, (int)blocks);
}

/** Launches entries [a, b) of a group of kind g (no conflicts among them); `first` is the group's first call. */
static void mtLaunch(MtKind g, const SeqCall& first, const std::vector<MtEntry>& es, size_t a, size_t b) {
  switch (g) {
    case MT_ADAMW: {
      static MtAdamw t;  // ~20 KB: not on the stack; the launch copies it
      const AdamParams p = adamParams(Call{first.op, first.w});  // weight decay is per tensor (the entries')
      t.lr = p.lr, t.beta1 = p.beta1, t.beta2 = p.beta2, t.eps = p.eps, t.gradScale = p.gradScale;
      t.biasCorrection1 = p.biasCorrection1, t.biasCorrection2 = p.biasCorrection2;
      mtPack(
          es, a, b, false, t,
          [](MtAdamw& t, int s, const MtEntry& e) {
            t.n[s] = e.n, t.param[s] = e.p[0], t.grad[s] = e.p[1], t.m[s] = (float*)e.p[2], t.v[s] = (float*)e.p[3];
            t.paramBf[s] = e.bf[0], t.gradBf[s] = e.bf[1], t.weightDecay[s] = e.weightDecay;
          },
          [](const MtAdamw& t, int blocks) {
            if (blocks == 0) return;
            adamwMultiKernel<<<blocks, MT_THREADS, 0, S.stream>>>(t);
            CK_LAUNCH("adamw (multi-tensor)");
          });
      break;
    }
    case MT_SUMSQ: {
      static MtSumSquares t;
      mtPack(
          es, a, b, true, t,
          [](MtSumSquares& t, int s, const MtEntry& e) {
            t.n[s] = e.n > 0 ? e.n : 0, t.x[s] = e.p[0], t.out[s] = (float*)e.p[1], t.bf[s] = e.bf[0];
          },
          [](MtSumSquares& t, int blocks) {
            t.totalBlocks = blocks;
            Scratch partial((size_t)blocks * sizeof(double), "sumSquares");
            if (blocks > 0) {
              sumSquaresMultiPartialKernel<<<blocks, MT_THREADS, 0, S.stream>>>(t, partial.as<double>());
              CK_LAUNCH("sumSquares (multi-tensor)");
            }
            sumSquaresMultiFinalKernel<<<t.count, MT_THREADS, 0, S.stream>>>(t, partial.as<double>());
            CK_LAUNCH("sumSquares final (multi-tensor)");
          });
      break;
    }
    case MT_FILL: {
      static MtFill t;
      mtPack(
          es, a, b, false, t,
          [](MtFill& t, int s, const MtEntry& e) { t.n[s] = e.n, t.x[s] = e.p[0], t.bits[s] = e.bits, t.bytes[s] = (unsigned char)e.bytes; },
          [](const MtFill& t, int blocks) {
            if (blocks == 0) return;
            fillMultiKernel<<<blocks, MT_THREADS, 0, S.stream>>>(t);
            CK_LAUNCH("fill (multi-tensor)");
          });
      break;
    }
    case MT_CAST: {
      static MtCast t;
      mtPack(
          es, a, b, false, t,
          [](MtCast& t, int s, const MtEntry& e) { t.n[s] = e.n, t.x[s] = e.p[0], t.out[s] = e.p[1], t.xBf[s] = e.bf[0], t.outBf[s] = e.bf[1]; },
          [](const MtCast& t, int blocks) {
            if (blocks == 0) return;
            castMultiKernel<<<blocks, MT_THREADS, 0, S.stream>>>(t);
            CK_LAUNCH("dropoutAdd (multi-tensor)");
          });
      break;
    }
    default: throw GpuError("GPU_INTERNAL", "mtLaunch: not a multi-tensor op");
  }
}

/** Launches decoded entries (split where calls conflict), profiled as one entry of `first`'s op with es.size() calls. */
static void mtRun(MtKind g, const SeqCall& first, const std::vector<MtEntry>& es, const std::vector<MtRange>& ranges) {
  std::vector<size_t> starts = mtIndependent(es, ranges) ? std::vector<size_t>{0} : mtCuts(es, ranges);
  starts.push_back(es.size());
  Profiler::Pending p;
  if (PROF.on) {
    p = Profiler::Pending{first.op->name, PROF.event(), PROF.event(), (long long)es.size()};
    CK(cudaEventRecord(p.start, S.stream));
  }
  for (size_t s = 0; s + 1 < starts.size(); s++) mtLaunch(g, first, es, starts[s], starts[s + 1]);
  if (PROF.on) {
    CK(cudaEventRecord(p.stop, S.stream));
    PROF.pending.push_back(p);
    if (PROF.pending.size() >= 20000) PROF.resolve();
  }
}

/** Calls [i, j) of the sequence (≥ 2, all of kind g and joinable) as one group. */
static void runGroup(MtKind g, const std::vector<SeqCall>& calls, size_t i, size_t j) {
  std::vector<MtEntry> es;
  std::vector<MtRange> ranges;
  es.reserve(j - i);
  ranges.reserve(4 * (j - i));
  size_t m = i;
  try {
    for (; m < j; m++) es.push_back(mtDecode(g, calls[m], ranges));
  } catch (GpuError& e) {
    // As one by one: the calls before the bad one run, then its error names it.
    if (!es.empty()) mtRun(g, calls[i], es, ranges);
    throw GpuError(e.code, std::string(e.what()) + (calls[m].k > 0 ? " (call #" + std::to_string(calls[m].k) + " of the sequence)" : ""));
  }
  try {
    mtRun(g, calls[i], es, ranges);
  } catch (GpuError& e) {
    throw GpuError(e.code, std::string(e.what()) + " (calls #" + std::to_string(calls[i].k) + " to #" + std::to_string(calls[j - 1].k) + " of the sequence, " +
                               calls[i].op->name + " in multi-tensor launches)");
  }
}

/** One call on its own (profiled when PROF.on); errors name the call. */
static void runCall(const SeqCall& c) {
  const OpInfo& op = *c.op;
  try {
    if (PROF.on) {
      Profiler::Pending p{profileKey(Call{&op, c.w}), PROF.event(), PROF.event()};
      CK(cudaEventRecord(p.start, S.stream));
      op.handler(Call{&op, c.w});
      CK(cudaEventRecord(p.stop, S.stream));
      PROF.pending.push_back(p);
      if (PROF.pending.size() >= 20000) PROF.resolve();
      return;
    }
    op.handler(Call{&op, c.w});
  } catch (GpuError& e) {
    throw GpuError(e.code, std::string(e.what()) + (c.k > 0 ? " (call #" + std::to_string(c.k) + " of the sequence)" : ""));
  }
}

// ---------------------------------------------------------------------------------------------
// Node-API
#define NAPI_OK(call)                                                          \
  do {                                                                         \
    if ((call) != napi_ok) throw GpuError("GPU_INTERNAL", "Node-API: " #call); \
  } while (0)

static napi_value throwJs(napi_env env, const std::string& code, const std::string& message) {
  napi_value c, m, err;
  napi_create_string_utf8(env, code.c_str(), code.size(), &c);
  napi_create_string_utf8(env, message.c_str(), message.size(), &m);
  napi_create_error(env, c, m, &err);
  napi_throw(env, err);
  return nullptr;
}

template <typename F>
static napi_value guarded(napi_env env, F body) {
  try {
    return body();
  } catch (const GpuError& e) {
    return throwJs(env, e.code, e.what());
  } catch (const std::exception& e) {
    return throwJs(env, "GPU_INTERNAL", e.what());
  }
}

static std::vector<napi_value> args(napi_env env, napi_callback_info info, size_t expected) {
  size_t argc = expected;
  std::vector<napi_value> v(expected);
  NAPI_OK(napi_get_cb_info(env, info, &argc, v.data(), nullptr, nullptr));
  if (argc < expected) throw GpuError("GPU_INTERNAL", "expected " + std::to_string(expected) + " arguments");
  return v;
}

static double num(napi_env env, napi_value v) {
  double d;
  NAPI_OK(napi_get_value_double(env, v, &d));
  return d;
}

static std::string str(napi_env env, napi_value v) {
  size_t n = 0;
  NAPI_OK(napi_get_value_string_utf8(env, v, nullptr, 0, &n));
  std::string s(n, '\0');
  NAPI_OK(napi_get_value_string_utf8(env, v, s.data(), n + 1, &n));
  return s;
}

static napi_value mkNum(napi_env env, double d) {
  napi_value v;
  napi_create_double(env, d, &v);
  return v;
}
static napi_value mkStr(napi_env env, const std::string& s) {
  napi_value v;
  napi_create_string_utf8(env, s.c_str(), s.size(), &v);
  return v;
}
static napi_value mkBool(napi_env env, bool b) {
  napi_value v;
  napi_get_boolean(env, b, &v);
  return v;
}
static napi_value mkNull(napi_env env) {
  napi_value v;
  napi_get_null(env, &v);
  return v;
}
static void set(napi_env env, napi_value obj, const char* key, napi_value v) { napi_set_named_property(env, obj, key, v); }

static void* typedData(napi_env env, napi_value v, size_t* bytes) {
  napi_typedarray_type type;
  size_t length, offset;
  void* data;
  napi_value ab;
  NAPI_OK(napi_get_typedarray_info(env, v, &type, &length, &data, &ab, &offset));
  size_t el = 1;
  switch (type) {
    case napi_int16_array: case napi_uint16_array: el = 2; break;
    case napi_int32_array: case napi_uint32_array: case napi_float32_array: el = 4; break;
    case napi_float64_array: case napi_bigint64_array: case napi_biguint64_array: el = 8; break;
    default: el = 1;
  }
  *bytes = length * el;
  return data;
}

/** probe(): what the CUDA runtime sees, without creating a context. Never throws for CUDA errors. */
static napi_value Probe(napi_env env, napi_callback_info) {
  return guarded(env, [&]() {
    int rt = 0, drv = 0, count = 0;
    cudaRuntimeGetVersion(&rt);
    cudaDriverGetVersion(&drv);
    cudaError_t e = cudaGetDeviceCount(&count);
    napi_value o;
    napi_create_object(env, &o);
    set(env, o, "runtimeVersion", mkNum(env, rt));
    set(env, o, "driverVersion", mkNum(env, drv));
    set(env, o, "deviceCount", mkNum(env, e == cudaSuccess ? count : 0));
    set(env, o, "error", e == cudaSuccess ? mkNull(env) : mkStr(env, cudaGetErrorName(e)));
    set(env, o, "message", e == cudaSuccess ? mkNull(env) : mkStr(env, cudaGetErrorString(e)));
    if (e == cudaSuccess && count > 0) {
      cudaDeviceProp p;
      if (cudaGetDeviceProperties(&p, 0) == cudaSuccess) {
        set(env, o, "name", mkStr(env, p.name));
        set(env, o, "computeCapability", mkStr(env, std::to_string(p.major) + "." + std::to_string(p.minor)));
        set(env, o, "memoryBytes", mkNum(env, (double)p.totalGlobalMem));
        set(env, o, "multiprocessors", mkNum(env, p.multiProcessorCount));
      }
    } else {
      cudaGetLastError();
    }
    return o;
  });
}

static napi_value deviceInfo(napi_env env) {
  napi_value o;
  napi_create_object(env, &o);
  int rt = 0, drv = 0;
  cudaRuntimeGetVersion(&rt);
  cudaDriverGetVersion(&drv);
  set(env, o, "name", mkStr(env, S.prop.name));
  set(env, o, "computeCapability", mkStr(env, std::to_string(S.prop.major) + "." + std::to_string(S.prop.minor)));
  set(env, o, "multiprocessors", mkNum(env, S.prop.multiProcessorCount));
  set(env, o, "memoryBytes", mkNum(env, (double)S.prop.totalGlobalMem));
  set(env, o, "runtimeVersion", mkNum(env, rt));
  set(env, o, "driverVersion", mkNum(env, drv));
  set(env, o, "cublasLt", S.gemm.handle ? mkStr(env, S.gemm.lt.path + " (version " + std::to_string(S.gemm.lt.version) + ")") : mkNull(env));
  set(env, o, "gemm", mkStr(env, S.gemm.useBuiltin || !S.gemm.handle ? "builtin" : "cublasLt"));
  set(env, o, "tf32", mkBool(env, S.gemm.tf32));
  set(env, o, "ltGelu", mkBool(env, S.ltGelu));
  set(env, o, "tcAttention", mkBool(env, S.tcAttention));
  set(env, o, "lnSplit", mkBool(env, S.lnSplit));
  set(env, o, "splitDecode", mkBool(env, S.splitDecode));
  return o;
}

/** init({builtinGemm, searchDirs}): creates the context, stream, pool and cuBLASLt handle once. */
static napi_value Init(napi_env env, napi_callback_info info) {
  return guarded(env, [&]() {
    auto a = args(env, info, 2);
    const bool builtin = num(env, a[0]) != 0;
    std::vector<std::string> dirs;
    uint32_t n = 0;
    napi_get_array_length(env, a[1], &n);
    for (uint32_t i = 0; i < n; i++) {
      napi_value e;
      napi_get_element(env, a[1], i, &e);
      dirs.push_back(str(env, e));
    }
    if (!S.ready) {
      bindHandlers();
      CK(cudaSetDevice(0));
      CK(cudaGetDeviceProperties(&S.prop, 0));
      CK(cudaStreamCreateWithFlags(&S.stream, cudaStreamNonBlocking));
      cudaMemPool_t pool;
      CK(cudaDeviceGetDefaultMemPool(&pool, 0));
      uint64_t keep = UINT64_MAX;  // cache freed blocks in the pool instead of returning them
      CK(cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &keep));
      // The record kernels write bad input into lives in device memory (atomics on mapped host
      // memory are not portable over PCIe); it is copied back when the host synchronises.
      CK(cudaMallocHost((void**)&S.errHost, sizeof(DeviceErrorRecord)));
      memset(S.errHost, 0, sizeof(DeviceErrorRecord));
      CK(cudaMalloc((void**)&S.errDev, sizeof(DeviceErrorRecord)));
      CK(cudaMemset(S.errDev, 0, sizeof(DeviceErrorRecord)));
      const char* mt = getenv("BLANKGLM_GPU_MULTITENSOR");
      S.multiTensor = !(mt && strcmp(mt, "0") == 0);
      S.ready = true;
    }
    if (!builtin && !S.gemm.handle) {
      std::string tried = loadCublasLt(S.gemm.lt, dirs);
      if (!tried.empty()) {
        throw GpuError("GPU_NO_CUBLASLT", "cuBLASLt was not found (tried:" + tried +
                                              "\n). Install the CUDA toolkit's cuBLAS (or pip's nvidia-cublas wheel), set BLANKGLM_CUBLASLT to the library file, "
                                              "or set BLANKGLM_GPU_GEMM=builtin to use the slower builtin matrix kernel.");
      }
      ltCheck(S.gemm.lt.create(&S.gemm.handle), "Create");
      S.gemm.workspaceBytes = 32u << 20;
      S.gemm.workspace = deviceAlloc(S.gemm.workspaceBytes, "the cuBLASLt workspace", "The backend itself does not fit: free other GPU processes.");
    }
    S.gemm.useBuiltin = builtin || !S.gemm.handle;
    return deviceInfo(env);
  });
}

static void requireReady() {
  if (!S.ready) throw GpuError("GPU_INTERNAL", "the CUDA backend is not initialised");
}

/**
 * alloc(id, dtype, elements, label[, fill]): fill 0 = zeros (the default), 1 = left as the pool hands
 * it out (an op output written whole before any read), 2 = every byte 0xff (NaN in f32 and bf16: a
 * check that nothing reads such a buffer before writing it).
 */
static napi_value Alloc(napi_env env, napi_callback_info info) {
  return guarded(env, [&]() -> napi_value {
    size_t argc = 5;
    std::vector<napi_value> a(5);
    NAPI_OK(napi_get_cb_info(env, info, &argc, a.data(), nullptr, nullptr));
    if (argc < 4) throw GpuError("GPU_INTERNAL", "alloc: expected 4 or 5 arguments");
    const int fill = argc >= 5 ? (int)num(env, a[4]) : 0;
    if (fill < 0 || fill > 2) throw GpuError("GPU_INTERNAL", "alloc: bad fill code");
    requireReady();
    const long long id = (long long)num(env, a[0]);
    const int dtype = (int)num(env, a[1]);
    const size_t elements = (size_t)num(env, a[2]);
    const std::string label = str(env, a[3]);
    if (dtype < 0 || dtype > 3) throw GpuError("GPU_INTERNAL", "bad dtype code");
    Buffer b;
    b.dtype = dtype;
    b.elements = elements;
    const size_t bytes = elements * DTYPE_BYTES[dtype];
    b.ptr = deviceAlloc(bytes, "tensor " + label + " (" + std::to_string(elements) + " × " + DTYPE_NAMES[dtype] + ")");
    if (bytes && fill != 1) CK(cudaMemsetAsync(b.ptr, fill == 2 ? 0xff : 0, bytes, S.stream));
    S.buffers[id] = b;
    return nullptr;
  });
}

static napi_value Free(napi_env env, napi_callback_info info) {
  return guarded(env, [&]() -> napi_value {
    auto a = args(env, info, 1);
    requireReady();
    auto it = S.buffers.find((long long)num(env, a[0]));
    if (it == S.buffers.end()) return nullptr;
    if (it->second.ptr) {
      const char* p = (const char*)it->second.ptr;
      releaseKeepBits(p, p + it->second.elements * DTYPE_BYTES[it->second.dtype]);
      CK(cudaFreeAsync(it->second.ptr, S.stream));
    }
    S.buffers.erase(it);
    return nullptr;
  });
}

static Buffer& bufferById(long long id) {
  auto it = S.buffers.find(id);
  if (it == S.buffers.end()) throw GpuError("GPU_BAD_TENSOR", "tensor #" + std::to_string(id) + " is not allocated on the GPU");
  return it->second;
}

/** write(id, elementOffset, typedArray): host → device, in stream order. */
static napi_value Write(napi_env env, napi_callback_info info) {
  return guarded(env, [&]() -> napi_value {
    auto a = args(env, info, 3);
    requireReady();
    Buffer& b = bufferById((long long)num(env, a[0]));
    const size_t off = (size_t)num(env, a[1]);
    size_t bytes;
    void* data = typedData(env, a[2], &bytes);
    if (bytes == 0) return nullptr;
    CK(cudaMemcpyAsync((char*)b.ptr + off * DTYPE_BYTES[b.dtype], data, bytes, cudaMemcpyHostToDevice, S.stream));
    return nullptr;
  });
}

/** read(id, elementOffset, typedArray): device → host after all pending work. */
static napi_value Read(napi_env env, napi_callback_info info) {
  return guarded(env, [&]() -> napi_value {
    auto a = args(env, info, 3);
    requireReady();
    Buffer& b = bufferById((long long)num(env, a[0]));
    const size_t off = (size_t)num(env, a[1]);
    size_t bytes;
    void* data = typedData(env, a[2], &bytes);
    if (bytes) CK(cudaMemcpyAsync(data, (const char*)b.ptr + off * DTYPE_BYTES[b.dtype], bytes, cudaMemcpyDeviceToHost, S.stream));
    synchronizeStream();
    return nullptr;
  });
}

/** run(Float64Array): decodes and launches a whole sequence (one Node-API crossing). */
static napi_value Run(napi_env env, napi_callback_info info) {
  return guarded(env, [&]() -> napi_value {
    auto a = args(env, info, 1);
    requireReady();
    size_t bytes;
    const double* words = (const double*)typedData(env, a[0], &bytes);
    // Decode the whole sequence first, then launch it: runs of consecutive calls that can share
    // a launch go as one multi-tensor group, the others one by one, in sequence order.
    std::vector<SeqCall> calls;
    walkSequence(words, bytes / 8, [&](long long k, const OpInfo& op, const double* w) { calls.push_back({k, &op, w}); });
    for (size_t i = 0; i < calls.size();) {
      const MtKind g = S.multiTensor ? mtKindOf(calls[i]) : MT_NONE;
      size_t j = i + 1;
      if (g != MT_NONE)
        while (j < calls.size() && mtJoins(g, calls[i], calls[j])) j++;
      if (j - i >= 2) runGroup(g, calls, i, j);
      else runCall(calls[i]);
      i = j;
    }
    return nullptr;
  });
}

static napi_value Synchronize(napi_env env, napi_callback_info) {
  return guarded(env, [&]() -> napi_value {
    if (S.ready) synchronizeStream();
    return nullptr;
  });
}

static napi_value MemInfo(napi_env env, napi_callback_info) {
  return guarded(env, [&]() {
    requireReady();
    size_t f = 0, t = 0;
    CK(cudaMemGetInfo(&f, &t));
    napi_value o;
    napi_create_object(env, &o);
    set(env, o, "free", mkNum(env, (double)f));
    set(env, o, "total", mkNum(env, (double)t));
    set(env, o, "buffers", mkNum(env, (double)S.buffers.size()));
    return o;
  });
}

static napi_value Schema(napi_env env, napi_callback_info) {
  return guarded(env, [&]() { return mkStr(env, schemaSignature()); });
}

/** decode(Float64Array) → [{op, args}]: the C++ decoder's view of a sequence, launching nothing. */
static napi_value Decode(napi_env env, napi_callback_info info) {
  return guarded(env, [&]() {
    auto a = args(env, info, 1);
    size_t bytes;
    const double* words = (const double*)typedData(env, a[0], &bytes);
    napi_value list;
    napi_create_array(env, &list);
    uint32_t idx = 0;
    static const char* const ACTS[] = {"none", "gelu_tanh", "gelu_erf"};
    walkSequence(words, bytes / 8, [&](long long, const OpInfo& op, const double* w) {
      napi_value call, argsObj;
      napi_create_object(env, &call);
      napi_create_object(env, &argsObj);
      set(env, call, "op", mkStr(env, op.name));
      for (const auto& f : op.fields) {
        const double* x = w + f.offset;
        napi_value v;
        switch (f.kind) {
          case 't': v = x[0] < 0 ? mkNull(env) : mkNum(env, x[0]); break;
          case 'b': v = mkBool(env, x[0] != 0); break;
          case 'a': {
            const int k = (int)x[0];
            if (k < 0 || k > 2) throw GpuError("GPU_BAD_SEQUENCE", op.name + ": bad activation code " + std::to_string(k));
            v = mkStr(env, ACTS[k]);
            break;
          }
          case 'v':
            napi_create_object(env, &v);
            set(env, v, "tensor", mkNum(env, x[0]));
            set(env, v, "offset", mkNum(env, x[1]));
            set(env, v, "rowStride", mkNum(env, x[2]));
            set(env, v, "batchStride", mkNum(env, x[3]));
            break;
          case 'd':
            napi_create_object(env, &v);
            set(env, v, "p", mkNum(env, x[0]));
            set(env, v, "seed", mkNum(env, x[1]));
            set(env, v, "stream", mkNum(env, x[2]));
            break;
          default: v = mkNum(env, x[0]);
        }
        set(env, argsObj, f.name.c_str(), v);
      }
      set(env, call, "args", argsObj);
      napi_set_element(env, list, idx++, call);
    });
    return list;
  });
}

/**
 * dropoutFactors(p, seed, stream, count) → Float64Array: the factor (0 or 1/(1−p)) of elements
 * 0..count−1, computed by the same code the kernels run (compiled for the host), so tests on a
 * machine without a GPU check the hash and the threshold bit for bit against TypeScript.
 */
static napi_value DropoutFactors(napi_env env, napi_callback_info info) {
  return guarded(env, [&]() {
    auto a = args(env, info, 4);
    const double words[3] = {num(env, a[0]), num(env, a[1]), num(env, a[2])};
    const size_t count = (size_t)num(env, a[3]);
    const Dropout d = dropoutFromWords(words);
    napi_value ab, arr;
    void* data;
    NAPI_OK(napi_create_arraybuffer(env, count * 8, &data, &ab));
    for (size_t e = 0; e < count; e++) ((double*)data)[e] = dropoutFactor(d, d.stream, (uint32_t)e);
    NAPI_OK(napi_create_typedarray(env, napi_float64_array, count, ab, 0, &arr));
    return arr;
  });
}

/** setProfiling(on): per-op GPU timing with cudaEvents (adds a little launch overhead). */
static napi_value SetProfiling(napi_env env, napi_callback_info info) {
  return guarded(env, [&]() -> napi_value {
    auto a = args(env, info, 1);
    requireReady();
    PROF.on = num(env, a[0]) != 0;
    return nullptr;
  });
}

/** profileReport(reset) → [{op, calls, ms}] in first-seen order, after waiting for the stream. */
static napi_value ProfileReport(napi_env env, napi_callback_info info) {
  return guarded(env, [&]() {
    auto a = args(env, info, 1);
    requireReady();
    PROF.resolve();
    napi_value list;
    napi_create_array(env, &list);
    uint32_t i = 0;
    for (const auto& [key, total] : PROF.totals) {
      napi_value o;
      napi_create_object(env, &o);
      set(env, o, "op", mkStr(env, key));
      set(env, o, "calls", mkNum(env, (double)total.calls));
      set(env, o, "ms", mkNum(env, total.ms));
      napi_set_element(env, list, i++, o);
    }
    if (num(env, a[0]) != 0) PROF.totals.clear();
    return list;
  });
}

/** setOptions(tf32, ltGelu, builtinGemm[, tcAttention]) */
static napi_value SetOptions(napi_env env, napi_callback_info info) {
  return guarded(env, [&]() {
    auto a = args(env, info, 3);
    requireReady();
    S.gemm.tf32 = num(env, a[0]) != 0;
    S.ltGelu = num(env, a[1]) != 0;
    const bool builtin = num(env, a[2]) != 0;
    if (!builtin && !S.gemm.handle) throw GpuError("GPU_NO_CUBLASLT", "cuBLASLt is not loaded");
    S.gemm.useBuiltin = builtin;
    size_t argc = 6;
    napi_value argv[6];
    NAPI_OK(napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr));
    if (argc >= 4) S.tcAttention = num(env, argv[3]) != 0;
    if (argc >= 5) S.lnSplit = num(env, argv[4]) != 0;
    if (argc >= 6) S.splitDecode = num(env, argv[5]) != 0;
    return deviceInfo(env);
  });
}

NAPI_MODULE_INIT() {
  const struct {
    const char* name;
    napi_callback fn;
  } fns[] = {{"probe", Probe}, {"init", Init},   {"alloc", Alloc},   {"free", Free},
             {"write", Write}, {"read", Read},   {"run", Run},       {"synchronize", Synchronize},
             {"memInfo", MemInfo}, {"schema", Schema}, {"decode", Decode}, {"setOptions", SetOptions},
             {"dropoutFactors", DropoutFactors}, {"setProfiling", SetProfiling}, {"profileReport", ProfileReport}};
  for (const auto& f : fns) {
    napi_value v;
    napi_create_function(env, f.name, NAPI_AUTO_LENGTH, f.fn, nullptr, &v);
    napi_set_named_property(env, exports, f.name, v);
  }
  return exports;
}
