// Memory planning: what a GLM configuration needs in the one WebAssembly memory, worked out from
// the model and batch before anything is allocated, so "does not fit" is an error with the numbers
// and a suggestion instead of an allocation failure halfway through a training step.
//
// The activation counts follow @blankglm/model-spec's GlmModel: per layer it keeps, for backward,
//   ln1, context, attnOut, mid, ln2, output: 6·T·H;  qkv: 3·T·H;  fc1Pre, fc1Out: 8·T·H
// i.e. 17·T·H floats (+ 4·T statistics and B·heads·L log-sum-exps); the backward pass adds
// 11·T·H floats of scratch (dFinal, dResidual, dBranch, dHidden, dFc1 4·T·H, dQkv 3·T·H).
import { MAX_PAGES, OutOfMemoryError, PAGE_BYTES, formatBytes } from './arena.js';

/** The fields of a GLM config (model-spec's GlmConfig) the plan needs. */
export interface PlanConfig {
  num_layers: number;
  hidden_size: number;
  num_attention_heads: number;
  vocab_size: number;
  max_sequence_length: number;
  block_position_encoding: boolean;
}

export interface PlanOptions {
  batchSize: number;
  /** Tokens per row (default: max_sequence_length). */
  seqLength?: number;
  /** 'train': parameters, gradients, AdamW state, saved activations, backward scratch (default).
   *  'inference': parameters and one layer's working set. */
  mode?: 'train' | 'inference';
  /** Fraction of tokens with a loss (GLM: the blanked spans; default 0.15·2 ≈ 0.3 incl. Part B). */
  targetFraction?: number;
  /** Worker threads (each has 2 MiB of scratch; default 2). */
  threads?: number;
  /** Default and maximum: 4 GiB, what 32-bit WebAssembly can address. */
  limitBytes?: number;
}

export interface MemoryPlan {
  parameters: number;
  /** Parameter count. */
  parameterCount: number;
  gradients: number;
  optimizerState: number;
  activations: number;
  backwardScratch: number;
  /** Per-thread scratch, the cross-entropy chunk, ops' temporaries, allocator guards and padding. */
  workspace: number;
  totalBytes: number;
  limitBytes: number;
  fits: boolean;
  /** One line per component, then the total against the limit. */
  summary: string;
}

/** GLM's parameter count: tied word embedding, two position tables, 12H² + 13H per layer, final LN. */
export function glmParameterCount(c: PlanConfig): number {
  const H = c.hidden_size;
  const positions = (c.max_sequence_length + 1) * H;
  return c.vocab_size * H + positions * (c.block_position_encoding ? 2 : 1) + c.num_layers * (12 * H * H + 13 * H) + 2 * H;
}

function positiveInt(v: number, name: string): void {
  if (!Number.isInteger(v) || v <= 0) throw new RangeError(`planMemory: ${name} must be a positive integer, got ${v}`);
}

export function planMemory(config: PlanConfig, opts: PlanOptions): MemoryPlan {
  for (const k of ['num_layers', 'hidden_size', 'num_attention_heads', 'vocab_size', 'max_sequence_length'] as const) positiveInt(config[k], `config.${k}`);
  positiveInt(opts.batchSize, 'batchSize');
  const L = opts.seqLength ?? config.max_sequence_length;
  positiveInt(L, 'seqLength');
  if (L > config.max_sequence_length + 1) throw new RangeError(`planMemory: seqLength ${L} exceeds the position table (${config.max_sequence_length + 1} rows)`);
  const mode = opts.mode ?? 'train';
  const threads = opts.threads ?? 2;
  const limitBytes = opts.limitBytes ?? MAX_PAGES * PAGE_BYTES;
  const B = opts.batchSize;
  const T = B * L;
  const H = config.hidden_size;
  const targets = Math.ceil(T * (opts.targetFraction ?? 0.3));
  const count = glmParameterCount(config);
  const f = 4;
  const parameters = count * f;
  const train = mode === 'train';
  const gradients = train ? parameters : 0;
  const optimizerState = train ? 2 * parameters : 0;
  // Inputs (embedded, embeddingOut, ids, key ranges) + per layer (kept in training, one at a time
  // otherwise) + head (finalLn, target rows, losses).
  const perLayer = (17 * T * H + 4 * T + B * config.num_attention_heads * L) * f;
  const activations = (2 * T * H + 5 * T) * f + (train ? config.num_layers : 1) * perLayer + (T * H + 2 * T + targets * (H + 6)) * f;
  const backwardScratch = train ? (11 * T * H + targets * (H + 1)) * f : 0;
  const ceChunk = Math.min(8 << 20, targets * config.vocab_size * f);
  const buffers = 30 * config.num_layers + 60; // tensors alive at once, each with 32+ bytes of guards
  // Ops' temporaries (the cross-entropy chunk, linearBackward's dz [T, 4H], attention blocks) and
  // allocator padding: measured on GLM-Base 4 × 512 (2 and 16 threads) the peak ran 0.5% over the
  // components above, so 2% of them (at least 32 MiB) is kept in reserve.
  const components = parameters + gradients + optimizerState + activations + backwardScratch;
  const reserve = Math.max(32 << 20, Math.ceil(0.02 * components));
  const workspace = threads * (2 << 20) + ceChunk + buffers * 64 + reserve;
  const totalBytes = parameters + gradients + optimizerState + activations + backwardScratch + workspace;
  const fits = totalBytes <= limitBytes;
  const lines = [
    `parameters       ${formatBytes(parameters)} (${(count / 1e6).toFixed(1)} M f32)`,
    ...(train ? [`gradients        ${formatBytes(gradients)}`, `AdamW m and v    ${formatBytes(optimizerState)}`] : []),
    `activations      ${formatBytes(activations)} (batch ${B} × ${L} tokens${train ? `, ${config.num_layers} layers kept for backward` : ''})`,
    ...(train ? [`backward scratch ${formatBytes(backwardScratch)}`] : []),
    `workspace        ${formatBytes(workspace)}`,
    `total            ${formatBytes(totalBytes)} of ${formatBytes(limitBytes)}${fits ? '' : ' — does not fit'}`,
  ];
  return { parameters, parameterCount: count, gradients, optimizerState, activations, backwardScratch, workspace, totalBytes, limitBytes, fits, summary: lines.join('\n') };
}

/** The largest batch size (rows of seqLength) that fits, or 0 when not even one row does. */
export function largestBatchThatFits(config: PlanConfig, opts: Omit<PlanOptions, 'batchSize'>): number {
  if (!planMemory(config, { ...opts, batchSize: 1 }).fits) return 0;
  let lo = 1;
  let hi = 2;
  while (planMemory(config, { ...opts, batchSize: hi }).fits && hi < 1 << 20) hi *= 2;
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (planMemory(config, { ...opts, batchSize: mid }).fits) lo = mid;
    else hi = mid;
  }
  return lo;
}

/**
 * Plans the configuration and throws an OutOfMemoryError naming every component and a way out
 * (a batch that fits, or — when even the weights and optimizer state do not — what would).
 */
export function assertFits(config: PlanConfig, opts: PlanOptions): MemoryPlan {
  const plan = planMemory(config, opts);
  if (plan.fits) return plan;
  const mode = opts.mode ?? 'train';
  const best = largestBatchThatFits(config, opts);
  const L = opts.seqLength ?? config.max_sequence_length;
  let suggestion: string;
  if (best > 0) suggestion = `a batch of ${best} × ${L} tokens fits; lower the batch size (or use gradient accumulation over micro-batches)`;
  else if (mode === 'train') {
    const fixed = plan.parameters + plan.gradients + plan.optimizerState;
    suggestion =
      fixed > plan.limitBytes
        ? `the weights, gradients and AdamW state alone need ${formatBytes(fixed)}: train this model on the gpu backend, or run inference only (${formatBytes(planMemory(config, { ...opts, mode: 'inference' }).totalBytes)} at this batch)`
        : `not even one row of ${L} tokens fits: shorten the sequences or use the gpu backend`;
  } else suggestion = 'use a smaller model or the gpu backend';
  throw new OutOfMemoryError(
    `wasm backend: ${mode === 'train' ? 'training' : 'inference'} with batch ${opts.batchSize} × ${L} tokens needs ${formatBytes(plan.totalBytes)}, ` +
      `more than WebAssembly's ${formatBytes(plan.limitBytes)}:\n${plan.summary}\nSuggestion: ${suggestion}.`,
  );
}
