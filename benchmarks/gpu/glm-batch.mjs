// The training batch of the GPU benchmarks (train-bench.mjs, host-overhead.mjs): GLM rows of
// sequence length L, each Part A with one [MASK] and Part B = sop + a SPAN-token span, the loss on
// Part B (80 positions per row, as the peer figures in docs/gpu.md).

/** Span tokens per row (Part B = sop + SPAN tokens). */
export const SPAN = 79;

/** Random GLM rows: Part A with one mask, Part B = sop + span; targets on Part B (one segment per row). */
export function makeBatch(rng, B, L, vocab) {
  const partA = L - (SPAN + 1);
  const n = B * L;
  const inputIds = new Int32Array(n), positionIds = new Int32Array(n), blockPositionIds = new Int32Array(n);
  const targetIds = new Int32Array(n), lossMask = new Uint8Array(n), sep = new Int32Array(B);
  for (let b = 0; b < B; b++) {
    const row = b * L, maskAt = rng.int(partA);
    const span = Array.from({ length: SPAN }, () => rng.intBetween(1000, vocab - 1));
    for (let i = 0; i < partA; i++) {
      inputIds[row + i] = i === maskAt ? 103 : rng.intBetween(1000, vocab - 1);
      positionIds[row + i] = i;
    }
    sep[b] = partA;
    for (let k = 0; k <= SPAN; k++) {
      const i = row + partA + k;
      inputIds[i] = k === 0 ? 30590 : span[k - 1];
      positionIds[i] = maskAt;
      blockPositionIds[i] = k + 1;
      targetIds[i] = k < SPAN ? span[k] : 30591;
      lossMask[i] = 1;
    }
  }
  return { batchSize: B, seqLength: L, numSegments: 1, sep, inputIds, positionIds, blockPositionIds, targetIds, lossMask };
}
