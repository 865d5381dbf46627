import { describe, expect, it } from 'vitest';
import { createReferenceBackend } from '@blankglm/backend-ref';
import { Rng, type GlmBatch } from '@blankglm/tensor';
import {
  BeamHypotheses,
  GlmModel,
  KvCache,
  bannedNgramTokens,
  fillBlanks,
  initParameters,
  logSoftmax,
  sampleToken,
  samplingDistribution,
  type DecodeStepEvent,
  type FedToken,
  type FillBlanksOptions,
  type GlmConfig,
} from '../src/index.js';
import { EOP, MASK, SOP, microConfig } from './model-helpers.js';

const config = microConfig({ initializer_range: 0.2, num_layers: 2, hidden_size: 24, num_attention_heads: 3 });

/**
 * Random parameters with the final LayerNorm bias pushed towards `<|endofpiece|>`'s embedding, so
 * that blanks end at varied lengths (a plain random model almost never ends one).
 */
function eopLeaningState(c: GlmConfig, seed: number, boost: number): Map<string, Float32Array> {
  const state = initParameters(c, new Rng(seed));
  const E = state.get('word_embeddings.weight')!;
  const bias = state.get('transformer.final_layernorm.bias')!;
  for (let i = 0; i < c.hidden_size; i++) bias[i]! += boost * E[EOP * c.hidden_size + i]!;
  return state;
}

/** One row: context (Part A, positions 0..n-1) + Part B tokens, sep = n. */
function fullRow(context: readonly number[], partB: readonly FedToken[]): GlmBatch {
  const n = context.length;
  return {
    batchSize: 1, seqLength: n + partB.length, numSegments: 1, sep: new Int32Array([n]),
    inputIds: Int32Array.from([...context, ...partB.map((t) => t[0])]),
    positionIds: Int32Array.from([...context.map((_, i) => i), ...partB.map((t) => t[1])]),
    blockPositionIds: Int32Array.from([...context.map(() => 0), ...partB.map((t) => t[2])]),
  };
}

/** Logits after the last token of context + partB, by one full forward (no cache). */
function fullLogits(model: GlmModel, context: readonly number[], partB: readonly FedToken[]): Float32Array {
  const batch = fullRow(context, partB);
  return model.forward(batch, { logitsAt: [{ row: 0, position: batch.seqLength - 1 }] }).logits!.values;
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i]! - b[i]!));
  return d;
}

/** Runs fillBlanks recording every step, then recomputes each row's logits from scratch. */
function checkAgainstFullRecomputation(model: GlmModel, context: number[], options: FillBlanksOptions): { worst: number; rowsChecked: number; result: ReturnType<typeof fillBlanks> } {
  const V = model.config.vocab_size;
  const events: Array<{ rows: FedToken[][]; logits: Float32Array }> = [];
  const result = fillBlanks(model, context, { ...options, onStep: (e: DecodeStepEvent) => events.push({ rows: e.rows.map((r) => r.slice()), logits: e.logits.slice() }) });
  let worst = 0;
  let rowsChecked = 0;
  for (const e of events) {
    e.rows.forEach((partB, r) => {
      worst = Math.max(worst, maxAbsDiff(e.logits.subarray(r * V, (r + 1) * V), fullLogits(model, context, partB)));
      rowsChecked++;
    });
  }
  return { worst, rowsChecked, result };
}

/** log p of a blank's tokens (then eop when finished) by full recomputation, given earlier fills as Part B. */
function spanLogProb(model: GlmModel, context: number[], before: FedToken[], maskPos: number, tokens: number[], finished: boolean): number {
  const partB: FedToken[] = [...before, [SOP, maskPos, 1]];
  let sum = 0;
  const next = finished ? [...tokens, EOP] : tokens;
  next.forEach((t, k) => {
    sum += logSoftmax(fullLogits(model, context, partB))[t]!;
    partB.push([t, maskPos, k + 2]);
  });
  return sum;
}

const base = { maskIds: [MASK], sopId: SOP, eopId: EOP };

describe('cached decoding equals full recomputation', () => {
  it('sampling: every step of three blanks (logits within 1e-5)', () => {
    const be = createReferenceBackend();
    const model = GlmModel.create(be, config, { stateDict: eopLeaningState(config, 21, 3.5) });
    const context = [5, MASK, 13, 14, MASK, 8, 30, MASK];
    const { worst, rowsChecked, result } = checkAgainstFullRecomputation(model, context, {
      ...base, maxTokens: 5, strategy: { kind: 'sample', rng: new Rng(3), temperature: 0.9, topK: 20, topP: 0.95 },
    });
    expect(rowsChecked).toBeGreaterThanOrEqual(5);
    expect(worst).toBeLessThan(1e-5);
    expect(result.fills).toHaveLength(3);
    model.dispose();
    expect(be.liveBuffers()).toBe(0);
  });

  it('beam search: every beam row of every step, across blanks (logits within 1e-5), and the reported scores', () => {
    const be = createReferenceBackend();
    const context = [5, MASK, 13, 14, MASK, 8, 30, MASK];
    const finished: boolean[] = [];
    // boost 3.5: every blank is cut off at maxTokens; 3.75: every blank ends with eop
    for (const boost of [3.5, 3.75]) {
      const model = GlmModel.create(be, config, { stateDict: eopLeaningState(config, 21, boost) });
      const { worst, rowsChecked, result } = checkAgainstFullRecomputation(model, context, {
        ...base, maxTokens: 5, noRepeatNgramSize: 2, strategy: { kind: 'beam', numBeams: 3, lengthPenalty: 1 },
      });
      expect(rowsChecked).toBeGreaterThan(8);
      expect(worst).toBeLessThan(1e-5);
      finished.push(...result.finished);
      // each blank's log p and score, recomputed from scratch with the earlier winners as Part B
      const before: FedToken[] = [];
      result.fills.forEach((f) => {
        const lp = spanLogProb(model, context, before, f.maskPosition, f.tokens, f.finished);
        expect(f.logProb).toBeCloseTo(lp, 4);
        expect(f.score).toBeCloseTo(lp / (1 + f.tokens.length), 4);
        before.push([SOP, f.maskPosition, 1], ...f.tokens.map((t, k): FedToken => [t, f.maskPosition, k + 2]));
      });
      model.dispose();
    }
    expect(finished).toContain(true);
    expect(finished).toContain(false);
    expect(be.liveBuffers()).toBe(0);
  });
});

describe('beam search', () => {
  it('with one beam equals greedy (length penalty 0, or early stopping), constraints included', () => {
    const be = createReferenceBackend();
    for (const boost of [3.5, 4]) {
      const model = GlmModel.create(be, config, { stateDict: eopLeaningState(config, 21, boost) });
      const context = [5, MASK, 13, 14, MASK, 8, 30, MASK];
      for (const extra of [{}, { minTokens: 1, noRepeatNgramSize: 2 }]) {
        const g = fillBlanks(model, context, { ...base, maxTokens: 5, ...extra });
        const b0 = fillBlanks(model, context, { ...base, maxTokens: 5, ...extra, strategy: { kind: 'beam', numBeams: 1, lengthPenalty: 0 } });
        const bEarly = fillBlanks(model, context, { ...base, maxTokens: 5, ...extra, strategy: { kind: 'beam', numBeams: 1, earlyStopping: true } });
        expect(b0.blanks).toEqual(g.blanks);
        expect(b0.finished).toEqual(g.finished);
        expect(bEarly.blanks).toEqual(g.blanks);
        b0.fills.forEach((f, i) => expect(f.logProb).toBeCloseTo(g.fills[i]!.logProb, 5));
      }
      model.dispose();
    }
    expect(be.liveBuffers()).toBe(0);
  });

  it('finds the best-scoring span that exhaustive search over a small vocabulary finds', () => {
    const small = microConfig({ vocab_size: 8, initializer_range: 0.5, hidden_size: 16, num_attention_heads: 2 });
    const be = createReferenceBackend();
    const model = GlmModel.create(be, small, { stateDict: eopLeaningState(small, 5, 1.5) });
    const context = [4, MASK, 5, 6];
    const maskPos = 1;
    const maxTokens = 3;
    // Every span: k = 0..2 non-eop tokens then eop (length 1 + k), or 3 tokens cut off (length 4).
    const logpOf = new Map<string, Float64Array>();
    const logp = (prefix: number[]): Float64Array => {
      const key = prefix.join(',');
      if (!logpOf.has(key)) logpOf.set(key, logSoftmax(fullLogits(model, context, [[SOP, maskPos, 1], ...prefix.map((t, k): FedToken => [t, maskPos, k + 2])])));
      return logpOf.get(key)!;
    };
    const spans: Array<{ tokens: number[]; finished: boolean; logProb: number }> = [];
    const walk = (prefix: number[], sum: number): void => {
      const lp = logp(prefix);
      spans.push({ tokens: prefix, finished: true, logProb: sum + lp[EOP]! });
      for (let t = 0; t < small.vocab_size; t++) {
        if (t === EOP) continue;
        if (prefix.length + 1 === maxTokens) spans.push({ tokens: [...prefix, t], finished: false, logProb: sum + lp[t]! });
        else walk([...prefix, t], sum + lp[t]!);
      }
    };
    walk([], 0);
    expect(spans).toHaveLength(1 + 7 + 49 + 343);
    const winners = new Set<string>();
    for (const lengthPenalty of [0, 0.6, 1, 2]) {
      let best = spans[0]!;
      let bestScore = -Infinity;
      for (const s of spans) {
        const score = s.logProb / Math.pow(1 + s.tokens.length, lengthPenalty);
        if (score > bestScore) [best, bestScore] = [s, score];
      }
      // 64 = 8² beams keep every partial span, so beam search is exhaustive here.
      const r = fillBlanks(model, context, { ...base, maxTokens, strategy: { kind: 'beam', numBeams: 64, lengthPenalty } });
      expect(r.fills[0]!.tokens, `length penalty ${lengthPenalty}`).toEqual(best.tokens);
      expect(r.fills[0]!.finished).toBe(best.finished);
      expect(r.fills[0]!.score).toBeCloseTo(bestScore, 5);
      winners.add(JSON.stringify(best));
    }
    expect(winners.size).toBeGreaterThan(1); // the length penalty changes the answer on this model
    model.dispose();
    expect(be.liveBuffers()).toBe(0);
  });

  it('keeps the numBeams best hypotheses and decides done as Hugging Face does', () => {
    const h = new BeamHypotheses(2, 1, false);
    h.add({ tokens: [1], logProb: -4, finished: true, tokenLogProbs: [] }, 2); // score -2
    expect(h.isDone(-1, 3)).toBe(false); // not full yet
    h.add({ tokens: [2, 3], logProb: -3, finished: true, tokenLogProbs: [] }, 3); // score -1
    h.add({ tokens: [4], logProb: -5, finished: true, tokenLogProbs: [] }, 2); // -2.5: worse than the worst kept, dropped
    expect(h.size).toBe(2);
    h.add({ tokens: [5], logProb: -1, finished: true, tokenLogProbs: [] }, 2); // -0.5 evicts -2
    expect(h.all().map((x) => x.score)).toEqual([-0.5, -1]);
    expect(h.best().tokens).toEqual([5]);
    expect(h.isDone(-2, 3)).toBe(false); // an active beam at -2/3 could still beat the worst kept (-1)
    expect(h.isDone(-3.5, 3)).toBe(true); // -3.5/3 cannot
    expect(new BeamHypotheses(2, 1, true).isDone(0, 1)).toBe(false);
  });
});

describe('constraints', () => {
  it('bans tokens that would repeat an n-gram', () => {
    expect([...bannedNgramTokens([7, 8, 7], 2)]).toEqual([8]);
    expect([...bannedNgramTokens([7, 8, 9, 7, 8], 3)]).toEqual([9]);
    expect([...bannedNgramTokens([1, 2, 3], 1)].sort()).toEqual([1, 2, 3]);
    expect(bannedNgramTokens([1], 3).size).toBe(0);
  });

  it('no-repeat n-gram blocks repeats in greedy and beam decoding; min length delays eop', () => {
    const be = createReferenceBackend();
    const model = GlmModel.create(be, config, { stateDict: eopLeaningState(config, 21, 2) });
    const context = [5, MASK, 13, 14, MASK, 8, 30, MASK];
    const plain = fillBlanks(model, context, { ...base, maxTokens: 6 });
    const hasRepeatedBigram = (t: number[]): boolean => new Set(t.slice(1).map((x, i) => `${t[i]},${x}`)).size < t.length - 1;
    expect(plain.blanks.some(hasRepeatedBigram)).toBe(true); // this model loops (43 43 43 …)
    for (const strategy of [undefined, { kind: 'beam', numBeams: 3 } as const]) {
      const r = fillBlanks(model, context, { ...base, maxTokens: 6, noRepeatNgramSize: 2, ...(strategy ? { strategy } : {}) });
      for (const t of r.blanks) expect(hasRepeatedBigram(t), JSON.stringify(t)).toBe(false);
      const unigram = fillBlanks(model, context, { ...base, maxTokens: 6, noRepeatNgramSize: 1, ...(strategy ? { strategy } : {}) });
      for (const t of unigram.blanks) expect(new Set(t).size).toBe(t.length);
    }
    // A model that ends every blank at once (greedy: empty spans) gets at least minTokens tokens.
    const eager = GlmModel.create(be, config, { stateDict: eopLeaningState(config, 21, 6) });
    expect(fillBlanks(eager, context, { ...base, maxTokens: 6 }).blanks).toEqual([[], [], []]);
    for (const strategy of [undefined, { kind: 'beam', numBeams: 2 } as const]) {
      const r = fillBlanks(eager, context, { ...base, maxTokens: 6, minTokens: 2, ...(strategy ? { strategy } : {}) });
      for (const t of r.blanks) expect(t.length).toBeGreaterThanOrEqual(2);
    }
    eager.dispose();
    model.dispose();
    expect(be.liveBuffers()).toBe(0);
  });
});

describe('sampling', () => {
  it('restricts to top-k and the top-p nucleus and renormalises', () => {
    const logits = Float32Array.from([0.5, 0.3, 0.15, 0.05].map(Math.log));
    const all = samplingDistribution(logits);
    expect(Array.from(all.ids)).toEqual([0, 1, 2, 3]);
    expect(all.probs[0]).toBeCloseTo(0.5, 6);
    const nucleus = samplingDistribution(logits, { topP: 0.75 }); // 0.5 < 0.75 ≤ 0.8: two tokens
    expect(Array.from(nucleus.ids)).toEqual([0, 1]);
    expect(Array.from(nucleus.probs)).toEqual([expect.closeTo(0.625, 6), expect.closeTo(0.375, 6)]);
    expect(Array.from(samplingDistribution(logits, { topK: 3, topP: 0.99 }).ids)).toEqual([0, 1, 2]);
    expect(Array.from(samplingDistribution(logits, { topP: 0.01 }).ids)).toEqual([0]); // always at least one
    const hot = samplingDistribution(logits, { temperature: 2 });
    expect(hot.probs[0]).toBeCloseTo(Math.sqrt(0.5) / [0.5, 0.3, 0.15, 0.05].reduce((a, p) => a + Math.sqrt(p), 0), 6);
    expect(() => samplingDistribution(logits, { temperature: 0 })).toThrow(/temperature must be a number > 0, got 0/);
    expect(() => samplingDistribution(logits, { topP: 1.5 })).toThrow(/topP must be in \(0, 1\]/);
    expect(() => samplingDistribution(logits, { topK: -1 })).toThrow(/topK must be a whole number/);
    expect(() => samplingDistribution(Float32Array.of(-Infinity, -Infinity))).toThrow(/every token is banned/);
  });

  it('draws tokens with the probabilities of that distribution', () => {
    const logits = Float32Array.from([0.5, 0.3, 0.15, 0.05].map(Math.log));
    const rng = new Rng(11);
    const counts = [0, 0, 0, 0];
    const N = 20000;
    for (let i = 0; i < N; i++) counts[sampleToken(logits, { topK: 3 }, rng)]!++;
    const expected = [0.5, 0.3, 0.15].map((p) => (p / 0.95) * N);
    expect(counts[3]).toBe(0);
    expected.forEach((e, i) => expect(Math.abs(counts[i]! - e)).toBeLessThan(4 * Math.sqrt(e))); // within 4 sd
  });

  it('is deterministic for a seed, varies across seeds, and top-k 1 is greedy', () => {
    const be = createReferenceBackend();
    const model = GlmModel.create(be, config, { stateDict: eopLeaningState(config, 21, 3.5) });
    const context = [5, MASK, 13, 14, MASK, 8, 30, MASK];
    const sample = (seed: number, extra = {}): number[][] => fillBlanks(model, context, { ...base, maxTokens: 5, strategy: { kind: 'sample', rng: new Rng(seed), ...extra } }).blanks;
    expect(sample(7)).toEqual(sample(7));
    const outputs = new Set([1, 2, 3, 4, 5].map((s) => JSON.stringify(sample(s))));
    expect(outputs.size).toBeGreaterThan(1);
    expect(sample(9, { topK: 1 })).toEqual(fillBlanks(model, context, { ...base, maxTokens: 5 }).blanks);
    model.dispose();
    expect(be.liveBuffers()).toBe(0);
  });
});

describe('bad input', () => {
  it('names the option and the valid range', () => {
    const be = createReferenceBackend();
    const model = GlmModel.create(be, config, { rng: new Rng(1) });
    const ctx = [5, MASK, 6];
    expect(() => fillBlanks(model, [5, 6], { ...base, maxTokens: 3 })).toThrow(/no mask token \(looked for ids 1\)/);
    expect(() => fillBlanks(model, new Array(40).fill(MASK), { ...base, maxTokens: 3 })).toThrow(/context has 40 tokens; positions go up to 32/);
    expect(() => fillBlanks(model, ctx, { ...base, maxTokens: 3, minTokens: 4 })).toThrow(/minTokens must be a whole number in 0\.\.maxTokens \(3\), got 4/);
    expect(() => fillBlanks(model, ctx, { ...base, maxTokens: 3, strategy: { kind: 'beam', numBeams: 0 } })).toThrow(/numBeams must be a whole number ≥ 1, got 0/);
    expect(() => fillBlanks(model, ctx, { ...base, maxTokens: 3, strategy: { kind: 'greedy' }, choose: () => 4 })).toThrow(/either strategy or choose/);
    const cache = new KvCache(model, { batchSize: 1, capacity: 8 });
    cache.prefill({ inputIds: ctx, positionIds: [0, 1, 2], blockPositionIds: [0, 0, 0] });
    expect(() => cache.truncate(4)).toThrow(/length 4, expected 1\.\.3/);
    cache.truncate(2);
    expect(cache.length).toBe(2);
    cache.dispose();
    model.dispose();
    expect(be.liveBuffers()).toBe(0);
  });
});
