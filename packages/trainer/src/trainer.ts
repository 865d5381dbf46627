// The training loop shared by pretraining and fine-tuning: a batch source, an objective (loss and
// its gradient), AdamW and a learning-rate schedule. One `trainStep()` = `accumulation` micro-
// batches, forward + backward each, then one optimizer update:
//
//   targets  = Σ over micro-batches of their loss-bearing tokens           (counted before any forward)
//   gradient = Σ_micro backward(targetWeight = 1 / targets)                  → ∇ of the token-averaged loss
//   loss     = Σ target losses / targets                                      (glm-reference §1.8)
//   update   = AdamW(lr = schedule.at(step)), global-norm clipping folded in
//
// Everything random is either in the batch source's state (data) or derived from (seed, step,
// micro-batch) by a counter hash (dropout), so `state()` + the parameters are the whole position:
// a restored trainer continues bit for bit.
import { counterHash32 } from '@blankglm/tensor';
import type { AdamW, AdamWState, GlmModel } from '@blankglm/model-spec';
import type { AnnealingLR } from './schedule.js';

/** A stream of (micro-)batches whose position can be saved and restored exactly. */
export interface BatchSource<B> {
  next(): B;
  /** The stream's position, JSON-serialisable. */
  state(): unknown;
  restore(state: unknown): void;
}

/**
 * Loss sums over one batch: `lossSum / targets` is its token-averaged loss. A training step may give
 * `lossSum` as a function when the losses still sit on the device: the trainer calls it once every
 * micro-batch is issued and the gradient norm read, so a step waits for the device once.
 */
export interface LossSums {
  lossSum: number | (() => number);
  targets: number;
}

/** The number behind a LossSums.lossSum (calling it when it is deferred). */
export const lossSumOf = (s: LossSums): number => (typeof s.lossSum === 'function' ? s.lossSum() : s.lossSum);

/** What a batch type needs to be trained on: counts, a training forward/backward and an evaluation forward. */
export interface Objective<B> {
  /** Loss-bearing tokens of a batch, known before the forward (the original averages over the whole batch). */
  targets(batch: B): number;
  /** Tokens the model processes (for tokens/s), padding excluded. */
  tokens(batch: B): number;
  /** Train-mode forward and a backward that adds `targetWeight × ∂loss_i` into the gradients. */
  trainStep(model: GlmModel, batch: B, options: { seed: number; targetWeight: number }): LossSums;
  /** Eval-mode forward (no dropout, no activations kept). */
  evaluate(model: GlmModel, batch: B): LossSums;
}

/** The loss was NaN or infinite: the update was not applied. */
export class NonFiniteLossError extends Error {
  constructor(
    readonly step: number,
    readonly value: number,
    what = 'loss',
  ) {
    super(`the ${what} became ${value} at step ${step}; the update was not applied (lower --lr, or check the data)`);
    this.name = 'NonFiniteLossError';
  }
}

export interface TrainerOptions<B> {
  model: GlmModel;
  optimizer: AdamW;
  schedule: AnnealingLR;
  source: BatchSource<B>;
  objective: Objective<B>;
  /** Micro-batches per update (default 1). */
  accumulation?: number;
  /** Dropout seeds derive from it (with the step and micro-batch index). */
  seed: number;
}

export interface StepMetrics {
  /** Updates done, this one included. */
  step: number;
  /** Token-averaged loss over the step's micro-batches. */
  loss: number;
  targets: number;
  tokens: number;
  lr: number;
  /** Global gradient norm before clipping. */
  gradNorm: number;
  /** The factor clipping scaled the gradients by (1: not clipped). */
  gradScale: number;
  /** Tokens processed since the run began (resumes included). */
  tokensSeen: number;
  seconds: number;
}

/** Everything besides the parameters that a resumed trainer needs. */
export interface TrainerState {
  step: number;
  tokensSeen: number;
  targetsSeen: number;
  seed: number;
  accumulation: number;
  source: unknown;
  optimizer: AdamWState;
}

/** A stream label for dropout seeds ('drop' in ASCII). */
const DROPOUT_STREAM = 0x64726f70;

export class Trainer<B> {
  readonly model: GlmModel;
  readonly optimizer: AdamW;
  readonly schedule: AnnealingLR;
  readonly source: BatchSource<B>;
  readonly objective: Objective<B>;
  readonly accumulation: number;
  readonly seed: number;
  private stepCount = 0;
  private tokens = 0;
  private targetCount = 0;

  constructor(options: TrainerOptions<B>) {
    this.model = options.model;
    this.optimizer = options.optimizer;
    this.schedule = options.schedule;
    this.source = options.source;
    this.objective = options.objective;
    this.accumulation = options.accumulation ?? 1;
    this.seed = options.seed;
    if (!Number.isInteger(this.accumulation) || this.accumulation < 1) throw new RangeError(`accumulation must be a positive integer, got ${this.accumulation}`);
    if (!Number.isSafeInteger(this.seed)) throw new RangeError(`seed must be an integer, got ${this.seed}`);
  }

  get step(): number {
    return this.stepCount;
  }

  get tokensSeen(): number {
    return this.tokens;
  }

  /** The 32-bit dropout seed of micro-batch `micro` of update `step` (0-based). */
  dropoutSeed(step: number, micro: number): number {
    return counterHash32(this.seed >>> 0, DROPOUT_STREAM, step * this.accumulation + micro);
  }

  /** One update from `accumulation` micro-batches. Throws NonFiniteLossError (parameters untouched) on a NaN/∞ loss or gradient. */
  trainStep(): StepMetrics {
    const started = performance.now();
    const micro: B[] = [];
    for (let i = 0; i < this.accumulation; i++) micro.push(this.source.next());
    const targets = micro.reduce((n, b) => n + this.objective.targets(b), 0);
    const tokens = micro.reduce((n, b) => n + this.objective.tokens(b), 0);
    const step = this.stepCount;
    if (targets === 0) throw new RangeError(`step ${step + 1}: the batch has no loss-bearing tokens`);
    this.model.zeroGrad();
    const sums = micro.map((batch, i) => this.objective.trainStep(this.model, batch, { seed: this.dropoutSeed(step, i), targetWeight: 1 / targets }));
    // The norm first: reading it waits for every backward, so the losses read after it are ready.
    const gradNorm = this.model.globalGradNorm();
    const loss = sums.reduce((n, s) => n + lossSumOf(s), 0) / targets;
    if (!Number.isFinite(loss)) throw new NonFiniteLossError(step + 1, loss);
    if (!Number.isFinite(gradNorm)) throw new NonFiniteLossError(step + 1, gradNorm, 'gradient norm');
    const lr = this.schedule.at(step);
    const result = this.optimizer.update(lr, { gradNorm });
    this.stepCount++;
    this.tokens += tokens;
    this.targetCount += targets;
    return {
      step: this.stepCount,
      loss,
      targets,
      tokens,
      lr,
      gradNorm: result.gradNorm,
      gradScale: result.gradScale,
      tokensSeen: this.tokens,
      seconds: (performance.now() - started) / 1000,
    };
  }

  /** Token-averaged loss over `batches` (eval mode). */
  evaluate(batches: Iterable<B>): { loss: number; perplexity: number; targets: number } {
    let lossSum = 0;
    let targets = 0;
    for (const b of batches) {
      const r = this.objective.evaluate(this.model, b);
      lossSum += lossSumOf(r);
      targets += r.targets;
    }
    if (targets === 0) throw new RangeError('evaluation batches hold no loss-bearing tokens');
    const loss = lossSum / targets;
    return { loss, perplexity: Math.exp(loss), targets };
  }

  state(): TrainerState {
    return {
      step: this.stepCount,
      tokensSeen: this.tokens,
      targetsSeen: this.targetCount,
      seed: this.seed,
      accumulation: this.accumulation,
      source: this.source.state(),
      optimizer: this.optimizer.getState(),
    };
  }

  /** Continues from `state` (the parameters are restored separately, into the model). */
  restore(state: TrainerState): void {
    if (state.seed !== this.seed) throw new RangeError(`the saved run used seed ${state.seed}, this one ${this.seed}; resuming needs the same seed`);
    if (state.accumulation !== this.accumulation) {
      throw new RangeError(`the saved run accumulated ${state.accumulation} micro-batches per step, this one ${this.accumulation}; resuming needs the same value`);
    }
    if (state.optimizer.step !== state.step) throw new RangeError(`training state: optimizer step ${state.optimizer.step} differs from step ${state.step}`);
    this.source.restore(state.source);
    this.optimizer.setState(state.optimizer);
    this.stepCount = state.step;
    this.tokens = state.tokensSeen;
    this.targetCount = state.targetsSeen;
  }
}
