// The zero-shot language-modelling task kinds: `lambada` (last-word accuracy), `wikitext`
// (perplexity with overlapping windows) and `multichoice` (Σ log p per choice). LAMBADA and
// multiple choice can also be fine-tuned (the loss is on the last word / the right choice);
// WikiText is evaluation only.
import { readFileSync } from 'node:fs';
import type { GlmBatch } from '@blankglm/tensor';
import { blankInfillingObjective } from '@blankglm/trainer';
import { readJsonl } from '../data/jsonl.js';
import { DataFileError, type TaskDefinition, type TaskKind } from '../tasks/registry.js';
import { checkMetrics, enumField, numberField } from './fields.js';
import { buildLambadaRow, evaluateLambada, parseLambadaRow, type LambadaExample, type LmMaskToken, type LmProtocol } from './lambada.js';
import { buildMultipleChoiceRows, evaluateMultipleChoice, parseMultipleChoiceRow, type MultipleChoiceExample } from './multichoice.js';
import { rowsToBatch } from './rows.js';
import { evaluateWikitext } from './wikitext.js';

const PROTOCOLS: readonly LmProtocol[] = ['bidirectional', 'unidirectional'];
const MASKS: readonly LmMaskToken[] = ['mask', 'gMask'];

export interface LambadaTask extends TaskDefinition {
  protocol: LmProtocol;
  maskToken: LmMaskToken;
}

export const lambadaTaskKind: TaskKind<LambadaTask, LambadaExample, GlmBatch> = {
  kind: 'lambada',
  summary: 'LAMBADA last-word accuracy, bidirectional or left-to-right (zero-shot)',
  parseTask(base) {
    checkMetrics(base, ['accuracy', 'last-word-nll']);
    return { ...base, protocol: enumField(base, 'protocol', PROTOCOLS, 'bidirectional'), maskToken: enumField(base, 'maskToken', MASKS, 'mask') };
  },
  loadExamples(_task, file) {
    return readJsonl(file, ({ value, line }, problems) => {
      const ex = parseLambadaRow(value, line, problems);
      return ex ? [ex] : [];
    });
  },
  trainingExamples: (_task, examples) => [...examples],
  prepare(task, env) {
    const rowOptions = { protocol: task.protocol, maskToken: task.maskToken, maxLength: env.maxLength };
    return {
      buildBatch: (examples) => rowsToBatch(examples.map((ex) => buildLambadaRow(env.tokenizer, ex, rowOptions)), env.tokenizer.special.pad),
      objective: blankInfillingObjective(),
      evaluate(model, examples, options) {
        const r = evaluateLambada(model, env.tokenizer, examples, { ...rowOptions, batchSize: options.batchSize, ...(options.onProgress ? { onProgress: options.onProgress } : {}) });
        return { accuracy: r.accuracy, 'last-word-nll': r.lastWordNll, examples: r.examples };
      },
    };
  },
};

export interface WikitextTask extends TaskDefinition {
  protocol: LmProtocol;
  maskToken: LmMaskToken;
  /** Sequence length S of the windows (the reference: 1024 for WikiText-103, 512 for BookWiki); capped by the model. */
  seqLength: number;
  overlap: number;
  /** Evaluate only the first this many tokens (0: all). */
  maxTokens: number;
}

/** A WikiText split: the raw `.tokens` text of one file. */
export interface WikitextDocument {
  file: string;
  raw: string;
}

export const wikitextTaskKind: TaskKind<WikitextTask, WikitextDocument, never> = {
  kind: 'wikitext',
  summary: 'WikiText perplexity with overlapping windows, token- and word-normalised (zero-shot)',
  parseTask(base) {
    checkMetrics(base, ['perplexity', 'adjusted-perplexity', 'loss']);
    return {
      ...base,
      protocol: enumField(base, 'protocol', PROTOCOLS, 'bidirectional'),
      maskToken: enumField(base, 'maskToken', MASKS, 'gMask'),
      seqLength: numberField(base, 'seqLength', 1024, { integer: true, min: 8 }),
      overlap: numberField(base, 'overlap', 256, { integer: true, min: 1 }),
      maxTokens: numberField(base, 'maxTokens', 0, { integer: true, min: 0 }),
    };
  },
  loadExamples(_task, file) {
    let raw: string;
    try {
      raw = readFileSync(file, 'utf8');
    } catch (e) {
      throw new DataFileError(file, [], `${file}: cannot read: ${(e as Error).message}`);
    }
    if (raw.trim() === '') throw new DataFileError(file, [], `${file}: the file is empty; expected WikiText .tokens text`);
    return [{ file, raw }];
  },
  trainingExamples(task) {
    throw new RangeError(`${task.name}: task kind 'wikitext' is zero-shot evaluation only; use 'blankglm evaluate'`);
  },
  prepare(task, env) {
    // Windows are S + 1 tokens long (Part A + Part B); positions must stay inside the model's table.
    const seqLength = Math.min(task.seqLength, env.config.max_sequence_length);
    // A model with fewer positions than the task's windows gets shorter windows with the same
    // overlap fraction (the reference: 256 of 1024), so that each window still has context.
    const overlap = seqLength < task.seqLength ? Math.max(1, Math.round((task.overlap * seqLength) / task.seqLength)) : task.overlap;
    if (overlap > seqLength - 2) {
      throw new RangeError(`${task.source}: overlap ${overlap} must be below the window length − 1 (${seqLength - 2}) for sequence length ${seqLength}`);
    }
    return {
      buildBatch() {
        throw new RangeError(`${task.name}: task kind 'wikitext' is zero-shot evaluation only`);
      },
      objective: {
        targets: () => 0,
        tokens: () => 0,
        trainStep() {
          throw new RangeError(`${task.name}: task kind 'wikitext' is zero-shot evaluation only`);
        },
        evaluate() {
          throw new RangeError(`${task.name}: task kind 'wikitext' is zero-shot evaluation only`);
        },
      },
      evaluate(model, documents, options) {
        let nll = 0;
        let tokens = 0;
        let words = 0;
        let windows = 0;
        for (const doc of documents) {
          const r = evaluateWikitext(model, env.tokenizer, doc.raw, {
            seqLength, overlap, protocol: task.protocol, maskToken: task.maskToken, batchSize: options.batchSize,
            ...(task.maxTokens > 0 ? { maxTokens: task.maxTokens } : {}),
            ...(options.onProgress ? { onProgress: options.onProgress } : {}),
          });
          nll += r.loss * (r.tokens - 1);
          tokens += r.tokens - 1;
          words += r.words - 1;
          windows += r.windows;
        }
        return { perplexity: Math.exp(nll / tokens), 'adjusted-perplexity': Math.exp(nll / words), loss: nll / tokens, tokens: tokens + documents.length, windows, 'seq-length': seqLength, overlap, examples: documents.length };
      },
    };
  },
};

export interface MultipleChoiceTask extends TaskDefinition {}

export const multichoiceTaskKind: TaskKind<MultipleChoiceTask, MultipleChoiceExample, GlmBatch> = {
  kind: 'multichoice',
  summary: 'Zero-shot multiple choice: Σ log p of each choice in the blank (T0/P3 JSONL)',
  parseTask(base) {
    checkMetrics(base, ['accuracy']);
    return base;
  },
  loadExamples(_task, file) {
    return readJsonl(file, ({ value, line }, problems) => {
      const ex = parseMultipleChoiceRow(value, line, problems);
      return ex ? [ex] : [];
    });
  },
  trainingExamples: (_task, examples) => [...examples],
  prepare(_task, env) {
    return {
      // Training: the right choice's tokens in the blank (a plain NLL of the gold answer).
      buildBatch: (examples) =>
        rowsToBatch(examples.map((ex) => buildMultipleChoiceRows(env.tokenizer, ex, env.maxLength)[ex.label]!), env.tokenizer.special.pad),
      objective: blankInfillingObjective(),
      evaluate(model, examples, options) {
        const r = evaluateMultipleChoice(model, env.tokenizer, examples, { maxLength: env.maxLength, batchSize: options.batchSize, ...(options.onProgress ? { onProgress: options.onProgress } : {}) });
        return { accuracy: r.accuracy, examples: r.examples };
      },
    };
  },
};
