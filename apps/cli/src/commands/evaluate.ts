// `blankglm evaluate`: a checkpoint's metrics on a task's split (any registered task kind).
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { CLASSIFIER_HEAD_FILE, evaluateTask, loadSplit, resolveSplits } from '@blankglm/finetune';
import { CliError, type Command } from '../cli.js';
import { MODEL_OPTIONS, openModel } from '../checkpoint-io.js';
import { Progress } from '../progress.js';
import { HEAD_OPTION, asCliError, loadTaskForCli } from './finetune.js';

export const evaluateCommand: Command = {
  name: 'evaluate',
  summary: "A checkpoint's task metrics (accuracy, F1, …) on a split",
  description: `
Runs the task (a built-in task name or a task file) on the split without dropout and prints its
metrics. --data is a JSONL file, or a folder (its val.jsonl, else dev.jsonl / dev32.jsonl).

Examples:
  blankglm evaluate runs/cb/best --task cb --data superglue/CB/val.jsonl
  blankglm evaluate ./glm-base --task copa --data superglue/COPA --json`,
  positionals: [{ name: 'checkpoint', required: true, description: 'A checkpoint folder.' }],
  options: {
    task: { type: 'string', placeholder: 'name|file', description: 'Built-in task name or a task file (.json).' },
    data: { type: 'string', placeholder: 'file|folder', description: 'The split to evaluate.' },
    'batch-size': { type: 'number', placeholder: 'n', default: 16, description: 'Examples per forward batch.' },
    'max-length': { type: 'number', placeholder: 'n', description: "Longest input in tokens (default: the task file's, capped by the model)." },
    json: { type: 'boolean', description: 'Print one JSON object.' },
    head: { ...HEAD_OPTION, description: `${HEAD_OPTION.description} A checkpoint folder holding ${CLASSIFIER_HEAD_FILE} (from finetune with the classifier head) uses it by default.` },
    ...MODEL_OPTIONS,
  },
  async run({ positionals, options, io }) {
    const [folder] = positionals as [string];
    // A checkpoint that carries a classifier head is evaluated with it unless --head says otherwise.
    const hasHead = existsSync(join(resolve(io.cwd, folder), CLASSIFIER_HEAD_FILE));
    const probe = loadTaskForCli(options.task as string | undefined, io.cwd);
    const head = options.head ?? (hasHead && probe.kind === 'cloze' ? 'classifier' : undefined);
    const task = head === undefined ? probe : loadTaskForCli(options.task as string | undefined, io.cwd, head);
    if (options.data === undefined) throw new CliError('--data is required: a JSONL split or a folder with val.jsonl');
    const batchSize = options['batch-size'] as number;
    if (!Number.isInteger(batchSize) || batchSize < 1) throw new CliError(`--batch-size must be a whole number ≥ 1, got ${batchSize}`);
    const maxLength = options['max-length'] as number | undefined;
    if (maxLength !== undefined && (!Number.isInteger(maxLength) || maxLength < 4)) throw new CliError(`--max-length must be a whole number ≥ 4, got ${maxLength}`);
    let file: string;
    try {
      const splits = resolveSplits({ data: options.data as string, cwd: io.cwd });
      if (!splits.valid) throw new Error(`--data ${String(options.data)}: the folder has no val.jsonl, dev.jsonl or dev32.jsonl`);
      file = splits.valid;
    } catch (e) {
      throw new CliError((e as Error).message);
    }
    let examples: unknown[];
    try {
      examples = loadSplit(task, file);
    } catch (e) {
      return asCliError(e);
    }
    const opened = await openModel(folder, options, io.cwd);
    const json = Boolean(options.json);
    const bar = json ? null : new Progress(io.stderr, { label: `evaluating ${task.name}`, unit: 'examples', isTTY: io.isTTY });
    const started = performance.now();
    try {
      const metrics = evaluateTask(opened.model, opened.tokenizer, task, examples, {
        batchSize, ...(maxLength !== undefined ? { maxLength } : {}), stateDir: opened.dir,
        onProgress: (done, total) => bar?.update({ done, total }),
      });
      bar?.finish({ done: examples.length, total: examples.length });
      const seconds = (performance.now() - started) / 1000;
      if (json) {
        io.stdout.write(JSON.stringify({ task: task.name, kind: task.kind, data: file, checkpoint: opened.dir, backend: opened.backendName, metrics, seconds }) + '\n');
        return 0;
      }
      io.stdout.write(`task ${task.name} on ${file} (${examples.length} examples, ${opened.backendName} backend, ${seconds.toFixed(1)} s)\n`);
      for (const [k, v] of Object.entries(metrics)) io.stdout.write(`${k}: ${Number.isInteger(v) ? v : v.toFixed(4)}\n`);
      return 0;
    } catch (e) {
      bar?.abort();
      return asCliError(e);
    } finally {
      opened.model.dispose();
    }
  },
};
