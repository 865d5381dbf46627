// A minimal protobuf reader: splits a message into its fields without a schema. Used to inspect
// exported models (`readOnnxSummary`) and by the tests to check the encoding independently of
// ONNX Runtime.

export interface ProtoField {
  field: number;
  wire: number;
  /** varint fields: the value (as bigint, two's complement kept unsigned). */
  varint?: bigint;
  /** length-delimited fields: the bytes (a view into the input). */
  bytes?: Uint8Array;
  /** fixed32 fields: the raw 4 bytes as a float. */
  float?: number;
}

function readVarint(buf: Uint8Array, pos: number, where: string): [bigint, number] {
  let result = 0n;
  let shift = 0n;
  for (let i = 0; i < 10; i++) {
    if (pos >= buf.byteLength) throw new RangeError(`${where}: truncated varint at byte ${pos}`);
    const b = buf[pos++]!;
    result |= BigInt(b & 0x7f) << shift;
    if ((b & 0x80) === 0) return [result, pos];
    shift += 7n;
  }
  throw new RangeError(`${where}: varint longer than 10 bytes at byte ${pos}`);
}

/** Every field of one message, in order; throws naming the byte offset on malformed input. */
export function readProtoFields(buf: Uint8Array, where = 'protobuf message'): ProtoField[] {
  const out: ProtoField[] = [];
  let pos = 0;
  while (pos < buf.byteLength) {
    const [key, p1] = readVarint(buf, pos, where);
    pos = p1;
    const field = Number(key >> 3n);
    const wire = Number(key & 7n);
    if (wire === 0) {
      const [v, p2] = readVarint(buf, pos, where);
      pos = p2;
      out.push({ field, wire, varint: v });
    } else if (wire === 2) {
      const [len, p2] = readVarint(buf, pos, where);
      const end = p2 + Number(len);
      if (end > buf.byteLength) throw new RangeError(`${where}: field ${field} claims ${len} bytes at ${p2}, past the end (${buf.byteLength})`);
      out.push({ field, wire, bytes: buf.subarray(p2, end) });
      pos = end;
    } else if (wire === 5) {
      if (pos + 4 > buf.byteLength) throw new RangeError(`${where}: truncated fixed32 at byte ${pos}`);
      out.push({ field, wire, float: new DataView(buf.buffer, buf.byteOffset + pos, 4).getFloat32(0, true) });
      pos += 4;
    } else if (wire === 1) {
      pos += 8;
      out.push({ field, wire });
    } else {
      throw new RangeError(`${where}: unsupported wire type ${wire} (field ${field}) at byte ${pos}`);
    }
  }
  return out;
}

const decoder = new TextDecoder();

export function fieldString(f: ProtoField): string {
  return decoder.decode(f.bytes!);
}

/** int64 from a varint field, sign restored. */
export function fieldInt(f: ProtoField): number {
  return Number(BigInt.asIntN(64, f.varint!));
}

/** A packed repeated varint field's values. */
export function packedInts(bytes: Uint8Array): number[] {
  const out: number[] = [];
  let pos = 0;
  while (pos < bytes.byteLength) {
    const [v, p] = readVarint(bytes, pos, 'packed varints');
    out.push(Number(BigInt.asIntN(64, v)));
    pos = p;
  }
  return out;
}
