// The sample layouts: GLM's Part A / Part B with 2D positions (the original's `make_block_data`),
// the document-level prefix form, and the two baselines (BERT MLM, GPT causal LM). Each builder is
// a pure function of the text, the spans and an explicit Part-B order, so tests can pin exact rows.
//
//   text     [CLS] x1 x2 x3 x4 x5 x6 [eos]           spans (3,4)={x3}, (5,7)={x5,x6}; Part-B order: 2nd, 1st
//   input    [CLS] x1 x2 [M] x4 [M] [eos] | sop x5 x6 | sop x3
//   target   (Part A copies)              |  x5 x6 eop|  x3 eop
//   position  0    1  2   3   4   5   6   |  5  5  5  |  3  3      Part B: its mask's place in Part A
//   block     0    0  0   0   0   0   0   |  1  2  3  |  1  2      1..k inside a span
//   sep = |Part A| = 7: Part A attends bidirectionally, Part B causally (and to all of Part A).
import type { Rng } from '@blankglm/tensor';

export type GlmObjective = 'token' | 'sentence' | 'document-prefix' | 'document-infill' | 'mlm' | 'clm';

/** One corrupted sample, unpadded. All arrays have the sample's length. */
export interface GlmSample {
  objective: GlmObjective;
  inputIds: Int32Array;
  /** The token each position is trained to predict (no shift; Part A targets = Part A tokens, loss 0). */
  targetIds: Int32Array;
  lossMask: Uint8Array;
  positionIds: Int32Array;
  blockPositionIds: Int32Array;
  /** Part A length: positions < sep attend bidirectionally, positions ≥ sep causally. */
  sep: number;
  /**
   * The blanks, in Part-B order (spans[i] is generated i-th; with sentinels it uses maskIds[i]).
   * start/end: the span's place in the original text (end exclusive); maskIndex: its mask token's
   * index in Part A (MLM: the span's first index; CLM: -1); partBStart: the index of its sop in
   * the sample (MLM: -1; CLM: 0).
   */
  spans: Array<{ start: number; end: number; maskIndex: number; partBStart: number }>;
}

/** How `buildBlockSample` lays out Part A and Part B. */
export interface BlockLayout {
  objective: GlmObjective;
  /** The mask token of every span in Part A (unless `sentinel`). */
  maskId: number;
  sopId: number;
  eopId: number;
  /** 2D positions (default true); false: block position 1 for all of Part B. */
  blockPositions?: boolean;
  /** Sentinel ablation: span i of Part B uses maskIds[i], sopIds[i]; Part-B positions = positionId. */
  sentinel?: { maskIds: ArrayLike<number>; sopIds: ArrayLike<number>; positionId: number };
  /** [dBLOCK] corruption of Part-B inputs (not of the sop, not of targets). */
  blockMask?: { prob: number; id: number; rng: Rng };
}

function checkSpans(N: number, starts: ArrayLike<number>, ends: ArrayLike<number>, n: number): void {
  let prevEnd = 0;
  for (let i = 0; i < n; i++) {
    const s = starts[i]!;
    const e = ends[i]!;
    if (!Number.isInteger(s) || !Number.isInteger(e) || s < prevEnd || e <= s || e > N) {
      throw new RangeError(
        `span ${i} = [${s}, ${e}) is invalid: spans must be sorted by start, non-empty, non-overlapping and inside the text of length ${N}`,
      );
    }
    prevEnd = e;
  }
}

function checkOrder(order: ArrayLike<number>, n: number): void {
  if (order.length !== n) throw new RangeError(`Part-B order has ${order.length} entries, expected one per span (${n})`);
  const seen = new Uint8Array(n);
  for (let k = 0; k < n; k++) {
    const i = order[k]!;
    if (!Number.isInteger(i) || i < 0 || i >= n || seen[i]) throw new RangeError(`Part-B order ${Array.from(order).join(',')} is not a permutation of 0..${n - 1}`);
    seen[i] = 1;
  }
}

/**
 * GLM's blank-infilling layout (`make_block_data`, §1.6): Part A = the text with each span
 * replaced by one mask token; Part B = for each span in `order` (indices into the start-sorted
 * spans), sop + span as inputs, span + eop as targets, at its mask's position, block positions 1..k+1.
 * `starts`/`ends` must be sorted by start and non-overlapping (adjacent spans are allowed).
 */
export function layoutBlocks(
  text: ArrayLike<number>,
  starts: ArrayLike<number>,
  ends: ArrayLike<number>,
  n: number,
  order: ArrayLike<number>,
  layout: BlockLayout,
): GlmSample {
  const N = text.length;
  let masked = 0;
  for (let i = 0; i < n; i++) masked += ends[i]! - starts[i]!;
  const sep = N - masked + n;
  const total = sep + masked + n; // = N + 2n
  const inputIds = new Int32Array(total);
  const targetIds = new Int32Array(total);
  const lossMask = new Uint8Array(total);
  const positionIds = new Int32Array(total);
  const blockPositionIds = new Int32Array(total); // Part A: 0
  const sentinel = layout.sentinel;
  if (sentinel && n > sentinel.maskIds.length) {
    throw new RangeError(`sentinel ablation: ${n} spans but only ${sentinel.maskIds.length} sentinel ids were supplied`);
  }
  // rankOf[i]: span i's place in Part B (sentinel ids are indexed by it).
  const rankOf = new Int32Array(n);
  for (let k = 0; k < n; k++) rankOf[order[k]!] = k;

  // Part A: kept tokens and one mask per span; positions are simply 0..sep-1 (the collapsed cumsum).
  const maskIndex = new Int32Array(n);
  let a = 0;
  let last = 0;
  for (let i = 0; i < n; i++) {
    const s = starts[i]!;
    for (let t = last; t < s; t++) {
      inputIds[a] = text[t]!;
      a++;
    }
    maskIndex[i] = a;
    inputIds[a] = sentinel ? sentinel.maskIds[rankOf[i]!]! : layout.maskId;
    a++;
    last = ends[i]!;
  }
  for (let t = last; t < N; t++) inputIds[a++] = text[t]!;
  for (let j = 0; j < sep; j++) {
    targetIds[j] = inputIds[j]!;
    positionIds[j] = j;
  }

  // Part B, in the given order.
  const blockPositions = layout.blockPositions ?? true;
  const blockMask = layout.blockMask;
  const spans: GlmSample['spans'] = new Array(n);
  let b = sep;
  for (let k = 0; k < n; k++) {
    const i = order[k]!;
    const s = starts[i]!;
    const len = ends[i]! - s;
    const position = sentinel ? sentinel.positionId : maskIndex[i]!;
    spans[k] = { start: s, end: s + len, maskIndex: maskIndex[i]!, partBStart: b };
    inputIds[b] = sentinel ? sentinel.sopIds[k]! : layout.sopId;
    for (let j = 0; j <= len; j++) {
      if (j > 0) {
        let token = text[s + j - 1]!;
        if (blockMask && blockMask.rng.float() < blockMask.prob) token = blockMask.id;
        inputIds[b + j] = token;
      }
      targetIds[b + j] = j < len ? text[s + j]! : layout.eopId;
      lossMask[b + j] = 1;
      positionIds[b + j] = position;
      blockPositionIds[b + j] = blockPositions ? j + 1 : 1;
    }
    b += len + 1;
  }
  return { objective: layout.objective, inputIds, targetIds, lossMask, positionIds, blockPositionIds, sep, spans };
}

/**
 * The low-level builder with explicit spans and an explicit Part-B order, e.g. the worked example
 * of §1.9: `buildBlockSample(text, [[3, 4], [5, 7]], [1, 0], layout)`. `spans` must be sorted by
 * start and non-overlapping; `order[k]` is the index (into `spans`) of the k-th span of Part B.
 */
export function buildBlockSample(
  text: ArrayLike<number>,
  spans: ReadonlyArray<readonly [number, number]>,
  order: ArrayLike<number>,
  layout: BlockLayout,
): GlmSample {
  const n = spans.length;
  const starts = new Int32Array(n);
  const ends = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    starts[i] = spans[i]![0];
    ends[i] = spans[i]![1];
  }
  checkSpans(text.length, starts, ends, n);
  checkOrder(order, n);
  return layoutBlocks(text, starts, ends, n, order, layout);
}

/**
 * The document-level prefix ("division") form (§1.5): Part A = text[:N-G] + [gMASK], Part B =
 * sop + text[N-G : N-1] predicting text[N-G:] (which ends with the document's eos: no eop here).
 * Positions 0..N-G in Part A, all of Part B at N-G; block positions 0 in Part A, 1..G in Part B.
 */
export function buildPrefixSample(
  text: ArrayLike<number>,
  generationLength: number,
  layout: { maskId: number; sopId: number; blockPositions?: boolean },
): GlmSample {
  const N = text.length;
  const G = generationLength;
  if (!Number.isInteger(G) || G < 1 || G > N - 1) {
    throw new RangeError(`prefix form: generation length ${G} must be an integer in 1..${N - 1} for a text of ${N} tokens`);
  }
  const division = N - G;
  const sep = division + 1;
  const total = N + 1;
  const inputIds = new Int32Array(total);
  const targetIds = new Int32Array(total);
  const lossMask = new Uint8Array(total);
  const positionIds = new Int32Array(total);
  const blockPositionIds = new Int32Array(total);
  for (let i = 0; i < division; i++) {
    inputIds[i] = targetIds[i] = text[i]!;
    positionIds[i] = i;
  }
  inputIds[division] = targetIds[division] = layout.maskId;
  positionIds[division] = division;
  const blockPositions = layout.blockPositions ?? true;
  for (let j = 0; j < G; j++) {
    const b = sep + j;
    inputIds[b] = j === 0 ? layout.sopId : text[division + j - 1]!;
    targetIds[b] = text[division + j]!;
    lossMask[b] = 1;
    positionIds[b] = division;
    blockPositionIds[b] = blockPositions ? j + 1 : 1;
  }
  return {
    objective: 'document-prefix',
    inputIds,
    targetIds,
    lossMask,
    positionIds,
    blockPositionIds,
    sep,
    spans: [{ start: division, end: N, maskIndex: division, partBStart: sep }],
  };
}

/**
 * The BERT masked-LM baseline (the original's `--masked-lm`): every span token is replaced in
 * place by [MASK] and predicted there; 1-D positions 0..N-1, block positions 0, no Part B,
 * sep = N (fully bidirectional).
 */
export function buildMlmSample(text: ArrayLike<number>, starts: ArrayLike<number>, ends: ArrayLike<number>, n: number, maskId: number): GlmSample {
  const N = text.length;
  checkSpans(N, starts, ends, n);
  const inputIds = new Int32Array(N);
  const targetIds = new Int32Array(N);
  const lossMask = new Uint8Array(N);
  const positionIds = new Int32Array(N);
  for (let i = 0; i < N; i++) {
    inputIds[i] = targetIds[i] = text[i]!;
    positionIds[i] = i;
  }
  const spans: GlmSample['spans'] = [];
  for (let i = 0; i < n; i++) {
    for (let t = starts[i]!; t < ends[i]!; t++) {
      inputIds[t] = maskId;
      lossMask[t] = 1;
    }
    spans.push({ start: starts[i]!, end: ends[i]!, maskIndex: starts[i]!, partBStart: -1 });
  }
  return { objective: 'mlm', inputIds, targetIds, lossMask, positionIds, blockPositionIds: new Int32Array(N), sep: N, spans };
}

/**
 * The GPT causal-LM baseline: inputs text[0..N-2], targets text[1..N-1], loss everywhere,
 * positions 0..N-2, block positions 0. sep = 0, i.e. no Part A: every token attends causally.
 * (sep = 1 would give the identical mask, since a one-token Part A sees only itself; 0 says
 * "no bidirectional part" directly and matches `glmKeyRanges`' plain-causal case.)
 */
export function buildClmSample(text: ArrayLike<number>): GlmSample {
  const N = text.length;
  if (N < 2) throw new RangeError(`causal LM baseline: a text of ${N} token(s) has nothing to predict (needs >= 2)`);
  const L = N - 1;
  const inputIds = new Int32Array(L);
  const targetIds = new Int32Array(L);
  const positionIds = new Int32Array(L);
  for (let i = 0; i < L; i++) {
    inputIds[i] = text[i]!;
    targetIds[i] = text[i + 1]!;
    positionIds[i] = i;
  }
  return {
    objective: 'clm',
    inputIds,
    targetIds,
    lossMask: new Uint8Array(L).fill(1),
    positionIds,
    blockPositionIds: new Int32Array(L),
    sep: 0,
    spans: [{ start: 1, end: N, maskIndex: -1, partBStart: 0 }],
  };
}
