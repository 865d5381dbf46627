// The `seq2seq` task kind: summarisation and question generation fine-tuning with label smoothing,
// evaluated by beam-search decoding and ROUGE. Task-file fields (all optional; defaults = the
// reference's CNN/DM settings where it has them):
//   format            'summarization' | 'question-generation'         (summarization)
//   sourceLength      longest Part A                                  (608)
//   targetLength      longest target incl. eop                         (160)
//   minTargetLength   fewest generated tokens                          (0)
//   numBeams          beams (1 = greedy)                               (5)
//   lengthPenalty     beam score Σ log p / len^lengthPenalty           (0.7)
//   noRepeatNgram     no-repeat n-gram size, 0 = off                   (3)
//   padPartA          pad Part A with attended pads, as the reference  (false)
//   maskToken         'sMask' | 'mask' | 'gMask'  (summarization sMask, question generation mask)
//   stem              Porter stemming in ROUGE                         (true)
//   maxEvalExamples   decode only the first n validation examples (0 = all)
// Label smoothing is hyperparameters.labelSmoothing (the reference: 0.1).
import type { GlmBatch } from '@blankglm/tensor';
import { blankInfillingObjective } from '@blankglm/trainer';
import { booleanField, checkMetrics, enumField, numberField } from '../lm/fields.js';
import { rowsToBatch } from '../lm/rows.js';
import type { TaskDefinition, TaskKind } from '../tasks/registry.js';
import { readSeq2seqSplit } from './data.js';
import { buildSeq2seqInput, buildSeq2seqRow, type Seq2seqExample, type Seq2seqFormat, type Seq2seqInputOptions, type Seq2seqMaskToken } from './format.js';
import { evaluateSeq2seq, type Seq2seqDecodeOptions } from './generate.js';

export interface Seq2seqTask extends TaskDefinition {
  input: Seq2seqInputOptions;
  decode: Seq2seqDecodeOptions;
  stem: boolean;
  maxEvalExamples: number;
}

export const SEQ2SEQ_METRICS = ['rouge1', 'rouge2', 'rougeL', 'rougeLsum', 'rouge-avg'];

export const seq2seqTaskKind: TaskKind<Seq2seqTask, Seq2seqExample, GlmBatch> = {
  kind: 'seq2seq',
  summary: 'Summarisation / question generation: label-smoothed fine-tuning, beam search, ROUGE',
  parseTask(base) {
    checkMetrics(base, SEQ2SEQ_METRICS);
    const format = enumField<Seq2seqFormat>(base, 'format', ['summarization', 'question-generation'], 'summarization');
    const maskToken = enumField<Seq2seqMaskToken>(base, 'maskToken', ['sMask', 'mask', 'gMask'], format === 'summarization' ? 'sMask' : 'mask');
    return {
      ...base,
      input: {
        format,
        sourceLength: numberField(base, 'sourceLength', 608, { integer: true, min: 4 }),
        targetLength: numberField(base, 'targetLength', 160, { integer: true, min: 1 }),
        padPartA: booleanField(base, 'padPartA', false),
        maskToken,
      },
      decode: {
        numBeams: numberField(base, 'numBeams', 5, { integer: true, min: 1 }),
        lengthPenalty: numberField(base, 'lengthPenalty', 0.7),
        minTokens: numberField(base, 'minTargetLength', 0, { integer: true, min: 0 }),
        noRepeatNgramSize: numberField(base, 'noRepeatNgram', 3, { integer: true, min: 0 }),
      },
      stem: booleanField(base, 'stem', true),
      maxEvalExamples: numberField(base, 'maxEvalExamples', 0, { integer: true, min: 0 }),
    };
  },
  loadExamples: (task, file) => readSeq2seqSplit(file, task.input.format === 'question-generation'),
  trainingExamples: (_task, examples) => [...examples],
  prepare(task, env) {
    // Part A and the target must fit the model's positions: Part A ≤ maxLength − 1 … and the target too.
    const input: Seq2seqInputOptions = {
      ...task.input,
      sourceLength: Math.min(task.input.sourceLength, env.maxLength - 1),
      targetLength: Math.min(task.input.targetLength, env.maxLength - 2),
    };
    const sop = env.tokenizer.special.sop;
    return {
      buildBatch: (examples) => rowsToBatch(examples.map((ex) => buildSeq2seqRow(buildSeq2seqInput(env.tokenizer, ex, input), sop)), env.tokenizer.special.pad),
      objective: blankInfillingObjective({ labelSmoothing: task.hyperparameters.labelSmoothing }),
      evaluate(model, examples, options) {
        const chosen = task.maxEvalExamples > 0 ? examples.slice(0, task.maxEvalExamples) : examples;
        const r = evaluateSeq2seq(model, env.tokenizer, chosen, { input, decode: task.decode, stem: task.stem, ...(options.onProgress ? { onProgress: options.onProgress } : {}) });
        const f = (t: keyof typeof r.rouge): number => r.rouge[t].fmeasure;
        return { rouge1: f('rouge1'), rouge2: f('rouge2'), rougeL: f('rougeL'), rougeLsum: f('rougeLsum'), 'rouge-avg': (f('rouge1') + f('rouge2') + f('rougeL')) / 3, examples: chosen.length };
      },
    };
  },
};
