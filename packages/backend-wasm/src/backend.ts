// The WebAssembly backend: one shared WebAssembly.Memory (the Arena), the kernel module compiled
// once and instantiated on the calling thread and on every pool worker, and the op dispatch table.
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import {
  OP_NAMES,
  checkAllocInit,
  validateOpArgs,
  type AllocInit,
  type Backend,
  type DeviceInfo,
  type DType,
  type GuardViolation,
  type OpArgs,
  type OpCall,
  type OpName,
  type SupportResult,
  type Tensor,
} from '@blankglm/tensor';
import { Arena, MAX_PAGES, PAGE_BYTES, describeTensor, formatBytes } from './arena.js';
import { VARIANT_FEATURES, VARIANT_FILES, enableRelaxedSimd, hasSimd, hasThreads, type Variant } from './features.js';
import type { WasmOpContext } from './ops/context.js';
import { WASM_OPS } from './ops/index.js';
import { roundBf16 } from './ops/memory-ops.js';
import { ThreadPool } from './pool.js';

export interface WasmBackendOptions {
  /** Threads including the calling one (default: every core, `os.availableParallelism()`). */
  threads?: number;
  /** Force a kernel build: 'relaxed' (relaxed SIMD + threads), 'simd-threads', or 'simd' (single thread, unshared memory). */
  variant?: Variant | 'auto';
  /** The most bytes the memory may grow to (default and maximum: 4 GiB). */
  memoryLimitBytes?: number;
  /** Where once-only notices go (e.g. "shared memory unavailable: single thread"); default: stderr. */
  notice?: (message: string) => void;
}

/** Thrown when this runtime cannot run the backend at all (no WebAssembly SIMD). */
export class WasmUnavailableError extends Error {
  override readonly name = 'WasmUnavailableError';
  readonly code = 'WASM_UNAVAILABLE';
}

const said = new Set<string>();
function sayOnce(notice: ((m: string) => void) | undefined, message: string): void {
  if (said.has(message)) return;
  said.add(message);
  (notice ?? ((m: string) => process.stderr.write(`${m}\n`)))(message);
}

const moduleCache = new Map<Variant, WebAssembly.Module>();
function loadModule(variant: Variant): WebAssembly.Module {
  let m = moduleCache.get(variant);
  if (!m) {
    const url = new URL(`./${VARIANT_FILES[variant]}`, import.meta.url);
    let bytes: Buffer;
    try {
      bytes = readFileSync(url);
    } catch (e) {
      throw new WasmUnavailableError(`wasm backend: kernel file ${url.pathname} is missing (${(e as Error).message}); build the package (pnpm --filter @blankglm/backend-wasm build)`);
    }
    m = new WebAssembly.Module(new Uint8Array(bytes));
    moduleCache.set(variant, m);
  }
  return m;
}

/** Picks the kernel build and thread count for these options on this runtime. */
export function resolveVariant(options: WasmBackendOptions = {}): { variant: Variant; threads: number; notes: string[] } {
  if (!hasSimd()) throw new WasmUnavailableError('wasm backend: this runtime has no WebAssembly SIMD (v128); the kernels need it (Node >= 16.4). Use the ref backend.');
  const requested = options.threads ?? availableParallelism();
  if (!Number.isInteger(requested) || requested < 1) throw new RangeError(`threads must be a positive integer, got ${requested}`);
  const notes: string[] = [];
  const want = options.variant ?? 'auto';
  if (want === 'simd') {
    if (requested > 1) notes.push(`wasm backend: the 'simd' build is single-threaded; running on 1 thread instead of ${requested}`);
    return { variant: 'simd', threads: 1, notes };
  }
  if (!hasThreads()) {
    if (want !== 'auto') throw new WasmUnavailableError(`wasm backend: variant '${want}' needs shared WebAssembly memory, which this runtime does not have`);
    notes.push('wasm backend: shared WebAssembly memory is unavailable here; running single-threaded');
    return { variant: 'simd', threads: 1, notes };
  }
  if (want === 'relaxed' || want === 'auto') {
    if (enableRelaxedSimd()) return { variant: 'relaxed', threads: requested, notes };
    if (want === 'relaxed') throw new WasmUnavailableError("wasm backend: variant 'relaxed' requested but this runtime has no relaxed SIMD");
  }
  return { variant: 'simd-threads', threads: requested, notes };
}

/** Per-thread scratch: the gemm packing buffers, and room for other kernels' blocks. */
const MIN_SCRATCH_BYTES = 2 << 20;

export class WasmBackend implements Backend {
  readonly name = 'wasm';
  readonly device: DeviceInfo;
  readonly variant: Variant;
  readonly threads: number;
  readonly scratchBytes: number;
  private readonly arena: Arena;
  private readonly pool: ThreadPool;
  private readonly scratchBase: number[] = [];
  private disposed = false;

  constructor(options: WasmBackendOptions = {}) {
    const { variant, threads, notes } = resolveVariant(options);
    for (const n of notes) sayOnce(options.notice, n);
    this.variant = variant;
    this.threads = threads;
    const limit = options.memoryLimitBytes ?? MAX_PAGES * PAGE_BYTES;
    if (!(limit > 0 && limit <= MAX_PAGES * PAGE_BYTES)) throw new RangeError(`memoryLimitBytes must be in (0, 4 GiB], got ${limit}`);
    const module = loadModule(variant);
    const shared = variant !== 'simd';
    const memory = new WebAssembly.Memory({ initial: 32, maximum: MAX_PAGES, shared } as WebAssembly.MemoryDescriptor);
    const instance = new WebAssembly.Instance(module, { env: { memory, abort: () => { throw new Error('kernel abort'); } } });
    const exports = instance.exports as Record<string, () => number>;
    this.arena = new Arena(memory, exports.heapBase!(), limit);
    this.pool = new ThreadPool(module, memory, instance, threads, variant === 'relaxed');
    this.scratchBytes = Math.max(MIN_SCRATCH_BYTES, exports.gemmScratchBytes!());
    for (let t = 0; t < threads; t++) this.scratchBase.push(this.arena.allocRaw(this.scratchBytes, `thread ${t} scratch`).start);
    this.device = {
      kind: 'wasm',
      name: `WebAssembly ${variant === 'relaxed' ? 'relaxed SIMD (FMA)' : 'SIMD128'}, ${threads} thread${threads === 1 ? '' : 's'}`,
      parallelism: threads,
      memoryBytes: limit,
      features: VARIANT_FEATURES[variant],
    };
  }

  /** Resolves once every pool worker is ready (ops also work before; the first one then waits). */
  ready(): Promise<void> {
    return this.pool.ready();
  }

  /** Every buffer comes zero-filled from the arena, 'uninitialized' ones too. */
  alloc(dtype: DType, size: number, label?: string, init: AllocInit = 'zeros'): Tensor {
    this.checkNotDisposed();
    checkAllocInit(init, label);
    return this.arena.alloc(dtype, size, label);
  }

  free(tensor: Tensor): void {
    this.checkNotDisposed();
    this.arena.free(tensor);
  }

  liveBuffers(): number {
    return this.arena.liveCount();
  }

  write<D extends DType>(tensor: Tensor & { dtype: D }, data: ArrayLike<number>, offset = 0): void {
    this.checkNotDisposed();
    const where = `write to ${describeTensor(tensor)}`;
    const ptr = this.arena.pointer(tensor, where);
    if (!Number.isInteger(offset) || offset < 0) throw new RangeError(`${where}: offset must be a non-negative integer, got ${offset}`);
    if (offset + data.length > tensor.size) throw new RangeError(`${where}: ${data.length} elements at offset ${offset} run past its end (${tensor.size} elements)`);
    const buf = this.arena.bytes().buffer;
    switch (tensor.dtype) {
      case 'f32':
        new Float32Array(buf, ptr + offset * 4, data.length).set(data);
        return;
      case 'bf16': {
        const out = new Float32Array(buf, ptr + offset * 4, data.length);
        for (let i = 0; i < data.length; i++) out[i] = roundBf16(data[i]!);
        return;
      }
      case 'i32':
      case 'u8': {
        const [lo, hi] = tensor.dtype === 'i32' ? [-2147483648, 2147483647] : [0, 255];
        for (let i = 0; i < data.length; i++) {
          const v = data[i]!;
          if (!Number.isInteger(v) || v < lo || v > hi) throw new RangeError(`${where}: data[${i}] = ${v} is not a ${tensor.dtype} value (an integer in [${lo}, ${hi}])`);
        }
        if (tensor.dtype === 'i32') new Int32Array(buf, ptr + offset * 4, data.length).set(data);
        else new Uint8Array(buf, ptr + offset, data.length).set(data);
        return;
      }
    }
  }

  read(tensor: Tensor, offset = 0, length?: number): Float32Array | Int32Array | Uint8Array {
    this.checkNotDisposed();
    const where = `read from ${describeTensor(tensor)}`;
    const ptr = this.arena.pointer(tensor, where);
    const n = length ?? tensor.size - offset;
    if (!Number.isInteger(offset) || offset < 0 || !Number.isInteger(n) || n < 0) throw new RangeError(`${where}: offset and length must be non-negative integers, got ${offset} and ${n}`);
    if (offset + n > tensor.size) throw new RangeError(`${where}: ${n} elements at offset ${offset} run past its end (${tensor.size} elements)`);
    const buf = this.arena.bytes().buffer;
    if (tensor.dtype === 'i32') return new Int32Array(buf, ptr + offset * 4, n).slice();
    if (tensor.dtype === 'u8') return new Uint8Array(buf, ptr + offset, n).slice();
    return new Float32Array(buf, ptr + offset * 4, n).slice();
  }

  /** Every op runs to completion inside `run`. */
  synchronize(): void {}

  supports<K extends OpName>(op: K, args: OpArgs[K]): SupportResult {
    const impl = WASM_OPS[op];
    if (!impl) return { supported: false, reason: this.ledger()[op] ?? `'${String(op)}' is not an op of the catalogue` };
    if (op !== 'fill' && op !== 'copy') {
      for (const [name, value] of Object.entries(args as object)) {
        const t = value && typeof value === 'object' ? ('tensor' in value ? (value as { tensor: Tensor }).tensor : (value as Tensor)) : null;
        if (t && (t as Tensor).dtype === 'bf16') return { supported: false, reason: `${name} is bf16: the wasm kernels compute on f32 tensors only` };
      }
    }
    return impl.supports ? (impl.supports as (a: OpArgs[K]) => SupportResult)(args) : { supported: true };
  }

  run<K extends OpName>(op: K, args: OpArgs[K]): void {
    this.checkNotDisposed();
    try {
      validateOpArgs(op, args);
    } catch (e) {
      if (e instanceof Error) e.message = `${op}: ${e.message}`;
      throw e;
    }
    const support = this.supports(op, args);
    if (!support.supported) throw new RangeError(`wasm backend: ${op} is not supported: ${support.reason}`);
    const temps: { start: number; bytes: number }[] = [];
    try {
      (WASM_OPS[op]!.run as (ctx: WasmOpContext, a: OpArgs[K]) => void)(this.context(op, temps), args);
    } finally {
      for (let i = temps.length - 1; i >= 0; i--) this.arena.freeRaw(temps[i]!);
    }
  }

  runSequence(calls: readonly OpCall[]): void {
    for (const call of calls) this.run(call.op, call.args as never);
  }

  ledger(): Partial<Record<OpName, string>> {
    const out: Partial<Record<OpName, string>> = {};
    for (const op of OP_NAMES) if (!WASM_OPS[op]) out[op] = 'no WebAssembly kernel yet';
    return out;
  }

  checkGuards(): GuardViolation[] {
    return this.arena.checkGuards();
  }

  /** Bytes in use (tensors with guards, per-thread scratch), the memory's current size and its limit. */
  memoryUsage(): { usedBytes: number; peakBytes: number; memoryBytes: number; limitBytes: number; liveBuffers: number } {
    return { usedBytes: this.arena.usedBytes(), peakBytes: this.arena.peakBytes(), memoryBytes: this.arena.memoryBytes(), limitBytes: this.arena.limitBytes, liveBuffers: this.arena.liveCount() };
  }

  /**
   * The SIMD multiply-add peak of this machine as the kernels' build runs it (GFLOP/s, an FMA
   * counted as 2 flops in the relaxed build): 8 independent f32x4 chains, no memory traffic,
   * on one thread and on every pool thread at once.
   */
  measureSimdPeak(iterations = 20_000_000): { perThread: number; allThreads: number } {
    const flopsPerIteration = 8 * 4 * 2; // 8 chains × 4 lanes × (multiply + add)
    // Warm-up: V8 first runs a wasm function in its baseline compiler and swaps in optimised code
    // only for later calls, so a few short calls come first.
    for (let i = 0; i < 20; i++) this.pool.call('simdPeak', 200_000, 1);
    this.pool.run('simdPeak', Array.from({ length: this.threads }, () => [['simdPeak', 2_000_000, 1] as const]));
    let t0 = performance.now();
    this.pool.call('simdPeak', iterations, 1);
    const one = (flopsPerIteration * iterations) / ((performance.now() - t0) / 1000) / 1e9;
    t0 = performance.now();
    this.pool.run('simdPeak', Array.from({ length: this.threads }, () => [['simdPeak', iterations, 1] as const]));
    const all = (flopsPerIteration * iterations * this.threads) / ((performance.now() - t0) / 1000) / 1e9;
    return { perThread: one, allThreads: all };
  }

  /** Test hook: make pool worker `worker` exit or throw during the next job. */
  crashWorkerForTesting(kind: 'exit' | 'throw', worker = 1): void {
    this.pool.testHook(kind, worker);
  }

  /** Test hook: the byte offset of a tensor's data and the memory, to simulate an overrunning kernel. */
  rawMemoryForTesting(tensor: Tensor): { bytes: Uint8Array; dataOffset: number } {
    return { bytes: this.arena.bytes(), dataOffset: this.arena.dataOffset(tensor) };
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.arena.clear();
    this.pool.dispose();
  }

  private checkNotDisposed(): void {
    if (this.disposed) throw new Error('wasm backend: used after dispose()');
  }

  private context(op: OpName, temps: { start: number; bytes: number }[]): WasmOpContext {
    const arena = this.arena;
    const threads = this.threads;
    const pool = this.pool;
    const scratch = this.scratchBase;
    return {
      op,
      threads,
      scratchBytes: this.scratchBytes,
      ptr: (t, arg, offset = 0) => arena.pointer(t, `${op}: argument '${arg}'`, offset),
      scratch: (t) => scratch[t]!,
      temp: (bytes) => {
        const block = arena.allocRaw(bytes, `a temporary of ${op} (${formatBytes(bytes)})`);
        temps.push(block);
        return block.start;
      },
      split: (count, options = {}) => {
        const align = options.align ?? 1;
        const min = options.minPerThread ?? 1;
        const n = Math.max(1, Math.min(threads, Math.floor(count / Math.max(1, min))));
        const chunk = Math.ceil(count / n / align) * align;
        const out: Array<[number, number]> = [];
        for (let s = 0; s < count; s += chunk) out.push([s, Math.min(count, s + chunk)]);
        return out;
      },
      parallel: (perThread) => pool.run(op, perThread),
      ints: (t, arg, count) => {
        if (t.dtype !== 'i32') throw new TypeError(`${op}: argument '${arg}' has dtype ${t.dtype}, expected i32`);
        return new Int32Array(arena.bytes().buffer, arena.pointer(t, `${op}: argument '${arg}'`), count);
      },
      fail: (message) => {
        throw new RangeError(`${op}: ${message}`);
      },
    };
  }
}

/** A new WASM backend (synchronous; pool workers finish starting in the background). */
export function createWasmBackend(options: WasmBackendOptions = {}): WasmBackend {
  return new WasmBackend(options);
}
