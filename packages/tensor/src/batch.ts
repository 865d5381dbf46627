// A batch of GLM inputs, as the model consumes it, and the attention mask it implies.
//
// GLM's attention mask for one sample with Part A of length `sep` (positions 0..sep-1) and
// Part B after it (sep..L-1):
//
//            keys →   A A A A | B B B
//   query A           1 1 1 1 | 0 0 0      Part A sees all of Part A (bidirectional), no Part B
//   query A           1 1 1 1 | 0 0 0
//   query B           1 1 1 1 | 1 0 0      Part B sees all of Part A, and Part B causally
//   query B           1 1 1 1 | 1 1 0
//   query B           1 1 1 1 | 1 1 1
//
// Several samples may be packed into one row as segments; a token then sees only tokens of its
// own segment, by the rule above with that segment's own `sep`. Padding (segment id -1) sees only
// itself. So every query's visible keys are one contiguous range [keyStart, keyEnd): attention
// kernels take those ranges, computed once per batch by `glmKeyRanges`.

/** GLM model inputs for B rows of length L, flat and row-major. */
export interface GlmBatch {
  batchSize: number; // B
  seqLength: number; // L
  /** [B, L] token ids. */
  inputIds: Int32Array;
  /** [B, L] first position row: a token's place in the corrupted text (Part B tokens: their mask's place). */
  positionIds: Int32Array;
  /** [B, L] second position row: 0 in Part A, 1..k inside the k-token span of Part B. */
  blockPositionIds: Int32Array;
  /** [B, S] absolute index in the row where segment s's Part B starts (= its Part A end). */
  sep: Int32Array;
  /** S: segments per row (1 when rows are not packed). */
  numSegments: number;
  /** [B, L] segment index of each token (0..S-1), -1 for padding. Omitted: one segment per row, no padding. */
  segmentIds?: Int32Array;
  /** [B, L] the token each position is trained to predict (no shift: output i predicts targetIds[i]). */
  targetIds?: Int32Array;
  /** [B, L] 1 where the loss counts, 0 elsewhere. */
  lossMask?: Uint8Array;
}

/** Per-query visible key ranges: query (b, i) attends to keys [keyStart[b*L+i], keyEnd[b*L+i]). */
export interface KeyRanges {
  keyStart: Int32Array;
  keyEnd: Int32Array;
}

/**
 * Computes each query's visible key range from `sep` and `segmentIds`, checking both.
 * Segments must be contiguous and in order; each segment's sep must lie inside it (a sep equal to
 * the segment's start means no Part A: plain causal; equal to its end means no Part B).
 */
export function glmKeyRanges(batch: Pick<GlmBatch, 'batchSize' | 'seqLength' | 'sep' | 'numSegments' | 'segmentIds'>): KeyRanges {
  const { batchSize: B, seqLength: L, sep, numSegments: S, segmentIds } = batch;
  if (sep.length !== B * S) throw new RangeError(`sep has ${sep.length} entries, expected batchSize × numSegments = ${B} × ${S}`);
  if (segmentIds && segmentIds.length !== B * L) {
    throw new RangeError(`segmentIds has ${segmentIds.length} entries, expected batchSize × seqLength = ${B} × ${L}`);
  }
  if (!segmentIds && S !== 1) throw new RangeError(`numSegments is ${S} but no segmentIds were given`);
  const keyStart = new Int32Array(B * L);
  const keyEnd = new Int32Array(B * L);
  const segStart = new Int32Array(S);
  const segEnd = new Int32Array(S);
  for (let b = 0; b < B; b++) {
    segStart.fill(-1);
    segEnd.fill(-1);
    let prev = -1;
    for (let i = 0; i < L; i++) {
      const s = segmentIds ? segmentIds[b * L + i]! : 0;
      if (s < -1 || s >= S) throw new RangeError(`segmentIds[${b}][${i}] = ${s}, expected -1 (padding) or 0..${S - 1}`);
      if (s >= 0) {
        if (segStart[s] === -1) {
          if (s < prev) throw new RangeError(`row ${b}: segment ${s} starts at ${i} after segment ${prev}; segments must be in order`);
          segStart[s] = i;
        } else if (segEnd[s] !== i) {
          throw new RangeError(`row ${b}: segment ${s} is not contiguous (interrupted before index ${i})`);
        }
        segEnd[s] = i + 1;
        prev = s;
      }
    }
    for (let s = 0; s < S; s++) {
      const sp = sep[b * S + s]!;
      if (segStart[s] === -1) continue; // unused segment slot in this row
      if (sp < segStart[s]! || sp > segEnd[s]!) {
        throw new RangeError(`sep[${b}][${s}] = ${sp} lies outside its segment [${segStart[s]}, ${segEnd[s]}]`);
      }
    }
    for (let i = 0; i < L; i++) {
      const s = segmentIds ? segmentIds[b * L + i]! : 0;
      const o = b * L + i;
      if (s < 0) {
        keyStart[o] = i;
        keyEnd[o] = i + 1;
        continue;
      }
      const sp = sep[b * S + s]!;
      keyStart[o] = segStart[s]!;
      keyEnd[o] = i < sp ? sp : i + 1;
    }
  }
  return { keyStart, keyEnd };
}

/** An ASCII picture of row b's attention mask ('x' = attends), for `blankglm corrupt` and debugging. */
export function drawAttentionMask(ranges: KeyRanges, seqLength: number, row = 0): string {
  const lines: string[] = [];
  for (let i = 0; i < seqLength; i++) {
    const o = row * seqLength + i;
    let line = '';
    for (let j = 0; j < seqLength; j++) line += j >= ranges.keyStart[o]! && j < ranges.keyEnd[o]! ? 'x' : '.';
    lines.push(line);
  }
  return lines.join('\n');
}
