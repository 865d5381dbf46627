// Cases for the elementwise and row-moving ops: fill, copy, scale, dropout, gather/scatter, Σx², AdamW.
import { defineCase, f, f32, i32, type CaseInputs, ints, intsWithRepeats, normal, uniform, type ConformanceCase, type TensorInit } from '../case.js';

/**
 * Awkward lengths around powers of two, one that is not a multiple of any SIMD width, and 1000
 * (3·256 + 232): in a kernel that takes 4 elements per thread, 256 apart, element 1000 falls to
 * a thread's last step, so a bound off by one touches the element past the end.
 */
const QUICK_LENGTHS = [1, 3, 31, 33, 65, 1000, 4099];

export function fillCases(): ConformanceCase[] {
  const out: ConformanceCase[] = [];
  const specs: Array<{ dtype: 'float' | 'i32' | 'u8'; size: number; offset: number; value: number; tier: 'quick' | 'full' }> = [
    { dtype: 'float', size: 1, offset: 0, value: 0.5, tier: 'quick' },
    { dtype: 'float', size: 33, offset: 31, value: -3.25, tier: 'quick' },
    { dtype: 'float', size: 129, offset: 3, value: Number.NEGATIVE_INFINITY, tier: 'quick' },
    { dtype: 'float', size: 63, offset: 1, value: 0, tier: 'quick' },
    { dtype: 'i32', size: 65, offset: 2, value: -7, tier: 'quick' },
    { dtype: 'u8', size: 31, offset: 1, value: 1, tier: 'quick' },
    { dtype: 'float', size: 1024 * 30592, offset: 5, value: 1e-3, tier: 'full' },
  ];
  for (const s of specs) {
    const total = s.offset + s.size + 7; // spare elements after the range must stay untouched
    out.push(
      defineCase('fill', s.tier, { dtype: s.dtype, offset: s.offset, size: s.size, value: s.value, buffer: total }, (rng) => {
        const x: TensorInit =
          s.dtype === 'float' ? f(normal(rng, total)) : s.dtype === 'i32' ? i32(ints(rng, total, 1000)) : { dtype: 'u8', data: Uint8Array.from(ints(rng, total, 256)) };
        return { tensors: { x }, args: (t) => ({ x: t.x!, offset: s.offset, size: s.size, value: s.value }) };
      }),
    );
  }
  return out;
}

export function copyCases(): ConformanceCase[] {
  const out: ConformanceCase[] = [];
  const specs: Array<{ dtype: 'float' | 'i32' | 'u8'; size: number; srcOffset: number; dstOffset: number; same: boolean; tier: 'quick' | 'full' }> = [
    { dtype: 'float', size: 1, srcOffset: 0, dstOffset: 0, same: false, tier: 'quick' },
    { dtype: 'float', size: 33, srcOffset: 3, dstOffset: 65, same: false, tier: 'quick' },
    { dtype: 'float', size: 127, srcOffset: 129, dstOffset: 1, same: true, tier: 'quick' },
    { dtype: 'i32', size: 63, srcOffset: 1, dstOffset: 2, same: false, tier: 'quick' },
    { dtype: 'u8', size: 65, srcOffset: 0, dstOffset: 3, same: false, tier: 'quick' },
    { dtype: 'float', size: 512 * 1024, srcOffset: 1024, dstOffset: 0, same: false, tier: 'full' },
  ];
  for (const s of specs) {
    const total = Math.max(s.srcOffset, s.dstOffset) + s.size + 5;
    const make = (rng: Parameters<ConformanceCase['build']>[0]): TensorInit =>
      s.dtype === 'float' ? f(normal(rng, total)) : s.dtype === 'i32' ? i32(ints(rng, total, 1 << 30)) : { dtype: 'u8', data: Uint8Array.from(ints(rng, total, 256)) };
    out.push(
      defineCase('copy', s.tier, { dtype: s.dtype, size: s.size, srcOffset: s.srcOffset, dstOffset: s.dstOffset, sameBuffer: s.same }, (rng): CaseInputs<'copy'> => {
        if (s.same) {
          return { tensors: { buf: make(rng) }, args: (t) => ({ src: t.buf!, srcOffset: s.srcOffset, dst: t.buf!, dstOffset: s.dstOffset, size: s.size }) };
        }
        return { tensors: { src: make(rng), dst: make(rng) }, args: (t) => ({ src: t.src!, srcOffset: s.srcOffset, dst: t.dst!, dstOffset: s.dstOffset, size: s.size }) };
      }),
    );
  }
  return out;
}

export function scaleCases(): ConformanceCase[] {
  const specs: Array<[number, number, 'quick' | 'full']> = [
    [1, 0.5, 'quick'],
    [33, -3, 'quick'],
    [4099, 1 / 65536, 'quick'],
    [127, 0, 'quick'],
    [1024 * 30592, 0.999, 'full'],
  ];
  return specs.map(([size, factor, tier]) =>
    defineCase('scale', tier, { size, factor, buffer: size + 3 }, (rng) => ({
      // The buffer is longer than `size`: the op scales "the whole buffer" as given by size, and the tail must stay.
      tensors: { x: f(normal(rng, size + 3)) },
      args: (t) => ({ x: t.x!, size, factor }),
    })),
  );
}

const DROPOUT_PS = [0, 0.1, 0.5];

export function dropoutAddCases(): ConformanceCase[] {
  const out: ConformanceCase[] = [];
  for (const size of QUICK_LENGTHS) {
    for (const p of DROPOUT_PS) {
      for (const residual of ['separate', 'none', 'inPlace'] as const) {
        if (size === 1 && p === 0.5) continue;
        out.push(dropoutAddCase(size, p, residual, 'quick'));
      }
    }
  }
  out.push(dropoutAddCase(512 * 1024, 0.1, 'inPlace', 'full'), dropoutAddCase(512 * 768, 0.1, 'separate', 'full'));
  return out;
}

function dropoutAddCase(size: number, p: number, residual: 'separate' | 'none' | 'inPlace', tier: 'quick' | 'full'): ConformanceCase {
  return defineCase('dropoutAdd', tier, { size, p, residual }, (rng) => {
    const seed = rng.nextU32();
    const stream = rng.int(1000);
    const dropout = { p, seed, stream };
    const tensors: Record<string, TensorInit> = { x: f(normal(rng, size)), out: f(normal(rng, size)) };
    if (residual === 'separate') tensors.residual = f(normal(rng, size));
    return {
      tensors,
      args: (t) => ({ x: t.x!, residual: residual === 'separate' ? t.residual! : residual === 'inPlace' ? t.out! : null, out: t.out!, size, dropout }),
    };
  });
}

export function dropoutBackwardCases(): ConformanceCase[] {
  const out: ConformanceCase[] = [];
  for (const size of QUICK_LENGTHS) {
    for (const p of DROPOUT_PS) {
      for (const accumulate of [false, true]) {
        if (size === 1 && p === 0.5) continue;
        out.push(dropoutBackwardCase(size, p, accumulate, 'quick'));
      }
    }
  }
  out.push(dropoutBackwardCase(512 * 1024, 0.1, true, 'full'));
  return out;
}

function dropoutBackwardCase(size: number, p: number, accumulate: boolean, tier: 'quick' | 'full'): ConformanceCase {
  return defineCase('dropoutBackward', tier, { size, p, accumulate }, (rng) => {
    const dropout = { p, seed: rng.nextU32(), stream: rng.int(1000) };
    return {
      tensors: { dy: f(normal(rng, size)), dx: f(normal(rng, size)) },
      args: (t) => ({ dy: t.dy!, dx: t.dx!, size, dropout, accumulate }),
    };
  });
}

const ROW_SPECS: Array<[count: number, rows: number, width: number, tier: 'quick' | 'full']> = [
  [1, 1, 1, 'quick'],
  [3, 5, 31, 'quick'],
  [33, 63, 65, 'quick'],
  [65, 3, 129, 'quick'],
  [127, 512, 33, 'quick'],
  [512, 512, 1024, 'full'],
  [77, 512, 768, 'full'],
];

export function gatherRowsCases(): ConformanceCase[] {
  return ROW_SPECS.map(([count, rows, width, tier]) =>
    defineCase('gatherRows', tier, { count, rows, width }, (rng) => ({
      tensors: { x: f(normal(rng, rows * width)), index: i32(intsWithRepeats(rng, count, rows)), out: f(normal(rng, count * width)) },
      args: (t) => ({ x: t.x!, index: t.index!, out: t.out!, count, rows, width }),
    })),
  );
}

export function scatterAddRowsCases(): ConformanceCase[] {
  return ROW_SPECS.map(([count, rows, width, tier]) =>
    defineCase('scatterAddRows', tier, { count, rows, width, repeats: true }, (rng) => ({
      tensors: { dOut: f(normal(rng, count * width)), index: i32(intsWithRepeats(rng, count, rows)), dx: f(normal(rng, rows * width)) },
      args: (t) => ({ dOut: t.dOut!, index: t.index!, dx: t.dx!, count, rows, width }),
    })),
  );
}

export function sumSquaresCases(): ConformanceCase[] {
  const specs: Array<[size: number, outIndex: number, tier: 'quick' | 'full']> = [
    [1, 0, 'quick'],
    [33, 2, 'quick'],
    [4099, 1, 'quick'],
    [65537, 0, 'quick'],
    [1024 * 30592, 3, 'full'],
  ];
  return specs.map(([size, outIndex, tier]) =>
    defineCase('sumSquares', tier, { size, outIndex }, (rng) => ({
      // Values with a non-zero mean: a naive f32 running sum drifts here, pairwise or f64 sums do not.
      tensors: { x: f(normal(rng, size, 1, 0.5)), out: f32(normal(rng, outIndex + 2)) },
      args: (t) => ({ x: t.x!, size, out: t.out!, outIndex }),
    })),
  );
}

export function adamwCases(): ConformanceCase[] {
  const specs: Array<{ size: number; weightDecay: number; gradScale: number; step: number; tier: 'quick' | 'full' }> = [
    { size: 1, weightDecay: 0, gradScale: 1, step: 1, tier: 'quick' },
    { size: 33, weightDecay: 0, gradScale: 1, step: 1, tier: 'quick' },
    { size: 65, weightDecay: 0.01, gradScale: 1, step: 7, tier: 'quick' },
    { size: 4099, weightDecay: 0.1, gradScale: 1 / 1024, step: 1000, tier: 'quick' },
    { size: 127, weightDecay: 0, gradScale: 0.5, step: 2, tier: 'quick' },
    { size: 1024 * 4096, weightDecay: 0.01, gradScale: 1 / 65536, step: 12345, tier: 'full' },
  ];
  return specs.map((s) =>
    defineCase('adamw', s.tier, { size: s.size, weightDecay: s.weightDecay, gradScale: s.gradScale, step: s.step }, (rng) => {
      const scale = s.gradScale === 1 ? 1 : 1 / s.gradScale; // gradients arrive loss-scaled
      return {
        tensors: {
          param: f(normal(rng, s.size, 0.02)),
          grad: f(normal(rng, s.size, 1e-3 * scale)),
          m: f32(s.step === 1 ? new Float32Array(s.size) : normal(rng, s.size, 1e-3)),
          v: f32(s.step === 1 ? new Float32Array(s.size) : uniform(rng, s.size, 0, 2e-6)),
        },
        args: (t) => ({
          param: t.param!, grad: t.grad!, m: t.m!, v: t.v!, size: s.size,
          lr: 1e-4, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: s.weightDecay, step: s.step, gradScale: s.gradScale,
        }),
      };
    }),
  );
}
