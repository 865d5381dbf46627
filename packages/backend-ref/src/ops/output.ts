// The tied output projection (logits = hidden · wordEmbᵀ) and the cross-entropy loss on it.
//
// Per token t with logits z_v = hidden[t] · wordEmb[v] and lse = log Σ_v exp(z_v):
//   loss_t = (1 − ε)·(lse − z_target) + ε·(lse − mean_v z_v)
// i.e. cross-entropy against the label-smoothed distribution (1 − ε)·onehot + ε/V, as PyTorch's
// `label_smoothing`. Its gradient: ∂loss_t/∂z_v = softmax_v − (1 − ε)·[v = target] − ε/V.
import type { OpArgs } from '@blankglm/tensor';
import { checkIds, type OpContext } from './context.js';

/** out[t, v] = Σ_h hidden[t, h]·wordEmb[v, h].  hidden: [T, H]; wordEmb: [V, H]; out: [T, V] */
export function logits(ctx: OpContext, a: OpArgs['logits']): void {
  const { tokens: T, hiddenSize: H, vocab: V } = a;
  const hidden = ctx.floats(a.hidden, 'hidden');
  const wordEmb = ctx.floats(a.wordEmb, 'wordEmb');
  const out = ctx.floats(a.out, 'out');
  for (let t = 0; t < T; t++) {
    for (let v = 0; v < V; v++) out[t * V + v] = dot(hidden, t * H, wordEmb, v * H, H);
  }
}

/** losses[t] and lse[t] as above, one row of logits (f64) at a time.  losses, lse: [T] */
export function crossEntropy(ctx: OpContext, a: OpArgs['crossEntropy']): void {
  const { tokens: T, hiddenSize: H, vocab: V, labelSmoothing: eps } = a;
  const targets = ctx.ints(a.targets, 'targets');
  checkIds(ctx, targets, T, 'targets', V, 'the vocabulary');
  const hidden = ctx.floats(a.hidden, 'hidden');
  const wordEmb = ctx.floats(a.wordEmb, 'wordEmb');
  const losses = ctx.floats(a.losses, 'losses');
  const lseOut = ctx.floats(a.lse, 'lse');
  const z = new Float64Array(V); // logits of one token
  for (let t = 0; t < T; t++) {
    let max = -Infinity;
    let sum = 0;
    for (let v = 0; v < V; v++) {
      z[v] = dot(hidden, t * H, wordEmb, v * H, H);
      if (z[v]! > max) max = z[v]!;
      sum += z[v]!;
    }
    let sumExp = 0;
    for (let v = 0; v < V; v++) sumExp += Math.exp(z[v]! - max);
    const lse = max + Math.log(sumExp);
    losses[t] = (1 - eps) * (lse - z[targets[t]!]!) + eps * (lse - sum / V);
    lseOut[t] = lse;
  }
}

/** How many vocabulary rows crossEntropyBackward handles at once (bounds its f64 scratch). */
const VOCAB_CHUNK = 512;

/**
 * For L = Σ_t weights[t]·loss_t, with dz[t, v] = weights[t]·(exp(z_v − lse_t) − (1 − ε)[v = target_t] − ε/V):
 *   dHidden[t, :] = Σ_v dz[t, v]·wordEmb[v, :]            (=)
 *   dWordEmb[v, :] += Σ_t dz[t, v]·hidden[t, :]
 * The vocabulary is walked in chunks so no [T, V] array is ever materialised.
 */
export function crossEntropyBackward(ctx: OpContext, a: OpArgs['crossEntropyBackward']): void {
  const { tokens: T, hiddenSize: H, vocab: V, labelSmoothing: eps } = a;
  const targets = ctx.ints(a.targets, 'targets');
  checkIds(ctx, targets, T, 'targets', V, 'the vocabulary');
  const hidden = ctx.floats(a.hidden, 'hidden');
  const wordEmb = ctx.floats(a.wordEmb, 'wordEmb');
  const lse = ctx.floats(a.lse, 'lse');
  const weights = ctx.floats(a.weights, 'weights');
  const dHidden = ctx.floats(a.dHidden, 'dHidden');
  const dWordEmb = ctx.floats(a.dWordEmb, 'dWordEmb');

  const dHiddenAcc = new Float64Array(T * H);
  const dz = new Float64Array(T * VOCAB_CHUNK); // dz[t, v − v0] of one chunk
  const rowAcc = new Float64Array(H);
  for (let v0 = 0; v0 < V; v0 += VOCAB_CHUNK) {
    const v1 = Math.min(V, v0 + VOCAB_CHUNK);
    const width = v1 - v0;
    for (let t = 0; t < T; t++) {
      const w = weights[t]!;
      for (let v = v0; v < v1; v++) {
        if (w === 0) {
          dz[t * width + (v - v0)] = 0;
          continue;
        }
        const prob = Math.exp(dot(hidden, t * H, wordEmb, v * H, H) - lse[t]!);
        const target = v === targets[t] ? 1 - eps : 0;
        dz[t * width + (v - v0)] = w * (prob - target - eps / V);
      }
    }
    for (let v = v0; v < v1; v++) {
      rowAcc.fill(0);
      for (let t = 0; t < T; t++) {
        const g = dz[t * width + (v - v0)]!;
        if (g === 0) continue;
        for (let h = 0; h < H; h++) {
          rowAcc[h] += g * hidden[t * H + h]!;
          dHiddenAcc[t * H + h] += g * wordEmb[v * H + h]!;
        }
      }
      for (let h = 0; h < H; h++) dWordEmb[v * H + h] = dWordEmb[v * H + h]! + rowAcc[h]!;
    }
  }
  for (let e = 0; e < T * H; e++) dHidden[e] = dHiddenAcc[e]!;
}

/** Σ_h a[ai + h]·b[bi + h] in f64. */
function dot(a: Float32Array, ai: number, b: Float32Array, bi: number, n: number): number {
  let sum = 0;
  for (let h = 0; h < n; h++) sum += a[ai + h]! * b[bi + h]!;
  return sum;
}
