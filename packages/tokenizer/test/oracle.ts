// Hugging Face `tokenizers` (the Rust library, npm `tokenizers`) set up as the oracle our tokenizers
// must match, and the corpora the comparisons run on.
import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { sharedData } from '../../../test-support/shared-data.js';

const require = createRequire(import.meta.url);
// The native binding has no ESM types worth importing; this is the subset the tests use.
interface HfEncoding {
  getIds(): number[];
  getTokens(): string[];
  getOffsets(): number[][];
}
export interface HfTokenizer {
  encodeBatch(texts: string[], opts: { addSpecialTokens: boolean }): Promise<HfEncoding[]>;
  encode(text: string, pair: null, opts: { addSpecialTokens: boolean }): Promise<HfEncoding>;
  decode(ids: number[], skipSpecialTokens: boolean): Promise<string>;
  addAddedTokens(tokens: unknown[]): number;
  setNormalizer(n: unknown): void;
  setPreTokenizer(p: unknown): void;
  setDecoder(d: unknown): void;
  train(files: string[]): void;
  getVocab(withAdded?: boolean): Record<string, number>;
  save(path: string, pretty?: boolean): void;
}
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const hf = require('tokenizers') as any;

export const BERT_VOCAB = sharedData('vocab/bert-base-uncased-vocab.txt');
export const GPT2_VOCAB = sharedData('vocab/gpt2-vocab.json');
export const GPT2_MERGES = sharedData('vocab/gpt2-merges.txt');

/** HF BERT uncased, optionally with GLM's command tokens added (ids 30522…). */
export async function hfBert(withCommandTokens: boolean): Promise<HfTokenizer> {
  const model = await hf.WordPiece.fromFile(BERT_VOCAB, { unkToken: '[UNK]' });
  const tok = new hf.Tokenizer(model) as HfTokenizer;
  tok.setNormalizer(hf.bertNormalizer({}));
  tok.setPreTokenizer(hf.bertPreTokenizer());
  tok.setDecoder(hf.wordPieceDecoder('##', true));
  if (withCommandTokens) {
    const texts = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]', '<|startofpiece|>', '<|endofpiece|>', '[gMASK]', '[sMASK]'];
    tok.addAddedTokens(texts.map((t) => new hf.AddedToken(t, true, { normalized: false })));
  }
  return tok;
}

/** HF GPT-2 byte-level BPE, optionally with GLM's command tokens (ids 50257…, masks strip left). */
export async function hfGpt2(withCommandTokens: boolean): Promise<HfTokenizer> {
  const model = await hf.BPE.fromFile(GPT2_VOCAB, GPT2_MERGES);
  const tok = new hf.Tokenizer(model) as HfTokenizer;
  tok.setPreTokenizer(hf.byteLevelPreTokenizer(false, true));
  if (withCommandTokens) {
    const texts = ['<|endoftext|>', '<|startofpiece|>', '<|endofpiece|>', '[CLS]', '[MASK]', '[SEP]', '[UNK]', '[gMASK]', '[sMASK]', '[dBLOCK]'];
    const lstrip = new Set(['[MASK]', '[gMASK]', '[sMASK]']);
    tok.addAddedTokens(texts.map((t) => new hf.AddedToken(t, true, { normalized: false, leftStrip: lstrip.has(t) })));
  }
  return tok;
}

/** Hugging Face offsets count Unicode code points; ours count UTF-16 units. Converts HF's to ours. */
export function codePointOffsetsToUtf16(text: string, offsets: number[][]): Array<[number, number]> {
  const unitAt: number[] = [];
  let unit = 0;
  for (const ch of text) {
    unitAt.push(unit);
    unit += ch.length;
  }
  unitAt.push(unit);
  return offsets.map(([a, b]) => [unitAt[a!]!, unitAt[b!]!]);
}

/** Lines of a file grouped into chunks of `linesPerChunk` lines joined by '\n' (so newlines are tested too). */
export function chunksOf(file: string, linesPerChunk: number): string[] {
  const lines = readFileSync(file, 'utf8').split('\n');
  const out: string[] = [];
  for (let i = 0; i < lines.length; i += linesPerChunk) out.push(lines.slice(i, i + linesPerChunk).join('\n'));
  return out;
}

export function gutenbergFiles(): string[] {
  const dir = sharedData('corpus/gutenberg');
  return readdirSync(dir)
    .filter((f) => f.endsWith('.txt'))
    .sort()
    .map((f) => join(dir, f));
}

/** Every string field of every row of a jsonl file (recursively). */
export function jsonlStrings(file: string): string[] {
  const out: string[] = [];
  const walk = (v: unknown): void => {
    if (typeof v === 'string') out.push(v);
    else if (Array.isArray(v)) v.forEach(walk);
    else if (v && typeof v === 'object') Object.values(v).forEach(walk);
  };
  for (const line of readFileSync(file, 'utf8').split('\n')) if (line.trim()) walk(JSON.parse(line));
  return out;
}
