// Multi-head attention over per-query key ranges [keyStart, keyEnd) (GLM's mask), flash-style:
// keys are visited in blocks of KEY_BLOCK with a running max and sum (online softmax), so no
// [L, L] matrix exists. Dropout on probabilities uses the counter hash of @blankglm/tensor with
// stream = dropout.stream + b·heads + h and element = i·keys + j, like the reference.
//
// Work items, split among threads by the host (each item's result never depends on the split):
//   forward            item = (b·heads + h)·Lq + i     one query of one head
//   backward, pass 1   item = (b·heads + h)·Lq + i     dq_i, and Δ_i = Σ_j P_ij·dP_ij saved
//   backward, pass 2   item = (b·heads + h)·Lk + j     dk_j and dv_j, summed over the queries that
//                                                      see key j in query order (deterministic)
// Views: element (b, t, c) of q/k/v/dq/dk/dv is at base + (b·batchStride + t·rowStride + c)·4;
// the host passes base = tensor address + offset·4. out and dOut are contiguous [B, Lq, heads·D].
import {
  axpy4, consecutive4, dot4, dropsAll, dropThreshold, exp1, exp4, hmax, hsum, keepFactor4, scaledCopy, scaleRow, streamHash,
} from './vector-math';

/** Keys per online-softmax block in the forward pass. */
const KEY_BLOCK: i32 = 64;

/** Bytes of per-thread scratch the three attention kernels need (the host computes the same in src/ops/attention.ts). */
export function attentionScratchBytes(keys: i32, headDim: i32): i32 {
  const d4 = (headDim + 3) & ~3;
  const k4 = (max(keys, KEY_BLOCK) + 7) & ~3;
  return (2 * k4 + 2 * d4) * 4;
}

/** Lanes [0, valid) all ones, the rest zero. */
// @ts-ignore: decorator
@inline function laneMask(valid: i32): v128 {
  return i32x4.lt_s(i32x4(0, 1, 2, 3), i32x4.splat(valid));
}

/**
 * Forward for items [itemStart, itemEnd):
 *   out_i = Σ_j P'_j v_j / l, with P_j = exp(s_j − m), s_j = scale·q_i·k_j, l = Σ_j P_j and P'_j the
 *   dropped-out P_j; lse_i = m + log l (before dropout).
 */
export function attentionForward(
  q: usize, qRow: i32, qBatch: i32,
  k: usize, kRow: i32, kBatch: i32,
  v: usize, vRow: i32, vBatch: i32,
  keyStart: usize, keyEnd: usize, out: usize, lse: usize, hasLse: bool,
  queries: i32, keys: i32, heads: i32, headDim: i32, scale: f32,
  dropP: f64, seed: u32, stream: u32,
  scratch: usize, itemStart: i32, itemEnd: i32,
): void {
  const D = <usize>headDim;
  const W = <usize>(heads * headDim);
  const useDropout = dropP > 0;
  const threshold = dropThreshold(dropP);
  const dropAll = dropsAll(dropP);
  const keepScale = <f32>(1.0 / (1.0 - dropP));
  const scaleV = f32x4.splat(scale);
  const negInf = f32x4.splat(-Infinity);
  const acc = scratch; // [D]: Σ_j P'_j v_j so far
  const scores = scratch + ((D + 3) & ~(<usize>3)) * 4; // [KEY_BLOCK]
  const kRowBytes = <usize>kRow * 4;
  const vRowBytes = <usize>vRow * 4;

  for (let item = itemStart; item < itemEnd; item++) {
    const i = item % queries;
    const bh = item / queries;
    const h = bh % heads;
    const b = bh / heads;
    const streamKey = streamHash(seed, stream + <u32>bh);
    const start = load<i32>(keyStart + <usize>(b * queries + i) * 4);
    const end = load<i32>(keyEnd + <usize>(b * queries + i) * 4);
    const qi = q + (<usize>b * <usize>qBatch + <usize>i * <usize>qRow + <usize>h * D) * 4;
    const kBase = k + (<usize>b * <usize>kBatch + <usize>h * D) * 4;
    const vBase = v + (<usize>b * <usize>vBatch + <usize>h * D) * 4;
    memory.fill(acc, 0, D * 4);
    let m: f32 = -Infinity;
    let l: f32 = 0;

    for (let j0 = start; j0 < end; j0 += KEY_BLOCK) {
      const n = min(KEY_BLOCK, end - j0);
      const last = j0 + n - 1;
      // Scores in groups of four keys; a partial last group repeats its last key, masked to −∞.
      let blockMax = negInf;
      for (let g = 0; g < n; g += 4) {
        const j = j0 + g;
        const k0 = kBase + <usize>j * kRowBytes;
        const k1 = kBase + <usize>min(j + 1, last) * kRowBytes;
        const k2 = kBase + <usize>min(j + 2, last) * kRowBytes;
        const k3 = kBase + <usize>min(j + 3, last) * kRowBytes;
        let s = f32x4.mul(dot4(qi, k0, k1, k2, k3, D), scaleV);
        if (g + 4 > n) s = v128.bitselect(s, negInf, laneMask(n - g));
        v128.store(scores + <usize>g * 4, s);
        blockMax = f32x4.max(blockMax, s);
      }
      const mNew = max(m, hmax(blockMax));
      if (mNew > m) {
        const correction = exp1(m - mNew); // 0 on the first block (m = −∞)
        l *= correction;
        scaleRow(acc, correction, D);
        m = mNew;
      }
      const mV = f32x4.splat(m);
      let sumV = f32x4.splat(0);
      for (let g = 0; g < n; g += 4) {
        const j = j0 + g;
        let prob = exp4(f32x4.sub(v128.load(scores + <usize>g * 4), mV));
        sumV = f32x4.add(sumV, prob);
        if (useDropout) prob = f32x4.mul(prob, keepFactor4(streamKey, consecutive4(<u32>(i * keys + j)), threshold, dropAll, keepScale));
        const v0 = vBase + <usize>j * vRowBytes;
        const v1 = vBase + <usize>min(j + 1, last) * vRowBytes;
        const v2 = vBase + <usize>min(j + 2, last) * vRowBytes;
        const v3 = vBase + <usize>min(j + 3, last) * vRowBytes;
        axpy4(acc, prob, v0, v1, v2, v3, D);
      }
      l += hsum(sumV);
    }
    scaledCopy(out + (<usize>(b * queries + i) * W + <usize>h * D) * 4, acc, <f32>1.0 / l, D);
    if (hasLse) store<f32>(lse + <usize>item * 4, m + <f32>Math.log(<f64>l));
  }
}

/**
 * Backward pass 1, items (b, h, i) in [itemStart, itemEnd), recomputing P_j = exp(s_j − lse_i):
 *   dP_j = c_j·(dOut_i·v_j),  Δ_i = Σ_j P_j dP_j,  dq_i = scale·Σ_j P_j (dP_j − Δ_i) k_j
 * (c_j the dropout factor). dq is written (=); Δ_i goes to delta[(b·heads + h)·Lq + i] for pass 2.
 */
export function attentionBackwardQueries(
  q: usize, qRow: i32, qBatch: i32,
  k: usize, kRow: i32, kBatch: i32,
  v: usize, vRow: i32, vBatch: i32,
  dOut: usize, lse: usize, keyStart: usize, keyEnd: usize,
  dq: usize, dqRow: i32, dqBatch: i32, delta: usize,
  queries: i32, keys: i32, heads: i32, headDim: i32, scale: f32,
  dropP: f64, seed: u32, stream: u32,
  scratch: usize, itemStart: i32, itemEnd: i32,
): void {
  const D = <usize>headDim;
  const W = <usize>(heads * headDim);
  const useDropout = dropP > 0;
  const threshold = dropThreshold(dropP);
  const dropAll = dropsAll(dropP);
  const keepScale = <f32>(1.0 / (1.0 - dropP));
  const scaleV = f32x4.splat(scale);
  const k4 = <usize>((max(keys, KEY_BLOCK) + 7) & ~3);
  const probs = scratch; // [k4]: P_j of this query, from index 0 = keyStart
  const dProbs = scratch + k4 * 4; // [k4]: dP_j
  const dqAcc = dProbs + k4 * 4; // [D]
  const kRowBytes = <usize>kRow * 4;
  const vRowBytes = <usize>vRow * 4;

  for (let item = itemStart; item < itemEnd; item++) {
    const i = item % queries;
    const bh = item / queries;
    const h = bh % heads;
    const b = bh / heads;
    const streamKey = streamHash(seed, stream + <u32>bh);
    const start = load<i32>(keyStart + <usize>(b * queries + i) * 4);
    const end = load<i32>(keyEnd + <usize>(b * queries + i) * 4);
    const n = end - start;
    const last = end - 1;
    const qi = q + (<usize>b * <usize>qBatch + <usize>i * <usize>qRow + <usize>h * D) * 4;
    const gi = dOut + (<usize>(b * queries + i) * W + <usize>h * D) * 4;
    const kBase = k + (<usize>b * <usize>kBatch + <usize>h * D) * 4;
    const vBase = v + (<usize>b * <usize>vBatch + <usize>h * D) * 4;
    const lseV = f32x4.splat(load<f32>(lse + <usize>item * 4));

    let probDotDProb = f32x4.splat(0);
    for (let g = 0; g < n; g += 4) {
      const j = start + g;
      const j1 = min(j + 1, last), j2 = min(j + 2, last), j3 = min(j + 3, last);
      let prob = exp4(f32x4.sub(f32x4.mul(dot4(qi, kBase + <usize>j * kRowBytes, kBase + <usize>j1 * kRowBytes, kBase + <usize>j2 * kRowBytes, kBase + <usize>j3 * kRowBytes, D), scaleV), lseV));
      if (g + 4 > n) prob = v128.and(prob, laneMask(n - g));
      let dProb = dot4(gi, vBase + <usize>j * vRowBytes, vBase + <usize>j1 * vRowBytes, vBase + <usize>j2 * vRowBytes, vBase + <usize>j3 * vRowBytes, D);
      if (useDropout) dProb = f32x4.mul(dProb, keepFactor4(streamKey, consecutive4(<u32>(i * keys + j)), threshold, dropAll, keepScale));
      v128.store(probs + <usize>g * 4, prob);
      v128.store(dProbs + <usize>g * 4, dProb);
      probDotDProb = f32x4.add(probDotDProb, f32x4.mul(prob, dProb));
    }
    const deltaI = hsum(probDotDProb);
    const deltaV = f32x4.splat(deltaI);

    memory.fill(dqAcc, 0, D * 4);
    for (let g = 0; g < n; g += 4) {
      const j = start + g;
      const dScore = f32x4.mul(v128.load(probs + <usize>g * 4), f32x4.sub(v128.load(dProbs + <usize>g * 4), deltaV));
      axpy4(dqAcc, dScore, kBase + <usize>j * kRowBytes, kBase + <usize>min(j + 1, last) * kRowBytes, kBase + <usize>min(j + 2, last) * kRowBytes, kBase + <usize>min(j + 3, last) * kRowBytes, D);
    }
    scaledCopy(dq + (<usize>b * <usize>dqBatch + <usize>i * <usize>dqRow + <usize>h * D) * 4, dqAcc, scale, D);
    store<f32>(delta + <usize>item * 4, deltaI);
  }
}

/**
 * Backward pass 2, items (b, h, j) in [itemStart, itemEnd), over the queries i that see key j, in
 * increasing i (four at a time):
 *   dv_j = Σ_i P_ij c_ij dOut_i,   dk_j = scale·Σ_i P_ij (dP_ij − Δ_i) q_i
 * written (=); a key no query sees gets zeros. P and dP are recomputed exactly as in pass 1.
 */
export function attentionBackwardKeys(
  q: usize, qRow: i32, qBatch: i32,
  k: usize, kRow: i32, kBatch: i32,
  v: usize, vRow: i32, vBatch: i32,
  dOut: usize, lse: usize, keyStart: usize, keyEnd: usize,
  dk: usize, dkRow: i32, dkBatch: i32,
  dv: usize, dvRow: i32, dvBatch: i32, delta: usize,
  queries: i32, keys: i32, heads: i32, headDim: i32, scale: f32,
  dropP: f64, seed: u32, stream: u32,
  scratch: usize, itemStart: i32, itemEnd: i32,
): void {
  const D = <usize>headDim;
  const W = <usize>(heads * headDim);
  const useDropout = dropP > 0;
  const threshold = dropThreshold(dropP);
  const dropAll = dropsAll(dropP);
  const keepScale = <f32>(1.0 / (1.0 - dropP));
  const scaleV = f32x4.splat(scale);
  const d4 = (D + 3) & ~(<usize>3);
  const dkAcc = scratch; // [D]
  const dvAcc = scratch + d4 * 4; // [D]

  for (let item = itemStart; item < itemEnd; item++) {
    const j = item % keys;
    const bh = item / keys;
    const h = bh % heads;
    const b = bh / heads;
    const streamKey = streamHash(seed, stream + <u32>bh);
    const kj = k + (<usize>b * <usize>kBatch + <usize>j * <usize>kRow + <usize>h * D) * 4;
    const vj = v + (<usize>b * <usize>vBatch + <usize>j * <usize>vRow + <usize>h * D) * 4;
    const qBase = q + (<usize>b * <usize>qBatch + <usize>h * D) * 4;
    const gBase = dOut + (<usize>(b * queries) * W + <usize>h * D) * 4;
    const rangeBase = <usize>(b * queries) * 4;
    const lseBase = lse + <usize>(bh * queries) * 4;
    const deltaBase = delta + <usize>(bh * queries) * 4;
    memory.fill(dkAcc, 0, D * 4);
    memory.fill(dvAcc, 0, D * 4);

    // Queries seeing key j, gathered four at a time (a partial group repeats its last query, masked).
    let i0 = 0, i1 = 0, i2 = 0, i3 = 0;
    let count = 0;
    for (let i = 0; i <= queries; i++) {
      if (i < queries) {
        const s = load<i32>(keyStart + rangeBase + <usize>i * 4);
        const e = load<i32>(keyEnd + rangeBase + <usize>i * 4);
        if (j < s || j >= e) continue;
        if (count == 0) i0 = i; else if (count == 1) i1 = i; else if (count == 2) i2 = i; else i3 = i;
        count++;
        if (count < 4) continue;
      } else {
        if (count == 0) break;
        if (count < 2) i1 = i0;
        if (count < 3) i2 = i1;
        i3 = i2;
      }
      const q0 = qBase + (<usize>i0 * <usize>qRow) * 4, q1 = qBase + (<usize>i1 * <usize>qRow) * 4;
      const q2 = qBase + (<usize>i2 * <usize>qRow) * 4, q3 = qBase + (<usize>i3 * <usize>qRow) * 4;
      const g0 = gBase + <usize>i0 * W * 4, g1 = gBase + <usize>i1 * W * 4;
      const g2 = gBase + <usize>i2 * W * 4, g3 = gBase + <usize>i3 * W * 4;
      const lse4 = f32x4(load<f32>(lseBase + <usize>i0 * 4), load<f32>(lseBase + <usize>i1 * 4), load<f32>(lseBase + <usize>i2 * 4), load<f32>(lseBase + <usize>i3 * 4));
      const delta4 = f32x4(load<f32>(deltaBase + <usize>i0 * 4), load<f32>(deltaBase + <usize>i1 * 4), load<f32>(deltaBase + <usize>i2 * 4), load<f32>(deltaBase + <usize>i3 * 4));
      let prob = exp4(f32x4.sub(f32x4.mul(dot4(kj, q0, q1, q2, q3, D), scaleV), lse4));
      if (count < 4) prob = v128.and(prob, laneMask(count));
      let dProb = dot4(vj, g0, g1, g2, g3, D);
      let keptProb = prob;
      if (useDropout) {
        const element = i32x4.add(i32x4.mul(i32x4(i0, i1, i2, i3), i32x4.splat(keys)), i32x4.splat(j));
        const factor = keepFactor4(streamKey, element, threshold, dropAll, keepScale);
        dProb = f32x4.mul(dProb, factor);
        keptProb = f32x4.mul(prob, factor);
      }
      const dScore = f32x4.mul(prob, f32x4.sub(dProb, delta4));
      axpy4(dvAcc, keptProb, g0, g1, g2, g3, D);
      axpy4(dkAcc, dScore, q0, q1, q2, q3, D);
      count = 0;
    }
    scaledCopy(dk + (<usize>b * <usize>dkBatch + <usize>j * <usize>dkRow + <usize>h * D) * 4, dkAcc, scale, D);
    scaledCopy(dv + (<usize>b * <usize>dvBatch + <usize>j * <usize>dvRow + <usize>h * D) * 4, dvAcc, 1, D);
  }
}
