// Test-only: a backend that behaves like the reference except for one injected fault, so the tests
// can check that the suite catches each kind of bug and says so usefully.
import { createReferenceBackend, type ReferenceBackend } from '@blankglm/backend-ref';
import type { AllocInit, Backend, DeviceInfo, DType, GuardViolation, OpArgs, OpName, SupportResult, Tensor } from '@blankglm/tensor';

export interface Fault {
  /** Runs before the real op (e.g. to snapshot an output). */
  before?: (op: OpName, args: OpArgs[OpName], inner: ReferenceBackend) => void;
  /** Runs after the real op: corrupt outputs, leak, scribble over inputs … */
  after?: (op: OpName, args: OpArgs[OpName], inner: ReferenceBackend) => void;
  supports?: (op: OpName) => SupportResult | undefined;
  ledger?: Partial<Record<OpName, string>>;
}

/**
 * A fault that rewrites one output of `op` after it ran, from its new values and what the buffer
 * held before the call: `output` picks the tensor (null: leave the call alone), `rewrite` returns
 * the values to write (null: leave them).
 */
export function rewriteOutput<K extends OpName>(
  op: K,
  output: (args: OpArgs[K]) => Tensor | null,
  rewrite: (now: Float32Array, old: Float32Array) => Float32Array | null,
): Fault {
  const before = new Map<number, Float32Array>();
  const pick = (o: OpName, args: OpArgs[OpName]): Tensor | null => (o === op ? output(args as OpArgs[K]) : null);
  return {
    before: (o, args, inner) => {
      const t = pick(o, args);
      if (t) before.set(t.id, inner.read(t) as Float32Array);
    },
    after: (o, args, inner) => {
      const t = pick(o, args);
      if (!t) return;
      const next = rewrite(inner.read(t) as Float32Array, before.get(t.id)!);
      if (next) inner.write(t, next);
    },
  };
}

export class FaultyBackend implements Backend {
  readonly name: string;
  readonly device: DeviceInfo;
  readonly inner = createReferenceBackend();

  constructor(
    name: string,
    private readonly fault: Fault,
  ) {
    this.name = name;
    this.device = { ...this.inner.device, name: `faulty reference (${name})` };
  }

  alloc(dtype: DType, size: number, label?: string, init?: AllocInit): Tensor {
    return this.inner.alloc(dtype, size, label, init);
  }
  free(tensor: Tensor): void {
    this.inner.free(tensor);
  }
  liveBuffers(): number {
    return this.inner.liveBuffers();
  }
  write<D extends DType>(tensor: Tensor & { dtype: D }, data: ArrayLike<number>, offset?: number): void {
    this.inner.write(tensor, data, offset);
  }
  read(tensor: Tensor, offset?: number, length?: number): Float32Array | Int32Array | Uint8Array {
    return this.inner.read(tensor, offset, length);
  }
  synchronize(): void {
    this.inner.synchronize();
  }
  supports<K extends OpName>(op: K, args: OpArgs[K]): SupportResult {
    return this.fault.supports?.(op) ?? this.inner.supports(op, args);
  }
  run<K extends OpName>(op: K, args: OpArgs[K]): void {
    this.fault.before?.(op, args, this.inner);
    this.inner.run(op, args);
    this.fault.after?.(op, args, this.inner);
  }
  ledger(): Partial<Record<OpName, string>> {
    return this.fault.ledger ?? {};
  }
  checkGuards(): GuardViolation[] {
    return this.inner.checkGuards();
  }
  dispose(): void {
    this.inner.dispose();
  }
}
