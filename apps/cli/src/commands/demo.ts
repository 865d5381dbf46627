// `blankglm demo`: the whole data path on the embedded books, in seconds. Prepares the embedded
// corpus into shards (once), streams GLM training batches from them, and shows what the model
// would be trained on: corrupted samples as Part A (with blanks) and Part B (the spans to fill).
import { resolve } from 'node:path';
import { GlmDataset, ShardError, embeddedCorpusFiles, openShards, type DatasetBatch, type ShardSet } from '@blankglm/data';
import { Rng } from '@blankglm/tensor';
import { loadBertTokenizer, type GlmTokenizer } from '@blankglm/tokenizer';
import type { GlmSample } from '@blankglm/corruption';
import { CliError, type Command } from '../cli.js';
import { formatCount } from '../progress.js';
import { preparationSummary, runPreparation, singleValued } from './prepare.js';

/** Opens prepared embedded-corpus shards when they are complete, intact and current; else says why not. */
async function openPrepared(dir: string): Promise<{ shards?: ShardSet; reason: string }> {
  try {
    const shards = await openShards(dir, { verify: true });
    const want = embeddedCorpusFiles().map((f) => f.path);
    const have = shards.manifest.sources.map((s) => s.path);
    if (shards.manifest.tokenizer.family !== 'bert' || want.join('\n') !== have.join('\n')) {
      return { reason: 'it was prepared from another corpus or tokenizer' };
    }
    return { shards, reason: '' };
  } catch (e) {
    if (e instanceof ShardError) return { reason: e.message };
    throw e;
  }
}

function oneLine(text: string, max: number): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > max ? flat.slice(0, max - 1) + '…' : flat;
}

/** Part A as text with its blanks, then each Part-B span with the text it must produce. */
export function renderSample(sample: GlmSample, window: ArrayLike<number>, tokenizer: GlmTokenizer, maxChars = 600): string {
  const partA = tokenizer.decode(Array.from(sample.inputIds.subarray(0, sample.sep)));
  const lines = [`  objective: ${sample.objective}, ${sample.spans.length} span(s), Part A ${sample.sep} tokens, Part B ${sample.inputIds.length - sample.sep} tokens`];
  lines.push(`  Part A: ${oneLine(partA, maxChars)}`);
  sample.spans.forEach((span, i) => {
    const maskId = span.maskIndex >= 0 ? sample.inputIds[span.maskIndex]! : -1;
    const mask = maskId >= 0 ? (tokenizer.idToToken(maskId) ?? String(maskId)) : '-';
    const text = tokenizer.decode(Array.from(window).slice(span.start, span.end));
    lines.push(`  Part B ${i + 1}: ${mask} → "${oneLine(text, 160)}" (${span.end - span.start} tokens)`);
  });
  return lines.join('\n');
}

export const demoCommand: Command = {
  name: 'demo',
  summary: 'Prepare the embedded books and show GLM training batches made from them.',
  description: `
Prepares the embedded corpus (17 public-domain Gutenberg books) into shards under --dir (once;
later runs reuse them after checking their checksums), streams GLM training batches from them
with the GLM-10B objective mixture (token, sentence and document blanks), and prints corpus
statistics, throughput and a few corrupted samples as Part A / Part B.

Example:
  blankglm demo
  blankglm demo --batches 100 --seed 7`,
  options: singleValued({
    dir: { type: 'string', placeholder: 'dir', default: 'runs/demo/data', description: 'Where the prepared shards live.' },
    batches: { type: 'number', placeholder: 'n', default: 50, description: 'Batches to stream for the throughput figure.' },
    'seq-length': { type: 'number', placeholder: 'n', default: 128, description: 'Window length in tokens ([CLS] included).' },
    'batch-size': { type: 'number', placeholder: 'n', default: 8, description: 'Windows per batch.' },
    samples: { type: 'number', placeholder: 'n', default: 3, description: 'Corrupted samples to print.' },
    seed: { type: 'number', placeholder: 'n', default: 1, description: 'Seed of the batch stream.' },
    workers: { type: 'number', placeholder: 'n', description: 'Tokenizer worker threads when preparing (default: available cores).' },
  }),
  async run({ options, io }) {
    const positive = (name: string, min = 1): number => {
      const v = options[name] as number;
      if (!Number.isInteger(v) || v < min) throw new CliError(`--${name} must be a whole number ≥ ${min}, got ${v}`);
      return v;
    };
    const batches = positive('batches');
    const seqLength = positive('seq-length', 16);
    const batchSize = positive('batch-size');
    const sampleCount = positive('samples', 0);
    const seed = options.seed as number;
    const dir = resolve(io.cwd, options.dir as string);

    let { shards, reason } = await openPrepared(dir);
    if (shards) {
      io.stdout.write(`using prepared data in ${dir} (${shards.manifest.sources.length} books, checksums verified)\n`);
    } else {
      const first = reason.includes('not found');
      if (!first) io.stderr.write(`re-preparing ${dir}: ${reason}\n`);
      io.stdout.write(`preparing the embedded corpus (${embeddedCorpusFiles().length} Gutenberg books) into ${dir}\n`);
      const result = await runPreparation(io, {
        files: embeddedCorpusFiles(),
        outDir: dir,
        tokenizer: { kind: 'bert' },
        split: 'paragraphs',
        textField: 'text',
        encoding: 'auto',
        workers: options.workers as number | undefined,
        force: !first,
      });
      io.stdout.write(preparationSummary(result) + '\n');
      shards = await openShards(dir);
    }
    const m = shards.manifest;
    const latin1 = m.sources.filter((s) => s.encoding === 'latin1').length;
    io.stdout.write(
      `\ncorpus: ${m.documents.toLocaleString('en-US')} documents (paragraphs), ${m.tokens.toLocaleString('en-US')} ${m.tokenizer.family} tokens, ` +
        `${m.sources.length} books (${latin1} read as Latin-1), ${m.shards.length} shard(s)\n`,
    );

    const tokenizer = loadBertTokenizer();
    const dataset = new GlmDataset(shards, {
      seqLength,
      batchSize,
      validFraction: 0.01,
      corruption: { mixture: { token: 0.5, sentence: 0.3, document: 0.2 }, objectiveScope: 'sample', taskMask: true },
      rng: new Rng(seed),
    });
    const started = performance.now();
    let last: DatasetBatch | undefined;
    let windowTokens = 0;
    let targets = 0;
    let rowSlots = 0;
    let sampleTokens = 0;
    for (const b of dataset.take(batches)) {
      last = b;
      for (const w of b.windows) windowTokens += w.length;
      for (const s of b.samples) sampleTokens += s.inputIds.length;
      for (const v of b.batch.lossMask) targets += v;
      rowSlots += b.batch.inputIds.length;
    }
    const seconds = (performance.now() - started) / 1000;
    io.stdout.write(
      `batches: ${batches} × ${batchSize} windows of ≤${seqLength} tokens → rows of ${dataset.rowLength} ` +
        `(${dataset.documentCount.toLocaleString('en-US')} training documents, ${(shards.documentCount - dataset.documentCount).toLocaleString('en-US')} held out)\n` +
        `  ${(batches / seconds).toFixed(0)} batches/s, ${formatCount(windowTokens / seconds)} window tokens/s; ` +
        `${((100 * targets) / windowTokens).toFixed(1)} targets per 100 window tokens; rows are ${((100 * sampleTokens) / rowSlots).toFixed(0)}% sample, the rest padding\n`,
    );
    if (!last) throw new CliError('no batch was produced');
    const shown = pickVaried(last, sampleCount);
    shown.forEach((i, k) => {
      io.stdout.write(`\nsample ${k + 1} (batch ${last!.index}, row ${i}):\n${renderSample(last!.samples[i]!, last!.windows[i]!, tokenizer)}\n`);
    });
    io.stdout.write(`\n([PAD] ends a document in BERT-vocabulary GLM models; the model reads Part A with blanks and writes Part B.)\n`);
  },
};

/** Up to `n` sample indices of a batch, different objectives first. */
function pickVaried(batch: DatasetBatch, n: number): number[] {
  const chosen: number[] = [];
  const seen = new Set<string>();
  batch.samples.forEach((s, i) => {
    if (chosen.length < n && !seen.has(s.objective)) {
      seen.add(s.objective);
      chosen.push(i);
    }
  });
  for (let i = 0; i < batch.samples.length && chosen.length < n; i++) if (!chosen.includes(i)) chosen.push(i);
  return chosen;
}
