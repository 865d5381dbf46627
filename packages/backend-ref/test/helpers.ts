// Shared test helpers: seeded random tensors and a finite-difference gradient checker.
import { Rng, type DType, type Tensor } from '@blankglm/tensor';
import type { ReferenceBackend } from '../src/index.js';

/** n normal draws (mean 0, std `std`) from a seeded Rng. */
export function randn(rng: Rng, n: number, std = 1): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = rng.normal(0, std);
  return out;
}

/** A new tensor holding `values`. */
export function upload(be: ReferenceBackend, dtype: DType, values: ArrayLike<number>, label?: string): Tensor {
  const t = be.alloc(dtype, values.length, label);
  be.write(t, values);
  return t;
}

/** Σ_e w[e]·y[e] in f64: the scalar loss the gradient checks differentiate. */
export function weightedSum(be: ReferenceBackend, y: Tensor, w: ArrayLike<number>): number {
  const values = be.read(y);
  let sum = 0;
  for (let e = 0; e < w.length; e++) sum += w[e]! * values[e]!;
  return sum;
}

export interface GradientInput {
  name: string;
  tensor: Tensor;
  /** The backward op's gradient of the loss for every element of `tensor`. */
  analytic: ArrayLike<number>;
}

export interface GradientReport {
  name: string;
  /** max_e |fd_e − analytic_e| / max_e |analytic_e|. */
  error: number;
  /** Largest |analytic| (to make sure the check is not vacuous). */
  scale: number;
  worstIndex: number;
}

/**
 * Central differences of `loss()` (which reruns the forward ops) w.r.t. every element of each
 * input. Perturbed values are stored as f32, so the step actually taken is read back and used.
 */
export function finiteDifferences(be: ReferenceBackend, loss: () => number, inputs: GradientInput[], step = 1e-2): GradientReport[] {
  return inputs.map(({ name, tensor, analytic }) => {
    let maxDiff = 0;
    let scale = 0;
    let worstIndex = -1;
    for (let e = 0; e < tensor.size; e++) {
      const original = be.read(tensor, e, 1)[0]!;
      be.write(tensor, [original + step], e);
      const plus = be.read(tensor, e, 1)[0]!;
      const lossPlus = loss();
      be.write(tensor, [original - step], e);
      const minus = be.read(tensor, e, 1)[0]!;
      const lossMinus = loss();
      be.write(tensor, [original], e);
      const fd = (lossPlus - lossMinus) / (plus - minus);
      const diff = Math.abs(fd - analytic[e]!);
      if (diff > maxDiff) {
        maxDiff = diff;
        worstIndex = e;
      }
      scale = Math.max(scale, Math.abs(analytic[e]!));
    }
    return { name, error: maxDiff / Math.max(scale, 1e-12), scale, worstIndex };
  });
}

export function rng(seed: number): Rng {
  return new Rng(seed);
}
