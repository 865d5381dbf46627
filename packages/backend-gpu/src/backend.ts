// The CUDA backend: a Backend whose buffers live on the GPU and whose ops are CUDA kernels and
// cuBLASLt products in native/. Every call (`run` or `runSequence`) is validated in TypeScript,
// encoded (encode.ts) and handed to the addon in ONE Node-API crossing; the addon enqueues the
// kernels on its stream and returns, so `read`/`synchronize` are where the host waits.
import {
  OP_CATALOGUE,
  checkAllocInit,
  validateOpArgs,
  type AllocInit,
  type Backend,
  type DeviceInfo,
  type DType,
  type OpArgs,
  type OpCall,
  type OpName,
  type SupportResult,
  type Tensor,
} from '@blankglm/tensor';
import { cudaVersionString, diagnose, loadAddon, pythonSitePackages, type NativeAddon, type NativeDeviceInfo, type OpProfileEntry } from './addon.js';
import { encodeSequence } from './encode.js';
import { GpuError, GpuUnavailableError, rethrowNative } from './errors.js';

const DTYPE_CODES: Record<DType, number> = { f32: 0, bf16: 1, i32: 2, u8: 3 };

/** Head sizes the fused attention kernels are instantiated for (D ≤ 64: every GLM preset uses 64). */
export const MAX_HEAD_DIM = 64;

export interface GpuBackendOptions {
  /** Matrix products in TF32 (tensor cores, 10-bit mantissa inputs) instead of exact f32. Default: BLANKGLM_GPU_TF32=1, else false. */
  tf32?: boolean;
  /** cuBLASLt's GELU_AUX_BIAS epilogue for gelu_tanh linears. Default: BLANKGLM_GPU_LT_GELU=1, else false (a separate kernel). */
  ltGelu?: boolean;
  /** 'builtin' uses the addon's own tiled matrix kernel instead of cuBLASLt. Default: BLANKGLM_GPU_GEMM, else 'cublaslt'. */
  gemm?: 'cublaslt' | 'builtin';
  /**
   * Attention kernels for bf16 q/k/v: 'tensor-core' (mma.sync, flash-attention-2 style) or
   * 'scalar' (the f32-math kernels, reading bf16). Default: BLANKGLM_GPU_ATTENTION, else 'tensor-core'.
   * f32 operands always use the scalar kernels.
   */
  attention?: 'tensor-core' | 'scalar';
  /**
   * layerNormBackward kernels for f32 x/dx: 'fused' (one pass that also sums dGamma/dBeta) or
   * 'split' (dx with the whole row's loads in flight, the column sums in a pass of their own).
   * Default: BLANKGLM_GPU_LN_BACKWARD, else 'split' (measured faster on an H200: benchmarks/RESULTS.md).
   */
  layerNormBackward?: 'fused' | 'split';
  /**
   * Attention with at most 16 queries (decoding with the key/value cache): 'one-block' (a block per
   * query and head walks all its keys) or 'split' (blocks of 128 keys each, merged by a second
   * kernel: many more blocks at batch 1). Default: BLANKGLM_GPU_DECODE_ATTENTION, else 'split'.
   */
  decodeAttention?: 'one-block' | 'split';
  /**
   * What buffers allocated 'uninitialized' (op outputs the model overwrites whole) start as:
   * 'none' (whatever the memory pool hands out: no memset, the default), 'zeros' (a memset, as
   * plain allocations), or 'nan' (every byte 0xff, NaN in f32 and bf16: a check that no kernel
   * reads such a buffer before writing it; the GPU checks train this way).
   * Default: BLANKGLM_GPU_UNINITIALIZED, else 'none'.
   */
  uninitialized?: UninitializedFill;
  /** Accepted for the CLI's common options; the GPU backend has no worker threads. */
  threads?: number;
}

/** What buffers allocated 'uninitialized' start as (GpuBackendOptions.uninitialized). */
export type UninitializedFill = 'none' | 'zeros' | 'nan';
const UNINITIALIZED_FILL: Record<UninitializedFill, number> = { zeros: 0, none: 1, nan: 2 };
const FILLS: readonly UninitializedFill[] = ['none', 'zeros', 'nan'];

function oneOf<T extends string>(value: string, allowed: readonly T[], what: string): T {
  if (!(allowed as readonly string[]).includes(value)) throw new RangeError(`${what} must be ${allowed.map((a) => `'${a}'`).join(' or ')}, got '${value}'`);
  return value as T;
}

/** Module-wide tensor ids: several backends in one process share one device context. */
let nextTensorId = 1;

function envFlag(name: string): boolean | undefined {
  const v = process.env[name];
  if (v === undefined || v === '') return undefined;
  return v === '1' || v.toLowerCase() === 'true';
}

export class GpuBackend implements Backend {
  readonly name = 'cuda';
  readonly device: DeviceInfo;
  /** The addon's view of the device and settings (cuBLASLt path, TF32, …). */
  readonly info: NativeDeviceInfo;
  private readonly addon: NativeAddon;
  private readonly live = new Map<number, Tensor>();
  private readonly freed = new Set<number>();
  private disposed = false;
  private fill: UninitializedFill;

  constructor(addon: NativeAddon, info: NativeDeviceInfo, uninitialized: UninitializedFill = 'none') {
    this.addon = addon;
    this.info = info;
    this.fill = oneOf(uninitialized, FILLS, 'uninitialized');
    const [major, minor] = info.computeCapability.split('.');
    this.device = {
      kind: 'cuda',
      name: info.name,
      parallelism: info.multiprocessors,
      memoryBytes: info.memoryBytes,
      features: [
        `sm_${major}${minor}`,
        'f32',
        'bf16',
        info.tf32 ? 'tf32-matmul' : 'f32-matmul',
        info.gemm === 'cublasLt' ? 'cublasLt' : 'builtin-gemm',
        info.tcAttention ? 'tensor-core-attention' : 'fused-attention',
        'deterministic',
      ],
    };
  }

  alloc(dtype: DType, size: number, label?: string, init: AllocInit = 'zeros'): Tensor {
    this.checkNotDisposed();
    if (!(dtype in DTYPE_CODES)) throw new TypeError(`alloc${label ? ` '${label}'` : ''}: unknown dtype '${String(dtype)}', expected f32, bf16, i32 or u8`);
    if (!Number.isInteger(size) || size < 0) throw new RangeError(`alloc${label ? ` '${label}'` : ''}: size must be a non-negative integer, got ${size}`);
    checkAllocInit(init, label);
    const id = nextTensorId++;
    try {
      this.addon.alloc(id, DTYPE_CODES[dtype], size, label ?? `#${id}`, UNINITIALIZED_FILL[init === 'zeros' ? 'zeros' : this.fill]);
    } catch (e) {
      rethrowNative(e);
    }
    const t: Tensor = label === undefined ? { id, dtype, size } : { id, dtype, size, label };
    this.live.set(id, t);
    return t;
  }

  free(tensor: Tensor): void {
    this.checkNotDisposed();
    this.resolve(tensor, 'free');
    this.live.delete(tensor.id);
    this.freed.add(tensor.id);
    this.addon.free(tensor.id);
  }

  /** What buffers allocated 'uninitialized' start as here (GpuBackendOptions.uninitialized). */
  get uninitialized(): UninitializedFill {
    return this.fill;
  }

  liveBuffers(): number {
    return this.live.size;
  }

  write<D extends DType>(tensor: Tensor & { dtype: D }, data: ArrayLike<number>, offset = 0): void {
    this.checkNotDisposed();
    const where = `write to ${describe(tensor)}`;
    this.resolve(tensor, where);
    if (!Number.isInteger(offset) || offset < 0) throw new RangeError(`${where}: offset must be a non-negative integer, got ${offset}`);
    if (offset + data.length > tensor.size) throw new RangeError(`${where}: ${data.length} elements at offset ${offset} run past its end (${tensor.size} elements)`);
    let host: ArrayBufferView;
    switch (tensor.dtype) {
      case 'f32':
        host = data instanceof Float32Array ? data : Float32Array.from(data);
        break;
      case 'bf16':
        host = toBf16Bits(data);
        break;
      case 'i32':
      case 'u8': {
        const typed = tensor.dtype === 'i32' ? data instanceof Int32Array : data instanceof Uint8Array;
        if (typed) {
          host = data as Int32Array | Uint8Array; // holds only valid values: no per-element check
          break;
        }
        const [lo, hi] = tensor.dtype === 'i32' ? [-2147483648, 2147483647] : [0, 255];
        for (let i = 0; i < data.length; i++) {
          const v = data[i]!;
          if (!Number.isInteger(v) || v < lo || v > hi) throw new RangeError(`${where}: data[${i}] = ${v} is not a ${tensor.dtype} value (an integer in [${lo}, ${hi}])`);
        }
        host = tensor.dtype === 'i32' ? (data instanceof Int32Array ? data : Int32Array.from(data)) : data instanceof Uint8Array ? data : Uint8Array.from(data);
        break;
      }
    }
    try {
      this.addon.write(tensor.id, offset, host);
    } catch (e) {
      rethrowNative(e, where);
    }
  }

  read(tensor: Tensor, offset = 0, length?: number): Float32Array | Int32Array | Uint8Array {
    this.checkNotDisposed();
    const where = `read from ${describe(tensor)}`;
    this.resolve(tensor, where);
    const n = length ?? tensor.size - offset;
    if (!Number.isInteger(offset) || offset < 0 || !Number.isInteger(n) || n < 0) throw new RangeError(`${where}: offset and length must be non-negative integers, got ${offset} and ${n}`);
    if (offset + n > tensor.size) throw new RangeError(`${where}: ${n} elements at offset ${offset} run past its end (${tensor.size} elements)`);
    try {
      switch (tensor.dtype) {
        case 'f32': {
          const out = new Float32Array(n);
          this.addon.read(tensor.id, offset, out);
          return out;
        }
        case 'bf16': {
          const bits = new Uint16Array(n);
          this.addon.read(tensor.id, offset, bits);
          return fromBf16Bits(bits);
        }
        case 'i32': {
          const out = new Int32Array(n);
          this.addon.read(tensor.id, offset, out);
          return out;
        }
        case 'u8': {
          const out = new Uint8Array(n);
          this.addon.read(tensor.id, offset, out);
          return out;
        }
      }
    } catch (e) {
      rethrowNative(e, where);
    }
  }

  synchronize(): void {
    this.checkNotDisposed();
    try {
      this.addon.synchronize();
    } catch (e) {
      rethrowNative(e);
    }
  }

  /** Every op with f32 or bf16 float operands, in any mix (bf16 products accumulate in f32); D ≤ 64 for attention. */
  supports<K extends OpName>(op: K, args: OpArgs[K]): SupportResult {
    if (!(op in OP_CATALOGUE)) return { supported: false, reason: `'${String(op)}' is not an op of the catalogue` };
    if ((op === 'attention' || op === 'attentionBackward') && (args as OpArgs['attention']).headDim > MAX_HEAD_DIM) {
      return { supported: false, reason: `cuda: attention kernels are built for head sizes up to ${MAX_HEAD_DIM}, got ${(args as OpArgs['attention']).headDim}` };
    }
    return { supported: true };
  }

  run<K extends OpName>(op: K, args: OpArgs[K]): void {
    this.runCalls([{ op, args } as OpCall]);
  }

  /** The whole sequence in one Node-API crossing: validated and encoded here, decoded and launched by the addon. */
  runSequence(calls: readonly OpCall[]): void {
    this.runCalls(calls);
  }

  ledger(): Partial<Record<OpName, string>> {
    return {};
  }

  /** Free and total device memory (bytes) and the number of buffers the addon holds. */
  memInfo(): { free: number; total: number; buffers: number } {
    return this.addon.memInfo();
  }

  /**
   * Changes the kernel settings for the whole process (all GPU backends share one context) and this
   * backend's `uninitialized` fill. Omitted fields keep their value.
   */
  setOptions(options: Pick<GpuBackendOptions, 'tf32' | 'ltGelu' | 'gemm' | 'attention' | 'layerNormBackward' | 'decodeAttention' | 'uninitialized'>): NativeDeviceInfo {
    const tf32 = options.tf32 ?? this.info.tf32;
    const ltGelu = options.ltGelu ?? this.info.ltGelu;
    const builtin = options.gemm === undefined ? this.info.gemm === 'builtin' : options.gemm === 'builtin';
    const tc = options.attention === undefined ? this.info.tcAttention : options.attention === 'tensor-core';
    const split = options.layerNormBackward === undefined ? this.info.lnSplit : oneOf(options.layerNormBackward, ['fused', 'split'], 'layerNormBackward') === 'split';
    const splitDecode = options.decodeAttention === undefined ? this.info.splitDecode : oneOf(options.decodeAttention, ['one-block', 'split'], 'decodeAttention') === 'split';
    if (options.uninitialized !== undefined) this.fill = oneOf(options.uninitialized, FILLS, 'uninitialized');
    try {
      const info = this.addon.setOptions(tf32 ? 1 : 0, ltGelu ? 1 : 0, builtin ? 1 : 0, tc ? 1 : 0, split ? 1 : 0, splitDecode ? 1 : 0);
      Object.assign(this.info, info);
      return info;
    } catch (e) {
      rethrowNative(e);
    }
  }

  /**
   * Per-op GPU timing: with `on`, every op is bracketed by cudaEvents on the stream (keyed by op
   * and, for products and attention, shape). Read with profileReport().
   */
  setProfiling(on: boolean): void {
    this.checkNotDisposed();
    this.addon.setProfiling(on ? 1 : 0);
  }

  /** GPU milliseconds and call counts per op kind since the last reset (waits for the stream). */
  profileReport(reset = true): OpProfileEntry[] {
    this.checkNotDisposed();
    try {
      return this.addon.profileReport(reset ? 1 : 0);
    } catch (e) {
      rethrowNative(e);
    }
  }

  dispose(): void {
    if (this.disposed) return;
    for (const id of this.live.keys()) this.addon.free(id);
    this.live.clear();
    this.disposed = true;
  }

  private runCalls(calls: readonly OpCall[]): void {
    this.checkNotDisposed();
    calls.forEach((c, k) => {
      const at = calls.length > 1 ? ` (call #${k} of the sequence)` : '';
      try {
        validateOpArgs(c.op, c.args as never);
      } catch (e) {
        if (e instanceof Error) e.message = `${c.op}${at}: ${e.message}`;
        throw e;
      }
      const s = this.supports(c.op, c.args as never);
      if (!s.supported) throw new GpuError('GPU_UNSUPPORTED', `${c.op}${at}: ${s.reason}`);
    });
    const words = encodeSequence(calls, (t, where) => this.resolve(t, where));
    try {
      this.addon.run(words);
    } catch (e) {
      rethrowNative(e);
    }
  }

  private resolve(t: Tensor, where: string): number {
    if (t === null || typeof t !== 'object' || typeof t.id !== 'number') throw new TypeError(`${where}: expected a tensor`);
    const own = this.live.get(t.id);
    if (own === t) return t.id;
    if (this.freed.has(t.id)) throw new ReferenceError(`${where}: tensor ${describe(t)} was used after it was freed`);
    throw new ReferenceError(`${where}: tensor ${describe(t)} does not belong to this GPU backend`);
  }

  private checkNotDisposed(): void {
    if (this.disposed) throw new Error('cuda backend: used after dispose()');
  }
}

function describe(t: Tensor): string {
  return `${t.label ? `'${t.label}' ` : ''}(#${t.id}, ${t.dtype}[${t.size}])`;
}

const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);

/** f32 → bf16 bits, round to nearest even (as the reference's roundToBf16). */
export function toBf16Bits(data: ArrayLike<number>): Uint16Array {
  const out = new Uint16Array(data.length);
  for (let i = 0; i < data.length; i++) {
    f32Scratch[0] = data[i]!;
    const u = u32Scratch[0]!;
    if ((u & 0x7fffffff) > 0x7f800000) out[i] = (u >>> 16) | 0x40;
    else out[i] = ((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) & 0xffff;
  }
  return out;
}

export function fromBf16Bits(bits: Uint16Array): Float32Array {
  const u = new Uint32Array(bits.length);
  for (let i = 0; i < bits.length; i++) u[i] = bits[i]! << 16;
  return new Float32Array(u.buffer);
}

/** Probes without creating a context: {available, detail}. Never throws. */
export async function probeGpu(): Promise<{ available: boolean; detail: string; code?: string }> {
  let addon: NativeAddon;
  try {
    addon = loadAddon();
  } catch (e) {
    const err = e as GpuUnavailableError;
    return { available: false, detail: err.message, code: err.code };
  }
  const p = addon.probe();
  const bad = diagnose(p);
  if (bad) return { available: false, detail: bad.message, code: bad.code };
  const gib = ((p.memoryBytes ?? 0) / 2 ** 30).toFixed(0);
  return {
    available: true,
    detail: `${p.name} (sm_${(p.computeCapability ?? '').replace('.', '')}, ${gib} GiB, ${p.multiprocessors} SMs; driver for CUDA ${cudaVersionString(p.driverVersion)}, runtime ${cudaVersionString(p.runtimeVersion)})`,
  };
}

/** Creates the CUDA backend; throws GpuUnavailableError (with its code) when it cannot run here. */
export function createGpuBackend(options: GpuBackendOptions = {}): GpuBackend {
  const addon = loadAddon();
  const bad = diagnose(addon.probe());
  if (bad) throw bad;
  const builtin = (options.gemm ?? process.env.BLANKGLM_GPU_GEMM ?? 'cublaslt') === 'builtin';
  let info: NativeDeviceInfo;
  let uninitialized: UninitializedFill;
  try {
    addon.init(builtin ? 1 : 0, pythonSitePackages());
    const attention = oneOf(options.attention ?? process.env.BLANKGLM_GPU_ATTENTION ?? 'tensor-core', ['tensor-core', 'scalar'], 'attention (BLANKGLM_GPU_ATTENTION?)');
    const lnBackward = oneOf(options.layerNormBackward ?? (process.env.BLANKGLM_GPU_LN_BACKWARD || 'split'), ['fused', 'split'], 'layerNormBackward (BLANKGLM_GPU_LN_BACKWARD?)');
    const decode = oneOf(options.decodeAttention ?? (process.env.BLANKGLM_GPU_DECODE_ATTENTION || 'split'), ['one-block', 'split'], 'decodeAttention (BLANKGLM_GPU_DECODE_ATTENTION?)');
    uninitialized = oneOf(options.uninitialized ?? (process.env.BLANKGLM_GPU_UNINITIALIZED || 'none'), FILLS, 'uninitialized (BLANKGLM_GPU_UNINITIALIZED?)');
    info = addon.setOptions(
      (options.tf32 ?? envFlag('BLANKGLM_GPU_TF32')) ? 1 : 0,
      (options.ltGelu ?? envFlag('BLANKGLM_GPU_LT_GELU')) ? 1 : 0,
      builtin ? 1 : 0,
      attention === 'tensor-core' ? 1 : 0,
      lnBackward === 'split' ? 1 : 0,
      decode === 'split' ? 1 : 0,
    );
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'GPU_NO_CUBLASLT') throw new GpuUnavailableError('GPU_NO_CUBLASLT', (e as Error).message);
    if (code === 'cudaErrorInsufficientDriver') throw new GpuUnavailableError('GPU_NO_DRIVER', (e as Error).message);
    if (code === 'cudaErrorNoDevice') throw new GpuUnavailableError('GPU_NO_DEVICE', (e as Error).message);
    rethrowNative(e, 'initialising the CUDA backend');
  }
  return new GpuBackend(addon, info, uninitialized);
}
