// Small GLM blank-infilling batches built by hand (glm-reference §1.6 layout: Part A with [MASK]
// slots, then each span as [SOP] span → span [EOP] with 2D positions), for the training test.
import { Rng, type GlmBatch } from '@blankglm/tensor';

const MASK = 1;
const SOP = 2;
const EOP = 3;
const FIRST_TEXT_TOKEN = 4;

/** One row: `n` text tokens following a learnable pattern, one span of 1–3 tokens blanked. */
function sampleRow(rng: Rng, n: number, vocab: number) {
  const start = rng.int(vocab - FIRST_TEXT_TOKEN);
  const stride = 1 + rng.int(3);
  const text = Array.from({ length: n }, (_, i) => FIRST_TEXT_TOKEN + ((start + i * stride) % (vocab - FIRST_TEXT_TOKEN)));
  const s = 1 + rng.int(n - 5);
  const e = s + 1 + rng.int(3);
  const inputIds: number[] = [];
  const positionIds: number[] = [];
  const blockPositionIds: number[] = [];
  const targetIds: number[] = [];
  const lossMask: number[] = [];
  for (let i = 0, p = 0; i < n; p++) {
    const token = i === s ? MASK : text[i]!;
    inputIds.push(token);
    targetIds.push(token);
    positionIds.push(p);
    blockPositionIds.push(0);
    lossMask.push(0);
    i = i === s ? e : i + 1;
  }
  const sep = inputIds.length;
  const span = text.slice(s, e);
  [SOP, ...span].forEach((t, j) => {
    inputIds.push(t);
    targetIds.push(j < span.length ? span[j]! : EOP);
    positionIds.push(s);
    blockPositionIds.push(j + 1);
    lossMask.push(1);
  });
  return { inputIds, positionIds, blockPositionIds, targetIds, lossMask, sep };
}

/** B rows of `n` text tokens each, right-padded to seqLength (padding is segment −1). */
export function blankBatch(rng: Rng, rows: number, n: number, seqLength: number, vocab: number): GlmBatch {
  const L = seqLength;
  const batch: GlmBatch = {
    batchSize: rows,
    seqLength: L,
    numSegments: 1,
    inputIds: new Int32Array(rows * L),
    positionIds: new Int32Array(rows * L),
    blockPositionIds: new Int32Array(rows * L),
    targetIds: new Int32Array(rows * L),
    lossMask: new Uint8Array(rows * L),
    sep: new Int32Array(rows),
    segmentIds: new Int32Array(rows * L).fill(-1),
  };
  for (let b = 0; b < rows; b++) {
    const s = sampleRow(rng, n, vocab);
    batch.inputIds.set(s.inputIds, b * L);
    batch.positionIds.set(s.positionIds, b * L);
    batch.blockPositionIds.set(s.blockPositionIds, b * L);
    batch.targetIds!.set(s.targetIds, b * L);
    batch.lossMask!.set(s.lossMask, b * L);
    batch.segmentIds!.fill(0, b * L, b * L + s.inputIds.length);
    batch.sep[b] = s.sep;
  }
  return batch;
}
