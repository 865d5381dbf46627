// bfloat16 emulation. The reference backend stores bf16 tensors as f32 values that are exactly
// representable in bf16 (the top 16 bits of an f32), rounding with round-to-nearest-even after
// every write and every op. Computation stays in f64 like every other op.

const scratchF32 = new Float32Array(1);
const scratchU32 = new Uint32Array(scratchF32.buffer);

/** Rounds the f32 bit pattern `bits` to the nearest bf16 (ties to even); NaN stays a quiet NaN. */
function roundBitsToBf16(bits: number): number {
  if ((bits & 0x7f800000) === 0x7f800000 && (bits & 0x007fffff) !== 0) return (bits | 0x00400000) & 0xffff0000;
  const lsb = (bits >>> 16) & 1;
  // Adding 0x7fff plus the kept part's lowest bit rounds half-way cases to the even neighbour;
  // a carry into the exponent correctly rounds up to the next binade (or to infinity).
  return ((bits + 0x7fff + lsb) & 0xffff0000) >>> 0;
}

/** The bf16 value nearest to `x` (after rounding x to f32), as a number. */
export function roundToBf16(x: number): number {
  scratchF32[0] = x;
  scratchU32[0] = roundBitsToBf16(scratchU32[0]!);
  return scratchF32[0]!;
}

/** Rounds every element of an f32 array to bf16 in place. */
export function roundArrayToBf16(values: Float32Array): void {
  const bits = new Uint32Array(values.buffer, values.byteOffset, values.length);
  for (let i = 0; i < bits.length; i++) bits[i] = roundBitsToBf16(bits[i]!);
}
