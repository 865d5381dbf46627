// Micro models and small task/data files for fast tests.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createReferenceBackend } from '@blankglm/backend-ref';
import { GlmModel, getPreset, type GlmConfig } from '@blankglm/model-spec';
import { Rng } from '@blankglm/tensor';

/** A 1-layer GLM over the BERT vocabulary (the embedding is most of it). */
export function microConfig(overrides: Partial<GlmConfig> = {}): GlmConfig {
  return { ...getPreset('glm-tiny'), num_layers: 1, hidden_size: 16, num_attention_heads: 2, max_sequence_length: 96, ...overrides };
}

export function microModel(seed = 7, overrides: Partial<GlmConfig> = {}): GlmModel {
  return GlmModel.create(createReferenceBackend(), microConfig(overrides), { rng: new Rng(seed) });
}

export function tempDir(prefix = 'blankglm-finetune-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** Writes JSONL rows (objects or raw strings) into dir/name; returns the path. */
export function writeJsonl(dir: string, name: string, rows: readonly (object | string)[]): string {
  const file = join(dir, name);
  writeFileSync(file, rows.map((r) => (typeof r === 'string' ? r : JSON.stringify(r))).join('\n') + '\n');
  return file;
}

export const CB_ROWS = [
  { premise: 'The cat sat on the mat all day.', hypothesis: 'The cat sat.', label: 'entailment' },
  { premise: 'Nobody came to the party.', hypothesis: 'Many people came.', label: 'contradiction' },
  { premise: 'He might go to Paris next year.', hypothesis: 'He will go to Paris.', label: 'neutral' },
  { premise: 'The sun is shining brightly.', hypothesis: 'It is sunny.', label: 'entailment' },
  { premise: 'She never learned to swim.', hypothesis: 'She swims every day.', label: 'contradiction' },
  { premise: 'Maybe the train is late.', hypothesis: 'The train is late.', label: 'neutral' },
];

export const COPA_ROWS = [
  { premise: 'The man turned on the faucet.', choice1: 'The toilet filled with water.', choice2: 'Water flowed from the spout.', question: 'effect', label: 1 },
  { premise: 'The girl found a bug in her cereal.', choice1: 'She poured milk in the bowl.', choice2: 'She lost her appetite.', question: 'effect', label: 1 },
  { premise: 'The woman retired.', choice1: 'She received her pension.', choice2: 'She paid off her mortgage.', question: 'effect', label: 0 },
  { premise: 'My body cast a shadow over the grass.', choice1: 'The sun was rising.', choice2: 'The grass was cut.', question: 'cause', label: 0 },
];
