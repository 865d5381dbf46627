// The GLM op catalogue: every operation the model spec needs, forward and backward, as named,
// typed entries. A backend is complete when it covers the catalogue; the reference backend
// (@blankglm/backend-ref) defines what each op computes, and the conformance suite
// (@blankglm/conformance) checks every other backend against it.
//
// Conventions
// - All shapes are row-major; sizes are attributes, tensors are flat buffers. `[T, H]` means T rows
//   of H elements. Outputs are written; arguments named `d*` with `accumulate: true` are added to.
// - Float tensors are f32 (or bf16 where a backend supports it); ids and indices are i32.
// - Dropout uses the counter hash of random.ts: element e of a dropout call with (seed, stream) is
//   dropped when counterUniform(seed, stream, e) < p, kept elements are scaled by 1/(1-p).
//   p = 0 means no dropout and no hashing.
// - Outputs never share a buffer with inputs, except where an op says so (dropoutAdd's out may be
//   its residual; the element-wise backward ops dropoutBackward and scale work in place).
import type { Backend, DType, Tensor } from './backend.js';

export type Activation = 'none' | 'gelu_tanh' | 'gelu_erf';

/** A strided view for attention: element (b, t, c) of a [B, T, C] operand is at
 *  offset + b*batchStride + t*rowStride + c. Lets Q, K and V be thirds of one fused QKV buffer,
 *  or a key/value cache with spare capacity. */
export interface StridedView {
  tensor: Tensor;
  offset: number;
  rowStride: number;
  batchStride: number;
}

export interface DropoutAttrs {
  /** Drop probability in [0, 1). */
  p: number;
  /** 32-bit seed of this call (typically derived from the step and the layer). */
  seed: number;
  /** 32-bit stream id separating dropout sites that share a seed. */
  stream: number;
}

export interface OpArgs {
  /** out[t] = wordEmb[inputIds[t]] + posEmb[positionIds[t]] (+ blockPosEmb[blockPositionIds[t]]). */
  embedding: {
    wordEmb: Tensor; // [V, H]
    posEmb: Tensor; // [P, H]
    blockPosEmb: Tensor | null; // [P, H]; null without 2D positions
    inputIds: Tensor; // i32 [T]
    positionIds: Tensor; // i32 [T]
    blockPositionIds: Tensor | null; // i32 [T]
    out: Tensor; // [T, H]
    tokens: number; // T
    hiddenSize: number; // H
    vocab: number; // V
    positions: number; // P (table rows)
  };
  /** dWordEmb[inputIds[t]] += dOut[t] and the same for both position tables (always accumulates). */
  embeddingBackward: {
    dOut: Tensor; // [T, H]
    inputIds: Tensor;
    positionIds: Tensor;
    blockPositionIds: Tensor | null;
    dWordEmb: Tensor; // [V, H]
    dPosEmb: Tensor; // [P, H]
    dBlockPosEmb: Tensor | null; // [P, H]
    tokens: number;
    hiddenSize: number;
    vocab: number;
    positions: number;
  };
  /** y = (x - mean) * rstd * gamma + beta per row; saves mean and rstd (= 1/sqrt(var + eps), biased var). */
  layerNorm: {
    x: Tensor; // [R, H]
    gamma: Tensor; // [H]
    beta: Tensor; // [H]
    y: Tensor; // [R, H]
    mean: Tensor; // [R]
    rstd: Tensor; // [R]
    rows: number;
    hiddenSize: number;
    eps: number;
  };
  /** dx (= or +=), dGamma +=, dBeta +=. */
  layerNormBackward: {
    dy: Tensor; // [R, H]
    x: Tensor;
    gamma: Tensor;
    mean: Tensor;
    rstd: Tensor;
    dx: Tensor; // [R, H]
    dGamma: Tensor; // [H]
    dBeta: Tensor; // [H]
    rows: number;
    hiddenSize: number;
    accumulate: boolean; // dx += instead of dx =
  };
  /**
   * y = act(x · Wᵀ + bias) with W stored [N, K] (PyTorch Linear layout). With an activation the
   * pre-activation is written to `preAct` for the backward pass (also with 'none', whenever given).
   */
  linear: {
    x: Tensor; // [M, K]
    weight: Tensor; // [N, K]
    bias: Tensor | null; // [N]
    y: Tensor; // [M, N]
    preAct: Tensor | null; // [M, N], required when activation != 'none'
    rows: number; // M
    inFeatures: number; // K
    outFeatures: number; // N
    activation: Activation;
  };
  /** Given dy: dx (= or +=) = dz · W, dWeight += dzᵀ · x, dBias += Σ_rows dz, where dz = dy ⊙ act'(preAct). */
  linearBackward: {
    dy: Tensor; // [M, N]
    x: Tensor; // [M, K]
    weight: Tensor; // [N, K]
    preAct: Tensor | null; // [M, N] when activation != 'none'
    dx: Tensor | null; // [M, K]; null when not needed
    dWeight: Tensor; // [N, K]
    dBias: Tensor | null; // [N]
    rows: number;
    inFeatures: number;
    outFeatures: number;
    activation: Activation;
    accumulate: boolean; // dx += instead of dx =
  };
  /**
   * Multi-head attention with GLM's mask given as per-query key ranges (see batch.ts):
   * out[b, i, h*D:(h+1)*D] = Σ_j softmax_j(scale · q·k_j) · v_j over j in [keyStart, keyEnd) of query (b, i),
   * with attention-probability dropout (stream id = dropout.stream + b*heads + h, element = i*keys + j).
   * Saves the log-sum-exp of the scaled scores per (b, h, i) for the backward pass.
   */
  attention: {
    q: StridedView; // [B, Lq, heads*D]
    k: StridedView; // [B, Lk, heads*D]
    v: StridedView; // [B, Lk, heads*D]
    keyStart: Tensor; // i32 [B, Lq], absolute key indices
    keyEnd: Tensor; // i32 [B, Lq], exclusive
    out: Tensor; // [B, Lq, heads*D], contiguous
    lse: Tensor | null; // [B, heads, Lq]; null when no backward follows (inference)
    batch: number;
    queries: number; // Lq
    keys: number; // Lk
    heads: number;
    headDim: number; // D
    scale: number; // 1/sqrt(D) for GLM
    dropout: DropoutAttrs;
  };
  /**
   * dq, dk, dv (=) from dOut, recomputing probabilities from q, k and lse. Views as in `attention`;
   * keys that no query sees get zero gradients. Gradient views must not overlap (batchStride > 0
   * when batch > 1).
   */
  attentionBackward: {
    dOut: Tensor; // [B, Lq, heads*D]
    q: StridedView;
    k: StridedView;
    v: StridedView;
    out: Tensor;
    lse: Tensor;
    keyStart: Tensor;
    keyEnd: Tensor;
    dq: StridedView;
    dk: StridedView;
    dv: StridedView;
    batch: number;
    queries: number;
    keys: number;
    heads: number;
    headDim: number;
    scale: number;
    dropout: DropoutAttrs;
  };
  /** out = (residual ?? 0) + dropout(x). `out` may be the same tensor as `residual` (in place). */
  dropoutAdd: {
    x: Tensor; // [n]
    residual: Tensor | null; // [n]
    out: Tensor; // [n]
    size: number;
    dropout: DropoutAttrs;
  };
  /** dx (= or +=) = dy ⊙ keep / (1 - p), the same mask as `dropoutAdd` with the same attributes. */
  dropoutBackward: {
    dy: Tensor;
    dx: Tensor;
    size: number;
    dropout: DropoutAttrs;
    accumulate: boolean;
  };
  /** out[t] = x[index[t]] for rows of width `width`. */
  gatherRows: {
    x: Tensor; // [R, W]
    index: Tensor; // i32 [T]
    out: Tensor; // [T, W]
    count: number; // T
    rows: number; // R
    width: number; // W
  };
  /** dx[index[t]] += dOut[t]. */
  scatterAddRows: {
    dOut: Tensor; // [T, W]
    index: Tensor; // i32 [T]
    dx: Tensor; // [R, W]
    count: number;
    rows: number;
    width: number;
  };
  /** logits = hidden · wordEmbᵀ (the tied output projection, no bias). */
  logits: {
    hidden: Tensor; // [T, H]
    wordEmb: Tensor; // [V, H]
    out: Tensor; // [T, V]
    tokens: number;
    hiddenSize: number; // H
    vocab: number;
  };
  /**
   * Tied output projection + cross-entropy at the given rows only, never needing all logits at once:
   * loss[t] = (1-ε)·(lse_t − z_t[target_t]) + ε·(lse_t − mean_v z_t[v]), z_t = hidden[t]·wordEmbᵀ.
   * Saves lse[t] for the backward pass.
   */
  crossEntropy: {
    hidden: Tensor; // [T, H]
    wordEmb: Tensor; // [V, H]
    targets: Tensor; // i32 [T]
    losses: Tensor; // [T]
    lse: Tensor; // [T]
    tokens: number;
    hiddenSize: number;
    vocab: number;
    labelSmoothing: number; // ε
  };
  /** dHidden (=) and dWordEmb (+=) of Σ_t weights[t]·loss[t]. */
  crossEntropyBackward: {
    hidden: Tensor;
    wordEmb: Tensor;
    targets: Tensor;
    lse: Tensor;
    weights: Tensor; // [T]
    dHidden: Tensor; // [T, H]
    dWordEmb: Tensor; // [V, H]
    tokens: number;
    hiddenSize: number;
    vocab: number;
    labelSmoothing: number;
  };
  /**
   * AdamW with decoupled weight decay (PyTorch AdamW / apex FusedAdam in adam_w_mode), in place:
   * g = grad·gradScale; m = β1·m + (1-β1)·g; v = β2·v + (1-β2)·g²;
   * param -= lr·( (m/(1-β1^step)) / (sqrt(v/(1-β2^step)) + eps) + weightDecay·param ).
   */
  adamw: {
    param: Tensor;
    grad: Tensor;
    m: Tensor;
    v: Tensor;
    size: number;
    lr: number;
    beta1: number;
    beta2: number;
    eps: number;
    weightDecay: number;
    step: number; // 1-based
    gradScale: number;
  };
  /** out[outIndex] = Σ x² (accumulated in at least f32 with pairwise or wider sums). */
  sumSquares: {
    x: Tensor;
    size: number;
    out: Tensor; // f32, at least outIndex+1 elements
    outIndex: number;
  };
  /** x[offset : offset+size] = value. */
  fill: {
    x: Tensor;
    offset: number;
    size: number;
    value: number;
  };
  /** dst[dstOffset + i] = src[srcOffset + i] for i < size (buffers may be the same; ranges must not overlap). */
  copy: {
    src: Tensor;
    srcOffset: number;
    dst: Tensor;
    dstOffset: number;
    size: number;
  };
  /** x[0 : size] *= factor. */
  scale: {
    x: Tensor;
    size: number;
    factor: number;
  };
}

export type OpName = keyof OpArgs;

export interface OpInfo {
  /** One line on what it computes. */
  summary: string;
  /** The op that computes its gradients, if any. */
  backward?: OpName;
  /** The forward op, for backward ops. */
  forwardOf?: OpName;
  /** Argument names of tensors (or views) the op writes; everything else is read only. */
  writes: readonly string[];
}

export const OP_CATALOGUE: Record<OpName, OpInfo> = {
  embedding: { summary: 'word + position + block-position embeddings', backward: 'embeddingBackward', writes: ['out'] },
  embeddingBackward: { summary: 'scatter-add into the three embedding tables', forwardOf: 'embedding', writes: ['dWordEmb', 'dPosEmb', 'dBlockPosEmb'] },
  layerNorm: { summary: 'layer normalisation per row', backward: 'layerNormBackward', writes: ['y', 'mean', 'rstd'] },
  layerNormBackward: { summary: 'layer-norm gradients', forwardOf: 'layerNorm', writes: ['dx', 'dGamma', 'dBeta'] },
  linear: { summary: 'x·Wᵀ + b with an optional GELU epilogue', backward: 'linearBackward', writes: ['y', 'preAct'] },
  linearBackward: { summary: 'linear (and GELU) gradients', forwardOf: 'linear', writes: ['dx', 'dWeight', 'dBias'] },
  attention: { summary: 'multi-head attention over per-query key ranges (GLM prefix mask, packed segments)', backward: 'attentionBackward', writes: ['out', 'lse'] },
  attentionBackward: { summary: 'attention gradients for q, k, v', forwardOf: 'attention', writes: ['dq', 'dk', 'dv'] },
  dropoutAdd: { summary: 'residual + dropout(x)', backward: 'dropoutBackward', writes: ['out'] },
  dropoutBackward: { summary: 'gradient through dropout', forwardOf: 'dropoutAdd', writes: ['dx'] },
  gatherRows: { summary: 'select rows (e.g. target positions)', backward: 'scatterAddRows', writes: ['out'] },
  scatterAddRows: { summary: 'add rows back at their indices', forwardOf: 'gatherRows', writes: ['dx'] },
  logits: { summary: 'tied output projection hidden·Eᵀ', writes: ['out'] },
  crossEntropy: { summary: 'output projection + cross-entropy at target rows only', backward: 'crossEntropyBackward', writes: ['losses', 'lse'] },
  crossEntropyBackward: { summary: 'cross-entropy gradients for hidden and the tied embedding', forwardOf: 'crossEntropy', writes: ['dHidden', 'dWordEmb'] },
  adamw: { summary: 'AdamW update in place', writes: ['param', 'm', 'v'] },
  sumSquares: { summary: 'Σx² (gradient norms)', writes: ['out'] },
  fill: { summary: 'set a range to a constant', writes: ['x'] },
  copy: { summary: 'copy a range between buffers', writes: ['dst'] },
  scale: { summary: 'multiply in place', writes: ['x'] },
};

export const OP_NAMES = Object.keys(OP_CATALOGUE) as OpName[];

function need(t: Tensor | null, name: string, size: number, dtypes: readonly DType[]): void {
  if (!t) throw new RangeError(`${name} is required`);
  if (!dtypes.includes(t.dtype)) throw new TypeError(`${name}${t.label ? ` (${t.label})` : ''} has dtype ${t.dtype}, expected ${dtypes.join(' or ')}`);
  if (t.size < size) throw new RangeError(`${name}${t.label ? ` (${t.label})` : ''} has ${t.size} elements, needs at least ${size}`);
}

function needView(v: StridedView, name: string, batch: number, rows: number, width: number): void {
  const last = v.offset + (batch - 1) * v.batchStride + (rows - 1) * v.rowStride + width;
  need(v.tensor, name, last, FLOAT);
  if (v.offset < 0 || v.rowStride < width || v.batchStride < 0) throw new RangeError(`${name}: invalid view (offset ${v.offset}, rowStride ${v.rowStride}, batchStride ${v.batchStride})`);
}

function positive(n: number, name: string): void {
  if (!Number.isInteger(n) || n <= 0) throw new RangeError(`${name} must be a positive integer, got ${n}`);
}

const FLOAT: readonly DType[] = ['f32', 'bf16'];
const INT: readonly DType[] = ['i32'];

const ACTIVATIONS: readonly Activation[] = ['none', 'gelu_tanh', 'gelu_erf'];

function nonNegative(n: number, name: string): void {
  if (!Number.isInteger(n) || n < 0) throw new RangeError(`${name} must be a non-negative integer, got ${n}`);
}

function checkDropout(d: DropoutAttrs, op: string): void {
  if (!(d.p >= 0 && d.p < 1)) throw new RangeError(`${op}: dropout p must be in [0, 1), got ${d.p}`);
}

/**
 * Checks an op call's tensors against its size attributes (dtype, length) before anything runs,
 * so a wrong call fails with a message naming the argument instead of corrupting memory.
 * Every backend calls it (it is cheap: no data is touched).
 */
export function validateOpArgs<K extends OpName>(op: K, args: OpArgs[K]): void {
  const a = args as OpArgs[OpName] & Record<string, unknown>;
  switch (op) {
    case 'embedding':
    case 'embeddingBackward': {
      const e = a as OpArgs['embedding'] & OpArgs['embeddingBackward'];
      positive(e.tokens, 'tokens');
      positive(e.hiddenSize, 'hiddenSize');
      need(e.inputIds, 'inputIds', e.tokens, INT);
      need(e.positionIds, 'positionIds', e.tokens, INT);
      if (op === 'embedding') {
        need(e.wordEmb, 'wordEmb', e.vocab * e.hiddenSize, FLOAT);
        need(e.posEmb, 'posEmb', e.positions * e.hiddenSize, FLOAT);
        need(e.out, 'out', e.tokens * e.hiddenSize, FLOAT);
        if ((e.blockPosEmb === null) !== (e.blockPositionIds === null)) throw new RangeError('blockPosEmb and blockPositionIds must both be given or both be null');
        if (e.blockPosEmb) need(e.blockPosEmb, 'blockPosEmb', e.positions * e.hiddenSize, FLOAT);
      } else {
        need(e.dOut, 'dOut', e.tokens * e.hiddenSize, FLOAT);
        need(e.dWordEmb, 'dWordEmb', e.vocab * e.hiddenSize, FLOAT);
        need(e.dPosEmb, 'dPosEmb', e.positions * e.hiddenSize, FLOAT);
        if ((e.dBlockPosEmb === null) !== (e.blockPositionIds === null)) throw new RangeError('dBlockPosEmb and blockPositionIds must both be given or both be null');
        if (e.dBlockPosEmb) need(e.dBlockPosEmb, 'dBlockPosEmb', e.positions * e.hiddenSize, FLOAT);
      }
      if (e.blockPositionIds) need(e.blockPositionIds, 'blockPositionIds', e.tokens, INT);
      return;
    }
    case 'layerNorm': {
      const l = a as OpArgs['layerNorm'];
      positive(l.rows, 'rows');
      positive(l.hiddenSize, 'hiddenSize');
      need(l.x, 'x', l.rows * l.hiddenSize, FLOAT);
      need(l.gamma, 'gamma', l.hiddenSize, FLOAT);
      need(l.beta, 'beta', l.hiddenSize, FLOAT);
      need(l.y, 'y', l.rows * l.hiddenSize, FLOAT);
      if (!(l.eps > 0)) throw new RangeError(`layerNorm: eps must be > 0, got ${l.eps}`);
      need(l.mean, 'mean', l.rows, ['f32']);
      need(l.rstd, 'rstd', l.rows, ['f32']);
      return;
    }
    case 'layerNormBackward': {
      const l = a as OpArgs['layerNormBackward'];
      positive(l.rows, 'rows');
      positive(l.hiddenSize, 'hiddenSize');
      for (const n of ['dy', 'x', 'dx'] as const) need(l[n], n, l.rows * l.hiddenSize, FLOAT);
      for (const n of ['gamma', 'dGamma', 'dBeta'] as const) need(l[n], n, l.hiddenSize, FLOAT);
      need(l.mean, 'mean', l.rows, ['f32']);
      need(l.rstd, 'rstd', l.rows, ['f32']);
      return;
    }
    case 'linear':
    case 'linearBackward': {
      const l = a as OpArgs['linear'] & OpArgs['linearBackward'];
      positive(l.rows, 'rows');
      positive(l.inFeatures, 'inFeatures');
      positive(l.outFeatures, 'outFeatures');
      if (!ACTIVATIONS.includes(l.activation)) throw new RangeError(`${op}: activation must be one of ${ACTIVATIONS.join(', ')}, got '${l.activation}'`);
      need(l.x, 'x', l.rows * l.inFeatures, FLOAT);
      need(l.weight, 'weight', l.outFeatures * l.inFeatures, FLOAT);
      if (l.activation !== 'none') need(l.preAct, 'preAct', l.rows * l.outFeatures, FLOAT);
      if (op === 'linear') {
        if (l.bias) need(l.bias, 'bias', l.outFeatures, FLOAT);
        need(l.y, 'y', l.rows * l.outFeatures, FLOAT);
      } else {
        need(l.dy, 'dy', l.rows * l.outFeatures, FLOAT);
        if (l.dx) need(l.dx, 'dx', l.rows * l.inFeatures, FLOAT);
        need(l.dWeight, 'dWeight', l.outFeatures * l.inFeatures, FLOAT);
        if (l.dBias) need(l.dBias, 'dBias', l.outFeatures, FLOAT);
      }
      return;
    }
    case 'attention':
    case 'attentionBackward': {
      const t = a as OpArgs['attention'] & OpArgs['attentionBackward'];
      positive(t.batch, 'batch');
      positive(t.queries, 'queries');
      positive(t.keys, 'keys');
      positive(t.heads, 'heads');
      positive(t.headDim, 'headDim');
      checkDropout(t.dropout, op);
      const w = t.heads * t.headDim;
      needView(t.q, 'q', t.batch, t.queries, w);
      needView(t.k, 'k', t.batch, t.keys, w);
      needView(t.v, 'v', t.batch, t.keys, w);
      need(t.keyStart, 'keyStart', t.batch * t.queries, INT);
      need(t.keyEnd, 'keyEnd', t.batch * t.queries, INT);
      need(t.out, 'out', t.batch * t.queries * w, FLOAT);
      if (op === 'attentionBackward') {
        need(t.dOut, 'dOut', t.batch * t.queries * w, FLOAT);
        need(t.lse, 'lse', t.batch * t.heads * t.queries, ['f32']);
        needView(t.dq, 'dq', t.batch, t.queries, w);
        needView(t.dk, 'dk', t.batch, t.keys, w);
        needView(t.dv, 'dv', t.batch, t.keys, w);
        if (t.batch > 1 && (t.dq.batchStride === 0 || t.dk.batchStride === 0 || t.dv.batchStride === 0)) {
          throw new RangeError('attentionBackward: gradient views need batchStride > 0 when batch > 1');
        }
      } else if (t.lse) {
        need(t.lse, 'lse', t.batch * t.heads * t.queries, ['f32']);
      }
      return;
    }
    case 'dropoutAdd': {
      const d = a as OpArgs['dropoutAdd'];
      positive(d.size, 'size');
      checkDropout(d.dropout, op);
      need(d.x, 'x', d.size, FLOAT);
      if (d.residual) need(d.residual, 'residual', d.size, FLOAT);
      need(d.out, 'out', d.size, FLOAT);
      return;
    }
    case 'dropoutBackward': {
      const d = a as OpArgs['dropoutBackward'];
      positive(d.size, 'size');
      checkDropout(d.dropout, op);
      need(d.dy, 'dy', d.size, FLOAT);
      need(d.dx, 'dx', d.size, FLOAT);
      return;
    }
    case 'gatherRows':
    case 'scatterAddRows': {
      const g = a as OpArgs['gatherRows'] & OpArgs['scatterAddRows'];
      positive(g.count, 'count');
      positive(g.rows, 'rows');
      positive(g.width, 'width');
      need(g.index, 'index', g.count, INT);
      if (op === 'gatherRows') {
        need(g.x, 'x', g.rows * g.width, FLOAT);
        need(g.out, 'out', g.count * g.width, FLOAT);
      } else {
        need(g.dOut, 'dOut', g.count * g.width, FLOAT);
        need(g.dx, 'dx', g.rows * g.width, FLOAT);
      }
      return;
    }
    case 'logits': {
      const l = a as OpArgs['logits'];
      positive(l.tokens, 'tokens');
      positive(l.hiddenSize, 'hiddenSize');
      positive(l.vocab, 'vocab');
      need(l.hidden, 'hidden', l.tokens * l.hiddenSize, FLOAT);
      need(l.wordEmb, 'wordEmb', l.vocab * l.hiddenSize, FLOAT);
      need(l.out, 'out', l.tokens * l.vocab, ['f32']);
      return;
    }
    case 'crossEntropy':
    case 'crossEntropyBackward': {
      const c = a as OpArgs['crossEntropy'] & OpArgs['crossEntropyBackward'];
      positive(c.tokens, 'tokens');
      positive(c.hiddenSize, 'hiddenSize');
      positive(c.vocab, 'vocab');
      if (!(c.labelSmoothing >= 0 && c.labelSmoothing < 1)) throw new RangeError(`labelSmoothing must be in [0, 1), got ${c.labelSmoothing}`);
      need(c.hidden, 'hidden', c.tokens * c.hiddenSize, FLOAT);
      need(c.wordEmb, 'wordEmb', c.vocab * c.hiddenSize, FLOAT);
      need(c.targets, 'targets', c.tokens, INT);
      need(c.lse, 'lse', c.tokens, ['f32']);
      if (op === 'crossEntropy') need(c.losses, 'losses', c.tokens, ['f32']);
      else {
        need(c.weights, 'weights', c.tokens, ['f32']);
        need(c.dHidden, 'dHidden', c.tokens * c.hiddenSize, FLOAT);
        need(c.dWordEmb, 'dWordEmb', c.vocab * c.hiddenSize, FLOAT);
      }
      return;
    }
    case 'adamw': {
      const o = a as OpArgs['adamw'];
      positive(o.size, 'size');
      positive(o.step, 'step');
      for (const n of ['beta1', 'beta2'] as const) if (!(o[n] >= 0 && o[n] < 1)) throw new RangeError(`adamw: ${n} must be in [0, 1), got ${o[n]}`);
      if (!(o.eps > 0)) throw new RangeError(`adamw: eps must be > 0, got ${o.eps}`);
      for (const n of ['param', 'grad'] as const) need(o[n], n, o.size, FLOAT);
      for (const n of ['m', 'v'] as const) need(o[n], n, o.size, ['f32']);
      return;
    }
    case 'sumSquares': {
      const s = a as OpArgs['sumSquares'];
      positive(s.size, 'size');
      nonNegative(s.outIndex, 'outIndex');
      need(s.x, 'x', s.size, FLOAT);
      need(s.out, 'out', s.outIndex + 1, ['f32']);
      return;
    }
    case 'fill': {
      const f = a as OpArgs['fill'];
      nonNegative(f.offset, 'offset');
      nonNegative(f.size, 'size');
      need(f.x, 'x', f.offset + f.size, ['f32', 'bf16', 'i32', 'u8']);
      return;
    }
    case 'copy': {
      const c = a as OpArgs['copy'];
      nonNegative(c.srcOffset, 'srcOffset');
      nonNegative(c.dstOffset, 'dstOffset');
      nonNegative(c.size, 'size');
      need(c.src, 'src', c.srcOffset + c.size, ['f32', 'bf16', 'i32', 'u8']);
      need(c.dst, 'dst', c.dstOffset + c.size, [c.src.dtype]);
      if (c.src.id === c.dst.id && c.srcOffset < c.dstOffset + c.size && c.dstOffset < c.srcOffset + c.size && c.srcOffset !== c.dstOffset) {
        throw new RangeError('copy: source and destination ranges overlap');
      }
      return;
    }
    case 'scale': {
      const s = a as OpArgs['scale'];
      need(s.x, 'x', s.size, FLOAT);
      return;
    }
    default: {
      const never: never = op as never;
      throw new RangeError(`unknown op '${String(never)}'`);
    }
  }
}

/** Convenience for code holding a Backend: run `op` after validating its arguments. */
export function runOp<K extends OpName>(backend: Backend, op: K, args: OpArgs[K]): void {
  validateOpArgs(op, args);
  backend.run(op, args);
}
