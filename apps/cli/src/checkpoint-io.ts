// What commands that run a model share: the --backend/--threads options, opening the backend
// (through backends.ts, the one place that picks one), loading a checkpoint with its tokenizer,
// and building the model on the backend.
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { TokenizerSpec } from '@blankglm/data';
import { GlmModel, type LoadedCheckpoint } from '@blankglm/model-spec';
import type { Backend } from '@blankglm/tensor';
import { loadBertTokenizer, loadGpt2Tokenizer, loadTokenizerJson, type GlmTokenizer } from '@blankglm/tokenizer';
import { BACKEND_NAMES, createBackend, type BackendName } from './backends.js';
import { CliError, type OptionSpec, type OptionValues } from './cli.js';
import { CONFIG_OPTIONS, loadCheckpointForCli } from './commands/convert.js';

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
}

/** Loads a checkpoint folder, its tokenizer and the model on the chosen backend. Dispose `model` when done. */
export async function openModel(folder: string, options: OptionValues, cwd: string): Promise<OpenedModel> {
  const dir = resolve(cwd, folder);
  const checkpoint = loadCheckpointForCli(folder, options, cwd);
  const { tokenizer, source, spec } = tokenizerForCheckpoint(checkpoint, dir);
  const { backend, name } = await openBackend(options);
  const model = GlmModel.create(backend, checkpoint.config, { stateDict: checkpoint.stateDict });
  return { checkpoint, dir, tokenizer, tokenizerSource: source, tokenizerSpec: spec, model, backendName: name };
}
