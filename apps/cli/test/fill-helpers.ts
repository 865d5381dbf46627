// A tiny random GLM with the real BERT vocabulary (30592 rows), saved as a blankglm checkpoint,
// and an in-process runner for CLI commands.
import { PassThrough, Readable } from 'node:stream';
import { join } from 'node:path';
import { initParameters, saveCheckpoint, type GlmConfig } from '@blankglm/model-spec';
import { Rng } from '@blankglm/tensor';
import { embeddedBertVocabText } from '@blankglm/tokenizer';
import { runCli } from '../src/index.js';

export const tinyConfig: GlmConfig = {
  model_type: 'blankglm',
  num_layers: 2,
  vocab_size: 30592,
  hidden_size: 32,
  num_attention_heads: 2,
  max_sequence_length: 64,
  embedding_dropout_prob: 0.1,
  attention_dropout_prob: 0.1,
  output_dropout_prob: 0.1,
  block_position_encoding: true,
  attention_scale: 1,
  initializer_range: 0.02,
  hidden_act: 'gelu_tanh',
  layernorm_epsilon: 1e-5,
  tokenizer_family: 'bert',
};

/** Writes the tiny model with the embedded vocab.txt into `dir/name`; returns the folder. */
export function saveTinyCheckpoint(dir: string, name = 'tiny', seed = 7): string {
  const out = join(dir, name);
  saveCheckpoint(out, tinyConfig, initParameters(tinyConfig, new Rng(seed)), { tokenizerFiles: { 'vocab.txt': embeddedBertVocabText() }, overwrite: true });
  return out;
}

export async function runCommand(argv: string[], cwd: string): Promise<{ code: number; out: string; err: string }> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (c) => (out += c));
  stderr.on('data', (c) => (err += c));
  const code = await runCli(argv, { stdin: Readable.from(['']), stdout, stderr, isTTY: false, cwd });
  return { code, out, err };
}
