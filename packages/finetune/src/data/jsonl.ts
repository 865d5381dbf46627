// JSONL reading that reports every bad line at once, and the split layout of a data folder
// (SuperGLUE's train.jsonl / val.jsonl, FewGLUE's train32.jsonl / dev32.jsonl).
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { DataFileError, type DataProblem } from '../tasks/registry.js';

export interface JsonlRow {
  /** 1-based line number in the file. */
  line: number;
  value: Record<string, unknown>;
}

/**
 * Parses a JSONL file (blank lines skipped). Each line is handed to `check`, which returns the
 * problems of that row (empty: fine). Every problem of every line is collected; if there are any,
 * one DataFileError lists them all. An empty file is an error too.
 */
export function readJsonl<T>(file: string, convert: (row: JsonlRow, problems: string[]) => T[]): T[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new DataFileError(file, [], `${file}: cannot read: ${(e as Error).message}`);
  }
  const lines = text.split('\n');
  const out: T[] = [];
  const problems: DataProblem[] = [];
  let rows = 0;
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i]!.trim();
    if (raw === '') continue;
    rows++;
    let value: unknown;
    try {
      value = JSON.parse(raw);
    } catch (e) {
      problems.push({ line: i + 1, message: `not valid JSON (${(e as Error).message})` });
      continue;
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      problems.push({ line: i + 1, message: 'expected a JSON object' });
      continue;
    }
    const rowProblems: string[] = [];
    const converted = convert({ line: i + 1, value: value as Record<string, unknown> }, rowProblems);
    if (rowProblems.length > 0) for (const m of rowProblems) problems.push({ line: i + 1, message: m });
    else out.push(...converted);
  }
  if (problems.length > 0) throw new DataFileError(file, problems);
  if (rows === 0) throw new DataFileError(file, [], `${file}: the split is empty (no JSON lines)`);
  if (out.length === 0) throw new DataFileError(file, [], `${file}: the split holds ${rows} rows but no examples`);
  return out;
}

export interface SplitFiles {
  train?: string;
  valid?: string;
}

const TRAIN_NAMES = ['train.jsonl', 'train32.jsonl'];
const VALID_NAMES = ['val.jsonl', 'dev.jsonl', 'dev32.jsonl'];

/**
 * The split files of `--data` (a folder or a single file) and explicit `--train` / `--valid`.
 * A folder gives train.jsonl (else train32.jsonl) and val.jsonl (else dev.jsonl, dev32.jsonl);
 * a single file is the validation split (evaluate) — explicit files win.
 */
export function resolveSplits(options: { data?: string; train?: string; valid?: string; cwd?: string }): SplitFiles {
  const cwd = options.cwd ?? process.cwd();
  const out: SplitFiles = {};
  if (options.data !== undefined) {
    const p = resolve(cwd, options.data);
    if (!existsSync(p)) throw new Error(`--data ${options.data}: no such file or folder`);
    if (statSync(p).isDirectory()) {
      const train = TRAIN_NAMES.map((n) => join(p, n)).find((f) => existsSync(f));
      const valid = VALID_NAMES.map((n) => join(p, n)).find((f) => existsSync(f));
      if (!train && !valid) throw new Error(`--data ${options.data}: the folder has none of ${[...TRAIN_NAMES, ...VALID_NAMES].join(', ')}`);
      if (train) out.train = train;
      if (valid) out.valid = valid;
    } else {
      out.valid = p;
    }
  }
  for (const key of ['train', 'valid'] as const) {
    const given = options[key];
    if (given === undefined) continue;
    const p = resolve(cwd, given);
    if (!existsSync(p) || !statSync(p).isFile()) throw new Error(`--${key} ${given}: no such file`);
    out[key] = p;
  }
  return out;
}
