// Seq2seq model inputs (glm-reference §4.6, the original's `tasks/seq2seq/dataset.py`):
//
//   summarization        Part A = [CLS] [sMASK] " Content:" " "+source   (mask at position 1)
//   question-generation  Part A = [CLS] source " Question:" [MASK] " Answer: "+answer
//   target               " "+target + [eop], cut to targetLength (a cut target loses its eop)
//   training row         Part A + [sop] target[:-1] → targets target; Part B all at the mask's
//                        position, block positions 1..|target|; loss on Part B
//
// Part A is at most `sourceLength` tokens: the source is cut (question generation: a window
// around the answer). The reference pads Part A with pad tokens to sourceLength and ATTENDS to the
// pads (sep = sourceLength); `padPartA: true` does exactly that. The default (false) leaves the pads
// out, so the model never sees them — a deliberate deviation: results no longer depend on how much
// padding a short source gets.
import type { GlmTokenizer } from '@blankglm/tokenizer';
import { appendSpan, partA, type GlmRow } from '../lm/rows.js';

export type Seq2seqFormat = 'summarization' | 'question-generation';
export type Seq2seqMaskToken = 'mask' | 'sMask' | 'gMask';

export interface Seq2seqExample {
  /** 1-based line in its file. */
  line: number;
  source: string;
  target: string;
  /** Question generation: the answer the question asks for. */
  answer?: string;
}

export interface Seq2seqInputOptions {
  format: Seq2seqFormat;
  /** Longest Part A (the reference's src_seq_length). */
  sourceLength: number;
  /** Longest target incl. eop (tgt_seq_length). */
  targetLength: number;
  /** Pad Part A to sourceLength with attended pads, as the reference (default false). */
  padPartA?: boolean;
  /** The blank's token (summarization default [sMASK], question generation [MASK]). */
  maskToken?: Seq2seqMaskToken;
}

export interface Seq2seqInput {
  /** Part A: what decoding starts from. */
  context: number[];
  /** Index of the blank in Part A. */
  maskPosition: number;
  maskId: number;
  /** Target tokens incl. eop unless cut. */
  target: number[];
}

function maskId(tokenizer: GlmTokenizer, which: Seq2seqMaskToken): number {
  const s = tokenizer.special;
  return which === 'sMask' ? s.sMask : which === 'gMask' ? s.gMask : s.mask;
}

/** Cuts `tokens` to `room`, keeping a window around [focusStart, focusEnd) when it has to cut. */
function windowAround(tokens: number[], room: number, focusStart: number, focusEnd: number): number[] {
  if (tokens.length <= room) return tokens;
  const centre = Math.floor((focusStart + focusEnd) / 2);
  let start = Math.max(0, centre - Math.floor(room / 2));
  start = Math.min(start, tokens.length - room);
  return tokens.slice(start, start + room);
}

/** Part A and the target tokens of one example. */
export function buildSeq2seqInput(tokenizer: GlmTokenizer, ex: Seq2seqExample, options: Seq2seqInputOptions): Seq2seqInput {
  const s = tokenizer.special;
  const which = options.maskToken ?? (options.format === 'summarization' ? 'sMask' : 'mask');
  const mask = maskId(tokenizer, which);
  let context: number[];
  let maskPosition: number;
  if (options.format === 'summarization') {
    const prompt = [s.cls, mask, ...tokenizer.encodeIds(' Content:')];
    const room = options.sourceLength - prompt.length;
    if (room < 1) throw new RangeError(`sourceLength ${options.sourceLength} leaves no room for the source after the ${prompt.length}-token prompt`);
    context = [...prompt, ...tokenizer.encodeIds(' ' + ex.source).slice(0, room)];
    maskPosition = 1;
  } else {
    if (ex.answer === undefined) throw new RangeError(`line ${ex.line}: question generation needs an 'answer' field`);
    const question = tokenizer.encodeIds(' Question:');
    const answer = tokenizer.encodeIds(' Answer: ' + ex.answer);
    const room = options.sourceLength - 2 - question.length - answer.length;
    if (room < 1) throw new RangeError(`line ${ex.line}: the answer takes ${answer.length} tokens; no room for the paragraph in sourceLength ${options.sourceLength}`);
    const paragraph = tokenizer.encodeIds(ex.source);
    const at = ex.source.toLowerCase().indexOf(ex.answer.toLowerCase());
    const focusStart = at >= 0 ? tokenizer.encodeIds(ex.source.slice(0, at)).length : 0;
    const focusEnd = at >= 0 ? focusStart + tokenizer.encodeIds(ex.answer).length : 0;
    const kept = windowAround(paragraph, room, focusStart, focusEnd);
    context = [s.cls, ...kept, ...question, mask, ...answer];
    maskPosition = 1 + kept.length + question.length;
  }
  if (options.padPartA) while (context.length < options.sourceLength) context.push(s.pad);
  const target = [...tokenizer.encodeIds(' ' + ex.target), s.eop].slice(0, options.targetLength);
  return { context, maskPosition, maskId: mask, target };
}

/** The training row: Part A, then [sop] target[:-1] → target at the mask's position. */
export function buildSeq2seqRow(input: Seq2seqInput, sopId: number): GlmRow {
  const row = partA(input.context);
  appendSpan(row, sopId, input.maskPosition, input.target);
  return row;
}
