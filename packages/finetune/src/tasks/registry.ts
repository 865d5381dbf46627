// The task registry: a task is a JSON file (name, kind, data format, patterns, metrics,
// hyperparameters) and a *task kind* is the code that knows how to turn such a file plus data into
// examples, model inputs, a training loss and metrics. `blankglm finetune` / `evaluate` and
// `finetune()` / `evaluateTask()` only talk to kinds through `TaskKind`, so a new kind (seq2seq,
// infilling, zero-shot LM, multiple choice, ...) plugs in with `registerTaskKind` and nothing else.
import type { GlmConfig, GlmModel } from '@blankglm/model-spec';
import type { GlmTokenizer } from '@blankglm/tokenizer';
import type { Objective } from '@blankglm/trainer';

/** Optimisation settings of a fine-tuning run; task files give defaults, the CLI overrides them. */
export interface Hyperparameters {
  /** Peak learning rate (glm-reference §4.4: 1e-5 for Base/Large). */
  lr: number;
  /** Examples per update. */
  batchSize: number;
  epochs: number;
  weightDecay: number;
  /** Warmup as a fraction of all updates (§4.4: 10%). */
  warmup: number;
  beta1: number;
  beta2: number;
  eps: number;
  decayStyle: 'linear' | 'cosine' | 'constant';
  /** Global-norm gradient clipping (the original's --clip-grad 1.0). */
  maxGradNorm: number;
  /** Longest model input in tokens (Part A + Part B); task files set the original's seq length. */
  maxLength: number;
  /** Label smoothing of token-level losses (seq2seq kinds); cloze tasks ignore it. */
  labelSmoothing: number;
}

/** glm-reference §4.4 (`finetune_superglue.sh`, Base/Large). `epochs` and `maxLength` are per task. */
export const DEFAULT_HYPERPARAMETERS: Readonly<Hyperparameters> = Object.freeze({
  lr: 1e-5,
  batchSize: 16,
  epochs: 10,
  weightDecay: 0.1,
  warmup: 0.1,
  beta1: 0.9,
  beta2: 0.999,
  eps: 1e-8,
  decayStyle: 'linear',
  maxGradNorm: 1.0,
  maxLength: 256,
  labelSmoothing: 0,
});

/** What every task file holds, whatever its kind. Kinds extend it with their own fields. */
export interface TaskDefinition {
  name: string;
  kind: string;
  description: string;
  /** Metric names the kind reports (e.g. accuracy, macro-f1); the first one picks the best checkpoint. */
  metrics: string[];
  hyperparameters: Hyperparameters;
  /** Where it came from (a file path, or `builtin:<name>`), for error messages. */
  source: string;
  /** The parsed file as it was, for kind-specific fields. */
  raw: Record<string, unknown>;
}

/** A metrics dictionary, e.g. `{ accuracy: 0.82, 'macro-f1': 0.77, examples: 56 }`. */
export type Metrics = Record<string, number>;

/** What a kind needs to build model inputs. */
export interface TaskEnv {
  tokenizer: GlmTokenizer;
  config: GlmConfig;
  /** Longest row in tokens: min(task maxLength, the model's max_sequence_length). */
  maxLength: number;
}

export interface EvaluateOptions {
  /** Examples per forward batch. */
  batchSize: number;
  /** Called after every batch with examples done / total. */
  onProgress?: (done: number, total: number) => void;
}

/** A task prepared for one model and tokenizer: builds batches, trains and evaluates. */
export interface PreparedTask<E, B> {
  /** Build model inputs for a group of examples (one training micro-batch). */
  buildBatch(examples: readonly E[]): B;
  /** The training loss over such batches; `targets(batch)` is what the loss is averaged over. */
  objective: Objective<B>;
  /** Eval-mode predictions on `examples` scored with the task's metrics (plus `examples`: the count). */
  evaluate(model: GlmModel, examples: readonly E[], options: EvaluateOptions): Metrics;
  /** Called after every optimizer update: a task with its own host-side parameters (a classifier head) steps them here. */
  afterUpdate?(info: { step: number; lr: number; hyperparameters: Hyperparameters }): void;
  /** Writes the task's own parameters into a checkpoint folder (beside the model's weights). */
  saveState?(dir: string): void;
  /** Reads them back from a checkpoint folder written by `saveState`. */
  loadState?(dir: string): void;
}

/**
 * A kind of task. Lifecycle: `parseTask` (task file → definition) → `loadExamples` (a data file →
 * examples, reporting ALL bad lines at once) → `trainingExamples` (augmentation / filtering of the
 * training split) → `prepare` (tokenizer + config → batches, objective, evaluation).
 */
export interface TaskKind<T extends TaskDefinition = TaskDefinition, E = unknown, B = unknown> {
  /** The `kind` value task files use, e.g. 'cloze'. */
  readonly kind: string;
  /** One line for help texts. */
  readonly summary: string;
  /** Validates the kind-specific fields of a task file; throws TaskFileError naming the file and field. */
  parseTask(base: TaskDefinition): T;
  /** Reads one split (JSONL etc.); throws DataFileError listing every bad line; an empty split is an error. */
  loadExamples(task: T, file: string): E[];
  /** The examples training iterates over (e.g. COPA's mirrored copies, WSC's positives only). */
  trainingExamples(task: T, examples: readonly E[]): E[];
  /** Binds the task to a tokenizer and model config; checks verbalizers against the vocabulary. */
  prepare(task: T, env: TaskEnv): PreparedTask<E, B>;
}

/** Any registered kind, as the registry stores it. */
export type AnyTaskKind = TaskKind<TaskDefinition, unknown, unknown>;

const kinds = new Map<string, AnyTaskKind>();

/** Makes a kind available to task files (`"kind": "<name>"`). Re-registering a name replaces it. */
export function registerTaskKind<T extends TaskDefinition, E, B>(kind: TaskKind<T, E, B>): void {
  kinds.set(kind.kind, kind as unknown as AnyTaskKind);
}

export function getTaskKind(name: string): AnyTaskKind | undefined {
  return kinds.get(name);
}

export function taskKindNames(): string[] {
  return [...kinds.keys()].sort();
}

/** A task file is wrong: names the file and the field. */
export class TaskFileError extends Error {
  constructor(
    readonly file: string,
    readonly field: string | null,
    detail: string,
  ) {
    super(`${file}${field ? `: ${field}` : ''}: ${detail}`);
    this.name = 'TaskFileError';
  }
}

/** One bad line of a data file. */
export interface DataProblem {
  line: number;
  message: string;
}

/** A data file has bad lines (all of them are listed) or no examples. */
export class DataFileError extends Error {
  constructor(
    readonly file: string,
    readonly problems: readonly DataProblem[],
    summary?: string,
  ) {
    const shown = problems.slice(0, 20).map((p) => `  ${file}:${p.line}: ${p.message}`);
    const more = problems.length > 20 ? [`  … and ${problems.length - 20} more bad lines`] : [];
    super(summary ?? [`${file}: ${problems.length} bad line${problems.length === 1 ? '' : 's'}:`, ...shown, ...more].join('\n'));
    this.name = 'DataFileError';
  }
}
