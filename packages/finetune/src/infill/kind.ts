// The `infill` task kind: text infilling fine-tuning and BLEU evaluation. Data:
//   JSONL  {"text": "..."}                      a text; blanks are drawn at maskRatio (seeded by line)
//          {"text": "...", "masked": "... [MASK] ..."}   pre-made blanks ([MASK] or <blank>) for evaluation
//   .txt   one text per line (the BLM layout's train.txt / valid.txt / test.txt)
//   .blank BLM's pre-made test blanks (`test.maskratio0.3.blank`: one masked text per line, `<blank>`
//          per blank), the originals read from `<split>.txt` beside it (`test.txt`)
// Task-file fields: maskRatio (0.3; the paper reports 0.1–0.5), maskSeed (1), maxTokensPerBlank (64),
// noRepeatNgram (3). Label smoothing is hyperparameters.labelSmoothing (the reference: 0.1).
import { existsSync, readFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { GlmBatch } from '@blankglm/tensor';
import { blankInfillingObjective } from '@blankglm/trainer';
import { readJsonl } from '../data/jsonl.js';
import { checkMetrics, numberField } from '../lm/fields.js';
import { rowsToBatch } from '../lm/rows.js';
import { DataFileError, type DataProblem, type TaskDefinition, type TaskKind } from '../tasks/registry.js';
import { buildInfillRow, evaluateInfill, maskedWords, maskRng, maskWords, parseMaskedText, type InfillExample, type InfillTestExample } from './infill.js';

export interface InfillTask extends TaskDefinition {
  maskRatio: number;
  maskSeed: number;
  maxTokensPerBlank: number;
  noRepeatNgram: number;
}

/** One text of a split, with its blanks once they are known. */
export interface InfillItem {
  line: number;
  text: string;
  /** Pre-made blanks (evaluation files), else null: drawn at the task's ratio. */
  masked: Array<string | null> | null;
}

function splitLines(file: string): string[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new DataFileError(file, [], `${file}: cannot read: ${(e as Error).message}`);
  }
  const lines = text.replace(/\r\n?/g, '\n').split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  return lines;
}

/** Reads an infilling split (see the file comment for the formats). */
export function readInfillSplit(file: string): InfillItem[] {
  if (file.endsWith('.blank')) {
    const split = basename(file).split('.')[0]!;
    const originals = join(dirname(file), `${split}.txt`);
    if (!existsSync(originals)) throw new DataFileError(file, [], `${file}: BLM blanks need the original texts in ${originals}, which does not exist`);
    const masked = splitLines(file);
    const texts = splitLines(originals);
    if (masked.length !== texts.length) throw new DataFileError(file, [], `${file} has ${masked.length} lines but ${originals} has ${texts.length}; they must be line-aligned`);
    const problems: DataProblem[] = [];
    const out: InfillItem[] = [];
    masked.forEach((m, i) => {
      const words = parseMaskedText(m);
      if (!words.includes(null)) problems.push({ line: i + 1, message: 'no <blank> or [MASK] in the line' });
      else out.push({ line: i + 1, text: texts[i]!, masked: words });
    });
    if (problems.length) throw new DataFileError(file, problems);
    if (out.length === 0) throw new DataFileError(file, [], `${file}: the split is empty`);
    return out;
  }
  if (file.endsWith('.txt')) {
    const problems: DataProblem[] = [];
    const out: InfillItem[] = [];
    splitLines(file).forEach((t, i) => {
      if (t.trim() === '') return;
      if (t.trim().split(/\s+/).length < 2) problems.push({ line: i + 1, message: 'a text needs at least 2 words to have something to blank' });
      else out.push({ line: i + 1, text: t.trim(), masked: null });
    });
    if (problems.length) throw new DataFileError(file, problems);
    if (out.length === 0) throw new DataFileError(file, [], `${file}: the split is empty`);
    return out;
  }
  return readJsonl(file, ({ value, line }, problems) => {
    if (typeof value.text !== 'string' || value.text.trim().split(/\s+/).length < 2) problems.push(`field 'text' must be a string of at least 2 words`);
    let masked: Array<string | null> | null = null;
    if (value.masked !== undefined) {
      if (typeof value.masked !== 'string') problems.push(`field 'masked' must be a string with [MASK] or <blank> per blank`);
      else {
        masked = parseMaskedText(value.masked);
        if (!masked.includes(null)) problems.push(`field 'masked' has no [MASK] or <blank>`);
      }
    }
    return problems.length ? [] : [{ line, text: (value.text as string).trim(), masked }];
  });
}

export const INFILL_METRICS = ['bleu', 'bleu-1', 'bleu-2', 'bleu-3', 'bleu-4', 'brevity-penalty'];

export const infillTaskKind: TaskKind<InfillTask, InfillItem, GlmBatch> = {
  kind: 'infill',
  summary: 'Text infilling: blanks of whole words, filled left to right, BLEU',
  parseTask(base) {
    checkMetrics(base, INFILL_METRICS);
    const maskRatio = numberField(base, 'maskRatio', 0.3, { min: 0.01, max: 0.99 });
    return {
      ...base,
      maskRatio,
      maskSeed: numberField(base, 'maskSeed', 1, { integer: true, min: 0 }),
      maxTokensPerBlank: numberField(base, 'maxTokensPerBlank', 64, { integer: true, min: 1 }),
      noRepeatNgram: numberField(base, 'noRepeatNgram', 3, { integer: true, min: 0 }),
    };
  },
  loadExamples: (_task, file) => readInfillSplit(file),
  trainingExamples: (_task, items) => [...items],
  prepare(task, env) {
    // Training blanks: drawn per text from (maskSeed, line), so they do not depend on data order
    // (the reference redraws them every epoch). Pre-made blanks are used as they are.
    const training = (item: InfillItem): InfillExample => {
      if (item.masked) return fromMasked(item);
      return maskWords(item.text, task.maskRatio, maskRng(task.maskSeed, item.line), item.line);
    };
    const testExample = (item: InfillItem): InfillTestExample => ({
      line: item.line,
      text: item.text,
      masked: item.masked ?? maskedWords(maskWords(item.text, task.maskRatio, maskRng(task.maskSeed ^ 0x7e57, item.line), item.line)),
    });
    return {
      buildBatch: (items) => rowsToBatch(items.map((it) => buildInfillRow(env.tokenizer, training(it), env.maxLength)), env.tokenizer.special.pad),
      objective: blankInfillingObjective({ labelSmoothing: task.hyperparameters.labelSmoothing }),
      evaluate(model, items, options) {
        const r = evaluateInfill(model, env.tokenizer, items.map(testExample), {
          maxTokensPerBlank: task.maxTokensPerBlank, noRepeatNgramSize: task.noRepeatNgram,
          ...(options.onProgress ? { onProgress: options.onProgress } : {}),
        });
        const p = r.bleu.precisions;
        return { bleu: r.bleu.bleu, 'bleu-1': p[0], 'bleu-2': p[1], 'bleu-3': p[2], 'bleu-4': p[3], 'brevity-penalty': r.bleu.brevityPenalty, examples: items.length };
      },
    };
  },
};

/**
 * Training spans from a pre-masked text: the original's words are aligned to the masked words
 * (each blank takes the words between its neighbours). Fails clearly when they do not align.
 */
function fromMasked(item: InfillItem): InfillExample {
  const words = item.text.split(/\s+/).filter((w) => w.length > 0);
  const masked = item.masked!;
  const blanks: Array<[number, number]> = [];
  let i = 0;
  for (let k = 0; k < masked.length; k++) {
    const w = masked[k];
    if (w !== null) {
      if (words[i] !== w) throw new RangeError(`line ${item.line}: the masked text does not match the text at word ${i + 1} ('${w}' vs '${words[i] ?? 'end of text'}')`);
      i++;
      continue;
    }
    // The blank runs up to the next kept word (or the end).
    const nextWord = masked.slice(k + 1).find((x): x is string => x !== null);
    const start = i;
    if (nextWord === undefined) i = words.length;
    else while (i < words.length && words[i] !== nextWord) i++;
    if (i === start) throw new RangeError(`line ${item.line}: blank ${blanks.length + 1} covers no words of the text`);
    blanks.push([start, i]);
  }
  return { line: item.line, words, blanks };
}
