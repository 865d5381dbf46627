// The two GELUs GLM meets, and their derivatives, in f64.
// - gelu_tanh: the original GLM/Megatron code, 0.5x(1 + tanh(√(2/π)(x + 0.044715x³))).
// - gelu_erf: the Hugging Face port (transformers' `gelu`), exact 0.5x(1 + erf(x/√2)) = x·Φ(x).
import type { Activation } from '@blankglm/tensor';
import { erfc } from './erf.js';

const SQRT_2_OVER_PI = 0.7978845608028654; // √(2/π)
const GELU_CUBIC = 0.044715;
const SQRT_HALF = 0.7071067811865476; // 1/√2
const ONE_OVER_SQRT_2PI = 0.3989422804014327; // 1/√(2π)

export function geluTanh(x: number): number {
  const t = Math.tanh(SQRT_2_OVER_PI * (x + GELU_CUBIC * x * x * x));
  return 0.5 * x * (1 + t);
}

/** d/dx gelu_tanh = 0.5(1 + t) + 0.5x(1 − t²)·√(2/π)(1 + 3·0.044715x²), t = tanh(…). */
export function geluTanhDerivative(x: number): number {
  const t = Math.tanh(SQRT_2_OVER_PI * (x + GELU_CUBIC * x * x * x));
  return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * SQRT_2_OVER_PI * (1 + 3 * GELU_CUBIC * x * x);
}

/** Φ(x), the standard normal CDF, via erfc so it keeps relative accuracy for very negative x. */
function normalCdf(x: number): number {
  return 0.5 * erfc(-x * SQRT_HALF);
}

export function geluErf(x: number): number {
  return x * normalCdf(x);
}

/** d/dx x·Φ(x) = Φ(x) + x·φ(x). */
export function geluErfDerivative(x: number): number {
  return normalCdf(x) + x * ONE_OVER_SQRT_2PI * Math.exp(-0.5 * x * x);
}

/** act(x) for a linear layer's epilogue. */
export function activate(activation: Activation, x: number): number {
  switch (activation) {
    case 'none':
      return x;
    case 'gelu_tanh':
      return geluTanh(x);
    case 'gelu_erf':
      return geluErf(x);
  }
}

/** act'(x) for the backward pass. */
export function activationDerivative(activation: Activation, x: number): number {
  switch (activation) {
    case 'none':
      return 1;
    case 'gelu_tanh':
      return geluTanhDerivative(x);
    case 'gelu_erf':
      return geluErfDerivative(x);
  }
}
