// The GPU test suite, defined once for the two places it runs: a real CUDA device (gpu.test.ts)
// and the CPU emulator of the addon (emulator.test.ts). Buffers allocated 'uninitialized' start
// as NaN bytes in the training checks, so a kernel that reads one before writing it fails.
import { defineConformanceTests } from '@blankglm/conformance/vitest';
import { describe, expect, it } from 'vitest';
import { createGpuBackend, type GpuBackend } from '../src/index.js';
import { checkParity } from '../../model-spec/test/parity-helpers.js';
import { checkDeterminism, checkGeneration, checkResume, trackReferenceTraining } from './gpu-checks.js';

export function defineGpuSuite(label: string, opts: { fullTier: boolean }): void {
  const checked = () => createGpuBackend({ uninitialized: 'nan' });
  /** Runs `body` on a fresh checked backend and disposes it. */
  const onGpu = (body: (gpu: GpuBackend) => void): void => {
    const gpu = checked();
    try {
      body(gpu);
    } finally {
      gpu.dispose();
    }
  };

  defineConformanceTests(`${label} (quick)`, () => createGpuBackend());
  defineConformanceTests(`${label} (quick, bf16 tensors: bf16 products, tensor-core attention)`, () => createGpuBackend(), { dtype: 'bf16' });
  if (opts.fullTier) defineConformanceTests(`${label} (full)`, () => createGpuBackend(), { tier: 'full' });

  describe(`${label} model`, () => {
    it('matches the PyTorch fixtures of @blankglm/model-spec: logits, loss and the gradient of every parameter (f32)', () => {
      onGpu((gpu) => {
        console.log('parity relative errors:', checkParity(gpu));
      });
    });

    it('fills blanks with the key/value cache as the reference does (greedy, sampling, beam; both decode-attention kernels)', () => {
      onGpu((gpu) => {
        const r = checkGeneration(gpu);
        console.log(r.detail);
        expect(r.ok, r.detail).toBe(true);
      });
    });
  });

  describe(`${label} training`, () => {
    it('GLM-tiny tracks the reference backend step by step (dropout, AdamW, clipping)', () => {
      onGpu((gpu) => {
        const r = trackReferenceTraining(gpu, { log: (s) => console.log(s) });
        expect(r.ok, r.detail).toBe(true);
      });
    });

    it('GLM-tiny in bf16 (bf16 products, tensor-core attention) tracks the f32 reference within bf16 tolerance', () => {
      onGpu((gpu) => {
        const r = trackReferenceTraining(gpu, { precision: 'bf16', log: (s) => console.log(s) });
        expect(r.ok, r.detail).toBe(true);
      });
    });

    it('resumes from a trainer checkpoint bit-exactly (f32 and bf16)', () => {
      for (const precision of ['f32', 'bf16'] as const) {
        const r = checkResume(checked, precision);
        expect(r.ok, r.detail).toBe(true);
      }
    });

    it('is deterministic: identical runs give identical bits; runSequence equals op-by-op', () => {
      const r = checkDeterminism(checked);
      expect(r.ok, r.detail).toBe(true);
    });

    it('bad ids are reported with the argument and index, not silently used', () => {
      onGpu((gpu) => {
        const x = gpu.alloc('f32', 4 * 8), index = gpu.alloc('i32', 2), out = gpu.alloc('f32', 2 * 8);
        gpu.write(index, [1, 9]);
        gpu.run('gatherRows', { x, index, out, count: 2, rows: 4, width: 8 });
        expect(() => gpu.read(out)).toThrow(/index\[1\] = 9 is outside x \(4 rows\)/);
      });
    });
  });
}
