// Buffers: zero-filled (or poisoned when 'uninitialized'), counted, guarded; the capability probe and the (empty) ledger.
import { OP_NAMES } from '@blankglm/tensor';
import { describe, expect, it } from 'vitest';
import { createReferenceBackend } from '../src/index.js';
import { upload } from './helpers.js';

describe('buffers', () => {
  it('are zero-filled, counted until freed, and read back as copies', () => {
    const be = createReferenceBackend();
    const a = be.alloc('f32', 5, 'a');
    const b = be.alloc('i32', 3);
    const c = be.alloc('u8', 2);
    expect(be.liveBuffers()).toBe(3);
    expect(Array.from(be.read(a))).toEqual([0, 0, 0, 0, 0]);
    expect(be.read(b)).toBeInstanceOf(Int32Array);
    expect(be.read(c)).toBeInstanceOf(Uint8Array);
    be.write(a, [1, 2], 3);
    const copy = be.read(a, 2, 3);
    expect(Array.from(copy)).toEqual([0, 1, 2]);
    copy[0] = 99;
    expect(be.read(a)[2]).toBe(0);
    be.free(b);
    expect(be.liveBuffers()).toBe(2);
    be.dispose();
    expect(be.liveBuffers()).toBe(0);
  });

  it("'uninitialized' buffers hold poison until written (NaN floats, out-of-range ids), so a read before the write shows", () => {
    const be = createReferenceBackend({ guardElements: 2 });
    const f = be.alloc('f32', 3, 'f', 'uninitialized');
    const h = be.alloc('bf16', 2, 'h', 'uninitialized');
    expect(Array.from(be.read(f))).toEqual([NaN, NaN, NaN]);
    expect(Array.from(be.read(h))).toEqual([NaN, NaN]);
    expect(Array.from(be.read(be.alloc('i32', 2, 'i', 'uninitialized')))).toEqual([0x5a5a5a5a, 0x5a5a5a5a]);
    expect(Array.from(be.read(be.alloc('u8', 1, 'u', 'uninitialized')))).toEqual([0x5a]);
    expect(be.checkGuards()).toEqual([]);
    // An op that writes the whole buffer leaves no trace of the poison.
    be.run('fill', { x: f, offset: 0, size: 3, value: 2 });
    expect(Array.from(be.read(f))).toEqual([2, 2, 2]);
    expect(() => be.alloc('f32', 1, 'bad', 'garbage' as never)).toThrow(/init must be 'zeros' or 'uninitialized', got 'garbage'/);
  });
});

describe('guards', () => {
  it.each(['f32', 'bf16', 'i32', 'u8'] as const)('detect an out-of-bounds write past either end of a %s buffer', (dtype) => {
    const be = createReferenceBackend({ guardElements: 4 });
    const victim = be.alloc(dtype, 6, 'victim');
    be.alloc(dtype, 6, 'bystander');
    expect(be.checkGuards()).toEqual([]);
    // Simulate a kernel writing one element past the end, and two before the start.
    const { raw, dataStart } = be.rawStorageForTesting(victim);
    raw[dataStart + 6] = 1;
    expect(be.checkGuards()).toEqual([{ tensor: victim, side: 'after', index: 0 }]);
    raw[dataStart - 2] = 0;
    const violations = be.checkGuards();
    expect(violations).toContainEqual({ tensor: victim, side: 'before', index: 1 });
    expect(violations).toHaveLength(2);
  });

  it('stay intact through every op of a realistic layer', () => {
    const be = createReferenceBackend();
    const T = 6;
    const H = 4;
    const x = upload(be, 'f32', Array.from({ length: T * H }, (_, e) => Math.sin(e)));
    const y = be.alloc('f32', T * H);
    be.run('layerNorm', { x, gamma: upload(be, 'f32', [1, 1, 1, 1]), beta: be.alloc('f32', H), y, mean: be.alloc('f32', T), rstd: be.alloc('f32', T), rows: T, hiddenSize: H, eps: 1e-5 });
    be.run('linear', { x: y, weight: upload(be, 'f32', Array.from({ length: 3 * H * H }, (_, e) => Math.cos(e))), bias: null, y: be.alloc('f32', T * 3 * H), preAct: null, rows: T, inFeatures: H, outFeatures: 3 * H, activation: 'none' });
    be.run('scale', { x: y, size: T * H, factor: 2 });
    expect(be.checkGuards()).toEqual([]);
  });
});

describe('capabilities', () => {
  it('supports every op of the catalogue and has an empty ledger', () => {
    const be = createReferenceBackend();
    for (const op of OP_NAMES) expect(be.supports(op, {} as never)).toEqual({ supported: true });
    expect(be.ledger()).toEqual({});
    expect(be.device.kind).toBe('cpu');
  });
});
