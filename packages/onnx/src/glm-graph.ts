// The GLM forward (glm-reference §2.1) as an ONNX graph, opset 17 (IR version 8).
//
// Inputs (B = batch, L = new tokens, P = cached tokens, T = P + L; all axes dynamic):
//   input_ids       int64 [B, L]
//   position_ids    int64 [B, 2, L]            row 0: positions, row 1: block positions
//   attention_mask  int64 [B] ("sep" models)  where each row's Part B starts (absolute index in T)
//                   float [B, 1, L, T] ("matrix" models): 1 = query attends to key, 0 = not (packed rows)
//   past_key_<l>, past_value_<l>   float [B, heads, P, head_dim]   (models exported with past key/values;
//                                   P may be 0 for a plain forward)
// Outputs:
//   logits          float [B, L, vocab_size]
//   present_key_<l>, present_value_<l>  float [B, heads, T, head_dim]   (with past key/values)
//
// The "sep" mask is built in the graph: key j is visible to query i (absolute index P + i) when
// j < sep[b] (Part A, bidirectional) or j ≤ P + i (Part B, causal) — the original's
// `tril(ones) ; M[:, :, :sep] = 1` (§1.7), extended to cached keys. Masked scores get −1e30 added
// before the softmax (every row keeps at least its own key, so no row is all masked).
//
// Ops: LayerNormalization (opset 17) for the three LayerNorms; GELU is written out with Tanh or
// Erf (the Gelu op needs opset 20, which older runtimes and onnxruntime-web builds may lack);
// linear weights are stored transposed ([in, out]) so each linear is one MatMul + Add; the output
// projection reuses the word embedding through a Transpose node (tied, stored once).
import { numel, parameterSpecs, validateConfig, validateStateDict, type GlmConfig, type StateDict } from '@blankglm/model-spec';
import { GraphBuilder } from './graph-builder.js';
import { DataType, type ModelSpec } from './onnx-proto.js';

export const ONNX_OPSET = 17;
export const ONNX_IR_VERSION = 8;
/** Additive mask value for hidden keys (exp underflows to exactly 0; finite, so no NaN from −∞ − −∞). */
export const MASKED_SCORE = -1e30;

export type MaskInput = 'sep' | 'matrix';

export interface GlmOnnxOptions {
  /** How the attention mask is given: per-row `sep` (default) or an explicit [B, 1, L, T] matrix (packed rows). */
  mask?: MaskInput;
  /** Add past_key_<l>/past_value_<l> inputs and present_* outputs for incremental decoding (default true). */
  pastKeyValues?: boolean;
  /** Producer version recorded in the model. */
  producerVersion?: string;
}

/** Names of the graph's inputs and outputs, for runners. */
export const GLM_ONNX_NAMES = {
  inputIds: 'input_ids',
  positionIds: 'position_ids',
  attentionMask: 'attention_mask',
  logits: 'logits',
  pastKey: (l: number) => `past_key_${l}`,
  pastValue: (l: number) => `past_value_${l}`,
  presentKey: (l: number) => `present_key_${l}`,
  presentValue: (l: number) => `present_value_${l}`,
} as const;

/** An exporter limitation: the checkpoint or options cannot be expressed as this ONNX graph. */
export class OnnxExportError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'OnnxExportError';
  }
}

/** [rows, cols] → [cols, rows]. */
function transposed(data: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    const base = r * cols;
    for (let c = 0; c < cols; c++) out[c * rows + r] = data[base + c]!;
  }
  return out;
}

/** Checks that the exporter can express this checkpoint; the error says what and how to fix it. */
export function checkExportable(config: GlmConfig, stateDict: StateDict): GlmConfig {
  let c: GlmConfig;
  try {
    c = validateConfig({ ...config });
  } catch (e) {
    throw new OnnxExportError(`cannot export this checkpoint to ONNX: ${(e as Error).message}`);
  }
  try {
    validateStateDict(stateDict, parameterSpecs(c));
  } catch (e) {
    throw new OnnxExportError(`cannot export this checkpoint to ONNX: ${(e as Error).message}. Convert it first ('blankglm convert') so its tensors match its config.`);
  }
  for (const spec of parameterSpecs(c)) {
    const data = stateDict.get(spec.name)!;
    if (numel(spec.shape) * 4 > 0x7fffffff) {
      // A single tensor over 2 GiB exceeds what one external-data entry ORT reads in one piece.
      throw new OnnxExportError(`cannot export: tensor ${spec.name} [${spec.shape.join(', ')}] is over 2 GiB, which ONNX Runtime cannot load as one initializer`);
    }
    for (let i = 0; i < data.length; i++) {
      if (!Number.isFinite(data[i]!)) throw new OnnxExportError(`cannot export: ${spec.name}[${i}] = ${data[i]} (the checkpoint holds a non-finite weight)`);
    }
  }
  return c;
}

/** The GLM of `config` with weights `stateDict` as an ONNX model (initializers reference the state dict's arrays or transposed copies). */
export function buildGlmOnnxModel(config: GlmConfig, stateDict: StateDict, options: GlmOnnxOptions = {}): ModelSpec {
  const c = checkExportable(config, stateDict);
  const mask = options.mask ?? 'sep';
  if (mask !== 'sep' && mask !== 'matrix') throw new OnnxExportError(`mask must be 'sep' or 'matrix', got ${JSON.stringify(mask)}`);
  const withPast = options.pastKeyValues ?? true;
  const H = c.hidden_size;
  const heads = c.num_attention_heads;
  const d = H / heads;
  const V = c.vocab_size;
  const rows = c.max_sequence_length + 1;
  const g = new GraphBuilder();
  const w = (name: string): Float32Array => stateDict.get(name)!;
  const N = GLM_ONNX_NAMES;

  // ---- inputs
  const inputIds = g.input({ name: N.inputIds, elemType: DataType.INT64, shape: ['batch', 'seq'], doc: 'token ids [B, L]' });
  const positionIds = g.input({ name: N.positionIds, elemType: DataType.INT64, shape: ['batch', 2, 'seq'], doc: '[B, 2, L]: positions, block positions' });
  const maskIn =
    mask === 'sep'
      ? g.input({ name: N.attentionMask, elemType: DataType.INT64, shape: ['batch'], doc: 'per row: absolute index where Part B starts' })
      : g.input({ name: N.attentionMask, elemType: DataType.FLOAT, shape: ['batch', 1, 'seq', 'total_seq'], doc: '1 = query attends to key' });
  const past: Array<{ k: string; v: string }> = [];
  if (withPast) {
    for (let l = 0; l < c.num_layers; l++) {
      past.push({
        k: g.input({ name: N.pastKey(l), elemType: DataType.FLOAT, shape: ['batch', heads, 'past_seq', d] }),
        v: g.input({ name: N.pastValue(l), elemType: DataType.FLOAT, shape: ['batch', heads, 'past_seq', d] }),
      });
    }
  }

  // ---- embeddings: word + position (+ block position)
  const wordEmb = g.weight('word_embeddings.weight', [V, H], w('word_embeddings.weight'));
  const posEmb = g.weight('transformer.position_embeddings.weight', [rows, H], w('transformer.position_embeddings.weight'));
  const positions = g.op('Gather', [positionIds, g.ints([0], [])], { axis: 1 }); // [B, L]
  let x = g.add(g.op('Gather', [wordEmb, inputIds], { axis: 0 }), g.op('Gather', [posEmb, positions], { axis: 0 })); // [B, L, H]
  if (c.block_position_encoding) {
    const blockEmb = g.weight('transformer.block_position_embeddings.weight', [rows, H], w('transformer.block_position_embeddings.weight'));
    const blockPositions = g.op('Gather', [positionIds, g.ints([1], [])], { axis: 1 }); // [B, L]
    x = g.add(x, g.op('Gather', [blockEmb, blockPositions], { axis: 0 }));
  }

  // ---- attention bias [B, 1, L, T]: 0 where visible, MASKED_SCORE elsewhere
  let bias: string;
  if (mask === 'sep') {
    const seqLen = g.op('Shape', [inputIds], { start: 1, end: 2 }); // [1] = L
    const pastLen = withPast ? g.op('Shape', [past[0]!.k], { start: 2, end: 3 }) : g.ints([0]); // [1] = P
    const total = g.add(pastLen, seqLen); // [1] = T
    const scalar = (t: string): string => g.op('Squeeze', [t, g.ints([0])]);
    const keyIdx = g.op('Range', [g.ints([0], []), scalar(total), g.ints([1], [])]); // [T]
    const queryIdx = g.op('Range', [scalar(pastLen), scalar(total), g.ints([1], [])]); // [L] absolute indices
    const causal = g.op('LessOrEqual', [g.unsqueeze(keyIdx, [0]), g.unsqueeze(queryIdx, [1])]); // [L, T]
    const sepCol = g.reshape(maskIn, [-1, 1, 1]); // [B, 1, 1]
    const prefix = g.op('Less', [keyIdx, sepCol]); // [B, 1, T]
    const visible = g.op('Or', [causal, prefix]); // [B, L, T]
    bias = g.unsqueeze(g.op('Where', [visible, g.scalar(0), g.scalar(MASKED_SCORE)]), [1]); // [B, 1, L, T]
  } else {
    const visible = g.op('Greater', [maskIn, g.scalar(0.5)]); // [B, 1, L, T]
    bias = g.op('Where', [visible, g.scalar(0), g.scalar(MASKED_SCORE)]);
  }

  const gelu = (t: string): string => {
    if (c.hidden_act === 'gelu_erf') {
      // 0.5·x·(1 + erf(x/√2))
      const e = g.op('Erf', [g.mul(t, g.scalar(Math.SQRT1_2))]);
      return g.mul(g.mul(t, g.scalar(0.5)), g.add(e, g.scalar(1)));
    }
    // 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))
    const cube = g.mul(g.mul(t, t), t);
    const inner = g.mul(g.add(t, g.mul(cube, g.scalar(0.044715))), g.scalar(Math.sqrt(2 / Math.PI)));
    return g.mul(g.mul(t, g.scalar(0.5)), g.add(g.op('Tanh', [inner]), g.scalar(1)));
  };
  const layerNorm = (t: string, prefix: string): string =>
    g.op('LayerNormalization', [t, g.weight(prefix + '.weight', [H], w(prefix + '.weight')), g.weight(prefix + '.bias', [H], w(prefix + '.bias'))], {
      axis: -1,
      epsilon: { float: c.layernorm_epsilon },
    });
  const linearT = (t: string, prefix: string, outF: number, inF: number): string =>
    g.linear(t, g.weight(prefix + '.weight_t', [inF, outF], transposed(w(prefix + '.weight'), outF, inF)), g.weight(prefix + '.bias', [outF], w(prefix + '.bias')));

  const splitSizes = g.ints([H, H, H]);
  const headShape = [0, 0, heads, d];
  const scale = g.scalar(1 / Math.sqrt(d));
  for (let l = 0; l < c.num_layers; l++) {
    const p = `transformer.layers.${l}.`;
    const ln1 = layerNorm(x, p + 'input_layernorm');
    const qkv = linearT(ln1, p + 'attention.query_key_value', 3 * H, H); // [B, L, 3H] = [Q | K | V]
    const [q, k, v] = g.opMulti('Split', [qkv, splitSizes], 3, { axis: 2 }) as [string, string, string];
    const toHeads = (t: string): string => g.transpose(g.reshape(t, headShape), [0, 2, 1, 3]); // [B, n, L, d]
    let keys = toHeads(k);
    let values = toHeads(v);
    if (withPast) {
      keys = g.op('Concat', [past[l]!.k, keys], { axis: 2 }, N.presentKey(l)); // [B, n, T, d]
      values = g.op('Concat', [past[l]!.v, values], { axis: 2 }, N.presentValue(l));
      g.output({ name: N.presentKey(l), elemType: DataType.FLOAT, shape: ['batch', heads, 'total_seq', d] });
      g.output({ name: N.presentValue(l), elemType: DataType.FLOAT, shape: ['batch', heads, 'total_seq', d] });
    }
    const scores = g.add(g.mul(g.matmul(toHeads(q), g.transpose(keys, [0, 1, 3, 2])), scale), bias); // [B, n, L, T]
    const probs = g.op('Softmax', [scores], { axis: -1 });
    const context = g.reshape(g.transpose(g.matmul(probs, values), [0, 2, 1, 3]), [0, 0, H]); // [B, L, H]
    const mid = g.add(x, linearT(context, p + 'attention.dense', H, H));
    const ln2 = layerNorm(mid, p + 'post_attention_layernorm');
    const hidden = gelu(linearT(ln2, p + 'mlp.dense_h_to_4h', 4 * H, H)); // [B, L, 4H]
    x = g.add(mid, linearT(hidden, p + 'mlp.dense_4h_to_h', H, 4 * H));
  }
  const final = layerNorm(x, 'transformer.final_layernorm');
  g.op('MatMul', [final, g.transpose(wordEmb, [1, 0])], undefined, N.logits); // tied output projection, no bias
  // Outputs: logits first, then present key/values (registered above per layer).
  g.outputs.unshift({ name: N.logits, elemType: DataType.FLOAT, shape: ['batch', 'seq', V] });

  const doc =
    `GLM (THUDM, Du et al. 2022) forward exported by blankglm: ${c.num_layers} layers, hidden ${H}, ${heads} heads, vocab ${V}, ` +
    `${c.hidden_act}, mask input '${mask}', ${withPast ? 'with' : 'without'} past key/values.`;
  return {
    irVersion: ONNX_IR_VERSION,
    opsetVersion: ONNX_OPSET,
    producerName: 'blankglm',
    producerVersion: options.producerVersion ?? '0.1.0',
    docString: doc,
    metadata: {
      'blankglm.config': JSON.stringify(c),
      'blankglm.mask': mask,
      'blankglm.past_key_values': String(withPast),
    },
    graph: g.graph('glm', doc),
  };
}
