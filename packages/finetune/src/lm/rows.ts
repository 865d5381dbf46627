// One model input row of the generation-style kinds (seq2seq, infilling, zero-shot LM, multiple
// choice), as plain arrays, and the batch of several such rows. A row is Part A (bidirectional,
// block position 0) followed by Part B (causal, block positions 1..k per span), with targets and a
// loss mask on Part B (glm-reference §1.6, §4.1).
import type { GlmBatch } from '@blankglm/tensor';

export interface GlmRow {
  inputIds: number[];
  positionIds: number[];
  blockPositionIds: number[];
  /** The token output i is trained to predict (no shift); Part A: its own token, loss 0. */
  targetIds: number[];
  lossMask: number[];
  /** Part A length. */
  sep: number;
}

/** Part A alone: positions 0..n-1, block 0, targets = tokens, no loss. */
export function partA(ids: readonly number[]): GlmRow {
  return {
    inputIds: [...ids],
    positionIds: ids.map((_, i) => i),
    blockPositionIds: ids.map(() => 0),
    targetIds: [...ids],
    lossMask: ids.map(() => 0),
    sep: ids.length,
  };
}

/**
 * Appends one Part-B span to `row`: inputs `[sop] + span[:-1]`, targets `span`, every token at
 * `position` (its mask's place), block positions 1..|span|. `lossFrom` (default 0) drops the loss
 * on the span's first tokens (the unidirectional LM protocols predict only a suffix).
 */
export function appendSpan(row: GlmRow, sopId: number, position: number, span: readonly number[], lossFrom = 0): void {
  for (let k = 0; k < span.length; k++) {
    row.inputIds.push(k === 0 ? sopId : span[k - 1]!);
    row.positionIds.push(position);
    row.blockPositionIds.push(k + 1);
    row.targetIds.push(span[k]!);
    row.lossMask.push(k >= lossFrom ? 1 : 0);
  }
}

/**
 * Rows padded to the longest (token `padId`, target 0, loss 0, positions (0, 0), segment −1, so
 * padding attends to nothing real and nothing real attends to it).
 */
export function rowsToBatch(rows: readonly GlmRow[], padId = 0): GlmBatch {
  if (rows.length === 0) throw new RangeError('rowsToBatch: no rows');
  const B = rows.length;
  const L = Math.max(...rows.map((r) => r.inputIds.length));
  const inputIds = new Int32Array(B * L).fill(padId);
  const positionIds = new Int32Array(B * L);
  const blockPositionIds = new Int32Array(B * L);
  const targetIds = new Int32Array(B * L);
  const lossMask = new Uint8Array(B * L);
  const segmentIds = new Int32Array(B * L).fill(-1);
  const sep = new Int32Array(B);
  rows.forEach((r, b) => {
    const o = b * L;
    inputIds.set(r.inputIds, o);
    positionIds.set(r.positionIds, o);
    blockPositionIds.set(r.blockPositionIds, o);
    targetIds.set(r.targetIds, o);
    lossMask.set(r.lossMask, o);
    segmentIds.fill(0, o, o + r.inputIds.length);
    sep[b] = r.sep;
  });
  return { batchSize: B, seqLength: L, numSegments: 1, sep, segmentIds, inputIds, positionIds, blockPositionIds, targetIds, lossMask };
}

/** Loss-bearing tokens of a row. */
export function rowTargets(row: GlmRow): number {
  let n = 0;
  for (const m of row.lossMask) n += m;
  return n;
}
