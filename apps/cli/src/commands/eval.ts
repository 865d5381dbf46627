// `blankglm eval`: validation loss and perplexity of a checkpoint on a corpus. The corpus (the
// embedded books by default, with a held-out split; or files/folders; or prepared shards) is
// tokenized with the checkpoint's own tokenizer through @blankglm/data, turned into GLM
// blank-infilling batches by a seeded GlmDataset, and run forward in eval mode (no dropout).
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { GlmDataset, ShardError, describeTokenizer, embeddedCorpusFiles, listCorpusFiles, openShards, type ShardSet } from '@blankglm/data';
import { Rng } from '@blankglm/tensor';
import { CliError, type Command, type OptionValues } from '../cli.js';
import { MODEL_OPTIONS, openModel, type OpenedModel } from '../checkpoint-io.js';
import { runPreparation } from './prepare.js';

const MIXTURES = {
  token: { token: 1, sentence: 0, document: 0 },
  sentence: { token: 0, sentence: 1, document: 0 },
  document: { token: 0, sentence: 0, document: 1 },
  mixed: { token: 0.5, sentence: 0.3, document: 0.2 },
} as const;
type ObjectiveName = keyof typeof MIXTURES;

function wholeNumber(options: OptionValues, name: string, min: number): number {
  const v = options[name] as number;
  if (!Number.isInteger(v) || v < min) throw new CliError(`--${name} must be a whole number ≥ ${min}, got ${v}`);
  return v;
}

/** Shards for the corpus: prepared ones as they are (checked against the tokenizer), else prepared into a temporary folder. */
async function corpusShards(paths: string[], opened: OpenedModel, options: OptionValues, io: Parameters<Command['run']>[0]['io']): Promise<{ shards: ShardSet; source: string; cleanup: () => void }> {
  const expected = describeTokenizer(opened.tokenizer, opened.tokenizerSpec);
  if (paths.length === 1 && existsSync(join(resolve(io.cwd, paths[0]!), 'manifest.json'))) {
    const dir = resolve(io.cwd, paths[0]!);
    let shards: ShardSet;
    try {
      shards = await openShards(dir, { verify: true });
    } catch (e) {
      if (e instanceof ShardError) throw new CliError(e.message);
      throw e;
    }
    const got = shards.manifest.tokenizer;
    if (got.vocabHash !== expected.vocabHash) {
      throw new CliError(
        `${dir} was prepared with another tokenizer (${got.description}) than the checkpoint's (${expected.description}); ` +
          `prepare the corpus again with the checkpoint's tokenizer, or pass the raw corpus files to eval`,
      );
    }
    return { shards, source: `prepared shards ${dir}`, cleanup: () => {} };
  }
  let files;
  try {
    files = paths.length ? await listCorpusFiles(paths, io.cwd) : embeddedCorpusFiles();
  } catch (e) {
    throw new CliError((e as Error).message);
  }
  const outDir = mkdtempSync(join(tmpdir(), 'blankglm-eval-'));
  const cleanup = (): void => rmSync(outDir, { recursive: true, force: true });
  try {
    const workers = options.workers as number | undefined;
    await runPreparation(io, {
      files, outDir, tokenizer: opened.tokenizerSpec, split: 'paragraphs', textField: 'text', encoding: 'auto', force: true,
      ...(workers !== undefined ? { workers } : {}),
    });
    const shards = await openShards(outDir);
    return { shards, source: paths.length ? paths.join(', ') : 'the embedded books', cleanup };
  } catch (e) {
    cleanup();
    if (e instanceof CliError) throw e;
    throw new CliError((e as Error).message);
  }
}

export const evalCommand: Command = {
  name: 'eval',
  summary: 'Validation loss and perplexity of a checkpoint on a corpus (blank infilling)',
  description: `
Tokenizes the corpus with the checkpoint's own tokenizer, builds GLM blank-infilling samples from
it exactly as training does (seeded: the same --seed evaluates the same samples), and runs
--batches batches forward without dropout. Prints the mean loss over all target tokens (Part B,
token-averaged as the original) and the perplexity exp(mean loss).

The corpus is, in order of preference: a folder of prepared shards (blankglm prepare), text or
JSONL files and folders (tokenized into a temporary folder), or by default the embedded books,
of which only the held-out documents (--valid-fraction, 1% by default) are used.

Examples:
  blankglm eval ./glm-large
  blankglm eval ./my-run/checkpoint runs/data --valid-fraction 0.01 --batches 50
  blankglm eval ./glm-large wiki.txt --objective mixed --json`,
  positionals: [
    { name: 'checkpoint', required: true, description: 'A checkpoint folder.' },
    { name: 'corpus', variadic: true, description: 'Prepared shard folder, or text/JSONL files and folders (default: the embedded books).' },
  ],
  options: {
    batches: { type: 'number', placeholder: 'n', default: 8, description: 'Batches to evaluate.' },
    'batch-size': { type: 'number', placeholder: 'n', default: 4, description: 'Windows per batch.' },
    'seq-length': { type: 'number', placeholder: 'n', description: 'Window length in tokens (default: min(128, max_sequence_length)).' },
    objective: { type: 'string', placeholder: 'name', default: 'token', description: `Blanks to evaluate: ${Object.keys(MIXTURES).join(', ')} (mixed = GLM-10B's 50/30/20 mixture).` },
    'valid-fraction': { type: 'number', placeholder: 'f', description: 'Evaluate only the held-out documents at this share (default: 0.01 for the embedded books, 0 = every document of a corpus you give).' },
    seed: { type: 'number', placeholder: 'n', default: 1, description: 'Seed of the window and blank sampling.' },
    workers: { type: 'number', placeholder: 'n', description: 'Tokenizer worker threads when preparing (default: available cores).' },
    json: { type: 'boolean', description: 'Print one JSON object.' },
    ...MODEL_OPTIONS,
  },
  async run({ positionals, options, io }) {
    const [folder, ...corpus] = positionals as [string, ...string[]];
    const batches = wholeNumber(options, 'batches', 1);
    const batchSize = wholeNumber(options, 'batch-size', 1);
    const seed = wholeNumber(options, 'seed', 0);
    const objective = options.objective as string;
    if (!(objective in MIXTURES)) throw new CliError(`unknown --objective '${objective}'; expected ${Object.keys(MIXTURES).join(', ')}`);
    const validFraction = (options['valid-fraction'] as number | undefined) ?? (corpus.length ? 0 : 0.01);
    if (!(validFraction >= 0 && validFraction < 1)) throw new CliError(`--valid-fraction must be in [0, 1), got ${validFraction}`);

    const opened = await openModel(folder, options, io.cwd);
    const { model } = opened;
    let cleanup = (): void => {};
    try {
      const maxLen = model.config.max_sequence_length;
      const seqLength = options['seq-length'] === undefined ? Math.min(128, maxLen) : wholeNumber(options, 'seq-length', 8);
      if (seqLength > maxLen) throw new CliError(`--seq-length ${seqLength} exceeds this model's max_sequence_length (${maxLen})`);
      const corpusInfo = await corpusShards(corpus, opened, options, io);
      cleanup = corpusInfo.cleanup;
      let dataset: GlmDataset;
      try {
        dataset = new GlmDataset(corpusInfo.shards, {
          seqLength, batchSize, split: validFraction > 0 ? 'valid' : 'train', validFraction,
          corruption: { mixture: MIXTURES[objective as ObjectiveName] }, rng: new Rng(seed),
        });
      } catch (e) {
        throw new CliError((e as Error).message);
      }
      let lossSum = 0;
      let targets = 0;
      const started = performance.now();
      for (let i = 0; i < batches; i++) {
        const { batch } = dataset.next();
        const result = model.forward(batch, { mode: 'eval' });
        if (result.loss !== null) {
          lossSum += result.loss * result.numTargets;
          targets += result.numTargets;
        }
      }
      const seconds = (performance.now() - started) / 1000;
      if (targets === 0) throw new CliError('the evaluated batches hold no target tokens; evaluate more batches or a larger corpus');
      const loss = lossSum / targets;
      const perplexity = Math.exp(loss);
      const report = {
        checkpoint: opened.dir, corpus: corpusInfo.source, split: validFraction > 0 ? `held-out ${validFraction}` : 'all documents',
        objective, batches, batch_size: batchSize, seq_length: seqLength, seed, targets, loss, perplexity, backend: opened.backendName, seconds,
      };
      if (options.json) {
        io.stdout.write(JSON.stringify(report) + '\n');
        return 0;
      }
      const w = (line: string): void => void io.stdout.write(line + '\n');
      w(`corpus: ${report.corpus} (${report.split}); ${objective} blanks, ${batches} batches × ${batchSize} windows of ${seqLength} tokens, seed ${seed}`);
      w(`loss: ${loss.toFixed(4)} (mean over ${targets} target tokens)`);
      w(`perplexity: ${perplexity.toFixed(2)}`);
      w(`${opened.backendName} backend, ${seconds.toFixed(1)} s`);
      return 0;
    } finally {
      cleanup();
      model.dispose();
    }
  },
};
