// `blankglm convert`: any supported GLM checkpoint folder (THUDM Hugging Face, original GLM
// release, blankglm) to blankglm's own format: config.json + model.safetensors (+ tokenizer files).
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parameterCount, saveCheckpoint, type LoadedCheckpoint } from '@blankglm/model-spec';
import { CONFIG_OPTIONS, describeConfig, embeddedTokenizerFiles, FORMAT_NAMES, loadCheckpointForCli } from '../checkpoint-io.js';
import { CliError, type Command } from '../cli.js';

/** Tokenizer files for the converted folder: the source's own, or an embedded vocabulary that fits. */
function tokenizerFor(ck: LoadedCheckpoint, sourceDir: string): { files: Record<string, string | Uint8Array>; message: string } {
  if (ck.tokenizerFiles.length > 0) {
    const files: Record<string, string | Uint8Array> = {};
    for (const f of ck.tokenizerFiles) files[f] = readFileSync(join(sourceDir, f));
    return { files, message: `copied ${ck.tokenizerFiles.join(', ')}` };
  }
  const c = ck.config;
  if (c.tokenizer_family === 'bert' && c.vocab_size === 30592) {
    return { files: embeddedTokenizerFiles('bert'), message: 'saved the embedded BERT uncased vocabulary as vocab.txt' };
  }
  if (c.tokenizer_family === 'gpt2' && c.vocab_size === 50304) {
    return { files: embeddedTokenizerFiles('gpt2'), message: 'saved the embedded GPT-2 BPE vocabulary as vocab.json + merges.txt' };
  }
  return {
    files: {},
    message: `none (the folder has no tokenizer files and no embedded vocabulary fits tokenizer family ${c.tokenizer_family} with vocab_size ${c.vocab_size})`,
  };
}

export const convertCommand: Command = {
  name: 'convert',
  summary: 'Convert a GLM checkpoint (THUDM Hugging Face, original release, blankglm) to blankglm format',
  description: `
Reads a checkpoint folder of any supported kind, checks every tensor against the model config
(missing, unexpected and wrongly shaped tensors are listed by name and shape), and writes
blankglm's format: config.json + model.safetensors, plus tokenizer files (the folder's own, or
the embedded BERT/GPT-2 vocabulary when the config's family and vocabulary size fit).

Original release folders carry no config: give the shape with --preset or --config.
PyTorch files are read by blankglm's own safe pickle reader: no code in them is run.

Examples:
  blankglm convert ./glm-large --out ./glm-large-blankglm
  blankglm convert ./glm-large-blank-original --preset glm-large --out ./glm-large-bg`,
  positionals: [{ name: 'folder', required: true, description: 'The checkpoint folder to convert.' }],
  options: {
    out: { type: 'string', placeholder: 'dir', description: 'Folder to write (must not exist unless --force).' },
    ...CONFIG_OPTIONS,
    force: { type: 'boolean', description: 'Replace an existing --out folder.' },
    'ignore-unexpected': { type: 'boolean', description: 'Drop tensors the model has no parameter for (e.g. prompt or head weights) instead of refusing.' },
  },
  async run({ positionals, options, io }) {
    const out = options.out as string | undefined;
    if (!out) throw new CliError("missing --out <dir>: where to write the converted checkpoint\nRun 'blankglm convert --help' for usage.");
    const outDir = resolve(io.cwd, out);
    const sourceDir = resolve(io.cwd, positionals[0]!);
    if (existsSync(outDir) && !options.force) throw new CliError(`${outDir} already exists; pass --force to replace it`);
    if (outDir === sourceDir) throw new CliError('--out must be a different folder from the checkpoint being converted');

    const ck = loadCheckpointForCli(positionals[0]!, options, io.cwd, Boolean(options['ignore-unexpected']));
    const w = (s: string): void => void io.stdout.write(s + '\n');
    w(`found: ${FORMAT_NAMES[ck.format]} at ${sourceDir}`);
    w(`config (${ck.configSource}): ${describeConfig(ck.config)}`);
    w(`parameters: ${parameterCount(ck.config).toLocaleString('en-US')} in ${ck.stateDict.size} tensors, all present with the expected shapes`);
    for (const n of ck.notes) w(`note: ${n}`);
    const tok = tokenizerFor(ck, sourceDir);
    w(`tokenizer: ${tok.message}`);
    try {
      saveCheckpoint(outDir, ck.config, ck.stateDict, { tokenizerFiles: tok.files, overwrite: Boolean(options.force) });
    } catch (e) {
      throw new CliError(`cannot write ${outDir}: ${(e as Error).message}`);
    }
    w(`wrote ${outDir} (config.json, model.safetensors${Object.keys(tok.files).length ? ', ' + Object.keys(tok.files).join(', ') : ''})`);
  },
};
