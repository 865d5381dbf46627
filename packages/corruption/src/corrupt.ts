// Sample construction: one window of token ids in, one corrupted GLM sample out (§1.2–1.5).
// Pure and seeded: the same text, options and Rng state always give the same sample.
import type { Rng } from '@blankglm/tensor';
import { buildClmSample, buildMlmSample, buildPrefixSample, layoutBlocks, type GlmObjective, type GlmSample } from './layout.js';
import { resolveOptions, type CorruptionOptions, type ResolvedOptions } from './options.js';
import {
  chooseSentences,
  drawSpanLength,
  drawSpanLengths,
  findDocuments,
  findSentences,
  placeSpansInDocuments,
  type PlacementReport,
  type SpanList,
} from './spans.js';

/** The objective families a batch or sample draws from the mixture. */
export type MixtureObjective = 'token' | 'sentence' | 'document';

/** Counts of what corruption did, so nothing happens silently. */
export interface CorruptionStats {
  samples: number;
  byObjective: Record<GlmObjective, number>;
  /** Σ text lengths (tokens in, incl. [CLS] and eos). */
  textTokens: number;
  /** Σ tokens hidden behind masks (span tokens; CLM: 0). */
  maskedTokens: number;
  spans: number;
  /** Samples where the original's placement rule left spans over and the fallback placement ran (the original drops these samples). */
  placementFallbacks: number;
  /** Spans the fallback shortened to fit. */
  shortenedSpans: number;
  /** Span lengths the fallback could place nowhere (tokens stay unmasked; the sample is kept). */
  droppedSpans: number;
  /** Sentence-objective samples without any sentence, built with token-level spans instead. */
  sentenceFallbacks: number;
}

export function emptyStats(): CorruptionStats {
  return {
    samples: 0,
    byObjective: { token: 0, sentence: 0, 'document-prefix': 0, 'document-infill': 0, mlm: 0, clm: 0 },
    textTokens: 0,
    maskedTokens: 0,
    spans: 0,
    placementFallbacks: 0,
    shortenedSpans: 0,
    droppedSpans: 0,
    sentenceFallbacks: 0,
  };
}

/** Draws the objective from the mixture (§1.2): single-span first, then bert / sentence / gpt by one uniform. */
function drawObjective(opts: ResolvedOptions, rng: Rng): { objective: MixtureObjective; singleSpan: boolean } {
  const single = opts.singleSpanProb > 0 && rng.float() < opts.singleSpanProb;
  const r = single ? 0 : rng.float();
  const { token, sentence } = opts.mixture;
  if (r < token || single) return { objective: 'token', singleSpan: single };
  if (r < token + sentence) return { objective: 'sentence', singleSpan: false };
  return { objective: 'document', singleSpan: false };
}

/**
 * Gmax of the document objective, drawn once per batch (§1.5):
 * uniform in [floor(minRatio × shortest), longest − 2], at least 1.
 */
export function drawGenerationMax(shortest: number, longest: number, minRatio: number, rng: Rng): number {
  const hi = longest - 2;
  if (hi < 1) throw new RangeError(`document objective: the longest text has ${longest} tokens; at least 3 ([CLS], one token, eos) are needed`);
  const lo = Math.max(1, Math.min(Math.floor(minRatio * shortest), hi));
  return rng.intBetween(lo, hi);
}

function checkText(text: ArrayLike<number>, opts: ResolvedOptions, where: string): void {
  if (!text || typeof text.length !== 'number') throw new TypeError(`${where}: expected token ids (Int32Array or number[])`);
  if (text.length === 0) throw new RangeError(`${where}: empty text`);
  if (text[0] !== opts.tokens.cls) {
    throw new RangeError(`${where}: a window must start with [CLS] (id ${opts.tokens.cls}), got id ${text[0]}`);
  }
}

/** A Part-B order: a uniform permutation (shuffled spans) or left to right. */
function spanOrder(n: number, shuffle: boolean, rng: Rng): Int32Array {
  const order = new Int32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  if (shuffle) {
    for (let i = n - 1; i > 0; i--) {
      const j = rng.int(i + 1);
      const t = order[i]!;
      order[i] = order[j]!;
      order[j] = t;
    }
  }
  return order;
}

function maskedCount(spans: SpanList): number {
  let m = 0;
  for (let i = 0; i < spans.count; i++) m += spans.ends[i]! - spans.starts[i]!;
  return m;
}

function tokenSpans(text: ArrayLike<number>, opts: ResolvedOptions, singleSpan: boolean, rng: Rng, stats: CorruptionStats, where: string): SpanList {
  const { cls, eos } = opts.tokens;
  const docs = findDocuments(text, cls, eos);
  if (docs.count === 0) {
    throw new RangeError(
      `${where}: text of ${text.length} tokens is too short for span corruption: no document has a token besides [CLS] and eos`,
    );
  }
  const N = text.length;
  const lengths = singleSpan
    ? Int32Array.of(drawSpanLength(opts.spanLengthCdf, rng))
    : drawSpanLengths(opts.spanLengthCdf, Math.max(1, Math.floor(opts.maskRatio * N)), rng);
  const report: PlacementReport = { fallback: false, shortened: 0, dropped: 0 };
  const spans = placeSpansInDocuments(lengths, docs, opts.maskRatio, rng, report);
  if (report.fallback) stats.placementFallbacks++;
  stats.shortenedSpans += report.shortened;
  stats.droppedSpans += report.dropped;
  return spans;
}

function finish(sample: GlmSample, N: number, masked: number, stats: CorruptionStats): GlmSample {
  stats.samples++;
  stats.byObjective[sample.objective]++;
  stats.textTokens += N;
  stats.maskedTokens += masked;
  stats.spans += sample.objective === 'clm' ? 0 : sample.spans.length;
  return sample;
}

/** Builds one sample for an already drawn objective; `generationMax` is used by the document objective. */
function corruptWith(
  text: ArrayLike<number>,
  opts: ResolvedOptions,
  objective: MixtureObjective,
  singleSpan: boolean,
  generationMax: number,
  rng: Rng,
  stats: CorruptionStats,
  where: string,
): GlmSample {
  const N = text.length;
  const t = opts.tokens;
  if (opts.baseline === 'clm') return finish(buildClmSample(text), N, 0, stats);
  if (opts.baseline === 'mlm') {
    const spans = tokenSpans(text, opts, singleSpan, rng, stats, where);
    return finish(buildMlmSample(text, spans.starts, spans.ends, spans.count, t.mask), N, maskedCount(spans), stats);
  }
  const common = { sopId: t.sop, eopId: t.eop, blockPositions: opts.blockPositions, sentinel: opts.sentinel };

  if (objective === 'sentence') {
    const sentences = findSentences(text, t.cls, t.eos, opts.sentenceEnd!);
    if (sentences.count > 0) {
      const chosen = chooseSentences(sentences, N, opts.sentenceRatio, rng);
      const order = spanOrder(chosen.count, opts.shuffleSpans, rng);
      const sample = layoutBlocks(text, chosen.starts, chosen.ends, chosen.count, order, {
        ...common,
        objective: 'sentence',
        maskId: opts.taskMask ? t.sMask : t.mask,
      });
      return finish(sample, N, maskedCount(chosen), stats);
    }
    // No sentence at all (e.g. a window holding one document without sentence-end punctuation):
    // token-level spans instead, labelled 'token' and counted, rather than a sample without blanks.
    stats.sentenceFallbacks++;
    objective = 'token';
  }

  if (objective === 'document') {
    if (N < 3) throw new RangeError(`${where}: document objective needs at least 3 tokens ([CLS], text, eos), got ${N}`);
    const G = Math.min(generationMax, N - 2);
    let firstEos = -1;
    for (let i = 0; i < N; i++) {
      if (text[i] === t.eos) {
        firstEos = i;
        break;
      }
    }
    const multipleDocuments = firstEos !== -1 && firstEos !== N - 1;
    const maskId = opts.taskMask ? t.gMask : t.mask;
    if (multipleDocuments || rng.float() < opts.documentPrefixProb) {
      return finish(buildPrefixSample(text, G, { maskId, sopId: t.sop, blockPositions: opts.blockPositions }), N, G, stats);
    }
    // Infill: one span of length G placed uniformly inside the single document.
    const docs = findDocuments(text, t.cls, t.eos);
    const report: PlacementReport = { fallback: false, shortened: 0, dropped: 0 };
    const spans = placeSpansInDocuments(Int32Array.of(G), docs, opts.maskRatio, rng, report);
    if (report.fallback) stats.placementFallbacks++;
    stats.shortenedSpans += report.shortened;
    stats.droppedSpans += report.dropped;
    const sample = layoutBlocks(text, spans.starts, spans.ends, spans.count, Int32Array.of(0), {
      ...common,
      objective: 'document-infill',
      maskId,
    });
    return finish(sample, N, maskedCount(spans), stats);
  }

  const spans = tokenSpans(text, opts, singleSpan, rng, stats, where);
  const order = spanOrder(spans.count, opts.shuffleSpans, rng);
  const blockMask =
    opts.blockMaskProb > 0 ? { prob: opts.blockMaskProb, id: t.dBlock!, rng } : undefined;
  const sample = layoutBlocks(text, spans.starts, spans.ends, spans.count, order, {
    ...common,
    objective: 'token',
    maskId: t.mask,
    blockMask,
  });
  return finish(sample, N, maskedCount(spans), stats);
}

/**
 * Corrupts one window (token ids starting with [CLS], documents ending with eos): draws the
 * objective from the mixture, and for the document objective Gmax from this text alone.
 * Pass `stats` to accumulate what happened (fallbacks etc.).
 */
export function corruptSample(text: ArrayLike<number>, options: CorruptionOptions, rng: Rng, stats: CorruptionStats = emptyStats()): GlmSample {
  const opts = resolveOptions(options);
  checkText(text, opts, 'corruptSample');
  const { objective, singleSpan } = drawObjective(opts, rng);
  const gmax = objective === 'document' && !opts.baseline ? drawGenerationMax(text.length, text.length, opts.documentMinRatio, rng) : 0;
  return corruptWith(text, opts, objective, singleSpan, gmax, rng, stats, 'corruptSample');
}

/**
 * Corrupts a batch of windows like the original collator: one objective for the whole batch
 * (or one per sample with `objectiveScope: 'sample'`), and one Gmax shared by the batch's
 * document-objective samples, drawn from the batch's shortest and longest text. Every text yields
 * exactly one sample, in order; a text that cannot be corrupted throws, naming its index.
 */
export function corruptBatch(
  texts: ArrayLike<number>[],
  options: CorruptionOptions,
  rng: Rng,
): { samples: GlmSample[]; stats: CorruptionStats } {
  const opts = resolveOptions(options);
  if (!Array.isArray(texts) || texts.length === 0) throw new RangeError('corruptBatch: expected a non-empty array of texts');
  let shortest = Infinity;
  let longest = 0;
  for (let i = 0; i < texts.length; i++) {
    checkText(texts[i]!, opts, `corruptBatch: text ${i}`);
    shortest = Math.min(shortest, texts[i]!.length);
    longest = Math.max(longest, texts[i]!.length);
  }
  const stats = emptyStats();
  const batchDraw = opts.objectiveScope === 'batch' ? drawObjective(opts, rng) : undefined;
  let gmax = 0;
  const samples: GlmSample[] = new Array(texts.length);
  for (let i = 0; i < texts.length; i++) {
    const { objective, singleSpan } = batchDraw ?? drawObjective(opts, rng);
    if (objective === 'document' && gmax === 0 && !opts.baseline) gmax = drawGenerationMax(shortest, longest, opts.documentMinRatio, rng);
    samples[i] = corruptWith(texts[i]!, opts, objective, singleSpan, gmax, rng, stats, `corruptBatch: text ${i}`);
  }
  return { samples, stats };
}
