// Reading the kind-specific fields of a task file, with errors that name the file and the field.
import { TaskFileError, type TaskDefinition } from '../tasks/registry.js';

export function numberField(task: TaskDefinition, field: string, fallback: number, rule: { integer?: boolean; min?: number; max?: number } = {}): number {
  const v = task.raw[field];
  if (v === undefined) return fallback;
  const { integer = false, min = -Infinity, max = Infinity } = rule;
  if (typeof v !== 'number' || !Number.isFinite(v) || (integer && !Number.isInteger(v)) || v < min || v > max) {
    const range = `${Number.isFinite(min) ? `≥ ${min}` : ''}${Number.isFinite(min) && Number.isFinite(max) ? ' and ' : ''}${Number.isFinite(max) ? `≤ ${max}` : ''}`;
    throw new TaskFileError(task.source, field, `must be ${integer ? 'a whole number' : 'a number'}${range ? ' ' + range : ''}, got ${JSON.stringify(v)}`);
  }
  return v;
}

export function enumField<T extends string>(task: TaskDefinition, field: string, allowed: readonly T[], fallback: T): T {
  const v = task.raw[field];
  if (v === undefined) return fallback;
  if (typeof v !== 'string' || !(allowed as readonly string[]).includes(v)) {
    throw new TaskFileError(task.source, field, `must be one of ${allowed.map((a) => `'${a}'`).join(', ')}, got ${JSON.stringify(v)}`);
  }
  return v as T;
}

export function booleanField(task: TaskDefinition, field: string, fallback: boolean): boolean {
  const v = task.raw[field];
  if (v === undefined) return fallback;
  if (typeof v !== 'boolean') throw new TaskFileError(task.source, field, `must be true or false, got ${JSON.stringify(v)}`);
  return v;
}

export function numberListField(task: TaskDefinition, field: string, fallback: number[], rule: { min: number; max: number }): number[] {
  const v = task.raw[field];
  if (v === undefined) return fallback;
  if (!Array.isArray(v) || v.length === 0 || !v.every((x) => typeof x === 'number' && x >= rule.min && x <= rule.max)) {
    throw new TaskFileError(task.source, field, `must be a non-empty list of numbers in [${rule.min}, ${rule.max}], got ${JSON.stringify(v)}`);
  }
  return v as number[];
}

/** Checks that the task's metrics are ones this kind computes. */
export function checkMetrics(task: TaskDefinition, computed: readonly string[]): void {
  const unknown = task.metrics.filter((m) => !computed.includes(m));
  if (unknown.length) throw new TaskFileError(task.source, 'metrics', `kind '${task.kind}' computes ${computed.join(', ')}; not ${unknown.join(', ')}`);
}
