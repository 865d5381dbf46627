// Incremental decoding through the exported graph's past/present key-value tensors, and blank
// filling on top of it with the same rule as model-spec's `fillBlanks` (generate_samples.py): one
// context row, prefilled bidirectionally; each blank starts with sop at its mask's position;
// generated tokens follow at (mask position, 2, 3, …) until eop; earlier fills stay visible.
import { checkFillBlanksOptions, StepwiseFill, type FillBlanksOptions, type FillBlanksResult } from '@blankglm/model-spec';
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

/** model-spec's FillBlanksOptions without beam search (it needs cache rows reordered) or onStep. */
export type OnnxFillOptions = Omit<FillBlanksOptions, 'onStep'>;

/** model-spec's FillBlanksResult. */
export type OnnxFillResult = FillBlanksResult;

/**
 * model-spec's `fillBlanks` (greedy or seeded sampling, min tokens, no-repeat n-grams) over an ONNX
 * GLM: the same state machine (`StepwiseFill`), so the same fed tokens, positions, masks and
 * constraints, asynchronous because ONNX Runtime runs are. Beam search needs cache row reordering,
 * which this decoder does not do.
 */
export async function fillBlanksOnnx(glm: OnnxGlm, context: ArrayLike<number>, options: OnnxFillOptions): Promise<OnnxFillResult> {
  if (options.strategy?.kind === 'beam') throw new RangeError('fillBlanksOnnx: beam search is not available on the ONNX engine; use greedy or sample');
  const maskPositions = checkFillBlanksOptions(glm.config.max_sequence_length + 1, context, options, 'fillBlanksOnnx');
  const fill = new StepwiseFill(context, maskPositions, options, glm.config.vocab_size);
  const decoder = new OnnxGlmDecoder(glm);
  try {
    await decoder.prefill(context);
    for (let feed = fill.next(); feed; feed = fill.next()) {
      fill.accept(await decoder.decode(feed.map((p) => p[0]), feed.map((p) => p[1]), feed.map((p) => p[2])));
    }
    return fill.result();
  } finally {
    decoder.dispose();
  }
}
