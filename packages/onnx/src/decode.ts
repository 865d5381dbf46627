// Incremental decoding through the exported graph's past/present key-value tensors, and blank
// filling on top of it with the same rule as model-spec's `fillBlanks` (generate_samples.py): one
// context row, prefilled bidirectionally; each blank starts with sop at its mask's position;
// generated tokens follow at (mask position, 2, 3, …) until eop; earlier fills stay visible.
import { applyConstraints, logSoftmax, sampleToken, type BlankFill, type DecodingStrategy } from '@blankglm/model-spec';
import { GLM_ONNX_NAMES } from './glm-graph.js';
import type { OnnxGlm, OrtTensorLike } from './runner.js';

/** Key/value cache of one row for an ONNX GLM exported with past key/values. */
export class OnnxGlmDecoder {
  private past: Record<string, OrtTensorLike> = {};
  private cached = 0;
  private sep = 0;

  constructor(readonly glm: OnnxGlm) {
    if (!glm.pastKeyValues) throw new RangeError('incremental decoding needs a model exported with past key/values (blankglm export-onnx without --no-past)');
  }

  /** Tokens processed so far. */
  get length(): number {
    return this.cached;
  }

  /** Runs the context (Part A: positions 0..n-1, block position 0, bidirectional); returns its logits [n, vocab]. */
  async prefill(context: ArrayLike<number>): Promise<Float32Array> {
    if (this.cached !== 0) throw new Error('prefill: the cache already holds tokens');
    const n = context.length;
    this.sep = n;
    return this.run(context, Array.from({ length: n }, (_, i) => i), new Array<number>(n).fill(0));
  }

  /** Appends tokens at the given 2D positions (Part B: they see the context and earlier tokens causally); returns their logits [k, vocab]. */
  async decode(tokens: ArrayLike<number>, positions: ArrayLike<number>, blockPositions: ArrayLike<number>): Promise<Float32Array> {
    if (this.cached === 0) throw new Error('decode: prefill the context first');
    return this.run(tokens, positions, blockPositions);
  }

  private async run(tokens: ArrayLike<number>, positions: ArrayLike<number>, blockPositions: ArrayLike<number>): Promise<Float32Array> {
    const { ort, config } = this.glm;
    const k = tokens.length;
    if (k === 0 || positions.length !== k || blockPositions.length !== k) throw new RangeError(`decode: ${k} tokens with ${positions.length} positions and ${blockPositions.length} block positions`);
    const rows = config.max_sequence_length + 1;
    for (let i = 0; i < k; i++) {
      if (tokens[i]! < 0 || tokens[i]! >= config.vocab_size) throw new RangeError(`token ${tokens[i]} at ${i} is outside the vocabulary (0..${config.vocab_size - 1})`);
      if (positions[i]! < 0 || positions[i]! >= rows || blockPositions[i]! < 0 || blockPositions[i]! >= rows) {
        throw new RangeError(`position (${positions[i]}, ${blockPositions[i]}) at ${i} is outside the position tables (0..${rows - 1})`);
      }
    }
    const P = this.cached;
    const T = P + k;
    const pos = new BigInt64Array(2 * k);
    for (let i = 0; i < k; i++) {
      pos[i] = BigInt(positions[i]!);
      pos[k + i] = BigInt(blockPositions[i]!);
    }
    let mask: OrtTensorLike;
    if (this.glm.mask === 'sep') {
      mask = new ort.Tensor('int64', BigInt64Array.of(BigInt(this.sep)), [1]);
    } else {
      const m = new Float32Array(k * T); // [1, 1, k, T]: key j visible when j < sep or j ≤ P + i
      for (let i = 0; i < k; i++) m.fill(1, i * T, i * T + Math.max(this.sep, P + i + 1));
      mask = new ort.Tensor('float32', m, [1, 1, k, T]);
    }
    const feeds: Record<string, OrtTensorLike> = {
      [GLM_ONNX_NAMES.inputIds]: new ort.Tensor('int64', BigInt64Array.from(tokens as ArrayLike<number>, (t) => BigInt(t)), [1, k]),
      [GLM_ONNX_NAMES.positionIds]: new ort.Tensor('int64', pos, [1, 2, k]),
      [GLM_ONNX_NAMES.attentionMask]: mask,
    };
    const heads = config.num_attention_heads;
    const d = config.hidden_size / heads;
    for (let l = 0; l < config.num_layers; l++) {
      for (const [pastName] of [[GLM_ONNX_NAMES.pastKey(l)], [GLM_ONNX_NAMES.pastValue(l)]] as const) {
        feeds[pastName] = this.past[pastName] ?? new ort.Tensor('float32', new Float32Array(0), [1, heads, 0, d]);
      }
    }
    const out = await this.glm.session.run(feeds);
    const next: Record<string, OrtTensorLike> = {};
    for (let l = 0; l < config.num_layers; l++) {
      next[GLM_ONNX_NAMES.pastKey(l)] = out[GLM_ONNX_NAMES.presentKey(l)]!;
      next[GLM_ONNX_NAMES.pastValue(l)] = out[GLM_ONNX_NAMES.presentValue(l)]!;
    }
    for (const t of Object.values(this.past)) t.dispose?.();
    this.past = next;
    this.cached = T;
    return out[GLM_ONNX_NAMES.logits]!.data as Float32Array;
  }

  dispose(): void {
    for (const t of Object.values(this.past)) t.dispose?.();
    this.past = {};
  }
}

export interface OnnxFillOptions {
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
  /** Greedy (default) or seeded sampling, as model-spec's fillBlanks; beam search is not available here. */
  strategy?: DecodingStrategy;
  /** A custom next-token rule over one (constrained) logits row instead of `strategy`. */
  choose?: (logits: Float32Array, context: { blank: number; step: number }) => number;
}

export interface OnnxFillResult {
  /** Generated tokens of each blank, in context order, without sop/eop. */
  blanks: number[][];
  /** Whether each blank ended with eop (false: cut off at maxTokens). */
  finished: boolean[];
  /** The context with each mask token replaced by its generated span. */
  filled: number[];
  /** Each blank with its scores (model-spec's BlankFill). */
  fills: BlankFill[];
}

function argmax(row: Float32Array): number {
  let best = 0;
  for (let i = 1; i < row.length; i++) if (row[i]! > row[best]!) best = i;
  return best;
}

/**
 * model-spec's `fillBlanks` (greedy or seeded sampling, min tokens, no-repeat n-grams) over an ONNX
 * GLM: the same fed tokens, positions, masks and constraints, asynchronous because ONNX Runtime
 * runs are. Beam search needs cache row reordering, which this decoder does not do.
 */
export async function fillBlanksOnnx(glm: OnnxGlm, context: ArrayLike<number>, options: OnnxFillOptions): Promise<OnnxFillResult> {
  const { maskIds, sopId, eopId, maxTokens } = options;
  const strategy = options.strategy ?? { kind: 'greedy' };
  if (strategy.kind === 'beam') throw new RangeError('fillBlanksOnnx: beam search is not available on the ONNX engine; use greedy or sample');
  if (options.choose && options.strategy) throw new RangeError('fillBlanksOnnx: give either strategy or choose, not both');
  const choose =
    options.choose ?? (strategy.kind === 'sample' ? (row: Float32Array): number => sampleToken(row, strategy, strategy.rng) : argmax);
  const constraints = { eopId, minTokens: options.minTokens ?? 0, noRepeatNgramSize: options.noRepeatNgramSize ?? 0 };
  if (!Number.isInteger(maxTokens) || maxTokens < 1) throw new RangeError(`fillBlanks: maxTokens must be a positive integer, got ${maxTokens}`);
  const n = context.length;
  if (n === 0) throw new RangeError('fillBlanks: the context is empty');
  const rows = glm.config.max_sequence_length + 1;
  const masks = new Set(maskIds);
  const maskPositions: number[] = [];
  for (let i = 0; i < n; i++) if (masks.has(context[i]!)) maskPositions.push(i);
  if (maskPositions.length === 0) throw new RangeError(`fillBlanks: the context holds no mask token (looked for ids ${maskIds.join(', ')})`);
  if (n > rows) throw new RangeError(`fillBlanks: the context has ${n} tokens; positions go up to ${rows - 1} (max_sequence_length)`);
  if (maxTokens + 1 >= rows) throw new RangeError(`fillBlanks: maxTokens ${maxTokens} exceeds the block position table (${rows} rows)`);
  const V = glm.config.vocab_size;
  const decoder = new OnnxGlmDecoder(glm);
  try {
    await decoder.prefill(context);
    const fills: BlankFill[] = [];
    let pending: Array<[number, number, number]> = []; // [token, position, block position] not yet fed
    for (let blank = 0; blank < maskPositions.length; blank++) {
      const maskPos = maskPositions[blank]!;
      pending.push([sopId, maskPos, 1]);
      const tokens: number[] = [];
      const tokenLogProbs: number[] = [];
      let finished = false;
      for (let step = 0; step < maxTokens; step++) {
        const logits = await decoder.decode(pending.map((p) => p[0]), pending.map((p) => p[1]), pending.map((p) => p[2]));
        const row = logits.slice((pending.length - 1) * V, pending.length * V);
        const logp = logSoftmax(row);
        applyConstraints(row, tokens, constraints);
        const next = choose(row, { blank, step });
        pending = [];
        tokenLogProbs.push(logp[next]!);
        if (next === eopId) {
          finished = true;
          break;
        }
        tokens.push(next);
        // Fed at the next step — or, when this was the last step, together with the next blank's sop.
        pending.push([next, maskPos, tokens.length + 1]);
      }
      const logProb = tokenLogProbs.reduce((a, b) => a + b, 0);
      fills.push({ maskPosition: maskPos, maskId: context[maskPos]!, tokens, finished, tokenLogProbs, logProb, score: logProb });
    }
    const filled: number[] = [];
    let b = 0;
    for (let i = 0; i < n; i++) {
      if (b < maskPositions.length && maskPositions[b] === i) filled.push(...fills[b++]!.tokens);
      else filled.push(context[i]!);
    }
    return { blanks: fills.map((f) => f.tokens), finished: fills.map((f) => f.finished), filled, fills };
  } finally {
    decoder.dispose();
  }
}
