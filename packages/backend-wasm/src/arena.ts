// The one WebAssembly.Memory every kernel works in, and the host's allocator over it.
//
// Each tensor is a block:  [ guard 16 B | data (size × elementBytes, padded to 16 B) | guard ≥ 16 B ]
// Data starts 16-byte aligned so kernels can use aligned v128 loads. Guards hold a byte pattern
// that `checkGuards()` verifies. Freed blocks go to a free list (best fit, coalesced with their
// neighbours) and are reused; the memory grows as needed up to WebAssembly's 4 GiB.
import { DTYPE_BYTES, type DType, type GuardViolation, type Tensor } from '@blankglm/tensor';

export const PAGE_BYTES = 65536;
/** wasm32 can address 4 GiB: 65536 pages. */
export const MAX_PAGES = 65536;
const GUARD_BYTES = 16;
const GUARD_BYTE = 0xa5;
const ALIGN = 16;

export class OutOfMemoryError extends RangeError {
  override readonly name = 'OutOfMemoryError';
  readonly code = 'WASM_OUT_OF_MEMORY';
}

interface Block {
  start: number;
  bytes: number;
}

interface Allocation {
  tensor: Tensor;
  block: Block;
  /** Byte offset of element 0. */
  data: number;
}

export function formatBytes(n: number): string {
  if (n >= 2 ** 30) return `${(n / 2 ** 30).toFixed(2)} GiB`;
  if (n >= 2 ** 20) return `${(n / 2 ** 20).toFixed(1)} MiB`;
  if (n >= 2 ** 10) return `${(n / 2 ** 10).toFixed(1)} KiB`;
  return `${n} B`;
}

const alignUp = (n: number, a: number): number => Math.ceil(n / a) * a;

export function describeTensor(t: Tensor): string {
  return `${t.label ? `'${t.label}' ` : ''}(#${t.id}, ${t.dtype}[${t.size}])`;
}

export class Arena {
  private top: number;
  private freeList: Block[] = [];
  private readonly live = new Map<number, Allocation>();
  private readonly freed = new Map<number, string>();
  private nextId = 1;
  private bytesInUse = 0;
  private peak = 0;
  private u8: Uint8Array;

  constructor(
    readonly memory: WebAssembly.Memory,
    /** Where the kernels' static data ends (heapBase()). */
    heapBase: number,
    /** The most bytes this arena may grow the memory to. */
    readonly limitBytes: number = MAX_PAGES * PAGE_BYTES,
  ) {
    this.top = alignUp(heapBase, 64);
    this.u8 = new Uint8Array(memory.buffer);
  }

  /** A byte view of the whole memory, current after any growth. */
  bytes(): Uint8Array {
    if (this.u8.byteLength !== this.memory.buffer.byteLength) this.u8 = new Uint8Array(this.memory.buffer);
    return this.u8;
  }

  f32(): Float32Array {
    const b = this.bytes();
    return new Float32Array(b.buffer, 0, b.byteLength >>> 2);
  }

  /** Raw block of `bytes` bytes (16-aligned start), for host temporaries and per-thread scratch. */
  allocRaw(bytes: number, what: string): Block {
    const need = alignUp(Math.max(bytes, 1), ALIGN);
    // Best fit from the free list.
    let best = -1;
    for (let i = 0; i < this.freeList.length; i++) {
      const f = this.freeList[i]!;
      if (f.bytes >= need && (best < 0 || f.bytes < this.freeList[best]!.bytes)) best = i;
    }
    if (best >= 0) {
      const f = this.freeList[best]!;
      const block = { start: f.start, bytes: need };
      if (f.bytes === need) this.freeList.splice(best, 1);
      else this.freeList[best] = { start: f.start + need, bytes: f.bytes - need };
      this.bytesInUse += need;
      this.peak = Math.max(this.peak, this.bytesInUse);
      return block;
    }
    const start = this.top;
    const end = start + need;
    if (end > this.limitBytes) this.outOfMemory(need, what);
    const have = this.memory.buffer.byteLength;
    if (end > have) {
      const exact = Math.ceil((end - have) / PAGE_BYTES);
      const room = Math.floor(this.limitBytes / PAGE_BYTES) - have / PAGE_BYTES;
      // Grow by at least 1/8 of the current size so a model's many allocations grow it rarely.
      const wanted = Math.min(room, Math.max(exact, Math.ceil(have / PAGE_BYTES / 8)));
      try {
        this.memory.grow(wanted);
      } catch {
        try {
          this.memory.grow(exact);
        } catch {
          this.outOfMemory(need, what);
        }
      }
    }
    this.top = end;
    this.bytesInUse += need;
    this.peak = Math.max(this.peak, this.bytesInUse);
    return { start, bytes: need };
  }

  freeRaw(block: Block): void {
    this.bytesInUse -= block.bytes;
    if (block.start + block.bytes === this.top) {
      this.top = block.start;
      // Fold a free block that now touches the top.
      this.freeList.sort((a, b) => a.start - b.start);
      const last = this.freeList[this.freeList.length - 1];
      if (last && last.start + last.bytes === this.top) {
        this.top = last.start;
        this.freeList.pop();
      }
      return;
    }
    // Insert sorted and coalesce with neighbours.
    let i = 0;
    while (i < this.freeList.length && this.freeList[i]!.start < block.start) i++;
    this.freeList.splice(i, 0, { ...block });
    const merge = (k: number): void => {
      const a = this.freeList[k];
      const b = this.freeList[k + 1];
      if (a && b && a.start + a.bytes === b.start) {
        a.bytes += b.bytes;
        this.freeList.splice(k + 1, 1);
      }
    };
    merge(i);
    if (i > 0) merge(i - 1);
  }

  alloc(dtype: DType, size: number, label?: string): Tensor {
    const name = label === undefined ? '' : ` '${label}'`;
    if (!Number.isInteger(size) || size < 0) throw new RangeError(`alloc${name}: size must be a non-negative integer, got ${size}`);
    const elementBytes = DTYPE_BYTES[dtype];
    if (elementBytes === undefined) throw new TypeError(`alloc${name}: unknown dtype '${String(dtype)}', expected f32, bf16, i32 or u8`);
    // bf16 is stored as f32 values rounded to bf16 (like the reference): 4 bytes.
    const storedBytes = dtype === 'bf16' ? 4 : elementBytes;
    const dataBytes = size * storedBytes;
    const block = this.allocRaw(GUARD_BYTES + alignUp(dataBytes, ALIGN) + GUARD_BYTES, `${dtype}[${size}]${name}`);
    const data = block.start + GUARD_BYTES;
    const u8 = this.bytes();
    u8.fill(GUARD_BYTE, block.start, data);
    u8.fill(0, data, data + dataBytes);
    u8.fill(GUARD_BYTE, data + dataBytes, block.start + block.bytes);
    const tensor: Tensor = label === undefined ? { id: this.nextId++, dtype, size } : { id: this.nextId++, dtype, size, label };
    this.live.set(tensor.id, { tensor, block, data });
    return tensor;
  }

  free(t: Tensor): void {
    const a = this.get(t, 'free');
    this.live.delete(t.id);
    this.freed.set(t.id, describeTensor(t));
    this.freeRaw(a.block);
  }

  /** Byte offset of element `offset` of a live tensor; `use` names the caller in errors. */
  pointer(t: Tensor, use: string, offset = 0): number {
    return this.get(t, use).data + offset * (t.dtype === 'bf16' ? 4 : DTYPE_BYTES[t.dtype]);
  }

  liveCount(): number {
    return this.live.size;
  }

  /** Bytes of blocks in use (tensors with guards and padding, scratch, temporaries). */
  usedBytes(): number {
    return this.bytesInUse;
  }

  /** The most bytes in use at once since creation. */
  peakBytes(): number {
    return this.peak;
  }

  memoryBytes(): number {
    return this.memory.buffer.byteLength;
  }

  get(t: Tensor, use: string): Allocation {
    if (t === null || typeof t !== 'object' || typeof t.id !== 'number') throw new TypeError(`${use}: expected a tensor, got ${t === null ? 'null' : typeof t}`);
    const a = this.live.get(t.id);
    if (a && a.tensor === t) return a;
    const freed = this.freed.get(t.id);
    if (freed !== undefined && !a) throw new ReferenceError(`${use}: tensor ${freed} was used after it was freed`);
    throw new ReferenceError(`${use}: tensor ${describeTensor(t)} does not belong to this backend`);
  }

  checkGuards(): GuardViolation[] {
    const u8 = this.bytes();
    const out: GuardViolation[] = [];
    for (const { tensor, block, data } of this.live.values()) {
      const elementBytes = tensor.dtype === 'bf16' ? 4 : DTYPE_BYTES[tensor.dtype];
      for (let i = 0; i < GUARD_BYTES; i++) {
        if (u8[data - 1 - i] !== GUARD_BYTE) {
          out.push({ tensor, side: 'before', index: Math.floor(i / elementBytes) });
          break;
        }
      }
      const end = data + tensor.size * elementBytes;
      for (let p = end; p < block.start + block.bytes; p++) {
        if (u8[p] !== GUARD_BYTE) {
          out.push({ tensor, side: 'after', index: Math.floor((p - end) / elementBytes) });
          break;
        }
      }
    }
    return out;
  }

  /** Test hook: the byte offset of a tensor's data, to simulate an overrunning kernel. */
  dataOffset(t: Tensor): number {
    return this.get(t, 'dataOffset').data;
  }

  clear(): void {
    for (const a of this.live.values()) this.freed.set(a.tensor.id, describeTensor(a.tensor));
    this.live.clear();
  }

  private outOfMemory(need: number, what: string): never {
    throw new OutOfMemoryError(
      `wasm backend: out of memory allocating ${what} (${formatBytes(need)}): ${formatBytes(this.bytesInUse)} already in use in ` +
        `${this.live.size} buffers, limit ${formatBytes(this.limitBytes)} (WebAssembly memory is 32-bit: 4 GiB at most). ` +
        `Reduce the batch size or sequence length, use a smaller model, or use the gpu backend.`,
    );
  }
}
