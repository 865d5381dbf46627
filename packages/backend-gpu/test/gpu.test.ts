// Checks that need an NVIDIA GPU: skipped (listed as skipped) on machines without one. On the GPU
// machine, scripts/device-check.sh runs the same checks through a plain node script.
import { existsSync } from 'node:fs';
import { defineConformanceTests } from '@blankglm/conformance/vitest';
import { describe, expect, it } from 'vitest';
import { addonPath, createGpuBackend, loadAddon } from '../src/index.js';
import { checkDeterminism, checkResume, trackReferenceTraining } from './gpu-checks.js';

// Buffers allocated 'uninitialized' start as NaN bytes: a kernel that reads one before writing it fails.
const checked = () => createGpuBackend({ uninitialized: 'nan' });

const haveGpu = existsSync(addonPath()) && (loadAddon().probe().deviceCount ?? 0) > 0;

if (haveGpu) {
  defineConformanceTests('cuda (quick)', () => createGpuBackend());
  defineConformanceTests('cuda (full)', () => createGpuBackend(), { tier: 'full' });
}

describe('cuda training', () => {
  it.runIf(haveGpu)('GLM-tiny on the GPU tracks the reference backend step by step (dropout, AdamW, clipping)', () => {
    const gpu = checked();
    try {
      const r = trackReferenceTraining(gpu, { log: (s) => console.log(s) });
      expect(r.ok, r.detail).toBe(true);
    } finally {
      gpu.dispose();
    }
  });

  it.runIf(haveGpu)('GLM-tiny in bf16 (bf16 products, tensor-core attention) tracks the f32 reference within bf16 tolerance', () => {
    const gpu = checked();
    try {
      const r = trackReferenceTraining(gpu, { precision: 'bf16', log: (s) => console.log(s) });
      expect(r.ok, r.detail).toBe(true);
    } finally {
      gpu.dispose();
    }
  });

  it.runIf(haveGpu)('resumes from a trainer checkpoint bit-exactly (f32 and bf16)', () => {
    for (const precision of ['f32', 'bf16'] as const) {
      const r = checkResume(checked, precision);
      expect(r.ok, r.detail).toBe(true);
    }
  });

  it.runIf(haveGpu)('is deterministic: identical runs give identical bits; runSequence equals op-by-op', () => {
    const r = checkDeterminism(checked);
    expect(r.ok, r.detail).toBe(true);
  });

  it.runIf(haveGpu)('bad ids are reported with the argument and index, not silently used', () => {
    const gpu = checked();
    try {
      const x = gpu.alloc('f32', 4 * 8), index = gpu.alloc('i32', 2), out = gpu.alloc('f32', 2 * 8);
      gpu.write(index, [1, 9]);
      gpu.run('gatherRows', { x, index, out, count: 2, rows: 4, width: 8 });
      expect(() => gpu.read(out)).toThrow(/index\[1\] = 9 is outside x \(4 rows\)/);
    } finally {
      gpu.dispose();
    }
  });
});
