// From full logits to what GlmModel.forward returns (per-target log-probabilities, the
// token-averaged loss, chosen logits rows), so any engine that yields logits prints the same
// results as the native forward.
import type { ForwardResult, RowPosition, TargetScores } from '@blankglm/model-spec';
import type { GlmBatch } from '@blankglm/tensor';

/** log Σ exp over one row, in float64. */
function logSumExp(row: Float32Array): number {
  let max = -Infinity;
  for (let i = 0; i < row.length; i++) if (row[i]! > max) max = row[i]!;
  let sum = 0;
  for (let i = 0; i < row.length; i++) sum += Math.exp(row[i]! - max);
  return max + Math.log(sum);
}

/**
 * Scores `batch` from logits [B, L, vocab]: log p(target) at lossMask = 1 positions (row-major),
 * loss = mean cross-entropy over them, and full rows at `logitsAt`.
 */
export function scoreFromLogits(logits: Float32Array, vocabSize: number, batch: GlmBatch, logitsAt: readonly RowPosition[] = []): ForwardResult {
  const B = batch.batchSize;
  const L = batch.seqLength;
  if (logits.length !== B * L * vocabSize) throw new RangeError(`scoreFromLogits: ${logits.length} logits, expected B·L·vocab = ${B}·${L}·${vocabSize}`);
  const flat: number[] = [];
  if (batch.lossMask) for (let o = 0; o < B * L; o++) if (batch.lossMask[o] === 1) flat.push(o);
  const n = flat.length;
  const targets: TargetScores = {
    row: Int32Array.from(flat, (o) => Math.floor(o / L)),
    position: Int32Array.from(flat, (o) => o % L),
    tokenId: Int32Array.from(flat, (o) => batch.targetIds![o]!),
    loss: new Float32Array(n),
    logProb: new Float32Array(n),
  };
  let sum = 0;
  flat.forEach((o, k) => {
    const row = logits.subarray(o * vocabSize, (o + 1) * vocabSize);
    const lp = row[targets.tokenId[k]!]! - logSumExp(row);
    targets.logProb[k] = lp;
    targets.loss[k] = -lp;
    sum += -lp;
  });
  let rows: ForwardResult['logits'] = null;
  if (logitsAt.length) {
    const values = new Float32Array(logitsAt.length * vocabSize);
    logitsAt.forEach((p, k) => {
      if (p.row < 0 || p.row >= B || p.position < 0 || p.position >= L) throw new RangeError(`logitsAt[${k}] = (${p.row}, ${p.position}) is outside the batch [${B}, ${L}]`);
      const o = p.row * L + p.position;
      values.set(logits.subarray(o * vocabSize, (o + 1) * vocabSize), k * vocabSize);
    });
    rows = { at: logitsAt.map((p) => ({ row: p.row, position: p.position })), vocabSize, values };
  }
  return { loss: n > 0 ? sum / n : null, numTargets: n, targets, logits: rows };
}
