// Multi-head attention over per-query key ranges (GLM's mask; see @blankglm/tensor batch.ts).
//
// For batch row b, head h and query i, with visible keys j ∈ [keyStart, keyEnd):
//   s_j   = scale · q_i · k_j                          (scores, f64)
//   lse   = log Σ_j exp(s_j)                           (saved, before dropout)
//   P_j   = exp(s_j − lse)                             (softmax)
//   P'_j  = P_j · keep_j / (1 − p)                     (dropout on probabilities)
//   out_i = Σ_j P'_j · v_j
// keep_j = counterUniform(seed, stream + b·heads + h, i·keys + j) ≥ p.
// Keys outside the range take no part at all (probability exactly 0), unlike the original's
// −65504 additive mask.
import { counterUniform, type DropoutAttrs, type OpArgs } from '@blankglm/tensor';
import { viewIndex, type OpContext } from './context.js';

/** Checks 0 ≤ keyStart < keyEnd ≤ keys for every query (b, i). */
function checkKeyRanges(ctx: OpContext, keyStart: Int32Array, keyEnd: Int32Array, batch: number, queries: number, keys: number): void {
  for (let b = 0; b < batch; b++) {
    for (let i = 0; i < queries; i++) {
      const s = keyStart[b * queries + i]!;
      const e = keyEnd[b * queries + i]!;
      if (s < 0) ctx.fail(`keyStart[b=${b}, i=${i}] = ${s} is negative`);
      if (e > keys) ctx.fail(`keyEnd[b=${b}, i=${i}] = ${e} is past the keys (${keys})`);
      if (e <= s) ctx.fail(`query (b=${b}, i=${i}) has an empty key range [${s}, ${e})`);
    }
  }
}

/** The factor dropout applies to probability (b, h, i, j): 0 if dropped, 1/(1−p) if kept. */
function keepFactor(dropout: DropoutAttrs, stream: number, element: number): number {
  if (dropout.p === 0) return 1;
  return counterUniform(dropout.seed, stream, element) < dropout.p ? 0 : 1 / (1 - dropout.p);
}

/** out: [B, Lq, heads·D]; lse: [B, heads, Lq]. */
export function attention(ctx: OpContext, a: OpArgs['attention']): void {
  const { batch: B, queries: Lq, keys: Lk, heads, headDim: D, scale, dropout } = a;
  const keyStart = ctx.ints(a.keyStart, 'keyStart');
  const keyEnd = ctx.ints(a.keyEnd, 'keyEnd');
  checkKeyRanges(ctx, keyStart, keyEnd, B, Lq, Lk);
  const q = ctx.floats(a.q.tensor, 'q');
  const k = ctx.floats(a.k.tensor, 'k');
  const v = ctx.floats(a.v.tensor, 'v');
  const out = ctx.floats(a.out, 'out');
  const lseOut = a.lse ? ctx.floats(a.lse, 'lse') : null;
  const W = heads * D;

  const scores = new Float64Array(Lk); // s_j of one query
  const acc = new Float64Array(D); // out_i of one head
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < heads; h++) {
      const stream = (dropout.stream + b * heads + h) >>> 0;
      for (let i = 0; i < Lq; i++) {
        const start = keyStart[b * Lq + i]!;
        const end = keyEnd[b * Lq + i]!;
        const qi = viewIndex(a.q, b, i) + h * D;

        let max = -Infinity;
        for (let j = start; j < end; j++) {
          const kj = viewIndex(a.k, b, j) + h * D;
          let dot = 0;
          for (let d = 0; d < D; d++) dot += q[qi + d]! * k[kj + d]!;
          scores[j] = scale * dot;
          if (scores[j]! > max) max = scores[j]!;
        }
        let sumExp = 0;
        for (let j = start; j < end; j++) sumExp += Math.exp(scores[j]! - max);
        const lse = max + Math.log(sumExp);

        acc.fill(0);
        for (let j = start; j < end; j++) {
          const prob = Math.exp(scores[j]! - lse) * keepFactor(dropout, stream, i * Lk + j);
          if (prob === 0) continue;
          const vj = viewIndex(a.v, b, j) + h * D;
          for (let d = 0; d < D; d++) acc[d] += prob * v[vj + d]!;
        }
        const o = (b * Lq + i) * W + h * D;
        for (let d = 0; d < D; d++) out[o + d] = acc[d]!;
        if (lseOut) lseOut[(b * heads + h) * Lq + i] = lse;
      }
    }
  }
}

/**
 * With P_j = exp(s_j − lse) recomputed from q, k and the saved lse, and c_j the dropout factor:
 *   dv_j += P_j c_j · dOut_i
 *   dP_j  = c_j · (dOut_i · v_j)
 *   ds_j  = P_j · (dP_j − Σ_l P_l dP_l)
 *   dq_i  = scale · Σ_j ds_j k_j,   dk_j += scale · ds_j q_i
 * dq, dk and dv are written (=) over their whole views; keys no query sees get zero.
 * Σ_l P_l dP_l equals dOut_i · out_i; the reference sums it directly in f64 instead of using
 * the f32 `out`, so `out` is accepted but not read.
 */
export function attentionBackward(ctx: OpContext, a: OpArgs['attentionBackward']): void {
  const { batch: B, queries: Lq, keys: Lk, heads, headDim: D, scale, dropout } = a;
  const keyStart = ctx.ints(a.keyStart, 'keyStart');
  const keyEnd = ctx.ints(a.keyEnd, 'keyEnd');
  checkKeyRanges(ctx, keyStart, keyEnd, B, Lq, Lk);
  const dOut = ctx.floats(a.dOut, 'dOut');
  const q = ctx.floats(a.q.tensor, 'q');
  const k = ctx.floats(a.k.tensor, 'k');
  const v = ctx.floats(a.v.tensor, 'v');
  const lseIn = ctx.floats(a.lse, 'lse');
  const dq = ctx.floats(a.dq.tensor, 'dq');
  const dk = ctx.floats(a.dk.tensor, 'dk');
  const dv = ctx.floats(a.dv.tensor, 'dv');
  const W = heads * D;

  const probs = new Float64Array(Lk); // P_j of one query
  const dProbs = new Float64Array(Lk); // dP_j of one query
  const dqAcc = new Float64Array(D);
  const dkAcc = new Float64Array(Lk * D); // dk of one (b, h), summed over queries
  const dvAcc = new Float64Array(Lk * D);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < heads; h++) {
      const stream = (dropout.stream + b * heads + h) >>> 0;
      dkAcc.fill(0);
      dvAcc.fill(0);
      for (let i = 0; i < Lq; i++) {
        const start = keyStart[b * Lq + i]!;
        const end = keyEnd[b * Lq + i]!;
        const qi = viewIndex(a.q, b, i) + h * D;
        const gi = (b * Lq + i) * W + h * D; // dOut_i
        const lse = lseIn[(b * heads + h) * Lq + i]!;

        let probDotDProb = 0;
        for (let j = start; j < end; j++) {
          const kj = viewIndex(a.k, b, j) + h * D;
          const vj = viewIndex(a.v, b, j) + h * D;
          let dot = 0;
          for (let d = 0; d < D; d++) dot += q[qi + d]! * k[kj + d]!;
          const prob = Math.exp(scale * dot - lse);
          const keep = keepFactor(dropout, stream, i * Lk + j);
          let gradDotV = 0;
          for (let d = 0; d < D; d++) {
            gradDotV += dOut[gi + d]! * v[vj + d]!;
            dvAcc[j * D + d] += prob * keep * dOut[gi + d]!;
          }
          probs[j] = prob;
          dProbs[j] = keep * gradDotV;
          probDotDProb += prob * dProbs[j]!;
        }

        dqAcc.fill(0);
        for (let j = start; j < end; j++) {
          const dScore = scale * probs[j]! * (dProbs[j]! - probDotDProb);
          const kj = viewIndex(a.k, b, j) + h * D;
          for (let d = 0; d < D; d++) {
            dqAcc[d] += dScore * k[kj + d]!;
            dkAcc[j * D + d] += dScore * q[qi + d]!;
          }
        }
        const dqi = viewIndex(a.dq, b, i) + h * D;
        for (let d = 0; d < D; d++) dq[dqi + d] = dqAcc[d]!;
      }
      for (let j = 0; j < Lk; j++) {
        const dkj = viewIndex(a.dk, b, j) + h * D;
        const dvj = viewIndex(a.dv, b, j) + h * D;
        for (let d = 0; d < D; d++) {
          dk[dkj + d] = dkAcc[j * D + d]!;
          dv[dvj + d] = dvAcc[j * D + d]!;
        }
      }
    }
  }
}
