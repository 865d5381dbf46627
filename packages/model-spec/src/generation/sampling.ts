// Next-token rules and logits processors for generation, each a small function over one row of
// logits ([vocab_size]) so they compose: processors ban tokens (min length, no-repeat n-gram) by
// setting their logit to -Infinity, then a rule picks (argmax, or a seeded sample after
// temperature, top-k and top-p). Every row is processed on its own, so top-p is right for any
// batch (the original's top-p sorts only the first row's probabilities).
import type { Rng } from '@blankglm/tensor';

/** log softmax of one row, accumulated in f64; -Infinity logits stay -Infinity. */
export function logSoftmax(logits: ArrayLike<number>): Float64Array {
  const n = logits.length;
  let max = -Infinity;
  for (let i = 0; i < n; i++) if (logits[i]! > max) max = logits[i]!;
  const out = new Float64Array(n);
  if (max === -Infinity) return out.fill(-Infinity);
  let sum = 0;
  for (let i = 0; i < n; i++) sum += Math.exp(logits[i]! - max);
  const logZ = max + Math.log(sum);
  for (let i = 0; i < n; i++) out[i] = logits[i]! - logZ;
  return out;
}

/**
 * Tokens that would repeat an n-gram of `generated` (HF NoRepeatNGramLogitsProcessor): with the
 * last n − 1 tokens as prefix, every token that followed the same prefix earlier is banned.
 */
export function bannedNgramTokens(generated: readonly number[], n: number): Set<number> {
  const banned = new Set<number>();
  if (!Number.isInteger(n) || n < 1 || generated.length < n - 1) return banned;
  const start = generated.length - (n - 1); // the current prefix is generated[start..]
  for (let i = 0; i + n <= generated.length; i++) {
    let same = true;
    for (let j = 0; j < n - 1 && same; j++) same = generated[i + j] === generated[start + j];
    if (same) banned.add(generated[i + n - 1]!);
  }
  return banned;
}

export interface LogitsConstraints {
  /** `<|endofpiece|>`, banned until `minTokens` tokens were generated. */
  eopId: number;
  /** Fewest tokens a blank gets before it may end (HF MinLengthLogitsProcessor on generated tokens). Default 0. */
  minTokens?: number;
  /** Ban repeating any n-gram of the blank's generated tokens (0: off). */
  noRepeatNgramSize?: number;
}

/** Applies the constraints in place to one row of logits or log-probabilities. */
export function applyConstraints(row: Float32Array | Float64Array, generated: readonly number[], c: LogitsConstraints): void {
  if (generated.length < (c.minTokens ?? 0)) row[c.eopId] = -Infinity;
  const n = c.noRepeatNgramSize ?? 0;
  if (n > 0) for (const t of bannedNgramTokens(generated, n)) row[t] = -Infinity;
}

export interface SamplingOptions {
  /** Divides the logits (default 1; must be > 0). */
  temperature?: number;
  /** Keep only the k most likely tokens (0 or undefined: all). */
  topK?: number;
  /** Keep the smallest set of most likely tokens whose probability reaches p (1 or undefined: all). */
  topP?: number;
}

/** Checks sampling options; the message names the option and its valid range. */
export function validateSamplingOptions(o: SamplingOptions): void {
  const t = o.temperature ?? 1;
  if (!(Number.isFinite(t) && t > 0)) throw new RangeError(`temperature must be a number > 0, got ${t}`);
  const k = o.topK ?? 0;
  if (!Number.isInteger(k) || k < 0) throw new RangeError(`topK must be a whole number ≥ 0 (0 = off), got ${k}`);
  const p = o.topP ?? 1;
  if (!(p > 0 && p <= 1)) throw new RangeError(`topP must be in (0, 1] (1 = off), got ${p}`);
}

/**
 * The distribution sampling draws from: softmax(logits / temperature) restricted to the top-k
 * tokens and then to the top-p nucleus (the smallest prefix of the tokens sorted by probability,
 * ties by id, whose mass reaches p; the token crossing p is kept, so at least one always is),
 * renormalised. Returns the kept token ids (most likely first) and their probabilities.
 */
export function samplingDistribution(logits: ArrayLike<number>, options: SamplingOptions = {}): { ids: Int32Array; probs: Float64Array } {
  validateSamplingOptions(options);
  const temperature = options.temperature ?? 1;
  const scaled = new Float64Array(logits.length);
  for (let i = 0; i < logits.length; i++) scaled[i] = logits[i]! / temperature;
  const logp = logSoftmax(scaled);
  const order: number[] = [];
  for (let i = 0; i < logp.length; i++) if (logp[i]! > -Infinity) order.push(i);
  if (order.length === 0) throw new RangeError('sampling: every token is banned (all logits are -Infinity)');
  order.sort((a, b) => logp[b]! - logp[a]! || a - b);
  let keep = order.length;
  const k = options.topK ?? 0;
  if (k > 0) keep = Math.min(keep, k);
  const p = options.topP ?? 1;
  if (p < 1) {
    let mass = 0;
    let i = 0;
    while (i < keep) {
      mass += Math.exp(logp[order[i]!]!);
      i++;
      if (mass >= p) break;
    }
    keep = i;
  }
  const ids = Int32Array.from(order.slice(0, keep));
  const probs = new Float64Array(keep);
  let total = 0;
  for (let i = 0; i < keep; i++) total += probs[i] = Math.exp(logp[ids[i]!]!);
  for (let i = 0; i < keep; i++) probs[i]! /= total;
  return { ids, probs };
}

/** Draws one token from `samplingDistribution(logits, options)` with one `rng.float()`. */
export function sampleToken(logits: ArrayLike<number>, options: SamplingOptions, rng: Rng): number {
  const { ids, probs } = samplingDistribution(logits, options);
  const u = rng.float();
  let acc = 0;
  for (let i = 0; i < ids.length; i++) {
    acc += probs[i]!;
    if (u < acc) return ids[i]!;
  }
  return ids[ids.length - 1]!; // u within rounding of 1
}
