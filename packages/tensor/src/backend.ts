// The Backend contract: storage + compute + a capability probe (after ggml's ggml-backend-impl.h).
// A backend is a value passed to the model spec, never a global. Calls are synchronous from the
// caller's view: `run` may enqueue work on a device, `read` and `synchronize` wait for it.
import type { OpArgs, OpName } from './ops.js';

export type DType = 'f32' | 'bf16' | 'i32' | 'u8';

/** Bytes per element of each dtype as stored. */
export const DTYPE_BYTES: Record<DType, number> = { f32: 4, bf16: 2, i32: 4, u8: 1 };

/** A buffer owned by one backend. Opaque: read and write it through that backend. */
export interface Tensor {
  readonly id: number;
  readonly dtype: DType;
  /** Number of elements. */
  readonly size: number;
  /** A name for error messages and leak reports (e.g. the parameter name). */
  readonly label?: string;
}

/** Host-side data for a dtype: f32 and bf16 read and write as Float32Array. */
export type HostArray<D extends DType = DType> = D extends 'i32' ? Int32Array : D extends 'u8' ? Uint8Array : Float32Array;

export interface DeviceInfo {
  kind: 'cpu' | 'wasm' | 'cuda';
  /** Human-readable, e.g. "reference (scalar TypeScript, f64 accumulation)" or "NVIDIA H100 80GB". */
  name: string;
  /** Worker threads or streaming multiprocessors, where it means something. */
  parallelism?: number;
  /** Bytes of memory the backend may allocate, when known. */
  memoryBytes?: number;
  /** Features in use, e.g. ['simd128', 'relaxed-simd', 'threads'] or ['sm_90', 'bf16']. */
  features: string[];
}

/**
 * What a new buffer holds: zeros (the default), or — for a buffer an op will overwrite whole before
 * anything reads it — whatever the backend has at hand, so it can skip the fill (the CUDA backend
 * saves a memset of every activation that way). The reference backend fills such buffers with NaN,
 * so code that reads one before writing it fails its tests.
 */
export type AllocInit = 'zeros' | 'uninitialized';

/** Throws a TypeError naming the buffer unless `init` is an AllocInit (every backend's alloc checks it). */
export function checkAllocInit(init: unknown, label?: string): asserts init is AllocInit {
  if (init !== 'zeros' && init !== 'uninitialized') throw new TypeError(`alloc${label ? ` '${label}'` : ''}: init must be 'zeros' or 'uninitialized', got '${String(init)}'`);
}

export type SupportResult = { supported: true } | { supported: false; reason: string };

/** One op invocation, for backends that run a whole sequence without returning to JavaScript. */
export type OpCall = { [K in OpName]: { op: K; args: OpArgs[K] } }[OpName];

export interface GuardViolation {
  tensor: Tensor;
  /** Which side of the buffer was overwritten. */
  side: 'before' | 'after';
  /** Index of the first overwritten guard element, counted from the buffer's edge. */
  index: number;
}

export interface Backend {
  readonly name: string;
  readonly device: DeviceInfo;

  /** A new buffer of `size` elements, zero-filled unless `init` is 'uninitialized' (see AllocInit). */
  alloc(dtype: DType, size: number, label?: string, init?: AllocInit): Tensor;
  /** Frees a buffer; using it afterwards is an error. */
  free(tensor: Tensor): void;
  /** How many buffers are allocated and not freed (leak checks). */
  liveBuffers(): number;
  /** Copies host data into `tensor` starting at element `offset`. */
  write<D extends DType>(tensor: Tensor & { dtype: D }, data: ArrayLike<number>, offset?: number): void;
  /** Copies `length` elements from element `offset` (default: all) to the host, after pending work. */
  read(tensor: Tensor, offset?: number, length?: number): Float32Array | Int32Array | Uint8Array;
  /** Waits until all enqueued work is done. */
  synchronize(): void;

  /** Whether this backend can run `op` with these arguments (dtypes, sizes, attributes), and why not. */
  supports<K extends OpName>(op: K, args: OpArgs[K]): SupportResult;
  /** Runs (or enqueues) one op of the catalogue. Throws for unsupported calls. */
  run<K extends OpName>(op: K, args: OpArgs[K]): void;
  /**
   * Runs a sequence of ops, e.g. a whole layer or training step. Backends where a call from
   * JavaScript is expensive (CUDA over Node-API) do it in one crossing; others loop over `run`.
   */
  runSequence?(calls: readonly OpCall[]): void;
  /** The ops this backend does not cover at all, with the reason for each (its ledger). */
  ledger(): Partial<Record<OpName, string>>;
  /** Debug aid: reports writes outside any buffer's bounds since allocation (guard elements). */
  checkGuards?(): GuardViolation[];
  /** Frees everything. */
  dispose(): void;
}

/** Runs a sequence through `runSequence` when the backend has it, else op by op. */
export function runAll(backend: Backend, calls: readonly OpCall[]): void {
  if (backend.runSequence) {
    backend.runSequence(calls);
    return;
  }
  for (const c of calls) backend.run(c.op, c.args as never);
}
