// fill and copy: byte-range kernels, split over threads for large ranges.
import type { OpArgs } from '@blankglm/tensor';
import type { KernelCall } from '../pool.js';
import type { WasmOp, WasmOpContext } from './context.js';

/** Below this many elements a single thread is faster than waking the pool. */
const MIN_PER_THREAD = 1 << 16;

function f32Bits(value: number): number {
  const f = new Float32Array([value]);
  return new Int32Array(f.buffer)[0]!;
}

/** Rounds an f32 value to bf16 (nearest-even), returned as an f32 value (bf16 is stored widened). */
function roundBf16(value: number): number {
  const bits = f32Bits(value) >>> 0;
  if ((bits & 0x7f800000) === 0x7f800000) return value; // inf / NaN unchanged
  const rounded = (bits + 0x7fff + ((bits >>> 16) & 1)) & 0xffff0000;
  return new Float32Array(new Uint32Array([rounded >>> 0]).buffer)[0]!;
}

export const fill: WasmOp<'fill'> = {
  run(ctx: WasmOpContext, a: OpArgs['fill']): void {
    const t = a.x;
    if (t.dtype === 'i32' && !(Number.isInteger(a.value) && a.value >= -2147483648 && a.value <= 2147483647)) ctx.fail(`value ${a.value} is not an i32`);
    if (t.dtype === 'u8' && !(Number.isInteger(a.value) && a.value >= 0 && a.value <= 255)) ctx.fail(`value ${a.value} is not a u8`);
    if (a.size === 0) return;
    const base = ctx.ptr(t, 'x', a.offset);
    if (t.dtype === 'u8') {
      ctx.parallel([[['fill8', base, a.size, a.value]]]);
      return;
    }
    const bits = t.dtype === 'i32' ? a.value | 0 : f32Bits(t.dtype === 'bf16' ? roundBf16(a.value) : a.value);
    ctx.parallel(ctx.split(a.size, { align: 4, minPerThread: MIN_PER_THREAD }).map(([s, e]): KernelCall[] => [['fill32', base + 4 * s, e - s, bits]]));
  },
};

export const copy: WasmOp<'copy'> = {
  run(ctx: WasmOpContext, a: OpArgs['copy']): void {
    if (a.size === 0 || (a.src.id === a.dst.id && a.srcOffset === a.dstOffset)) return;
    const width = a.src.dtype === 'u8' ? 1 : 4;
    const src = ctx.ptr(a.src, 'src', a.srcOffset);
    const dst = ctx.ptr(a.dst, 'dst', a.dstOffset);
    ctx.parallel(
      ctx.split(a.size, { align: 16, minPerThread: MIN_PER_THREAD }).map(([s, e]): KernelCall[] => [['copyBytes', dst + width * s, src + width * s, width * (e - s)]]),
    );
  },
};

export { roundBf16 };
