// Finding and reading task files: a path to a JSON file, or the name of a task shipped in
// `packages/finetune/tasks/**` (case-insensitive: `cb`, `CB`, `superglue/cb`). The common fields are
// checked here; the kind checks its own in `parseTask`.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEFAULT_HYPERPARAMETERS, getTaskKind, taskKindNames, TaskFileError, type Hyperparameters, type TaskDefinition } from './registry.js';

/** The package's `tasks/` folder (from src/ in tests and from dist/ once built). */
export function builtinTasksDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'tasks'))) return join(dir, 'tasks');
    dir = dirname(dir);
  }
  throw new Error('cannot find the tasks/ folder of @blankglm/finetune');
}

/** Built-in task files by lower-case name (file name without .json), e.g. `cb` → …/tasks/superglue/cb.json. */
export function builtinTaskFiles(): Map<string, string> {
  const root = builtinTasksDir();
  const out = new Map<string, string>();
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir).sort()) {
      const p = join(dir, entry);
      if (statSync(p).isDirectory()) walk(p);
      else if (entry.endsWith('.json')) out.set(basename(entry, '.json').toLowerCase(), p);
    }
  };
  walk(root);
  return out;
}

const HYPER_KEYS = Object.keys(DEFAULT_HYPERPARAMETERS) as (keyof Hyperparameters)[];

function parseHyperparameters(value: unknown, file: string): Hyperparameters {
  const out: Hyperparameters = { ...DEFAULT_HYPERPARAMETERS };
  if (value === undefined) return out;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new TaskFileError(file, 'hyperparameters', 'must be an object');
  for (const [key, v] of Object.entries(value)) {
    if (!HYPER_KEYS.includes(key as keyof Hyperparameters)) {
      throw new TaskFileError(file, `hyperparameters.${key}`, `unknown setting; expected one of ${HYPER_KEYS.join(', ')}`);
    }
    if (key === 'decayStyle') {
      if (v !== 'linear' && v !== 'cosine' && v !== 'constant') throw new TaskFileError(file, 'hyperparameters.decayStyle', `must be linear, cosine or constant, got ${JSON.stringify(v)}`);
      out.decayStyle = v;
      continue;
    }
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw new TaskFileError(file, `hyperparameters.${key}`, `must be a number ≥ 0, got ${JSON.stringify(v)}`);
    if ((key === 'batchSize' || key === 'epochs' || key === 'maxLength') && (!Number.isInteger(v) || v < 1)) {
      throw new TaskFileError(file, `hyperparameters.${key}`, `must be a whole number ≥ 1, got ${v}`);
    }
    (out as unknown as Record<string, number>)[key] = v;
  }
  return out;
}

/** Checks the common fields of a parsed task file and hands it to its kind. */
export function parseTaskDefinition(raw: unknown, source: string): TaskDefinition {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new TaskFileError(source, null, 'a task file must hold a JSON object');
  const obj = raw as Record<string, unknown>;
  if (typeof obj.name !== 'string' || obj.name.trim() === '') throw new TaskFileError(source, 'name', 'must be a non-empty string');
  if (typeof obj.kind !== 'string') throw new TaskFileError(source, 'kind', `must be one of ${taskKindNames().join(', ')}`);
  const kind = getTaskKind(obj.kind);
  if (!kind) throw new TaskFileError(source, 'kind', `unknown kind '${obj.kind}'; registered kinds: ${taskKindNames().join(', ')}`);
  if (obj.description !== undefined && typeof obj.description !== 'string') throw new TaskFileError(source, 'description', 'must be a string');
  if (!Array.isArray(obj.metrics) || obj.metrics.length === 0 || !obj.metrics.every((m) => typeof m === 'string')) {
    throw new TaskFileError(source, 'metrics', 'must be a non-empty list of metric names (the first one selects the best checkpoint)');
  }
  const base: TaskDefinition = {
    name: obj.name,
    kind: obj.kind,
    description: (obj.description as string | undefined) ?? '',
    metrics: obj.metrics as string[],
    hyperparameters: parseHyperparameters(obj.hyperparameters, source),
    source,
    raw: obj,
  };
  return kind.parseTask(base);
}

/** Reads a task file (JSON) and checks it. */
export function readTaskFile(file: string): TaskDefinition {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new TaskFileError(file, null, `cannot read: ${(e as Error).message}`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new TaskFileError(file, null, `not valid JSON: ${(e as Error).message}`);
  }
  return parseTaskDefinition(raw, file);
}

/** A task by file path (resolved against `cwd`) or by built-in name (`cb`, `copa`, …). */
export function loadTask(nameOrPath: string, cwd = process.cwd()): TaskDefinition {
  const asPath = resolve(cwd, nameOrPath);
  if (existsSync(asPath) && statSync(asPath).isFile()) return readTaskFile(asPath);
  const builtins = builtinTaskFiles();
  const key = basename(nameOrPath, '.json').toLowerCase();
  const file = builtins.get(key);
  if (!file) {
    throw new TaskFileError(nameOrPath, null, `no such task file, and no built-in task of that name; built-in tasks: ${[...builtins.keys()].join(', ')}`);
  }
  return readTaskFile(file);
}
