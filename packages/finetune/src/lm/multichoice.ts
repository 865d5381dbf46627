// Zero-shot multiple choice (glm-reference §4.9, the original's `multichoice` task, T0/P3-style data):
//
//   data    JSONL {"inputs_pretokenized": str, "choices_pretokenized": [str, …], "label": int}
//   input   `[MASK]` is appended (after a space) when the input has none; Part A = [CLS] input [eos]
//           with the LAST [MASK] as the blank (`[MASK]` typed in the input is parsed as the token)
//   choice  Part B = [sop] c[:-1] → targets c (c = the choice's tokens, no eop), at the mask's position
//   score   Σ log p(c) (no length normalisation); prediction = argmax; metric: accuracy
import type { GlmModel } from '@blankglm/model-spec';
import type { GlmTokenizer } from '@blankglm/tokenizer';
import { appendSpan, partA, type GlmRow } from './rows.js';
import { scoreRows } from './score.js';

export interface MultipleChoiceExample {
  line: number;
  input: string;
  choices: string[];
  label: number;
}

export function parseMultipleChoiceRow(value: Record<string, unknown>, line: number, problems: string[]): MultipleChoiceExample | null {
  const input = value.inputs_pretokenized;
  const choices = value.choices_pretokenized;
  const label = value.label;
  if (typeof input !== 'string' || input.trim() === '') problems.push(`field 'inputs_pretokenized' must be a non-empty string`);
  if (!Array.isArray(choices) || choices.length < 2 || !choices.every((c) => typeof c === 'string' && c.trim() !== '')) {
    problems.push(`field 'choices_pretokenized' must be a list of at least 2 non-empty strings`);
  }
  if (typeof label !== 'number' || !Number.isInteger(label)) problems.push(`field 'label' must be a whole number (the index of the right choice)`);
  else if (Array.isArray(choices) && (label < 0 || label >= choices.length)) problems.push(`label ${label} is not an index of choices_pretokenized (0..${choices.length - 1})`);
  if (problems.length) return null;
  return { line, input: input as string, choices: choices as string[], label: label as number };
}

/** One row per choice. */
export function buildMultipleChoiceRows(tokenizer: GlmTokenizer, ex: MultipleChoiceExample, maxLength: number): GlmRow[] {
  const s = tokenizer.special;
  const text = /\[MASK\]/.test(ex.input) ? ex.input : `${ex.input} [MASK]`;
  let body = tokenizer.encodeIds(text, { parseSpecialTokens: true });
  const choiceTokens = ex.choices.map((c, i) => {
    const t = tokenizer.encodeIds(c);
    if (t.length === 0) throw new RangeError(`line ${ex.line}: choice ${i} ('${c}') has no tokens`);
    return t;
  });
  const longest = Math.max(...choiceTokens.map((t) => t.length));
  // Keep the mask: cut tokens from the left of the input when it is too long.
  const room = maxLength - 2 - longest;
  if (room < 1) throw new RangeError(`line ${ex.line}: a choice has ${longest} tokens; no room for the input in ${maxLength}`);
  if (body.length > room) body = body.slice(body.length - room);
  const ids = [s.cls, ...body, s.eos];
  const maskPos = ids.lastIndexOf(s.mask);
  if (maskPos < 0) throw new RangeError(`line ${ex.line}: the input lost its [MASK] when cut to ${maxLength} tokens`);
  return choiceTokens.map((c) => {
    const row = partA(ids);
    appendSpan(row, s.sop, maskPos, c);
    return row;
  });
}

export interface MultipleChoiceResult {
  accuracy: number;
  examples: number;
  /** Predicted choice per example. */
  predictions: number[];
}

export function evaluateMultipleChoice(
  model: GlmModel,
  tokenizer: GlmTokenizer,
  examples: readonly MultipleChoiceExample[],
  options: { maxLength: number; batchSize: number; onProgress?: (done: number, total: number) => void },
): MultipleChoiceResult {
  if (examples.length === 0) throw new RangeError('evaluateMultipleChoice: no examples');
  const perExample = examples.map((ex) => buildMultipleChoiceRows(tokenizer, ex, options.maxLength));
  const rows = perExample.flat();
  const scores = scoreRows(model, rows, {
    batchSize: options.batchSize,
    padId: tokenizer.special.pad,
    ...(options.onProgress ? { onProgress: (done: number, total: number) => options.onProgress!(Math.floor((done / total) * examples.length), examples.length) } : {}),
  });
  let k = 0;
  let right = 0;
  const predictions = perExample.map((choiceRows, i) => {
    let best = 0;
    let bestScore = -Infinity;
    for (let c = 0; c < choiceRows.length; c++) {
      const score = scores[k++]!.logProbs.reduce((a, b) => a + b, 0);
      if (score > bestScore) {
        bestScore = score;
        best = c;
      }
    }
    if (best === examples[i]!.label) right++;
    return best;
  });
  return { accuracy: right / examples.length, examples: examples.length, predictions };
}
