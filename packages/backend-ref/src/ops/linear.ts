// Fully connected layer with PyTorch's weight layout and an optional GELU epilogue.
import type { Activation, OpArgs } from '@blankglm/tensor';
import { activate, activationDerivative } from '../math/gelu.js';
import type { OpContext } from './context.js';

const ACTIVATIONS: readonly Activation[] = ['none', 'gelu_tanh', 'gelu_erf'];

export function checkActivation(ctx: OpContext, activation: Activation): void {
  if (!ACTIVATIONS.includes(activation)) ctx.fail(`activation must be one of ${ACTIVATIONS.join(', ')}, got '${String(activation)}'`);
}

/**
 * z[m, n] = Σ_k x[m, k]·W[n, k] + bias[n] (f64), y = act(z); preAct = z when given.
 * x: [M, K]; W: [N, K]; bias: [N]; y, preAct: [M, N]
 */
export function linear(ctx: OpContext, a: OpArgs['linear']): void {
  const { rows: M, inFeatures: K, outFeatures: N, activation } = a;
  checkActivation(ctx, activation);
  const x = ctx.floats(a.x, 'x');
  const weight = ctx.floats(a.weight, 'weight');
  const bias = a.bias ? ctx.floats(a.bias, 'bias') : null;
  const y = ctx.floats(a.y, 'y');
  const preAct = a.preAct ? ctx.floats(a.preAct, 'preAct') : null;
  for (let m = 0; m < M; m++) {
    for (let n = 0; n < N; n++) {
      let z = bias ? bias[n]! : 0;
      for (let k = 0; k < K; k++) z += x[m * K + k]! * weight[n * K + k]!;
      if (preAct) preAct[m * N + n] = z;
      y[m * N + n] = activate(activation, z);
    }
  }
}

/**
 * dz = dy ⊙ act'(preAct) (dz = dy without an activation), then
 *   dx[m, k] (= or +=) Σ_n dz[m, n]·W[n, k]
 *   dWeight[n, k] += Σ_m dz[m, n]·x[m, k]
 *   dBias[n] += Σ_m dz[m, n]
 */
export function linearBackward(ctx: OpContext, a: OpArgs['linearBackward']): void {
  const { rows: M, inFeatures: K, outFeatures: N, activation } = a;
  checkActivation(ctx, activation);
  const dy = ctx.floats(a.dy, 'dy');
  const x = ctx.floats(a.x, 'x');
  const weight = ctx.floats(a.weight, 'weight');
  const preAct = activation === 'none' ? null : ctx.floats(a.preAct!, 'preAct');
  const dx = a.dx ? ctx.floats(a.dx, 'dx') : null;
  const dWeight = ctx.floats(a.dWeight, 'dWeight');
  const dBias = a.dBias ? ctx.floats(a.dBias, 'dBias') : null;

  // dz: [M, N] in f64.
  const dz = new Float64Array(M * N);
  for (let e = 0; e < M * N; e++) dz[e] = preAct ? dy[e]! * activationDerivative(activation, preAct[e]!) : dy[e]!;

  // Both products are accumulated a row at a time into f64 sums (contiguous loops over k).
  const rowSum = new Float64Array(K);
  if (dx) {
    for (let m = 0; m < M; m++) {
      rowSum.fill(0);
      for (let n = 0; n < N; n++) {
        const g = dz[m * N + n]!;
        for (let k = 0; k < K; k++) rowSum[k] += g * weight[n * K + k]!;
      }
      for (let k = 0; k < K; k++) dx[m * K + k] = a.accumulate ? dx[m * K + k]! + rowSum[k]! : rowSum[k]!;
    }
  }
  for (let n = 0; n < N; n++) {
    rowSum.fill(0);
    let biasSum = 0;
    for (let m = 0; m < M; m++) {
      const g = dz[m * N + n]!;
      biasSum += g;
      for (let k = 0; k < K; k++) rowSum[k] += g * x[m * K + k]!;
    }
    for (let k = 0; k < K; k++) dWeight[n * K + k] = dWeight[n * K + k]! + rowSum[k]!;
    if (dBias) dBias[n] = dBias[n]! + biasSum;
  }
}
