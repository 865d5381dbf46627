// Filling blanks left to right as the original generate_samples.py does: the context (Part A, the
// masks in place) is prefilled once; for each mask in order, a `<|startofpiece|>` at that mask's
// position starts its span, generated tokens follow at (mask position, 2, 3, …) until
// `<|endofpiece|>` or maxTokens; earlier fills stay in the cache, so later blanks see them.
// The end token itself is never fed back (as the original), and a span cut off by maxTokens has
// its last token fed together with the next blank's start token.
//
// Strategies: greedy, seeded sampling (temperature, top-k, top-p) and beam search. Beam search runs
// per blank: the blank's beams are rows of the cache (`KvCache.reorder` duplicates, reorders and
// drops them); when the blank is done, the best hypothesis wins, the cache goes back to one row
// rewound to the end of the committed context (`truncate`), and the winner's sop + span are fed
// together with the next blank's sop — so blank i + 1 sees exactly blank i's best fill.
import type { Rng } from '@blankglm/tensor';
import { KvCache } from './kv-cache.js';
import { BeamHypotheses, type Hypothesis } from './beam-search.js';
import { applyConstraints, logSoftmax, sampleToken, validateSamplingOptions, type LogitsConstraints, type SamplingOptions } from './sampling.js';
import type { GlmModel } from '../model/glm-model.js';

/** Picks the next token from one row of logits ([vocab_size]); greedy by default. Sampling plugs in here. */
export type NextTokenChooser = (logits: Float32Array, context: { blank: number; step: number }) => number;

export type DecodingStrategy =
  | { kind: 'greedy' }
  | ({ kind: 'sample'; rng: Rng } & SamplingOptions)
  | {
      kind: 'beam';
      /** Beams kept per blank (≥ 1). */
      numBeams: number;
      /** score = Σ log p / length^lengthPenalty, length = sop + span tokens (default 1). */
      lengthPenalty?: number;
      /** Stop a blank as soon as numBeams hypotheses ended (default false, as GLM's seq2seq decoding). */
      earlyStopping?: boolean;
    };

/** A token fed to the model: [token id, position, block position]. */
export type FedToken = [token: number, position: number, blockPosition: number];

/** What the decoder saw at one step (for tracing and for checking the cache against full recomputation). */
export interface DecodeStepEvent {
  blank: number;
  step: number;
  /** Per cache row: every Part-B token fed after the context so far, this step's last. Valid during the call. */
  rows: ReadonlyArray<readonly FedToken[]>;
  /** Logits after each row's last fed token, [rows, vocab_size] (before constraints). */
  logits: Float32Array;
}

export interface FillBlanksOptions {
  /** Token ids that mark a blank in the context ([MASK], [sMASK], [gMASK]). */
  maskIds: readonly number[];
  /** `<|startofpiece|>`. */
  sopId: number;
  /** `<|endofpiece|>`: ends a blank. */
  eopId: number;
  /** Most tokens generated per blank (the end token included). */
  maxTokens: number;
  /** Fewest tokens per blank before `<|endofpiece|>` may come (default 0). */
  minTokens?: number;
  /** Never repeat an n-gram of a blank's generated tokens (default 0: off). */
  noRepeatNgramSize?: number;
  /** Default greedy. */
  strategy?: DecodingStrategy;
  /** A custom next-token rule instead of `strategy` (sees the constrained logits). */
  choose?: NextTokenChooser;
  onStep?: (event: DecodeStepEvent) => void;
}

/** One filled blank. */
export interface BlankFill {
  /** Index of its mask token in the context. */
  maskPosition: number;
  /** Which mask token it was ([MASK], [sMASK] or [gMASK] id). */
  maskId: number;
  /** Generated tokens, without sop/eop. */
  tokens: number[];
  /** Ended with eop (false: cut off at maxTokens). */
  finished: boolean;
  /** log p of each generated token under the model, then of eop when finished. */
  tokenLogProbs: number[];
  /** Σ tokenLogProbs. */
  logProb: number;
  /** What the strategy ranked by: beam search logProb / (1 + tokens)^lengthPenalty, else logProb. */
  score: number;
}

export interface FillBlanksResult {
  /** Generated tokens of each blank, in context order, without sop/eop. */
  blanks: number[][];
  /** Whether each blank ended with eop (false: cut off at maxTokens). */
  finished: boolean[];
  /** The context with each mask token replaced by its generated span. */
  filled: number[];
  /** Each blank with its scores. */
  fills: BlankFill[];
}

/** Index of the largest logit (the first on ties). */
export function argmax(logits: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < logits.length; i++) if (logits[i]! > logits[best]!) best = i;
  return best;
}

export const greedy: NextTokenChooser = (logits) => argmax(logits);

/** Position of every mask token in the context, in order. */
export function findMasks(context: ArrayLike<number>, maskIds: readonly number[]): number[] {
  const masks = new Set(maskIds);
  const out: number[] = [];
  for (let i = 0; i < context.length; i++) if (masks.has(context[i]!)) out.push(i);
  return out;
}

/**
 * Checks fillBlanks options against a model with `positionRows` rows in its position tables and
 * returns the positions of the context's mask tokens. `who` names the caller in the errors.
 */
export function checkFillBlanksOptions(positionRows: number, context: ArrayLike<number>, o: FillBlanksOptions, who = 'fillBlanks'): number[] {
  const n = context.length;
  const maskPositions = findMasks(context, o.maskIds);
  const { maxTokens } = o;
  if (!Number.isInteger(maxTokens) || maxTokens < 1) throw new RangeError(`${who}: maxTokens must be a positive integer, got ${maxTokens}`);
  const minTokens = o.minTokens ?? 0;
  if (!Number.isInteger(minTokens) || minTokens < 0 || minTokens > maxTokens) {
    throw new RangeError(`${who}: minTokens must be a whole number in 0..maxTokens (${maxTokens}), got ${minTokens}`);
  }
  const ngram = o.noRepeatNgramSize ?? 0;
  if (!Number.isInteger(ngram) || ngram < 0) throw new RangeError(`${who}: noRepeatNgramSize must be a whole number ≥ 0 (0 = off), got ${ngram}`);
  if (n === 0) throw new RangeError(`${who}: the context is empty`);
  if (maskPositions.length === 0) throw new RangeError(`${who}: the context holds no mask token (looked for ids ${o.maskIds.join(', ')})`);
  if (n > positionRows) {
    throw new RangeError(`${who}: the context has ${n} tokens; positions go up to ${positionRows - 1} (max_sequence_length)`);
  }
  // Block positions run 1 (sop) .. maxTokens + 1 (a cut-off span's last token).
  if (maxTokens + 1 >= positionRows) throw new RangeError(`${who}: maxTokens ${maxTokens} exceeds the block position table (${positionRows} rows)`);
  const s = o.strategy;
  if (s && o.choose) throw new RangeError(`${who}: give either strategy or choose, not both`);
  if (s?.kind === 'sample') validateSamplingOptions(s);
  if (s?.kind === 'beam') {
    if (!Number.isInteger(s.numBeams) || s.numBeams < 1) throw new RangeError(`${who}: numBeams must be a whole number ≥ 1, got ${s.numBeams}`);
    const lp = s.lengthPenalty ?? 1;
    if (!Number.isFinite(lp)) throw new RangeError(`${who}: lengthPenalty must be a finite number, got ${lp}`);
  }
  return maskPositions;
}

/** The result of filling `context`'s masks (at `maskPositions`) with `fills`, in context order. */
function fillResult(context: ArrayLike<number>, maskPositions: readonly number[], fills: BlankFill[]): FillBlanksResult {
  const filled: number[] = [];
  let b = 0;
  for (let i = 0; i < context.length; i++) {
    if (b < maskPositions.length && maskPositions[b] === i) filled.push(...fills[b++]!.tokens);
    else filled.push(context[i]!);
  }
  return { blanks: fills.map((f) => f.tokens), finished: fills.map((f) => f.finished), filled, fills };
}

/**
 * Greedy or sampled blank filling (one token per step, left to right) as a state machine, so that
 * any decoder with a key/value cache can drive it, synchronously or not — fillBlanks with the KV
 * cache, @blankglm/onnx with ONNX Runtime's asynchronous runs:
 *
 *     for (let feed = f.next(); feed; feed = f.next()) f.accept(decode(feed)); // after prefill(context)
 *     f.result();
 *
 * `next()` gives the tokens to feed ([token, position, block position], one or two: a cut-off
 * span's last token goes in with the next blank's sop), `accept` takes their logits [k, vocab].
 */
export class StepwiseFill {
  /** Every Part-B token fed so far (the cache row after the context). */
  private readonly fed: FedToken[] = [];
  private readonly fills: BlankFill[] = [];
  private readonly choose: NextTokenChooser;
  private pending: FedToken[] = [];
  private blank = -1;
  private step = 0;
  private tokens: number[] = [];
  private tokenLogProbs: number[] = [];

  /** `options` checked by checkFillBlanksOptions (`maskPositions` its answer); strategy greedy or sample. */
  constructor(
    private readonly context: ArrayLike<number>,
    private readonly maskPositions: readonly number[],
    private readonly options: FillBlanksOptions,
    private readonly vocab: number,
  ) {
    const strategy = options.strategy ?? { kind: 'greedy' };
    if (strategy.kind === 'beam') throw new RangeError('StepwiseFill: beam search feeds several rows; fillBlanks runs it');
    this.choose = options.choose ?? (strategy.kind === 'sample' ? (l: Float32Array) => sampleToken(l, strategy, strategy.rng) : greedy);
    this.startBlank();
  }

  /** The tokens to feed next, or null when every blank is filled. */
  next(): readonly FedToken[] | null {
    return this.blank < this.maskPositions.length ? this.pending : null;
  }

  /** Takes the logits [k, vocab] of the k tokens next() gave, and picks the next token. */
  accept(logits: Float32Array): void {
    const V = this.vocab;
    const k = this.pending.length;
    if (k === 0 || this.blank >= this.maskPositions.length) throw new Error('StepwiseFill.accept: nothing was fed (next() returned null)');
    if (logits.length !== k * V) throw new RangeError(`StepwiseFill.accept: expected ${k} × ${V} logits, got ${logits.length}`);
    this.fed.push(...this.pending);
    this.pending = [];
    const row = logits.slice((k - 1) * V, k * V);
    this.options.onStep?.({ blank: this.blank, step: this.step, rows: [this.fed], logits: row });
    const logp = logSoftmax(row);
    applyConstraints(row, this.tokens, this.options);
    const next = this.choose(row, { blank: this.blank, step: this.step });
    this.tokenLogProbs.push(logp[next]!);
    const maskPos = this.maskPositions[this.blank]!;
    const finished = next === this.options.eopId;
    if (!finished) {
      this.tokens.push(next);
      // Fed at the next step — or, when this was the last step, together with the next blank's sop.
      this.pending.push([next, maskPos, this.tokens.length + 1]);
    }
    if (finished || ++this.step === this.options.maxTokens) {
      const logProb = this.tokenLogProbs.reduce((a, b) => a + b, 0);
      const { tokens, tokenLogProbs } = this;
      this.fills.push({ maskPosition: maskPos, maskId: this.context[maskPos]!, tokens, finished, tokenLogProbs, logProb, score: logProb });
      this.startBlank();
    }
  }

  /** The fills, once next() has returned null. */
  result(): FillBlanksResult {
    if (this.next()) throw new Error(`StepwiseFill.result: blank ${this.blank} of ${this.maskPositions.length} is not filled yet`);
    return fillResult(this.context, this.maskPositions, this.fills);
  }

  private startBlank(): void {
    this.blank++;
    this.step = 0;
    this.tokens = [];
    this.tokenLogProbs = [];
    if (this.blank < this.maskPositions.length) this.pending.push([this.options.sopId, this.maskPositions[this.blank]!, 1]);
  }
}

/**
 * Fills every blank of one context (token ids, Part A with positions 0..n-1) left to right with
 * the key/value cache: greedily by default, or with `strategy` (sampling, beam search) or `choose`.
 */
export function fillBlanks(model: GlmModel, context: ArrayLike<number>, options: FillBlanksOptions): FillBlanksResult {
  const n = context.length;
  const maskPositions = checkFillBlanksOptions(model.positionRows, context, options);
  const { maxTokens } = options;
  const V = model.config.vocab_size;

  // Each blank feeds at most maxTokens + 1 tokens: sop, maxTokens − 1 generated ones, and a cut-off
  // span's last one (beam search: the winner's sop + span, fed again after the rewind).
  const cache = new KvCache(model, { batchSize: 1, capacity: n + maskPositions.length * (maxTokens + 1) });
  try {
    cache.prefill({ inputIds: context, positionIds: Int32Array.from({ length: n }, (_, i) => i), blockPositionIds: new Int32Array(n) });
    if (options.strategy?.kind !== 'beam') {
      const f = new StepwiseFill(context, maskPositions, options, V);
      for (let feed = f.next(); feed; feed = f.next()) f.accept(cache.decode(feed.map((p) => p[0]), feed.map((p) => p[1]), feed.map((p) => p[2])));
      return f.result();
    }
    return fillBeams(cache, V, context, maskPositions, options, options.strategy);
  } finally {
    cache.dispose();
  }
}

/** Beam search blank by blank, in a prefilled single-row cache. */
function fillBeams(
  cache: KvCache,
  V: number,
  context: ArrayLike<number>,
  maskPositions: readonly number[],
  options: FillBlanksOptions,
  strategy: Extract<DecodingStrategy, { kind: 'beam' }>,
): FillBlanksResult {
  const { sopId, maxTokens, onStep } = options;
  // Part-B tokens in the (single-row) cache so far, and tokens not yet fed to the model.
  let fed: FedToken[] = [];
  let pending: FedToken[] = [];
  const fills: BlankFill[] = [];
  maskPositions.forEach((maskPos, blank) => {
    pending.push([sopId, maskPos, 1]);
    const committed = cache.length + pending.length - 1; // after this blank's first call, without its sop
    const committedFed = [...fed, ...pending.slice(0, -1)];
    const best = beamBlank(cache, { blank, maskPos, fed, first: pending, strategy, constraints: options, maxTokens, V, onStep });
    cache.reorder([0]);
    cache.truncate(committed);
    fed = committedFed;
    pending = [[sopId, maskPos, 1], ...best.tokens.map((t, k): FedToken => [t, maskPos, k + 2])];
    fills.push({ maskPosition: maskPos, maskId: context[maskPos]!, ...best });
  });
  return fillResult(context, maskPositions, fills);
}

interface BeamContext {
  blank: number;
  maskPos: number;
  /** Part-B tokens already in the single cache row. */
  fed: readonly FedToken[];
  /** Fed in the first call: earlier blanks' pending tokens, then this blank's sop. */
  first: readonly FedToken[];
  strategy: Extract<DecodingStrategy, { kind: 'beam' }>;
  constraints: LogitsConstraints;
  maxTokens: number;
  V: number;
  onStep?: (event: DecodeStepEvent) => void;
}

interface Beam {
  tokens: number[];
  tokenLogProbs: number[];
  logProb: number;
  fed: FedToken[];
}

/**
 * Beam search for one blank (HF BeamSearchScorer as GLM's seq2seq decoder uses it): each step
 * ranks all (beam, token) continuations by Σ log p, takes the best 2·numBeams; an eop among the
 * first numBeams of them ends a hypothesis of length 1 + tokens, the others become the next
 * beams (numBeams of them). Without early stopping a blank is done when the best active beam,
 * normalised at the current length, cannot beat the worst of numBeams kept hypotheses; at
 * maxTokens the active beams are added unfinished. Leaves the cache with the last step's rows.
 */
function beamBlank(cache: KvCache, c: BeamContext): Hypothesis {
  const { numBeams } = c.strategy;
  const hyps = new BeamHypotheses(numBeams, c.strategy.lengthPenalty ?? 1, c.strategy.earlyStopping ?? false);
  const { eopId } = c.constraints;
  const V = c.V;
  let beams: Beam[] = [{ tokens: [], tokenLogProbs: [], logProb: 0, fed: [...c.fed, ...c.first] }];
  let logits = cache.decode(c.first.map((p) => p[0]), c.first.map((p) => p[1]), c.first.map((p) => p[2]));
  logits = logits.subarray((c.first.length - 1) * V, c.first.length * V);
  for (let step = 0; step < c.maxTokens; step++) {
    c.onStep?.({ blank: c.blank, step, rows: beams.map((b) => b.fed), logits });
    // Candidates: per beam its best 2·numBeams tokens (enough for the global top 2·numBeams).
    const candidates: Array<{ beam: number; token: number; logp: number; sum: number }> = [];
    beams.forEach((beam, bi) => {
      const logp = logSoftmax(logits.subarray(bi * V, (bi + 1) * V));
      applyConstraints(logp, beam.tokens, c.constraints);
      for (const token of topIndices(logp, 2 * numBeams)) candidates.push({ beam: bi, token, logp: logp[token]!, sum: beam.logProb + logp[token]! });
    });
    candidates.sort((a, b) => b.sum - a.sum || a.beam - b.beam || a.token - b.token);
    const next: Beam[] = [];
    const parents: number[] = []; // next[i] extends beams[parents[i]]
    const length = 1 + step; // sop + the tokens before this step
    for (let rank = 0; rank < Math.min(candidates.length, 2 * numBeams) && next.length < numBeams; rank++) {
      const cand = candidates[rank]!;
      const from = beams[cand.beam]!;
      if (cand.token === eopId) {
        if (rank < numBeams) hyps.add({ tokens: from.tokens, logProb: cand.sum, finished: true, tokenLogProbs: [...from.tokenLogProbs, cand.logp] }, length);
        continue;
      }
      const fedToken: FedToken = [cand.token, c.maskPos, from.tokens.length + 2];
      next.push({ tokens: [...from.tokens, cand.token], tokenLogProbs: [...from.tokenLogProbs, cand.logp], logProb: cand.sum, fed: [...from.fed, fedToken] });
      parents.push(cand.beam);
    }
    if (next.length === 0) break;
    if (hyps.isDone(Math.max(...next.map((b) => b.logProb)), length)) break;
    if (step === c.maxTokens - 1) {
      for (const b of next) hyps.add({ tokens: b.tokens, logProb: b.logProb, finished: false, tokenLogProbs: b.tokenLogProbs }, 1 + b.tokens.length);
      break;
    }
    // Rows of the next step: each new beam continues the row of the beam it extends.
    cache.reorder(parents);
    beams = next;
    logits = cache.decodeStep(beams.map((b) => b.tokens[b.tokens.length - 1]!), c.maskPos, step + 2);
  }
  if (hyps.size === 0) throw new Error(`fillBlanks: beam search for blank ${c.blank} ended without a hypothesis (every continuation is banned)`);
  return hyps.best();
}

/** Indices of the k largest finite values, largest first (ties: lower index first). */
function topIndices(values: Float64Array, k: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (v === -Infinity) continue;
    if (out.length === k && v <= values[out[k - 1]!]!) continue;
    let j = out.length < k ? out.length : k - 1;
    if (out.length < k) out.push(i);
    while (j > 0 && values[out[j - 1]!]! < v) {
      out[j] = out[j - 1]!;
      j--;
    }
    out[j] = i;
  }
  return out;
}
