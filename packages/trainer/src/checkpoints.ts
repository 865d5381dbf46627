// Training checkpoints: blankglm's model folder (config.json + model.safetensors + tokenizer files,
// loadable by everything that reads checkpoints) plus what resuming needs:
//
//   <root>/step-00000120/
//     config.json, model.safetensors, vocab.txt      the model (model-spec's saveCheckpoint)
//     optimizer.safetensors                          AdamW moments: 'm.<param>' and 'v.<param>'
//     training-state.json                            step, tokens seen, data position (RNG states), seed,
//                                                    the run's resolved configuration
//
// A checkpoint is written into a hidden temporary folder beside its final name and renamed into
// place only when complete, so a killed run never leaves a half-written step-* folder; the last
// `keep` complete checkpoints are kept.
import { existsSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { loadCheckpoint, readSafetensors, saveCheckpoint, writeSafetensors, type GlmConfig, type StateDict, type TensorToWrite } from '@blankglm/model-spec';
import type { TrainerState } from './trainer.js';

export const TRAINING_STATE_FILE = 'training-state.json';
export const OPTIMIZER_FILE = 'optimizer.safetensors';
const STATE_FORMAT = 'blankglm-training-state';

export function checkpointName(step: number): string {
  return `step-${String(step).padStart(8, '0')}`;
}

export interface SaveTrainingCheckpointOptions {
  config: GlmConfig;
  stateDict: StateDict;
  trainer: TrainerState;
  /** The run's resolved configuration, stored with the state (and checked on resume by the caller). */
  run: Record<string, unknown>;
  tokenizerFiles?: Record<string, string | Uint8Array>;
}

/** Writes `<root>/step-NNNNNNNN` atomically; returns its path. */
export function saveTrainingCheckpoint(rootIn: string, options: SaveTrainingCheckpointOptions): string {
  const root = resolve(rootIn);
  const { trainer } = options;
  const name = checkpointName(trainer.step);
  const final = join(root, name);
  const tmp = join(root, `.${name}.tmp-${process.pid}`);
  rmSync(tmp, { recursive: true, force: true });
  try {
    saveCheckpoint(tmp, options.config, options.stateDict, { tokenizerFiles: options.tokenizerFiles ?? {}, overwrite: true });
    const moments = new Map<string, TensorToWrite>();
    for (const [param, m] of trainer.optimizer.m) moments.set(`m.${param}`, { shape: [m.length], data: m });
    for (const [param, v] of trainer.optimizer.v) moments.set(`v.${param}`, { shape: [v.length], data: v });
    writeSafetensors(join(tmp, OPTIMIZER_FILE), moments, { step: String(trainer.optimizer.step), producer: 'blankglm-trainer' });
    const state = {
      format: STATE_FORMAT,
      version: 1,
      step: trainer.step,
      tokensSeen: trainer.tokensSeen,
      targetsSeen: trainer.targetsSeen,
      seed: trainer.seed,
      accumulation: trainer.accumulation,
      optimizerStep: trainer.optimizer.step,
      source: trainer.source,
      run: options.run,
    };
    writeFileSync(join(tmp, TRAINING_STATE_FILE), JSON.stringify(state, null, 2) + '\n');
    if (existsSync(final)) {
      const old = join(root, `.${name}.old-${process.pid}`);
      renameSync(final, old);
      renameSync(tmp, final);
      rmSync(old, { recursive: true, force: true });
    } else {
      renameSync(tmp, final);
    }
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
  return final;
}

export interface CheckpointEntry {
  step: number;
  dir: string;
}

/** Complete checkpoints under `root`, oldest first (temporary folders of interrupted writes are ignored). */
export function listCheckpoints(rootIn: string): CheckpointEntry[] {
  const root = resolve(rootIn);
  if (!existsSync(root)) return [];
  return readdirSync(root)
    .filter((n) => /^step-\d+$/.test(n) && existsSync(join(root, n, TRAINING_STATE_FILE)))
    .map((n) => ({ step: Number(n.slice(5)), dir: join(root, n) }))
    .sort((a, b) => a.step - b.step);
}

/** Removes all but the newest `keep` checkpoints, and leftovers of interrupted writes; returns the removed folders. */
export function pruneCheckpoints(rootIn: string, keep: number): string[] {
  if (!Number.isInteger(keep) || keep < 1) throw new RangeError(`keep must be a positive integer, got ${keep}`);
  const root = resolve(rootIn);
  const removed: string[] = [];
  const all = listCheckpoints(root);
  for (const c of all.slice(0, Math.max(0, all.length - keep))) {
    rmSync(c.dir, { recursive: true, force: true });
    removed.push(c.dir);
  }
  if (existsSync(root)) {
    for (const n of readdirSync(root)) {
      // Another process's temporary folder is left alone.
      const m = /^\.step-\d+\.(tmp|old)-(\d+)$/.exec(n);
      if (m && Number(m[2]) !== process.pid && !processAlive(Number(m[2]))) rmSync(join(root, n), { recursive: true, force: true });
    }
  }
  return removed;
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export interface LoadedTrainingCheckpoint {
  dir: string;
  step: number;
  config: GlmConfig;
  stateDict: StateDict;
  trainer: TrainerState;
  run: Record<string, unknown>;
}

/** Reads a checkpoint written by saveTrainingCheckpoint; errors name the file and what is wrong. */
export function loadTrainingCheckpoint(dirIn: string): LoadedTrainingCheckpoint {
  const dir = resolve(dirIn);
  const statePath = join(dir, TRAINING_STATE_FILE);
  if (!existsSync(statePath)) {
    throw new Error(`${dir} is not a training checkpoint (no ${TRAINING_STATE_FILE}); give a step-* folder written by blankglm pretrain, or the run's --out folder`);
  }
  let state: Record<string, unknown>;
  try {
    state = JSON.parse(readFileSync(statePath, 'utf8')) as Record<string, unknown>;
  } catch (e) {
    throw new Error(`${statePath}: not valid JSON (${(e as Error).message})`);
  }
  if (state.format !== STATE_FORMAT || state.version !== 1) throw new Error(`${statePath}: expected format '${STATE_FORMAT}' version 1`);
  for (const k of ['step', 'tokensSeen', 'targetsSeen', 'seed', 'accumulation', 'optimizerStep'] as const) {
    if (!Number.isSafeInteger(state[k])) throw new Error(`${statePath}: field '${k}' must be an integer, got ${JSON.stringify(state[k])}`);
  }
  const ck = loadCheckpoint(dir);
  const optimizerPath = join(dir, OPTIMIZER_FILE);
  if (!existsSync(optimizerPath)) throw new Error(`${dir}: ${OPTIMIZER_FILE} is missing; the checkpoint cannot be resumed`);
  const m: StateDict = new Map();
  const v: StateDict = new Map();
  for (const [name, t] of readSafetensors(optimizerPath).tensors) {
    if (!(t.data instanceof Float32Array)) throw new Error(`${optimizerPath}: tensor '${name}' is not f32`);
    if (name.startsWith('m.')) m.set(name.slice(2), t.data);
    else if (name.startsWith('v.')) v.set(name.slice(2), t.data);
    else throw new Error(`${optimizerPath}: unexpected tensor '${name}' (expected m.<param> or v.<param>)`);
  }
  const step = state.step as number;
  return {
    dir,
    step,
    config: ck.config,
    stateDict: ck.stateDict,
    run: (state.run ?? {}) as Record<string, unknown>,
    trainer: {
      step,
      tokensSeen: state.tokensSeen as number,
      targetsSeen: state.targetsSeen as number,
      seed: state.seed as number,
      accumulation: state.accumulation as number,
      source: state.source,
      optimizer: { step: state.optimizerStep as number, m, v },
    },
  };
}
