// LAMBADA zero-shot accuracy (glm-reference §4.8). A row of the data is a passage whose last word
// must be predicted; an example is a hit only if the model's argmax (teacher forced) equals EVERY
// token of that word.
//
//   bidirectional   Part A = [CLS] context [MASK] [eos]       (the whole context, bidirectional)
//                   Part B = [sop] w[:-1] → targets w          (w = tokens of " " + last word, no eop)
//                   all of Part B at the mask's position, block positions 1..|w|
//   unidirectional  Part A = [CLS] t0 [MASK] [eos]             (t0 = the first context token)
//                   Part B = [sop] (t1.. + w)[:-1] → targets t1.. + w; loss and accuracy on w only
//
// `[gMASK]` stands in for [MASK] with models pretrained with task masks (`maskToken: 'gMask'`).
// Formats read: OpenAI's detokenised LAMBADA JSONL (`context`, `continuation` = the last word) and
// the original `lambada_test.jsonl` (`text`: the last whitespace-separated word is the target).
// Contexts longer than the sequence length lose tokens from the left (the reference does the same
// for its 512-token windows).
import type { GlmModel } from '@blankglm/model-spec';
import type { GlmTokenizer } from '@blankglm/tokenizer';
import { appendSpan, partA, type GlmRow } from './rows.js';
import { scoreRows } from './score.js';

export interface LambadaExample {
  /** 1-based line in its file. */
  line: number;
  context: string;
  /** The last word, without leading whitespace. */
  lastWord: string;
}

export type LmProtocol = 'bidirectional' | 'unidirectional';
export type LmMaskToken = 'mask' | 'gMask';

/** Parses one JSON row (either format); problems are pushed to `problems`. */
export function parseLambadaRow(value: Record<string, unknown>, line: number, problems: string[]): LambadaExample | null {
  if (typeof value.context === 'string' || typeof value.continuation === 'string') {
    if (typeof value.context !== 'string') problems.push(`field 'context' must be a string (OpenAI LAMBADA format: context + continuation)`);
    if (typeof value.continuation !== 'string') problems.push(`field 'continuation' must be a string (the passage's last word)`);
    if (problems.length) return null;
    const lastWord = (value.continuation as string).trim();
    if (lastWord === '') problems.push(`field 'continuation' is empty; expected the passage's last word`);
    if ((value.context as string).trim() === '') problems.push(`field 'context' is empty`);
    return problems.length ? null : { line, context: (value.context as string).replace(/\s+$/, ''), lastWord };
  }
  if (typeof value.text === 'string') {
    const text = value.text.trim();
    const cut = text.search(/\s\S+$/);
    if (cut < 0) {
      problems.push(`field 'text' has no whitespace-separated last word to predict`);
      return null;
    }
    return { line, context: text.slice(0, cut).replace(/\s+$/, ''), lastWord: text.slice(cut).trim() };
  }
  problems.push(`expected fields 'context' and 'continuation' (OpenAI LAMBADA) or 'text' (original lambada_test.jsonl); got ${Object.keys(value).join(', ') || 'none'}`);
  return null;
}

export interface LambadaRowOptions {
  protocol: LmProtocol;
  maskToken: LmMaskToken;
  /** Longest row (Part A + Part B). */
  maxLength: number;
}

/** The model input of one example; `lossFrom` marks where the last word's tokens begin in Part B. */
export function buildLambadaRow(tokenizer: GlmTokenizer, ex: LambadaExample, options: LambadaRowOptions): GlmRow {
  const s = tokenizer.special;
  const mask = options.maskToken === 'gMask' ? s.gMask : s.mask;
  let context = tokenizer.encodeIds(ex.context);
  const word = tokenizer.encodeIds(' ' + ex.lastWord);
  if (word.length === 0) throw new RangeError(`line ${ex.line}: the last word '${ex.lastWord}' has no tokens`);
  if (options.protocol === 'bidirectional') {
    // [CLS] context [MASK] [eos] + [sop] w[:-1]
    const room = options.maxLength - 3 - word.length;
    if (room < 1) throw new RangeError(`line ${ex.line}: the last word has ${word.length} tokens; no room for context in ${options.maxLength}`);
    if (context.length > room) context = context.slice(context.length - room);
    const row = partA([s.cls, ...context, mask, s.eos]);
    appendSpan(row, s.sop, context.length + 1, word);
    return row;
  }
  // [CLS] t0 [MASK] [eos] + [sop] (rest + w)[:-1], loss on w
  const room = options.maxLength - 4 - word.length; // Part A holds 4, Part B 1 + rest + |w| − 1
  if (room < 0) throw new RangeError(`line ${ex.line}: the last word has ${word.length} tokens; no room in ${options.maxLength}`);
  if (context.length === 0) throw new RangeError(`line ${ex.line}: the context has no tokens`);
  if (context.length - 1 > room) context = context.slice(context.length - 1 - room);
  const row = partA([s.cls, context[0]!, mask, s.eos]);
  const rest = context.slice(1);
  appendSpan(row, s.sop, 2, [...rest, ...word], rest.length);
  return row;
}

export interface LambadaResult {
  accuracy: number;
  /** Mean over examples of −Σ log p(last-word tokens). */
  lastWordNll: number;
  examples: number;
  hits: number;
  /** Per example: hit or not. */
  correct: boolean[];
}

/** LAMBADA accuracy of `model` on `examples`. */
export function evaluateLambada(
  model: GlmModel,
  tokenizer: GlmTokenizer,
  examples: readonly LambadaExample[],
  options: LambadaRowOptions & { batchSize: number; onProgress?: (done: number, total: number) => void },
): LambadaResult {
  if (examples.length === 0) throw new RangeError('evaluateLambada: no examples');
  const rows = examples.map((ex) => buildLambadaRow(tokenizer, ex, options));
  const scores = scoreRows(model, rows, { batchSize: options.batchSize, argmax: true, padId: tokenizer.special.pad, ...(options.onProgress ? { onProgress: options.onProgress } : {}) });
  let hits = 0;
  let nll = 0;
  const correct = scores.map((s) => {
    const hit = s.hits!.every(Boolean);
    if (hit) hits++;
    nll -= s.logProbs.reduce((a, b) => a + b, 0);
    return hit;
  });
  return { accuracy: hits / examples.length, lastWordNll: nll / examples.length, examples: examples.length, hits, correct };
}
