// The reference backend: every op of the catalogue in plain scalar TypeScript, accumulating in f64
// and storing f32. It is the oracle the faster backends are diffed against, so it favours
// clarity and checks over speed: arguments are validated (`validateOpArgs`), ids and key ranges
// are checked against their tables before any write, and buffers carry guard elements.
import {
  OP_CATALOGUE,
  validateOpArgs,
  type AllocInit,
  type Backend,
  type DeviceInfo,
  type DType,
  type GuardViolation,
  type OpArgs,
  type OpCall,
  type OpName,
  type StridedView,
  type SupportResult,
  type Tensor,
} from '@blankglm/tensor';
import { BufferStore, type Storage } from './memory.js';
import { REFERENCE_OPS, type OpContext } from './ops/index.js';

export interface ReferenceBackendOptions {
  /** Guard elements on each side of every buffer (default 16; 0 disables guards). */
  guardElements?: number;
}

export class ReferenceBackend implements Backend {
  readonly name = 'reference';
  readonly device: DeviceInfo = {
    kind: 'cpu',
    name: 'reference (scalar TypeScript, f64 accumulation)',
    parallelism: 1,
    features: ['f64-accumulation', 'bf16-storage-emulated'],
  };
  private readonly store: BufferStore;
  private disposed = false;

  constructor(options: ReferenceBackendOptions = {}) {
    const guards = options.guardElements ?? 16;
    if (!Number.isInteger(guards) || guards < 0) throw new RangeError(`guardElements must be a non-negative integer, got ${guards}`);
    this.store = new BufferStore(guards);
  }

  alloc(dtype: DType, size: number, label?: string, init?: AllocInit): Tensor {
    this.checkNotDisposed();
    return this.store.alloc(dtype, size, label, init);
  }

  free(tensor: Tensor): void {
    this.checkNotDisposed();
    this.store.free(tensor);
  }

  liveBuffers(): number {
    return this.store.liveCount();
  }

  write<D extends DType>(tensor: Tensor & { dtype: D }, data: ArrayLike<number>, offset = 0): void {
    this.checkNotDisposed();
    this.store.write(tensor, data, offset);
  }

  read(tensor: Tensor, offset = 0, length?: number): Float32Array | Int32Array | Uint8Array {
    this.checkNotDisposed();
    return this.store.read(tensor, offset, length ?? tensor.size - offset);
  }

  /** Nothing is ever pending: every op runs to completion inside `run`. */
  synchronize(): void {}

  /** Every op of the catalogue with f32 or bf16 floats; only an unknown op name is unsupported. */
  supports<K extends OpName>(op: K, _args: OpArgs[K]): SupportResult {
    if (!(op in REFERENCE_OPS)) return { supported: false, reason: `'${String(op)}' is not an op of the catalogue` };
    return { supported: true };
  }

  run<K extends OpName>(op: K, args: OpArgs[K]): void {
    this.checkNotDisposed();
    const implementation = REFERENCE_OPS[op];
    if (!implementation) throw new RangeError(`reference backend: unknown op '${String(op)}'`);
    try {
      validateOpArgs(op, args);
    } catch (e) {
      // validateOpArgs names the argument but not the op; prefix it.
      if (e instanceof Error) e.message = `${op}: ${e.message}`;
      throw e;
    }
    implementation(this.context(op), args);
    // bf16 outputs: computed like f32, then rounded to bf16 (nearest-even).
    const record = args as unknown as Record<string, Tensor | StridedView | null>;
    for (const name of OP_CATALOGUE[op].writes) {
      const target = record[name];
      if (!target) continue;
      this.store.roundIfBf16('tensor' in target ? target.tensor : target);
    }
  }

  runSequence(calls: readonly OpCall[]): void {
    for (const call of calls) this.run(call.op, call.args as never);
  }

  /** The reference covers the whole catalogue: the ledger is empty. */
  ledger(): Partial<Record<OpName, string>> {
    return {};
  }

  checkGuards(): GuardViolation[] {
    return this.store.checkGuards();
  }

  /**
   * Test and debugging hook: the raw storage of a tensor including its guard elements, and the
   * index where its data starts. Writing outside [dataStart, dataStart + size) simulates a
   * kernel that overruns its buffer; `checkGuards()` must then report it.
   */
  rawStorageForTesting(tensor: Tensor): { raw: Storage; dataStart: number } {
    return this.store.rawStorage(tensor);
  }

  dispose(): void {
    this.store.clear();
    this.disposed = true;
  }

  private checkNotDisposed(): void {
    if (this.disposed) throw new Error('reference backend: used after dispose()');
  }

  private context(op: OpName): OpContext {
    const store = this.store;
    const access = (t: Tensor, arg: string, allowed: readonly DType[]): Storage => {
      if (!t) throw new RangeError(`${op}: argument '${arg}' is missing`);
      if (!allowed.includes(t.dtype)) throw new TypeError(`${op}: argument '${arg}' has dtype ${t.dtype}, expected ${allowed.join(' or ')}`);
      return store.data(t, `${op}: argument '${arg}'`);
    };
    return {
      op,
      floats: (t, arg) => access(t, arg, ['f32', 'bf16']) as Float32Array,
      ints: (t, arg) => access(t, arg, ['i32']) as Int32Array,
      any: (t, arg) => access(t, arg, ['f32', 'bf16', 'i32', 'u8']),
      fail: (message) => {
        throw new RangeError(`${op}: ${message}`);
      },
    };
  }
}

/** A new reference backend (the oracle). */
export function createReferenceBackend(options: ReferenceBackendOptions = {}): ReferenceBackend {
  return new ReferenceBackend(options);
}
