// The CPU emulator of the CUDA backend: the addon's own source (addon.cu and every kernel),
// compiled by the host C++ compiler into a Node-API addon that runs with no GPU. It exists to
// run the GPU test suite (conformance against the reference, the training checks) on machines
// without a GPU, so kernel and host logic is checked before a GPU is at hand. It is not fast and
// says nothing about speed.
//
// How: scripts/build-emu.mjs rewrites each `kernel<<<grid, block, smem, stream>>>(args)` into
// `emu::launch("kernel", <a call of kernel>, grid, block, smem, stream)(args)` and compiles with
// `-include emu.h` (linux x64: the fiber switch below is x86-64 assembly).
//  - A launch runs at once (a valid schedule of an asynchronous stream), block by block; the
//    threads of a block are fibers with their own stacks, switched cooperatively:
//    __syncthreads waits for every thread of the block that has not returned, warp operations
//    (__shfl_xor_sync, __any_sync, mma, ldmatrix) for every live lane of the warp. Warps run one
//    at a time, last first, up to the next __syncthreads, so a missing one shows as a wrong
//    result. A barrier that can never be passed (threads waiting at different barriers) aborts
//    the process with the kernel's name.
//  - __shared__ variables are statics in one section (one block runs at a time in the process;
//    launches from several OS threads take turns), filled with 0xff bytes at each launch, so
//    reading shared memory that no thread wrote shows as NaN.
//  - Tensor-core instructions are emulated per their PTX fragment layouts (mma.m16n8k16 bf16,
//    ldmatrix .x4 and .x4.trans); cp.async copies at once.
//  - Device memory is host memory; fresh allocations are filled with 0xff bytes (NaN in f32 and
//    bf16, -1 in i32), so a kernel that reads what nobody wrote shows it (BLANKGLM_EMU_FILL=zero
//    for zeros). Each buffer has its own mapping, 16-byte aligned and ending (to within 15 bytes)
//    at an inaccessible page, with another before it: an access past either end aborts with the
//    kernel, block, thread and offset (BLANKGLM_EMU_GUARD=0: plain memory). Device memory is
//    BLANKGLM_EMU_MEMORY bytes (default 8 GiB) for cudaMemGetInfo and out-of-memory errors.
// cuBLASLt is the CPU library of cublaslt.cpp (build/emu/libcublasLt-emu.so), found through
// BLANKGLM_CUBLASLT like any other.
#pragma once
#include <cuda_runtime.h>
#include <cuda_bf16.h>
#include <signal.h>
#include <sys/mman.h>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <new>
#include <stdexcept>
#include <string>
#include <tuple>
#include <type_traits>
#include <unordered_map>
#include <utility>

#define BLANKGLM_EMU 1

#undef __global__
#undef __device__
#undef __host__
#undef __shared__
#undef __forceinline__
#undef __launch_bounds__
#undef __grid_constant__
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __grid_constant__
// Every __shared__ variable goes to one section, which each launch fills with 0xff bytes first.
#define __shared__ static __attribute__((section("blankglm_emu_shared")))

namespace emu {

// ---- fibers: x86-64 System V context switch (the callee-saved registers; kernels never change the
// floating-point control state, so MXCSR and the x87 control word are left alone) ----
extern "C" void blankglm_emu_switch(void** saveSp, void* loadSp);
asm(R"(
  .text
  .globl blankglm_emu_switch
  .hidden blankglm_emu_switch
  .type blankglm_emu_switch,@function
blankglm_emu_switch:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
  .size blankglm_emu_switch, .-blankglm_emu_switch
)");

constexpr size_t STACK_BYTES = 256 * 1024;
constexpr int MAX_THREADS = 1024;
enum FiberState : int { RUNNING, AT_BLOCK_BARRIER, AT_WARP_BARRIER, DONE };

struct Fiber {
  void* sp = nullptr;  // null until the thread first runs
  FiberState state = DONE;
  uint3 tid;
  int linear = 0;
  int stack = -1;
};

struct BlockRun {
  Fiber fibers[MAX_THREADS];
  char* stacks = nullptr;  // MAX_THREADS stacks, mapped once (pages are touched only as used)
  int freeStacks[MAX_THREADS];  // stacks of finished threads, reused while they are warm
  int freeCount = 0, nextStack = 0;
  void* schedulerSp = nullptr;
  int current = 0;
  int count = 0;
  uint3 bid;
  dim3 blockDim, gridDim;
  void (*body)(void*) = nullptr;
  void* closure = nullptr;
  const char* kernel = "";
  bool inKernel = false;
  uint64_t exchange[MAX_THREADS / 32][32][8];  // per warp, per lane: up to 8 words a warp operation shares
};

// One block runs at a time in the process (launches from several OS threads take turns: see
// runGrid), so the block's state and the __shared__ variables are plain globals.
inline BlockRun* currentRun = nullptr;

inline BlockRun& run() {
  BlockRun*& r = currentRun;
  if (__builtin_expect(!r, 0)) {
    r = new BlockRun();
    void* s = mmap(nullptr, STACK_BYTES * MAX_THREADS, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (s == MAP_FAILED) throw std::bad_alloc();
    r->stacks = (char*)s;
  }
  return *r;
}

inline Fiber& self() { return run().fibers[run().current]; }

inline void yieldToScheduler(FiberState s) {
  BlockRun& r = run();
  Fiber& f = r.fibers[r.current];
  f.state = s;
  blankglm_emu_switch(&f.sp, r.schedulerSp);
}

[[noreturn]] inline void fiberEntry() {
  BlockRun& r = run();
  r.body(r.closure);
  Fiber& f = r.fibers[r.current];
  f.state = DONE;
  blankglm_emu_switch(&f.sp, r.schedulerSp);
  __builtin_unreachable();
}

/** A fresh fiber stack whose first switch "returns" into fiberEntry as if it had been called. */
inline void* initialStack(char* base) {
  uintptr_t top = ((uintptr_t)(base + STACK_BYTES)) & ~(uintptr_t)15;
  uint64_t* sp = (uint64_t*)top;
  *--sp = 0;                            // alignment: fiberEntry starts with rsp ≡ 8 (mod 16), as after a call
  *--sp = (uint64_t)(void*)&fiberEntry;  // the address `ret` jumps to
  for (int i = 0; i < 6; i++) *--sp = 0;  // rbp rbx r12 r13 r14 r15
  return sp;
}

[[noreturn]] inline void fatal(const std::string& what) {
  fprintf(stderr, "[blankglm cuda emulator] %s\n", what.c_str());
  fflush(stderr);
  abort();
}

/**
 * Runs one block: warp by warp, from the last warp to the first, each until all its threads wait at
 * __syncthreads or have returned (warp operations pass as soon as the warp's live lanes are all
 * there); then the block barrier opens and the next round starts. Running warps apart, in an order
 * opposite to the usual producer-first layout, makes a missing __syncthreads show up as a wrong result.
 */
inline void runBlock(BlockRun& r) {
  const int n = r.count;
  for (int t = 0; t < n; t++) {
    Fiber& f = r.fibers[t];
    f.linear = t;
    f.tid = make_uint3(t % r.blockDim.x, (t / r.blockDim.x) % r.blockDim.y, t / (r.blockDim.x * r.blockDim.y));
    f.state = RUNNING;
    f.sp = nullptr;
    f.stack = -1;
  }
  r.freeCount = 0;
  r.nextStack = 0;
  const int warps = (n + 31) / 32;
  for (;;) {
    for (int w = warps - 1; w >= 0; w--) {
      const int first = w * 32, last = first + 32 < n ? first + 32 : n;
      for (;;) {
        for (int t = first; t < last; t++) {
          Fiber& f = r.fibers[t];
          if (f.state != RUNNING) continue;
          if (!f.sp) {  // first run: a stack a finished thread left, else a new one
            f.stack = r.freeCount > 0 ? r.freeStacks[--r.freeCount] : r.nextStack++;
            f.sp = initialStack(r.stacks + (size_t)f.stack * STACK_BYTES);
          }
          r.current = t;
          blankglm_emu_switch(&r.schedulerSp, f.sp);
          if (f.state == DONE) r.freeStacks[r.freeCount++] = f.stack;
        }
        bool any = false, all = true;
        for (int t = first; t < last; t++) {
          const FiberState s = r.fibers[t].state;
          if (s == DONE) continue;
          any = true;
          if (s != AT_WARP_BARRIER) all = false;
        }
        if (!any || !all) break;
        for (int t = first; t < last; t++)
          if (r.fibers[t].state == AT_WARP_BARRIER) r.fibers[t].state = RUNNING;
      }
    }
    bool live = false, allAtBlock = true;
    for (int t = 0; t < n; t++) {
      const FiberState s = r.fibers[t].state;
      if (s == DONE) continue;
      live = true;
      if (s != AT_BLOCK_BARRIER) allAtBlock = false;
    }
    if (!live) return;
    if (!allAtBlock)
      fatal(std::string("kernel ") + r.kernel + ": threads of block (" + std::to_string(r.bid.x) + "," + std::to_string(r.bid.y) + "," +
            std::to_string(r.bid.z) + ") wait at different barriers (a __syncthreads or warp operation not every thread reaches)");
    for (int t = 0; t < n; t++)
      if (r.fibers[t].state == AT_BLOCK_BARRIER) r.fibers[t].state = RUNNING;
  }
}

/** What cudaGetLastError reports next (a launch with a bad configuration sets it, as on a GPU). */
inline cudaError_t lastError = cudaSuccess;

extern "C" char __start_blankglm_emu_shared[], __stop_blankglm_emu_shared[];

inline void runGrid(const char* kernel, dim3 grid, dim3 block, void (*body)(void*), void* closure) {
  static std::mutex oneAtATime;
  std::lock_guard<std::mutex> lock(oneAtATime);
  BlockRun& r = run();
  const long long n = (long long)block.x * block.y * block.z;
  if (n < 1 || n > MAX_THREADS || block.z > 64 || grid.x == 0 || grid.y == 0 || grid.z == 0 || grid.x > 2147483647u || grid.y > 65535 || grid.z > 65535) {
    lastError = cudaErrorInvalidConfiguration;  // the kernel does not run
    return;
  }
  r.count = (int)n;
  r.inKernel = true;
  // Shared memory holds garbage when a kernel starts: NaN bytes, so reading what no thread of the block wrote shows.
  memset(__start_blankglm_emu_shared, 0xff, __stop_blankglm_emu_shared - __start_blankglm_emu_shared);
  r.blockDim = block;
  r.gridDim = grid;
  r.body = body;
  r.closure = closure;
  r.kernel = kernel;
  for (unsigned z = 0; z < grid.z; z++)
    for (unsigned y = 0; y < grid.y; y++)
      for (unsigned x = 0; x < grid.x; x++) {
        r.bid = make_uint3(x, y, z);
        runBlock(r);
      }
  r.inKernel = false;
}

inline int lane() { return self().linear & 31; }
inline int warp() { return self().linear >> 5; }
inline uint64_t* exchange(int w, int l) { return run().exchange[w][l]; }
inline void syncWarp() { yieldToScheduler(AT_WARP_BARRIER); }
inline void syncBlock() { yieldToScheduler(AT_BLOCK_BARRIER); }

/** Every live lane of the warp publishes `words` words, then reads the others' (before they change them again). */
template <typename F>
inline void warpExchange(const uint64_t* mine, int words, F&& readAll) {
  const int w = warp(), l = lane();
  memcpy(exchange(w, l), mine, words * 8);
  syncWarp();
  readAll(run().exchange[w]);
  syncWarp();
}

// ---- kernel launches ----
/** `kernel<<<grid, block, smem, stream>>>(args)`: `call` calls the kernel (a template is deduced from the arguments, as nvcc does). */
template <typename Call>
struct Launcher {
  const char* name;
  Call call;
  dim3 grid, block;
  template <typename... A>
  void operator()(A&&... a) {
    std::tuple<std::decay_t<A>...> args(std::forward<A>(a)...);
    struct Closure {
      Call* call;
      std::tuple<std::decay_t<A>...>* args;
    } c{&call, &args};
    runGrid(name, grid, block, [](void* p) { auto* c = (Closure*)p; std::apply(*c->call, *c->args); }, &c);
  }
};

template <typename Call>
inline Launcher<Call> launch(const char* name, Call call, dim3 grid, dim3 block, size_t sharedBytes = 0, cudaStream_t = nullptr) {
  if (sharedBytes != 0) fatal(std::string("kernel ") + name + ": dynamic shared memory is not emulated");
  return Launcher<Call>{name, call, grid, block};
}

// ---- device memory ----
/** A device buffer's host mapping: an inaccessible page on each side of the buffer, which ends where the upper one starts. */
struct Mapping {
  char* base;
  size_t length;
  size_t bytes;
};

struct Memory {
  std::mutex m;
  std::unordered_map<void*, Mapping> live;
  size_t used = 0;
  size_t total() {
    static const size_t t = [] {
      const char* e = getenv("BLANKGLM_EMU_MEMORY");
      return e ? (size_t)strtoull(e, nullptr, 10) : (size_t)8 << 30;
    }();
    return t;
  }
  bool guards() {
    static const bool g = [] {
      const char* e = getenv("BLANKGLM_EMU_GUARD");
      return !(e && strcmp(e, "0") == 0);
    }();
    return g;
  }
  bool zeroFill() {
    static const bool z = [] {
      const char* e = getenv("BLANKGLM_EMU_FILL");
      return e && strcmp(e, "zero") == 0;
    }();
    return z;
  }
};
inline Memory& memory() {
  static Memory m;
  return m;
}

}  // namespace emu

// ---- what kernels see ----
#define threadIdx (emu::self().tid)
#define blockIdx (emu::run().bid)
#define blockDim (emu::run().blockDim)
#define gridDim (emu::run().gridDim)

static constexpr int warpSize = 32;

inline void __syncthreads() { emu::syncBlock(); }
inline void __syncwarp(unsigned = 0xffffffffu) { emu::syncWarp(); }

template <typename T>
inline T __shfl_xor_sync(unsigned, T v, int laneMask, int width = 32) {
  static_assert(sizeof(T) <= 8, "__shfl_xor_sync of a value wider than 8 bytes");
  uint64_t mine = 0;
  memcpy(&mine, &v, sizeof(T));
  T out;
  const int l = emu::lane();
  int src = l ^ laneMask;
  if ((src & ~(width - 1)) != (l & ~(width - 1))) src = l;
  emu::warpExchange(&mine, 1, [&](uint64_t (*all)[8]) { memcpy(&out, all[src], sizeof(T)); });
  return out;
}

inline int emuWarpVote(int pred, bool any) {
  const uint64_t mine = pred ? 1 : 0;
  int result = any ? 0 : 1;
  const int w = emu::warp();
  const int n = emu::run().count;
  emu::warpExchange(&mine, 1, [&](uint64_t (*all)[8]) {
    for (int l = 0; l < 32 && w * 32 + l < n; l++) {
      if (emu::run().fibers[w * 32 + l].state == emu::DONE) continue;
      if (any && all[l][0]) result = 1;
      if (!any && !all[l][0]) result = 0;
    }
  });
  return result;
}
inline int __any_sync(unsigned, int pred) { return emuWarpVote(pred, true); }
inline int __all_sync(unsigned, int pred) { return emuWarpVote(pred, false); }

// Atomics: one block runs at a time in the process and its threads switch only at barriers, so a
// plain read-modify-write is atomic.
template <typename T>
inline T atomicAdd(T* p, T v) {
  T old = *p;
  *p = old + v;
  return old;
}
template <typename T>
inline T atomicMin(T* p, T v) {
  T old = *p;
  if (v < old) *p = v;
  return old;
}
template <typename T>
inline T atomicMax(T* p, T v) {
  T old = *p;
  if (v > old) *p = v;
  return old;
}
template <typename T>
inline T atomicOr(T* p, T v) {
  T old = *p;
  *p = old | v;
  return old;
}
template <typename T>
inline T atomicCAS(T* p, T compare, T v) {
  T old = *p;
  if (old == compare) *p = v;
  return old;
}

template <typename A, typename B>
inline std::common_type_t<A, B> max(A a, B b) {
  using C = std::common_type_t<A, B>;
  return (C)a > (C)b ? (C)a : (C)b;
}
template <typename A, typename B>
inline std::common_type_t<A, B> min(A a, B b) {
  using C = std::common_type_t<A, B>;
  return (C)a < (C)b ? (C)a : (C)b;
}
inline float __expf(float x) { return expf(x); }
inline float __fdividef(float a, float b) { return a / b; }
inline float __uint_as_float(unsigned u) {
  float f;
  memcpy(&f, &u, 4);
  return f;
}
inline unsigned __float_as_uint(float f) {
  unsigned u;
  memcpy(&u, &f, 4);
  return u;
}
inline size_t __cvta_generic_to_shared(const void* p) { return (size_t)p; }

// ---- tensor-core instructions, per the PTX ISA's fragment layouts ----
namespace emu {
inline float bf16Lo(uint32_t w) { return __uint_as_float(w << 16); }
inline float bf16Hi(uint32_t w) { return __uint_as_float(w & 0xffff0000u); }

/** mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32: D = A[16×16] · B[16×8] + C, per lane 4 outputs. */
inline void mmaM16N8K16(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  const uint64_t mine[6] = {a[0], a[1], a[2], a[3], b0, b1};
  float A[16][16], B[16][8];
  warpExchange(mine, 6, [&](uint64_t (*all)[8]) {
    for (int l = 0; l < 32; l++) {
      const int g = l >> 2, t = l & 3;
      uint32_t w[6];
      for (int i = 0; i < 6; i++) w[i] = (uint32_t)all[l][i];
      A[g][2 * t] = bf16Lo(w[0]), A[g][2 * t + 1] = bf16Hi(w[0]);
      A[g + 8][2 * t] = bf16Lo(w[1]), A[g + 8][2 * t + 1] = bf16Hi(w[1]);
      A[g][2 * t + 8] = bf16Lo(w[2]), A[g][2 * t + 9] = bf16Hi(w[2]);
      A[g + 8][2 * t + 8] = bf16Lo(w[3]), A[g + 8][2 * t + 9] = bf16Hi(w[3]);
      B[2 * t][g] = bf16Lo(w[4]), B[2 * t + 1][g] = bf16Hi(w[4]);
      B[2 * t + 8][g] = bf16Lo(w[5]), B[2 * t + 9][g] = bf16Hi(w[5]);
    }
  });
  const int g = lane() >> 2, t = lane() & 3;
  const int rows[4] = {g, g, g + 8, g + 8}, cols[4] = {2 * t, 2 * t + 1, 2 * t, 2 * t + 1};
  for (int i = 0; i < 4; i++) {
    float s = 0.f;
    for (int k = 0; k < 16; k++) s = fmaf(A[rows[i]][k], B[k][cols[i]], s);
    c[i] += s;
  }
}

/** ldmatrix.sync.aligned.m8n8.x4[.trans].shared.b16: lanes 8j..8j+7 give the rows of matrix j. */
inline void ldmatrixX4(uint32_t (&r)[4], const void* p, bool trans) {
  const uint64_t mine = (uint64_t)(uintptr_t)p;
  const int l = lane();
  warpExchange(&mine, 1, [&](uint64_t (*all)[8]) {
    for (int j = 0; j < 4; j++) {
      uint16_t e[2];
      for (int h = 0; h < 2; h++) {
        const int row = trans ? 2 * (l & 3) + h : l >> 2, col = trans ? l >> 2 : 2 * (l & 3) + h;
        const uint16_t* rowPtr = (const uint16_t*)(uintptr_t)all[8 * j + row][0];
        e[h] = rowPtr[col];
      }
      r[j] = (uint32_t)e[0] | ((uint32_t)e[1] << 16);
    }
  });
}
}  // namespace emu

// ---- the CUDA runtime, on the host ----
namespace emu {
inline cudaError_t fail(cudaError_t e) { return lastError = e; }
/** Reports an access to a guard page (a kernel or the host past a device buffer) and aborts; hands other faults on. */
inline void onSegv(int sig, siginfo_t* info, void* context);
inline struct sigaction previousSegv;

inline void installGuardHandler() {
  static std::once_flag once;
  std::call_once(once, [] {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = onSegv;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, &previousSegv);
  });
}

inline void onSegv(int sig, siginfo_t* info, void* context) {
  const char* a = (const char*)info->si_addr;
  for (const auto& [p, mp] : memory().live) {
    if (a < mp.base || a >= mp.base + mp.length) continue;
    const char* start = (const char*)p;
    const long long offset = a - start;
    BlockRun* r = currentRun;
    char where[256];
    if (r && r->inKernel)
      snprintf(where, sizeof where, "kernel %s (block %u,%u,%u, thread %u,%u,%u)", r->kernel, r->bid.x, r->bid.y, r->bid.z, r->fibers[r->current].tid.x,
               r->fibers[r->current].tid.y, r->fibers[r->current].tid.z);
    else
      snprintf(where, sizeof where, "host code");
    fprintf(stderr, "[blankglm cuda emulator] %s touched byte %lld of a device buffer of %zu bytes at %p: %s its end\n", where, offset, mp.bytes, p,
            offset < 0 ? "before" : "past");
    fflush(stderr);
    abort();
  }
  // Not a guard page: whoever handled SIGSEGV before (V8's WebAssembly traps, or the default) does.
  if (previousSegv.sa_flags & SA_SIGINFO) {
    previousSegv.sa_sigaction(sig, info, context);
  } else if (previousSegv.sa_handler == SIG_DFL || previousSegv.sa_handler == SIG_IGN) {
    signal(SIGSEGV, SIG_DFL);  // the instruction faults again, now fatally
  } else {
    previousSegv.sa_handler(sig);
  }
}

inline void* allocate(size_t bytes, cudaError_t& err) {
  Memory& m = memory();
  std::lock_guard<std::mutex> g(m.m);
  if (m.used + bytes > m.total()) {
    err = cudaErrorMemoryAllocation;
    return nullptr;
  }
  const size_t page = 4096;
  // 16-byte aligned (what the kernels' vector accesses need), ending as close to the upper guard page as that allows.
  const size_t payload = bytes == 0 ? 16 : (bytes + 15) / 16 * 16;
  const size_t body = (payload + page - 1) / page * page;
  const bool guards = m.guards();
  const size_t length = body + (guards ? 2 * page : 0);
  char* base = (char*)mmap(nullptr, length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (base == (char*)MAP_FAILED) {
    err = cudaErrorMemoryAllocation;
    return nullptr;
  }
  char* p = base;
  if (guards) {
    installGuardHandler();
    mprotect(base, page, PROT_NONE);
    mprotect(base + page + body, page, PROT_NONE);
    p = base + page + body - payload;
  }
  memset(p, m.zeroFill() ? 0 : 0xff, bytes);
  m.live[p] = Mapping{base, length, bytes};
  m.used += bytes;
  err = cudaSuccess;
  return p;
}
inline cudaError_t release(void* p) {
  if (!p) return cudaSuccess;
  Memory& m = memory();
  std::lock_guard<std::mutex> g(m.m);
  auto it = m.live.find(p);
  if (it == m.live.end()) return fail(cudaErrorInvalidValue);
  m.used -= it->second.bytes;
  munmap(it->second.base, it->second.length);
  m.live.erase(it);
  return cudaSuccess;
}
struct EventRec {
  double ms = 0;
};
}  // namespace emu

extern "C" {
cudaError_t cudaGetLastError(void) {
  cudaError_t e = emu::lastError;
  emu::lastError = cudaSuccess;
  return e;
}
cudaError_t cudaPeekAtLastError(void) { return emu::lastError; }
const char* cudaGetErrorName(cudaError_t e) {
  switch (e) {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
    case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
    case cudaErrorNoDevice: return "cudaErrorNoDevice";
    case cudaErrorInvalidConfiguration: return "cudaErrorInvalidConfiguration";
    default: return "cudaErrorUnknown";
  }
}
const char* cudaGetErrorString(cudaError_t e) {
  switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorNoDevice: return "no CUDA-capable device is detected";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    default: return "unknown error";
  }
}
cudaError_t cudaRuntimeGetVersion(int* v) {
  *v = CUDART_VERSION;
  return cudaSuccess;
}
cudaError_t cudaDriverGetVersion(int* v) {
  *v = CUDART_VERSION;
  return cudaSuccess;
}
cudaError_t cudaGetDeviceCount(int* n) {
  *n = 1;
  return cudaSuccess;
}
cudaError_t cudaSetDevice(int d) { return d == 0 ? cudaSuccess : emu::fail(cudaErrorInvalidDevice); }
cudaError_t cudaGetDeviceProperties(cudaDeviceProp* p, int d) {
  if (d != 0) return emu::fail(cudaErrorInvalidDevice);
  memset(p, 0, sizeof *p);
  snprintf(p->name, sizeof p->name, "blankglm CUDA emulator (CPU)");
  p->major = 9;
  p->minor = 0;
  p->multiProcessorCount = 1;
  p->totalGlobalMem = emu::memory().total();
  p->warpSize = 32;
  p->maxThreadsPerBlock = 1024;
  p->sharedMemPerBlock = 48 * 1024;
  return cudaSuccess;
}
cudaError_t cudaMemGetInfo(size_t* freeBytes, size_t* totalBytes) {
  emu::Memory& m = emu::memory();
  *totalBytes = m.total();
  *freeBytes = m.total() - m.used;
  return cudaSuccess;
}
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* s, unsigned int) {
  *s = (cudaStream_t) new int(0);
  return cudaSuccess;
}
cudaError_t cudaStreamDestroy(cudaStream_t s) {
  delete (int*)s;
  return cudaSuccess;
}
cudaError_t cudaStreamSynchronize(cudaStream_t) { return cudaSuccess; }
cudaError_t cudaDeviceSynchronize(void) { return cudaSuccess; }
cudaError_t cudaDeviceGetDefaultMemPool(cudaMemPool_t* pool, int) {
  static int thePool;
  *pool = (cudaMemPool_t)&thePool;
  return cudaSuccess;
}
cudaError_t cudaMemPoolSetAttribute(cudaMemPool_t, enum cudaMemPoolAttr, void*) { return cudaSuccess; }
cudaError_t cudaMalloc(void** p, size_t bytes) {
  cudaError_t e;
  *p = emu::allocate(bytes, e);
  return e == cudaSuccess ? e : emu::fail(e);
}
cudaError_t cudaMallocAsync(void** p, size_t bytes, cudaStream_t) { return cudaMalloc(p, bytes); }
cudaError_t cudaFree(void* p) { return emu::release(p); }
cudaError_t cudaFreeAsync(void* p, cudaStream_t) { return emu::release(p); }
cudaError_t cudaMallocHost(void** p, size_t bytes) {
  *p = malloc(bytes ? bytes : 1);
  return *p ? cudaSuccess : emu::fail(cudaErrorMemoryAllocation);
}
cudaError_t cudaFreeHost(void* p) {
  free(p);
  return cudaSuccess;
}
cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, enum cudaMemcpyKind) {
  memmove(dst, src, bytes);
  return cudaSuccess;
}
cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, enum cudaMemcpyKind, cudaStream_t) {
  memmove(dst, src, bytes);
  return cudaSuccess;
}
cudaError_t cudaMemset(void* p, int v, size_t bytes) {
  memset(p, v, bytes);
  return cudaSuccess;
}
cudaError_t cudaMemsetAsync(void* p, int v, size_t bytes, cudaStream_t) {
  memset(p, v, bytes);
  return cudaSuccess;
}
cudaError_t cudaEventCreate(cudaEvent_t* e) {
  *e = (cudaEvent_t) new emu::EventRec();
  return cudaSuccess;
}
cudaError_t cudaEventDestroy(cudaEvent_t e) {
  delete (emu::EventRec*)e;
  return cudaSuccess;
}
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t) {
  ((emu::EventRec*)e)->ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now().time_since_epoch()).count();
  return cudaSuccess;
}
cudaError_t cudaEventSynchronize(cudaEvent_t) { return cudaSuccess; }
cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t a, cudaEvent_t b) {
  *ms = (float)(((emu::EventRec*)b)->ms - ((emu::EventRec*)a)->ms);
  return cudaSuccess;
}
}
