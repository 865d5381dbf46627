// Property tests of sample construction on many seeded, real-looking windows.
import { describe, expect, it } from 'vitest';
import { Rng, glmKeyRanges } from '@blankglm/tensor';
import {
  corruptBatch,
  corruptSample,
  corruptionPresets,
  drawSpanLengths,
  emptyStats,
  findDocuments,
  findSentences,
  placeSpansInDocuments,
  spanLengthCdf,
  type CorruptionOptions,
  type GlmSample,
} from '../src/index.js';
import { randomWindow, reconstruct, sampleKeyRanges, sentenceEnd, tokens } from './helpers.js';

const base: CorruptionOptions = { tokens, sentenceEnd };

/** Checks what every GLM sample must satisfy; returns nothing, throws with the first violation. */
function checkSample(sample: GlmSample, text: Int32Array): void {
  const { sep, inputIds, targetIds, lossMask, positionIds, blockPositionIds, objective } = sample;
  const L = inputIds.length;
  expect(reconstruct(sample)).toEqual(Array.from(text));
  expect(targetIds.length).toBe(L);
  if (objective === 'mlm' || objective === 'clm') return;
  // Build the expected rows, then compare whole rows (one expect each keeps the suite fast).
  const wantPos = new Int32Array(L);
  const wantBlock = new Int32Array(L);
  const wantLoss = new Uint8Array(L);
  const wantTargetsA = inputIds.slice(0, sep);
  for (let i = 0; i < sep; i++) wantPos[i] = i; // Part A: 0..sep-1, block 0, loss 0, targets = inputs
  const problems: string[] = [];
  for (const span of sample.spans) {
    const len = objective === 'document-prefix' ? span.end - span.start - 1 : span.end - span.start;
    if (inputIds[span.partBStart] !== tokens.sop) problems.push(`span at ${span.partBStart}: no sop`);
    for (let j = 0; j <= len; j++) {
      const b = span.partBStart + j;
      wantPos[b] = span.maskIndex;
      wantBlock[b] = j + 1;
      wantLoss[b] = 1;
      // Part-B inputs are the targets shifted right by one ([dBLOCK] may replace them).
      if (j > 0 && inputIds[b] !== targetIds[b - 1] && inputIds[b] !== tokens.dBlock) problems.push(`input ${b} is not the previous target`);
    }
    if (objective !== 'document-prefix' && targetIds[span.partBStart + len] !== tokens.eop) problems.push(`span at ${span.partBStart}: no eop`);
  }
  expect(problems).toEqual([]);
  expect(Array.from(targetIds.subarray(0, sep))).toEqual(Array.from(wantTargetsA));
  expect(Array.from(positionIds)).toEqual(Array.from(wantPos));
  expect(Array.from(blockPositionIds)).toEqual(Array.from(wantBlock));
  expect(Array.from(lossMask)).toEqual(Array.from(wantLoss));
  // Part A never sees Part B; Part B sees all of Part A and itself causally.
  const r = sampleKeyRanges(sample);
  const wantEnd = Array.from({ length: L }, (_, i) => (i < sep ? sep : i + 1));
  expect(Array.from(r.keyStart)).toEqual(new Array(L).fill(0));
  expect(Array.from(r.keyEnd)).toEqual(wantEnd);
}

/** Spans of token mode: ≥ 1 unmasked token between consecutive spans, none covering [CLS] or eos. */
function checkTokenSpans(sample: GlmSample, text: Int32Array): void {
  const sorted = [...sample.spans].sort((a, b) => a.start - b.start);
  const problems: string[] = [];
  for (let i = 0; i < sorted.length; i++) {
    const s = sorted[i]!;
    if (i > 0 && s.start <= sorted[i - 1]!.end) problems.push(`no gap before span [${s.start}, ${s.end})`);
    for (let t = s.start; t < s.end; t++) {
      if (text[t] === tokens.eos || text[t] === tokens.cls) problems.push(`span [${s.start}, ${s.end}) covers [CLS]/eos at ${t}`);
    }
  }
  expect(problems).toEqual([]);
}

describe('token-level spans (§1.3)', () => {
  it('rebuilds the text, keeps Part A from Part B, and leaves a gap between spans (200 windows, 1–4 documents)', () => {
    const rng = new Rng(11);
    const stats = emptyStats();
    for (let k = 0; k < 200; k++) {
      const text = randomWindow(rng.intBetween(40, 512), 1 + (k % 4), rng);
      const sample = corruptSample(text, base, rng, stats);
      expect(sample.objective).toBe('token');
      checkSample(sample, text);
      checkTokenSpans(sample, text);
    }
    expect(stats.samples).toBe(200);
  });

  it('masks ≥ 15% of every single-document window, about 15.3% on average, with Poisson(3) span lengths', () => {
    const rng = new Rng(5);
    const stats = emptyStats();
    let spanTokens = 0;
    let spanCount = 0;
    for (let k = 0; k < 400; k++) {
      const text = randomWindow(512, 1, rng);
      const s = corruptSample(text, base, rng, stats);
      const masked = s.spans.reduce((m, x) => m + x.end - x.start, 0);
      expect(masked).toBeGreaterThanOrEqual(Math.floor(0.15 * 512));
      expect(s.sep).toBe(512 - masked + s.spans.length);
      spanTokens += masked;
      spanCount += s.spans.length;
    }
    expect(stats.placementFallbacks).toBe(0);
    const ratio = stats.maskedTokens / stats.textTokens;
    expect(ratio).toBeGreaterThan(0.15);
    expect(ratio).toBeLessThan(0.16);
    // Mean of Poisson(3) restricted to 1..39: 3 / (1 − e⁻³) = 3.157.
    expect(Math.abs(spanTokens / spanCount - 3 / (1 - Math.exp(-3)))).toBeLessThan(0.1);
  });

  it('draws lengths with Poisson(3) frequencies', () => {
    const rng = new Rng(3);
    const cdf = spanLengthCdf(3, 40);
    const counts = new Array(40).fill(0);
    const lengths = drawSpanLengths(cdf, 60000, rng);
    for (const k of lengths) counts[k]++;
    const pmf = (k: number) => (Math.exp(-3) * 3 ** k) / [1, 1, 2, 6, 24, 120, 720][k]!;
    const norm = 1 - Math.exp(-3);
    for (let k = 1; k <= 6; k++) expect(Math.abs(counts[k] / lengths.length - pmf(k) / norm)).toBeLessThan(0.01);
    expect(Math.max(...lengths)).toBeLessThanOrEqual(39);
  });

  it('never places a span across documents, and gives each non-longest document at most 15% of its length', () => {
    const rng = new Rng(8);
    for (let k = 0; k < 100; k++) {
      const text = randomWindow(300, 3, rng);
      const docs = findDocuments(text, tokens.cls, tokens.eos);
      expect(docs.count).toBe(3);
      const lengths = drawSpanLengths(spanLengthCdf(3, 40), 45, rng);
      const report = { fallback: false, shortened: 0, dropped: 0 };
      const spans = placeSpansInDocuments(lengths, docs, 0.15, rng, report);
      let longest = 0;
      for (let d = 1; d < 3; d++) if (docs.lengths[d]! >= docs.lengths[longest]!) longest = d; // ties: the later one, as the stable sort
      const perDoc = [0, 0, 0];
      for (let i = 0; i < spans.count; i++) {
        const d = [0, 1, 2].find((j) => spans.starts[i]! >= docs.offsets[j]! && spans.ends[i]! <= docs.offsets[j]! + docs.lengths[j]!);
        expect(d).toBeDefined();
        perDoc[d!] += spans.ends[i]! - spans.starts[i]!;
      }
      if (!report.fallback) {
        for (let d = 0; d < 3; d++) if (d !== longest) expect(perDoc[d]).toBeLessThanOrEqual(Math.floor(0.15 * docs.lengths[d]!));
      }
    }
  });

  it('never drops a sample where the original would: the fallback shortens spans, counted in stats', () => {
    // Original rule fails here: two 4-token documents take no span (floor(0.15·4) = 0), and the
    // longest (5 tokens) can hold spans 3 and 1 (3+1+1 ≤ 5) but not also 2 more.
    const docs = { offsets: Int32Array.of(1, 6, 11), lengths: Int32Array.of(4, 4, 5), count: 3 };
    const report = { fallback: false, shortened: 0, dropped: 0 };
    const lengths = Int32Array.of(3, 1, 3, 3);
    const spans = placeSpansInDocuments(lengths, docs, 0.15, new Rng(1), report);
    expect(report.fallback).toBe(true);
    expect(spans.count + report.dropped).toBe(4);
    for (let i = 0; i < spans.count; i++) {
      const d = [0, 1, 2].find((j) => spans.starts[i]! >= docs.offsets[j]! && spans.ends[i]! <= docs.offsets[j]! + docs.lengths[j]!);
      expect(d).toBeDefined();
    }

    // Through corruptSample: many short multi-document windows; every text gives a sample.
    const rng = new Rng(21);
    const stats = emptyStats();
    for (let k = 0; k < 300; k++) {
      const text = randomWindow(rng.intBetween(12, 40), 1 + rng.int(4), rng);
      const s = corruptSample(text, base, rng, stats);
      checkSample(s, text);
      checkTokenSpans(s, text);
      expect(s.spans.length).toBeGreaterThan(0);
    }
    expect(stats.samples).toBe(300);
    expect(stats.placementFallbacks).toBeGreaterThan(0);
  });

  it('a document shorter than the span budget: spans shortened to fit, never an empty sample', () => {
    // [CLS] a b eos: one 2-token document; any drawn length > 1 is cut to the one span that fits.
    const text = Int32Array.of(tokens.cls, 2000, 2001, tokens.eos);
    const stats = emptyStats();
    const rng = new Rng(4);
    for (let k = 0; k < 50; k++) {
      const s = corruptSample(text, { ...base, maskRatio: 0.9 }, rng, stats);
      checkSample(s, text);
      expect(s.spans.length).toBe(1);
    }
    expect(stats.shortenedSpans + stats.droppedSpans).toBeGreaterThan(0);
  });

  it('masks at least one span even when floor(0.15 × N) = 0 (the original would make a sample without blanks)', () => {
    const text = Int32Array.of(tokens.cls, 2000, 2001, 2002, tokens.eos);
    const s = corruptSample(text, base, new Rng(2));
    expect(s.spans.length).toBe(1);
    checkSample(s, text);
  });

  it('errors clearly on texts that cannot be corrupted', () => {
    expect(() => corruptSample([], base, new Rng(1))).toThrow(/empty text/);
    expect(() => corruptSample([2000, 2001, 0], base, new Rng(1))).toThrow(/must start with \[CLS\] \(id 101\)/);
    expect(() => corruptSample([tokens.cls, tokens.eos], base, new Rng(1))).toThrow(/too short/);
    expect(() => corruptBatch([Int32Array.of(101, 5, 6, 0), Int32Array.of(101, 0)], base, new Rng(1))).toThrow(/text 1.*too short/);
  });

  it('is deterministic for a seed', () => {
    const text = randomWindow(512, 2, new Rng(99));
    const a = corruptSample(text, { ...base, mixture: corruptionPresets['glm-10b'].mixture }, new Rng(7));
    const b = corruptSample(text, { ...base, mixture: corruptionPresets['glm-10b'].mixture }, new Rng(7));
    expect(a).toEqual(b);
    const c = corruptSample(text, base, new Rng(8));
    expect(Array.from(c.inputIds)).not.toEqual(Array.from(corruptSample(text, base, new Rng(7)).inputIds));
  });
});

describe('sentence-level spans (§1.4)', () => {
  const opts: CorruptionOptions = { ...base, mixture: { token: 0, sentence: 1, document: 0 } };

  it('masks whole sentences covering ≥ 15% with [sMASK]', () => {
    const rng = new Rng(12);
    for (let k = 0; k < 150; k++) {
      const text = randomWindow(rng.intBetween(60, 512), 1 + (k % 3), rng);
      const s = corruptSample(text, opts, rng);
      expect(s.objective).toBe('sentence');
      checkSample(s, text);
      const sentences = findSentences(text, tokens.cls, tokens.eos, sentenceEnd);
      const known = new Set(Array.from({ length: sentences.count }, (_, i) => `${sentences.starts[i]},${sentences.ends[i]}`));
      let masked = 0;
      for (const span of s.spans) {
        expect(known.has(`${span.start},${span.end}`)).toBe(true);
        expect(s.inputIds[span.maskIndex]).toBe(tokens.sMask);
        masked += span.end - span.start;
      }
      const all = Array.from({ length: sentences.count }, (_, i) => sentences.ends[i]! - sentences.starts[i]!).reduce((a, b) => a + b, 0);
      expect(masked).toBeGreaterThanOrEqual(Math.min(all, Math.floor(0.15 * text.length)));
    }
  });

  it('never puts eos (even one marked as a sentence end) or a [CLS] after eos into a sentence', () => {
    const table = sentenceEnd.slice();
    table[tokens.eos] = 1; // a tokenizer whose eos text contains a sentence-end character
    const text = Int32Array.of(tokens.cls, 2000, 2001, 1012, 2002, tokens.eos, tokens.cls, 2003, 2004, 1012, 2005, 2006, tokens.eos);
    const sentences = findSentences(text, tokens.cls, tokens.eos, table);
    const found = Array.from({ length: sentences.count }, (_, i) => [sentences.starts[i], sentences.ends[i]]);
    expect(found).toEqual([[1, 4], [7, 10]]); // the unterminated runs before eos are not sentences, as the original
    const rng = new Rng(6);
    for (let k = 0; k < 20; k++) checkSample(corruptSample(text, { ...opts, sentenceEnd: table }, rng), text);
  });

  it('uses [MASK] without task masks', () => {
    const text = randomWindow(200, 1, new Rng(2));
    const s = corruptSample(text, { ...opts, taskMask: false }, new Rng(3));
    for (const span of s.spans) expect(s.inputIds[span.maskIndex]).toBe(tokens.mask);
  });

  it('falls back to token spans (counted) for a text without any sentence end', () => {
    const text = Int32Array.of(tokens.cls, ...Array.from({ length: 60 }, (_, i) => 2000 + i), tokens.eos);
    const stats = emptyStats();
    const s = corruptSample(text, opts, new Rng(1), stats);
    expect(s.objective).toBe('token');
    expect(stats.sentenceFallbacks).toBe(1);
    checkSample(s, text);
  });

  it('requires a sentence-end table', () => {
    expect(() => corruptSample(randomWindow(50, 1, new Rng(1)), { tokens, mixture: opts.mixture }, new Rng(1))).toThrow(/sentenceEnd/);
  });
});

describe('document-level spans (§1.5)', () => {
  const opts: CorruptionOptions = { ...base, mixture: { token: 0, sentence: 0, document: 1 } };

  it('covers 50–100% with one span, prefix or infill about half and half', () => {
    const rng = new Rng(13);
    const forms = { 'document-prefix': 0, 'document-infill': 0 } as Record<string, number>;
    for (let k = 0; k < 300; k++) {
      const text = randomWindow(rng.intBetween(20, 512), 1, rng);
      const N = text.length;
      const s = corruptSample(text, opts, rng);
      forms[s.objective]++;
      checkSample(s, text);
      expect(s.spans).toHaveLength(1);
      const G = s.spans[0]!.end - s.spans[0]!.start;
      expect(G).toBeGreaterThanOrEqual(Math.floor(0.5 * N));
      expect(G).toBeLessThanOrEqual(N - 2);
      expect(s.sep).toBe(N - G + 1);
      expect(s.inputIds[s.spans[0]!.maskIndex]).toBe(tokens.gMask);
    }
    expect(forms['document-prefix']).toBeGreaterThan(110);
    expect(forms['document-infill']).toBeGreaterThan(110);
  });

  it('forces the prefix form for packed documents, and shares Gmax across the batch', () => {
    const rng = new Rng(14);
    for (let k = 0; k < 20; k++) {
      const texts = [randomWindow(512, 3, rng), randomWindow(300, 1, rng), randomWindow(100, 1, rng)];
      const { samples } = corruptBatch(texts, { ...opts, documentMinRatio: 0.25 }, rng);
      expect(samples[0]!.objective).toBe('document-prefix');
      const G = samples.map((s) => s.spans[0]!.end - s.spans[0]!.start);
      // G = min(Gmax, N − 2) with one Gmax in [floor(0.25 × 100), 510].
      expect(G[0]).toBeGreaterThanOrEqual(25);
      for (let i = 0; i < 3; i++) expect(G[i]).toBe(Math.min(G[0]!, texts[i]!.length - 2));
      samples.forEach((s, i) => checkSample(s, texts[i]!));
    }
  });

  it('handles the shortest possible text ([CLS] x eos)', () => {
    const text = Int32Array.of(tokens.cls, 2000, tokens.eos);
    for (let seed = 0; seed < 10; seed++) checkSample(corruptSample(text, opts, new Rng(seed)), text);
  });
});

describe('mixtures (§1.2)', () => {
  it('chooses one objective per batch by default and per sample on request', () => {
    const rng = new Rng(15);
    const texts = Array.from({ length: 8 }, () => randomWindow(256, 1, rng));
    const mixture = corruptionPresets['glm-2b'].mixture;
    const family = (o: string) => o.replace(/-.*/, '');
    let mixedBatches = 0;
    const seen = new Map<string, number>();
    for (let k = 0; k < 200; k++) {
      const batch = corruptBatch(texts, { ...base, mixture }, rng).samples.map((s) => family(s.objective));
      expect(new Set(batch).size).toBe(1);
      seen.set(batch[0]!, (seen.get(batch[0]!) ?? 0) + 1);
      const perSample = corruptBatch(texts, { ...base, mixture, objectiveScope: 'sample' }, rng).samples.map((s) => family(s.objective));
      if (new Set(perSample).size > 1) mixedBatches++;
    }
    expect(mixedBatches).toBeGreaterThan(150);
    // 0.4 / 0.3 / 0.3 over 200 batches.
    expect(seen.get('token')! / 200).toBeCloseTo(0.4, 0);
    expect(seen.get('sentence')! / 200).toBeGreaterThan(0.18);
    expect(seen.get('document')! / 200).toBeGreaterThan(0.18);
  });

  it('single-span batches: one Poisson span', () => {
    const rng = new Rng(16);
    const texts = [randomWindow(512, 1, rng)];
    for (let k = 0; k < 20; k++) {
      const { samples } = corruptBatch(texts, { ...base, singleSpanProb: 1 }, rng);
      expect(samples[0]!.spans).toHaveLength(1);
      expect(samples[0]!.objective).toBe('token');
    }
  });

  it('has presets for the released configurations, each valid', () => {
    const rng = new Rng(17);
    const text = randomWindow(512, 1, rng);
    for (const [name, preset] of Object.entries(corruptionPresets)) {
      const s = corruptSample(text, { ...base, ...preset }, rng);
      checkSample(s, text);
      expect(name).toMatch(/^glm-/);
    }
    expect(corruptionPresets['glm-10b'].mixture).toEqual({ token: 0.5, sentence: 0.3, document: 0.2 });
    expect(corruptionPresets['glm-large'].mixture).toEqual({ token: 1, sentence: 0, document: 0 });
  });

  it('rejects a mixture that does not sum to 1, naming the field', () => {
    expect(() => corruptSample([101, 5, 0], { tokens, mixture: { token: 0.5, sentence: 0, document: 0.4 } }, new Rng(1))).toThrow(/mixture.*0.9.*expected 1/);
    expect(() => corruptSample([101, 5, 0], { ...base, blockMaskProb: 0.1, tokens: { ...tokens, dBlock: undefined } }, new Rng(1))).toThrow(/dBlock/);
  });
});

describe('ablations and baselines', () => {
  const rng = new Rng(18);
  const text = randomWindow(300, 2, rng);

  it('no shuffle: Part B left to right', () => {
    for (let k = 0; k < 10; k++) {
      const s = corruptSample(text, { ...base, shuffleSpans: false }, rng);
      const starts = s.spans.map((x) => x.start);
      expect(starts).toEqual([...starts].sort((a, b) => a - b));
    }
  });

  it('block masking corrupts ≈ blockMaskProb of Part-B span inputs in token mode', () => {
    let corrupted = 0;
    let total = 0;
    for (let k = 0; k < 50; k++) {
      const s = corruptSample(text, { ...base, blockMaskProb: 0.1 }, rng);
      for (const span of s.spans) {
        for (let j = 1; j <= span.end - span.start; j++) {
          total++;
          if (s.inputIds[span.partBStart + j] === tokens.dBlock) corrupted++;
        }
      }
      expect(reconstruct(s)).toEqual(Array.from(text)); // targets untouched
    }
    expect(corrupted / total).toBeGreaterThan(0.07);
    expect(corrupted / total).toBeLessThan(0.13);
  });

  it('MLM baseline: the same token spans masked in place, fully bidirectional', () => {
    const s = corruptSample(text, { ...base, baseline: 'mlm' }, rng);
    expect(s.objective).toBe('mlm');
    expect(s.sep).toBe(text.length);
    checkSample(s, text);
    checkTokenSpans(s, text);
    let lossCount = 0;
    for (let i = 0; i < text.length; i++) {
      if (s.lossMask[i]) {
        lossCount++;
        expect(s.inputIds[i]).toBe(tokens.mask);
      } else expect(s.inputIds[i]).toBe(text[i]);
    }
    expect(lossCount).toBeGreaterThanOrEqual(Math.floor(0.15 * text.length));
  });

  it('CLM baseline: causal over the whole text', () => {
    const { samples, stats } = corruptBatch([text], { ...base, baseline: 'clm', mixture: corruptionPresets['glm-10b'].mixture, sentenceEnd }, rng);
    const s = samples[0]!;
    expect(s.objective).toBe('clm');
    checkSample(s, text);
    expect(stats.byObjective.clm).toBe(1);
    const r = glmKeyRanges({ batchSize: 1, seqLength: s.inputIds.length, sep: Int32Array.of(s.sep), numSegments: 1 });
    expect(r.keyEnd[5]).toBe(6);
  });
});
