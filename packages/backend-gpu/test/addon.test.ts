// What can be checked without a GPU: the addon is built and loads, availability is reported with
// the right code and a clear sentence, the runSequence wire format round-trips through both the
// TypeScript and the C++ decoder, and the kernels' dropout hash equals counterHash32.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { roundArrayToBf16 } from '@blankglm/backend-ref';
import { listCases } from '@blankglm/conformance';
import { counterUniform, OP_NAMES, Rng, type DType, type OpCall, type Tensor } from '@blankglm/tensor';
import { afterEach, describe, expect, it } from 'vitest';
import { resetAddonForTesting } from '../src/addon.js';
import {
  addonPath,
  backend,
  callWithIds,
  createGpuBackend,
  decodeSequence,
  diagnose,
  encodeSequence,
  fromBf16Bits,
  GpuUnavailableError,
  loadAddon,
  OP_SCHEMA,
  probeGpu,
  schemaSignature,
  toBf16Bits,
  GpuBackend,
  type NativeAddon,
  type NativeDeviceInfo,
  type NativeProbe,
} from '../src/index.js';

const nvccAvailable = spawnSync(process.env.NVCC || 'nvcc', ['--version']).status === 0;
const built = existsSync(addonPath());
const haveGpu = built && (loadAddon().probe().deviceCount ?? 0) > 0;

describe('build output', () => {
  it.runIf(nvccAvailable)('build/gpu.node exists (nvcc is installed, so the build must have produced it)', () => {
    expect(built, `${addonPath()} is missing: run pnpm --filter @blankglm/backend-gpu build`).toBe(true);
  });

  it.runIf(built)('loads, was built from this op table, and reports CUDA runtime 13', () => {
    const addon = loadAddon();
    expect(addon.schema()).toBe(schemaSignature());
    expect(Math.floor(addon.probe().runtimeVersion / 1000)).toBe(13);
  });
});

describe('availability', () => {
  afterEach(() => {
    delete process.env.BLANKGLM_GPU_ADDON;
    resetAddonForTesting();
  });

  it.runIf(built && !haveGpu)('without a driver, probe() says so and create() throws GPU_NO_DRIVER', async () => {
    const p = await probeGpu();
    expect(p.available).toBe(false);
    expect(p.detail).toMatch(/^No NVIDIA driver found \(cudaErrorInsufficientDriver: .+\); the CUDA backend needs an NVIDIA GPU with a driver for CUDA 13\.0\+$/);
    expect(await backend.probe()).toEqual(p);
    let caught: unknown;
    try {
      createGpuBackend();
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(GpuUnavailableError);
    expect((caught as GpuUnavailableError).code).toBe('GPU_NO_DRIVER');
    await expect(backend.create({})).rejects.toMatchObject({ code: 'GPU_NO_DRIVER' });
  });

  it('a missing addon is GPU_ADDON_NOT_BUILT, reported by probe() and create(), not at import', async () => {
    process.env.BLANKGLM_GPU_ADDON = '/nonexistent/gpu.node';
    resetAddonForTesting();
    const p = await probeGpu();
    expect(p).toMatchObject({ available: false, code: 'GPU_ADDON_NOT_BUILT' });
    expect(p.detail).toContain('/nonexistent/gpu.node is missing');
    expect(() => createGpuBackend()).toThrow(expect.objectContaining({ code: 'GPU_ADDON_NOT_BUILT' }));
  });

  it('an addon that fails to load is GPU_ADDON_LOAD_FAILED with the loader message', async () => {
    process.env.BLANKGLM_GPU_ADDON = new URL('./addon.test.ts', import.meta.url).pathname;
    resetAddonForTesting();
    const p = await probeGpu();
    expect(p).toMatchObject({ available: false, code: 'GPU_ADDON_LOAD_FAILED' });
    expect(p.detail).toMatch(/failed to load/);
  });

  it('diagnose() maps the runtime errors to codes and sentences', () => {
    const base: NativeProbe = { runtimeVersion: 13000, driverVersion: 0, deviceCount: 0, error: null, message: null };
    expect(diagnose({ ...base, error: 'cudaErrorInsufficientDriver', message: 'CUDA driver version is insufficient for CUDA runtime version' })?.code).toBe('GPU_NO_DRIVER');
    const old = diagnose({ ...base, driverVersion: 12040, error: 'cudaErrorInsufficientDriver', message: 'CUDA driver version is insufficient for CUDA runtime version' });
    expect(old?.code).toBe('GPU_DRIVER_TOO_OLD');
    expect(old?.message).toContain('supports CUDA 12.4, but this build of the CUDA backend needs CUDA 13.0');
    expect(diagnose({ ...base, driverVersion: 13000, error: 'cudaErrorNoDevice', message: 'no CUDA-capable device is detected' })?.code).toBe('GPU_NO_DEVICE');
    expect(diagnose({ ...base, driverVersion: 13000, deviceCount: 0 })?.code).toBe('GPU_NO_DEVICE');
    expect(diagnose({ ...base, driverVersion: 13000, deviceCount: 1 })).toBeNull();
  });
});

/** Fake tensors with ids: the wire format only carries ids, so no device is needed. */
function fakeTensors(spec: Record<string, { dtype: DType | 'float'; data: ArrayLike<number> }>, next: { id: number }): Record<string, Tensor> {
  const out: Record<string, Tensor> = {};
  for (const [name, t] of Object.entries(spec)) out[name] = { id: next.id++, dtype: t.dtype === 'float' ? 'f32' : t.dtype, size: t.data.length, label: name };
  return out;
}

/** Up to `perOp` real conformance calls of every op of the catalogue (their argument shapes, not their data). */
function sampleCalls(perOp: number): OpCall[] {
  const calls: OpCall[] = [];
  const next = { id: 1 };
  for (const op of OP_NAMES) {
    const cases = listCases({ tier: 'quick', ops: [op] })
      .filter((c) => !/30592|65537|512/.test(c.name))
      .slice(0, perOp);
    for (const c of cases) {
      const inputs = c.build(new Rng(c.name), 'f32');
      calls.push({ op: c.op, args: inputs.args(fakeTensors(inputs.tensors, next)) } as OpCall);
    }
  }
  return calls;
}

describe('runSequence wire format', () => {
  const calls = sampleCalls(3);
  const resolve = (t: Tensor): number => t.id;

  it('covers every op of the catalogue, in the table the addon is built from', () => {
    expect(OP_SCHEMA.map(([op]) => op).sort()).toEqual([...OP_NAMES].sort());
    expect(new Set(calls.map((c) => c.op)).size).toBe(OP_NAMES.length);
  });

  it('round-trips every field of real conformance calls through the TypeScript decoder', () => {
    const words = encodeSequence(calls, resolve);
    expect(words[0]).toBe(calls.length);
    expect(decodeSequence(words)).toEqual(calls.map((c) => callWithIds(c, resolve)));
  });

  it.runIf(built)('the C++ decoder in the addon reads the same calls (no device needed)', () => {
    const words = encodeSequence(calls, resolve);
    expect(loadAddon().decode(words)).toEqual(calls.map((c) => callWithIds(c, resolve)));
  });

  it.runIf(built)('the C++ decoder rejects malformed buffers with GPU_BAD_SEQUENCE', () => {
    const addon = loadAddon();
    const words = encodeSequence(calls.slice(0, 2), resolve);
    const wrongCount = words.slice();
    wrongCount[2] = wrongCount[2]! + 1;
    expect(() => addon.decode(wrongCount)).toThrow(expect.objectContaining({ code: 'GPU_BAD_SEQUENCE', message: expect.stringMatching(/words, the schema has/) }));
    const unknownOp = words.slice();
    unknownOp[1] = 99;
    expect(() => addon.decode(unknownOp)).toThrow(expect.objectContaining({ code: 'GPU_BAD_SEQUENCE', message: expect.stringMatching(/unknown op id 99/) }));
    const trailing = new Float64Array(words.length + 1);
    trailing.set(words);
    expect(() => addon.decode(trailing)).toThrow(/1 words after the last call/);
    expect(() => addon.decode(words.subarray(0, words.length - 1))).toThrow(/runs past the buffer/);
  });

  it('names the call and argument of a tensor that is not the backend\'s', () => {
    const foreign = (t: Tensor, where: string): number => {
      if (t.label === 'x') throw new ReferenceError(`${where}: not mine`);
      return t.id;
    };
    const scaleCall = calls.find((c) => c.op === 'scale')!;
    expect(() => encodeSequence([calls[0]!, scaleCall], foreign)).toThrow(/scale \(call #1\): argument 'x': not mine/);
  });
});

describe('dropout mask of the kernels', () => {
  it.runIf(built)('equals counterUniform < p bit for bit (the kernels\' own code, host-compiled)', () => {
    const addon = loadAddon();
    for (const [p, seed, stream] of [
      [0.1, 12345, 0],
      [0.5, 0xdeadbeef, 7],
      [0.9, -5, 0xfffffffe],
      [1 / 3, 2 ** 31, 123456789],
    ] as const) {
      const n = 20000;
      const got = addon.dropoutFactors(p, seed, stream, n);
      let kept = 0;
      for (let e = 0; e < n; e++) {
        const want = counterUniform(seed, stream, e) < p ? 0 : 1 / (1 - p);
        if (got[e] !== want) throw new Error(`p=${p} seed=${seed} stream=${stream} element ${e}: kernel factor ${got[e]}, TypeScript ${want}`);
        if (want !== 0) kept++;
      }
      expect(kept / n).toBeCloseTo(1 - p, 1);
    }
    expect(Array.from(addon.dropoutFactors(0, 1, 2, 5))).toEqual([1, 1, 1, 1, 1]);
  });
});

describe('bf16 host conversion', () => {
  it('rounds like the reference (nearest even) and converts back exactly', () => {
    const rng = new Rng(4);
    const values = Float32Array.from({ length: 5000 }, () => rng.normal(0, 100));
    values.set([0, -0, 1, -1, Infinity, -Infinity, 3.3895313892515355e38, 1.00390625, 1.01171875]);
    const expected = Float32Array.from(values);
    roundArrayToBf16(expected);
    expect(Array.from(fromBf16Bits(toBf16Bits(values)))).toEqual(Array.from(expected));
    expect(Number.isNaN(fromBf16Bits(toBf16Bits([NaN]))[0])).toBe(true);
  });
});

describe('host side of the backend (an addon stand-in that records its calls)', () => {
  function recorder(): { addon: NativeAddon; calls: unknown[][] } {
    const calls: unknown[][] = [];
    const info = fakeInfo();
    const addon = {
      alloc: (...a: unknown[]) => void calls.push(['alloc', ...a]),
      free: () => {},
      setOptions: (...a: number[]) => (
        calls.push(['setOptions', ...a]),
        { ...info, tf32: a[0] === 1, ltGelu: a[1] === 1, gemm: a[2] === 1 ? 'builtin' : 'cublasLt', tcAttention: a[3] === 1, lnSplit: a[4] === 1, splitDecode: a[5] === 1 }
      ),
    } as unknown as NativeAddon;
    return { addon, calls };
  }
  const fakeInfo = (): NativeDeviceInfo => ({
    name: 'stand-in', computeCapability: '9.0', multiprocessors: 132, memoryBytes: 2 ** 37, runtimeVersion: 13000, driverVersion: 13000,
    cublasLt: null, gemm: 'cublasLt', tf32: false, ltGelu: false, tcAttention: true, lnSplit: false, splitDecode: false,
  });

  it("alloc asks the addon to skip the memset only for 'uninitialized' buffers, or to fill them with NaN bytes when told", () => {
    const { addon, calls } = recorder();
    const gpu = new GpuBackend(addon, fakeInfo());
    gpu.alloc('f32', 8, 'zeroed');
    gpu.alloc('bf16', 8, 'out', 'uninitialized');
    gpu.setOptions({ uninitialized: 'nan' });
    expect(gpu.uninitialized).toBe('nan');
    gpu.alloc('f32', 8, 'poisoned', 'uninitialized');
    gpu.alloc('f32', 8, 'still zeroed', 'zeros');
    const fills = calls.filter((c) => c[0] === 'alloc').map((c) => [c[4], c[5]]);
    expect(fills).toEqual([['zeroed', 0], ['out', 1], ['poisoned', 2], ['still zeroed', 0]]);
    expect(() => gpu.alloc('f32', 1, 'x', 'random' as never)).toThrow(/init must be 'zeros' or 'uninitialized', got 'random'/);
    expect(() => new GpuBackend(addon, fakeInfo(), 'ones' as never)).toThrow(/uninitialized must be 'none' or 'zeros' or 'nan', got 'ones'/);
  });

  it('setOptions passes the layer-norm backward and decode attention choices and keeps the other settings', () => {
    const { addon, calls } = recorder();
    const gpu = new GpuBackend(addon, fakeInfo());
    expect(gpu.setOptions({ layerNormBackward: 'split' }).lnSplit).toBe(true);
    expect(gpu.info.lnSplit).toBe(true);
    gpu.setOptions({ tf32: true });
    expect(gpu.setOptions({ decodeAttention: 'split' }).splitDecode).toBe(true);
    expect(calls.filter((c) => c[0] === 'setOptions')).toEqual([
      ['setOptions', 0, 0, 0, 1, 1, 0],
      ['setOptions', 1, 0, 0, 1, 1, 0],
      ['setOptions', 1, 0, 0, 1, 1, 1],
    ]);
    expect(() => gpu.setOptions({ layerNormBackward: 'twice' as never })).toThrow(/layerNormBackward must be 'fused' or 'split', got 'twice'/);
    expect(() => gpu.setOptions({ decodeAttention: 'many' as never })).toThrow(/decodeAttention must be 'one-block' or 'split', got 'many'/);
  });
});
