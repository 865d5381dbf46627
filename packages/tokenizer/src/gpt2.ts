// GPT-2 byte-level BPE exactly as Hugging Face `tokenizers` runs it: the GPT-2 pre-tokenisation
// regex, bytes mapped to printable characters (`bytes_to_unicode`), then merges applied lowest rank
// first. Words are cached, so repeated words cost one Map lookup.

/** Whitespace as Oniguruma's `\s` (Unicode White_Space), which Hugging Face's regex uses; JS `\s` differs (U+FEFF, U+0085). */
const WS = '\\t\\n\\v\\f\\r \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';

/** `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+` */
export const GPT2_SPLIT_PATTERN = new RegExp(
  `'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^${WS}\\p{L}\\p{N}]+|[${WS}]+(?![^${WS}])|[${WS}]+`,
  'gu',
);

/** GPT-2's reversible map from bytes to printable characters (byte → character). */
export function bytesToUnicode(): string[] {
  const printable: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) printable.push(b);
  for (let b = 0xa1; b <= 0xac; b++) printable.push(b);
  for (let b = 0xae; b <= 0xff; b++) printable.push(b);
  const map: string[] = new Array<string>(256);
  const isPrintable = new Set(printable);
  let next = 0;
  for (let b = 0; b < 256; b++) {
    if (isPrintable.has(b)) map[b] = String.fromCharCode(b);
    else map[b] = String.fromCharCode(256 + next++);
  }
  return map;
}

export interface BpeModelOptions {
  /** Hugging Face's `ignore_merges`: a word that is itself in the vocabulary is not split. */
  ignoreMerges?: boolean;
}

const WORD_CACHE_LIMIT = 200_000;

/** Byte-level BPE over a vocabulary and ranked merges. */
export class ByteLevelBpeModel {
  /** byte → vocabulary id of its printable character. */
  private readonly byteIds = new Int32Array(256);
  /** (left id × idSpace + right id) → rank × 2^24 + merged id. */
  private readonly merges = new Map<number, number>();
  private readonly idSpace: number;
  private readonly cache = new Map<string, number[]>();
  /** Bytes each token stands for (its printable form has one character per byte). */
  readonly tokenByteLength: Int32Array;
  readonly byteToChar = bytesToUnicode();
  private readonly charToByte = new Map<string, number>();

  constructor(
    readonly vocab: ReadonlyMap<string, number>,
    mergePairs: ReadonlyArray<readonly [string, string]>,
    readonly options: BpeModelOptions = {},
    /** Names the source in errors (e.g. the merges file). */
    source = 'merges',
  ) {
    let maxId = 0;
    for (const id of vocab.values()) if (id > maxId) maxId = id;
    this.idSpace = maxId + 1;
    if (this.idSpace >= 1 << 24) throw new Error(`BPE vocabulary too large (${this.idSpace} ids)`);
    this.tokenByteLength = new Int32Array(this.idSpace);
    for (const [token, id] of vocab) this.tokenByteLength[id] = token.length;
    for (let b = 0; b < 256; b++) {
      const ch = this.byteToChar[b]!;
      this.charToByte.set(ch, b);
      const id = vocab.get(ch);
      this.byteIds[b] = id ?? -1;
    }
    for (let rank = 0; rank < mergePairs.length; rank++) {
      const [a, b] = mergePairs[rank]!;
      const left = vocab.get(a);
      const right = vocab.get(b);
      const merged = vocab.get(a + b);
      if (left === undefined || right === undefined || merged === undefined) {
        const missing = left === undefined ? a : right === undefined ? b : a + b;
        throw new Error(`${source}: merge ${rank + 1} ('${a} ${b}') uses '${missing}', which is not in the vocabulary`);
      }
      const key = left * this.idSpace + right;
      // The first occurrence of a pair keeps its (lower) rank.
      if (!this.merges.has(key)) this.merges.set(key, rank * 0x1000000 + merged);
    }
  }

  /** The ids of one pre-tokenised word (cached). */
  tokenizeWord(word: string): number[] {
    let ids = this.cache.get(word);
    if (ids === undefined) {
      ids = this.computeIds(word);
      if (this.cache.size >= WORD_CACHE_LIMIT) this.cache.clear();
      this.cache.set(word, ids);
    }
    return ids;
  }

  private computeIds(word: string): number[] {
    if (this.options.ignoreMerges) {
      let mapped = '';
      for (const b of utf8Bytes(word)) mapped += this.byteToChar[b];
      const whole = this.vocab.get(mapped);
      if (whole !== undefined) return [whole];
    }
    let symbols: number[] = [];
    for (const b of utf8Bytes(word)) {
      const id = this.byteIds[b]!;
      // Byte-level vocabularies hold all 256 byte characters; one that does not is skipped as
      // Hugging Face does when there is no unknown token.
      if (id >= 0) symbols.push(id);
    }
    const merges = this.merges;
    const space = this.idSpace;
    while (symbols.length > 1) {
      let best = Infinity;
      for (let k = 0; k + 1 < symbols.length; k++) {
        const m = merges.get(symbols[k]! * space + symbols[k + 1]!);
        if (m !== undefined && m < best) best = m;
      }
      if (best === Infinity) break;
      // Merge every occurrence of the best pair, left to right (same result as Hugging Face's
      // heap: a merge's products only take part in later-ranked merges).
      const mergedId = best % 0x1000000;
      const next: number[] = [];
      for (let k = 0; k < symbols.length; k++) {
        const s = symbols[k]!;
        if (k + 1 < symbols.length) {
          const m = merges.get(s * space + symbols[k + 1]!);
          if (m === best) {
            next.push(mergedId);
            k++;
            continue;
          }
        }
        next.push(s);
      }
      symbols = next;
    }
    return symbols;
  }

  /** Undoes the byte-to-character map of the concatenated tokens and decodes UTF-8 (invalid bytes → U+FFFD). */
  decodeTokens(tokens: readonly string[]): string {
    const bytes: number[] = [];
    for (const t of tokens) {
      for (const ch of t) {
        const b = this.charToByte.get(ch);
        if (b !== undefined) bytes.push(b);
        else for (const x of utf8Bytes(ch)) bytes.push(x);
      }
    }
    return new TextDecoder('utf-8').decode(Uint8Array.from(bytes));
  }
}

const encoder = new TextEncoder();

/** UTF-8 bytes of a string (lone surrogates as U+FFFD, like TextEncoder). */
export function utf8Bytes(s: string): Uint8Array {
  return encoder.encode(s);
}
