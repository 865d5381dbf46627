// What commands that run a model share: the --backend/--threads options, opening the backend
// (through backends.ts, the one place that picks one), loading a checkpoint with its tokenizer,
// and building the model on the backend.
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { TokenizerSpec } from '@blankglm/data';
import { CheckpointMismatchError, configFromJson, getPreset, GlmModel, loadCheckpoint, type CheckpointFormat, type GlmConfig, type LoadedCheckpoint } from '@blankglm/model-spec';
import type { Backend } from '@blankglm/tensor';
import { PretrainError, resolvePrecision } from '@blankglm/trainer';
import { embeddedBertVocabText, loadBertTokenizer, loadGpt2Tokenizer, loadTokenizerJson, type GlmTokenizer } from '@blankglm/tokenizer';
import { BACKEND_NAMES, createBackend, type BackendName } from './backends.js';
import { CliError, type OptionSpec, type OptionValues } from './cli.js';

export const FORMAT_NAMES: Record<CheckpointFormat, string> = {
  blankglm: 'blankglm folder (config.json + model.safetensors)',
  'thudm-hf': 'THUDM Hugging Face folder (config.json model_type "glm" + pytorch_model.bin)',
  'original-release': 'original GLM release folder (latest_checkpointed_iteration.txt + mp_rank_XX_model_states.pt)',
};

/** The --preset / --config options shared by commands that read checkpoints. */
export const CONFIG_OPTIONS: Record<string, OptionSpec> = {
  preset: { type: 'string', placeholder: 'name', description: 'Model shape for folders without a config (original releases), e.g. glm-large.' },
  config: { type: 'string', placeholder: 'file', description: 'A config.json (blankglm or THUDM) giving the model shape; overrides the folder\'s own.' },
};

/** The config the user gave with --preset or --config, if any. */
export function modelConfigFromOptions(options: OptionValues, cwd: string): { config: GlmConfig; source: string } | null {
  const preset = options.preset as string | undefined;
  const file = options.config as string | undefined;
  if (preset && file) throw new CliError('give either --preset or --config, not both');
  if (preset) {
    try {
      return { config: getPreset(preset), source: `preset ${preset}` };
    } catch (e) {
      throw new CliError(`--preset: ${(e as Error).message}`);
    }
  }
  if (file) {
    const path = resolve(cwd, file);
    if (!existsSync(path)) throw new CliError(`--config: ${path} does not exist`);
    let json: unknown;
    try {
      json = JSON.parse(readFileSync(path, 'utf8'));
    } catch (e) {
      throw new CliError(`--config: ${path} is not valid JSON (${(e as Error).message})`);
    }
    try {
      return { config: configFromJson(json, path), source: path };
    } catch (e) {
      throw new CliError((e as Error).message);
    }
  }
  return null;
}

/** Loads a checkpoint folder for a command; load errors become one clear CLI error. */
export function loadCheckpointForCli(folder: string, options: OptionValues, cwd: string, allowUnexpected = false): LoadedCheckpoint {
  const given = modelConfigFromOptions(options, cwd);
  try {
    return loadCheckpoint(resolve(cwd, folder), { ...(given ? { config: given.config, configSource: given.source } : {}), allowUnexpected });
  } catch (e) {
    if (e instanceof CheckpointMismatchError) {
      throw new CliError(`${e.message}\n(check --preset/--config; --ignore-unexpected drops tensors the model has no parameter for)`);
    }
    throw new CliError((e as Error).message);
  }
}

export function describeConfig(c: GlmConfig): string {
  return (
    `${c.num_layers} layers, hidden ${c.hidden_size}, ${c.num_attention_heads} heads, vocab ${c.vocab_size}, ` +
    `max_sequence_length ${c.max_sequence_length}, block positions ${c.block_position_encoding ? 'on' : 'off'}, ` +
    `${c.hidden_act}, tokenizer family ${c.tokenizer_family}`
  );
}

/**
 * The files of an embedded vocabulary, to save beside a checkpoint so that it loads on its own:
 * BERT as vocab.txt, GPT-2 as vocab.json + merges.txt.
 */
export function embeddedTokenizerFiles(family: 'bert' | 'gpt2'): Record<string, string> {
  if (family === 'bert') return { 'vocab.txt': embeddedBertVocabText() };
  const saved = loadGpt2Tokenizer().toJSON();
  if (saved.model.type !== 'BPE') throw new Error('embedded GPT-2 tokenizer is not BPE');
  const vocab: Record<string, number> = {};
  saved.model.vocab.forEach((t, id) => (vocab[t] = id));
  const merges = '#version: 0.2\n' + saved.model.merges.map(([a, b]) => `${a} ${b}`).join('\n') + '\n';
  return { 'vocab.json': JSON.stringify(vocab), 'merges.txt': merges };
}

/** --backend and --threads, for commands that run a model. */
export const BACKEND_OPTIONS: Record<string, OptionSpec> = {
  backend: {
    type: 'string',
    placeholder: 'name',
    default: 'auto',
    description: `Compute backend: auto (the fastest available: gpu, wasm, ref), ${BACKEND_NAMES.join(', ')}. 'blankglm doctor' lists what runs here.`,
  },
  threads: { type: 'number', placeholder: 'n', description: 'Worker threads of the wasm backend (default: all cores).' },
};

/** Options of commands that load a checkpoint and run it. */
export const MODEL_OPTIONS: Record<string, OptionSpec> = { ...BACKEND_OPTIONS, ...CONFIG_OPTIONS };

export async function openBackend(options: OptionValues): Promise<{ backend: Backend; name: BackendName }> {
  const name = (options.backend as string | undefined) ?? 'auto';
  if (name !== 'auto' && !(BACKEND_NAMES as readonly string[]).includes(name)) {
    throw new CliError(`unknown --backend '${name}'; expected auto or one of ${BACKEND_NAMES.join(', ')}`);
  }
  const threads = options.threads as number | undefined;
  if (threads !== undefined && (!Number.isInteger(threads) || threads < 1)) throw new CliError(`--threads must be a whole number ≥ 1, got ${threads}`);
  try {
    return await createBackend(name as BackendName | 'auto', threads !== undefined ? { threads } : {});
  } catch (e) {
    throw new CliError((e as Error).message);
  }
}

/**
 * The tokenizer of a checkpoint: its own files (tokenizer.json; vocab.json + merges.txt; vocab.txt),
 * else the embedded vocabulary of its family when the sizes fit. It must cover the model's vocabulary.
 */
export function tokenizerForCheckpoint(ck: LoadedCheckpoint, dir: string): { tokenizer: GlmTokenizer; source: string; spec: TokenizerSpec } {
  const has = (f: string): boolean => ck.tokenizerFiles.includes(f) && existsSync(join(dir, f));
  let tokenizer: GlmTokenizer;
  let source: string;
  let spec: TokenizerSpec; // the same tokenizer for @blankglm/data (corpus preparation)
  try {
    if (has('tokenizer.json')) {
      tokenizer = loadTokenizerJson(join(dir, 'tokenizer.json'));
      source = 'tokenizer.json';
      spec = { kind: 'files', tokenizerJson: join(dir, 'tokenizer.json') };
    } else if (has('vocab.json') && has('merges.txt')) {
      tokenizer = loadGpt2Tokenizer({ vocabJson: join(dir, 'vocab.json'), mergesFile: join(dir, 'merges.txt') });
      source = 'vocab.json + merges.txt';
      spec = { kind: 'files', vocab: join(dir, 'vocab.json'), merges: join(dir, 'merges.txt') };
    } else if (has('vocab.txt')) {
      tokenizer = loadBertTokenizer({ vocabFile: join(dir, 'vocab.txt') });
      source = 'vocab.txt';
      spec = { kind: 'files', vocab: join(dir, 'vocab.txt') };
    } else if (ck.config.tokenizer_family === 'bert') {
      tokenizer = loadBertTokenizer();
      source = 'embedded BERT uncased vocabulary';
      spec = { kind: 'bert' };
    } else if (ck.config.tokenizer_family === 'gpt2') {
      tokenizer = loadGpt2Tokenizer();
      source = 'embedded GPT-2 vocabulary';
      spec = { kind: 'gpt2' };
    } else {
      throw new CliError(
        `${dir} has no tokenizer files (tokenizer.json, vocab.json + merges.txt or vocab.txt) and no vocabulary is embedded for tokenizer family '${ck.config.tokenizer_family}'; copy the model's tokenizer files into the folder`,
      );
    }
  } catch (e) {
    if (e instanceof CliError) throw e;
    throw new CliError(`cannot load the tokenizer of ${dir}: ${(e as Error).message}`);
  }
  if (tokenizer.vocabSize > ck.config.vocab_size) {
    throw new CliError(
      `the tokenizer (${source}) has ${tokenizer.vocabSize} tokens but the model's embedding has only ${ck.config.vocab_size} rows (vocab_size in ${ck.configSource}); they do not belong together`,
    );
  }
  return { tokenizer, source, spec };
}

export interface OpenedModel {
  checkpoint: LoadedCheckpoint;
  dir: string;
  tokenizer: GlmTokenizer;
  tokenizerSource: string;
  tokenizerSpec: TokenizerSpec;
  model: GlmModel;
  backendName: BackendName;
  /** The dtype of the model's matrix operands. */
  precision: 'f32' | 'bf16';
}

/** --precision, for commands that train a model. */
export const PRECISION_OPTION: OptionSpec = {
  type: 'string',
  placeholder: 'auto|f32|bf16',
  description: 'Matrix operands in bf16 (f32 master weights) or f32; auto (default): bf16 on the gpu backend, f32 elsewhere.',
};

/**
 * Loads a checkpoint folder, its tokenizer and the model on the chosen backend, in f32 or — for
 * training commands that pass `precision` — the precision resolved for the backend. Dispose `model` when done.
 */
export async function openModel(folder: string, options: OptionValues, cwd: string, precision?: 'auto' | 'f32' | 'bf16'): Promise<OpenedModel> {
  const dir = resolve(cwd, folder);
  const checkpoint = loadCheckpointForCli(folder, options, cwd);
  const { tokenizer, source, spec } = tokenizerForCheckpoint(checkpoint, dir);
  const { backend, name } = await openBackend(options);
  let resolved: 'f32' | 'bf16' = 'f32';
  try {
    if (precision !== undefined) resolved = resolvePrecision(precision, backend, null);
  } catch (e) {
    backend.dispose();
    throw e instanceof PretrainError ? new CliError(`--precision: ${e.message}`) : e;
  }
  const model = GlmModel.create(backend, checkpoint.config, { stateDict: checkpoint.stateDict, precision: resolved });
  return { checkpoint, dir, tokenizer, tokenizerSource: source, tokenizerSpec: spec, model, backendName: name, precision: resolved };
}
