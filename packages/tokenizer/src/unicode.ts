// Character classes exactly as Hugging Face `tokenizers` defines them for BERT. Its Rust tables come
// from an older Unicode version than Node's ICU (and do not count unassigned code points as
// controls), so they are embedded as generated range tables (see scripts/gen-unicode-tables.mjs)
// rather than taken from `\p{…}`.
import { HF_CHINESE, HF_CONTROL, HF_MARK_NONSPACING, HF_PUNCTUATION, HF_WHITESPACE } from './unicode-tables.js';

/** A set of code points from "start-end,point,…" ranges in base 36, tested by binary search. */
class CodePointRanges {
  private readonly bounds: Int32Array; // [start0, end0, start1, end1, …], inclusive, sorted

  constructor(encoded: string) {
    const parts = encoded === '' ? [] : encoded.split(',');
    this.bounds = new Int32Array(parts.length * 2);
    parts.forEach((p, i) => {
      const [a, b] = p.split('-');
      this.bounds[2 * i] = parseInt(a!, 36);
      this.bounds[2 * i + 1] = parseInt(b ?? a!, 36);
    });
  }

  has(cp: number): boolean {
    let lo = 0;
    let hi = this.bounds.length / 2 - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (cp < this.bounds[2 * mid]!) hi = mid - 1;
      else if (cp > this.bounds[2 * mid + 1]!) lo = mid + 1;
      else return true;
    }
    return false;
  }
}

const control = new CodePointRanges(HF_CONTROL);
const whitespace = new CodePointRanges(HF_WHITESPACE);
const punctuation = new CodePointRanges(HF_PUNCTUATION);
const markNonspacing = new CodePointRanges(HF_MARK_NONSPACING);
const chinese = new CodePointRanges(HF_CHINESE);

/** Characters BERT's clean-text step maps to ' ' (tab, newline, CR and Unicode spaces that are not controls). */
export function isBertWhitespace(cp: number): boolean {
  return whitespace.has(cp);
}

/** Characters BERT's clean-text step removes: C* controls and formats (not tab/newline/CR, not unassigned code points). */
export function isBertControl(cp: number): boolean {
  return control.has(cp) || (cp >= 0xd800 && cp <= 0xdfff);
}

/** BERT punctuation: the ASCII symbols `!"#$%&'()*+,-./:;<=>?@[\]^_\`{|}~` and Unicode P* characters. */
export function isBertPunctuation(cp: number): boolean {
  return punctuation.has(cp);
}

/** The CJK ideograph blocks BERT surrounds with spaces. */
export function isChineseChar(cp: number): boolean {
  return chinese.has(cp);
}

/** Nonspacing marks (Mn), which BERT's accent stripping drops after NFD. */
export function isMarkNonspacing(cp: number): boolean {
  return markNonspacing.has(cp);
}

/** Rust `char::is_whitespace` (Unicode White_Space): what the pre-tokeniser splits on when clean-text is off. */
export function isUnicodeWhitespace(cp: number): boolean {
  return (
    (cp >= 0x09 && cp <= 0x0d) ||
    cp === 0x20 ||
    cp === 0x85 ||
    cp === 0xa0 ||
    cp === 0x1680 ||
    (cp >= 0x2000 && cp <= 0x200a) ||
    cp === 0x2028 ||
    cp === 0x2029 ||
    cp === 0x202f ||
    cp === 0x205f ||
    cp === 0x3000
  );
}
