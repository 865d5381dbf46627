// `blankglm finetune`: fine-tunes a checkpoint on a task (a built-in task name or a task file,
// @blankglm/finetune) with the trainer's loop, evaluating on the validation split every epoch and
// keeping the best checkpoint. Works for every registered task kind.
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { DataFileError, TaskFileError, finetune, loadSplit, loadTask, resolveSplits, taskKindNames, withHead, type Hyperparameters, type TaskDefinition } from '@blankglm/finetune';
import { CliError, type Command, type OptionValues } from '../cli.js';
import { MODEL_OPTIONS, PRECISION_OPTION, openModel } from '../checkpoint-io.js';
import { Progress } from '../progress.js';

/** Task-loading and data errors are the user's to fix: shown without a stack. */
export function asCliError(e: unknown): never {
  if (e instanceof TaskFileError || e instanceof DataFileError) throw new CliError(e.message);
  if (e instanceof CliError) throw e;
  const err = e as Error;
  if (err instanceof RangeError || /^--/.test(err.message ?? '')) throw new CliError(err.message);
  throw e;
}

export function loadTaskForCli(name: string | undefined, cwd: string, head?: unknown): TaskDefinition {
  if (!name) throw new CliError(`--task is required: a built-in task name (cb, copa, rte, …) or a task file; kinds: ${taskKindNames().join(', ')}`);
  if (head !== undefined && head !== 'cloze' && head !== 'classifier') throw new CliError(`--head must be cloze or classifier, got ${String(head)}`);
  try {
    const task = loadTask(name, cwd);
    return head === undefined ? task : withHead(task, head);
  } catch (e) {
    return asCliError(e);
  }
}

/** The --head option of finetune and evaluate. */
export const HEAD_OPTION = {
  type: 'string',
  placeholder: 'cloze|classifier',
  description: "Cloze tasks: 'classifier' trains / uses glm-reference §4.5's classifier head on [CLS] instead of blank filling (the \"– cloze finetune\" ablation); default: the task file's \"head\", else cloze.",
} as const;

function positive(options: OptionValues, name: string, integer: boolean): number | undefined {
  const v = options[name];
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0 || (integer && !Number.isInteger(v))) {
    throw new CliError(`--${name} must be a ${integer ? 'whole number ≥ 1' : 'number > 0'}, got ${String(v)}`);
  }
  return v;
}

export const finetuneCommand: Command = {
  name: 'finetune',
  summary: 'Fine-tune a checkpoint on a task (SuperGLUE cloze tasks built in, or your own task file)',
  description: `
Trains the checkpoint on the task's training split with the original's recipe (AdamW, linear decay
with 10% warmup; the task file's defaults, overridable here), evaluates on the validation split
after every epoch (metrics printed and written to <out>/metrics.jsonl) and keeps the best epoch's
model in <out>/best (by the task's first metric).

--data is a folder with train.jsonl (or train32.jsonl) and val.jsonl (or dev32.jsonl), SuperGLUE's
and FewGLUE's layouts; --train / --valid name the files directly.

Examples:
  blankglm finetune ./glm-base --task cb --data superglue/CB --out runs/cb
  blankglm finetune ./glm-base --task copa --train COPA/train32.jsonl --valid COPA/dev32.jsonl --epochs 5
  blankglm finetune ./my-model --task ./my-task.json --data ./my-data --lr 2e-5 --batch-size 8`,
  positionals: [{ name: 'checkpoint', required: true, description: 'A checkpoint folder.' }],
  options: {
    task: { type: 'string', placeholder: 'name|file', description: 'Built-in task (boolq, cb, copa, multirc, record, rte, wic, wsc, …) or a task file (.json).' },
    data: { type: 'string', placeholder: 'folder', description: 'Folder with train.jsonl / val.jsonl (or train32 / dev32).' },
    train: { type: 'string', placeholder: 'file', description: 'Training split file (overrides --data).' },
    valid: { type: 'string', placeholder: 'file', description: 'Validation split file (overrides --data).' },
    out: { type: 'string', placeholder: 'folder', default: 'finetune-out', description: 'Output folder: metrics.jsonl, best/, result.json.' },
    epochs: { type: 'number', placeholder: 'n', description: "Epochs (default: the task file's, e.g. CB 50)." },
    lr: { type: 'number', placeholder: 'x', description: "Peak learning rate (default: the task file's, 1e-5)." },
    'batch-size': { type: 'number', placeholder: 'n', description: "Examples per update (default: the task file's, 16)." },
    'max-length': { type: 'number', placeholder: 'n', description: "Longest input in tokens (default: the task file's, capped by the model)." },
    'max-steps': { type: 'number', placeholder: 'n', description: 'Stop after this many updates.' },
    head: HEAD_OPTION,
    seed: { type: 'number', placeholder: 'n', default: 1, description: 'Seed of data order and dropout.' },
    json: { type: 'boolean', description: 'Print the result as one JSON object (no progress).' },
    precision: { ...PRECISION_OPTION, default: 'auto' },
    ...MODEL_OPTIONS,
  },
  async run({ positionals, options, io }) {
    const [folder] = positionals as [string];
    const task = loadTaskForCli(options.task as string | undefined, io.cwd, options.head);
    const overrides: Partial<Hyperparameters> = {};
    const epochs = positive(options, 'epochs', true);
    const lr = positive(options, 'lr', false);
    const batchSize = positive(options, 'batch-size', true);
    const maxLength = positive(options, 'max-length', true);
    const maxSteps = positive(options, 'max-steps', true);
    if (epochs !== undefined) overrides.epochs = epochs;
    if (lr !== undefined) overrides.lr = lr;
    if (batchSize !== undefined) overrides.batchSize = batchSize;
    if (maxLength !== undefined) overrides.maxLength = maxLength;
    const seed = options.seed as number;
    if (!Number.isSafeInteger(seed) || seed < 0) throw new CliError(`--seed must be a whole number ≥ 0, got ${seed}`);

    let splits;
    try {
      splits = resolveSplits({ data: options.data as string | undefined, train: options.train as string | undefined, valid: options.valid as string | undefined, cwd: io.cwd });
    } catch (e) {
      throw new CliError((e as Error).message);
    }
    if (!splits.train) throw new CliError('no training split: give --data <folder with train.jsonl> or --train <file>');
    if (!splits.valid) throw new CliError('no validation split: give --data <folder with val.jsonl> or --valid <file>');
    let train: unknown[];
    let valid: unknown[];
    try {
      train = loadSplit(task, splits.train);
      valid = loadSplit(task, splits.valid);
    } catch (e) {
      return asCliError(e);
    }

    const precision = options.precision as string;
    if (precision !== 'auto' && precision !== 'f32' && precision !== 'bf16') throw new CliError(`--precision must be auto, f32 or bf16, got '${precision}'`);
    const opened = await openModel(folder, options, io.cwd, precision);
    const { model } = opened;
    const tokenizerFiles: Record<string, Uint8Array> = {};
    for (const f of opened.checkpoint.tokenizerFiles) tokenizerFiles[f] = readFileSync(join(opened.dir, f));
    const outDir = resolve(io.cwd, options.out as string);
    const json = Boolean(options.json);
    const w = (line: string): void => void io.stdout.write(line + '\n');
    if (!json) {
      w(`task ${task.name} (${task.kind}, ${task.source}); ${train.length} training, ${valid.length} validation examples`);
      w(`model ${opened.dir} on the ${opened.backendName} backend${opened.precision === 'bf16' ? ' (bf16 products, f32 master weights)' : ''}; output ${outDir}`);
    }
    const controller = new AbortController();
    const onSigint = (): void => controller.abort();
    process.once('SIGINT', onSigint);
    let bar: Progress | null = null;
    const newBar = (epoch: number): Progress => new Progress(io.stderr, { label: `epoch ${epoch}`, unit: 'steps', isTTY: io.isTTY });
    let stepsInEpoch = 0;
    let evalBar: Progress | null = null;
    // A bar per epoch, started when the epoch starts (its rate and ETA count from there).
    if (!json) bar = newBar(1);
    try {
      const result = await finetune({
        model, tokenizer: opened.tokenizer, task, train, valid, hyperparameters: overrides, seed, outDir, tokenizerFiles,
        ...(maxSteps !== undefined ? { maxSteps } : {}),
        signal: controller.signal,
        onStep: (m) => {
          if (json) return;
          stepsInEpoch = m.stepsInEpoch;
          bar ??= newBar(m.epoch);
          bar.update({ done: m.stepInEpoch, total: m.stepsInEpoch, detail: `step ${m.step}/${m.stepsTotal}  loss ${m.loss.toFixed(4)}  lr ${m.lr.toExponential(2)}` });
        },
        onEvalProgress: (done, total) => {
          if (json) return;
          if (!evalBar) {
            // Training of this epoch is over: close its bar before the validation bar starts.
            bar?.finish({ done: stepsInEpoch, total: stepsInEpoch });
            bar = null;
            evalBar = new Progress(io.stderr, { label: 'validating', unit: 'examples', isTTY: io.isTTY });
          }
          evalBar.update({ done, total });
        },
        onEpoch: (e) => {
          if (json) return;
          bar?.finish({ done: stepsInEpoch, total: stepsInEpoch });
          evalBar?.finish({ done: valid.length, total: valid.length });
          evalBar = null;
          bar = newBar(e.epoch + 1);
          const metrics = Object.entries(e.metrics).map(([k, v]) => `${k} ${Number.isInteger(v) ? v : v.toFixed(4)}`).join(', ');
          w(`epoch ${e.epoch} (step ${e.step}): train loss ${e.trainLoss.toFixed(4)}; validation ${metrics}${e.isBest ? ' (best)' : ''}`);
        },
      });
      (bar as Progress | null)?.abort();
      if (json) {
        w(JSON.stringify({ task: task.name, checkpoint: opened.dir, out: outDir, backend: opened.backendName, ...result }));
      } else {
        if (result.stopped) w(`stopped after step ${result.steps} (interrupted)`);
        if (result.best) w(`best: epoch ${result.best.epoch}, ${result.best.primary.name} ${result.best.primary.value.toFixed(4)} → ${result.bestCheckpoint}`);
      }
      return result.stopped ? 130 : 0;
    } catch (e) {
      (bar as Progress | null)?.abort();
      return asCliError(e);
    } finally {
      process.removeListener('SIGINT', onSigint);
      model.dispose();
    }
  },
};
