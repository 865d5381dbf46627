// Whole-buffer utilities on raw byte ranges (the host passes element offsets already applied).

/** count 32-bit words at dst = bits (f32, i32 and bf16-as-f32 fills). */
export function fill32(dst: usize, count: i32, bits: i32): void {
  const v = i32x4.splat(bits);
  let e = 0;
  for (; e + 4 <= count; e += 4) v128.store(dst + <usize>e * 4, v);
  for (; e < count; e++) store<i32>(dst + <usize>e * 4, bits);
}

/** count bytes at dst = value (u8 fills). */
export function fill8(dst: usize, count: i32, value: i32): void {
  memory.fill(dst, <u8>value, <usize>count);
}

/** Copies `bytes` bytes from src to dst (the ranges do not overlap). */
export function copyBytes(dst: usize, src: usize, bytes: i32): void {
  memory.copy(dst, src, <usize>bytes);
}
