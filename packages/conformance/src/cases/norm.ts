// Cases for layer normalisation and its backward (saved mean/rstd come from the reference forward).
import { defineCase, f, f32, normal, type ConformanceCase } from '../case.js';

interface NormSpec {
  rows: number;
  hidden: number;
  /** Mean offset of the inputs: a large one stresses one-pass variance formulas. */
  offset: number;
  tier: 'quick' | 'full';
}

const SPECS: NormSpec[] = [
  { rows: 1, hidden: 1, offset: 0, tier: 'quick' },
  { rows: 3, hidden: 31, offset: 0, tier: 'quick' },
  { rows: 33, hidden: 65, offset: 4, tier: 'quick' },
  { rows: 63, hidden: 129, offset: 0, tier: 'quick' },
  { rows: 5, hidden: 768, offset: 0.5, tier: 'quick' },
  { rows: 2, hidden: 1024, offset: 0, tier: 'quick' },
  { rows: 512, hidden: 768, offset: 0, tier: 'full' },
  { rows: 512, hidden: 1024, offset: 2, tier: 'full' },
];
const EPS = 1e-5;

export function layerNormCases(): ConformanceCase[] {
  return SPECS.map((s) =>
    defineCase('layerNorm', s.tier, { rows: s.rows, H: s.hidden, eps: EPS, offset: s.offset }, (rng) => ({
      tensors: {
        x: f(normal(rng, s.rows * s.hidden, 1, s.offset)),
        gamma: f(normal(rng, s.hidden, 0.2, 1)),
        beta: f(normal(rng, s.hidden, 0.2)),
        y: f(normal(rng, s.rows * s.hidden)),
        mean: f32(normal(rng, s.rows)),
        rstd: f32(normal(rng, s.rows)),
      },
      args: (t) => ({ x: t.x!, gamma: t.gamma!, beta: t.beta!, y: t.y!, mean: t.mean!, rstd: t.rstd!, rows: s.rows, hiddenSize: s.hidden, eps: EPS }),
    })),
  );
}

export function layerNormBackwardCases(): ConformanceCase[] {
  const out: ConformanceCase[] = [];
  for (const s of SPECS) {
    for (const accumulate of s.tier === 'quick' ? [false, true] : [true]) {
      out.push(
        defineCase('layerNormBackward', s.tier, { rows: s.rows, H: s.hidden, offset: s.offset, accumulate }, (rng) => ({
          tensors: {
            x: f(normal(rng, s.rows * s.hidden, 1, s.offset)),
            gamma: f(normal(rng, s.hidden, 0.2, 1)),
            beta: f(normal(rng, s.hidden, 0.2)),
            y: f(new Float32Array(s.rows * s.hidden)),
            mean: f32(new Float32Array(s.rows)),
            rstd: f32(new Float32Array(s.rows)),
            dy: f(normal(rng, s.rows * s.hidden)),
            dx: f(normal(rng, s.rows * s.hidden)),
            dGamma: f(normal(rng, s.hidden)),
            dBeta: f(normal(rng, s.hidden)),
          },
          prepare: [
            { op: 'layerNorm', args: (t) => ({ x: t.x!, gamma: t.gamma!, beta: t.beta!, y: t.y!, mean: t.mean!, rstd: t.rstd!, rows: s.rows, hiddenSize: s.hidden, eps: EPS }) },
          ],
          args: (t) => ({
            dy: t.dy!, x: t.x!, gamma: t.gamma!, mean: t.mean!, rstd: t.rstd!, dx: t.dx!, dGamma: t.dGamma!, dBeta: t.dBeta!,
            rows: s.rows, hiddenSize: s.hidden, accumulate,
          }),
        })),
      );
    }
  }
  return out;
}
