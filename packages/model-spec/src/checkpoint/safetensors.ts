// safetensors, read and written with our own small code.
//
// File layout:  [u64 little-endian N] [N bytes of JSON header] [data bytes]
// Header: { "<name>": { "dtype": "F32", "shape": [r, c], "data_offsets": [begin, end] }, ...,
//           "__metadata__": { "<key>": "<string>" } }
// Offsets are relative to the start of the data bytes. Floating-point tensors (F32, F16, BF16,
// F64) are returned as Float32Array; integer tensors as Int32Array (I8/I16/I32/U8/U16/BOOL) or
// BigInt64Array (I64). Every structural problem is reported with the file and tensor name.
import { closeSync, fstatSync, fsyncSync, openSync, readSync, renameSync, rmSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { endianness } from 'node:os';
import { bf16ToF32, f16ToF32 } from './dtype.js';

export type SafetensorsDtype = 'F64' | 'F32' | 'F16' | 'BF16' | 'I64' | 'I32' | 'I16' | 'I8' | 'U16' | 'U8' | 'BOOL';

const DTYPE_BYTES: Record<SafetensorsDtype, number> = { F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U16: 2, U8: 1, BOOL: 1 };

export type TensorData = Float32Array | Int32Array | BigInt64Array;

export interface NamedTensor {
  /** The dtype the file stores (floats are widened to f32 on read). */
  dtype: SafetensorsDtype;
  shape: number[];
  data: TensorData;
}

export interface SafetensorsFile {
  tensors: Map<string, NamedTensor>;
  metadata: Record<string, string>;
}

/** A header larger than this is surely corrupt (the largest real headers are a few MB). */
const MAX_HEADER_BYTES = 100 * 1024 * 1024;

if (endianness() !== 'LE') throw new Error('@blankglm/model-spec checkpoints need a little-endian host');

interface HeaderEntry {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  begin: number;
  end: number;
}

function parseHeader(file: string, headerBytes: Buffer, dataSize: number): { entries: HeaderEntry[]; metadata: Record<string, string> } {
  let json: unknown;
  try {
    json = JSON.parse(headerBytes.toString('utf8'));
  } catch (e) {
    throw new Error(`${file}: the safetensors header is not valid JSON (${(e as Error).message})`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new Error(`${file}: the safetensors header is not a JSON object`);
  const metadata: Record<string, string> = {};
  const entries: HeaderEntry[] = [];
  for (const [name, raw] of Object.entries(json as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (typeof raw !== 'object' || raw === null) throw new Error(`${file}: __metadata__ must be an object of strings`);
      for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
        if (typeof v !== 'string') throw new Error(`${file}: __metadata__.${k} must be a string, got ${JSON.stringify(v)}`);
        metadata[k] = v;
      }
      continue;
    }
    const where = `${file}: tensor '${name}'`;
    if (typeof raw !== 'object' || raw === null) throw new Error(`${where}: header entry is not an object`);
    const { dtype, shape, data_offsets: offsets } = raw as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (typeof dtype !== 'string' || !(dtype in DTYPE_BYTES)) {
      throw new Error(`${where}: unknown dtype ${JSON.stringify(dtype)} (supported: ${Object.keys(DTYPE_BYTES).join(', ')})`);
    }
    if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && d >= 0)) {
      throw new Error(`${where}: shape must be a list of non-negative integers, got ${JSON.stringify(shape)}`);
    }
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isInteger(o) && o >= 0) || offsets[0] > offsets[1]) {
      throw new Error(`${where}: data_offsets must be [begin, end] with 0 <= begin <= end, got ${JSON.stringify(offsets)}`);
    }
    const [begin, end] = offsets as [number, number];
    if (end > dataSize) {
      throw new Error(`${where}: data_offsets [${begin}, ${end}] run past the end of the file (only ${dataSize} data bytes; truncated?)`);
    }
    const numel = (shape as number[]).reduce((a, b) => a * b, 1);
    const expected = numel * DTYPE_BYTES[dtype as SafetensorsDtype];
    if (end - begin !== expected) {
      throw new Error(`${where}: shape [${(shape as number[]).join(', ')}] of ${dtype} needs ${expected} bytes but data_offsets [${begin}, ${end}] hold ${end - begin}`);
    }
    entries.push({ name, dtype: dtype as SafetensorsDtype, shape: shape as number[], begin, end });
  }
  const sorted = [...entries].sort((a, b) => a.begin - b.begin || a.end - b.end);
  for (let i = 1; i < sorted.length; i++) {
    const prev = sorted[i - 1]!;
    const cur = sorted[i]!;
    if (cur.begin < prev.end) throw new Error(`${file}: tensors '${prev.name}' [${prev.begin}, ${prev.end}) and '${cur.name}' [${cur.begin}, ${cur.end}) overlap`);
  }
  return { entries, metadata };
}

/** Decodes raw little-endian bytes of one dtype into f32 (floats) or integers. */
export function decodeTensorBytes(bytes: Uint8Array, dtype: SafetensorsDtype, numel: number): TensorData {
  // The result may share `bytes`' memory (callers pass buffers they own). A view at an unaligned
  // offset cannot be a typed array, so those bytes are copied first.
  let aligned = bytes;
  if (bytes.byteOffset % DTYPE_BYTES[dtype] !== 0) {
    aligned = new Uint8Array(bytes.byteLength);
    aligned.set(bytes);
  }
  const buf = aligned.buffer;
  const at = aligned.byteOffset;
  switch (dtype) {
    case 'F32':
      return new Float32Array(buf, at, numel);
    case 'F64':
      return Float32Array.from(new Float64Array(buf, at, numel));
    case 'F16':
      return f16ToF32(new Uint16Array(buf, at, numel));
    case 'BF16':
      return bf16ToF32(new Uint16Array(buf, at, numel));
    case 'I64':
      return new BigInt64Array(buf, at, numel);
    case 'I32':
      return new Int32Array(buf, at, numel);
    case 'I16':
      return Int32Array.from(new Int16Array(buf, at, numel));
    case 'U16':
      return Int32Array.from(new Uint16Array(buf, at, numel));
    case 'I8':
      return Int32Array.from(new Int8Array(buf, at, numel));
    case 'U8':
    case 'BOOL':
      return Int32Array.from(aligned.subarray(0, numel));
  }
}

/** Reads `count` bytes at `position`, failing clearly if the file is shorter. */
export function readExactly(fd: number, file: string, position: number, count: number, what: string): Buffer {
  const out = Buffer.alloc(count);
  let done = 0;
  while (done < count) {
    const n = readSync(fd, out, done, Math.min(count - done, 1 << 30), position + done);
    if (n === 0) throw new Error(`${file}: ${what}: file ends after ${position + done} bytes, expected ${count - done} more (truncated?)`);
    done += n;
  }
  return out;
}

/** Reads a whole .safetensors file. Errors name the file and the tensor. */
export function readSafetensors(file: string): SafetensorsFile {
  const fd = openSync(file, 'r');
  try {
    const size = fstatSync(fd).size;
    if (size < 8) throw new Error(`${file}: ${size} bytes is too short for a safetensors file (8-byte header length missing)`);
    const headerLen = Number(readExactly(fd, file, 0, 8, 'header length').readBigUInt64LE(0));
    if (headerLen > size - 8) throw new Error(`${file}: header length ${headerLen} runs past the end of the file (${size} bytes; truncated or not safetensors)`);
    if (headerLen > MAX_HEADER_BYTES) throw new Error(`${file}: header length ${headerLen} is implausibly large (not a safetensors file?)`);
    const headerBytes = readExactly(fd, file, 8, headerLen, 'header');
    const dataStart = 8 + headerLen;
    const { entries, metadata } = parseHeader(file, headerBytes, size - dataStart);
    const tensors = new Map<string, NamedTensor>();
    for (const e of entries) {
      const bytes = readExactly(fd, file, dataStart + e.begin, e.end - e.begin, `tensor '${e.name}'`);
      const numel = e.shape.reduce((a, b) => a * b, 1);
      tensors.set(e.name, { dtype: e.dtype, shape: e.shape, data: decodeTensorBytes(bytes, e.dtype, numel) });
    }
    return { tensors, metadata };
  } finally {
    closeSync(fd);
  }
}

export interface TensorToWrite {
  shape: number[];
  /** Float32Array → F32, Int32Array → I32, BigInt64Array → I64. */
  data: TensorData;
}

function dtypeOf(data: TensorData): SafetensorsDtype {
  if (data instanceof Float32Array) return 'F32';
  if (data instanceof Int32Array) return 'I32';
  return 'I64';
}

/**
 * Writes tensors (in the map's order) as safetensors, atomically: a temporary file beside the
 * target, fsynced, then renamed over it. The header is padded with spaces to a multiple of 8 so
 * every tensor's data starts 8-byte aligned when the tensors are 8-byte multiples.
 */
export function writeSafetensors(file: string, tensors: Map<string, TensorToWrite>, metadata: Record<string, string> = {}): void {
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length > 0) header.__metadata__ = metadata;
  let offset = 0;
  for (const [name, t] of tensors) {
    const numel = t.shape.reduce((a, b) => a * b, 1);
    if (numel !== t.data.length) throw new Error(`writeSafetensors ${file}: tensor '${name}' has ${t.data.length} elements but shape [${t.shape.join(', ')}] needs ${numel}`);
    const dtype = dtypeOf(t.data);
    header[name] = { dtype, shape: t.shape, data_offsets: [offset, offset + t.data.byteLength] };
    offset += t.data.byteLength;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - ((8 + Buffer.byteLength(json)) % 8)) % 8);
  const headerBytes = Buffer.from(json, 'utf8');
  const lenBytes = Buffer.alloc(8);
  lenBytes.writeBigUInt64LE(BigInt(headerBytes.length));
  const tmp = join(dirname(file), `.${basename(file)}.tmp-${process.pid}`);
  const fd = openSync(tmp, 'w');
  try {
    writeSync(fd, lenBytes);
    writeSync(fd, headerBytes);
    for (const t of tensors.values()) {
      const bytes = Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength);
      for (let done = 0; done < bytes.length; ) done += writeSync(fd, bytes, done, Math.min(bytes.length - done, 1 << 30));
    }
    fsyncSync(fd);
  } catch (e) {
    closeSync(fd);
    rmSync(tmp, { force: true });
    throw e;
  }
  closeSync(fd);
  renameSync(tmp, file);
}
