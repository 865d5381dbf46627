// Reading a text corpus: plain text files, JSONL files with a text field, and folders of them.
//
// Everything streams: files are read in chunks, validated as UTF-8 byte by byte (so an error can
// name the exact byte offset and line), and cut into documents as they arrive. Only the document
// being assembled is held in memory (in `split: 'file'` mode that is the whole file).
import { createReadStream } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { basename, extname, join, resolve } from 'node:path';

/** How a plain text file is cut into documents. JSONL files always give one document per record. */
export type SplitMode = 'paragraphs' | 'lines' | 'file';

/**
 * How bytes become text. `utf8`: strict, invalid bytes are an error. `latin1`: every byte is one
 * character (ISO-8859-1). `auto`: each file is checked first and read as UTF-8 when valid, else Latin-1.
 */
export type CorpusEncoding = 'utf8' | 'latin1' | 'auto';

export type CorpusFileFormat = 'text' | 'jsonl';

export interface CorpusFile {
  /** Absolute path. */
  path: string;
  format: CorpusFileFormat;
  bytes: number;
}

export interface CorpusDocument {
  text: string;
  /** Index into the file list the documents were read from. */
  fileIndex: number;
  /** 1-based line where the document starts. */
  line: number;
}

export interface ReadCorpusOptions {
  split?: SplitMode;
  /** JSONL field holding the text (default `text`). */
  textField?: string;
  encoding?: CorpusEncoding;
  /** Called after each chunk of a file is consumed, with the bytes read so far in that file. */
  onBytes?: (fileIndex: number, bytesReadInFile: number) => void;
  /** Called once per file with the encoding actually used (interesting with `auto`). */
  onFileEncoding?: (fileIndex: number, encoding: 'utf8' | 'latin1') => void;
}

/** An error in the corpus itself (bad bytes, bad JSON, nothing to read), naming file and place. */
export class CorpusError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CorpusError';
  }
}

const TEXT_EXTENSIONS = new Set(['.txt', '.text', '.md']);
const JSONL_EXTENSIONS = new Set(['.jsonl', '.ndjson']);

function formatOf(path: string): CorpusFileFormat {
  return JSONL_EXTENSIONS.has(extname(path).toLowerCase()) ? 'jsonl' : 'text';
}

/**
 * Expands files and folders into the sorted list of corpus files. A folder is walked recursively
 * and contributes its `.txt`, `.text`, `.md`, `.jsonl` and `.ndjson` files (hidden entries skipped),
 * in code-point order of their paths, so the order never depends on the file system. A file named
 * directly is taken whatever its extension (JSONL when it ends in `.jsonl`/`.ndjson`).
 */
export async function listCorpusFiles(paths: readonly string[], cwd = process.cwd()): Promise<CorpusFile[]> {
  if (paths.length === 0) throw new CorpusError('no corpus path given: expected one or more files or folders');
  const files: CorpusFile[] = [];
  const seen = new Set<string>();
  const add = (path: string, bytes: number): void => {
    if (seen.has(path)) return;
    seen.add(path);
    files.push({ path, format: formatOf(path), bytes });
  };
  for (const given of paths) {
    const abs = resolve(cwd, given);
    let st;
    try {
      st = await stat(abs);
    } catch {
      throw new CorpusError(`corpus path not found: ${given} (resolved to ${abs})`);
    }
    if (st.isDirectory()) {
      const found: string[] = [];
      await walk(abs, found);
      found.sort(comparePaths);
      if (found.length === 0) {
        throw new CorpusError(`folder ${given} holds no corpus files (expected .txt, .text, .md, .jsonl or .ndjson files)`);
      }
      for (const f of found) add(f, (await stat(f)).size);
    } else if (st.isFile()) {
      add(abs, st.size);
    } else {
      throw new CorpusError(`corpus path ${given} is neither a file nor a folder`);
    }
  }
  return files;
}

function comparePaths(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

async function walk(dir: string, out: string[]): Promise<void> {
  const entries = await readdir(dir, { withFileTypes: true });
  for (const e of entries) {
    if (e.name.startsWith('.')) continue;
    const p = join(dir, e.name);
    if (e.isDirectory()) await walk(p, out);
    else if (e.isFile()) {
      const ext = extname(e.name).toLowerCase();
      if (TEXT_EXTENSIONS.has(ext) || JSONL_EXTENSIONS.has(ext)) out.push(p);
    }
  }
}

/**
 * Incremental strict UTF-8 validation. `check(bytes)` returns the absolute byte offset (counted
 * over all chunks checked so far) where the first invalid sequence starts, or -1; a sequence cut
 * at the end of a chunk is carried into the next one. Overlong forms, surrogates and code points
 * above U+10FFFF are invalid, as in the WHATWG decoder.
 */
export class Utf8Validator {
  private need = 0; // continuation bytes still expected
  private lower = 0x80; // allowed range of the next continuation byte
  private upper = 0xbf;
  private position = 0; // bytes checked before the current chunk
  /** Absolute offset of the sequence being read (meaningful while `incomplete`). */
  sequenceStart = 0;
  /** The first byte of the invalid sequence found by the last failing `check`. */
  badByte = 0;

  check(bytes: Uint8Array): number {
    const base = this.position;
    this.position += bytes.length;
    for (let i = 0; i < bytes.length; i++) {
      const b = bytes[i]!;
      if (this.need === 0) {
        if (b < 0x80) continue;
        this.sequenceStart = base + i;
        this.badByte = b;
        if (b >= 0xc2 && b <= 0xdf) this.need = 1;
        else if (b >= 0xe0 && b <= 0xef) {
          this.need = 2;
          if (b === 0xe0) this.lower = 0xa0;
          if (b === 0xed) this.upper = 0x9f;
        } else if (b >= 0xf0 && b <= 0xf4) {
          this.need = 3;
          if (b === 0xf0) this.lower = 0x90;
          if (b === 0xf4) this.upper = 0x8f;
        } else {
          return base + i;
        }
      } else {
        if (b < this.lower || b > this.upper) return this.sequenceStart;
        this.lower = 0x80;
        this.upper = 0xbf;
        this.need--;
      }
    }
    return -1;
  }

  /** Whether the input so far ended in the middle of a sequence. */
  get incomplete(): boolean {
    return this.need !== 0;
  }
}

function countNewlines(bytes: Uint8Array, end = bytes.length): number {
  let n = 0;
  for (let i = 0; i < end; i++) if (bytes[i] === 0x0a) n++;
  return n;
}

const CHUNK_BYTES = 1 << 20;

/** Whether a file is valid UTF-8 (streamed; stops at the first bad byte). */
export async function isValidUtf8File(path: string): Promise<boolean> {
  const v = new Utf8Validator();
  for await (const chunk of createReadStream(path, { highWaterMark: CHUNK_BYTES })) {
    if (v.check(chunk as Buffer) >= 0) return false;
  }
  return !v.incomplete;
}

/**
 * Streams a file as text, chunk by chunk, with CRLF and lone CR normalised to LF and a leading
 * byte-order mark removed. Strict UTF-8 errors name the byte offset and line.
 */
async function* readTextChunks(
  path: string,
  encoding: 'utf8' | 'latin1',
  onBytes?: (bytesRead: number) => void,
): AsyncGenerator<string> {
  const validator = new Utf8Validator();
  const decoder = new TextDecoder(encoding === 'utf8' ? 'utf-8' : 'latin1', { fatal: false });
  let offset = 0;
  let line = 1;
  let pendingCR = false;
  let first = true;
  for await (const raw of createReadStream(path, { highWaterMark: CHUNK_BYTES })) {
    const chunk = raw as Buffer;
    if (encoding === 'utf8') {
      const badOffset = validator.check(chunk);
      if (badOffset >= 0) {
        // Continuation bytes are never newlines, so a sequence begun in the previous chunk is on `line`.
        const badLine = line + countNewlines(chunk, Math.max(0, badOffset - offset));
        throw new CorpusError(
          `${path}: not valid UTF-8 at byte ${badOffset} (line ${badLine}, byte 0x${validator.badByte.toString(16).padStart(2, '0')}); ` +
            `expected UTF-8 text. If the file is Latin-1, pass --encoding latin1 (or --encoding auto to detect per file).`,
        );
      }
    }
    line += countNewlines(chunk);
    offset += chunk.length;
    let text = encoding === 'utf8' ? decoder.decode(chunk, { stream: true }) : latin1(chunk);
    if (first) {
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
      first = false;
    }
    if (pendingCR) {
      text = '\r' + text;
      pendingCR = false;
    }
    // A CR at the very end may be the first half of a CRLF split across chunks: hold it back.
    if (text.endsWith('\r')) {
      pendingCR = true;
      text = text.slice(0, -1);
    }
    onBytes?.(offset);
    if (text.length > 0) yield text.replace(/\r\n?/g, '\n');
  }
  if (encoding === 'utf8' && validator.incomplete) {
    throw new CorpusError(`${path}: not valid UTF-8: the file ends inside a multi-byte sequence (byte ${validator.sequenceStart}, line ${line})`);
  }
  if (pendingCR) yield '\n';
}

function latin1(bytes: Uint8Array): string {
  // TextDecoder('latin1') is windows-1252 per WHATWG; decode true ISO-8859-1 by code units instead.
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1');
}

/** Streams a file as lines (without their LF), each with its 1-based line number. */
async function* readLines(path: string, encoding: 'utf8' | 'latin1', onBytes?: (n: number) => void): AsyncGenerator<[string, number]> {
  let rest = '';
  let lineNo = 1;
  for await (const text of readTextChunks(path, encoding, onBytes)) {
    const parts = (rest + text).split('\n');
    rest = parts.pop()!;
    for (const p of parts) yield [p, lineNo++];
  }
  if (rest.length > 0) yield [rest, lineNo];
}

/**
 * Streams the documents of a list of corpus files, in order. Empty or whitespace-only documents
 * are skipped. Throws `CorpusError` naming the file and line for bad bytes or bad JSONL records.
 */
export async function* readCorpusDocuments(files: readonly CorpusFile[], options: ReadCorpusOptions = {}): AsyncGenerator<CorpusDocument> {
  const split = options.split ?? 'paragraphs';
  const textField = options.textField ?? 'text';
  const encodingOption = options.encoding ?? 'utf8';
  if (!['paragraphs', 'lines', 'file'].includes(split)) throw new CorpusError(`unknown split mode '${split}': expected paragraphs, lines or file`);
  if (!['utf8', 'latin1', 'auto'].includes(encodingOption)) throw new CorpusError(`unknown encoding '${encodingOption}': expected utf8, latin1 or auto`);
  for (let fileIndex = 0; fileIndex < files.length; fileIndex++) {
    const file = files[fileIndex]!;
    const encoding = encodingOption === 'auto' ? ((await isValidUtf8File(file.path)) ? 'utf8' : 'latin1') : encodingOption;
    options.onFileEncoding?.(fileIndex, encoding);
    const onBytes = options.onBytes ? (n: number) => options.onBytes!(fileIndex, n) : undefined;
    if (file.format === 'jsonl') {
      yield* readJsonlDocuments(file.path, fileIndex, textField, encoding, onBytes);
    } else if (split === 'lines') {
      for await (const [line, lineNo] of readLines(file.path, encoding, onBytes)) {
        if (line.trim().length > 0) yield { text: line, fileIndex, line: lineNo };
      }
    } else if (split === 'paragraphs') {
      // A paragraph is a run of non-blank lines; one or more blank lines separate documents.
      let lines: string[] = [];
      let startLine = 0;
      for await (const [line, lineNo] of readLines(file.path, encoding, onBytes)) {
        if (line.trim().length === 0) {
          if (lines.length > 0) yield { text: lines.join('\n'), fileIndex, line: startLine };
          lines = [];
        } else {
          if (lines.length === 0) startLine = lineNo;
          lines.push(line);
        }
      }
      if (lines.length > 0) yield { text: lines.join('\n'), fileIndex, line: startLine };
    } else {
      let text = '';
      for await (const chunk of readTextChunks(file.path, encoding, onBytes)) text += chunk;
      if (text.trim().length > 0) yield { text, fileIndex, line: 1 };
    }
  }
}

async function* readJsonlDocuments(
  path: string,
  fileIndex: number,
  textField: string,
  encoding: 'utf8' | 'latin1',
  onBytes?: (n: number) => void,
): AsyncGenerator<CorpusDocument> {
  for await (const [line, lineNo] of readLines(path, encoding, onBytes)) {
    if (line.trim().length === 0) continue;
    let record: unknown;
    try {
      record = JSON.parse(line);
    } catch (e) {
      throw new CorpusError(`${path}:${lineNo}: malformed JSON (${(e as Error).message}); expected one JSON object per line`);
    }
    if (record === null || typeof record !== 'object' || Array.isArray(record)) {
      throw new CorpusError(`${path}:${lineNo}: expected a JSON object with a string field '${textField}', got ${Array.isArray(record) ? 'an array' : JSON.stringify(record)?.slice(0, 40)}`);
    }
    const value = (record as Record<string, unknown>)[textField];
    if (typeof value !== 'string') {
      const what = value === undefined ? 'is missing' : `is ${value === null ? 'null' : typeof value}, not a string`;
      const fields = Object.keys(record).slice(0, 8).join(', ');
      throw new CorpusError(`${path}:${lineNo}: field '${textField}' ${what} (fields present: ${fields || 'none'}); choose the field with --text-field`);
    }
    const text = value.replace(/\r\n?/g, '\n');
    if (text.trim().length > 0) yield { text, fileIndex, line: lineNo };
  }
}

/** A short display name for a corpus file: its base name. */
export function corpusFileLabel(file: CorpusFile): string {
  return basename(file.path);
}
