// Buffer storage of the reference backend: one host typed array per tensor, zero-filled (or, for
// alloc(…, 'uninitialized'), filled with a poison value: NaN for floats, so a read before the first
// write shows in every result), with guard elements on both sides filled with a sentinel bit pattern.
//
//   raw:  [ guard × G | data × size | guard × G ]
//
// Ops only ever see `data` (a subarray), and a JavaScript typed array drops writes past its end,
// so the reference's own kernels cannot overrun a buffer. The guards exist for code that writes
// through the raw storage — a simulated native kernel, or a test of the guard check itself via
// `rawStorageForTesting` — and `checkGuards()` reports any sentinel that changed.
import { checkAllocInit, type AllocInit, type DType, type GuardViolation, type Tensor } from '@blankglm/tensor';
import { roundArrayToBf16 } from './math/bf16.js';

export type Storage = Float32Array | Int32Array | Uint8Array;

/** A signalling-NaN bit pattern for 32-bit guards (f32, bf16, i32); 0xa5 for u8. */
const GUARD_BITS_32 = 0x7fa5a5a5;
const GUARD_BYTE = 0xa5;
/** What an 'uninitialized' buffer holds: NaN for floats; for ids, a value outside every table. */
const POISON_I32 = 0x5a5a5a5a;
const POISON_U8 = 0x5a;

interface Allocation {
  tensor: Tensor;
  /** Guards + data + guards. */
  raw: Storage;
  /** The tensor's elements: raw.subarray(G, G + size). */
  data: Storage;
}

/** Describes a tensor for error messages: 'attn.qkv' (#12, f32[384]). */
export function describeTensor(t: Tensor): string {
  return `${t.label ? `'${t.label}' ` : ''}(#${t.id}, ${t.dtype}[${t.size}])`;
}

export class BufferStore {
  private nextId = 1;
  private readonly live = new Map<number, Allocation>();
  /** Labels of freed buffers, so a use after free names what was freed. */
  private readonly freed = new Map<number, string>();

  constructor(
    /** Guard elements on each side of every buffer. */
    readonly guardElements: number,
  ) {}

  alloc(dtype: DType, size: number, label?: string, init: AllocInit = 'zeros'): Tensor {
    checkAllocInit(init, label);
    if (!Number.isInteger(size) || size < 0) throw new RangeError(`alloc${label ? ` '${label}'` : ''}: size must be a non-negative integer, got ${size}`);
    const g = this.guardElements;
    let raw: Storage;
    switch (dtype) {
      case 'f32':
      case 'bf16':
        raw = new Float32Array(size + 2 * g);
        break;
      case 'i32':
        raw = new Int32Array(size + 2 * g);
        break;
      case 'u8':
        raw = new Uint8Array(size + 2 * g);
        break;
      default:
        throw new TypeError(`alloc${label ? ` '${label}'` : ''}: unknown dtype '${String(dtype)}', expected f32, bf16, i32 or u8`);
    }
    const guards = guardView(raw);
    const pattern = raw instanceof Uint8Array ? GUARD_BYTE : GUARD_BITS_32;
    guards.fill(pattern, 0, g);
    guards.fill(pattern, g + size);
    if (init === 'uninitialized') raw.fill(raw instanceof Float32Array ? NaN : raw instanceof Int32Array ? POISON_I32 : POISON_U8, g, g + size);
    const tensor: Tensor = label === undefined ? { id: this.nextId++, dtype, size } : { id: this.nextId++, dtype, size, label };
    this.live.set(tensor.id, { tensor, raw, data: raw.subarray(g, g + size) });
    return tensor;
  }

  free(t: Tensor): void {
    this.get(t, 'free');
    this.live.delete(t.id);
    this.freed.set(t.id, describeTensor(t));
  }

  liveCount(): number {
    return this.live.size;
  }

  /** The data of a live tensor of this store; `use` says who asks, for the error message. */
  data(t: Tensor, use: string): Storage {
    return this.get(t, use).data;
  }

  private get(t: Tensor, use: string): Allocation {
    if (t === null || typeof t !== 'object' || typeof t.id !== 'number') throw new TypeError(`${use}: expected a tensor, got ${t === null ? 'null' : typeof t}`);
    const a = this.live.get(t.id);
    if (a && a.tensor === t) return a;
    const freed = this.freed.get(t.id);
    if (freed !== undefined && !a) throw new ReferenceError(`${use}: tensor ${freed} was used after it was freed`);
    throw new ReferenceError(`${use}: tensor ${describeTensor(t)} does not belong to this backend`);
  }

  /** Copies host data into t at `offset`, checking bounds and (for integer dtypes) values. */
  write(t: Tensor, values: ArrayLike<number>, offset: number): void {
    const where = `write to ${describeTensor(t)}`;
    const data = this.get(t, where).data;
    if (!Number.isInteger(offset) || offset < 0) throw new RangeError(`${where}: offset must be a non-negative integer, got ${offset}`);
    if (offset + values.length > t.size) {
      throw new RangeError(`${where}: ${values.length} elements at offset ${offset} run past its end (${t.size} elements)`);
    }
    if (t.dtype === 'i32' || t.dtype === 'u8') {
      const [lo, hi] = t.dtype === 'i32' ? [-2147483648, 2147483647] : [0, 255];
      for (let i = 0; i < values.length; i++) {
        const v = values[i]!;
        if (!Number.isInteger(v) || v < lo || v > hi) throw new RangeError(`${where}: data[${i}] = ${v} is not a ${t.dtype} value (an integer in [${lo}, ${hi}])`);
        data[offset + i] = v;
      }
      return;
    }
    for (let i = 0; i < values.length; i++) data[offset + i] = values[i]!;
    if (t.dtype === 'bf16') roundArrayToBf16((data as Float32Array).subarray(offset, offset + values.length));
  }

  /** A copy of `length` elements from `offset`. */
  read(t: Tensor, offset: number, length: number): Storage {
    const where = `read from ${describeTensor(t)}`;
    const data = this.get(t, where).data;
    if (!Number.isInteger(offset) || offset < 0 || !Number.isInteger(length) || length < 0) {
      throw new RangeError(`${where}: offset and length must be non-negative integers, got ${offset} and ${length}`);
    }
    if (offset + length > t.size) throw new RangeError(`${where}: ${length} elements at offset ${offset} run past its end (${t.size} elements)`);
    return data.slice(offset, offset + length);
  }

  /** Rounds a bf16 tensor's data to bf16 after an op wrote it (f32 arithmetic, bf16 storage). */
  roundIfBf16(t: Tensor): void {
    if (t.dtype === 'bf16') roundArrayToBf16(this.get(t, 'bf16 rounding').data as Float32Array);
  }

  checkGuards(): GuardViolation[] {
    const violations: GuardViolation[] = [];
    const g = this.guardElements;
    for (const { tensor, raw } of this.live.values()) {
      const guards = guardView(raw);
      const pattern = raw instanceof Uint8Array ? GUARD_BYTE : GUARD_BITS_32;
      // Index counted from the buffer's edge: 0 is the guard element touching the data.
      for (let i = 0; i < g; i++) {
        if (guards[g - 1 - i] !== pattern) {
          violations.push({ tensor, side: 'before', index: i });
          break;
        }
      }
      for (let i = 0; i < g; i++) {
        if (guards[g + tensor.size + i] !== pattern) {
          violations.push({ tensor, side: 'after', index: i });
          break;
        }
      }
    }
    return violations;
  }

  /** Test and debugging hook: the raw storage (guards included) and where the data starts. */
  rawStorage(t: Tensor): { raw: Storage; dataStart: number } {
    return { raw: this.get(t, 'rawStorageForTesting').raw, dataStart: this.guardElements };
  }

  clear(): void {
    for (const a of this.live.values()) this.freed.set(a.tensor.id, describeTensor(a.tensor));
    this.live.clear();
  }
}

/** The raw storage as integers, so guard patterns survive (a NaN written as a float may not). */
function guardView(raw: Storage): Uint32Array | Uint8Array {
  return raw instanceof Uint8Array ? raw : new Uint32Array(raw.buffer, raw.byteOffset, raw.length);
}
