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
  axpy2x4, axpy4, consecutive4, dot2x4, dot4, dropsAll, dropThreshold, exp1, exp4, hmax, hsum, keepFactor4, scaledCopy, scaleRow, streamHash,
} from './vector-math';

/** Keys per online-softmax block in the forward pass. */
const KEY_BLOCK: i32 = 64;

/** Bytes of per-thread scratch the three attention kernels need (the host computes the same in src/ops/attention.ts). */
export function attentionScratchBytes(keys: i32, headDim: i32): i32 {
  const d4 = (headDim + 3) & ~3;
  const k4 = (max(keys, KEY_BLOCK) + 7) & ~3;
  return (4 * k4 + 4 * d4 + 16) * 4;
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
 * Neighbouring queries i, i+1 of one head with the same keyStart run as a pair sharing every k and
 * v load. Blocks and groups of keys start at keyStart for both, and the lanes past a query's own
 * keyEnd get a −∞ score (probability exactly 0), so each query's result has the same bits paired
 * or alone — and so for any split of the items among threads.
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
  const d4 = (D + 3) & ~(<usize>3);
  const W = <usize>(heads * headDim);
  const useDropout = dropP > 0;
  const threshold = dropThreshold(dropP);
  const dropAll = dropsAll(dropP);
  const keepScale = <f32>(1.0 / (1.0 - dropP));
  const scaleV = f32x4.splat(scale);
  const negInf = f32x4.splat(-Infinity);
  const accA = scratch; // [D]: Σ_j P'_j v_j so far, query A
  const accB = accA + d4 * 4; // [D]: the same for query B
  const scoresA = accB + d4 * 4; // [KEY_BLOCK]
  const scoresB = scoresA + <usize>KEY_BLOCK * 4; // [KEY_BLOCK]
  const kRowBytes = <usize>kRow * 4;
  const vRowBytes = <usize>vRow * 4;

  let item = itemStart;
  while (item < itemEnd) {
    const iA = item % queries;
    const bh = item / queries;
    const h = bh % heads;
    const b = bh / heads;
    const streamKey = streamHash(seed, stream + <u32>bh);
    const start = load<i32>(keyStart + <usize>(b * queries + iA) * 4);
    const endA = load<i32>(keyEnd + <usize>(b * queries + iA) * 4);
    // Pair with the next query when it is this thread's, of the same head, and starts alike;
    // otherwise B repeats A and its results are dropped.
    const paired = item + 1 < itemEnd && iA + 1 < queries && load<i32>(keyStart + <usize>(b * queries + iA + 1) * 4) == start;
    const iB = paired ? iA + 1 : iA;
    const endB = paired ? load<i32>(keyEnd + <usize>(b * queries + iB) * 4) : endA;
    const end = max(endA, endB);
    const qA = q + (<usize>b * <usize>qBatch + <usize>iA * <usize>qRow + <usize>h * D) * 4;
    const qB = q + (<usize>b * <usize>qBatch + <usize>iB * <usize>qRow + <usize>h * D) * 4;
    const kBase = k + (<usize>b * <usize>kBatch + <usize>h * D) * 4;
    const vBase = v + (<usize>b * <usize>vBatch + <usize>h * D) * 4;
    memory.fill(accA, 0, 2 * d4 * 4);
    let mA: f32 = -Infinity, lA: f32 = 0;
    let mB: f32 = -Infinity, lB: f32 = 0;

    for (let j0 = start; j0 < end; j0 += KEY_BLOCK) {
      const n = min(KEY_BLOCK, end - j0);
      const last = j0 + n - 1;
      // A key lane j counts for a query when j < min(its keyEnd, this block's end).
      const limitA = min(endA, j0 + n), limitB = min(endB, j0 + n);
      let blockMaxA = negInf, blockMaxB = negInf;
      for (let g = 0; g < n; g += 4) {
        const j = j0 + g;
        dot2x4(qA, qB, kBase + <usize>j * kRowBytes, kBase + <usize>min(j + 1, last) * kRowBytes, kBase + <usize>min(j + 2, last) * kRowBytes, kBase + <usize>min(j + 3, last) * kRowBytes, D, scoresA + <usize>g * 4, scoresB + <usize>g * 4);
        let sA = f32x4.mul(v128.load(scoresA + <usize>g * 4), scaleV);
        let sB = f32x4.mul(v128.load(scoresB + <usize>g * 4), scaleV);
        if (j + 4 > limitA) sA = v128.bitselect(sA, negInf, laneMask(limitA - j));
        if (j + 4 > limitB) sB = v128.bitselect(sB, negInf, laneMask(limitB - j));
        v128.store(scoresA + <usize>g * 4, sA);
        v128.store(scoresB + <usize>g * 4, sB);
        blockMaxA = f32x4.max(blockMaxA, sA);
        blockMaxB = f32x4.max(blockMaxB, sB);
      }
      const mNewA = max(mA, hmax(blockMaxA));
      if (mNewA > mA) {
        const correction = exp1(mA - mNewA); // 0 on the first block (m = −∞)
        lA *= correction;
        scaleRow(accA, correction, D);
        mA = mNewA;
      }
      const mNewB = max(mB, hmax(blockMaxB));
      if (mNewB > mB) {
        const correction = exp1(mB - mNewB);
        lB *= correction;
        scaleRow(accB, correction, D);
        mB = mNewB;
      }
      const mAV = f32x4.splat(mA), mBV = f32x4.splat(mB);
      let sumA = f32x4.splat(0), sumB = f32x4.splat(0);
      for (let g = 0; g < n; g += 4) {
        const j = j0 + g;
        let probA = exp4(f32x4.sub(v128.load(scoresA + <usize>g * 4), mAV));
        let probB = exp4(f32x4.sub(v128.load(scoresB + <usize>g * 4), mBV));
        sumA = f32x4.add(sumA, probA);
        sumB = f32x4.add(sumB, probB);
        if (useDropout) {
          probA = f32x4.mul(probA, keepFactor4(streamKey, consecutive4(<u32>(iA * keys + j)), threshold, dropAll, keepScale));
          probB = f32x4.mul(probB, keepFactor4(streamKey, consecutive4(<u32>(iB * keys + j)), threshold, dropAll, keepScale));
        }
        const v0 = vBase + <usize>j * vRowBytes;
        const v1 = vBase + <usize>min(j + 1, last) * vRowBytes;
        const v2 = vBase + <usize>min(j + 2, last) * vRowBytes;
        const v3 = vBase + <usize>min(j + 3, last) * vRowBytes;
        axpy2x4(accA, probA, accB, probB, v0, v1, v2, v3, D);
      }
      lA += hsum(sumA);
      lB += hsum(sumB);
    }
    scaledCopy(out + (<usize>(b * queries + iA) * W + <usize>h * D) * 4, accA, <f32>1.0 / lA, D);
    if (hasLse) store<f32>(lse + <usize>item * 4, mA + <f32>Math.log(<f64>lA));
    if (paired) {
      scaledCopy(out + (<usize>(b * queries + iB) * W + <usize>h * D) * 4, accB, <f32>1.0 / lB, D);
      if (hasLse) store<f32>(lse + <usize>(item + 1) * 4, mB + <f32>Math.log(<f64>lB));
    }
    item += paired ? 2 : 1;
  }
}

/**
 * Backward pass 1, items (b, h, i) in [itemStart, itemEnd), recomputing P_j = exp(s_j − lse_i):
 *   dP_j = c_j·(dOut_i·v_j),  Δ_i = Σ_j P_j dP_j,  dq_i = scale·Σ_j P_j (dP_j − Δ_i) k_j
 * (c_j the dropout factor). dq is written (=); Δ_i goes to delta[(b·heads + h)·Lq + i] for pass 2.
 * Queries run in pairs as in the forward pass (lanes past a query's keyEnd get P = 0, which adds
 * exact zeros), so the bits do not depend on the pairing.
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
  const d4 = (D + 3) & ~(<usize>3);
  const W = <usize>(heads * headDim);
  const useDropout = dropP > 0;
  const threshold = dropThreshold(dropP);
  const dropAll = dropsAll(dropP);
  const keepScale = <f32>(1.0 / (1.0 - dropP));
  const scaleV = f32x4.splat(scale);
  const k4 = <usize>((max(keys, KEY_BLOCK) + 7) & ~3);
  const probsA = scratch; // [k4]: P_j of query A, from index 0 = keyStart
  const dProbsA = probsA + k4 * 4; // [k4]: dP_j of query A
  const probsB = dProbsA + k4 * 4; // [k4]
  const dProbsB = probsB + k4 * 4; // [k4]
  const dqA = dProbsB + k4 * 4; // [D]
  const dqB = dqA + d4 * 4; // [D]
  const kRowBytes = <usize>kRow * 4;
  const vRowBytes = <usize>vRow * 4;

  let item = itemStart;
  while (item < itemEnd) {
    const iA = item % queries;
    const bh = item / queries;
    const h = bh % heads;
    const b = bh / heads;
    const streamKey = streamHash(seed, stream + <u32>bh);
    const start = load<i32>(keyStart + <usize>(b * queries + iA) * 4);
    const endA = load<i32>(keyEnd + <usize>(b * queries + iA) * 4);
    const paired = item + 1 < itemEnd && iA + 1 < queries && load<i32>(keyStart + <usize>(b * queries + iA + 1) * 4) == start;
    const iB = paired ? iA + 1 : iA;
    const endB = paired ? load<i32>(keyEnd + <usize>(b * queries + iB) * 4) : endA;
    const n = max(endA, endB) - start;
    const last = start + n - 1;
    const qA = q + (<usize>b * <usize>qBatch + <usize>iA * <usize>qRow + <usize>h * D) * 4;
    const qB = q + (<usize>b * <usize>qBatch + <usize>iB * <usize>qRow + <usize>h * D) * 4;
    const gA = dOut + (<usize>(b * queries + iA) * W + <usize>h * D) * 4;
    const gB = dOut + (<usize>(b * queries + iB) * W + <usize>h * D) * 4;
    const kBase = k + (<usize>b * <usize>kBatch + <usize>h * D) * 4;
    const vBase = v + (<usize>b * <usize>vBatch + <usize>h * D) * 4;
    const lseA = f32x4.splat(load<f32>(lse + <usize>item * 4));
    const lseB = f32x4.splat(load<f32>(lse + <usize>(paired ? item + 1 : item) * 4));

    let sumA = f32x4.splat(0), sumB = f32x4.splat(0);
    for (let g = 0; g < n; g += 4) {
      const j = start + g;
      const k0 = kBase + <usize>j * kRowBytes, k1 = kBase + <usize>min(j + 1, last) * kRowBytes;
      const k2 = kBase + <usize>min(j + 2, last) * kRowBytes, k3 = kBase + <usize>min(j + 3, last) * kRowBytes;
      const v0 = vBase + <usize>j * vRowBytes, v1 = vBase + <usize>min(j + 1, last) * vRowBytes;
      const v2 = vBase + <usize>min(j + 2, last) * vRowBytes, v3 = vBase + <usize>min(j + 3, last) * vRowBytes;
      const o = <usize>g * 4;
      dot2x4(qA, qB, k0, k1, k2, k3, D, probsA + o, probsB + o);
      dot2x4(gA, gB, v0, v1, v2, v3, D, dProbsA + o, dProbsB + o);
      let probA = exp4(f32x4.sub(f32x4.mul(v128.load(probsA + o), scaleV), lseA));
      let probB = exp4(f32x4.sub(f32x4.mul(v128.load(probsB + o), scaleV), lseB));
      if (j + 4 > endA) probA = v128.and(probA, laneMask(endA - j));
      if (j + 4 > endB) probB = v128.and(probB, laneMask(endB - j));
      let dProbA = v128.load(dProbsA + o);
      let dProbB = v128.load(dProbsB + o);
      if (useDropout) {
        dProbA = f32x4.mul(dProbA, keepFactor4(streamKey, consecutive4(<u32>(iA * keys + j)), threshold, dropAll, keepScale));
        dProbB = f32x4.mul(dProbB, keepFactor4(streamKey, consecutive4(<u32>(iB * keys + j)), threshold, dropAll, keepScale));
      }
      v128.store(probsA + o, probA);
      v128.store(probsB + o, probB);
      v128.store(dProbsA + o, dProbA);
      v128.store(dProbsB + o, dProbB);
      sumA = f32x4.add(sumA, f32x4.mul(probA, dProbA));
      sumB = f32x4.add(sumB, f32x4.mul(probB, dProbB));
    }
    const deltaA = hsum(sumA), deltaB = hsum(sumB);
    const deltaAV = f32x4.splat(deltaA), deltaBV = f32x4.splat(deltaB);

    memory.fill(dqA, 0, 2 * d4 * 4);
    for (let g = 0; g < n; g += 4) {
      const j = start + g;
      const o = <usize>g * 4;
      const dScoreA = f32x4.mul(v128.load(probsA + o), f32x4.sub(v128.load(dProbsA + o), deltaAV));
      const dScoreB = f32x4.mul(v128.load(probsB + o), f32x4.sub(v128.load(dProbsB + o), deltaBV));
      axpy2x4(dqA, dScoreA, dqB, dScoreB, kBase + <usize>j * kRowBytes, kBase + <usize>min(j + 1, last) * kRowBytes, kBase + <usize>min(j + 2, last) * kRowBytes, kBase + <usize>min(j + 3, last) * kRowBytes, D);
    }
    scaledCopy(dq + (<usize>b * <usize>dqBatch + <usize>iA * <usize>dqRow + <usize>h * D) * 4, dqA, scale, D);
    store<f32>(delta + <usize>item * 4, deltaA);
    if (paired) {
      scaledCopy(dq + (<usize>b * <usize>dqBatch + <usize>iB * <usize>dqRow + <usize>h * D) * 4, dqB, scale, D);
      store<f32>(delta + <usize>(item + 1) * 4, deltaB);
    }
    item += paired ? 2 : 1;
  }
}

/**
 * Backward pass 2, items (b, h, j) in [itemStart, itemEnd), over the queries i that see key j, in
 * increasing i (four at a time):
 *   dv_j = Σ_i P_ij c_ij dOut_i,   dk_j = scale·Σ_i P_ij (dP_ij − Δ_i) q_i
 * written (=); a key no query sees gets zeros. P and dP are recomputed exactly as in pass 1.
 * Neighbouring keys j, j+1 run as a pair over the queries that see either; a query that does not
 * see one of them adds exact zeros to that key's sums, so the bits do not depend on the pairing.
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
  const dkA = scratch; // [D]
  const dvA = dkA + d4 * 4; // [D]
  const dkB = dvA + d4 * 4; // [D]
  const dvB = dkB + d4 * 4; // [D]
  const tile = dvB + d4 * 4; // 4 × v128: scores and dP of the current group, keys A and B
  const laneBits = i32x4(1, 2, 4, 8);

  let item = itemStart;
  while (item < itemEnd) {
    const jA = item % keys;
    const bh = item / keys;
    const h = bh % heads;
    const b = bh / heads;
    const paired = item + 1 < itemEnd && jA + 1 < keys;
    const jB = paired ? jA + 1 : jA;
    const streamKey = streamHash(seed, stream + <u32>bh);
    const kA = k + (<usize>b * <usize>kBatch + <usize>jA * <usize>kRow + <usize>h * D) * 4;
    const kB = k + (<usize>b * <usize>kBatch + <usize>jB * <usize>kRow + <usize>h * D) * 4;
    const vA = v + (<usize>b * <usize>vBatch + <usize>jA * <usize>vRow + <usize>h * D) * 4;
    const vB = v + (<usize>b * <usize>vBatch + <usize>jB * <usize>vRow + <usize>h * D) * 4;
    const qBase = q + (<usize>b * <usize>qBatch + <usize>h * D) * 4;
    const gBase = dOut + (<usize>(b * queries) * W + <usize>h * D) * 4;
    const rangeBase = <usize>(b * queries) * 4;
    const lseBase = lse + <usize>(bh * queries) * 4;
    const deltaBase = delta + <usize>(bh * queries) * 4;
    memory.fill(dkA, 0, 4 * d4 * 4);

    // Queries seeing key A or B, gathered four at a time (a partial group repeats its last query);
    // seesA / seesB hold one bit per lane.
    let i0 = 0, i1 = 0, i2 = 0, i3 = 0;
    let count = 0;
    let seesA = 0, seesB = 0;
    for (let i = 0; i <= queries; i++) {
      if (i < queries) {
        const s = load<i32>(keyStart + rangeBase + <usize>i * 4);
        const e = load<i32>(keyEnd + rangeBase + <usize>i * 4);
        const a = jA >= s && jA < e;
        const c = paired && jB >= s && jB < e;
        if (!a && !c) continue;
        if (count == 0) i0 = i; else if (count == 1) i1 = i; else if (count == 2) i2 = i; else i3 = i;
        seesA |= <i32>a << count;
        seesB |= <i32>c << count;
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
      dot2x4(kA, kB, q0, q1, q2, q3, D, tile, tile + 16);
      dot2x4(vA, vB, g0, g1, g2, g3, D, tile + 32, tile + 48);
      const maskA = i32x4.ne(v128.and(i32x4.splat(seesA), laneBits), i32x4.splat(0));
      const maskB = i32x4.ne(v128.and(i32x4.splat(seesB), laneBits), i32x4.splat(0));
      const probA = v128.and(exp4(f32x4.sub(f32x4.mul(v128.load(tile), scaleV), lse4)), maskA);
      const probB = v128.and(exp4(f32x4.sub(f32x4.mul(v128.load(tile, 16), scaleV), lse4)), maskB);
      let dProbA = v128.load(tile, 32);
      let dProbB = v128.load(tile, 48);
      let keptA = probA, keptB = probB;
      if (useDropout) {
        const rows = i32x4.mul(i32x4(i0, i1, i2, i3), i32x4.splat(keys));
        const factorA = keepFactor4(streamKey, i32x4.add(rows, i32x4.splat(jA)), threshold, dropAll, keepScale);
        const factorB = keepFactor4(streamKey, i32x4.add(rows, i32x4.splat(jB)), threshold, dropAll, keepScale);
        dProbA = f32x4.mul(dProbA, factorA);
        dProbB = f32x4.mul(dProbB, factorB);
        keptA = f32x4.mul(probA, factorA);
        keptB = f32x4.mul(probB, factorB);
      }
      const dScoreA = f32x4.mul(probA, f32x4.sub(dProbA, delta4));
      const dScoreB = f32x4.mul(probB, f32x4.sub(dProbB, delta4));
      axpy2x4(dvA, keptA, dvB, keptB, g0, g1, g2, g3, D);
      axpy2x4(dkA, dScoreA, dkB, dScoreB, q0, q1, q2, q3, D);
      count = 0;
      seesA = 0;
      seesB = 0;
    }
    scaledCopy(dk + (<usize>b * <usize>dkBatch + <usize>jA * <usize>dkRow + <usize>h * D) * 4, dkA, scale, D);
    scaledCopy(dv + (<usize>b * <usize>dvBatch + <usize>jA * <usize>dvRow + <usize>h * D) * 4, dvA, 1, D);
    if (paired) {
      scaledCopy(dk + (<usize>b * <usize>dkBatch + <usize>jB * <usize>dkRow + <usize>h * D) * 4, dkB, scale, D);
      scaledCopy(dv + (<usize>b * <usize>dvBatch + <usize>jB * <usize>dvRow + <usize>h * D) * 4, dvB, 1, D);
    }
    item += paired ? 2 : 1;
  }
}
