// A micro pretraining run for the CLI tests: a GLM-tiny layout shrunk to one layer of width 32,
// on 60 kB of an embedded book, in a fresh folder (corpus.txt, micro.json).
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { embeddedCorpusFiles } from '@blankglm/data';

export const MICRO = {
  preset: 'glm-tiny',
  model: { num_layers: 1, hidden_size: 32, num_attention_heads: 2, max_sequence_length: 64 },
  batchSize: 2,
  seqLength: 32,
  lr: 0.003,
  warmup: 0.2,
  objective: 'mixture',
  validFraction: 0.05,
  evalBatches: 1,
};

/** A folder with corpus.txt (60 kB of Moby Dick) and micro.json (the micro run settings). */
export function microWorkspace(prefix = 'blankglm-cli-pretrain-'): string {
  const cwd = mkdtempSync(join(tmpdir(), prefix));
  const book = embeddedCorpusFiles().find((f) => f.path.endsWith('melville-moby_dick.txt'))!;
  writeFileSync(join(cwd, 'corpus.txt'), readFileSync(book.path, 'utf8').replace(/\r\n/g, '\n').slice(20_000, 80_000));
  writeFileSync(join(cwd, 'micro.json'), JSON.stringify(MICRO));
  return cwd;
}

/** The training losses of a run folder's metrics.jsonl, by step. */
export function trainLosses(outDir: string): Map<number, number> {
  const lines = readFileSync(join(outDir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { kind: string; step: number; loss: number });
  return new Map(lines.filter((r) => r.kind === 'train').map((r) => [r.step, r.loss]));
}
