// Training windows from documents, as GLM's BlockDataset builds them (glm-reference.md §1.1).
//
// A document is read as its ids plus an appended eos. A window is at most `seqLength` tokens and
// starts with [CLS]:
//   long document (ids+eos > seqLength-1): a random start, snapped to a sentence boundary (half the
//     time walking left, half right, at most seqLength/2 steps), then cut at seqLength, preferring
//     to end right after a sentence end unless that keeps less than half the window;
//   short document: [CLS] doc eos, followed (when sampling across documents) by [CLS] doc eos of
//     further sampled documents until the window is full, the last one cut as above.
// Documents are drawn with probability proportional to their length.
import type { Rng } from '@blankglm/tensor';
import type { ShardSet } from './shards.js';

export interface WindowSamplerOptions {
  /** Longest window, [CLS] included (GLM: 512). */
  seqLength: number;
  /** Pack several short documents into one window (GLM's sample_across_doc, default true). */
  sampleAcrossDocuments?: boolean;
  /** Snap a long document's random start to a sentence boundary (default true). */
  sentenceStart?: boolean;
}

export interface WindowTokens {
  cls: number;
  eos: number;
  /** sentenceEnd[id] = 1 when token `id` ends a sentence. */
  sentenceEnd: Uint8Array;
}

/** Draws training windows from a subset of a shard set's documents. */
export class WindowSampler {
  /** cumulative[i] = total weight of documents[0..i] (a document weighs its length + 1 for eos). */
  private readonly cumulative: Float64Array;
  readonly totalTokens: number;
  private readonly seqLength: number;
  private readonly acrossDocuments: boolean;
  private readonly sentenceStart: boolean;

  constructor(
    private readonly shards: ShardSet,
    /** Global indices of the documents to draw from. */
    readonly documents: Uint32Array,
    private readonly tokens: WindowTokens,
    options: WindowSamplerOptions,
  ) {
    if (!Number.isInteger(options.seqLength) || options.seqLength < 4) throw new RangeError(`seqLength must be an integer ≥ 4, got ${options.seqLength}`);
    if (documents.length === 0) throw new RangeError('no documents to draw windows from');
    this.seqLength = options.seqLength;
    this.acrossDocuments = options.sampleAcrossDocuments ?? true;
    this.sentenceStart = options.sentenceStart ?? true;
    this.cumulative = new Float64Array(documents.length);
    let total = 0;
    for (let i = 0; i < documents.length; i++) {
      total += shards.documentLength(documents[i]!) + 1;
      this.cumulative[i] = total;
    }
    this.totalTokens = total;
  }

  /** A document drawn with probability ∝ its length (+1 for eos): a global document index. */
  sampleDocument(rng: Rng): number {
    const x = rng.float() * this.totalTokens;
    let lo = 0;
    let hi = this.cumulative.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.cumulative[mid]! > x) hi = mid;
      else lo = mid + 1;
    }
    return this.documents[lo]!;
  }

  private isSentenceEnd(id: number): boolean {
    return this.tokens.sentenceEnd[id] === 1;
  }

  /**
   * How many of `tokens` (whose full length is `fullLength`, of which the first min(fullLength, limit)
   * are given) to keep under `limit`: all when they fit; else cut right after the last sentence end
   * within the limit, unless that keeps fewer than limit/2 tokens, then cut at the limit.
   */
  private keepLength(tokens: ArrayLike<number>, fullLength: number, limit: number): number {
    if (fullLength <= limit) return fullLength;
    let keep = limit;
    while (keep > 1 && !this.isSentenceEnd(tokens[keep - 1]!)) keep--;
    return keep < Math.floor(limit / 2) ? limit : keep;
  }

  /**
   * GLM's short_seq_prob split (§1.1): the batch's windows are replaced by windows of a random
   * length T ~ U[32, seqLength-1), (seqLength-1)/T of them per original window, each a
   * sentence-aligned random piece of it (without its [CLS]) prefixed with a fresh [CLS]. The batch
   * then has more, shorter windows.
   */
  splitShort(windows: Int32Array[], rng: Rng): Int32Array[] {
    const L = this.seqLength;
    if (L - 1 <= 32) throw new RangeError(`short windows need seqLength > 33, got ${L}`);
    const { cls, eos } = this.tokens;
    const target = rng.intBetween(32, L - 2);
    const pieces = Math.floor((L - 1) / target);
    const out: Int32Array[] = [];
    const boundaryBefore = (tokens: Int32Array, i: number): boolean => this.isSentenceEnd(tokens[i - 1]!) || tokens[i - 1] === eos;
    for (const window of windows) {
      const tokens = window.subarray(1);
      for (let k = 0; k < pieces; k++) {
        let piece: Int32Array;
        if (target >= tokens.length) {
          piece = tokens;
        } else {
          let start = rng.int(tokens.length - target);
          while (start > 0 && (tokens[start] === eos || !boundaryBefore(tokens, start))) start--;
          let end = start + target;
          while (end > start && !boundaryBefore(tokens, end)) end--;
          if (end - start < Math.floor(target / 2)) end = start + target;
          piece = tokens.subarray(start, end);
        }
        // A piece that begins at a packed document's own [CLS] keeps just one.
        if (piece[0] === cls) piece = piece.subarray(1);
        const w = new Int32Array(piece.length + 1);
        w[0] = cls;
        w.set(piece, 1);
        out.push(w);
      }
    }
    return out;
  }

  /** One training window (length ≤ seqLength), drawing documents and offsets from `rng`. */
  window(rng: Rng): Int32Array {
    const L = this.seqLength;
    const { cls, eos } = this.tokens;
    const first = this.shards.document(this.sampleDocument(rng));
    const n = first.length + 1; // with eos
    const tokenAt = (doc: ArrayLike<number>, i: number): number => (i < doc.length ? doc[i]! : eos);
    const out: number[] = [cls];
    const tokensToStrip = n - L + 1;
    if (tokensToStrip > 0) {
      let start = rng.int(tokensToStrip);
      if (this.sentenceStart) {
        const maxMoves = Math.floor(L / 2);
        const atBoundary = (s: number): boolean => s === 0 || this.isSentenceEnd(tokenAt(first, s - 1));
        let moves = 0;
        if (rng.float() < 0.5) {
          while (moves < maxMoves && start > 0 && !atBoundary(start)) {
            start--;
            moves++;
          }
        } else {
          while (moves < maxMoves && start < n - 1 && !atBoundary(start)) {
            start++;
            moves++;
          }
        }
      }
      const visible = Math.min(n - start, L - 1);
      for (let i = 0; i < visible; i++) out.push(tokenAt(first, start + i));
      return Int32Array.from(out.slice(0, this.keepLength(out, 1 + n - start, L)));
    }
    for (let i = 0; i < n; i++) out.push(tokenAt(first, i));
    if (this.acrossDocuments) {
      while (out.length < L) {
        const doc = this.shards.document(this.sampleDocument(rng));
        const room = L - out.length;
        const full = doc.length + 2; // [CLS] doc eos
        const piece: number[] = [cls];
        for (let i = 0; i < Math.min(full, room) - 1; i++) piece.push(tokenAt(doc, i));
        const keep = this.keepLength(piece, full, room);
        for (let i = 0; i < keep; i++) out.push(piece[i]!);
        if (full >= room) break;
      }
    }
    return Int32Array.from(out);
  }
}
