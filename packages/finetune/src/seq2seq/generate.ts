// Seq2seq decoding and evaluation (glm-reference §4.6): Part A is prefilled, the blank is filled by
// model-spec's `fillBlanks` — beam search (score Σ log p / length^lengthPenalty, no early
// stopping, as HF's BeamSearchScorer which GLM copies), a minimum length and a no-repeat n-gram
// ban on generated tokens — and the text is scored with ROUGE against the reference.
import { fillBlanks, type GlmModel } from '@blankglm/model-spec';
import type { GlmTokenizer } from '@blankglm/tokenizer';
import { corpusRouge, type RougeScore, type RougeType } from '../metrics/rouge.js';
import { buildSeq2seqInput, type Seq2seqExample, type Seq2seqInputOptions } from './format.js';

export interface Seq2seqDecodeOptions {
  /** Beams (1: greedy). */
  numBeams: number;
  lengthPenalty: number;
  /** Fewest generated tokens before eop may come. */
  minTokens: number;
  /** 0: off. */
  noRepeatNgramSize: number;
}

/** The reference's CNN/DM decoding (§4.6 table). */
export const CNNDM_DECODING: Readonly<Seq2seqDecodeOptions> = Object.freeze({ numBeams: 5, lengthPenalty: 0.7, minTokens: 55, noRepeatNgramSize: 3 });

/**
 * Splits generated text into sentences for ROUGE-Lsum (what GLM's evaluation does with nltk's
 * sentence splitter): after `.`, `!` or `?` (optionally followed by a closing quote or bracket)
 * and whitespace. Text that already has newlines keeps them as the sentence breaks.
 */
export function splitSentences(text: string): string {
  if (text.includes('\n')) return text;
  return text.replace(/([.!?]['"”’)\]]*)\s+/g, '$1\n').trim();
}

/**
 * Greedy choice among the tokenizer's own ids: the embedding table is padded past the vocabulary
 * (BERT 30,526 → 30,592 rows) and an undertrained model may rank a padding row first.
 */
export function vocabularyArgmax(vocabSize: number): (logits: Float32Array) => number {
  return (logits) => {
    let best = 0;
    const n = Math.min(vocabSize, logits.length);
    for (let i = 1; i < n; i++) if (logits[i]! > logits[best]!) best = i;
    return best;
  };
}

/** Decoded text of generated ids; ids past the tokenizer's vocabulary (padding rows, beam search only) are dropped. */
export function decodeGenerated(tokenizer: GlmTokenizer, ids: readonly number[]): string {
  return tokenizer.decode(ids.filter((id) => id < tokenizer.vocabSize), { skipSpecialTokens: true }).trim();
}

/** Generated text of one example. */
export function generateSeq2seq(model: GlmModel, tokenizer: GlmTokenizer, ex: Seq2seqExample, input: Seq2seqInputOptions, decode: Seq2seqDecodeOptions): string {
  const built = buildSeq2seqInput(tokenizer, ex, input);
  const s = tokenizer.special;
  // The target budget counts eop; fillBlanks' maxTokens does too.
  const maxTokens = Math.max(1, Math.min(input.targetLength, model.positionRows - 2));
  const rule =
    decode.numBeams > 1
      ? { strategy: { kind: 'beam' as const, numBeams: decode.numBeams, lengthPenalty: decode.lengthPenalty, earlyStopping: false } }
      : { choose: vocabularyArgmax(tokenizer.vocabSize) };
  const result = fillBlanks(model, built.context, {
    maskIds: [built.maskId],
    sopId: s.sop,
    eopId: s.eop,
    maxTokens,
    minTokens: Math.min(decode.minTokens, maxTokens - 1),
    noRepeatNgramSize: decode.noRepeatNgramSize,
    ...rule,
  });
  return decodeGenerated(tokenizer, result.blanks[0]!);
}

export interface Seq2seqEvaluation {
  rouge: Record<RougeType, RougeScore>;
  predictions: string[];
}

/** Decodes every example and scores the texts with ROUGE (rouge_score tokenisation, Porter stemming unless `stem: false`). */
export function evaluateSeq2seq(
  model: GlmModel,
  tokenizer: GlmTokenizer,
  examples: readonly Seq2seqExample[],
  options: { input: Seq2seqInputOptions; decode: Seq2seqDecodeOptions; stem?: boolean; onProgress?: (done: number, total: number) => void },
): Seq2seqEvaluation {
  if (examples.length === 0) throw new RangeError('evaluateSeq2seq: no examples');
  const predictions = examples.map((ex, i) => {
    const text = generateSeq2seq(model, tokenizer, ex, options.input, options.decode);
    options.onProgress?.(i + 1, examples.length);
    return text;
  });
  const rouge = corpusRouge(
    examples.map((ex) => splitSentences(ex.target)),
    predictions.map(splitSentences),
    { stem: options.stem ?? true },
  );
  return { rouge, predictions };
}
