// The GPU test suite on the CPU emulator of the CUDA addon (native/emu/emu.h; built by
// scripts/build-emu.mjs into build/emu): the addon's own kernels and host code, cuBLASLt replaced
// by a CPU library, run with no GPU against the reference backend. Speed means nothing here.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'vitest';
import { defineGpuSuite } from './gpu-suite.js';

const emuDir = fileURLToPath(new URL('../build/emu/', import.meta.url));
const built = existsSync(`${emuDir}gpu.node`) && existsSync(`${emuDir}libcublasLt-emu.so`);
process.env.BLANKGLM_GPU_ADDON = `${emuDir}gpu.node`;
process.env.BLANKGLM_CUBLASLT = `${emuDir}libcublasLt-emu.so`;

if (built) {
  // The full conformance tier takes minutes here: BLANKGLM_EMU_FULL=1 adds it.
  defineGpuSuite('cuda emulator', { fullTier: process.env.BLANKGLM_EMU_FULL === '1' });
} else {
  describe('cuda emulator', () => {
    it.skip(`not built (${emuDir}gpu.node is missing): scripts/build-emu.mjs needs g++ and the CUDA toolkit's headers`, () => {});
  });
}
