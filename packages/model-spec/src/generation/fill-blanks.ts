// Filling blanks left to right as the original generate_samples.py does: the context (Part A, the
// masks in place) is prefilled once; for each mask in order, a `<|startofpiece|>` at that mask's
// position starts its span, generated tokens follow at (mask position, 2, 3, …) until
// `<|endofpiece|>` or maxTokens; earlier fills stay in the cache, so later blanks see them.
// The end token itself is never fed back (as the original), and a span cut off by maxTokens has
// its last token fed together with the next blank's start token.
import { KvCache } from './kv-cache.js';
import type { GlmModel } from '../model/glm-model.js';

/** Picks the next token from one row of logits ([vocab_size]); greedy by default. Sampling plugs in here. */
export type NextTokenChooser = (logits: Float32Array, context: { blank: number; step: number }) => number;

export interface FillBlanksOptions {
  /** Token ids that mark a blank in the context ([MASK], [sMASK], [gMASK]). */
  maskIds: readonly number[];
  /** `<|startofpiece|>`. */
  sopId: number;
  /** `<|endofpiece|>`: ends a blank. */
  eopId: number;
  /** Most tokens generated per blank (the end token included). */
  maxTokens: number;
  /** Next-token rule; default greedy (argmax, lowest id on ties). */
  choose?: NextTokenChooser;
}

export interface FillBlanksResult {
  /** Generated tokens of each blank, in context order, without sop/eop. */
  blanks: number[][];
  /** Whether each blank ended with eop (false: cut off at maxTokens). */
  finished: boolean[];
  /** The context with each mask token replaced by its generated span. */
  filled: number[];
}

/** Index of the largest logit (the first on ties). */
export function argmax(logits: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < logits.length; i++) if (logits[i]! > logits[best]!) best = i;
  return best;
}

export const greedy: NextTokenChooser = (logits) => argmax(logits);

/**
 * Fills every blank of one context (token ids, Part A with positions 0..n-1) greedily — or with
 * `choose` — left to right, using the key/value cache.
 */
export function fillBlanks(model: GlmModel, context: ArrayLike<number>, options: FillBlanksOptions): FillBlanksResult {
  const { maskIds, sopId, eopId, maxTokens } = options;
  const choose = options.choose ?? greedy;
  if (!Number.isInteger(maxTokens) || maxTokens < 1) throw new RangeError(`fillBlanks: maxTokens must be a positive integer, got ${maxTokens}`);
  const n = context.length;
  if (n === 0) throw new RangeError('fillBlanks: the context is empty');
  const masks = new Set(maskIds);
  const maskPositions: number[] = [];
  for (let i = 0; i < n; i++) if (masks.has(context[i]!)) maskPositions.push(i);
  if (maskPositions.length === 0) throw new RangeError(`fillBlanks: the context holds no mask token (looked for ids ${maskIds.join(', ')})`);
  if (n > model.positionRows) {
    throw new RangeError(`fillBlanks: the context has ${n} tokens; positions go up to ${model.positionRows - 1} (max_sequence_length)`);
  }
  // Block positions run 1 (sop) .. maxTokens + 1 (a cut-off span's last token).
  if (maxTokens + 1 >= model.positionRows) throw new RangeError(`fillBlanks: maxTokens ${maxTokens} exceeds the block position table (${model.positionRows} rows)`);

  // Each blank feeds at most maxTokens + 1 tokens: sop, maxTokens − 1 generated ones, and a cut-off span's last one.
  const cache = new KvCache(model, { batchSize: 1, capacity: n + maskPositions.length * (maxTokens + 1) });
  try {
    cache.prefill({ inputIds: context, positionIds: Int32Array.from({ length: n }, (_, i) => i), blockPositionIds: new Int32Array(n) });
    const blanks: number[][] = [];
    const finished: boolean[] = [];
    // Tokens not yet fed to the model: [token, position, block position].
    let pending: Array<[number, number, number]> = [];
    maskPositions.forEach((maskPos, blank) => {
      pending.push([sopId, maskPos, 1]);
      const span: number[] = [];
      let ended = false;
      for (let step = 0; step < maxTokens; step++) {
        const logits = cache.decode(pending.map((p) => p[0]), pending.map((p) => p[1]), pending.map((p) => p[2]));
        const V = model.config.vocab_size;
        const next = choose(logits.subarray((pending.length - 1) * V, pending.length * V), { blank, step });
        pending = [];
        if (next === eopId) {
          ended = true;
          break;
        }
        span.push(next);
        // Fed at the next step — or, when this was the last step, together with the next blank's sop.
        pending.push([next, maskPos, span.length + 1]);
      }
      blanks.push(span);
      finished.push(ended);
    });
    const filled: number[] = [];
    let b = 0;
    for (let i = 0; i < n; i++) {
      if (masks.has(context[i]!)) filled.push(...blanks[b++]!);
      else filled.push(context[i]!);
    }
    return { blanks, finished, filled };
  } finally {
    cache.dispose();
  }
}
