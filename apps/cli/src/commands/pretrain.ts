// `blankglm pretrain`: GLM pretraining with blank infilling on a corpus (or prepared shards, or the
// embedded books), on the fastest available backend. The job itself lives in @blankglm/trainer;
// this command resolves flags and a config file, prepares data when needed, shows progress and
// turns Ctrl-C into "save a checkpoint and stop".
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { embeddedCorpusFiles, listCorpusFiles, openShards, ShardError, type CorpusFile, type ShardSet } from '@blankglm/data';
import { getPreset } from '@blankglm/model-spec';
import type { Backend } from '@blankglm/tensor';
import {
  OBJECTIVES,
  PRETRAIN_DEFAULTS,
  PretrainError,
  resolvePretrainConfig,
  runPretraining,
  type PretrainConfig,
  type PretrainHooks,
  type PretrainResult,
} from '@blankglm/trainer';
import { CliError, type CliIO, type Command, type OptionValues } from '../cli.js';
import { BACKEND_OPTIONS, PRECISION_OPTION, embeddedTokenizerFiles, openBackend } from '../checkpoint-io.js';
import { Progress, formatCount, formatDuration } from '../progress.js';
import { preparationSummary, runPreparation } from './prepare.js';

/** Flag name → PretrainConfig field, for flags that map one to one. */
const NUMERIC_FLAGS: Record<string, keyof PretrainConfig> = {
  steps: 'steps',
  'batch-size': 'batchSize',
  'seq-len': 'seqLength',
  accumulation: 'accumulation',
  lr: 'lr',
  warmup: 'warmup',
  'decay-iters': 'decayIters',
  'decay-ratio': 'decayRatio',
  'weight-decay': 'weightDecay',
  'clip-grad': 'maxGradNorm',
  seed: 'seed',
  'valid-fraction': 'validFraction',
  'eval-every': 'evalEvery',
  'eval-batches': 'evalBatches',
  'checkpoint-every': 'checkpointEvery',
  keep: 'keep',
};

const STRING_FLAGS: Record<string, keyof PretrainConfig> = { preset: 'preset', 'decay-style': 'decayStyle', objective: 'objective', layout: 'layout', precision: 'precision' };

const CONFIG_KEYS = new Set<string>([...Object.keys(PRETRAIN_DEFAULTS), 'model', 'corruption', 'decayIters', 'data', 'outDir', 'precision']);

/** Reads a run configuration file (JSON, PretrainConfig field names); errors name the file and the field. */
export function readRunConfigFile(path: string): Partial<PretrainConfig> {
  if (!existsSync(path)) throw new CliError(`--config ${path}: no such file`);
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new CliError(`--config ${path}: not valid JSON (${(e as Error).message})`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new CliError(`--config ${path}: expected a JSON object of run settings`);
  for (const k of Object.keys(json)) {
    if (!CONFIG_KEYS.has(k)) throw new CliError(`--config ${path}: unknown field '${k}'; known fields: ${[...CONFIG_KEYS].join(', ')}`);
  }
  return json as Partial<PretrainConfig>;
}

/** The config a file plus flags describe (flags win); `data` and `outDir` are filled in by the caller. */
export function configFromOptions(options: OptionValues, cwd: string): Partial<PretrainConfig> {
  const fromFile = options.config ? readRunConfigFile(resolve(cwd, options.config as string)) : {};
  const out: Partial<PretrainConfig> = { ...fromFile };
  for (const [flag, key] of Object.entries(NUMERIC_FLAGS)) if (options[flag] !== undefined) (out as Record<string, unknown>)[key] = options[flag];
  for (const [flag, key] of Object.entries(STRING_FLAGS)) if (options[flag] !== undefined) (out as Record<string, unknown>)[key] = options[flag];
  return out;
}

/** Prepared embedded-corpus shards in `dir` when complete and current; otherwise undefined. */
async function openIfCurrent(dir: string, files: CorpusFile[], family: string): Promise<ShardSet | undefined> {
  if (!existsSync(join(dir, 'manifest.json'))) return undefined;
  try {
    const shards = await openShards(dir, { verify: true });
    const same = shards.manifest.tokenizer.family === family && shards.manifest.sources.map((s) => s.path).join('\n') === files.map((f) => f.path).join('\n');
    return same ? shards : undefined;
  } catch (e) {
    if (e instanceof ShardError) return undefined;
    throw e;
  }
}

/**
 * Where the training shards come from: `data` = prepared shards (a folder with manifest.json) used
 * as they are, or a corpus (files/folders) prepared into `cacheDir`, or — absent — the embedded
 * books, prepared into `cacheDir` once and reused.
 */
export async function resolveTrainingData(io: CliIO, data: string | undefined, cacheDir: string, family: string): Promise<{ dir: string; description: string }> {
  if (family !== 'bert' && family !== 'gpt2') throw new CliError(`preparing data for the ${family} tokenizer is not supported; prepare shards yourself and pass --data <shards>`);
  let files: CorpusFile[];
  let description: string;
  if (data === undefined) {
    files = embeddedCorpusFiles();
    description = `the embedded corpus (${files.length} Gutenberg books)`;
  } else {
    const path = resolve(io.cwd, data);
    if (!existsSync(path)) {
      throw new CliError(`--data ${data}: no such file or folder; give a corpus (text/JSONL files or a folder), prepared shards ('blankglm prepare'), or omit --data for the embedded corpus`);
    }
    if (statSync(path).isDirectory() && existsSync(join(path, 'manifest.json'))) return { dir: path, description: `prepared shards in ${path}` };
    files = await listCorpusFiles([path], io.cwd);
    if (files.length === 0) throw new CliError(`--data ${data}: no text or JSONL files in it`);
    description = `${data} (${files.length} file(s))`;
  }
  if (await openIfCurrent(cacheDir, files, family)) {
    io.stderr.write(`using prepared data in ${cacheDir} (checksums verified)\n`);
    return { dir: cacheDir, description };
  }
  io.stderr.write(`preparing ${description} into ${cacheDir}\n`);
  const result = await runPreparation(io, {
    files,
    outDir: cacheDir,
    tokenizer: { kind: family },
    split: 'paragraphs',
    textField: 'text',
    encoding: 'auto',
    force: true,
  });
  io.stderr.write(preparationSummary(result) + '\n');
  return { dir: cacheDir, description };
}

/** Tokenizer files to store in checkpoints: the embedded vocabulary (BERT or GPT-2) when the shards use it. */
export async function tokenizerFilesFor(shardsDir: string): Promise<Record<string, string>> {
  const description = (await openShards(shardsDir)).manifest.tokenizer.description;
  if (description.includes('embedded bert')) return embeddedTokenizerFiles('bert');
  if (description.includes('embedded gpt2')) return embeddedTokenizerFiles('gpt2');
  return {};
}

export interface TrainingRunOptions {
  config: PretrainConfig;
  backend: Backend;
  backendName: string;
  resume?: string;
  /** One JSON object per logged step on stdout (and per evaluation). */
  json: boolean;
  logEvery: number;
  hooks?: PretrainHooks;
}

/** Runs the job with a progress display, Ctrl-C handling and readable lines; returns the result. */
export async function runTrainingWithProgress(io: CliIO, o: TrainingRunOptions): Promise<PretrainResult> {
  const { config } = o;
  const ac = new AbortController();
  const onSigint = (): void => {
    if (ac.signal.aborted) return;
    ac.abort();
    io.stderr.write('\ninterrupted: finishing this step and saving a checkpoint (Ctrl-C again is ignored until then)\n');
  };
  process.on('SIGINT', onSigint);
  const progress = new Progress(io.stderr, { label: 'training', unit: 'steps', isTTY: io.isTTY, lineIntervalMs: 10_000 });
  const say = (line: string): void => {
    if (!o.json) io.stdout.write(line + '\n');
  };
  let recentLoss = NaN;
  let startStep = 0;
  try {
    const result = await runPretraining(config, {
      backend: o.backend,
      backendName: o.backendName,
      resume: o.resume,
      signal: ac.signal,
      tokenizerFiles: await tokenizerFilesFor(config.data),
      onStart: async (info) => {
        startStep = info.startStep;
        say(
          `${info.resumedFrom ? `resuming from ${info.resumedFrom} at step ${info.startStep}` : 'starting a new run'}: ${config.preset} (${formatCount(info.parameters)} parameters) ` +
            `on the ${o.backendName} backend (${info.precision === 'bf16' ? 'bf16 products, f32 master weights' : 'f32'}); ${config.steps} steps of ${config.batchSize}×${config.accumulation} windows of ${config.seqLength} tokens, objective ${config.objective}, ` +
            `${info.trainDocuments.toLocaleString('en-US')} training / ${info.validDocuments.toLocaleString('en-US')} held-out documents`,
        );
        await o.hooks?.onStart?.(info);
      },
      onStep: (m) => {
        recentLoss = Number.isNaN(recentLoss) ? m.loss : 0.9 * recentLoss + 0.1 * m.loss;
        if (o.json && (m.step % o.logEvery === 0 || m.step === config.steps)) {
          io.stdout.write(JSON.stringify({ step: m.step, loss: m.loss, lr: m.lr, gradNorm: m.gradNorm, tokens: m.tokens, tokensPerSecond: m.tokensPerSecond, elapsedSeconds: m.elapsedSeconds }) + '\n');
        }
        const update = {
          done: m.step - startStep,
          total: config.steps - startStep,
          detail: `step ${m.step}  loss ${m.loss.toFixed(3)} (avg ${recentLoss.toFixed(3)})  lr ${m.lr.toExponential(2)}  ${formatCount(m.tokensPerSecond)} tok/s`,
        };
        if (m.step === config.steps) progress.finish(update);
        else progress.update(update);
        o.hooks?.onStep?.(m);
      },
      onEval: (e) => {
        if (o.json) io.stdout.write(JSON.stringify({ step: e.step, evalLoss: e.loss, evalPerplexity: e.perplexity, evalTargets: e.targets }) + '\n');
        else {
          if (io.isTTY) io.stderr.write('\r\x1b[K');
          say(`step ${e.step}: held-out loss ${e.loss.toFixed(3)}, perplexity ${e.perplexity.toFixed(1)} (${e.targets} target tokens)`);
        }
        o.hooks?.onEval?.(e);
      },
      onCheckpoint: (dir, step) => o.hooks?.onCheckpoint?.(dir, step),
      onFinish: (model) => o.hooks?.onFinish?.(model),
    });
    progress.abort();
    const tail = `${formatCount(result.tokensPerSecond)} tokens/s, ${formatDuration(result.seconds)}`;
    if (result.status === 'already-done') say(`nothing to do: the run is already at step ${result.step} (--steps ${config.steps}); raise --steps to continue it`);
    else if (result.status === 'interrupted') {
      io.stderr.write(`stopped at step ${result.step}; checkpoint ${result.lastCheckpoint ?? '(none: no step had finished)'}; continue with --resume auto\n`);
    } else {
      say(`done: step ${result.step}, training loss ${result.firstLoss?.toFixed(3)} → ${result.lastLoss?.toFixed(3)} (${tail})`);
      say(`checkpoint: ${result.lastCheckpoint}\nmetrics: ${join(result.outDir, 'metrics.jsonl')}\nloss curve: ${join(result.outDir, 'loss-curve.svg')}`);
    }
    return result;
  } catch (e) {
    progress.abort();
    if (e instanceof PretrainError) throw new CliError(e.message, 1);
    throw e;
  } finally {
    process.off('SIGINT', onSigint);
  }
}

export const pretrainCommand: Command = {
  name: 'pretrain',
  summary: 'Pretrain a GLM with autoregressive blank infilling (resumable, with metrics and a loss curve).',
  description: `
Trains a GLM from scratch on a corpus with the objectives of the paper (token, sentence and
document blanks, the released models' mixtures, or the MLM / CLM baselines): AdamW without decay on
biases and LayerNorm, GLM's AnnealingLR schedule (warmup, cosine or linear decay to a floor),
gradient clipping and accumulation, the loss averaged over the target tokens of the whole batch.
Settings come from --config (a JSON file of run settings) and flags (flags win).

Writes to --out: run-config.json (the resolved configuration), metrics.jsonl (one line per step
and per evaluation), loss-curve.svg, and checkpoints/step-N (a blankglm model folder plus the
optimizer and data position; the last --keep are kept, each written atomically). --resume auto
continues the newest checkpoint bit for bit; --steps is the total, also when resuming. Ctrl-C
finishes the current step, saves a checkpoint and exits (130). A NaN loss stops the run, naming the
last good checkpoint.

Objectives: ${Object.keys(OBJECTIVES).join(', ')}.

Examples:
  blankglm pretrain --out runs/tiny                       # glm-tiny on the embedded books
  blankglm pretrain --data books/ --preset glm-small --steps 5000 --out runs/small
  blankglm pretrain --out runs/tiny --resume auto --steps 2000
  blankglm pretrain --config run.json --json > log.jsonl`,
  options: {
    config: { type: 'string', placeholder: 'file', description: 'A JSON file of run settings (field names as in run-config.json, e.g. {"preset":"glm-tiny","steps":500,"model":{...}}).' },
    preset: { type: 'string', placeholder: 'name', description: `Model shape (default ${PRETRAIN_DEFAULTS.preset}; see model-spec presets).` },
    data: { type: 'string', placeholder: 'path', description: 'A corpus (text/JSONL file or folder) or prepared shards; default: the embedded corpus.' },
    out: { type: 'string', short: 'o', placeholder: 'dir', description: 'Run folder for checkpoints, metrics and the loss curve (required).' },
    ...BACKEND_OPTIONS,
    resume: { type: 'string', placeholder: 'auto|dir', description: 'Continue a run: auto (the newest checkpoint in --out, else start) or a checkpoint / run folder.' },
    steps: { type: 'number', placeholder: 'n', description: `Total optimizer steps, also when resuming (default ${PRETRAIN_DEFAULTS.steps}).` },
    'batch-size': { type: 'number', placeholder: 'n', description: `Windows per micro-batch (default ${PRETRAIN_DEFAULTS.batchSize}).` },
    'seq-len': { type: 'number', placeholder: 'n', description: `Window length in tokens, at most the preset's max_sequence_length (default ${PRETRAIN_DEFAULTS.seqLength}).` },
    accumulation: { type: 'number', placeholder: 'n', description: 'Micro-batches per step (gradient accumulation; default 1).' },
    lr: { type: 'number', placeholder: 'x', description: `Peak learning rate (default ${PRETRAIN_DEFAULTS.lr}).` },
    warmup: { type: 'number', placeholder: 'fraction', description: `Warmup as a fraction of the decay iterations (default ${PRETRAIN_DEFAULTS.warmup}).` },
    'decay-iters': { type: 'number', placeholder: 'n', description: 'Iterations of the decay (default: --steps).' },
    'decay-style': { type: 'string', placeholder: 'cosine|linear|constant', description: 'Learning-rate decay (default cosine).' },
    'decay-ratio': { type: 'number', placeholder: 'x', description: `Floor of the decay as a fraction of --lr (default ${PRETRAIN_DEFAULTS.decayRatio}).` },
    'weight-decay': { type: 'number', placeholder: 'x', description: `AdamW weight decay, not on biases and LayerNorm (default ${PRETRAIN_DEFAULTS.weightDecay}).` },
    'clip-grad': { type: 'number', placeholder: 'x', description: 'Clip the global gradient norm (default 1; 0 = off).' },
    seed: { type: 'number', placeholder: 'n', description: `Seed of initialisation, data and dropout (default ${PRETRAIN_DEFAULTS.seed}).` },
    objective: { type: 'string', placeholder: 'name', description: `Pretraining objective (default ${PRETRAIN_DEFAULTS.objective}).` },
    layout: { type: 'string', placeholder: 'pack|pad', description: 'Pack several samples per row (default) or one sample per row.' },
    'valid-fraction': { type: 'number', placeholder: 'x', description: `Share of documents held out for evaluation (default ${PRETRAIN_DEFAULTS.validFraction}).` },
    'eval-every': { type: 'number', placeholder: 'n', description: `Evaluate on held-out documents every n steps (default ${PRETRAIN_DEFAULTS.evalEvery}; 0 = never).` },
    'eval-batches': { type: 'number', placeholder: 'n', description: `Held-out batches per evaluation (default ${PRETRAIN_DEFAULTS.evalBatches}).` },
    'checkpoint-every': { type: 'number', placeholder: 'n', description: `Save a checkpoint every n steps and at the end (default ${PRETRAIN_DEFAULTS.checkpointEvery}).` },
    keep: { type: 'number', placeholder: 'n', description: `Checkpoints to keep (default ${PRETRAIN_DEFAULTS.keep}).` },
    precision: { ...PRECISION_OPTION, description: `${PRECISION_OPTION.description} When resuming, auto keeps the saved run's.` },
    json: { type: 'boolean', description: 'Print one JSON object per logged step (step, loss, lr, …) and per evaluation on stdout.' },
    'log-every': { type: 'number', placeholder: 'n', default: 1, description: 'With --json: print every n-th step.' },
  },
  async run({ options, io }) {
    const partial = configFromOptions(options, io.cwd);
    const outArg = (options.out as string | undefined) ?? partial.outDir;
    if (!outArg) throw new CliError("missing --out <dir>: the run folder for checkpoints and metrics\nRun 'blankglm pretrain --help' for usage.");
    const outDir = resolve(io.cwd, outArg);
    const logEvery = options['log-every'] as number;
    if (!Number.isInteger(logEvery) || logEvery < 1) throw new CliError(`--log-every must be a whole number ≥ 1, got ${logEvery}`);
    let family: string;
    try {
      family = getPreset(partial.preset ?? PRETRAIN_DEFAULTS.preset).tokenizer_family;
    } catch (e) {
      throw new CliError(`--preset: ${(e as Error).message}`);
    }
    let config: PretrainConfig;
    try {
      // Checked before any data is prepared, so a typo fails at once.
      config = resolvePretrainConfig({ ...partial, data: '', outDir });
    } catch (e) {
      if (e instanceof PretrainError) throw new CliError(e.message);
      throw e;
    }
    const data = await resolveTrainingData(io, (options.data as string | undefined) ?? partial.data, join(outDir, 'data'), family);
    config = { ...config, data: data.dir };
    const { backend, name } = await openBackend(options);
    try {
      const result = await runTrainingWithProgress(io, { config, backend, backendName: name, resume: options.resume as string | undefined, json: Boolean(options.json), logEvery });
      return result.status === 'interrupted' ? 130 : 0;
    } finally {
      backend.dispose();
    }
  },
};
