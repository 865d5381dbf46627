// Where the blanks go: span lengths, documents inside a window, the original's per-document span
// placement ("stars and bars"), and sentence spans. Everything works on typed arrays of start/end
// indices into the window's token ids; nothing allocates per token.
import type { Rng } from '@blankglm/tensor';

/** Spans as parallel arrays, sorted by start; span i covers text[starts[i], ends[i]). */
export interface SpanList {
  starts: Int32Array;
  ends: Int32Array;
  count: number;
}

/** What placement had to do beyond the original's rule (counted in CorruptionStats). */
export interface PlacementReport {
  /** The original rule could not place every span, so the fallback placement ran. */
  fallback: boolean;
  /** Spans the fallback shortened to fit a document. */
  shortened: number;
  /** Span lengths the fallback could not place anywhere (their tokens stay unmasked). */
  dropped: number;
}

/** Documents of a window: the maskable stretch of each, as offset + length. */
export interface DocumentList {
  offsets: Int32Array;
  lengths: Int32Array;
  count: number;
}

/** Draws a span length k ∈ 1..cdf.length with weight pmf(k) (unnormalised Poisson weights). */
export function drawSpanLength(cdf: Float64Array, rng: Rng): number {
  const x = rng.float() * cdf[cdf.length - 1]!;
  let k = 0;
  while (k < cdf.length - 1 && x >= cdf[k]!) k++;
  return k + 1;
}

/** Span lengths drawn until their sum reaches `budget` (overshoot allowed); at least one. */
export function drawSpanLengths(cdf: Float64Array, budget: number, rng: Rng): Int32Array {
  let lengths = new Int32Array(16);
  let count = 0;
  let sum = 0;
  do {
    const k = drawSpanLength(cdf, rng);
    if (count === lengths.length) {
      const grown = new Int32Array(count * 2);
      grown.set(lengths);
      lengths = grown;
    }
    lengths[count++] = k;
    sum += k;
  } while (sum < budget);
  return lengths.subarray(0, count);
}

/**
 * Splits a window into documents at `eos` (the original's `sample_span_in_document`). A document's
 * maskable stretch excludes its leading [CLS] (the window's first token, or one right after an eos),
 * its eos, and, for a final document without eos (a truncated window), the window's last token.
 * Empty stretches are left out.
 */
export function findDocuments(text: ArrayLike<number>, cls: number, eos: number): DocumentList {
  const N = text.length;
  let offsets = new Int32Array(4);
  let lengths = new Int32Array(4);
  let count = 0;
  let prev = -1; // index of the eos ending the previous document (-1: window start)
  for (let i = 0; i <= N; i++) {
    if (i < N && text[i] !== eos) continue;
    let start = prev + 1;
    if (start < N && text[start] === cls) start++;
    let length = i - start;
    if (i === N && length > 0) length--; // unterminated final document: its last token stays
    if (length > 0) {
      if (count === offsets.length) {
        const o = new Int32Array(count * 2);
        o.set(offsets);
        offsets = o;
        const l = new Int32Array(count * 2);
        l.set(lengths);
        lengths = l;
      }
      offsets[count] = start;
      lengths[count] = length;
      count++;
    }
    prev = i;
  }
  return { offsets, lengths, count };
}

/** Sorts a small Int32Array in place, ascending (insertion sort: span counts are small). */
function sortSmall(a: Int32Array, n: number): void {
  for (let i = 1; i < n; i++) {
    const v = a[i]!;
    let j = i - 1;
    while (j >= 0 && a[j]! > v) {
      a[j + 1] = a[j]!;
      j--;
    }
    a[j + 1] = v;
  }
}

/**
 * Places spans of the given lengths (in list order) inside one document by "stars and bars":
 * n draws uniform in [0, room - n + 1] (room = length − Σlengths), sorted; the i-th span starts at
 * offset + draw_i + Σ_{j<i}(len_j + 1). Consecutive spans keep ≥ 1 unmasked token between them.
 */
function starsAndBars(
  lengths: Int32Array,
  spanIndices: Int32Array,
  n: number,
  docOffset: number,
  docLength: number,
  rng: Rng,
  out: SpanList,
): void {
  let total = 0;
  for (let i = 0; i < n; i++) total += lengths[spanIndices[i]!]!;
  const m = docLength - total - n + 1;
  const draws = new Int32Array(n);
  for (let i = 0; i < n; i++) draws[i] = rng.int(m + 1);
  sortSmall(draws, n);
  let offset = docOffset;
  for (let i = 0; i < n; i++) {
    const len = lengths[spanIndices[i]!]!;
    const start = offset + draws[i]!;
    out.starts[out.count] = start;
    out.ends[out.count] = start + len;
    out.count++;
    offset += len + 1;
  }
}

/** Sorts spans by start (insertion sort on the parallel arrays). */
export function sortSpans(spans: SpanList): void {
  const { starts, ends } = spans;
  for (let i = 1; i < spans.count; i++) {
    const s = starts[i]!;
    const e = ends[i]!;
    let j = i - 1;
    while (j >= 0 && starts[j]! > s) {
      starts[j + 1] = starts[j]!;
      ends[j + 1] = ends[j]!;
      j--;
    }
    starts[j + 1] = s;
    ends[j + 1] = e;
  }
}

/**
 * Places the spans of `lengths` into the window's documents, never across a document boundary.
 *
 * First the original rule: documents by length ascending; each but the longest takes the next
 * lengths while their sum ≤ floor(ratio × its length); the longest takes the remaining lengths
 * while they fit (Σ + count − 1 ≤ length, room for one gap between spans). The original drops the
 * whole sample when a length is left over. Here a fallback runs instead: every length, in list
 * order, goes to the document with the most room left (room = length − Σ − count); a span longer
 * than that room is shortened to it, and one that finds no room at all is left out. `lengths` may
 * be shortened in place. Returns the spans sorted by start.
 */
export function placeSpansInDocuments(
  lengths: Int32Array,
  docs: DocumentList,
  ratio: number,
  rng: Rng,
  report: PlacementReport,
): SpanList {
  const n = lengths.length;
  const D = docs.count;
  const docOfSpan = new Int32Array(n).fill(-1);
  const byLength = new Int32Array(D);
  for (let d = 0; d < D; d++) byLength[d] = d;
  for (let i = 1; i < D; i++) {
    const v = byLength[i]!;
    let j = i - 1;
    while (j >= 0 && docs.lengths[byLength[j]!]! > docs.lengths[v]!) {
      byLength[j + 1] = byLength[j]!;
      j--;
    }
    byLength[j + 1] = v;
  }
  let next = 0;
  for (let r = 0; r < D; r++) {
    const d = byLength[r]!;
    const docLength = docs.lengths[d]!;
    let sum = 0;
    let c = 0;
    if (r === D - 1) {
      while (next + c < n && lengths[next + c]! + sum + c <= docLength) sum += lengths[next + c++]!;
    } else {
      const budget = Math.floor(docLength * ratio);
      while (next + c < n && lengths[next + c]! + sum <= budget) sum += lengths[next + c++]!;
    }
    for (let i = 0; i < c; i++) docOfSpan[next + i] = d;
    next += c;
  }

  if (next < n) {
    report.fallback = true;
    const used = new Int32Array(D);
    const count = new Int32Array(D);
    for (let i = 0; i < n; i++) {
      let best = -1;
      let bestRoom = 0;
      for (let d = 0; d < D; d++) {
        const room = docs.lengths[d]! - used[d]! - count[d]!;
        if (room > bestRoom) {
          bestRoom = room;
          best = d;
        }
      }
      if (best < 0) {
        docOfSpan[i] = -1;
        report.dropped++;
        continue;
      }
      if (lengths[i]! > bestRoom) {
        lengths[i] = bestRoom;
        report.shortened++;
      }
      docOfSpan[i] = best;
      used[best]! += lengths[i]!;
      count[best]!++;
    }
  }

  const out: SpanList = { starts: new Int32Array(n), ends: new Int32Array(n), count: 0 };
  const members = new Int32Array(n);
  for (let d = 0; d < D; d++) {
    let m = 0;
    for (let i = 0; i < n; i++) if (docOfSpan[i] === d) members[m++] = i;
    if (m > 0) starsAndBars(lengths, members, m, docs.offsets[d]!, docs.lengths[d]!, rng, out);
  }
  sortSpans(out);
  return out;
}

/**
 * Sentences of a window (the original's gap-sentence split): maximal runs ending in a sentence-end
 * token. `eos` ends a document without ending a sentence (the run before it is not a sentence, as in
 * the original); the leading [CLS] and a [CLS] right after an eos belong to no sentence. A trailing
 * run at the window's end (a truncated window) counts as a sentence.
 */
export function findSentences(text: ArrayLike<number>, cls: number, eos: number, sentenceEnd: Uint8Array): SpanList {
  const N = text.length;
  const starts = new Int32Array(N);
  const ends = new Int32Array(N);
  let count = 0;
  let last = N > 0 && text[0] === cls ? 1 : 0;
  const tableLength = sentenceEnd.length;
  for (let i = 0; i < N; i++) {
    const t = text[i]!;
    if (t === eos) {
      last = i + 1 < N && text[i + 1] === cls ? i + 2 : i + 1;
    } else if (t < tableLength && sentenceEnd[t] === 1 && i >= last) {
      starts[count] = last;
      ends[count] = i + 1;
      count++;
      last = i + 1;
    }
  }
  if (last < N) {
    starts[count] = last;
    ends[count] = N;
    count++;
  }
  return { starts, ends, count };
}

/**
 * Picks whole sentences in random order until they cover ≥ floor(ratio × N) tokens (the last one
 * may overshoot); returns them sorted by start.
 */
export function chooseSentences(sentences: SpanList, N: number, ratio: number, rng: Rng): SpanList {
  const n = sentences.count;
  const order = new Int32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  const budget = Math.floor(ratio * N);
  const out: SpanList = { starts: new Int32Array(n), ends: new Int32Array(n), count: 0 };
  let covered = 0;
  // A lazy Fisher–Yates: the k-th pick is uniform over the sentences not yet picked.
  for (let k = 0; k < n; k++) {
    const j = k + rng.int(n - k);
    const pick = order[j]!;
    order[j] = order[k]!;
    order[k] = pick;
    out.starts[out.count] = sentences.starts[pick]!;
    out.ends[out.count] = sentences.ends[pick]!;
    out.count++;
    covered += sentences.ends[pick]! - sentences.starts[pick]!;
    if (covered >= budget) break;
  }
  sortSpans(out);
  return out;
}
