// Cases for linear (x·Wᵀ + b with a GELU epilogue) and its backward; preAct comes from the reference forward.
import type { Activation } from '@blankglm/tensor';
import { defineCase, f, normal, type ConformanceCase, type TensorInit } from '../case.js';

interface LinearSpec {
  rows: number;
  inF: number;
  outF: number;
  tier: 'quick' | 'full';
}

const QUICK: Array<[number, number, number]> = [
  [1, 1, 1],
  [3, 31, 33],
  [33, 65, 129],
  [63, 127, 31],
  [65, 33, 63],
  [7, 64, 192],
  [3, 768, 65],
];
// GLM-base/large projections: QKV, MLP up and down, at L = 512 rows for the forward. The backward
// uses 128 rows (the feature sizes are what matter; the scalar reference needs ~10 s per side at 512).
const FULL: Array<[number, number, number]> = [
  [512, 768, 2304],
  [512, 768, 3072],
  [512, 3072, 768],
  [512, 1024, 3072],
  [512, 1024, 4096],
  [512, 4096, 1024],
];
const ACTIVATIONS: Activation[] = ['none', 'gelu_tanh', 'gelu_erf'];

const specs = (): LinearSpec[] => [
  ...QUICK.map(([rows, inF, outF]) => ({ rows, inF, outF, tier: 'quick' as const })),
  ...FULL.map(([rows, inF, outF]) => ({ rows, inF, outF, tier: 'full' as const })),
];

function activationsFor(s: LinearSpec, i: number): Activation[] {
  // Quick: every activation on every shape. Full: one per shape, cycling, to bound the time.
  return s.tier === 'quick' ? ACTIVATIONS : [ACTIVATIONS[i % ACTIVATIONS.length]!];
}

export function linearCases(): ConformanceCase[] {
  const out: ConformanceCase[] = [];
  specs().forEach((s, i) => {
    for (const act of activationsFor(s, i)) {
      for (const bias of s.tier === 'quick' ? [true, false] : [true]) {
        out.push(
          defineCase('linear', s.tier, { rows: s.rows, in: s.inF, out: s.outF, act, bias }, (rng) => {
            const std = 1 / Math.sqrt(s.inF);
            const tensors: Record<string, TensorInit> = {
              x: f(normal(rng, s.rows * s.inF)),
              weight: f(normal(rng, s.outF * s.inF, std)),
              y: f(normal(rng, s.rows * s.outF)),
            };
            if (bias) tensors.bias = f(normal(rng, s.outF, 0.5));
            if (act !== 'none') tensors.preAct = f(normal(rng, s.rows * s.outF));
            return {
              tensors,
              args: (t) => ({
                x: t.x!, weight: t.weight!, bias: bias ? t.bias! : null, y: t.y!, preAct: act === 'none' ? null : t.preAct!,
                rows: s.rows, inFeatures: s.inF, outFeatures: s.outF, activation: act,
              }),
            };
          }),
        );
      }
    }
  });
  return out;
}

export function linearBackwardCases(): ConformanceCase[] {
  const out: ConformanceCase[] = [];
  specs().forEach((spec, i) => {
    const s = spec.tier === 'full' ? { ...spec, rows: 128 } : spec;
    for (const act of activationsFor(s, i)) {
      // (dx, dBias, accumulate): the training path, first-layer path without dx, and no-bias accumulation.
      const variants: Array<[boolean, boolean, boolean]> =
        s.tier === 'quick' ? [[true, true, false], [true, true, true], [false, true, false], [true, false, true]] : [[true, true, true]];
      for (const [withDx, withBias, accumulate] of variants) {
        out.push(
          defineCase('linearBackward', s.tier, { rows: s.rows, in: s.inF, out: s.outF, act, dx: withDx, dBias: withBias, accumulate }, (rng) => {
            const std = 1 / Math.sqrt(s.inF);
            const tensors: Record<string, TensorInit> = {
              x: f(normal(rng, s.rows * s.inF)),
              weight: f(normal(rng, s.outF * s.inF, std)),
              bias: f(normal(rng, s.outF, 0.5)),
              y: f(new Float32Array(s.rows * s.outF)),
              dy: f(normal(rng, s.rows * s.outF)),
              dWeight: f(normal(rng, s.outF * s.inF, 0.1)),
            };
            if (act !== 'none') tensors.preAct = f(new Float32Array(s.rows * s.outF));
            if (withDx) tensors.dx = f(normal(rng, s.rows * s.inF));
            if (withBias) tensors.dBias = f(normal(rng, s.outF, 0.1));
            return {
              tensors,
              prepare:
                act === 'none'
                  ? []
                  : [
                      {
                        op: 'linear',
                        args: (t) => ({
                          x: t.x!, weight: t.weight!, bias: t.bias!, y: t.y!, preAct: t.preAct!,
                          rows: s.rows, inFeatures: s.inF, outFeatures: s.outF, activation: act,
                        }),
                      },
                    ],
              args: (t) => ({
                dy: t.dy!, x: t.x!, weight: t.weight!, preAct: act === 'none' ? null : t.preAct!,
                dx: withDx ? t.dx! : null, dWeight: t.dWeight!, dBias: withBias ? t.dBias! : null,
                rows: s.rows, inFeatures: s.inF, outFeatures: s.outF, activation: act, accumulate,
              }),
            };
          }),
        );
      }
    }
  });
  return out;
}
