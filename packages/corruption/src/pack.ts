// From samples to model input rows (GlmBatch of @blankglm/tensor): packing several samples into
// one fixed-length row as isolated segments, or plain padding with one sample per row; and the
// original's non-isolated packing, which concatenates documents into one window BEFORE corruption.
//
//   packed row:  [ seg 0: A A A A B B B | seg 1: A A B B | pad pad ]
//   segmentIds:    0 0 0 0 0 0 0         1 1 1 1           -1  -1
//   sep:           4 (absolute)          9 (absolute)
//   positions restart at 0 in every segment; a token sees only its own segment (glmKeyRanges).
import type { GlmBatch } from '@blankglm/tensor';
import type { GlmSample } from './layout.js';

/** A packed batch, plus where each input sample went. */
export interface PackedBatch extends GlmBatch {
  segmentIds: Int32Array;
  targetIds: Int32Array;
  lossMask: Uint8Array;
  /** [n] row of sample i. */
  sampleRow: Int32Array;
  /** [n] index in its row where sample i starts. */
  sampleOffset: Int32Array;
}

function checkSamples(samples: GlmSample[], where: string): void {
  if (!Array.isArray(samples) || samples.length === 0) throw new RangeError(`${where}: expected a non-empty array of samples`);
}

function writeRows(samples: GlmSample[], rows: number[][], rowLength: number, padId: number): PackedBatch {
  const B = rows.length;
  let S = 1;
  for (const r of rows) S = Math.max(S, r.length);
  const L = rowLength;
  const inputIds = new Int32Array(B * L).fill(padId);
  const targetIds = new Int32Array(B * L);
  const lossMask = new Uint8Array(B * L);
  const positionIds = new Int32Array(B * L);
  const blockPositionIds = new Int32Array(B * L);
  const segmentIds = new Int32Array(B * L).fill(-1);
  const sep = new Int32Array(B * S);
  const sampleRow = new Int32Array(samples.length);
  const sampleOffset = new Int32Array(samples.length);
  for (let b = 0; b < B; b++) {
    let offset = 0;
    const members = rows[b]!;
    for (let s = 0; s < members.length; s++) {
      const i = members[s]!;
      const x = samples[i]!;
      const o = b * L + offset;
      inputIds.set(x.inputIds, o);
      targetIds.set(x.targetIds, o);
      lossMask.set(x.lossMask, o);
      positionIds.set(x.positionIds, o);
      blockPositionIds.set(x.blockPositionIds, o);
      segmentIds.fill(s, o, o + x.inputIds.length);
      sep[b * S + s] = offset + x.sep;
      sampleRow[i] = b;
      sampleOffset[i] = offset;
      offset += x.inputIds.length;
    }
  }
  return {
    batchSize: B,
    seqLength: L,
    inputIds,
    positionIds,
    blockPositionIds,
    sep,
    numSegments: S,
    segmentIds,
    targetIds,
    lossMask,
    sampleRow,
    sampleOffset,
  };
}

/**
 * Packs samples into rows of `rowLength` tokens, first-fit by decreasing length: each sample goes
 * to the first row with room, so little of the batch is padding. Each sample is an isolated
 * segment (its own segment id, its own absolute `sep`, positions restarting at 0); padding has
 * segment id -1, token `padId` (default 0), target 0, loss 0, positions 0. A sample longer than the
 * row is an error, never truncated.
 */
export function packSamples(samples: GlmSample[], rowLength: number, opts: { padId?: number } = {}): PackedBatch {
  checkSamples(samples, 'packSamples');
  if (!Number.isInteger(rowLength) || rowLength < 1) throw new RangeError(`packSamples: rowLength = ${rowLength}, expected a positive integer`);
  const n = samples.length;
  const byLength = Array.from({ length: n }, (_, i) => i);
  for (let i = 0; i < n; i++) {
    const len = samples[i]!.inputIds.length;
    if (len > rowLength) {
      throw new RangeError(
        `packSamples: sample ${i} has ${len} tokens, more than the row length ${rowLength}; use longer rows or shorter windows (samples are never truncated)`,
      );
    }
  }
  byLength.sort((a, b) => samples[b]!.inputIds.length - samples[a]!.inputIds.length || a - b);
  const rows: number[][] = [];
  const used: number[] = [];
  for (const i of byLength) {
    const len = samples[i]!.inputIds.length;
    let r = 0;
    while (r < rows.length && used[r]! + len > rowLength) r++;
    if (r === rows.length) {
      rows.push([]);
      used.push(0);
    }
    rows[r]!.push(i);
    used[r]! += len;
  }
  return writeRows(samples, rows, rowLength, opts.padId ?? 0);
}

/**
 * One sample per row, padded to `rowLength` (default: the longest sample) as the original's
 * `pad_batch`: token 0, target 0, loss 0, positions (0, 0). Padding gets segment id -1, so it
 * attends to nothing real and nothing real attends to it.
 */
export function padSamples(samples: GlmSample[], rowLength?: number, opts: { padId?: number } = {}): PackedBatch {
  checkSamples(samples, 'padSamples');
  let longest = 0;
  for (const x of samples) longest = Math.max(longest, x.inputIds.length);
  const L = rowLength ?? longest;
  if (!Number.isInteger(L) || L < 1) throw new RangeError(`padSamples: rowLength = ${L}, expected a positive integer`);
  samples.forEach((x, i) => {
    if (x.inputIds.length > L) {
      throw new RangeError(`padSamples: sample ${i} has ${x.inputIds.length} tokens, more than the row length ${L} (samples are never truncated)`);
    }
  });
  return writeRows(
    samples,
    samples.map((_, i) => [i]),
    L,
    opts.padId ?? 0,
  );
}

/**
 * The original's non-isolated packing (sample_across_doc): documents are concatenated into
 * windows of `windowLength` tokens — `[CLS] doc₁ eos doc₂ eos …` — BEFORE corruption, so
 * positions continue across documents and Part A is bidirectional across all of them; only span
 * placement respects document boundaries. Nothing is dropped: a document that does not fit
 * continues in the next window (which starts with its own [CLS]); the last window may be shorter.
 * Feed the windows to corruptBatch and the samples to padSamples.
 */
export function concatenateDocuments(
  documents: ArrayLike<number>[],
  windowLength: number,
  tokens: { cls: number; eos: number },
): Int32Array[] {
  if (!Number.isInteger(windowLength) || windowLength < 3) {
    throw new RangeError(`concatenateDocuments: windowLength = ${windowLength}, expected an integer >= 3 ([CLS], a token, eos)`);
  }
  const windows: Int32Array[] = [];
  let window = new Int32Array(windowLength);
  window[0] = tokens.cls;
  let used = 1;
  const push = (id: number): void => {
    if (used === windowLength) {
      windows.push(window);
      window = new Int32Array(windowLength);
      window[0] = tokens.cls;
      used = 1;
    }
    window[used++] = id;
  };
  for (const doc of documents) {
    for (let i = 0; i < doc.length; i++) push(doc[i]!);
    push(tokens.eos);
  }
  if (used > 1) windows.push(window.slice(0, used));
  return windows;
}
