// The host-side replay of the CUDA kernels' index arithmetic (native/host-check.cu: the segmented
// row sums of the embedding backward, the batched sort, the fused layer-norm backward's row and
// column partition, the split decode attention's key splits and their merge), compiled with nvcc
// and run on the CPU. Skipped where nvcc is missing.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const nvcc = process.env.NVCC || 'nvcc';
const haveNvcc = spawnSync(nvcc, ['--version'], { encoding: 'utf8' }).status === 0;
const source = join(dirname(fileURLToPath(import.meta.url)), '..', 'native', 'host-check.cu');

describe('kernel index arithmetic (host replay)', () => {
  it.runIf(haveNvcc)('every element is summed exactly once, in a fixed order, and bad ids are reported once', () => {
    const dir = mkdtempSync(join(tmpdir(), 'blankglm-host-check-'));
    try {
      const exe = join(dir, 'host-check');
      execFileSync(nvcc, ['-std=c++17', '-O2', '-o', exe, source], { stdio: 'pipe' });
      const out = execFileSync(exe, { encoding: 'utf8' });
      expect(out).toMatch(/all passed/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 180_000);
});
