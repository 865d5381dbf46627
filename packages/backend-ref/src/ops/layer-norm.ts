// Layer normalisation over the last dimension (biased variance, eps inside the square root).
import type { OpArgs } from '@blankglm/tensor';
import type { OpContext } from './context.js';

/**
 * y[r, :] = (x[r, :] − mean_r) · rstd_r · gamma + beta, with mean_r and the biased variance in
 * f64 (two passes), rstd_r = 1/√(var_r + eps). Saves mean and rstd.
 * x, y: [R, H]; gamma, beta: [H]; mean, rstd: [R]
 */
export function layerNorm(ctx: OpContext, a: OpArgs['layerNorm']): void {
  const { rows: R, hiddenSize: H, eps } = a;
  if (!(eps > 0)) ctx.fail(`eps must be > 0, got ${eps}`);
  const x = ctx.floats(a.x, 'x');
  const gamma = ctx.floats(a.gamma, 'gamma');
  const beta = ctx.floats(a.beta, 'beta');
  const y = ctx.floats(a.y, 'y');
  const meanOut = ctx.floats(a.mean, 'mean');
  const rstdOut = ctx.floats(a.rstd, 'rstd');
  for (let r = 0; r < R; r++) {
    const row = r * H;
    let sum = 0;
    for (let h = 0; h < H; h++) sum += x[row + h]!;
    const mean = sum / H;
    let squares = 0;
    for (let h = 0; h < H; h++) {
      const d = x[row + h]! - mean;
      squares += d * d;
    }
    const rstd = 1 / Math.sqrt(squares / H + eps);
    for (let h = 0; h < H; h++) y[row + h] = (x[row + h]! - mean) * rstd * gamma[h]! + beta[h]!;
    meanOut[r] = mean;
    rstdOut[r] = rstd;
  }
}

/**
 * With x̂ = (x − mean)·rstd (from the saved mean and rstd) and g = dy ⊙ gamma, per row:
 *   dx = rstd · (g − mean(g) − x̂ · mean(g ⊙ x̂))      (= or += by `accumulate`)
 *   dGamma += Σ_rows dy ⊙ x̂,   dBeta += Σ_rows dy
 */
export function layerNormBackward(ctx: OpContext, a: OpArgs['layerNormBackward']): void {
  const { rows: R, hiddenSize: H } = a;
  const dy = ctx.floats(a.dy, 'dy');
  const x = ctx.floats(a.x, 'x');
  const gamma = ctx.floats(a.gamma, 'gamma');
  const meanIn = ctx.floats(a.mean, 'mean');
  const rstdIn = ctx.floats(a.rstd, 'rstd');
  const dx = ctx.floats(a.dx, 'dx');
  const dGamma = ctx.floats(a.dGamma, 'dGamma');
  const dBeta = ctx.floats(a.dBeta, 'dBeta');
  const dGammaSum = new Float64Array(H);
  const dBetaSum = new Float64Array(H);
  for (let r = 0; r < R; r++) {
    const row = r * H;
    const mean = meanIn[r]!;
    const rstd = rstdIn[r]!;
    let gSum = 0;
    let gxSum = 0;
    for (let h = 0; h < H; h++) {
      const xHat = (x[row + h]! - mean) * rstd;
      const g = dy[row + h]! * gamma[h]!;
      gSum += g;
      gxSum += g * xHat;
      dGammaSum[h] += dy[row + h]! * xHat;
      dBetaSum[h] += dy[row + h]!;
    }
    const gMean = gSum / H;
    const gxMean = gxSum / H;
    for (let h = 0; h < H; h++) {
      const xHat = (x[row + h]! - mean) * rstd;
      const grad = rstd * (dy[row + h]! * gamma[h]! - gMean - xHat * gxMean);
      dx[row + h] = a.accumulate ? dx[row + h]! + grad : grad;
    }
  }
  for (let h = 0; h < H; h++) {
    dGamma[h] = dGamma[h]! + dGammaSum[h]!;
    dBeta[h] = dBeta[h]! + dBetaSum[h]!;
  }
}
