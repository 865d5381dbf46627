// Shared test fixtures: BERT-vocab special ids (as GLM-Base/Large use them) and real-looking
// random windows: word ids with sentence ends at natural rates, documents ending with eos.
import { Rng, glmKeyRanges } from '@blankglm/tensor';
import { padSamples, type CorruptionTokens, type GlmSample } from '../src/index.js';

export const tokens: CorruptionTokens = {
  cls: 101,
  eos: 0,
  pad: 0,
  mask: 103,
  sMask: 30525,
  gMask: 30524,
  sop: 30522,
  eop: 30523,
  dBlock: 30526,
};

export const PERIOD = 1012;
export const QUESTION = 1029;
export const COMMA = 1010;
export const sentenceEnd = new Uint8Array(30527);
sentenceEnd[PERIOD] = 1;
sentenceEnd[QUESTION] = 1;

/** A document of `length` ids: words from 1996..29611, commas, sentences of ~5–40 tokens. */
export function randomDocument(length: number, rng: Rng): Int32Array {
  const doc = new Int32Array(length);
  let untilEnd = rng.intBetween(5, 40);
  for (let i = 0; i < length; i++) {
    if (--untilEnd === 0) {
      doc[i] = rng.float() < 0.9 ? PERIOD : QUESTION;
      untilEnd = rng.intBetween(5, 40);
    } else {
      doc[i] = rng.float() < 0.06 ? COMMA : rng.intBetween(1996, 29611);
    }
  }
  return doc;
}

/** A window `[CLS] doc₁ eos doc₂ eos …` of exactly `length` tokens with the given number of documents. */
export function randomWindow(length: number, documents: number, rng: Rng): Int32Array {
  const room = length - 1 - documents; // tokens for the document bodies
  if (room < documents) throw new RangeError(`window of ${length} cannot hold ${documents} documents`);
  const weights = Array.from({ length: documents }, () => 0.2 + rng.float());
  const total = weights.reduce((a, b) => a + b, 0);
  const lengths = weights.map((w) => 1 + Math.floor(((room - documents) * w) / total));
  lengths[documents - 1]! += room - lengths.reduce((a, b) => a + b, 0);
  const text = new Int32Array(length);
  text[0] = tokens.cls;
  let at = 1;
  for (const len of lengths) {
    text.set(randomDocument(len, rng), at);
    at += len;
    text[at++] = tokens.eos;
  }
  return text;
}

/** Rebuilds the original text from a sample (Part A with the Part-B targets put back). */
export function reconstruct(sample: GlmSample): number[] {
  const { inputIds, targetIds, sep, objective } = sample;
  if (objective === 'mlm') return Array.from(targetIds);
  if (objective === 'clm') return [inputIds[0]!, ...targetIds];
  if (objective === 'document-prefix') return [...inputIds.subarray(0, sep - 1), ...targetIds.subarray(sep)];
  const byMask = new Map(sample.spans.map((s) => [s.maskIndex, s]));
  const out: number[] = [];
  for (let a = 0; a < sep; a++) {
    const span = byMask.get(a);
    if (!span) {
      out.push(inputIds[a]!);
      continue;
    }
    const len = span.end - span.start;
    out.push(...targetIds.subarray(span.partBStart, span.partBStart + len));
  }
  return out;
}

/** The key ranges of one sample (padded to itself). */
export function sampleKeyRanges(sample: GlmSample) {
  return glmKeyRanges(padSamples([sample]));
}
