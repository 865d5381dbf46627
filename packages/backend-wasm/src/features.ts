// What this WebAssembly runtime can do, probed with tiny hand-written modules (no kernels run).
import { setFlagsFromString } from 'node:v8';

/** (module (func (result v128) v128.const i32x4 0 0 0 0)) */
const SIMD_PROBE = new Uint8Array([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x01, 0x05, 0x01, 0x60, 0x00, 0x01, 0x7b, 0x03, 0x02, 0x01, 0x00, 0x0a, 0x16, 0x01, 0x14, 0x00, 0xfd,
  0x0c, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x0b,
]);

/** (module (memory 1 1 shared)) */
const THREADS_PROBE = new Uint8Array([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x05, 0x04, 0x01, 0x03, 0x01, 0x01]);

/** (func (param v128 v128 v128) (result v128) local.get 0 local.get 1 local.get 2 f32x4.relaxed_madd) */
const RELAXED_PROBE = new Uint8Array([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x01, 0x60, 0x03, 0x7b, 0x7b, 0x7b, 0x01, 0x7b, 0x03, 0x02, 0x01, 0x00, 0x0a, 0x0d, 0x01,
  0x0b, 0x00, 0x20, 0x00, 0x20, 0x01, 0x20, 0x02, 0xfd, 0x85, 0x02, 0x0b,
]);

function validates(bytes: Uint8Array<ArrayBuffer>): boolean {
  try {
    return WebAssembly.validate(bytes);
  } catch {
    return false;
  }
}

export function hasSimd(): boolean {
  return validates(SIMD_PROBE);
}

/** Shared WebAssembly memory and SharedArrayBuffer (needed for the worker pool). */
export function hasThreads(): boolean {
  return typeof SharedArrayBuffer === 'function' && typeof Atomics === 'object' && validates(THREADS_PROBE);
}

/**
 * Relaxed SIMD: validates at once on runtimes that ship it; on Node 20 (V8 11.3) it is behind a
 * flag that can be turned on at run time for the whole process. Node calls changing V8 flags after
 * start-up unsupported, so a failure here just means the plain SIMD build is used.
 */
export function enableRelaxedSimd(): boolean {
  if (validates(RELAXED_PROBE)) return true;
  try {
    setFlagsFromString('--experimental-wasm-relaxed-simd');
  } catch {
    return false;
  }
  return validates(RELAXED_PROBE);
}

/** Which compiled kernel module runs. */
export type Variant = 'relaxed' | 'simd-threads' | 'simd';

export const VARIANT_FILES: Record<Variant, string> = {
  relaxed: 'kernels.relaxed.wasm',
  'simd-threads': 'kernels.mt.wasm',
  simd: 'kernels.simd.wasm',
};

export const VARIANT_FEATURES: Record<Variant, string[]> = {
  relaxed: ['simd128', 'relaxed-simd', 'threads'],
  'simd-threads': ['simd128', 'threads'],
  simd: ['simd128'],
};
