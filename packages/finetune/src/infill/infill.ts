// Text infilling (glm-reference §4.7; the original's BlankLMDataset and `seq_blank.sh`, BLM data of
// Shen et al. 2020):
//
//   blanks    whole whitespace words are masked at a ratio r (round(r · words), at least 1, drawn
//             with a seeded Rng); consecutive masked words merge into one blank
//   Part A    " " + the masked text, each blank one [MASK] (no [CLS], as the reference)
//   Part B    for each blank i, left to right: [sop] span_i at the i-th mask's position, block
//             positions 1..|span|+1, targets span_i [eop]   (span_i = tokens of " " + its words)
//   decoding  every blank left to right with model-spec's fillBlanks (greedy, no-repeat 3): each
//             blank starts with [sop] at its mask, ends at [eop], and sees the fills before it
//   metric    corpus BLEU-4 (multi-bleu.perl) of the filled text against the original text, both
//             as the tokenizer writes them back (decode(encode(text))), split on whitespace
import { fillBlanks, type GlmModel } from '@blankglm/model-spec';
import { counterHash32, Rng } from '@blankglm/tensor';
import type { GlmTokenizer } from '@blankglm/tokenizer';
import { corpusBleu, type BleuResult } from '../metrics/bleu.js';
import { appendSpan, partA, type GlmRow } from '../lm/rows.js';
import { decodeGenerated, vocabularyArgmax } from '../seq2seq/generate.js';

/** A text with some of its words blanked: `blanks` are [start, end) word ranges, sorted, disjoint, not adjacent. */
export interface InfillExample {
  line: number;
  words: string[];
  blanks: Array<[start: number, end: number]>;
}

/** An evaluation example: the original text and its masked version (blanks given as `[MASK]` or `<blank>`). */
export interface InfillTestExample {
  line: number;
  text: string;
  /** Words of the masked text, each blank one `null`. */
  masked: Array<string | null>;
}

/** Masks round(ratio · words) (≥ 1) whole words chosen by `rng`; consecutive ones merge. */
export function maskWords(text: string, ratio: number, rng: Rng, line = 0): InfillExample {
  if (!(ratio > 0 && ratio < 1)) throw new RangeError(`maskWords: ratio must be in (0, 1), got ${ratio}`);
  const words = text.split(/\s+/).filter((w) => w.length > 0);
  if (words.length < 2) throw new RangeError(`line ${line}: infilling needs at least 2 words, got ${words.length}`);
  const count = Math.min(words.length - 1, Math.max(1, Math.round(ratio * words.length)));
  const order = Array.from({ length: words.length }, (_, i) => i);
  rng.shuffle(order);
  const masked = new Uint8Array(words.length);
  for (const i of order.slice(0, count)) masked[i] = 1;
  const blanks: Array<[number, number]> = [];
  for (let i = 0; i < words.length; i++) {
    if (!masked[i]) continue;
    if (blanks.length && blanks[blanks.length - 1]![1] === i) blanks[blanks.length - 1]![1] = i + 1;
    else blanks.push([i, i + 1]);
  }
  return { line, words, blanks };
}

/** A deterministic Rng for masking example `line` (copy `copy`) under `seed`: masks do not depend on data order. */
export function maskRng(seed: number, line: number, copy = 0): Rng {
  return new Rng(counterHash32(seed >>> 0, line >>> 0, copy >>> 0));
}

/** The masked text of an example as words with `null` blanks. */
export function maskedWords(ex: InfillExample): Array<string | null> {
  const out: Array<string | null> = [];
  let b = 0;
  for (let i = 0; i < ex.words.length; ) {
    const blank = ex.blanks[b];
    if (blank && blank[0] === i) {
      out.push(null);
      i = blank[1];
      b++;
    } else out.push(ex.words[i++]!);
  }
  return out;
}

/** Part A token ids of a masked text: " " + text with each blank one [MASK]; where each mask is. */
export function infillContext(tokenizer: GlmTokenizer, masked: ReadonlyArray<string | null>): { ids: number[]; maskPositions: number[] } {
  const ids: number[] = [];
  const maskPositions: number[] = [];
  let pending: string[] = [];
  const flush = (): void => {
    if (pending.length) ids.push(...tokenizer.encodeIds(' ' + pending.join(' ')));
    pending = [];
  };
  for (const w of masked) {
    if (w === null) {
      flush();
      maskPositions.push(ids.length);
      ids.push(tokenizer.special.mask);
    } else pending.push(w);
  }
  flush();
  return { ids, maskPositions };
}

/** The training row of a masked example (Part B spans left to right). */
export function buildInfillRow(tokenizer: GlmTokenizer, ex: InfillExample, maxLength: number): GlmRow {
  const { ids, maskPositions } = infillContext(tokenizer, maskedWords(ex));
  const row = partA(ids);
  ex.blanks.forEach(([start, end], i) => {
    const span = [...tokenizer.encodeIds(' ' + ex.words.slice(start, end).join(' ')), tokenizer.special.eop];
    appendSpan(row, tokenizer.special.sop, maskPositions[i]!, span);
  });
  if (row.inputIds.length > maxLength) {
    throw new RangeError(`line ${ex.line}: the infilling row has ${row.inputIds.length} tokens (Part A ${ids.length}), more than the maximum ${maxLength}; use shorter texts or a larger maxLength`);
  }
  return row;
}

/** Parses a masked text (`[MASK]` or `<blank>` marks a blank; a blank may be glued to punctuation only as its own word). */
export function parseMaskedText(masked: string): Array<string | null> {
  return masked
    .split(/\s+/)
    .filter((w) => w.length > 0)
    .map((w) => (w === '[MASK]' || w === '<blank>' ? null : w));
}

export interface InfillDecodeOptions {
  /** Most tokens per blank, eop included (the reference caps a whole example at 200). */
  maxTokensPerBlank: number;
  /** The reference: 3. */
  noRepeatNgramSize: number;
}

/** Fills every blank of a masked text left to right (greedy); returns the filled text as the tokenizer writes it. */
export function fillInfill(model: GlmModel, tokenizer: GlmTokenizer, masked: ReadonlyArray<string | null>, options: InfillDecodeOptions): string {
  const { ids } = infillContext(tokenizer, masked);
  const s = tokenizer.special;
  const result = fillBlanks(model, ids, {
    maskIds: [s.mask],
    sopId: s.sop,
    eopId: s.eop,
    maxTokens: Math.min(options.maxTokensPerBlank, model.positionRows - 2),
    noRepeatNgramSize: options.noRepeatNgramSize,
    choose: vocabularyArgmax(tokenizer.vocabSize),
  });
  return decodeGenerated(tokenizer, result.filled);
}

export interface InfillEvaluation {
  bleu: BleuResult;
  predictions: string[];
  references: string[];
}

/** BLEU of the filled texts against the originals. */
export function evaluateInfill(
  model: GlmModel,
  tokenizer: GlmTokenizer,
  examples: readonly InfillTestExample[],
  options: InfillDecodeOptions & { onProgress?: (done: number, total: number) => void },
): InfillEvaluation {
  if (examples.length === 0) throw new RangeError('evaluateInfill: no examples');
  const predictions = examples.map((ex, i) => {
    const text = fillInfill(model, tokenizer, ex.masked, options);
    options.onProgress?.(i + 1, examples.length);
    return text;
  });
  const references = examples.map((ex) => tokenizer.decode(tokenizer.encodeIds(' ' + ex.text), { skipSpecialTokens: true }).trim());
  return { bleu: corpusBleu(references, predictions), predictions, references };
}

/**
 * Held-back paragraphs of public-domain text as an infilling task: blank-line separated
 * paragraphs of minWords..maxWords words (whitespace normalised); every `validEvery`-th goes to
 * validation. Returns the texts; blanks are drawn when the task reads them.
 */
export function infillParagraphs(texts: readonly string[], options: { minWords?: number; maxWords?: number; validEvery?: number } = {}): { train: string[]; valid: string[] } {
  const minWords = options.minWords ?? 15;
  const maxWords = options.maxWords ?? 80;
  const validEvery = options.validEvery ?? 10;
  const train: string[] = [];
  const valid: string[] = [];
  let usable = 0;
  for (const text of texts) {
    for (const para of text.replace(/\r\n?/g, '\n').split(/\n\s*\n/)) {
      const flat = para.replace(/\s+/g, ' ').trim();
      const words = flat.split(' ').length;
      if (flat === '' || words < minWords || words > maxWords) continue;
      usable++;
      (usable % validEvery === 0 ? valid : train).push(flat);
    }
  }
  return { train, valid };
}
