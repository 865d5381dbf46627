// GLM pretraining on prepared shards: the configuration (with defaults and checks that name the
// field and the fix), and the job — data, model, AdamW + AnnealingLR, periodic evaluation on
// held-out documents, atomic checkpoints with exact resume, metrics.jsonl and loss-curve.svg.
//
//   <outDir>/run-config.json     the resolved configuration of the latest run (rewritten per run)
//   <outDir>/metrics.jsonl       one line per step ({kind:'train'}) and per evaluation ({kind:'eval'})
//   <outDir>/loss-curve.svg      the loss curve, redrawn at every checkpoint and at the end
//   <outDir>/checkpoints/step-NNNNNNNN/   see checkpoints.ts
import { existsSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { corruptionPresets, type CorruptionPresetName } from '@blankglm/corruption';
import { GlmDataset, openShards, splitDocuments, type DatasetCorruptionOptions, type ShardSet } from '@blankglm/data';
import { AdamW, GlmModel, configToJson, getPreset, parameterCount, validateConfig, type GlmConfig } from '@blankglm/model-spec';
import { Rng, type Backend, type GlmBatch } from '@blankglm/tensor';
import { checkpointName, listCheckpoints, loadTrainingCheckpoint, pruneCheckpoints, saveTrainingCheckpoint, type LoadedTrainingCheckpoint } from './checkpoints.js';
import { MetricsLog, lossCurveSvg, writeFileAtomicSync, type EvalRecord, type TrainRecord } from './metrics.js';
import { blankInfillingObjective } from './objective.js';
import { AnnealingLR, type DecayStyle } from './schedule.js';
import { NonFiniteLossError, Trainer, type BatchSource, type StepMetrics } from './trainer.js';

/** Objectives by name: the three GLM objectives alone, the released models' mixtures, and the baselines. */
export const OBJECTIVES: Record<string, DatasetCorruptionOptions> = {
  token: { mixture: { token: 1, sentence: 0, document: 0 } },
  sentence: { mixture: { token: 0, sentence: 1, document: 0 } },
  document: { mixture: { token: 0, sentence: 0, document: 1 } },
  /** GLM-10B's mixture of all three (0.5 / 0.3 / 0.2), drawn per sample. */
  mixture: { mixture: { token: 0.5, sentence: 0.3, document: 0.2 }, objectiveScope: 'sample' },
  /** BERT-style masked language modelling through the same span code. */
  mlm: { baseline: 'mlm' },
  /** GPT-style causal language modelling. */
  clm: { baseline: 'clm' },
  ...(corruptionPresets as Record<CorruptionPresetName, DatasetCorruptionOptions>),
};

export interface PretrainConfig {
  /** Model shape: a model-spec preset name (glm-tiny, glm-small, glm-base, …). */
  preset: string;
  /** Fields of the preset's config to override (e.g. a micro model for tests). */
  model?: Partial<GlmConfig>;
  /** A prepared shard folder (manifest.json + shards; `blankglm prepare`). */
  data: string;
  outDir: string;
  /** Total updates of the run (also when resuming). */
  steps: number;
  /** Windows per micro-batch. */
  batchSize: number;
  /** Window length in tokens, [CLS] included; rows are longer (Part B adds a start token per span). */
  seqLength: number;
  /** Micro-batches per update. */
  accumulation: number;
  /** Peak learning rate. */
  lr: number;
  /** Warmup as a fraction of decayIters. */
  warmup: number;
  /** Iterations of the decay (default: steps). */
  decayIters?: number;
  decayStyle: DecayStyle;
  /** Floor of the schedule as a fraction of lr. */
  decayRatio: number;
  weightDecay: number;
  beta1: number;
  beta2: number;
  eps: number;
  /** Clip the global gradient norm to this; 0 = no clipping. */
  maxGradNorm: number;
  seed: number;
  /** An OBJECTIVES name. */
  objective: string;
  /** Corruption options over the objective's (ablations: shuffleSpans, blockPositions, taskMask, …). */
  corruption?: DatasetCorruptionOptions;
  /** 'pack' (default): several samples per row, isolated; 'pad': one per row. */
  layout: 'pack' | 'pad';
  /** Share of documents held out for evaluation. */
  validFraction: number;
  /** Evaluate every N steps (and at the start and the end); 0 = never. */
  evalEvery: number;
  /** Held-out batches per evaluation (the same batches every time). */
  evalBatches: number;
  /** Save a checkpoint every N steps (and at the end). */
  checkpointEvery: number;
  /** Checkpoints to keep. */
  keep: number;
  /**
   * Matrix operands in 'bf16' (mixed precision: bf16 activations and weight copies, f32 master
   * weights, gradients and optimizer state) or 'f32'. 'auto' (default): the saved run's when
   * resuming, else bf16 on a backend that computes in bf16 natively (the CUDA backend), f32 elsewhere.
   */
  precision?: 'auto' | 'f32' | 'bf16';
}

export const PRETRAIN_DEFAULTS: Omit<PretrainConfig, 'data' | 'outDir'> = {
  preset: 'glm-tiny',
  steps: 1000,
  batchSize: 8,
  seqLength: 128,
  accumulation: 1,
  lr: 1e-3,
  warmup: 0.05,
  decayStyle: 'cosine',
  decayRatio: 0.1,
  weightDecay: 0.1,
  beta1: 0.9,
  beta2: 0.98,
  eps: 1e-6,
  maxGradNorm: 1,
  seed: 1234,
  objective: 'token',
  layout: 'pack',
  validFraction: 0.01,
  evalEvery: 100,
  evalBatches: 4,
  checkpointEvery: 100,
  keep: 3,
};

/** A configuration or resume problem the user can fix; the message says how. */
export class PretrainError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PretrainError';
  }
}

/** Fills in defaults and checks every field; errors name the field, the value and what was expected. */
export function resolvePretrainConfig(partial: Partial<PretrainConfig> & Pick<PretrainConfig, 'data' | 'outDir'>): PretrainConfig {
  const c: PretrainConfig = { ...PRETRAIN_DEFAULTS, ...stripUndefined(partial) } as PretrainConfig;
  const int = (k: keyof PretrainConfig, min: number): void => {
    const v = c[k];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min) throw new PretrainError(`${k} must be a whole number >= ${min}, got ${JSON.stringify(v)}`);
  };
  const num = (k: keyof PretrainConfig, ok: (v: number) => boolean, expected: string): void => {
    const v = c[k];
    if (typeof v !== 'number' || !ok(v)) throw new PretrainError(`${k} must be ${expected}, got ${JSON.stringify(v)}`);
  };
  int('steps', 1);
  int('batchSize', 1);
  int('seqLength', 8);
  int('accumulation', 1);
  num('lr', (v) => v > 0 && Number.isFinite(v), 'a positive number');
  num('warmup', (v) => v >= 0 && v < 1, 'a fraction of the decay iterations in [0, 1)');
  if (c.decayIters !== undefined) int('decayIters', 1);
  if (!['cosine', 'linear', 'constant'].includes(c.decayStyle)) throw new PretrainError(`decayStyle must be cosine, linear or constant, got '${c.decayStyle}'`);
  num('decayRatio', (v) => v >= 0 && v <= 1, 'in [0, 1]');
  num('weightDecay', (v) => v >= 0, '>= 0');
  num('beta1', (v) => v >= 0 && v < 1, 'in [0, 1)');
  num('beta2', (v) => v >= 0 && v < 1, 'in [0, 1)');
  num('eps', (v) => v > 0, '> 0');
  num('maxGradNorm', (v) => v >= 0, '>= 0 (0: no clipping)');
  if (!Number.isSafeInteger(c.seed)) throw new PretrainError(`seed must be an integer, got ${JSON.stringify(c.seed)}`);
  if (!(c.objective in OBJECTIVES)) throw new PretrainError(`objective '${c.objective}' is unknown; expected one of ${Object.keys(OBJECTIVES).join(', ')}`);
  if (c.layout !== 'pack' && c.layout !== 'pad') throw new PretrainError(`layout must be pack or pad, got '${String(c.layout)}'`);
  num('validFraction', (v) => v >= 0 && v < 1, 'in [0, 1)');
  int('evalEvery', 0);
  int('evalBatches', 1);
  int('checkpointEvery', 1);
  int('keep', 1);
  if (c.evalEvery > 0 && c.validFraction === 0) throw new PretrainError('evaluation needs held-out documents: set validFraction > 0, or evalEvery 0 to train without evaluation');
  if (c.precision !== undefined && !['auto', 'f32', 'bf16'].includes(c.precision)) throw new PretrainError(`precision must be auto, f32 or bf16, got '${String(c.precision)}'`);
  return c;
}

/**
 * The precision a run trains in: an explicit one as given ('bf16' needs a backend with bf16
 * tensors); 'auto' → the resumed run's, else bf16 where the backend computes in bf16 natively.
 */
export function resolvePrecision(requested: PretrainConfig['precision'], backend: Backend, resumedRun: Record<string, unknown> | null): 'f32' | 'bf16' {
  const features = backend.device.features;
  if (requested === 'bf16') {
    if (!features.includes('bf16') && !features.includes('bf16-storage-emulated')) {
      throw new PretrainError(`precision bf16 needs a backend with bf16 tensors (the CUDA backend; the reference emulates them); the ${backend.name} backend computes in f32: use precision f32 or auto`);
    }
    return 'bf16';
  }
  if (requested === 'f32') return 'f32';
  const saved = resumedRun?.precision;
  if (saved === 'f32' || saved === 'bf16') return saved;
  if (resumedRun) return 'f32'; // runs saved before precision existed trained in f32
  return features.includes('bf16') ? 'bf16' : 'f32';
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** The model config of a run: its preset with the overrides, checked. */
export function modelConfigFor(c: PretrainConfig): GlmConfig {
  let base: GlmConfig;
  try {
    base = getPreset(c.preset);
  } catch (e) {
    throw new PretrainError((e as Error).message);
  }
  try {
    return validateConfig({ ...base, ...(c.model ?? {}), model_type: 'blankglm' });
  } catch (e) {
    throw new PretrainError(`model: ${(e as Error).message}`);
  }
}

/** Checks that the data fits the model and the batch; the errors say what to change. */
export function checkDataFits(c: PretrainConfig, config: GlmConfig, shards: ShardSet): void {
  const tok = shards.manifest.tokenizer;
  const padded = Number((tok.special as Record<string, number | string>).paddedVocabSize ?? tok.vocabSize);
  if (tok.family !== config.tokenizer_family) {
    throw new PretrainError(
      `${shards.dir} was prepared with the ${tok.family} tokenizer, but preset ${c.preset} uses ${config.tokenizer_family}; prepare the corpus with --tokenizer ${config.tokenizer_family === 'bert' ? 'bert' : 'gpt2'}, or choose a ${tok.family} preset`,
    );
  }
  if (padded > config.vocab_size) {
    throw new PretrainError(`${shards.dir}: the tokenizer has ${padded} ids (padded), the model's vocab_size is ${config.vocab_size}; use a preset whose vocabulary covers it`);
  }
  if (c.seqLength > config.max_sequence_length) {
    throw new PretrainError(
      `seqLength ${c.seqLength} is past the position table of ${c.preset} (max_sequence_length ${config.max_sequence_length}); use --seq-len ${config.max_sequence_length} or less`,
    );
  }
  const { train, valid } = splitDocuments(shards.documentCount, c.validFraction);
  let trainTokens = 0;
  for (const d of train) trainTokens += shards.documentLength(d) + 1;
  const need = c.batchSize * c.seqLength;
  if (trainTokens < need) {
    throw new PretrainError(
      `the corpus in ${shards.dir} is smaller than one batch: ${trainTokens} training tokens (${train.length} documents), one batch of ${c.batchSize} × ${c.seqLength} needs ${need}; give a larger corpus, or lower --batch-size / --seq-len`,
    );
  }
  if (c.evalEvery > 0 && valid.length === 0) {
    throw new PretrainError(`the corpus in ${shards.dir} has ${shards.documentCount} document(s), too few to hold any out for evaluation; give a larger corpus, or --eval-every 0`);
  }
}

/** GlmDataset as a BatchSource. */
/** A backend error that means the device ran out of memory (GPU_OUT_OF_MEMORY, WASM_OUT_OF_MEMORY, …). */
function isOutOfMemory(e: unknown): boolean {
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === 'string' && code.endsWith('OUT_OF_MEMORY');
}

/**
 * The `rows` rows of a batch with the most loss targets (ties: the earlier row): the worst case
 * for memory among batches of that many rows, since the output projection and cross-entropy
 * grow with the targets while the rest grows with the rows.
 */
function heaviestRows(batch: GlmBatch, rows: number): GlmBatch {
  const { seqLength: L, numSegments: S } = batch;
  if (!Number.isInteger(rows) || rows < 1 || rows > batch.batchSize) throw new RangeError(`heaviestRows: rows must be 1..${batch.batchSize}, got ${rows}`);
  const targets = (r: number): number => {
    let n = 0;
    for (let i = r * L; i < (r + 1) * L; i++) n += batch.lossMask ? batch.lossMask[i]! : 1;
    return n;
  };
  const order = Array.from({ length: batch.batchSize }, (_, r) => ({ r, n: targets(r) }))
    .sort((a, b) => b.n - a.n || a.r - b.r)
    .slice(0, rows)
    .map((x) => x.r);
  const pick = <T extends Int32Array | Uint8Array>(a: T, per: number): T => {
    const out = new (a.constructor as new (n: number) => T)(rows * per);
    order.forEach((r, k) => out.set(a.subarray(r * per, (r + 1) * per), k * per));
    return out;
  };
  return {
    batchSize: rows, seqLength: L, numSegments: S,
    inputIds: pick(batch.inputIds, L), positionIds: pick(batch.positionIds, L), blockPositionIds: pick(batch.blockPositionIds, L), sep: pick(batch.sep, S),
    ...(batch.segmentIds ? { segmentIds: pick(batch.segmentIds, L) } : {}),
    ...(batch.targetIds ? { targetIds: pick(batch.targetIds, L) } : {}),
    ...(batch.lossMask ? { lossMask: pick(batch.lossMask, L) } : {}),
  };
}

/**
 * What to do when a step ran out of memory: halves the micro-batch until a training forward and
 * backward of `probe`'s heaviest rows fit (the parameters are not touched), and names the flags
 * that keep the same windows per step through gradient accumulation.
 */
function outOfMemoryAdvice(e: Error, c: PretrainConfig, model: GlmModel, probe: GlmBatch): string {
  const objective = blankInfillingObjective();
  let fits = 0;
  for (let rows = Math.min(probe.batchSize, c.batchSize) >> 1; rows >= 1 && fits === 0; rows >>= 1) {
    try {
      model.zeroGrad();
      objective.trainStep(model, heaviestRows(probe, rows), { seed: 0, targetWeight: 1 });
      model.backend.synchronize();
      fits = rows;
    } catch (err) {
      if (!isOutOfMemory(err)) throw err;
    }
  }
  model.zeroGrad();
  const what = `a micro-batch of ${c.batchSize} windows of ${c.seqLength} tokens does not fit in memory (${e.message.replace(/\.$/, '')})`;
  if (fits === 0) return `${what}; not even one window fits: use a smaller --seq-len or preset`;
  const accumulation = Math.ceil((c.batchSize * c.accumulation) / fits);
  return `${what}; ${fits} windows fit: use --batch-size ${fits} --accumulation ${accumulation} to keep ${fits * accumulation} windows per step`;
}

class DatasetSource implements BatchSource<GlmBatch> {
  constructor(readonly dataset: GlmDataset) {}
  next(): GlmBatch {
    return this.dataset.next().batch;
  }
  state(): unknown {
    return this.dataset.state();
  }
  restore(state: unknown): void {
    this.dataset.restore(state as ReturnType<GlmDataset['state']>);
  }
}

export interface PretrainHooks {
  /** Before the first step (after a resume, with the restored model). */
  onStart?(info: {
    model: GlmModel;
    config: GlmConfig;
    resumedFrom: string | null;
    startStep: number;
    parameters: number;
    trainDocuments: number;
    validDocuments: number;
    precision: 'f32' | 'bf16';
  }): void | Promise<void>;
  onStep?(metrics: StepMetrics & { elapsedSeconds: number; tokensPerSecond: number }): void;
  onEval?(record: EvalRecord): void;
  onCheckpoint?(dir: string, step: number): void;
  /** After the last step, before the model is freed. */
  onFinish?(model: GlmModel): void | Promise<void>;
}

export interface RunPretrainingOptions extends PretrainHooks {
  backend: Backend;
  /** Name of the backend, recorded in run-config.json. */
  backendName?: string;
  /** 'auto': continue from the newest checkpoint in outDir if any; a path: that checkpoint (or run folder). */
  resume?: 'auto' | string;
  /** Stop after the current step, save a checkpoint and return (Ctrl-C). */
  signal?: AbortSignal;
  /** Tokenizer files to store in every checkpoint (file name → contents). */
  tokenizerFiles?: Record<string, string | Uint8Array>;
  /** Return after this step without a final checkpoint, as if killed (tests). */
  stopAfterStep?: number;
}

export interface PretrainResult {
  status: 'done' | 'interrupted' | 'stopped' | 'already-done';
  startStep: number;
  step: number;
  /** First and last training loss of this invocation. */
  firstLoss: number | null;
  lastLoss: number | null;
  evals: EvalRecord[];
  lastCheckpoint: string | null;
  seconds: number;
  tokensPerSecond: number;
  resumedFrom: string | null;
  outDir: string;
}

/** The checkpoint a --resume value names, or null to start afresh ('auto' without checkpoints). */
export function findResumeCheckpoint(resume: 'auto' | string | undefined, outDir: string): string | null {
  if (resume === undefined) return null;
  if (resume === 'auto') {
    const all = listCheckpoints(join(outDir, 'checkpoints'));
    return all.length > 0 ? all[all.length - 1]!.dir : null;
  }
  const dir = resolve(resume);
  if (!existsSync(dir)) throw new PretrainError(`--resume ${resume}: no such folder; give a checkpoint folder (…/checkpoints/step-*), a run's --out folder, or auto`);
  if (existsSync(join(dir, 'training-state.json'))) return dir;
  const inRun = listCheckpoints(join(dir, 'checkpoints'));
  if (inRun.length > 0) return inRun[inRun.length - 1]!.dir;
  throw new PretrainError(`--resume ${resume}: holds no training checkpoint (no training-state.json, no checkpoints/step-*)`);
}

function describeConfigDifference(saved: GlmConfig, wanted: GlmConfig): string[] {
  const a = configToJson(saved);
  const b = configToJson(wanted);
  return Object.keys({ ...a, ...b })
    .filter((k) => JSON.stringify(a[k]) !== JSON.stringify(b[k]))
    .map((k) => `${k} ${JSON.stringify(a[k])} (checkpoint) vs ${JSON.stringify(b[k])} (this run)`);
}

const yieldToEventLoop = (): Promise<void> => new Promise((r) => setImmediate(r));

/** Runs (or resumes) a pretraining job. */
export async function runPretraining(configIn: PretrainConfig, options: RunPretrainingOptions): Promise<PretrainResult> {
  const c = resolvePretrainConfig(configIn);
  const outDir = resolve(c.outDir);
  const config = modelConfigFor(c);
  const resumeDir = findResumeCheckpoint(options.resume, outDir);
  let saved: LoadedTrainingCheckpoint | null = null;
  if (resumeDir) {
    saved = loadTrainingCheckpoint(resumeDir);
    const diff = describeConfigDifference(saved.config, config);
    if (diff.length > 0) {
      const savedPreset = typeof saved.run.preset === 'string' ? saved.run.preset : 'another preset';
      throw new PretrainError(
        `cannot resume from ${resumeDir}: it holds a model of ${savedPreset}, this run asks for ${c.preset} (${diff.slice(0, 4).join('; ')}); pass --preset ${savedPreset} to continue it, or a fresh --out to start a new run`,
      );
    }
  }
  if (!existsSync(join(resolve(c.data), 'manifest.json'))) throw new PretrainError(`${c.data}: no prepared shards (manifest.json) there; run 'blankglm prepare' first`);
  const shards = await openShards(resolve(c.data));
  checkDataFits(c, config, shards);

  mkdirSync(join(outDir, 'checkpoints'), { recursive: true });
  const root = new Rng(c.seed);
  const corruption: DatasetCorruptionOptions = { ...OBJECTIVES[c.objective]!, ...(c.corruption ?? {}) };
  const datasetOptions = { seqLength: c.seqLength, batchSize: c.batchSize, layout: c.layout, validFraction: c.validFraction, corruption };
  const train = new GlmDataset(shards, { ...datasetOptions, rng: root.fork('data') });
  const evalBatches: GlmBatch[] = [];
  let validDocuments = 0;
  if (c.evalEvery > 0) {
    const valid = new GlmDataset(shards, { ...datasetOptions, split: 'valid', rng: root.fork('eval') });
    validDocuments = valid.documentCount;
    for (const b of valid.take(c.evalBatches)) evalBatches.push(b.batch);
  }

  const backend = options.backend;
  const precision = resolvePrecision(c.precision, backend, saved?.run ?? null);
  const model = GlmModel.create(backend, config, saved ? { stateDict: saved.stateDict, precision } : { rng: root.fork('init'), precision });
  let optimizer: AdamW | null = null;
  try {
    optimizer = new AdamW(model, { lr: c.lr, beta1: c.beta1, beta2: c.beta2, eps: c.eps, weightDecay: c.weightDecay, maxGradNorm: c.maxGradNorm });
    const schedule = new AnnealingLR({ lr: c.lr, decayIters: c.decayIters ?? c.steps, warmup: c.warmup, decayStyle: c.decayStyle, decayRatio: c.decayRatio });
    const trainer = new Trainer({ model, optimizer, schedule, source: new DatasetSource(train), objective: blankInfillingObjective(), accumulation: c.accumulation, seed: c.seed });
    if (saved) {
      try {
        trainer.restore(saved.trainer);
      } catch (e) {
        throw new PretrainError(`cannot resume from ${resumeDir}: ${(e as Error).message}; use the saved run's settings (its run-config in training-state.json) or a fresh --out`);
      }
    }
    const runRecord = {
      ...c,
      precision,
      outDir,
      data: resolve(c.data),
      modelConfig: configToJson(config),
      backend: options.backendName ?? backend.name,
      resumedFrom: resumeDir,
      parameters: parameterCount(config),
    };
    writeFileAtomicSync(join(outDir, 'run-config.json'), JSON.stringify(runRecord, null, 2) + '\n');
    const metrics = new MetricsLog(join(outDir, 'metrics.jsonl'));
    metrics.truncateAfter(trainer.step);
    const drawCurve = (): void => writeFileAtomicSync(join(outDir, 'loss-curve.svg'), lossCurveSvg(metrics.read(), `blankglm ${c.preset} on ${shards.manifest.sources.length} source(s): loss by step`));
    const startStep = trainer.step;
    const result: PretrainResult = {
      status: 'done', startStep, step: startStep, firstLoss: null, lastLoss: null, evals: [], lastCheckpoint: saved ? saved.dir : null,
      seconds: 0, tokensPerSecond: 0, resumedFrom: resumeDir, outDir,
    };
    await options.onStart?.({ model, config, resumedFrom: resumeDir, startStep, parameters: parameterCount(config), trainDocuments: train.documentCount, validDocuments, precision });
    if (startStep >= c.steps) {
      result.status = 'already-done';
      await options.onFinish?.(model);
      return result;
    }
    const evaluate = (): void => {
      const r = trainer.evaluate(evalBatches);
      const record: EvalRecord = { kind: 'eval', step: trainer.step, loss: r.loss, perplexity: r.perplexity, targets: r.targets };
      metrics.append(record);
      result.evals.push(record);
      options.onEval?.(record);
    };
    const checkpoint = (): void => {
      const dir = saveTrainingCheckpoint(join(outDir, 'checkpoints'), {
        config, stateDict: model.stateDict(), trainer: trainer.state(), run: runRecord, tokenizerFiles: options.tokenizerFiles ?? {},
      });
      pruneCheckpoints(join(outDir, 'checkpoints'), c.keep);
      result.lastCheckpoint = dir;
      drawCurve();
      options.onCheckpoint?.(dir, trainer.step);
    };
    if (c.evalEvery > 0 && startStep === 0) evaluate();
    const started = performance.now();
    let tokensThisRun = 0;
    while (trainer.step < c.steps) {
      await yieldToEventLoop();
      if (options.signal?.aborted) {
        result.status = 'interrupted';
        break;
      }
      let m: StepMetrics;
      try {
        m = trainer.trainStep();
      } catch (e) {
        const last = (): string => {
          const ck = listCheckpoints(join(outDir, 'checkpoints')).at(-1);
          return ck ? `the last good checkpoint is ${ck.dir} (step ${ck.step})` : 'no checkpoint was written yet';
        };
        if (e instanceof NonFiniteLossError) {
          drawCurve();
          throw new PretrainError(`${e.message}. Training stopped; ${last()}`);
        }
        if (isOutOfMemory(e)) {
          const probe = new GlmDataset(shards, { ...datasetOptions, rng: root.fork('memory-probe') }).next().batch;
          throw new PretrainError(`${outOfMemoryAdvice(e as Error, c, model, probe)}. Training stopped; ${last()}`);
        }
        throw e;
      }
      tokensThisRun += m.tokens;
      const elapsedSeconds = (performance.now() - started) / 1000;
      const tokensPerSecond = tokensThisRun / Math.max(elapsedSeconds, 1e-9);
      const record: TrainRecord = {
        kind: 'train', step: m.step, loss: m.loss, lr: m.lr, gradNorm: m.gradNorm, tokens: m.tokens, tokensSeen: m.tokensSeen, tokensPerSecond, elapsedSeconds,
      };
      metrics.append(record);
      result.firstLoss ??= m.loss;
      result.lastLoss = m.loss;
      result.step = m.step;
      result.seconds = elapsedSeconds;
      result.tokensPerSecond = tokensPerSecond;
      options.onStep?.({ ...m, elapsedSeconds, tokensPerSecond });
      const last = m.step === c.steps;
      if (c.evalEvery > 0 && (m.step % c.evalEvery === 0 || last)) evaluate();
      if (options.stopAfterStep !== undefined && m.step >= options.stopAfterStep) {
        result.status = 'stopped';
        return result;
      }
      if (m.step % c.checkpointEvery === 0 || last) checkpoint();
    }
    if (result.status === 'interrupted' && result.lastCheckpoint !== join(outDir, 'checkpoints', checkpointName(trainer.step))) {
      if (trainer.step > 0) checkpoint();
    }
    drawCurve();
    await options.onFinish?.(model);
    return result;
  } finally {
    optimizer?.dispose();
    model.dispose();
  }
}
