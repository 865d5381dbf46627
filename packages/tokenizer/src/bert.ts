// BERT WordPiece exactly as Hugging Face `tokenizers` runs it: BertNormalizer (clean text, space CJK
// ideographs, NFD + drop nonspacing marks, lower-case), BertPreTokenizer (split on whitespace, every
// punctuation character its own word), then greedy longest-match WordPiece with a `##` prefix.
//
// The normaliser and pre-tokeniser are fused into one pass over UTF-16 code units: ASCII words are
// sliced from the input (one allocation per word), and only words with non-ASCII or removed
// characters are rebuilt. Each word's pieces are cached.
import { isBertControl, isBertPunctuation, isBertWhitespace, isChineseChar, isMarkNonspacing, isUnicodeWhitespace } from './unicode.js';

export interface BertNormalizerOptions {
  /** Drop control characters, NUL and U+FFFD; map every whitespace character to ' '. */
  cleanText: boolean;
  /** Surround CJK ideographs with spaces (each becomes its own word). */
  handleChineseChars: boolean;
  /** NFD-decompose and drop nonspacing marks (Hugging Face: defaults to `lowercase`). */
  stripAccents: boolean;
  lowercase: boolean;
}

export const UNCASED_BERT_NORMALIZER: BertNormalizerOptions = {
  cleanText: true,
  handleChineseChars: true,
  stripAccents: true,
  lowercase: true,
};

const KIND_WORD = 0;
const KIND_SPACE = 1;
const KIND_REMOVED = 2;
/** A character that is a word by itself (punctuation, or a CJK ideograph). */
const KIND_ISOLATED = 3;

/** What one input code point becomes after normalisation: zero or more segments. */
interface CharNormalization {
  /** Segments in order; consecutive word characters are one segment. */
  segments: Array<{ text: string; kind: number }>;
}

/** The normalising pre-tokeniser of BERT, as a per-code-point table plus a scanner. */
export class BertPreTokenizer {
  private readonly asciiKind = new Uint8Array(128);
  private readonly nonAscii = new Map<number, CharNormalization>();

  constructor(readonly options: BertNormalizerOptions) {
    for (let c = 0; c < 128; c++) {
      const n = this.normalizeCodePoint(c);
      const seg = n.segments;
      this.asciiKind[c] = seg.length === 0 ? KIND_REMOVED : seg[0]!.kind;
    }
  }

  /** Hugging Face's order: clean text, CJK spacing, strip accents (NFD, drop Mn), lower-case. */
  private normalizeCodePoint(cp: number): CharNormalization {
    const o = this.options;
    if (o.cleanText) {
      if (cp === 0 || cp === 0xfffd || isBertControl(cp)) return { segments: [] };
      if (isBertWhitespace(cp)) return { segments: [{ text: ' ', kind: KIND_SPACE }] };
    } else if (isUnicodeWhitespace(cp)) {
      return { segments: [{ text: String.fromCodePoint(cp), kind: KIND_SPACE }] };
    }
    let text = String.fromCodePoint(cp);
    if (o.stripAccents) {
      let kept = '';
      for (const ch of text.normalize('NFD')) if (!isMarkNonspacing(ch.codePointAt(0)!)) kept += ch;
      text = kept;
    }
    if (o.lowercase) {
      // Per character, as Rust's `char::to_lowercase` (no final-sigma context rule).
      let lowered = '';
      for (const ch of text) lowered += ch.toLowerCase();
      text = lowered;
    }
    if (text === '') return { segments: [] };
    if (o.handleChineseChars && isChineseChar(cp)) return { segments: [{ text, kind: KIND_ISOLATED }] };
    const segments: CharNormalization['segments'] = [];
    for (const ch of text) {
      const c = ch.codePointAt(0)!;
      const kind = (o.cleanText ? isBertWhitespace(c) : isUnicodeWhitespace(c)) ? KIND_SPACE : isBertPunctuation(c) ? KIND_ISOLATED : KIND_WORD;
      const last = segments[segments.length - 1];
      if (kind === KIND_WORD && last && last.kind === KIND_WORD) last.text += ch;
      else segments.push({ text: ch, kind });
    }
    return { segments };
  }

  private lookup(cp: number): CharNormalization {
    let n = this.nonAscii.get(cp);
    if (n === undefined) {
      n = this.normalizeCodePoint(cp);
      this.nonAscii.set(cp, n);
    }
    return n;
  }

  /**
   * Splits `text` into normalised words, calling `onWord(word, start, end)` with the UTF-16 span of
   * the original text the word came from. With `unitOrigins`, also passes, for each UTF-16 unit of
   * the normalised word, the [start, end) of the original character it came from (flat pairs).
   */
  scan(
    text: string,
    onWord: (word: string, start: number, end: number, unitOrigins: number[] | null) => void,
    withOrigins: boolean,
  ): void {
    const asciiKind = this.asciiKind;
    const lower = this.options.lowercase;
    const n = text.length;
    // The current word is either a plain slice text[wordStart, i) (`built === null`), whose only
    // change is ASCII lower-casing, or a rebuilt string.
    let wordStart = -1;
    let wordEnd = -1;
    let hasUpper = false;
    let built: string | null = null;
    let origins: number[] | null = null;

    const flush = (): void => {
      if (wordStart < 0) return;
      if (built === null) {
        let w = text.slice(wordStart, wordEnd);
        if (hasUpper) w = w.toLowerCase();
        if (withOrigins) {
          origins = [];
          for (let k = wordStart; k < wordEnd; k++) origins.push(k, k + 1);
        }
        onWord(w, wordStart, wordEnd, origins);
      } else if (built !== '') {
        onWord(built, wordStart, wordEnd, origins);
      }
      wordStart = -1;
      built = null;
      origins = null;
    };
    // Switches the current word (a slice so far) to the rebuilt form.
    const rebuild = (): void => {
      if (built !== null) return;
      if (wordStart < 0) {
        built = '';
        origins = withOrigins ? [] : null;
        return;
      }
      built = text.slice(wordStart, wordEnd);
      if (hasUpper) built = built.toLowerCase();
      if (withOrigins) {
        origins = [];
        for (let k = wordStart; k < wordEnd; k++) origins.push(k, k + 1);
      }
    };

    let i = 0;
    while (i < n) {
      const c = text.charCodeAt(i);
      if (c < 128) {
        const kind = asciiKind[c]!;
        if (kind === KIND_WORD) {
          if (wordStart < 0) {
            wordStart = i;
            hasUpper = false;
            built = null;
          }
          if (built === null) {
            if (c >= 65 && c <= 90 && lower) hasUpper = true;
          } else {
            built += lower && c >= 65 && c <= 90 ? String.fromCharCode(c + 32) : text[i]!;
            if (origins) origins.push(i, i + 1);
          }
          wordEnd = i + 1;
        } else if (kind === KIND_SPACE) {
          flush();
        } else if (kind === KIND_ISOLATED) {
          flush();
          onWord(text[i]!, i, i + 1, withOrigins ? [i, i + 1] : null);
        } else if (wordStart >= 0) {
          // A removed character inside a word: the word continues without it.
          rebuild();
        }
        i++;
        continue;
      }
      const cp = text.codePointAt(i)!;
      const width = cp > 0xffff ? 2 : 1;
      const segments = this.lookup(cp).segments;
      if (segments.length === 0 && wordStart >= 0) rebuild();
      for (let s = 0; s < segments.length; s++) {
        const seg = segments[s]!;
        if (seg.kind === KIND_WORD) {
          if (wordStart < 0) {
            wordStart = i;
            built = '';
            origins = withOrigins ? [] : null;
          } else {
            rebuild();
          }
          built += seg.text;
          if (origins) for (let k = 0; k < seg.text.length; k++) origins.push(i, i + width);
          wordEnd = i + width;
        } else if (seg.kind === KIND_SPACE) {
          flush();
        } else {
          flush();
          let o: number[] | null = null;
          if (withOrigins) {
            o = [];
            for (let k = 0; k < seg.text.length; k++) o.push(i, i + width);
          }
          onWord(seg.text, i, i + width, o);
        }
      }
      i += width;
    }
    flush();
  }
}

/** One word's WordPiece result: ids and the length of each piece in UTF-16 units of the word. */
export interface WordPieces {
  ids: number[];
  unitLengths: number[];
}

export interface WordPieceModelOptions {
  unkToken: string;
  continuingSubwordPrefix: string;
  /** Words longer than this many characters (code points) become the unknown token. */
  maxInputCharsPerWord: number;
}

const WORD_CACHE_LIMIT = 200_000;

/** Greedy longest-match-first WordPiece over a vocabulary. */
export class WordPieceModel {
  private readonly cache = new Map<string, WordPieces>();
  private readonly maxPieceUnits: number;
  readonly unkId: number;

  constructor(
    readonly vocab: ReadonlyMap<string, number>,
    readonly options: WordPieceModelOptions,
  ) {
    const unk = vocab.get(options.unkToken);
    if (unk === undefined) throw new Error(`WordPiece vocabulary has no unknown token '${options.unkToken}'`);
    this.unkId = unk;
    let longest = 0;
    const prefixLength = options.continuingSubwordPrefix.length;
    for (const token of vocab.keys()) {
      const units = token.startsWith(options.continuingSubwordPrefix) ? token.length - prefixLength : token.length;
      if (units > longest) longest = units;
    }
    this.maxPieceUnits = longest;
  }

  /** The pieces of one pre-tokenised, normalised word (cached). */
  tokenizeWord(word: string): WordPieces {
    let pieces = this.cache.get(word);
    if (pieces === undefined) {
      pieces = this.computePieces(word);
      if (this.cache.size >= WORD_CACHE_LIMIT) this.cache.clear();
      this.cache.set(word, pieces);
    }
    return pieces;
  }

  private computePieces(word: string): WordPieces {
    const n = word.length;
    const unknown: WordPieces = { ids: [this.unkId], unitLengths: [n] };
    if (n > this.options.maxInputCharsPerWord) {
      let chars = 0;
      for (let k = 0; k < n; k++) {
        const c = word.charCodeAt(k);
        if (c < 0xdc00 || c > 0xdfff || k === 0 || !isHighSurrogate(word.charCodeAt(k - 1))) chars++;
      }
      if (chars > this.options.maxInputCharsPerWord) return unknown;
    }
    const ids: number[] = [];
    const unitLengths: number[] = [];
    const prefix = this.options.continuingSubwordPrefix;
    let start = 0;
    while (start < n) {
      let end = Math.min(n, start + this.maxPieceUnits);
      let found = -1;
      while (end > start) {
        // Never cut between the two halves of a surrogate pair.
        if (end < n && isHighSurrogate(word.charCodeAt(end - 1)) && isLowSurrogate(word.charCodeAt(end))) {
          end--;
          continue;
        }
        const sub = start > 0 ? prefix + word.slice(start, end) : word.slice(start, end);
        const id = this.vocab.get(sub);
        if (id !== undefined) {
          found = id;
          break;
        }
        end--;
      }
      if (found < 0) return unknown;
      ids.push(found);
      unitLengths.push(end - start);
      start = end;
    }
    return { ids, unitLengths };
  }
}

function isHighSurrogate(c: number): boolean {
  return c >= 0xd800 && c <= 0xdbff;
}
function isLowSurrogate(c: number): boolean {
  return c >= 0xdc00 && c <= 0xdfff;
}

/**
 * Hugging Face's WordPiece decoder: `##` pieces join the previous token, others are separated by a
 * space; with `cleanup`, each token gets the tokenisation-space clean-up of `transformers`
 * (" ." → "." etc.), token by token as Hugging Face does.
 */
export function decodeWordPieces(tokens: readonly string[], prefix: string, cleanup: boolean): string {
  let out = '';
  for (let i = 0; i < tokens.length; i++) {
    let t = tokens[i]!;
    if (i > 0) {
      if (t.startsWith(prefix)) t = t.slice(prefix.length);
      else t = ' ' + t;
    }
    out += cleanup ? cleanupTokenizationSpaces(t) : t;
  }
  return out;
}

export function cleanupTokenizationSpaces(s: string): string {
  return s
    .replaceAll(' .', '.')
    .replaceAll(' ?', '?')
    .replaceAll(' !', '!')
    .replaceAll(' ,', ',')
    .replaceAll(" ' ", "'")
    .replaceAll(" n't", "n't")
    .replaceAll(" 'm", "'m")
    .replaceAll(' do not', " don't")
    .replaceAll(" 's", "'s")
    .replaceAll(" 've", "'ve")
    .replaceAll(" 're", "'re");
}
