import { describe, expect, it } from 'vitest';
import { createReferenceBackend } from '@blankglm/backend-ref';
import { Rng, type GlmBatch } from '@blankglm/tensor';
import { GlmModel, KvCache, StepwiseFill, argmax, checkFillBlanksOptions, fillBlanks, initParameters, type FedToken } from '../src/index.js';
import { EOP, MASK, SOP, microConfig } from './model-helpers.js';

const config = microConfig({ initializer_range: 0.2, num_layers: 3, hidden_size: 24, num_attention_heads: 3 });
const state = initParameters(config, new Rng(21));
const V = config.vocab_size;

/** One row: context (Part A, positions 0..n-1) + Part B tokens at (maskPos, 1..k), sep = n. */
function fullRow(context: number[], partB: Array<[number, number, number]>): GlmBatch {
  const n = context.length;
  const L = n + partB.length;
  return {
    batchSize: 1, seqLength: L, numSegments: 1, sep: new Int32Array([n]),
    inputIds: Int32Array.from([...context, ...partB.map((t) => t[0])]),
    positionIds: Int32Array.from([...context.map((_, i) => i), ...partB.map((t) => t[1])]),
    blockPositionIds: Int32Array.from([...context.map(() => 0), ...partB.map((t) => t[2])]),
  };
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i]! - b[i]!));
  return d;
}

describe('key/value cache', () => {
  it('decodes step by step to the same logits as one forward over the whole sequence', () => {
    const be = createReferenceBackend();
    const model = GlmModel.create(be, config, { stateDict: state });
    const context = [5, 9, 13, MASK, 21, 8, 30];
    const maskPos = 3;
    const generated = [40, 41, 42, 43];
    const partB: Array<[number, number, number]> = [SOP, ...generated].map((t, k) => [t, maskPos, k + 1]);
    const full = model.forward(fullRow(context, partB), { logitsAt: partB.map((_, j) => ({ row: 0, position: context.length + j })) }).logits!.values;

    const cache = new KvCache(model, { batchSize: 1, capacity: 16 });
    cache.prefill({ inputIds: context, positionIds: context.map((_, i) => i), blockPositionIds: context.map(() => 0) });
    expect(cache.length).toBe(context.length);
    let worst = 0;
    partB.forEach(([token, pos, block], j) => {
      const step = cache.decodeStep(token, pos, block);
      expect(step.length).toBe(V);
      worst = Math.max(worst, maxAbsDiff(step, full.subarray(j * V, (j + 1) * V)));
    });
    expect(worst).toBeLessThan(1e-5);
    expect(cache.length).toBe(context.length + partB.length);
    // several tokens in one decode call: causal among themselves, same logits
    const cache2 = new KvCache(model, { batchSize: 1, capacity: 16 });
    cache2.prefill({ inputIds: context, positionIds: context.map((_, i) => i), blockPositionIds: context.map(() => 0) });
    const multi = cache2.decode(partB.map((t) => t[0]), partB.map((t) => t[1]), partB.map((t) => t[2]));
    expect(maxAbsDiff(multi, full)).toBeLessThan(1e-5);
    expect(() => cache2.decode(new Array(10).fill(4), new Array(10).fill(0), new Array(10).fill(1))).toThrow(/exceed the capacity of 16/);
    cache.dispose();
    cache2.dispose();
    model.dispose();
    expect(be.liveBuffers()).toBe(0);
  });

  it('handles a batch of left-padded contexts and reorders rows (duplicating and dropping)', () => {
    const be = createReferenceBackend();
    const model = GlmModel.create(be, config, { stateDict: state });
    const contexts = [[5, 9, 13, MASK, 21, 8, 30], [17, MASK, 4, 50, 12]];
    const maskPositions = [3, 1];
    const n = 7;
    const pad = contexts.map((c) => n - c.length);
    const inputIds = contexts.flatMap((c, b) => [...new Array<number>(pad[b]!).fill(0), ...c]);
    const positionIds = contexts.flatMap((c, b) => [...new Array<number>(pad[b]!).fill(0), ...c.map((_, i) => i)]);
    const cache = new KvCache(model, { batchSize: 2, capacity: 12 });
    cache.prefill({ inputIds, positionIds, blockPositionIds: new Array(2 * n).fill(0), rowStart: pad });
    const tokens = [
      [SOP, 33, 34, 35],
      [SOP, 44, 45, 46],
    ];
    // two steps for both rows, then rows become [1, 0, 1] and decoding continues
    const steps: Float32Array[] = [];
    for (let k = 0; k < 2; k++) steps.push(cache.decodeStep([tokens[0]![k]!, tokens[1]![k]!], maskPositions, k + 1));
    cache.reorder([1, 0, 1]);
    expect(cache.batchSize).toBe(3);
    expect(Array.from(cache.rowStart)).toEqual([2, 0, 2]);
    const rowsAfter = [1, 0, 1];
    const later: Float32Array[] = [];
    for (let k = 2; k < 4; k++) later.push(cache.decodeStep(rowsAfter.map((r) => tokens[r]![k]!), rowsAfter.map((r) => maskPositions[r]!), k + 1));

    for (let r = 0; r < 2; r++) {
      const partB = tokens[r]!.map((t, k): [number, number, number] => [t, maskPositions[r]!, k + 1]);
      const full = model.forward(fullRow(contexts[r]!, partB), { logitsAt: partB.map((_, j) => ({ row: 0, position: contexts[r]!.length + j })) }).logits!.values;
      for (let k = 0; k < 2; k++) expect(maxAbsDiff(steps[k]!.subarray(r * V, (r + 1) * V), full.subarray(k * V, (k + 1) * V)), `row ${r} step ${k}`).toBeLessThan(1e-5);
      rowsAfter.forEach((src, b) => {
        if (src !== r) return;
        for (let k = 2; k < 4; k++) expect(maxAbsDiff(later[k - 2]!.subarray(b * V, (b + 1) * V), full.subarray(k * V, (k + 1) * V)), `row ${b} step ${k}`).toBeLessThan(1e-5);
      });
    }
    expect(be.checkGuards()).toEqual([]); // cache appends and reorders stay inside their buffers
    expect(() => cache.reorder([3])).toThrow(/indices\[0\] = 3, expected 0\.\.2/);
    expect(() => cache.decodeStep([1, 2], 0, 1)).toThrow(/tokens has 2 entries, expected one per row \(3\)/);
    expect(() => cache.decodeStep(64, 0, 1)).toThrow(/inputIds\[row 0\]\[index 0\] = 64, expected a token id in 0\.\.63/);
    expect(() => cache.decodeStep(4, 33, 1)).toThrow(/positionIds\[row 0\]\[index 0\] = 33/);
    cache.dispose();
    model.dispose();
    expect(be.liveBuffers()).toBe(0);
  });
});

describe('fillBlanks', () => {
  it('fills several blanks left to right greedily, each seeing earlier fills, as full recomputation does', () => {
    const be = createReferenceBackend();
    const model = GlmModel.create(be, config, { stateDict: state });
    const context = [5, MASK, 13, 14, MASK, 8, 30];
    const maxTokens = 3;
    const result = fillBlanks(model, context, { maskIds: [MASK], sopId: SOP, eopId: EOP, maxTokens });

    // The same procedure by full recomputation: Part B = everything fed so far, logits at its end.
    const fed: Array<[number, number, number]> = [];
    const blanks: number[][] = [];
    for (const maskPos of [1, 4]) {
      fed.push([SOP, maskPos, 1]);
      const span: number[] = [];
      for (let step = 0; step < maxTokens; step++) {
        const batch = fullRow(context, fed);
        const logits = model.forward(batch, { logitsAt: [{ row: 0, position: batch.seqLength - 1 }] }).logits!.values;
        const next = argmax(logits);
        if (next === EOP) break;
        span.push(next);
        fed.push([next, maskPos, span.length + 1]);
      }
      blanks.push(span);
    }
    expect(result.blanks).toEqual(blanks);
    expect(result.filled).toEqual([5, ...blanks[0]!, 13, 14, ...blanks[1]!, 8, 30]);
    expect(result.finished).toEqual(blanks.map((b) => b.length < maxTokens));
    expect(() => fillBlanks(model, [5, 6], { maskIds: [MASK], sopId: SOP, eopId: EOP, maxTokens })).toThrow(/no mask token/);
    model.dispose();
    expect(be.liveBuffers()).toBe(0);
  });

  it('stops a blank at the end-of-piece token, which it never feeds back', () => {
    const be = createReferenceBackend();
    const model = GlmModel.create(be, config, { stateDict: state });
    // A chooser that emits 7, 8 then eop for each blank.
    const script = [7, 8, EOP];
    const result = fillBlanks(model, [5, MASK, 6, MASK], { maskIds: [MASK], sopId: SOP, eopId: EOP, maxTokens: 5, choose: (_l, { step }) => script[step]! });
    expect(result.blanks).toEqual([[7, 8], [7, 8]]);
    expect(result.finished).toEqual([true, true]);
    expect(result.filled).toEqual([5, 7, 8, 6, 7, 8]);
    model.dispose();
    expect(be.liveBuffers()).toBe(0);
  });

  it('StepwiseFill feeds any decoder what fillBlanks feeds the cache: sop, each span token once, a cut-off one with the next sop', () => {
    const VOCAB = 12;
    const context = [5, MASK, 6, MASK, MASK];
    const options = { maskIds: [MASK], sopId: SOP, eopId: EOP, maxTokens: 2, choose: (_l: Float32Array, { blank, step }: { blank: number; step: number }) => (blank === 1 ? EOP : 7 + step) };
    const f = new StepwiseFill(context, checkFillBlanksOptions(config.max_sequence_length + 1, context, options), options, VOCAB);
    const feeds: FedToken[][] = [];
    for (let feed = f.next(); feed; feed = f.next()) {
      feeds.push([...feed]);
      f.accept(new Float32Array(feed.length * VOCAB));
    }
    expect(feeds).toEqual([
      [[SOP, 1, 1]],
      [[7, 1, 2]],
      [[8, 1, 3], [SOP, 3, 1]], // blank 0 cut off at maxTokens: its last token goes in with blank 1's sop
      [[SOP, 4, 1]], // blank 1 ended at once with eop, which is never fed
      [[7, 4, 2]],
    ]);
    const r = f.result();
    expect(r.blanks).toEqual([[7, 8], [], [7, 8]]);
    expect(r.finished).toEqual([false, true, false]);
    expect(r.filled).toEqual([5, 7, 8, 6, 7, 8]);
    expect(() => f.accept(new Float32Array(VOCAB))).toThrow(/nothing was fed/);
    const g = new StepwiseFill(context, [1, 3, 4], options, VOCAB);
    expect(() => g.accept(new Float32Array(VOCAB + 1))).toThrow(/expected 1 × 12 logits, got 13/);
    expect(() => g.result()).toThrow(/blank 0 of 3 is not filled yet/);
    expect(() => new StepwiseFill(context, [1], { ...options, strategy: { kind: 'beam', numBeams: 2 }, choose: undefined }, VOCAB)).toThrow(/beam search/);
  });
});
