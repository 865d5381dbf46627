// Loads build/gpu.node lazily, on first use (never at import), and turns every way that can fail
// into a GpuUnavailableError with a code and a sentence a user can act on.
import { existsSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { GpuUnavailableError } from './errors.js';
import { schemaSignature } from './schema.js';

/** What `probe()` of the addon reports: the CUDA runtime's view, without creating a context. */
export interface NativeProbe {
  runtimeVersion: number;
  driverVersion: number;
  deviceCount: number;
  error: string | null;
  message: string | null;
  name?: string;
  computeCapability?: string;
  memoryBytes?: number;
  multiprocessors?: number;
}

export interface NativeDeviceInfo {
  name: string;
  computeCapability: string;
  multiprocessors: number;
  memoryBytes: number;
  runtimeVersion: number;
  driverVersion: number;
  cublasLt: string | null;
  gemm: 'cublasLt' | 'builtin';
  tf32: boolean;
  ltGelu: boolean;
  /** Tensor-core (mma.sync bf16) attention for bf16 operands; false: the scalar kernels. */
  tcAttention: boolean;
  /** layerNormBackward in two passes (dx, then the column sums) instead of one fused pass. */
  lnSplit: boolean;
  /** Decode attention (≤ 16 queries) split over the keys, then merged, instead of one block per query and head. */
  splitDecode: boolean;
}

/** GPU time of one op kind (per shape for products and attention), from setProfiling. */
export interface OpProfileEntry {
  op: string;
  calls: number;
  ms: number;
}

export interface DecodedCall {
  op: string;
  args: Record<string, unknown>;
}

/** The functions build/gpu.node exports (native/addon.cu). */
export interface NativeAddon {
  probe(): NativeProbe;
  init(builtinGemm: number, searchDirs: string[]): NativeDeviceInfo;
  /** fill: 0 zeros (default), 1 none (the pool's leftovers), 2 every byte 0xff (NaN in f32/bf16). */
  alloc(id: number, dtype: number, elements: number, label: string, fill?: number): void;
  free(id: number): void;
  write(id: number, elementOffset: number, data: ArrayBufferView): void;
  read(id: number, elementOffset: number, into: ArrayBufferView): void;
  run(words: Float64Array): void;
  synchronize(): void;
  memInfo(): { free: number; total: number; buffers: number };
  schema(): string;
  decode(words: Float64Array): DecodedCall[];
  setOptions(tf32: number, ltGelu: number, builtinGemm: number, tcAttention?: number, lnSplit?: number, splitDecode?: number): NativeDeviceInfo;
  setProfiling(on: number): void;
  profileReport(reset: number): OpProfileEntry[];
  /** Dropout factors of elements 0..count−1 computed by the kernels' own (host-compiled) code. */
  dropoutFactors(p: number, seed: number, stream: number, count: number): Float64Array;
}

/** Where the addon is: BLANKGLM_GPU_ADDON, else build/gpu.node beside dist/ and src/. */
export function addonPath(): string {
  return process.env.BLANKGLM_GPU_ADDON || fileURLToPath(new URL('../build/gpu.node', import.meta.url));
}

let loaded: NativeAddon | GpuUnavailableError | undefined;

/** The addon, loaded once; throws GpuUnavailableError (GPU_ADDON_NOT_BUILT / GPU_ADDON_LOAD_FAILED). */
export function loadAddon(): NativeAddon {
  if (loaded === undefined) loaded = tryLoad();
  if (loaded instanceof GpuUnavailableError) throw loaded;
  return loaded;
}

function tryLoad(): NativeAddon | GpuUnavailableError {
  const file = addonPath();
  if (!existsSync(file)) {
    return new GpuUnavailableError(
      'GPU_ADDON_NOT_BUILT',
      `the CUDA addon is not built (${file} is missing): build it with nvcc via 'pnpm --filter @blankglm/backend-gpu build' (CUDA toolkit 13 needed at build time only)`,
    );
  }
  let addon: NativeAddon;
  try {
    addon = createRequire(import.meta.url)(file) as NativeAddon;
  } catch (e) {
    return new GpuUnavailableError('GPU_ADDON_LOAD_FAILED', `the CUDA addon ${file} failed to load: ${(e as Error).message}`);
  }
  const theirs = addon.schema();
  if (theirs !== schemaSignature()) {
    return new GpuUnavailableError(
      'GPU_ADDON_LOAD_FAILED',
      `the CUDA addon ${file} was built from a different op table than this package's (stale build): rebuild it with 'pnpm --filter @blankglm/backend-gpu build'`,
    );
  }
  return addon;
}

/** Forgets a cached load result (tests that move the addon around). */
export function resetAddonForTesting(): void {
  loaded = undefined;
}

/** "13.0" from 13000. */
export function cudaVersionString(v: number): string {
  return `${Math.floor(v / 1000)}.${Math.floor((v % 1000) / 10)}`;
}

/** Turns the addon's probe into availability: the code and message when the GPU cannot be used. */
export function diagnose(p: NativeProbe): GpuUnavailableError | null {
  const needs = `the CUDA backend needs an NVIDIA GPU with a driver for CUDA ${cudaVersionString(p.runtimeVersion)}+`;
  if (p.error === 'cudaErrorInsufficientDriver' || (p.error && p.driverVersion === 0)) {
    if (p.driverVersion === 0) {
      return new GpuUnavailableError('GPU_NO_DRIVER', `No NVIDIA driver found (${p.error}: ${p.message}); ${needs}`);
    }
    return new GpuUnavailableError(
      'GPU_DRIVER_TOO_OLD',
      `The NVIDIA driver supports CUDA ${cudaVersionString(p.driverVersion)}, but this build of the CUDA backend needs CUDA ${cudaVersionString(p.runtimeVersion)}: update the driver (${p.error}: ${p.message})`,
    );
  }
  if (p.error === 'cudaErrorNoDevice' || (!p.error && p.deviceCount === 0)) {
    return new GpuUnavailableError('GPU_NO_DEVICE', `No CUDA device found (${p.error ?? 'device count 0'}${p.message ? `: ${p.message}` : ''}); ${needs}`);
  }
  if (p.error) return new GpuUnavailableError('GPU_NO_DEVICE', `The CUDA runtime cannot use a device (${p.error}: ${p.message})`);
  return null;
}

/** Folders of pip's CUDA wheels (site-packages/nvidia/...), searched for cuBLASLt after the default path. */
export function pythonSitePackages(): string[] {
  const out: string[] = [];
  const roots = ['/usr/local/lib', '/usr/lib', `${process.env.HOME ?? ''}/.local/lib`, '/opt/conda/lib'];
  for (const root of roots) {
    let entries: string[] = [];
    try {
      entries = readdirSync(root).filter((n) => /^python3(\.\d+)?$/.test(n));
    } catch {
      continue;
    }
    for (const e of entries) for (const s of ['site-packages', 'dist-packages']) if (existsSync(`${root}/${e}/${s}/nvidia`)) out.push(`${root}/${e}/${s}`);
  }
  return out;
}
