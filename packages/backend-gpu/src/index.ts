// @blankglm/backend-gpu: the CUDA backend. Importing this module loads nothing native: the addon
// is loaded on the first probe/create, so machines without a GPU (or without the addon) get a
// clear reason instead of a crash.
import type { Backend } from '@blankglm/tensor';
import { createGpuBackend, probeGpu, type GpuBackendOptions } from './backend.js';

export { GpuBackend, createGpuBackend, probeGpu, toBf16Bits, fromBf16Bits, MAX_HEAD_DIM, type GpuBackendOptions, type UninitializedFill } from './backend.js';
export { GpuError, GpuUnavailableError, type GpuUnavailableCode } from './errors.js';
export { addonPath, loadAddon, diagnose, cudaVersionString, type NativeAddon, type NativeProbe, type NativeDeviceInfo, type DecodedCall, type OpProfileEntry } from './addon.js';
export { encodeSequence, decodeSequence, callWithIds, type DecodedOpCall, type TensorResolver } from './encode.js';
export { OP_SCHEMA, FIELD_WORDS, schemaSignature, type FieldKind } from './schema.js';

/** What apps/cli/src/backends.ts loads: probe() never throws; create() throws GpuUnavailableError. */
export const backend = {
  probe: probeGpu,
  async create(opts: GpuBackendOptions = {}): Promise<Backend> {
    return createGpuBackend(opts);
  },
};
