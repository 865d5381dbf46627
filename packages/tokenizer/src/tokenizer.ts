// The GlmTokenizer: one of the two tokenisation cores (BERT WordPiece, GPT-2 byte-level BPE) plus
// GLM's command tokens, optional special-token parsing, offsets, decoding and the sentence-end table.
import { BertPreTokenizer, decodeWordPieces, WordPieceModel, type BertNormalizerOptions } from './bert.js';
import { ByteLevelBpeModel, GPT2_SPLIT_PATTERN } from './gpt2.js';
import { GLM_COMMAND_TOKEN_TEXTS, type GlmSpecialTokens, type TokenizerFamily } from './special.js';

/**
 * Result of `encode`. `offsets[i]` is the [start, end) span of token i in the ORIGINAL JS string,
 * in UTF-16 code units (what `String.prototype.slice` takes; Hugging Face reports Unicode code
 * points instead, which differ only after astral characters such as emoji). Tokens added by
 * `addSpecialTokens` get [0, 0].
 */
export interface Encoding {
  ids: number[];
  tokens: string[];
  offsets: Array<[number, number]>;
}

export interface EncodeOptions {
  /** BERT family: `[CLS] … [SEP]`; GPT-2 family: `[CLS] … <|endoftext|>` (GLM's HF tokenizers). Default false. */
  addSpecialTokens?: boolean;
  /**
   * Turn literal command-token strings in the text (`[MASK]`, `[gMASK]`, `<|startofpiece|>`, …) into
   * their ids. Default false: user text can never inject a command token by accident.
   */
  parseSpecialTokens?: boolean;
}

export interface DecodeOptions {
  /** Leave out command tokens and other special tokens. Default false. */
  skipSpecialTokens?: boolean;
  /** WordPiece only: Hugging Face's clean-up of spaces before punctuation (" ." → "."). Default true. */
  cleanup?: boolean;
}

export interface GlmTokenizer {
  readonly family: TokenizerFamily;
  /** Number of ids that have a token, command tokens included (the embedding table may be larger: `special.paddedVocabSize`). */
  readonly vocabSize: number;
  readonly special: GlmSpecialTokens;
  encode(text: string, opts?: EncodeOptions): Encoding;
  /** Same ids as `encode(text, opts).ids`, without building tokens and offsets. */
  encodeIds(text: string, opts?: EncodeOptions): number[];
  decode(ids: ArrayLike<number>, opts?: DecodeOptions): string;
  idToToken(id: number): string | undefined;
  tokenToId(token: string): number | undefined;
  /** 1 for every id whose text contains `. ? ! ; :`, a newline or CJK `。？！；…` (GLM's sentence ends). */
  sentenceEndTable(): Uint8Array;
  isSentenceEnd(id: number): boolean;
  /** Everything needed to rebuild this tokenizer with `tokenizerFromJSON` (save it beside a checkpoint). */
  toJSON(): SavedTokenizer;
}

/** A token matched literally in raw text when special tokens are parsed. */
export interface AddedToken {
  id: number;
  content: string;
  /** Absorbs whitespace on its left. */
  lstrip: boolean;
  /** Absorbs whitespace on its right. */
  rstrip: boolean;
  /** Only matches as a whole word. */
  singleWord: boolean;
  /** Left out by `decode(…, { skipSpecialTokens: true })`. */
  special: boolean;
}

export type SavedTokenizer =
  | {
      format: 'blankglm-tokenizer';
      version: 1;
      family: TokenizerFamily;
      model: {
        type: 'WordPiece';
        vocab: string[];
        unkToken: string;
        continuingSubwordPrefix: string;
        maxInputCharsPerWord: number;
        normalizer: BertNormalizerOptions;
        decoderCleanup: boolean;
      };
      addedTokens: AddedToken[];
      special: GlmSpecialTokens;
    }
  | {
      format: 'blankglm-tokenizer';
      version: 1;
      family: TokenizerFamily;
      model: {
        type: 'BPE';
        vocab: string[];
        merges: Array<[string, string]>;
        addPrefixSpace: boolean;
        ignoreMerges: boolean;
      };
      addedTokens: AddedToken[];
      special: GlmSpecialTokens;
    };

/** One tokenisation core: turns plain text (no special tokens) into ids, and tokens back into text. */
export interface TokenizerCore {
  readonly baseVocab: readonly (string | undefined)[];
  /** Appends the ids (and, when the arrays are given, tokens and offsets shifted by `base`) of `text`. */
  encodeText(text: string, base: number, ids: number[], tokens: string[] | null, offsets: Array<[number, number]> | null): void;
  decodeTokens(tokens: readonly string[], opts: DecodeOptions): string;
  /** A token's text as it reads in decoded output (for the sentence-end table). */
  tokenText(token: string): string;
  save(): SavedTokenizer['model'];
}

export class WordPieceCore implements TokenizerCore {
  readonly pre: BertPreTokenizer;

  constructor(
    readonly model: WordPieceModel,
    readonly baseVocab: readonly (string | undefined)[],
    normalizer: BertNormalizerOptions,
    readonly decoderCleanup = true,
  ) {
    this.pre = new BertPreTokenizer(normalizer);
  }

  encodeText(text: string, base: number, ids: number[], tokens: string[] | null, offsets: Array<[number, number]> | null): void {
    const model = this.model;
    if (!offsets && !tokens) {
      this.pre.scan(
        text,
        (word) => {
          const pieceIds = model.tokenizeWord(word).ids;
          for (let k = 0; k < pieceIds.length; k++) ids.push(pieceIds[k]!);
        },
        false,
      );
      return;
    }
    const vocab = this.baseVocab;
    this.pre.scan(
      text,
      (word, _start, _end, origins) => {
        const pieces = model.tokenizeWord(word);
        let unit = 0;
        for (let k = 0; k < pieces.ids.length; k++) {
          const id = pieces.ids[k]!;
          const length = pieces.unitLengths[k]!;
          ids.push(id);
          tokens?.push(vocab[id]!);
          if (offsets && origins) offsets.push([base + origins[2 * unit]!, base + origins[2 * (unit + length - 1) + 1]!]);
          unit += length;
        }
      },
      true,
    );
  }

  decodeTokens(tokens: readonly string[], opts: DecodeOptions): string {
    return decodeWordPieces(tokens, this.model.options.continuingSubwordPrefix, opts.cleanup ?? this.decoderCleanup);
  }

  tokenText(token: string): string {
    const prefix = this.model.options.continuingSubwordPrefix;
    return token.startsWith(prefix) ? token.slice(prefix.length) : token;
  }

  save(): SavedTokenizer['model'] {
    return {
      type: 'WordPiece',
      vocab: this.baseVocab.map((t) => t ?? ''),
      unkToken: this.model.options.unkToken,
      continuingSubwordPrefix: this.model.options.continuingSubwordPrefix,
      maxInputCharsPerWord: this.model.options.maxInputCharsPerWord,
      normalizer: { ...this.pre.options },
      decoderCleanup: this.decoderCleanup,
    };
  }
}

export class ByteLevelBpeCore implements TokenizerCore {
  constructor(
    readonly model: ByteLevelBpeModel,
    readonly baseVocab: readonly (string | undefined)[],
    readonly merges: ReadonlyArray<readonly [string, string]>,
    /** Hugging Face ByteLevel `add_prefix_space`: a space is put before text that does not start with one. */
    readonly addPrefixSpace = false,
  ) {}

  encodeText(text: string, base: number, ids: number[], tokens: string[] | null, offsets: Array<[number, number]> | null): void {
    const model = this.model;
    let shift = 0;
    if (this.addPrefixSpace && !text.startsWith(' ')) {
      text = ' ' + text;
      shift = 1;
    }
    const pattern = new RegExp(GPT2_SPLIT_PATTERN);
    let match: RegExpExecArray | null;
    if (!offsets && !tokens) {
      while ((match = pattern.exec(text)) !== null) {
        const wordIds = model.tokenizeWord(match[0]);
        for (let k = 0; k < wordIds.length; k++) ids.push(wordIds[k]!);
      }
      return;
    }
    const vocab = this.baseVocab;
    const byteLength = model.tokenByteLength;
    while ((match = pattern.exec(text)) !== null) {
      const word = match[0];
      const wordStart = match.index;
      const wordIds = model.tokenizeWord(word);
      // For each UTF-8 byte of the word: the UTF-16 span of the character it belongs to.
      const byteCharStart: number[] = [];
      const byteCharEnd: number[] = [];
      for (let u = 0; u < word.length; ) {
        const cp = word.codePointAt(u)!;
        const width = cp > 0xffff ? 2 : 1;
        const nBytes = cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
        for (let b = 0; b < nBytes; b++) {
          byteCharStart.push(u);
          byteCharEnd.push(u + width);
        }
        u += width;
      }
      let byte = 0;
      for (let k = 0; k < wordIds.length; k++) {
        const id = wordIds[k]!;
        ids.push(id);
        tokens?.push(vocab[id]!);
        const n = byteLength[id]!;
        if (offsets) {
          const toOriginal = (u: number): number => Math.max(0, wordStart + u - shift) + base;
          offsets.push([toOriginal(byteCharStart[byte]!), toOriginal(byteCharEnd[byte + n - 1]!)]);
        }
        byte += n;
      }
    }
  }

  decodeTokens(tokens: readonly string[]): string {
    return this.model.decodeTokens(tokens);
  }

  tokenText(token: string): string {
    return this.model.decodeTokens([token]);
  }

  save(): SavedTokenizer['model'] {
    return {
      type: 'BPE',
      vocab: this.baseVocab.map((t) => t ?? ''),
      merges: this.merges.map(([a, b]) => [a, b]),
      addPrefixSpace: this.addPrefixSpace,
      ignoreMerges: this.model.options.ignoreMerges ?? false,
    };
  }
}

const SENTENCE_END_CHARS = ['.', '?', '!', ';', ':', '\n', '。', '？', '！', '；', '…'];
const ORACLE_WS = '\\t\\n\\v\\f\\r \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}

export class Tokenizer implements GlmTokenizer {
  readonly vocabSize: number;
  private readonly idToTokenArray: (string | undefined)[];
  private readonly tokenToIdMap: Map<string, number>;
  private readonly specialIds: Set<number>;
  private readonly addedPattern: RegExp | null;
  private readonly addedByContent: Map<string, AddedToken>;
  private sentenceEnds: Uint8Array | null = null;

  constructor(
    readonly family: TokenizerFamily,
    readonly core: TokenizerCore,
    readonly special: GlmSpecialTokens,
    readonly addedTokens: readonly AddedToken[],
  ) {
    this.idToTokenArray = [...core.baseVocab];
    this.tokenToIdMap = new Map();
    core.baseVocab.forEach((t, id) => {
      if (t !== undefined) this.tokenToIdMap.set(t, id);
    });
    for (const a of addedTokens) {
      this.idToTokenArray[a.id] = a.content;
      this.tokenToIdMap.set(a.content, a.id);
    }
    this.vocabSize = this.idToTokenArray.length;
    this.specialIds = new Set(addedTokens.filter((a) => a.special).map((a) => a.id));
    this.addedByContent = new Map(addedTokens.map((a) => [a.content, a]));
    // Leftmost-longest match of any added token; lstrip/rstrip tokens absorb adjacent whitespace.
    const alternatives = [...addedTokens]
      .sort((a, b) => b.content.length - a.content.length)
      .map((a) => {
        let p = escapeRegExp(a.content);
        if (a.singleWord) p = `(?<![\\p{L}\\p{N}_])${p}(?![\\p{L}\\p{N}_])`;
        if (a.lstrip) p = `[${ORACLE_WS}]*` + p;
        if (a.rstrip) p = p + `[${ORACLE_WS}]*`;
        return p;
      });
    this.addedPattern = alternatives.length ? new RegExp(alternatives.join('|'), 'gu') : null;
  }

  encode(text: string, opts: EncodeOptions = {}): Encoding {
    const ids: number[] = [];
    const tokens: string[] = [];
    const offsets: Array<[number, number]> = [];
    this.run(text, opts, ids, tokens, offsets);
    return { ids, tokens, offsets };
  }

  encodeIds(text: string, opts: EncodeOptions = {}): number[] {
    const ids: number[] = [];
    this.run(text, opts, ids, null, null);
    return ids;
  }

  private run(
    text: string,
    opts: EncodeOptions,
    ids: number[],
    tokens: string[] | null,
    offsets: Array<[number, number]> | null,
  ): void {
    if (typeof text !== 'string') throw new TypeError(`encode expects a string, got ${typeof text}`);
    const pushSpecial = (id: number, start: number, end: number): void => {
      ids.push(id);
      tokens?.push(this.idToTokenArray[id]!);
      offsets?.push([start, end]);
    };
    if (opts.addSpecialTokens) pushSpecial(this.special.cls, 0, 0);
    if (opts.parseSpecialTokens && this.addedPattern) {
      const pattern = new RegExp(this.addedPattern);
      let cursor = 0;
      let match: RegExpExecArray | null;
      while ((match = pattern.exec(text)) !== null) {
        const matched = match[0];
        const content = matched.replace(new RegExp(`^[${ORACLE_WS}]+|[${ORACLE_WS}]+$`, 'gu'), '');
        const added = this.addedByContent.get(content);
        if (!added) continue;
        if (match.index > cursor) this.core.encodeText(text.slice(cursor, match.index), cursor, ids, tokens, offsets);
        pushSpecial(added.id, match.index, match.index + matched.length);
        cursor = match.index + matched.length;
      }
      if (cursor < text.length) this.core.encodeText(cursor === 0 ? text : text.slice(cursor), cursor, ids, tokens, offsets);
    } else {
      this.core.encodeText(text, 0, ids, tokens, offsets);
    }
    if (opts.addSpecialTokens) pushSpecial(this.family === 'bert' ? this.special.sep : this.special.eos, 0, 0);
  }

  decode(ids: ArrayLike<number>, opts: DecodeOptions = {}): string {
    const tokens: string[] = [];
    for (let k = 0; k < ids.length; k++) {
      const id = ids[k]!;
      const token = Number.isInteger(id) ? this.idToTokenArray[id] : undefined;
      if (token === undefined) {
        throw new RangeError(`decode: id ${id} at position ${k} is not a token of this ${this.family} tokenizer (vocabulary size ${this.vocabSize})`);
      }
      if (opts.skipSpecialTokens && this.specialIds.has(id)) continue;
      tokens.push(token);
    }
    return this.core.decodeTokens(tokens, opts);
  }

  idToToken(id: number): string | undefined {
    return this.idToTokenArray[id];
  }

  tokenToId(token: string): number | undefined {
    return this.tokenToIdMap.get(token);
  }

  sentenceEndTable(): Uint8Array {
    if (this.sentenceEnds === null) {
      const table = new Uint8Array(this.vocabSize);
      const added = new Set(this.addedTokens.map((a) => a.id));
      for (let id = 0; id < this.vocabSize; id++) {
        const token = this.idToTokenArray[id];
        if (token === undefined || added.has(id)) continue;
        const text = this.core.tokenText(token);
        if (SENTENCE_END_CHARS.some((c) => text.includes(c))) table[id] = 1;
      }
      this.sentenceEnds = table;
    }
    return this.sentenceEnds;
  }

  isSentenceEnd(id: number): boolean {
    return this.sentenceEndTable()[id] === 1;
  }

  toJSON(): SavedTokenizer {
    return {
      format: 'blankglm-tokenizer',
      version: 1,
      family: this.family,
      model: this.core.save(),
      addedTokens: this.addedTokens.map((a) => ({ ...a })),
      special: { ...this.special },
    } as SavedTokenizer;
  }
}

/**
 * GLM's command tokens for a vocabulary: tokens the vocabulary already has keep their ids
 * (BERT's [PAD]/[UNK]/[CLS]/[SEP]/[MASK], GPT-2's <|endoftext|>); the others get the next free ids in
 * GLM's order. For the standard BERT and GPT-2 vocabularies this gives exactly GLM_SPECIAL_TOKENS.
 */
export function glmCommandTokens(
  family: 'bert' | 'gpt2',
  lookup: (token: string) => number | undefined,
  firstFreeId: number,
): { special: GlmSpecialTokens; added: AddedToken[] } {
  let next = firstFreeId;
  const added: AddedToken[] = [];
  const idOf = (text: string, lstrip: boolean): number => {
    let id = lookup(text);
    if (id === undefined) id = next++;
    added.push({ id, content: text, lstrip, rstrip: false, singleWord: false, special: true });
    return id;
  };
  const texts = GLM_COMMAND_TOKEN_TEXTS[family];
  const lstripOf = (t: string): boolean => texts.find((c) => c.text === t)?.lstrip ?? false;
  // Order matters: it is the order GLM appended its command tokens.
  const order =
    family === 'bert'
      ? ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]', '<|startofpiece|>', '<|endofpiece|>', '[gMASK]', '[sMASK]']
      : ['<|endoftext|>', '<|startofpiece|>', '<|endofpiece|>', '[CLS]', '[MASK]', '[SEP]', '[UNK]', '[gMASK]', '[sMASK]', '[dBLOCK]'];
  const ids = new Map<string, number>();
  for (const t of order) {
    if (family === 'gpt2' && t === '<|endoftext|>' && lookup(t) === undefined) {
      throw new Error('GPT-2 family vocabulary has no <|endoftext|> token (GLM uses it as eos and pad)');
    }
    if (family === 'bert' && (t === '[PAD]' || t === '[UNK]') && lookup(t) === undefined) {
      throw new Error(`BERT family vocabulary has no ${t} token`);
    }
    ids.set(t, idOf(t, lstripOf(t)));
  }
  const get = (t: string): number => ids.get(t)!;
  const size = next;
  // GLM pads the embedding table to a multiple of 128 rows.
  const paddedVocabSize = Math.ceil(size / 128) * 128;
  const special: GlmSpecialTokens =
    family === 'bert'
      ? {
          family,
          pad: get('[PAD]'),
          eos: get('[PAD]'),
          unk: get('[UNK]'),
          cls: get('[CLS]'),
          sep: get('[SEP]'),
          mask: get('[MASK]'),
          sop: get('<|startofpiece|>'),
          eop: get('<|endofpiece|>'),
          gMask: get('[gMASK]'),
          sMask: get('[sMASK]'),
          paddedVocabSize,
        }
      : {
          family,
          pad: get('<|endoftext|>'),
          eos: get('<|endoftext|>'),
          sop: get('<|startofpiece|>'),
          eop: get('<|endofpiece|>'),
          cls: get('[CLS]'),
          mask: get('[MASK]'),
          sep: get('[SEP]'),
          unk: get('[UNK]'),
          gMask: get('[gMASK]'),
          sMask: get('[sMASK]'),
          dBlock: get('[dBLOCK]'),
          paddedVocabSize,
        };
  return { special, added };
}
