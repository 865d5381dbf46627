// Shared test helpers for the model, training and generation tests: micro configs and GLM samples
// built by hand exactly as glm-reference §1.6 (make_block_data, spans in left-to-right order).
import type { GlmBatch } from '@blankglm/tensor';
import type { GlmConfig } from '../src/index.js';

export const MASK = 1;
export const SOP = 2;
export const EOP = 3;
/** Text tokens are drawn from FIRST_TEXT_TOKEN.. so they never collide with the special ids. */
export const FIRST_TEXT_TOKEN = 4;

export function microConfig(overrides: Partial<GlmConfig> = {}): GlmConfig {
  return {
    model_type: 'blankglm',
    num_layers: 2,
    vocab_size: 64,
    hidden_size: 16,
    num_attention_heads: 2,
    max_sequence_length: 32,
    embedding_dropout_prob: 0,
    attention_dropout_prob: 0,
    output_dropout_prob: 0,
    block_position_encoding: true,
    attention_scale: 1,
    initializer_range: 0.02,
    hidden_act: 'gelu_tanh',
    layernorm_epsilon: 1e-5,
    tokenizer_family: 'bert',
    ...overrides,
  };
}

/** One GLM sample (§1.6) before batching. */
export interface Sample {
  inputIds: number[];
  positionIds: number[];
  blockPositionIds: number[];
  targetIds: number[];
  lossMask: number[];
  sep: number;
}

/** Blank-infilling layout of `text` with spans [start, end) (sorted, disjoint), predicted in the given order. */
export function blankSample(text: readonly number[], spans: ReadonlyArray<[number, number]>, order?: readonly number[]): Sample {
  const inSpan = new Array<boolean>(text.length).fill(false);
  for (const [s, e] of spans) for (let i = s + 1; i < e; i++) inSpan[i] = true;
  // Part-A positions: each span collapses to the slot of its mask token.
  const pos: number[] = [];
  let p = -1;
  for (let i = 0; i < text.length; i++) {
    if (!inSpan[i]) p++;
    pos.push(p);
  }
  const a: Sample = { inputIds: [], positionIds: [], blockPositionIds: [], targetIds: [], lossMask: [], sep: 0 };
  const starts = new Map(spans.map(([s, e]) => [s, e]));
  for (let i = 0; i < text.length; ) {
    const end = starts.get(i);
    const token = end !== undefined ? MASK : text[i]!;
    a.inputIds.push(token);
    a.targetIds.push(token);
    a.positionIds.push(pos[i]!);
    a.blockPositionIds.push(0);
    a.lossMask.push(0);
    i = end ?? i + 1;
  }
  a.sep = a.inputIds.length;
  for (const k of order ?? spans.map((_, i) => i)) {
    const [s, e] = spans[k]!;
    const span = text.slice(s, e);
    const inputs = [SOP, ...span];
    const targets = [...span, EOP];
    inputs.forEach((t, j) => {
      a.inputIds.push(t);
      a.targetIds.push(targets[j]!);
      a.positionIds.push(pos[s]!);
      a.blockPositionIds.push(j + 1);
      a.lossMask.push(1);
    });
  }
  return a;
}

/** One sample per row, right-padded to `seqLength` with padding segments (-1) after sep. */
export function rowsBatch(samples: readonly Sample[], seqLength = Math.max(...samples.map((s) => s.inputIds.length))): GlmBatch {
  const B = samples.length;
  const L = seqLength;
  const batch: GlmBatch = {
    batchSize: B, seqLength: L, numSegments: 1,
    inputIds: new Int32Array(B * L), positionIds: new Int32Array(B * L), blockPositionIds: new Int32Array(B * L),
    targetIds: new Int32Array(B * L), lossMask: new Uint8Array(B * L), sep: new Int32Array(B), segmentIds: new Int32Array(B * L).fill(-1),
  };
  samples.forEach((s, b) => {
    batch.inputIds.set(s.inputIds, b * L);
    batch.positionIds.set(s.positionIds, b * L);
    batch.blockPositionIds.set(s.blockPositionIds, b * L);
    batch.targetIds!.set(s.targetIds, b * L);
    batch.lossMask!.set(s.lossMask, b * L);
    batch.segmentIds!.fill(0, b * L, b * L + s.inputIds.length);
    batch.sep[b] = s.sep;
  });
  return batch;
}

/** Several samples packed into one row as segments (each keeps its own positions). */
export function packedRow(samples: readonly Sample[], seqLength?: number): GlmBatch {
  const total = samples.reduce((n, s) => n + s.inputIds.length, 0);
  const L = seqLength ?? total;
  const S = samples.length;
  const batch: GlmBatch = {
    batchSize: 1, seqLength: L, numSegments: S,
    inputIds: new Int32Array(L), positionIds: new Int32Array(L), blockPositionIds: new Int32Array(L),
    targetIds: new Int32Array(L), lossMask: new Uint8Array(L), sep: new Int32Array(S), segmentIds: new Int32Array(L).fill(-1),
  };
  let at = 0;
  samples.forEach((s, k) => {
    batch.inputIds.set(s.inputIds, at);
    batch.positionIds.set(s.positionIds, at);
    batch.blockPositionIds.set(s.blockPositionIds, at);
    batch.targetIds!.set(s.targetIds, at);
    batch.lossMask!.set(s.lossMask, at);
    batch.segmentIds!.fill(k, at, at + s.inputIds.length);
    batch.sep[k] = at + s.sep;
    at += s.inputIds.length;
  });
  return batch;
}

/** A text of n tokens that continues a hidden arithmetic pattern (learnable from context). */
export function patternText(n: number, start: number, stride: number, alphabet = 24): number[] {
  return Array.from({ length: n }, (_, i) => FIRST_TEXT_TOKEN + ((start + i * stride) % alphabet));
}
