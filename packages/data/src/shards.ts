// The binary shard format: token ids of whole documents, a document index, and a manifest.
//
//   <dir>/manifest.json        written last; its presence marks a complete, valid output
//   <dir>/shard-00000.bin      token ids of the shard's documents, back to back, little-endian
//                              uint16 (when every id < 65536) or uint32; no eos, no [CLS]
//   <dir>/shard-00000.idx      documents+1 little-endian uint32 offsets into the .bin (in tokens):
//                              document d is ids[idx[d] .. idx[d+1]); idx[0] = 0
//
// Documents never span shards and keep corpus order: shard 0 holds documents 0..n0-1, shard 1 the
// next ones, and so on. Every file is written to a temporary name and renamed into place.
import { createHash } from 'node:crypto';
import { endianness } from 'node:os';
import { readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export const SHARD_FORMAT = 'blankglm-shards';
export const SHARD_FORMAT_VERSION = 1;

export type TokenDtype = 'uint16' | 'uint32';

export interface ShardEntry {
  /** File of token ids, relative to the manifest's folder. */
  ids: string;
  /** File of document offsets. */
  index: string;
  documents: number;
  tokens: number;
  sha256: { ids: string; index: string };
}

export interface ShardSource {
  /** The path as the corpus was given (absolute). */
  path: string;
  bytes: number;
  format: 'text' | 'jsonl';
  encoding: 'utf8' | 'latin1';
  /** Documents this file contributed (they follow the previous file's in shard order). */
  documents: number;
  tokens: number;
}

export interface ShardTokenizerInfo {
  family: string;
  /** One line a person can read: family, vocabulary size, where it came from. */
  description: string;
  vocabSize: number;
  /** sha256 of the tokenizer's JSON description (vocabulary and merges included). */
  vocabHash: string;
  /** The command-token ids of the tokenizer family ([CLS], eos, [MASK], ...). */
  special: Record<string, number | string>;
  /** Ids whose token text ends a sentence (GLM: contains . ? ! ; : or a newline). */
  sentenceEndIds: number[];
}

export interface ShardManifest {
  format: typeof SHARD_FORMAT;
  version: number;
  dtype: TokenDtype;
  tokenizer: ShardTokenizerInfo;
  documents: number;
  tokens: number;
  shards: ShardEntry[];
  sources: ShardSource[];
  /** How the corpus was read. */
  reading: { split: string; textField: string; encoding: string };
  createdBy: string;
}

export function dtypeForVocab(vocabSize: number): TokenDtype {
  return vocabSize <= 65536 ? 'uint16' : 'uint32';
}

export function shardFileNames(i: number): { ids: string; index: string } {
  const n = String(i).padStart(5, '0');
  return { ids: `shard-${n}.bin`, index: `shard-${n}.idx` };
}

function assertLittleEndian(): void {
  if (endianness() !== 'LE') throw new Error('blankglm shards are little-endian; this machine is big-endian and is not supported');
}

/** Writes a file atomically: a temporary sibling, then rename. */
export async function writeFileAtomic(path: string, data: Uint8Array | string): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}`;
  try {
    await writeFile(tmp, data);
    await rename(tmp, path);
  } catch (e) {
    await unlink(tmp).catch(() => undefined);
    throw e;
  }
}

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

function bytesOf(view: Uint16Array | Uint32Array): Uint8Array {
  return new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
}

/**
 * Accumulates documents' token ids into shards of at most `maxShardTokens` tokens (a document
 * longer than that gets a shard of its own) and writes each full shard to `dir`.
 */
export class ShardWriter {
  readonly shards: ShardEntry[] = [];
  private ids: Uint16Array | Uint32Array;
  private offsets: Uint32Array;
  private tokens = 0;
  private documents = 0;

  constructor(
    readonly dir: string,
    readonly dtype: TokenDtype,
    readonly maxShardTokens: number,
  ) {
    assertLittleEndian();
    if (!Number.isInteger(maxShardTokens) || maxShardTokens < 1 || maxShardTokens > 2 ** 31) {
      throw new RangeError(`shard size must be 1..2^31 tokens, got ${maxShardTokens}`);
    }
    this.ids = this.alloc(Math.min(maxShardTokens, 1 << 16));
    this.offsets = new Uint32Array(1024);
  }

  private alloc(n: number): Uint16Array | Uint32Array {
    return this.dtype === 'uint16' ? new Uint16Array(n) : new Uint32Array(n);
  }

  /** Appends one document (its ids must fit the dtype). */
  async add(doc: ArrayLike<number>): Promise<void> {
    if (this.documents > 0 && this.tokens + doc.length > this.maxShardTokens) await this.flush();
    const need = this.tokens + doc.length;
    if (need > this.ids.length) {
      const grown = this.alloc(Math.max(need, this.ids.length * 2));
      grown.set(this.ids.subarray(0, this.tokens));
      this.ids = grown;
    }
    const limit = this.dtype === 'uint16' ? 0xffff : 0xffffffff;
    for (let i = 0; i < doc.length; i++) {
      const id = doc[i]!;
      if (!(id >= 0 && id <= limit)) throw new RangeError(`token id ${id} does not fit the shard dtype ${this.dtype}`);
      this.ids[this.tokens + i] = id;
    }
    this.tokens = need;
    this.documents++;
    if (this.documents + 1 > this.offsets.length) {
      const grown = new Uint32Array(this.offsets.length * 2);
      grown.set(this.offsets);
      this.offsets = grown;
    }
    this.offsets[this.documents] = this.tokens;
  }

  /** Writes the current shard (if it holds any document) and starts a new one. */
  async flush(): Promise<void> {
    if (this.documents === 0) return;
    const names = shardFileNames(this.shards.length);
    const idsBytes = bytesOf(this.ids.subarray(0, this.tokens));
    const indexBytes = bytesOf(this.offsets.subarray(0, this.documents + 1));
    await writeFileAtomic(join(this.dir, names.ids), idsBytes);
    await writeFileAtomic(join(this.dir, names.index), indexBytes);
    this.shards.push({
      ids: names.ids,
      index: names.index,
      documents: this.documents,
      tokens: this.tokens,
      sha256: { ids: sha256(idsBytes), index: sha256(indexBytes) },
    });
    this.tokens = 0;
    this.documents = 0;
    this.offsets = new Uint32Array(1024);
  }
}

/** An error in a shard folder: missing or damaged files, a manifest from another version. */
export class ShardError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ShardError';
  }
}

/** Reads and checks `manifest.json` (shape and version only; files are checked by `openShards`). */
export async function readManifest(dir: string): Promise<ShardManifest> {
  const path = join(dir, 'manifest.json');
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    throw new ShardError(`no prepared data at ${dir}: ${path} not found (run 'blankglm prepare' first)`);
  }
  let m: ShardManifest;
  try {
    m = JSON.parse(text) as ShardManifest;
  } catch (e) {
    throw new ShardError(`${path}: not valid JSON (${(e as Error).message})`);
  }
  if (m?.format !== SHARD_FORMAT) throw new ShardError(`${path}: not a blankglm shard manifest (format is ${JSON.stringify(m?.format)}, expected "${SHARD_FORMAT}")`);
  if (m.version !== SHARD_FORMAT_VERSION) {
    throw new ShardError(`${path}: shard format version ${m.version}, this blankglm reads version ${SHARD_FORMAT_VERSION}; prepare the corpus again`);
  }
  if (m.dtype !== 'uint16' && m.dtype !== 'uint32') throw new ShardError(`${path}: dtype must be uint16 or uint32, got ${JSON.stringify(m.dtype)}`);
  if (!Array.isArray(m.shards) || m.shards.length === 0) throw new ShardError(`${path}: the manifest lists no shards`);
  return m;
}

/**
 * A prepared corpus in memory: every shard's ids and offsets, read whole into typed arrays.
 * Memory: 2 bytes per token (uint16) or 4 (uint32), plus 4 bytes per document; a corpus of
 * 100 M tokens takes ~200 MB. Larger corpora would want memory-mapped or streamed shards.
 */
export class ShardSet {
  /** Global index of each shard's first document; last entry = total documents. */
  private readonly firstDocument: Uint32Array;

  private constructor(
    readonly dir: string,
    readonly manifest: ShardManifest,
    private readonly ids: (Uint16Array | Uint32Array)[],
    private readonly offsets: Uint32Array[],
  ) {
    this.firstDocument = new Uint32Array(offsets.length + 1);
    for (let s = 0; s < offsets.length; s++) this.firstDocument[s + 1] = this.firstDocument[s]! + offsets[s]!.length - 1;
  }

  get documentCount(): number {
    return this.firstDocument[this.firstDocument.length - 1]!;
  }

  get tokenCount(): number {
    return this.manifest.tokens;
  }

  /** Token ids of document `d` (0-based, corpus order): a view, not a copy. */
  document(d: number): Uint16Array | Uint32Array {
    const [s, local] = this.locate(d);
    const off = this.offsets[s]!;
    return this.ids[s]!.subarray(off[local]!, off[local + 1]!);
  }

  documentLength(d: number): number {
    const [s, local] = this.locate(d);
    const off = this.offsets[s]!;
    return off[local + 1]! - off[local]!;
  }

  private locate(d: number): [number, number] {
    if (!Number.isInteger(d) || d < 0 || d >= this.documentCount) throw new RangeError(`document ${d} out of range 0..${this.documentCount - 1}`);
    let lo = 0;
    let hi = this.offsets.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.firstDocument[mid]! <= d) lo = mid;
      else hi = mid - 1;
    }
    return [lo, d - this.firstDocument[lo]!];
  }

  /**
   * Opens a prepared folder. Checks file sizes against the manifest and that offsets are
   * monotone; with `verify: true` also each file's sha256 (a few ms per MB).
   */
  static async open(dir: string, options: { verify?: boolean } = {}): Promise<ShardSet> {
    assertLittleEndian();
    const manifest = await readManifest(dir);
    const bytesPerToken = manifest.dtype === 'uint16' ? 2 : 4;
    const ids: (Uint16Array | Uint32Array)[] = [];
    const offsets: Uint32Array[] = [];
    let documents = 0;
    let tokens = 0;
    for (const entry of manifest.shards) {
      const idsPath = join(dir, entry.ids);
      const indexPath = join(dir, entry.index);
      const read = async (p: string): Promise<Buffer> => {
        try {
          return await readFile(p);
        } catch {
          throw new ShardError(`${p}: listed in ${join(dir, 'manifest.json')} but missing; prepare the corpus again`);
        }
      };
      const idsBuf = await read(idsPath);
      const indexBuf = await read(indexPath);
      if (idsBuf.length !== entry.tokens * bytesPerToken) {
        throw new ShardError(`${idsPath}: ${idsBuf.length} bytes, expected ${entry.tokens} tokens × ${bytesPerToken} bytes; the shard is damaged`);
      }
      if (indexBuf.length !== (entry.documents + 1) * 4) {
        throw new ShardError(`${indexPath}: ${indexBuf.length} bytes, expected (${entry.documents} documents + 1) × 4 bytes; the index is damaged`);
      }
      if (options.verify) {
        if (sha256(idsBuf) !== entry.sha256.ids) throw new ShardError(`${idsPath}: sha256 differs from the manifest; the shard is damaged`);
        if (sha256(indexBuf) !== entry.sha256.index) throw new ShardError(`${indexPath}: sha256 differs from the manifest; the index is damaged`);
      }
      // Copy into fresh, aligned buffers (a Buffer from readFile may share a pool at any offset).
      const idsArr = manifest.dtype === 'uint16' ? new Uint16Array(entry.tokens) : new Uint32Array(entry.tokens);
      new Uint8Array(idsArr.buffer).set(idsBuf);
      const off = new Uint32Array(entry.documents + 1);
      new Uint8Array(off.buffer).set(indexBuf);
      if (off[0] !== 0 || off[entry.documents] !== entry.tokens) throw new ShardError(`${indexPath}: offsets must run from 0 to ${entry.tokens}; the index is damaged`);
      for (let d = 0; d < entry.documents; d++) {
        if (off[d + 1]! < off[d]!) throw new ShardError(`${indexPath}: offsets decrease at document ${d}; the index is damaged`);
      }
      ids.push(idsArr);
      offsets.push(off);
      documents += entry.documents;
      tokens += entry.tokens;
    }
    if (documents !== manifest.documents || tokens !== manifest.tokens) {
      throw new ShardError(`${join(dir, 'manifest.json')}: shards hold ${documents} documents / ${tokens} tokens, the manifest says ${manifest.documents} / ${manifest.tokens}`);
    }
    return new ShardSet(dir, manifest, ids, offsets);
  }
}

/** Opens a prepared folder (see `ShardSet.open`). */
export function openShards(dir: string, options: { verify?: boolean } = {}): Promise<ShardSet> {
  return ShardSet.open(dir, options);
}
