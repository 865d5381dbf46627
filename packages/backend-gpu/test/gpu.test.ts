// Checks that need an NVIDIA GPU: skipped (listed as skipped) on machines without one; the same
// suite runs on the CPU emulator of the addon in emulator.test.ts. On the GPU machine,
// scripts/device-check.sh runs these checks through a plain node script.
import { existsSync } from 'node:fs';
import { describe, it } from 'vitest';
import { addonPath, loadAddon } from '../src/index.js';
import { defineGpuSuite } from './gpu-suite.js';

const haveGpu = existsSync(addonPath()) && (loadAddon().probe().deviceCount ?? 0) > 0;

if (haveGpu) {
  defineGpuSuite('cuda', { fullTier: true });
} else {
  describe('cuda', () => {
    it.skip('no CUDA device here (the suite runs on the CPU emulator in emulator.test.ts)', () => {});
  });
}
