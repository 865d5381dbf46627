// A minimal protobuf *writer*: just what the ONNX messages need (varints, length-delimited fields,
// packed repeated int64, fixed32 floats). Hand-written instead of protobufjs/onnx-proto because
//   - an exported GLM-Base is 440 MB of weights: a message here is a list of byte chunks that
//     *references* each weight's bytes, so nothing is concatenated or copied before the file write,
//     and the file is written chunk by chunk;
//   - ONNX needs ~10 message types and ~50 field numbers; the library stays dependency-free.
// Decoding (for tests and inspection) is in `protobuf-read.ts`.

const textEncoder = new TextEncoder();

/** Wire types of the protobuf encoding. */
const VARINT = 0;
const FIXED64 = 1;
const LENGTH_DELIMITED = 2;
const FIXED32 = 5;
export const WIRE = { VARINT, FIXED64, LENGTH_DELIMITED, FIXED32 } as const;

/** Bytes of a varint; negative numbers are written as 64-bit two's complement (10 bytes), as int64 fields require. */
export function encodeVarint(value: number | bigint): Uint8Array {
  if (typeof value === 'number' && !Number.isSafeInteger(value)) throw new RangeError(`protobuf varint: ${value} is not a safe integer`);
  let v = typeof value === 'bigint' ? value : BigInt(value);
  if (v < 0n) v = BigInt.asUintN(64, v);
  if (v <= 0x7fn) return Uint8Array.of(Number(v));
  const out: number[] = [];
  while (v > 0x7fn) {
    out.push(Number(v & 0x7fn) | 0x80);
    v >>= 7n;
  }
  out.push(Number(v));
  return Uint8Array.from(out);
}

/**
 * One protobuf message under construction: a list of byte chunks and their total length. Large
 * byte fields are kept by reference (no copy); `chunks()` yields the encoding in order.
 */
export class ProtoMessage {
  private readonly parts: Uint8Array[] = [];
  private length = 0;

  get byteLength(): number {
    return this.length;
  }

  private push(bytes: Uint8Array): void {
    this.parts.push(bytes);
    this.length += bytes.byteLength;
  }

  private tag(field: number, wire: number): void {
    this.push(encodeVarint(field * 8 + wire));
  }

  /** int32/int64/enum/bool field. */
  varint(field: number, value: number | bigint | boolean): this {
    this.tag(field, VARINT);
    this.push(encodeVarint(typeof value === 'boolean' ? (value ? 1 : 0) : value));
    return this;
  }

  /** float field (fixed32, little-endian). */
  float(field: number, value: number): this {
    this.tag(field, FIXED32);
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, value, true);
    this.push(b);
    return this;
  }

  string(field: number, value: string): this {
    return this.bytes(field, textEncoder.encode(value));
  }

  /** bytes field; `value` is referenced, not copied — do not modify it before the message is written. */
  bytes(field: number, value: Uint8Array): this {
    this.tag(field, LENGTH_DELIMITED);
    this.push(encodeVarint(value.byteLength));
    this.push(value);
    return this;
  }

  /** Embedded message field. */
  message(field: number, msg: ProtoMessage): this {
    this.tag(field, LENGTH_DELIMITED);
    this.push(encodeVarint(msg.length));
    for (const p of msg.parts) this.push(p);
    return this;
  }

  /** Packed repeated int64 (proto3's default for repeated scalars). */
  packedVarints(field: number, values: ReadonlyArray<number | bigint>): this {
    if (values.length === 0) return this;
    const encoded = values.map((v) => encodeVarint(v));
    const size = encoded.reduce((n, e) => n + e.byteLength, 0);
    this.tag(field, LENGTH_DELIMITED);
    this.push(encodeVarint(size));
    for (const e of encoded) this.push(e);
    return this;
  }

  /** Packed repeated float. */
  packedFloats(field: number, values: readonly number[]): this {
    if (values.length === 0) return this;
    return this.bytes(field, new Uint8Array(Float32Array.from(values).buffer));
  }

  /** The encoding as chunks, in order (large byte fields are the caller's own arrays). */
  chunks(): readonly Uint8Array[] {
    return this.parts;
  }

  /** The whole encoding in one new array (small messages, tests). */
  toBytes(): Uint8Array {
    const out = new Uint8Array(this.length);
    let o = 0;
    for (const p of this.parts) {
      out.set(p, o);
      o += p.byteLength;
    }
    return out;
  }
}
