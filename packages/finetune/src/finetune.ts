// The fine-tuning run behind `blankglm finetune`, for any task kind: the trainer's generic loop
// (`Trainer<B>`: AdamW, AnnealingLR, clipping) over shuffled epochs of the task's training examples,
// evaluation on the validation split after every epoch, the best checkpoint kept (by the task's
// first metric), metrics.jsonl. The kind supplies batches, the loss and the metrics.
import { appendFileSync, mkdirSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { AdamW, saveCheckpoint, type GlmModel } from '@blankglm/model-spec';
import { Rng } from '@blankglm/tensor';
import type { GlmTokenizer } from '@blankglm/tokenizer';
import { AnnealingLR, Trainer, writeFileAtomicSync, type BatchSource, type StepMetrics } from '@blankglm/trainer';
import { getTaskKind, type Hyperparameters, type Metrics, type PreparedTask, type TaskDefinition, type TaskEnv } from './tasks/registry.js';

/** The kind of a loaded task (throws if it is not registered). */
export function kindOf(task: TaskDefinition) {
  const kind = getTaskKind(task.kind);
  if (!kind) throw new Error(`${task.source}: task kind '${task.kind}' is not registered`);
  return kind;
}

/** TaskEnv for a model: the task's max length capped by the model's positions. */
export function taskEnv(task: TaskDefinition, model: GlmModel, tokenizer: GlmTokenizer, hyper: Hyperparameters = task.hyperparameters): TaskEnv {
  return { tokenizer, config: model.config, maxLength: Math.min(hyper.maxLength, model.config.max_sequence_length) };
}

/** Reads a split with the task's kind. */
export function loadSplit(task: TaskDefinition, file: string): unknown[] {
  return kindOf(task).loadExamples(task, file);
}

/**
 * Epochs of shuffled examples, `batchSize` at a time (the last batch of an epoch may be smaller).
 * Its state is (epoch, index in the epoch, the shuffle Rng), so a run's data order is a function of
 * its seed.
 */
export class EpochBatchSource<E, B> implements BatchSource<B> {
  private order: number[] = [];
  private index = 0;
  private epochCount = 0;
  private readonly rng: Rng;

  constructor(
    private readonly examples: readonly E[],
    private readonly batchSize: number,
    private readonly build: (examples: readonly E[]) => B,
    seed: number,
  ) {
    if (examples.length === 0) throw new RangeError('no training examples');
    this.rng = new Rng(seed);
    this.shuffle();
  }

  /** Updates per epoch. */
  get stepsPerEpoch(): number {
    return Math.ceil(this.examples.length / this.batchSize);
  }

  get epoch(): number {
    return this.epochCount;
  }

  private shuffle(): void {
    this.order = Array.from({ length: this.examples.length }, (_, i) => i);
    this.rng.shuffle(this.order);
    this.index = 0;
  }

  next(): B {
    if (this.index >= this.order.length) {
      this.epochCount++;
      this.shuffle();
    }
    const ids = this.order.slice(this.index, this.index + this.batchSize);
    this.index += ids.length;
    return this.build(ids.map((i) => this.examples[i]!));
  }

  state(): unknown {
    return { epoch: this.epochCount, index: this.index, order: this.order, rng: this.rng.getState() };
  }

  restore(state: unknown): void {
    const s = state as { epoch: number; index: number; order: number[]; rng: ReturnType<Rng['getState']> };
    this.epochCount = s.epoch;
    this.index = s.index;
    this.order = [...s.order];
    this.rng.setState(s.rng);
  }
}

export interface FinetuneOptions {
  model: GlmModel;
  tokenizer: GlmTokenizer;
  task: TaskDefinition;
  /** Examples of the training split (as `loadSplit` returns them). */
  train: readonly unknown[];
  /** Examples of the validation split; evaluated after every epoch. */
  valid: readonly unknown[];
  /** Overrides of the task's hyperparameters. */
  hyperparameters?: Partial<Hyperparameters>;
  seed: number;
  /** Output folder: metrics.jsonl, best/ (the best checkpoint), result.json. */
  outDir?: string;
  /** Files to store beside the best checkpoint's weights (the tokenizer's). */
  tokenizerFiles?: Record<string, string | Uint8Array>;
  /** Stop after this many updates (tests, quick looks); default: all epochs. */
  maxSteps?: number;
  onStep?: (m: StepMetrics & { epoch: number; stepsTotal: number; stepInEpoch: number; stepsInEpoch: number }) => void;
  onEvalProgress?: (done: number, total: number) => void;
  onEpoch?: (e: EpochReport) => void;
  signal?: AbortSignal;
}

export interface EpochReport {
  epoch: number;
  step: number;
  trainLoss: number;
  metrics: Metrics;
  /** The first metric of the task, the one that picks the best checkpoint. */
  primary: { name: string; value: number; direction: MetricDirection };
  isBest: boolean;
}

export interface FinetuneResult {
  epochs: EpochReport[];
  best: EpochReport | null;
  /** Folder of the best checkpoint, when an outDir was given. */
  bestCheckpoint: string | null;
  steps: number;
  hyperparameters: Hyperparameters;
  stopped: boolean;
}

/** Number-valued hyperparameter overrides merged onto the task's defaults. */
export function resolveHyperparameters(task: TaskDefinition, overrides: Partial<Hyperparameters> = {}): Hyperparameters {
  const out: Hyperparameters = { ...task.hyperparameters };
  for (const [k, v] of Object.entries(overrides)) if (v !== undefined) (out as unknown as Record<string, unknown>)[k] = v;
  return out;
}

/** Whether a larger or a smaller value of a metric is better. */
export type MetricDirection = 'higher' | 'lower';

const metricDirections = new Map<string, MetricDirection>();

/** Declares the direction of a metric (for a custom task kind's metric names). */
export function registerMetricDirection(name: string, direction: MetricDirection): void {
  if (direction !== 'higher' && direction !== 'lower') throw new RangeError(`registerMetricDirection: direction must be 'higher' or 'lower', got ${String(direction)}`);
  metricDirections.set(name, direction);
}

/**
 * The direction of a metric: registered ones first, else lower is better for losses, negative
 * log-likelihoods and perplexities (names ending in `loss`, `nll`, `perplexity` or `ppl`), higher
 * for everything else (accuracy, F1, EM, ROUGE, BLEU).
 */
export function metricDirection(name: string): MetricDirection {
  const registered = metricDirections.get(name);
  if (registered) return registered;
  return /(loss|nll|perplexity|ppl)$/i.test(name) ? 'lower' : 'higher';
}

/** Whether `value` beats `incumbent` for a metric of this direction (ties keep the incumbent). */
export function isImprovement(direction: MetricDirection, value: number, incumbent: number): boolean {
  if (Number.isNaN(value)) return false;
  if (Number.isNaN(incumbent)) return true;
  return direction === 'higher' ? value > incumbent : value < incumbent;
}

export function primaryMetric(task: TaskDefinition, metrics: Metrics): { name: string; value: number; direction: MetricDirection } {
  const name = task.metrics[0]!;
  const value = metrics[name];
  if (value === undefined) throw new Error(`${task.source}: the task's first metric '${name}' was not computed (got ${Object.keys(metrics).join(', ')})`);
  return { name, value, direction: metricDirection(name) };
}

/** Evaluates a model on examples with the task's metrics (eval mode). */
export function evaluateTask(
  model: GlmModel,
  tokenizer: GlmTokenizer,
  task: TaskDefinition,
  examples: readonly unknown[],
  options: {
    batchSize?: number;
    maxLength?: number;
    onProgress?: (done: number, total: number) => void;
    /** Checkpoint folder to read the task's own parameters from (a classifier head). */
    stateDir?: string;
  } = {},
): Metrics {
  if (examples.length === 0) throw new RangeError(`${task.name}: nothing to evaluate (the split is empty)`);
  const hyper = resolveHyperparameters(task, options.maxLength !== undefined ? { maxLength: options.maxLength } : {});
  const prepared = kindOf(task).prepare(task, taskEnv(task, model, tokenizer, hyper));
  if (options.stateDir !== undefined) prepared.loadState?.(options.stateDir);
  return prepared.evaluate(model, examples, { batchSize: options.batchSize ?? hyper.batchSize, ...(options.onProgress ? { onProgress: options.onProgress } : {}) });
}

/** Fine-tunes `model` in place on the task; returns per-epoch metrics and the best epoch. */
export async function finetune(options: FinetuneOptions): Promise<FinetuneResult> {
  const { model, tokenizer, task, seed } = options;
  const hyper = resolveHyperparameters(task, options.hyperparameters);
  const kind = kindOf(task);
  if (options.valid.length === 0) throw new RangeError(`${task.name}: the validation split is empty`);
  const trainExamples = kind.trainingExamples(task, options.train);
  if (trainExamples.length === 0) throw new RangeError(`${task.name}: the training split has no usable examples`);
  const prepared: PreparedTask<unknown, unknown> = kind.prepare(task, taskEnv(task, model, tokenizer, hyper));

  const source = new EpochBatchSource(trainExamples, hyper.batchSize, (ex) => prepared.buildBatch(ex), seed);
  const stepsPerEpoch = source.stepsPerEpoch;
  const totalSteps = Math.min(stepsPerEpoch * hyper.epochs, options.maxSteps ?? Infinity);
  const schedule = new AnnealingLR({ lr: hyper.lr, decayIters: Math.max(1, totalSteps), warmup: hyper.warmup, decayStyle: hyper.decayStyle, decayRatio: 0 });
  const optimizer = new AdamW(model, { lr: hyper.lr, beta1: hyper.beta1, beta2: hyper.beta2, eps: hyper.eps, weightDecay: hyper.weightDecay, maxGradNorm: hyper.maxGradNorm });
  const trainer = new Trainer({ model, optimizer, schedule, source, objective: prepared.objective, seed });

  const outDir = options.outDir ? resolve(options.outDir) : null;
  const metricsFile = outDir ? join(outDir, 'metrics.jsonl') : null;
  if (outDir) {
    mkdirSync(outDir, { recursive: true });
    rmSync(metricsFile!, { force: true });
  }
  const log = (record: Record<string, unknown>): void => {
    if (metricsFile) appendFileSync(metricsFile, JSON.stringify(record) + '\n');
  };

  const epochs: EpochReport[] = [];
  let best: EpochReport | null = null;
  let stopped = false;
  try {
    let epoch = 0;
    while (trainer.step < totalSteps && !stopped) {
      epoch++;
      let lossSum = 0;
      let steps = 0;
      const epochEnd = Math.min(totalSteps, epoch * stepsPerEpoch);
      while (trainer.step < epochEnd) {
        // Yield to the event loop between updates so that Ctrl-C (options.signal) is seen.
        await new Promise<void>((r) => setImmediate(r));
        if (options.signal?.aborted) {
          stopped = true;
          break;
        }
        const m = trainer.trainStep();
        prepared.afterUpdate?.({ step: m.step, lr: m.lr, hyperparameters: hyper });
        lossSum += m.loss;
        steps++;
        log({ type: 'train', epoch, step: m.step, loss: m.loss, lr: m.lr, gradNorm: m.gradNorm });
        options.onStep?.({ ...m, epoch, stepsTotal: totalSteps, stepInEpoch: m.step - (epoch - 1) * stepsPerEpoch, stepsInEpoch: epochEnd - (epoch - 1) * stepsPerEpoch });
      }
      if (steps === 0) break;
      const metrics = prepared.evaluate(model, options.valid, { batchSize: hyper.batchSize, ...(options.onEvalProgress ? { onProgress: options.onEvalProgress } : {}) });
      const primary = primaryMetric(task, metrics);
      const isBest = best === null || isImprovement(primary.direction, primary.value, best.primary.value);
      const report: EpochReport = { epoch, step: trainer.step, trainLoss: lossSum / steps, metrics, primary, isBest };
      epochs.push(report);
      log({ type: 'eval', epoch, step: trainer.step, trainLoss: report.trainLoss, metrics, best: isBest });
      if (isBest) {
        best = report;
        if (outDir) {
          saveCheckpoint(join(outDir, 'best'), model.config, model.stateDict(), { overwrite: true, tokenizerFiles: options.tokenizerFiles ?? {} });
          prepared.saveState?.(join(outDir, 'best'));
        }
      }
      options.onEpoch?.(report);
    }
  } finally {
    optimizer.dispose();
  }
  const result: FinetuneResult = {
    epochs,
    best,
    bestCheckpoint: outDir && best ? join(outDir, 'best') : null,
    steps: trainer.step,
    hyperparameters: hyper,
    stopped,
  };
  if (outDir) writeFileAtomicSync(join(outDir, 'result.json'), JSON.stringify({ task: task.name, seed, ...result }, null, 2) + '\n');
  return result;
}
