import { describe, expect, it } from 'vitest';
import { encodeVarint, fieldInt, fieldString, packedInts, ProtoMessage, readProtoFields } from '../src/index.js';

describe('protobuf writer', () => {
  it('encodes varints as the protobuf spec does (including negative int64 as 10 bytes)', () => {
    expect(Array.from(encodeVarint(0))).toEqual([0]);
    expect(Array.from(encodeVarint(1))).toEqual([1]);
    expect(Array.from(encodeVarint(300))).toEqual([0xac, 0x02]); // the spec's own example
    expect(Array.from(encodeVarint(-1))).toEqual([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]);
    expect(Array.from(encodeVarint(2 ** 32))).toEqual([0x80, 0x80, 0x80, 0x80, 0x10]);
    expect(() => encodeVarint(0.5)).toThrow(/not a safe integer/);
  });

  it('writes fields that a schema-less reader reads back, nested messages and packed ints included', () => {
    const inner = new ProtoMessage().string(1, 'axis').varint(3, -1).packedVarints(8, [0, 2, 1, 3]).float(2, 1e-5);
    const big = new Uint8Array(5000).fill(7);
    const outer = new ProtoMessage().varint(1, 8).message(5, inner).bytes(9, big).string(2, 'ünïcode');
    const bytes = outer.toBytes();
    expect(bytes.byteLength).toBe(outer.byteLength);
    // the big field is referenced, not copied, until toBytes
    expect(outer.chunks()).toContain(big);
    const f = readProtoFields(bytes);
    expect(f.map((x) => x.field)).toEqual([1, 5, 9, 2]);
    expect(fieldInt(f[0]!)).toBe(8);
    expect(fieldString(f[3]!)).toBe('ünïcode');
    expect(f[2]!.bytes!.byteLength).toBe(5000);
    const g = readProtoFields(f[1]!.bytes!);
    expect(fieldString(g[0]!)).toBe('axis');
    expect(fieldInt(g[1]!)).toBe(-1);
    expect(packedInts(g[2]!.bytes!)).toEqual([0, 2, 1, 3]);
    expect(g[3]!.float).toBeCloseTo(1e-5, 10);
  });

  it('the reader names the byte offset of malformed input', () => {
    expect(() => readProtoFields(Uint8Array.of(0x0a, 0x05, 1, 2), 'x.onnx')).toThrow(/x\.onnx: field 1 claims 5 bytes at 2, past the end \(4\)/);
    expect(() => readProtoFields(Uint8Array.of(0x08, 0x80), 'x.onnx')).toThrow(/truncated varint at byte 2/);
  });
});
