// `blankglm doctor`: reports the runtime and every backend with a reason; never fails.
import { describe, expect, it } from 'vitest';
import { runCommand } from './fill-helpers.js';
import type { DoctorReport } from '../src/commands/doctor.js';

describe('blankglm doctor', () => {
  it('lists the runtime, WebAssembly features, CUDA and every backend with its reason, exit 0', async () => {
    const r = await runCommand(['doctor'], process.cwd());
    expect(r.code).toBe(0);
    expect(r.err).toBe('');
    expect(r.out).toContain(`node ${process.version}`);
    expect(r.out).toMatch(/WebAssembly:\n {2}(yes|no ) WebAssembly SIMD \(simd128\)/);
    expect(r.out).toMatch(/relaxed SIMD/);
    expect(r.out).toMatch(/threads \(SharedArrayBuffer, shared memory\)/);
    expect(r.out).toMatch(/CUDA:\n/);
    expect(r.out).toMatch(/yes ref +reference backend/);
    expect(r.out).toMatch(/--backend auto uses: (gpu|wasm|ref)/);
    const j = JSON.parse((await runCommand(['doctor', '--json'], process.cwd())).out) as DoctorReport;
    expect(j.backends.map((b) => b.name)).toEqual(['gpu', 'wasm', 'ref']);
    for (const b of j.backends) expect(b.detail.length).toBeGreaterThan(0);
    expect(j.cpu.cores).toBeGreaterThan(0);
    // Node 20+ always has SIMD and SharedArrayBuffer
    expect(j.wasm.find((c) => c.name.startsWith('WebAssembly SIMD'))!.ok).toBe(true);
    expect(j.cuda.map((c) => c.name)).toEqual(expect.arrayContaining(['NVIDIA driver', 'cuBLASLt']));
    expect(j.auto).toBe(j.backends.find((b) => b.available)!.name);
  });
});

describe('driver version', () => {
  it('reads the version from the line an H200 machine shows', async () => {
    const { parseNvidiaDriverVersion } = await import('../src/commands/doctor.js');
    expect(parseNvidiaDriverVersion('NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  580.159.04  Release Build  (nixbld@)  ')).toBe('580.159.04');
    expect(parseNvidiaDriverVersion('NVRM version: NVIDIA UNIX x86_64 Kernel Module  535.104.05  Sat Aug 19 01:15:15 UTC 2023')).toBe('535.104.05');
    expect(parseNvidiaDriverVersion('garbage')).toBeNull();
  });
});
