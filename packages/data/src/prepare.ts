// Corpus → shards: read documents (streaming), tokenize them in a pool of worker threads, and write
// binary shards plus a manifest. The output depends only on the corpus, the tokenizer and the
// reading options, never on the number of workers: chunks are numbered and written in order.
import { createHash } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { mkdir, readdir, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { CorpusError, readCorpusDocuments, type CorpusEncoding, type CorpusFile, type SplitMode } from './corpus.js';
import {
  SHARD_FORMAT,
  SHARD_FORMAT_VERSION,
  ShardWriter,
  dtypeForVocab,
  writeFileAtomic,
  type ShardManifest,
  type ShardSource,
  type ShardTokenizerInfo,
} from './shards.js';
import { loadTokenizerFromSpec, tokenizeTexts, type GlmTokenizer, type TokenizedChunk, type TokenizerSpec } from './tokenizer.js';
import type { WorkerReply, WorkerRequest } from './worker.js';

export interface PrepareProgress {
  /** Corpus bytes read so far, and in all. */
  bytesRead: number;
  totalBytes: number;
  /** Documents and tokens written to shards so far. */
  documents: number;
  tokens: number;
  elapsedSeconds: number;
  tokensPerSecond: number;
  bytesPerSecond: number;
  done: boolean;
}

export interface PrepareOptions {
  files: CorpusFile[];
  outDir: string;
  tokenizer: TokenizerSpec;
  split?: SplitMode;
  textField?: string;
  encoding?: CorpusEncoding;
  /** Worker threads (default: available cores; 0 tokenizes in this thread). */
  workers?: number;
  /** Replace an existing prepared output (otherwise refuse). */
  force?: boolean;
  /** Largest shard in tokens (default 2^26 = 64 Mi tokens). */
  shardTokens?: number;
  onProgress?: (p: PrepareProgress) => void;
  /** Minimum milliseconds between progress calls (default 200); the last call always comes. */
  progressIntervalMs?: number;
}

export interface PrepareResult {
  manifest: ShardManifest;
  outDir: string;
  seconds: number;
  workers: number;
}

const CHUNK_CHARS = 1 << 16;
const CHUNK_DOCS = 1024;
const VERSION_TAG = 'blankglm-data 0.1.0';

/** What the output folder holds before a preparation: refuse to overwrite unless forced. */
async function checkOutDir(outDir: string, force: boolean): Promise<string[]> {
  let entries: string[];
  try {
    const st = await stat(outDir);
    if (!st.isDirectory()) throw new CorpusError(`output ${outDir} exists and is not a folder`);
    entries = await readdir(outDir);
  } catch (e) {
    if (e instanceof CorpusError) throw e;
    return [];
  }
  const ours = entries.filter((f) => f === 'manifest.json' || /^shard-\d+\.(bin|idx)$/.test(f));
  if (ours.length > 0 && !force) {
    throw new CorpusError(`output ${outDir} already holds prepared data (${ours.includes('manifest.json') ? 'manifest.json' : ours[0]}); pass --force to replace it`);
  }
  return ours;
}

/** A description of the tokenizer stored in the manifest, with a hash of its full JSON form. */
export function describeTokenizer(tokenizer: GlmTokenizer, spec: TokenizerSpec): ShardTokenizerInfo {
  const json = JSON.stringify(tokenizer.toJSON());
  const table = tokenizer.sentenceEndTable();
  const sentenceEndIds: number[] = [];
  for (let id = 0; id < table.length; id++) if (table[id]) sentenceEndIds.push(id);
  const source = spec.kind === 'files' ? [spec.tokenizerJson, spec.vocab, spec.merges].filter(Boolean).join(' + ') : `embedded ${spec.kind}`;
  return {
    family: tokenizer.special.family,
    description: `${tokenizer.special.family}, ${tokenizer.vocabSize} tokens (${source})`,
    vocabSize: tokenizer.vocabSize,
    vocabHash: createHash('sha256').update(json).digest('hex'),
    special: { ...tokenizer.special },
    sentenceEndIds,
  };
}

/** A pool of tokenizing workers; `run(texts)` resolves with that chunk's ids. */
class TokenizerPool {
  private readonly workers: Worker[] = [];
  private readonly pending = new Map<number, { resolve: (c: TokenizedChunk) => void; reject: (e: Error) => void }>();
  private nextWorker = 0;
  private failed: Error | undefined;

  constructor(size: number, spec: TokenizerSpec) {
    const url = new URL('./worker.js', import.meta.url);
    for (let i = 0; i < size; i++) {
      const w = new Worker(url, { workerData: { tokenizer: spec } });
      w.on('message', (reply: WorkerReply) => {
        const p = this.pending.get(reply.seq);
        if (!p) return;
        this.pending.delete(reply.seq);
        if ('error' in reply) p.reject(new Error(`tokenizer worker: ${reply.error}`));
        else p.resolve({ ids: reply.ids, lengths: reply.lengths });
      });
      w.on('error', (e) => this.fail(new Error(`tokenizer worker crashed: ${e.message}`)));
      w.on('exit', (code) => {
        if (code !== 0) this.fail(new Error(`tokenizer worker exited with code ${code}`));
      });
      this.workers.push(w);
    }
  }

  private fail(e: Error): void {
    this.failed ??= e;
    for (const p of this.pending.values()) p.reject(e);
    this.pending.clear();
  }

  run(seq: number, texts: string[]): Promise<TokenizedChunk> {
    if (this.failed) return Promise.reject(this.failed);
    return new Promise((resolve, reject) => {
      this.pending.set(seq, { resolve, reject });
      const req: WorkerRequest = { seq, texts };
      this.workers[this.nextWorker]!.postMessage(req);
      this.nextWorker = (this.nextWorker + 1) % this.workers.length;
    });
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}

/**
 * Prepares a corpus: tokenizes every document and writes shards and `manifest.json` to `outDir`.
 * Refuses an output that already holds prepared data unless `force`; the old manifest is removed
 * first and stale shard files last, so an interrupted run never leaves a manifest that lies.
 */
export async function prepareCorpus(options: PrepareOptions): Promise<PrepareResult> {
  const started = performance.now();
  const { files, outDir } = options;
  if (files.length === 0) throw new CorpusError('no corpus files given');
  const workers = options.workers ?? availableParallelism();
  if (!Number.isInteger(workers) || workers < 0) throw new CorpusError(`workers must be a whole number ≥ 0, got ${workers}`);
  const split = options.split ?? 'paragraphs';
  const textField = options.textField ?? 'text';
  const encoding = options.encoding ?? 'utf8';
  const existing = await checkOutDir(outDir, options.force ?? false);
  await mkdir(outDir, { recursive: true });
  if (existing.includes('manifest.json')) await unlink(join(outDir, 'manifest.json'));

  const tokenizer = await loadTokenizerFromSpec(options.tokenizer);
  const tokenizerInfo = describeTokenizer(tokenizer, options.tokenizer);
  const dtype = dtypeForVocab(Math.max(tokenizer.vocabSize, tokenizer.special.paddedVocabSize));
  const writer = new ShardWriter(outDir, dtype, options.shardTokens ?? 2 ** 26);
  const pool = workers > 0 ? new TokenizerPool(workers, options.tokenizer) : undefined;

  const totalBytes = files.reduce((s, f) => s + f.bytes, 0);
  const sources: ShardSource[] = files.map((f) => ({ path: f.path, bytes: f.bytes, format: f.format, encoding: 'utf8', documents: 0, tokens: 0 }));
  let bytesBeforeFile = 0;
  let currentFile = -1;
  let bytesRead = 0;
  let documents = 0;
  let tokens = 0;
  const interval = options.progressIntervalMs ?? 200;
  let lastReport = -Infinity;
  const report = (done: boolean): void => {
    if (!options.onProgress) return;
    const now = performance.now();
    if (!done && now - lastReport < interval) return;
    lastReport = now;
    const elapsedSeconds = (now - started) / 1000;
    options.onProgress({
      bytesRead,
      totalBytes,
      documents,
      tokens,
      elapsedSeconds,
      tokensPerSecond: elapsedSeconds > 0 ? tokens / elapsedSeconds : 0,
      bytesPerSecond: elapsedSeconds > 0 ? bytesRead / elapsedSeconds : 0,
      done,
    });
  };

  // Chunks in flight, in corpus order; the oldest is written as soon as it is tokenized.
  const inFlight: { fileIndices: number[]; result: Promise<TokenizedChunk> }[] = [];
  const maxInFlight = Math.max(2, workers * 2);
  let seq = 0;
  const writeOldest = async (): Promise<void> => {
    const chunk = inFlight.shift()!;
    const { ids, lengths } = await chunk.result;
    let at = 0;
    for (let i = 0; i < lengths.length; i++) {
      const n = lengths[i]!;
      const source = sources[chunk.fileIndices[i]!]!;
      at += n;
      if (n === 0) continue; // text that tokenizes to nothing (e.g. only control characters)
      await writer.add(ids.subarray(at - n, at));
      source.documents++;
      source.tokens += n;
      documents++;
      tokens += n;
    }
    report(false);
  };
  const dispatch = async (texts: string[], fileIndices: number[]): Promise<void> => {
    const result = pool ? pool.run(seq++, texts) : Promise.resolve(tokenizeTexts(tokenizer, texts));
    result.catch(() => undefined); // observed when written; avoids an unhandled rejection meanwhile
    inFlight.push({ fileIndices, result });
    if (inFlight.length >= maxInFlight) await writeOldest();
  };

  let completed = false;
  try {
    let texts: string[] = [];
    let fileIndices: number[] = [];
    let chars = 0;
    const docs = readCorpusDocuments(files, {
      split,
      textField,
      encoding,
      onBytes: (fileIndex, n) => {
        if (fileIndex !== currentFile) {
          if (currentFile >= 0) bytesBeforeFile += files[currentFile]!.bytes;
          currentFile = fileIndex;
        }
        bytesRead = bytesBeforeFile + n;
      },
      onFileEncoding: (fileIndex, enc) => {
        sources[fileIndex]!.encoding = enc;
      },
    });
    for await (const doc of docs) {
      texts.push(doc.text);
      fileIndices.push(doc.fileIndex);
      chars += doc.text.length;
      if (chars >= CHUNK_CHARS || texts.length >= CHUNK_DOCS) {
        await dispatch(texts, fileIndices);
        texts = [];
        fileIndices = [];
        chars = 0;
      }
    }
    if (texts.length > 0) await dispatch(texts, fileIndices);
    while (inFlight.length > 0) await writeOldest();
    if (documents === 0) {
      throw new CorpusError(`the corpus is empty: ${files.length} file(s) (${files.map((f) => f.path).slice(0, 3).join(', ')}${files.length > 3 ? ', …' : ''}) hold no non-blank text`);
    }
    await writer.flush();
    completed = true;
  } finally {
    await pool?.close();
    // Shards of a failed run have no manifest: remove them, so that a retry needs no --force.
    if (!completed) for (const s of writer.shards) for (const f of [s.ids, s.index]) await unlink(join(outDir, f)).catch(() => undefined);
  }
  bytesRead = totalBytes;

  const manifest: ShardManifest = {
    format: SHARD_FORMAT,
    version: SHARD_FORMAT_VERSION,
    dtype,
    tokenizer: tokenizerInfo,
    documents,
    tokens,
    shards: writer.shards,
    sources,
    reading: { split, textField, encoding },
    createdBy: VERSION_TAG,
  };
  await writeFileAtomic(join(outDir, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n');
  const keep = new Set(writer.shards.flatMap((s) => [s.ids, s.index]));
  for (const f of existing) if (f !== 'manifest.json' && !keep.has(f)) await unlink(join(outDir, f)).catch(() => undefined);
  report(true);
  return { manifest, outDir, seconds: (performance.now() - started) / 1000, workers };
}
