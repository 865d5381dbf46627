// The GLM model over any Backend: parameters, forward over a GlmBatch, explicit backward, gradient
// norms. Written once against the op catalogue of @blankglm/tensor; no backend-specific code.
//
// One layer (glm-reference §2.1), T = B·L tokens, H hidden, n heads of D = H/n:
//
//   x ─┬─ LN_in ─ QKV linear ─ attention(GLM mask) ─ dense ─ dropout ─(+)─┬─ LN_post ─ h→4h+GELU ─ 4h→h ─ dropout ─(+)─ x'
//      └───────────────────────────────────────────────────────────────────┘└────────────────────────────────────────────┘
//
// The attention mask is GLM's prefix mask per segment (see glmKeyRanges in @blankglm/tensor):
//
//            keys →   A A A A | B B B
//   query A           1 1 1 1 | 0 0 0      Part A: bidirectional over Part A
//   query B           1 1 1 1 | 1 0 0      Part B: all of Part A + Part B causally
//   query B           1 1 1 1 | 1 1 0
//
// so each query attends to one contiguous key range [keyStart, keyEnd).
import { runAll, runOp, type Activation, type Backend, type DropoutAttrs, type GlmBatch, type Rng, type StridedView, type Tensor } from '@blankglm/tensor';
import { validateConfig, type GlmConfig } from '../config.js';
import { checkStateDict, formatStateDictReport, initParameters, numel, parameterSpecs, reportIsClean, type ParamSpec, type StateDict } from '../params.js';
import { BufferGroup } from './buffers.js';
import { DeviceScores, type TargetScores } from './scores.js';
import { siteDropout } from './dropout.js';
import { validateBatch, validatePositions, type RowPosition } from './validate-batch.js';

/** The twelve tensors of one transformer layer (parameters or their gradients). */
export interface LayerTensors {
  inputLnWeight: Tensor; // [H]
  inputLnBias: Tensor; // [H]
  qkvWeight: Tensor; // [3H, H]: rows [Q; K; V], heads contiguous inside each third
  qkvBias: Tensor; // [3H]
  denseWeight: Tensor; // [H, H]
  denseBias: Tensor; // [H]
  postLnWeight: Tensor; // [H]
  postLnBias: Tensor; // [H]
  fc1Weight: Tensor; // [4H, H] (dense_h_to_4h)
  fc1Bias: Tensor; // [4H]
  fc2Weight: Tensor; // [H, 4H] (dense_4h_to_h)
  fc2Bias: Tensor; // [H]
}

/** All model tensors by role (parameters or gradients). */
export interface ModelTensors {
  wordEmb: Tensor; // [V, H], tied with the output projection
  posEmb: Tensor; // [P, H], P = max_sequence_length + 1
  blockPosEmb: Tensor | null; // [P, H] with block_position_encoding
  layers: LayerTensors[];
  finalLnWeight: Tensor; // [H]
  finalLnBias: Tensor; // [H]
}

function layerTensors(byName: Map<string, Tensor>, i: number): LayerTensors {
  const p = `transformer.layers.${i}.`;
  const get = (n: string): Tensor => byName.get(p + n)!;
  return {
    inputLnWeight: get('input_layernorm.weight'),
    inputLnBias: get('input_layernorm.bias'),
    qkvWeight: get('attention.query_key_value.weight'),
    qkvBias: get('attention.query_key_value.bias'),
    denseWeight: get('attention.dense.weight'),
    denseBias: get('attention.dense.bias'),
    postLnWeight: get('post_attention_layernorm.weight'),
    postLnBias: get('post_attention_layernorm.bias'),
    fc1Weight: get('mlp.dense_h_to_4h.weight'),
    fc1Bias: get('mlp.dense_h_to_4h.bias'),
    fc2Weight: get('mlp.dense_4h_to_h.weight'),
    fc2Bias: get('mlp.dense_4h_to_h.bias'),
  };
}

function modelTensors(byName: Map<string, Tensor>, config: GlmConfig): ModelTensors {
  return {
    wordEmb: byName.get('word_embeddings.weight')!,
    posEmb: byName.get('transformer.position_embeddings.weight')!,
    blockPosEmb: config.block_position_encoding ? byName.get('transformer.block_position_embeddings.weight')! : null,
    layers: Array.from({ length: config.num_layers }, (_, i) => layerTensors(byName, i)),
    finalLnWeight: byName.get('transformer.final_layernorm.weight')!,
    finalLnBias: byName.get('transformer.final_layernorm.bias')!,
  };
}

/**
 * Checks a state dict against the specs with the same report as checkpoint loading. Host arrays
 * carry no shape: one with the spec's element count counts as that shape, any other as flat.
 */
export function validateStateDict(state: StateDict, specs: readonly ParamSpec[]): void {
  const expected = new Map(specs.map((s) => [s.name, s.shape]));
  const shaped = new Map<string, { shape: readonly number[] }>();
  for (const [name, data] of state) {
    const shape = expected.get(name);
    shaped.set(name, { shape: shape && numel(shape) === data.length ? shape : [data.length] });
  }
  const report = checkStateDict(specs, shaped);
  if (!reportIsClean(report)) throw new RangeError(`state dict does not match the config:\n${formatStateDictReport(report)}`);
}

export interface ForwardOptions {
  /** 'train' applies dropout (needs `seed`); 'eval' (default) has none. */
  mode?: 'train' | 'eval';
  /** Per-call 32-bit dropout seed (train mode); every site's seed derives from it (see dropout.ts). */
  seed?: number;
  /** Keep activations so `backward()` can follow (default: true in train mode, false in eval mode). */
  keepActivations?: boolean;
  /** Rows to return full logits for (e.g. the sop position when scoring verbalizers). */
  logitsAt?: readonly RowPosition[];
  /** Label smoothing ε of the training loss (seq2seq fine-tuning); 0 by default. */
  labelSmoothing?: number;
  /**
   * Rows to return the final hidden states for (after the final LayerNorm, what the output
   * projection reads), e.g. the [CLS] position for a classifier head; `backward({ hiddenGrad })`
   * takes their gradient.
   */
  hiddenAt?: readonly RowPosition[];
}

/**
 * What forward() returns. `loss` and `targets` are read from the device on first use (a GPU runs
 * on meanwhile: micro-batches of one step need not wait for each other), or at the latest when
 * more than MAX_UNREAD_SCORES results are unread, or on dispose().
 */
export interface ForwardResult {
  /** Σ loss / number of targets over the whole batch (token-averaged, as the original); null without targets. */
  loss: number | null;
  numTargets: number;
  targets: TargetScores;
  /** Logits rows for `logitsAt`, [count, vocab_size] row-major; null when none were asked for. */
  logits: { at: RowPosition[]; vocabSize: number; values: Float32Array } | null;
  /**
   * Final hidden states for `hiddenAt`, [count, hidden_size] row-major; null when none were asked
   * for (optional in the type so other producers of ForwardResult need not set it).
   */
  hidden?: { at: RowPosition[]; hiddenSize: number; values: Float32Array } | null;
}

export interface BackwardOptions {
  /**
   * Weight of each target's loss in the gradient. Default 1/numTargets of this batch (the gradient
   * of the mean loss). For gradient accumulation over micro-batches token-averaged like the
   * original, pass 1/(targets of all micro-batches).
   */
  targetWeight?: number;
  /**
   * One weight per target of the last forward, in the order of `forward(...).targets` (instead of
   * `targetWeight`): target i adds targetWeights[i]·∇loss_i. Zero drops a target; a negative
   * weight pushes its probability down (cloze fine-tuning builds exact softmax-over-candidates
   * gradients this way in one pass).
   */
  targetWeights?: Float32Array;
  /**
   * Gradient of the objective with respect to the `logitsAt` rows of the last forward,
   * [count, vocab_size] row-major: added through the tied output projection (to the hidden states
   * and the word embeddings), together with the target losses' gradient. Needs
   * `keepActivations` (or train mode) on that forward, like every backward.
   */
  logitsGrad?: Float32Array;
  /**
   * Gradient of the objective with respect to the `hiddenAt` rows of the last forward,
   * [count, hidden_size] row-major (e.g. from a classifier head), scattered into the gradient of
   * the final LayerNorm's output and added to the target losses' gradient. To train on the head's
   * loss alone, run the forward without loss positions (lossMask all 0) or pass targetWeight 0.
   */
  hiddenGrad?: Float32Array;
}

/** Activations one layer keeps for its backward pass. */
interface LayerActivations {
  group: BufferGroup;
  input: Tensor; // [T, H] the residual stream entering the layer (owned by the previous group)
  ln1: Tensor; // [T, H]
  ln1Mean: Tensor; // [T]
  ln1Rstd: Tensor; // [T]
  qkv: Tensor; // [T, 3H]
  context: Tensor; // [T, H] attention output before `dense`
  lse: Tensor | null; // [B, n, L] (null in eval mode)
  mid: Tensor; // [T, H] residual stream after attention
  ln2: Tensor; // [T, H]
  ln2Mean: Tensor; // [T]
  ln2Rstd: Tensor; // [T]
  fc1Pre: Tensor; // [T, 4H] before GELU
  fc1Out: Tensor; // [T, 4H] after GELU
  output: Tensor; // [T, H] residual stream leaving the layer
  attentionProbsDropout: DropoutAttrs;
  attentionOutputDropout: DropoutAttrs;
  mlpOutputDropout: DropoutAttrs;
}

/** What a kept forward pass leaves for backward. */
interface ForwardState {
  batchSize: number;
  seqLength: number;
  tokens: number; // T
  inputs: BufferGroup; // ids, positions, key ranges, embedding output
  inputIds: Tensor;
  positionIds: Tensor;
  blockPositionIds: Tensor | null;
  keyStart: Tensor;
  keyEnd: Tensor;
  embeddingDropout: DropoutAttrs;
  layers: LayerActivations[];
  head: BufferGroup;
  finalLn: Tensor; // [T, H]
  finalMean: Tensor;
  finalRstd: Tensor;
  numTargets: number;
  targetIndex: Tensor | null; // i32 [n], flat b·L + i
  targetIds: Tensor | null; // i32 [n]
  selected: Tensor | null; // [n, H] final hidden at the targets
  ceLse: Tensor | null; // [n]
  labelSmoothing: number;
  logitsIndex: Tensor | null; // i32 [m], flat b·L + i of logitsAt
  logitsHidden: Tensor | null; // f32 [m, H] the final hidden rows the logits were projected from
  hiddenIndex: Tensor | null; // i32 [k], flat b·L + i of hiddenAt
}

export interface CreateModelOptions {
  /** Fresh initialisation (glm-reference §2.1) from this Rng. */
  rng?: Rng;
  /** Or parameters from a state dict of host arrays, checked strictly against the config. */
  stateDict?: StateDict;
  /**
   * 'f32' (default): every buffer f32. 'bf16': mixed precision for backends with bf16 compute
   * (the CUDA backend): the matrix operands (layer activations, their gradients, and bf16 copies
   * of the four weight matrices per layer and of the word embeddings, refreshed from the f32
   * parameters at every forward) are bf16; parameters, gradients, the residual stream and the
   * optimizer state stay f32.
   */
  precision?: 'f32' | 'bf16';
}

/** bf16 copies of the weights the products read (precision 'bf16'). */
interface LowPrecisionWeights {
  wordEmb: Tensor;
  layers: Array<Pick<LayerTensors, 'qkvWeight' | 'denseWeight' | 'fc1Weight' | 'fc2Weight'>>;
  all: Array<{ master: Tensor; copy: Tensor }>;
}

/** Forward results whose losses may stay unread on the device at once (more are read, oldest first). */
export const MAX_UNREAD_SCORES = 16;

/**
 * A GLM (THUDM GLMModel) living on a Backend. Parameters are f32 buffers named as `parameterSpecs`.
 * `forward` → `backward` → optimizer step; `dispose()` frees every buffer it allocated.
 */
export class GlmModel {
  readonly config: GlmConfig;
  readonly backend: Backend;
  readonly specs: readonly ParamSpec[];
  readonly hiddenSize: number;
  readonly heads: number;
  readonly headDim: number;
  /** Rows of each position table (max_sequence_length + 1). */
  readonly positionRows: number;
  private readonly paramByName = new Map<string, Tensor>();
  private gradByName: Map<string, Tensor> | null = null;
  readonly params: ModelTensors;
  private gradTensors: ModelTensors | null = null;
  private state: ForwardState | null = null;
  /** Target losses of earlier forwards still on the device (see DeviceScores). */
  private readonly unreadScores = new Set<DeviceScores>();
  private disposed = false;
  /** The dtype of matrix operands: activations and their gradients ('f32' or 'bf16'). */
  readonly precision: 'f32' | 'bf16';
  private readonly low: LowPrecisionWeights | null = null;

  private constructor(backend: Backend, config: GlmConfig, state: StateDict, precision: 'f32' | 'bf16' = 'f32') {
    if (precision !== 'f32' && precision !== 'bf16') throw new RangeError(`GlmModel.create: precision must be 'f32' or 'bf16', got ${String(precision)}`);
    this.config = validateConfig({ ...config });
    this.backend = backend;
    this.specs = parameterSpecs(this.config);
    validateStateDict(state, this.specs);
    this.hiddenSize = this.config.hidden_size;
    this.heads = this.config.num_attention_heads;
    this.headDim = this.hiddenSize / this.heads;
    this.positionRows = this.config.max_sequence_length + 1;
    try {
      for (const spec of this.specs) {
        const t = backend.alloc('f32', numel(spec.shape), spec.name);
        this.paramByName.set(spec.name, t);
        backend.write(t as Tensor & { dtype: 'f32' }, state.get(spec.name)!);
      }
    } catch (e) {
      for (const t of this.paramByName.values()) backend.free(t);
      throw e;
    }
    this.params = modelTensors(this.paramByName, this.config);
    this.precision = precision;
    if (precision === 'bf16') {
      const all: Array<{ master: Tensor; copy: Tensor }> = [];
      const copyOf = (master: Tensor): Tensor => {
        const copy = backend.alloc('bf16', master.size, `bf16:${master.label ?? master.id}`);
        all.push({ master, copy });
        return copy;
      };
      try {
        this.low = {
          wordEmb: copyOf(this.params.wordEmb),
          layers: this.params.layers.map((w) => ({ qkvWeight: copyOf(w.qkvWeight), denseWeight: copyOf(w.denseWeight), fc1Weight: copyOf(w.fc1Weight), fc2Weight: copyOf(w.fc2Weight) })),
          all,
        };
      } catch (e) {
        for (const { copy } of all) backend.free(copy);
        for (const t of this.paramByName.values()) backend.free(t);
        throw e;
      }
    }
  }

  /** The dtype of activation buffers that feed products. */
  private get act(): 'f32' | 'bf16' {
    return this.precision;
  }

  /** The weight matrices products read: bf16 copies with precision 'bf16', else the parameters. */
  private matmulWeights(l: number): Pick<LayerTensors, 'qkvWeight' | 'denseWeight' | 'fc1Weight' | 'fc2Weight'> {
    return this.low ? this.low.layers[l]! : this.params.layers[l]!;
  }

  /** Rounds the f32 parameters into their bf16 copies (dropoutAdd with p = 0 is the catalogue's cast). */
  private refreshLowPrecisionWeights(): void {
    if (!this.low) return;
    runAll(
      this.backend,
      this.low.all.map(({ master, copy }) => ({ op: 'dropoutAdd', args: { x: master, residual: null, out: copy, size: master.size, dropout: { p: 0, seed: 0, stream: 0 } } })),
    );
  }

  /** A model with fresh parameters (`rng`) or loaded ones (`stateDict`). */
  static create(backend: Backend, config: GlmConfig, options: CreateModelOptions): GlmModel {
    if (options.stateDict && options.rng) throw new TypeError('GlmModel.create: give either rng or stateDict, not both');
    if (options.stateDict) return new GlmModel(backend, config, options.stateDict, options.precision);
    if (options.rng) return new GlmModel(backend, validateConfig(config), initParameters(config, options.rng), options.precision);
    throw new TypeError('GlmModel.create: give rng (fresh initialisation) or stateDict (loaded parameters)');
  }

  /** The parameter tensor called `name` (a THUDM state-dict key). */
  parameter(name: string): Tensor {
    const t = this.paramByName.get(name);
    if (!t) throw new RangeError(`no parameter named '${name}'`);
    return t;
  }

  /** The gradient buffer of `name`; allocated (zeroed) on first use. */
  gradient(name: string): Tensor {
    this.ensureGrads();
    const t = this.gradByName!.get(name);
    if (!t) throw new RangeError(`no parameter named '${name}'`);
    return t;
  }

  /** Host copies of every parameter, in state-dict order. */
  stateDict(): StateDict {
    this.checkAlive();
    const out: StateDict = new Map();
    for (const spec of this.specs) out.set(spec.name, Float32Array.from(this.backend.read(this.paramByName.get(spec.name)!)));
    return out;
  }

  /** Overwrites every parameter from a state dict (checked strictly). */
  loadStateDict(state: StateDict): void {
    this.checkAlive();
    validateStateDict(state, this.specs);
    for (const spec of this.specs) this.backend.write(this.paramByName.get(spec.name)! as Tensor & { dtype: 'f32' }, state.get(spec.name)!);
  }

  /** Host copies of every gradient (zeros before any backward). */
  gradDict(): StateDict {
    this.ensureGrads();
    const out: StateDict = new Map();
    for (const spec of this.specs) out.set(spec.name, Float32Array.from(this.backend.read(this.gradByName!.get(spec.name)!)));
    return out;
  }

  private ensureGrads(): void {
    this.checkAlive();
    if (this.gradByName) return;
    const grads = new Map<string, Tensor>();
    for (const spec of this.specs) grads.set(spec.name, this.backend.alloc('f32', numel(spec.shape), `grad:${spec.name}`));
    this.gradByName = grads;
    this.gradTensors = modelTensors(grads, this.config);
  }

  /** Sets every gradient to zero (backward only ever adds). One sequence: backends may merge the fills into one launch. */
  zeroGrad(): void {
    this.ensureGrads();
    runAll(this.backend, this.specs.map((spec) => ({ op: 'fill', args: { x: this.gradByName!.get(spec.name)!, offset: 0, size: numel(spec.shape), value: 0 } })));
  }

  /** Parameters with their gradient buffers and specs, for optimizers. */
  trainables(): Array<{ spec: ParamSpec; param: Tensor; grad: Tensor }> {
    this.ensureGrads();
    return this.specs.map((spec) => ({ spec, param: this.paramByName.get(spec.name)!, grad: this.gradByName!.get(spec.name)! }));
  }

  /** The L2 norm of each parameter's gradient. */
  gradNorms(): Map<string, number> {
    const squares = this.gradSquares();
    return new Map(this.specs.map((s, i) => [s.name, Math.sqrt(squares[i]!)]));
  }

  /** The L2 norm over all gradients together (what clipping uses). */
  globalGradNorm(): number {
    let total = 0;
    for (const s of this.gradSquares()) total += s;
    return Math.sqrt(total);
  }

  private gradSquares(): Float64Array {
    this.ensureGrads();
    const out = this.backend.alloc('f32', this.specs.length, 'gradSquares');
    try {
      runAll(this.backend, this.specs.map((spec, i) => ({ op: 'sumSquares', args: { x: this.gradByName!.get(spec.name)!, size: numel(spec.shape), out, outIndex: i } })));
      return Float64Array.from(this.backend.read(out));
    } finally {
      this.backend.free(out);
    }
  }

  /**
   * Scales all gradients so their global norm is at most `maxNorm` (Megatron's clip_grad_norm:
   * factor maxNorm / (norm + 1e-6) when below 1). Returns the norm before clipping.
   */
  clipGradNorm(maxNorm: number): number {
    const norm = this.globalGradNorm();
    const factor = maxNorm / (norm + 1e-6);
    if (factor < 1) {
      runAll(this.backend, this.specs.map((spec) => ({ op: 'scale', args: { x: this.gradByName!.get(spec.name)!, size: numel(spec.shape), factor } })));
    }
    return norm;
  }

  /**
   * Runs the model over `batch`: the loss at lossMask = 1 positions (logits only there, via the
   * fused output-projection + cross-entropy op), per-target log-probabilities, and full logits rows
   * at `logitsAt`. In train mode (or with keepActivations) the activations stay for `backward()`;
   * a new forward discards those of an earlier one that was never backpropagated.
   */
  forward(batch: GlmBatch, options: ForwardOptions = {}): ForwardResult {
    this.checkAlive();
    const mode = options.mode ?? 'eval';
    if (mode !== 'train' && mode !== 'eval') throw new RangeError(`forward: mode must be 'train' or 'eval', got ${String(mode)}`);
    if (mode === 'train' && (options.seed === undefined || !Number.isInteger(options.seed))) {
      throw new TypeError('forward: train mode needs an integer dropout seed (options.seed)');
    }
    const labelSmoothing = options.labelSmoothing ?? 0;
    if (!(labelSmoothing >= 0 && labelSmoothing < 1)) throw new RangeError(`forward: labelSmoothing must be in [0, 1), got ${labelSmoothing}`);
    const ranges = validateBatch(batch, this.config);
    const at = options.logitsAt ?? [];
    validatePositions(at, batch.batchSize, batch.seqLength);
    const hiddenAt = options.hiddenAt ?? [];
    validatePositions(hiddenAt, batch.batchSize, batch.seqLength, 'hiddenAt');
    this.releaseState();
    this.settleScores(MAX_UNREAD_SCORES - 1);

    const keep = options.keepActivations ?? mode === 'train';
    const callSeed = mode === 'train' ? options.seed! >>> 0 : null;
    const c = this.config;
    const be = this.backend;
    const B = batch.batchSize;
    const L = batch.seqLength;
    const T = B * L;
    const H = this.hiddenSize;
    const P = this.params;

    const inputs = new BufferGroup(be);
    const layers: LayerActivations[] = [];
    let head: BufferGroup | null = null;
    let scoreGroup: BufferGroup | null = null;
    let scores: DeviceScores | null = null;
    this.refreshLowPrecisionWeights();
    try {
      const inputIds = inputs.i32(batch.inputIds, 'inputIds'); // i32 [T]
      const positionIds = inputs.i32(batch.positionIds, 'positionIds'); // i32 [T]
      const blockPositionIds = P.blockPosEmb ? inputs.i32(batch.blockPositionIds, 'blockPositionIds') : null;
      const keyStart = inputs.i32(ranges.keyStart, 'keyStart'); // i32 [B, L]
      const keyEnd = inputs.i32(ranges.keyEnd, 'keyEnd'); // i32 [B, L]

      // Embeddings: word + position (+ block position), then embedding dropout.
      const embeddingDropout = siteDropout(c.embedding_dropout_prob, callSeed, 'embedding');
      const embedded = inputs.output('f32', T * H, 'embedded'); // [T, H]
      runOp(be, 'embedding', {
        wordEmb: P.wordEmb, posEmb: P.posEmb, blockPosEmb: P.blockPosEmb, inputIds, positionIds, blockPositionIds,
        out: embedded, tokens: T, hiddenSize: H, vocab: c.vocab_size, positions: this.positionRows,
      });
      let x = embedded;
      if (embeddingDropout.p > 0) {
        x = inputs.output('f32', T * H, 'embeddingOut'); // [T, H]
        runOp(be, 'dropoutAdd', { x: embedded, residual: null, out: x, size: T * H, dropout: embeddingDropout });
      }

      for (let l = 0; l < c.num_layers; l++) {
        const act = this.layerForward(l, x, B, L, keyStart, keyEnd, callSeed, keep);
        // In eval mode a layer's buffers can go as soon as the next layer has consumed its output.
        if (!keep && layers.length > 0) layers.pop()!.group.free();
        layers.push(act);
        x = act.output;
      }

      // Final LayerNorm → the hidden states the tied output projection reads.
      head = new BufferGroup(be);
      const finalLn = head.output(this.act, T * H, 'finalLn'); // [T, H]
      const finalMean = head.output('f32', T, 'finalMean');
      const finalRstd = head.output('f32', T, 'finalRstd');
      runOp(be, 'layerNorm', { x, gamma: P.finalLnWeight, beta: P.finalLnBias, y: finalLn, mean: finalMean, rstd: finalRstd, rows: T, hiddenSize: H, eps: c.layernorm_epsilon });

      // Loss only at the target positions: gather those rows, then the fused projection + CE.
      const mask = batch.lossMask;
      let n = 0;
      if (mask) for (let o = 0; o < T; o++) n += mask[o] === 1 ? 1 : 0;
      const targetFlat = new Int32Array(n);
      const targets: TargetScores = { row: new Int32Array(n), position: new Int32Array(n), tokenId: new Int32Array(n), loss: new Float32Array(n), logProb: new Float32Array(n) };
      for (let o = 0, i = 0; i < n; o++) {
        if (mask![o] !== 1) continue;
        targetFlat[i] = o;
        targets.row[i] = Math.floor(o / L);
        targets.position[i] = o % L;
        targets.tokenId[i] = batch.targetIds![o]!;
        i++;
      }
      let targetIndex: Tensor | null = null;
      let targetIds: Tensor | null = null;
      let selected: Tensor | null = null;
      let ceLse: Tensor | null = null;
      if (n > 0) {
        targetIndex = head.i32(targetFlat, 'targetIndex'); // i32 [n]
        targetIds = head.i32(targets.tokenId, 'targetIds'); // i32 [n]
        selected = head.output(this.act, n * H, 'targetHidden'); // [n, H]
        runOp(be, 'gatherRows', { x: finalLn, index: targetIndex, out: selected, count: n, rows: T, width: H });
        ceLse = head.output('f32', n, 'ceLse'); // [n]
        // The losses outlive the activations: they stay on the device until read (DeviceScores).
        scoreGroup = new BufferGroup(be);
        const losses = scoreGroup.output('f32', n, 'losses'); // [n]
        const ce = { hidden: selected, wordEmb: this.low?.wordEmb ?? P.wordEmb, targets: targetIds, tokens: n, hiddenSize: H, vocab: c.vocab_size };
        runOp(be, 'crossEntropy', { ...ce, losses, lse: ceLse, labelSmoothing });
        let plain: Tensor | null = null;
        if (labelSmoothing > 0) {
          plain = scoreGroup.output('f32', n, 'plainLosses');
          runOp(be, 'crossEntropy', { ...ce, losses: plain, lse: head.output('f32', n, 'plainLse'), labelSmoothing: 0 });
        }
        scores = new DeviceScores(be, scoreGroup, losses, plain, targets, (done) => this.unreadScores.delete(done));
      }

      let logits: ForwardResult['logits'] = null;
      let logitsIndex: Tensor | null = null;
      let logitsHidden: Tensor | null = null;
      if (at.length > 0) {
        const m = at.length;
        // A kept forward keeps the gathered rows for backward({ logitsGrad }).
        const rowsGroup = keep ? head : new BufferGroup(be);
        try {
          const index = rowsGroup.i32(at.map((p) => p.row * L + p.position), 'logitsIndex'); // i32 [m]
          const rows = rowsGroup.output('f32', m * H, 'logitsHidden'); // [m, H]
          runOp(be, 'gatherRows', { x: finalLn, index, out: rows, count: m, rows: T, width: H });
          const out = new BufferGroup(be);
          try {
            const values = out.output('f32', m * c.vocab_size, 'logits'); // [m, V]
            runOp(be, 'logits', { hidden: rows, wordEmb: P.wordEmb, out: values, tokens: m, hiddenSize: H, vocab: c.vocab_size });
            logits = { at: at.map((p) => ({ row: p.row, position: p.position })), vocabSize: c.vocab_size, values: Float32Array.from(be.read(values)) };
          } finally {
            out.free();
          }
          if (keep) {
            logitsIndex = index;
            logitsHidden = rows;
          }
        } finally {
          if (!keep) rowsGroup.free();
        }
      }

      let hidden: ForwardResult['hidden'] = null;
      let hiddenIndex: Tensor | null = null;
      if (hiddenAt.length > 0) {
        const k = hiddenAt.length;
        const rowsGroup = new BufferGroup(be);
        try {
          const index = (keep ? head : rowsGroup).i32(hiddenAt.map((p) => p.row * L + p.position), 'hiddenIndex'); // i32 [k]
          const rows = rowsGroup.output('f32', k * H, 'hiddenRows'); // [k, H]
          runOp(be, 'gatherRows', { x: finalLn, index, out: rows, count: k, rows: T, width: H });
          hidden = { at: hiddenAt.map((p) => ({ row: p.row, position: p.position })), hiddenSize: H, values: Float32Array.from(be.read(rows)) };
          if (keep) hiddenIndex = index;
        } finally {
          rowsGroup.free();
        }
      }

      if (keep) {
        this.state = {
          batchSize: B, seqLength: L, tokens: T, inputs, inputIds, positionIds, blockPositionIds, keyStart, keyEnd,
          embeddingDropout, layers, head, finalLn, finalMean, finalRstd, numTargets: n, targetIndex, targetIds, selected, ceLse, labelSmoothing,
          logitsIndex, logitsHidden, hiddenIndex,
        };
      } else {
        inputs.free();
        for (const a of layers) a.group.free();
        head.free();
      }
      const result: ForwardResult = { loss: null, numTargets: n, targets, logits, hidden };
      if (scores) {
        const pending = scores;
        this.unreadScores.add(pending);
        Object.defineProperty(result, 'loss', { enumerable: true, get: () => pending.loss });
        Object.defineProperty(result, 'targets', { enumerable: true, get: () => pending.targets });
      }
      return result;
    } catch (e) {
      inputs.free();
      for (const a of layers) a.group.free();
      head?.free();
      scoreGroup?.free();
      throw e;
    }
  }

  /** One transformer layer forward; returns its activations (output included). */
  private layerForward(l: number, input: Tensor, B: number, L: number, keyStart: Tensor, keyEnd: Tensor, callSeed: number | null, keep: boolean): LayerActivations {
    const be = this.backend;
    const c = this.config;
    const w = this.params.layers[l]!;
    const mw = this.matmulWeights(l);
    const T = B * L;
    const H = this.hiddenSize;
    const g = new BufferGroup(be);
    const act = this.act;
    try {
      const attentionProbsDropout = siteDropout(c.attention_dropout_prob, callSeed, 'attentionProbs', l);
      const attentionOutputDropout = siteDropout(c.output_dropout_prob, callSeed, 'attentionOutput', l);
      const mlpOutputDropout = siteDropout(c.output_dropout_prob, callSeed, 'mlpOutput', l);
      const tag = `layer${l}.`;

      const ln1 = g.output(act, T * H, tag + 'ln1'); // [T, H]
      const ln1Mean = g.output('f32', T, tag + 'ln1Mean');
      const ln1Rstd = g.output('f32', T, tag + 'ln1Rstd');
      runOp(be, 'layerNorm', { x: input, gamma: w.inputLnWeight, beta: w.inputLnBias, y: ln1, mean: ln1Mean, rstd: ln1Rstd, rows: T, hiddenSize: H, eps: c.layernorm_epsilon });

      const qkv = g.output(act, T * 3 * H, tag + 'qkv'); // [T, 3H] = [Q | K | V] per token
      runOp(be, 'linear', { x: ln1, weight: mw.qkvWeight, bias: w.qkvBias, y: qkv, preAct: null, rows: T, inFeatures: H, outFeatures: 3 * H, activation: 'none' });

      const context = g.output(act, T * H, tag + 'context'); // [T, H], heads concatenated
      const lse = keep ? g.output('f32', B * this.heads * L, tag + 'lse') : null; // [B, n, L]
      const [q, k, v] = qkvViews(qkv, L, H);
      runOp(be, 'attention', {
        q, k, v, keyStart, keyEnd, out: context, lse, batch: B, queries: L, keys: L, heads: this.heads, headDim: this.headDim,
        scale: 1 / Math.sqrt(this.headDim), dropout: attentionProbsDropout,
      });

      const attnOut = g.output(act, T * H, tag + 'attnOut'); // [T, H]
      runOp(be, 'linear', { x: context, weight: mw.denseWeight, bias: w.denseBias, y: attnOut, preAct: null, rows: T, inFeatures: H, outFeatures: H, activation: 'none' });
      const mid = g.output('f32', T * H, tag + 'mid'); // [T, H] = input + dropout(attnOut)
      runOp(be, 'dropoutAdd', { x: attnOut, residual: input, out: mid, size: T * H, dropout: attentionOutputDropout });

      const ln2 = g.output(act, T * H, tag + 'ln2'); // [T, H]
      const ln2Mean = g.output('f32', T, tag + 'ln2Mean');
      const ln2Rstd = g.output('f32', T, tag + 'ln2Rstd');
      runOp(be, 'layerNorm', { x: mid, gamma: w.postLnWeight, beta: w.postLnBias, y: ln2, mean: ln2Mean, rstd: ln2Rstd, rows: T, hiddenSize: H, eps: c.layernorm_epsilon });

      const fc1Pre = g.output(act, T * 4 * H, tag + 'fc1Pre'); // [T, 4H]
      const fc1Out = g.output(act, T * 4 * H, tag + 'fc1Out'); // [T, 4H] = GELU(fc1Pre)
      runOp(be, 'linear', { x: ln2, weight: mw.fc1Weight, bias: w.fc1Bias, y: fc1Out, preAct: fc1Pre, rows: T, inFeatures: H, outFeatures: 4 * H, activation: this.activation });
      const mlpOut = attnOut; // [T, H]: the attention output is consumed, reuse its buffer
      runOp(be, 'linear', { x: fc1Out, weight: mw.fc2Weight, bias: w.fc2Bias, y: mlpOut, preAct: null, rows: T, inFeatures: 4 * H, outFeatures: H, activation: 'none' });
      const output = g.output('f32', T * H, tag + 'output'); // [T, H] = mid + dropout(mlpOut)
      runOp(be, 'dropoutAdd', { x: mlpOut, residual: mid, out: output, size: T * H, dropout: mlpOutputDropout });

      return {
        group: g, input, ln1, ln1Mean, ln1Rstd, qkv, context, lse, mid, ln2, ln2Mean, ln2Rstd, fc1Pre, fc1Out, output,
        attentionProbsDropout, attentionOutputDropout, mlpOutputDropout,
      };
    } catch (e) {
      g.free();
      throw e;
    }
  }

  /** The GELU variant of the MLP (config.hidden_act). */
  get activation(): Activation {
    return this.config.hidden_act;
  }

  /**
   * Backpropagates the last kept forward pass, adding into the gradient buffers (call zeroGrad()
   * first; accumulation over micro-batches is just several forward/backward pairs). Frees the
   * activations afterwards.
   */
  backward(options: BackwardOptions = {}): void {
    this.checkAlive();
    const s = this.state;
    if (!s) throw new Error('backward: no kept forward pass (run forward in train mode or with keepActivations: true first)');
    this.ensureGrads();
    const be = this.backend;
    const c = this.config;
    const P = this.params;
    const G = this.gradTensors!;
    const T = s.tokens;
    const H = this.hiddenSize;
    const B = s.batchSize;
    const L = s.seqLength;
    const n = s.numTargets;
    const perTarget = this.checkBackwardOptions(options, s);
    const weight = options.targetWeight ?? (n > 0 ? 1 / n : 0);
    const scratch = new BufferGroup(be);
    try {
      // Nothing to backpropagate: the objective does not depend on the parameters.
      if (n === 0 && !options.logitsGrad && !options.hiddenGrad) return;
      const act = this.act;
      const dFinal = scratch.f32(T * H, 'dFinalLn'); // [T, H], zero except target / requested rows

      if (n > 0) {
        // Loss → final hidden states at the targets (and the tied embedding, as output projection).
        const weights = scratch.output('f32', n, 'ceWeights'); // [n]
        if (perTarget) be.write(weights as Tensor & { dtype: 'f32' }, perTarget);
        else runOp(be, 'fill', { x: weights, offset: 0, size: n, value: weight });
        const dSelected = scratch.output(act, n * H, 'dTargetHidden'); // [n, H]
        runOp(be, 'crossEntropyBackward', {
          hidden: s.selected!, wordEmb: this.low?.wordEmb ?? P.wordEmb, targets: s.targetIds!, lse: s.ceLse!, weights, dHidden: dSelected, dWordEmb: G.wordEmb,
          tokens: n, hiddenSize: H, vocab: c.vocab_size, labelSmoothing: s.labelSmoothing,
        });
        runOp(be, 'scatterAddRows', { dOut: dSelected, index: s.targetIndex!, dx: dFinal, count: n, rows: T, width: H });
      }
      if (options.logitsGrad) {
        // logits = rows · Eᵀ: d(rows) = dLogits · E, dE += dLogitsᵀ · rows.
        const m = s.logitsIndex!.size;
        const dLogits = scratch.output('f32', m * c.vocab_size, 'dLogits'); // [m, V]
        be.write(dLogits as Tensor & { dtype: 'f32' }, options.logitsGrad);
        const dRows = scratch.output('f32', m * H, 'dLogitsHidden'); // [m, H]
        runOp(be, 'linearBackward', {
          dy: dLogits, x: s.logitsHidden!, weight: P.wordEmb, preAct: null, dx: dRows, dWeight: G.wordEmb, dBias: null,
          rows: m, inFeatures: H, outFeatures: c.vocab_size, activation: 'none', accumulate: false,
        });
        runOp(be, 'scatterAddRows', { dOut: dRows, index: s.logitsIndex!, dx: dFinal, count: m, rows: T, width: H });
      }
      if (options.hiddenGrad) {
        const k = s.hiddenIndex!.size;
        const dRows = scratch.output('f32', k * H, 'dHiddenRows'); // [k, H]
        be.write(dRows as Tensor & { dtype: 'f32' }, options.hiddenGrad);
        runOp(be, 'scatterAddRows', { dOut: dRows, index: s.hiddenIndex!, dx: dFinal, count: k, rows: T, width: H });
      }

      // dh: gradient of the residual stream, carried down through the layers.
      const dh = scratch.output('f32', T * H, 'dResidual'); // [T, H]
      const lastOutput = s.layers[s.layers.length - 1]!.output; // [T, H] (validateConfig: at least one layer)
      runOp(be, 'layerNormBackward', {
        dy: dFinal, x: lastOutput, gamma: P.finalLnWeight, mean: s.finalMean, rstd: s.finalRstd, dx: dh, dGamma: G.finalLnWeight, dBeta: G.finalLnBias,
        rows: T, hiddenSize: H, accumulate: false,
      });

      const dBranch = scratch.output(act, T * H, 'dBranch'); // [T, H] gradient of a residual branch output
      const dHidden = scratch.output(act, T * H, 'dHidden'); // [T, H] gradient of an LN output / attention context
      const dFc1 = scratch.output(act, T * 4 * H, 'dFc1'); // [T, 4H]
      const dQkv = scratch.output(act, T * 3 * H, 'dQkv'); // [T, 3H]
      for (let l = c.num_layers - 1; l >= 0; l--) {
        const a = s.layers[l]!;
        const w = { ...P.layers[l]!, ...this.matmulWeights(l) };
        const gw = G.layers[l]!;
        // output = mid + dropout(mlpOut): the residual passes dh through unchanged.
        const dMlpOut = this.dropoutGrad(dh, dBranch, T * H, a.mlpOutputDropout);
        runOp(be, 'linearBackward', {
          dy: dMlpOut, x: a.fc1Out, weight: w.fc2Weight, preAct: null, dx: dFc1, dWeight: gw.fc2Weight, dBias: gw.fc2Bias,
          rows: T, inFeatures: 4 * H, outFeatures: H, activation: 'none', accumulate: false,
        });
        runOp(be, 'linearBackward', {
          dy: dFc1, x: a.ln2, weight: w.fc1Weight, preAct: a.fc1Pre, dx: dHidden, dWeight: gw.fc1Weight, dBias: gw.fc1Bias,
          rows: T, inFeatures: H, outFeatures: 4 * H, activation: this.activation, accumulate: false,
        });
        runOp(be, 'layerNormBackward', {
          dy: dHidden, x: a.mid, gamma: w.postLnWeight, mean: a.ln2Mean, rstd: a.ln2Rstd, dx: dh, dGamma: gw.postLnWeight, dBeta: gw.postLnBias,
          rows: T, hiddenSize: H, accumulate: true,
        }); // dh is now d(mid)
        // mid = input + dropout(attnOut)
        const dAttnOut = this.dropoutGrad(dh, dBranch, T * H, a.attentionOutputDropout);
        runOp(be, 'linearBackward', {
          dy: dAttnOut, x: a.context, weight: w.denseWeight, preAct: null, dx: dHidden, dWeight: gw.denseWeight, dBias: gw.denseBias,
          rows: T, inFeatures: H, outFeatures: H, activation: 'none', accumulate: false,
        }); // dHidden = d(context)
        const [q, k, v] = qkvViews(a.qkv, L, H);
        const [dq, dk, dv] = qkvViews(dQkv, L, H);
        runOp(be, 'attentionBackward', {
          dOut: dHidden, q, k, v, out: a.context, lse: a.lse!, keyStart: s.keyStart, keyEnd: s.keyEnd, dq, dk, dv,
          batch: B, queries: L, keys: L, heads: this.heads, headDim: this.headDim, scale: 1 / Math.sqrt(this.headDim), dropout: a.attentionProbsDropout,
        });
        runOp(be, 'linearBackward', {
          dy: dQkv, x: a.ln1, weight: w.qkvWeight, preAct: null, dx: dHidden, dWeight: gw.qkvWeight, dBias: gw.qkvBias,
          rows: T, inFeatures: H, outFeatures: 3 * H, activation: 'none', accumulate: false,
        });
        runOp(be, 'layerNormBackward', {
          dy: dHidden, x: a.input, gamma: w.inputLnWeight, mean: a.ln1Mean, rstd: a.ln1Rstd, dx: dh, dGamma: gw.inputLnWeight, dBeta: gw.inputLnBias,
          rows: T, hiddenSize: H, accumulate: true,
        }); // dh is now d(input)
      }

      const dEmbedded = this.dropoutGrad(dh, dBranch, T * H, s.embeddingDropout);
      runOp(be, 'embeddingBackward', {
        dOut: dEmbedded, inputIds: s.inputIds, positionIds: s.positionIds, blockPositionIds: s.blockPositionIds,
        dWordEmb: G.wordEmb, dPosEmb: G.posEmb, dBlockPosEmb: G.blockPosEmb, tokens: T, hiddenSize: H, vocab: c.vocab_size, positions: this.positionRows,
      });
    } finally {
      scratch.free();
      this.releaseState();
    }
  }

  /** Checks backward's options against the kept forward; returns the per-target weights, if any. */
  private checkBackwardOptions(options: BackwardOptions, s: ForwardState): Float32Array | null {
    const finite = (name: string, values: ArrayLike<number>, expected: number, what: string): void => {
      if (values.length !== expected) throw new RangeError(`backward: ${name} has ${values.length} entries, expected ${what} = ${expected}`);
      for (let i = 0; i < values.length; i++) if (!Number.isFinite(values[i]!)) throw new RangeError(`backward: ${name}[${i}] = ${values[i]}, expected a finite number`);
    };
    if (options.targetWeight !== undefined && !Number.isFinite(options.targetWeight)) throw new RangeError(`backward: targetWeight must be finite, got ${options.targetWeight}`);
    if (options.targetWeights !== undefined && options.targetWeight !== undefined) throw new TypeError('backward: give targetWeight or targetWeights, not both');
    if (options.targetWeights) finite('targetWeights', options.targetWeights, s.numTargets, 'the targets of the last forward');
    if (options.logitsGrad) {
      if (!s.logitsIndex) throw new RangeError('backward: logitsGrad needs a forward with logitsAt');
      finite('logitsGrad', options.logitsGrad, s.logitsIndex.size * this.config.vocab_size, 'logitsAt rows × vocab_size');
    }
    if (options.hiddenGrad) {
      if (!s.hiddenIndex) throw new RangeError('backward: hiddenGrad needs a forward with hiddenAt');
      finite('hiddenGrad', options.hiddenGrad, s.hiddenIndex.size * this.hiddenSize, 'hiddenAt rows × hidden_size');
    }
    return options.targetWeights ?? null;
  }

  /** Gradient through a dropout site: `dy` itself when nothing was dropped, else into `scratch`. */
  private dropoutGrad(dy: Tensor, scratch: Tensor, size: number, dropout: DropoutAttrs): Tensor {
    if (dropout.p === 0) return dy;
    runOp(this.backend, 'dropoutBackward', { dy, dx: scratch, size, dropout, accumulate: false });
    return scratch;
  }

  /** Frees the activations of a kept forward pass without running backward. */
  releaseState(): void {
    const s = this.state;
    if (!s) return;
    this.state = null;
    s.inputs.free();
    for (const a of s.layers) a.group.free();
    s.head.free();
  }

  /** Reads the oldest target losses nobody has looked at yet (each holds a device buffer) until at most `keep` remain. */
  private settleScores(keep: number, ignoreErrors = false): void {
    for (const s of [...this.unreadScores].slice(0, Math.max(0, this.unreadScores.size - keep))) {
      try {
        s.settle();
      } catch (e) {
        // dispose(): a device error while reading is reported by that result when asked; its buffers are freed either way.
        if (!ignoreErrors) throw e;
      }
    }
  }

  /** Whether a kept forward pass is waiting for backward(). */
  get hasPendingBackward(): boolean {
    return this.state !== null;
  }

  private checkAlive(): void {
    if (this.disposed) throw new Error('GlmModel: used after dispose()');
  }

  /** Frees parameters, gradients and any kept activations. */
  dispose(): void {
    if (this.disposed) return;
    this.releaseState();
    this.settleScores(0, true);
    for (const t of this.paramByName.values()) this.backend.free(t);
    if (this.low) for (const { copy } of this.low.all) this.backend.free(copy);
    if (this.gradByName) for (const t of this.gradByName.values()) this.backend.free(t);
    this.paramByName.clear();
    this.gradByName = null;
    this.disposed = true;
  }
}

/**
 * Q, K and V as strided views of a fused [B·L, 3H] QKV buffer: THUDM's query_key_value output is
 * [Q | K | V] per token (thirds), heads contiguous inside each third.
 */
export function qkvViews(qkv: Tensor, seqLength: number, hidden: number): [StridedView, StridedView, StridedView] {
  const rowStride = 3 * hidden;
  const batchStride = seqLength * rowStride;
  return [
    { tensor: qkv, offset: 0, rowStride, batchStride },
    { tensor: qkv, offset: hidden, rowStride, batchStride },
    { tensor: qkv, offset: 2 * hidden, rowStride, batchStride },
  ];
}
