// The `cloze` task kind: SuperGLUE-style classification as blank filling (glm-reference §4.1–4.3).
//
// Loss (§4.2), per example, averaged over the batch:
//   single-token verbalizer   L = −log softmax(z)[gold],   z_k = logit of label k's token at the sop
//   multi-token candidates    s_c = Σ_t log p(answer_t) / |answer_c|^lengthPenalty (answer = tokens + eop)
//                             L = −log softmax(s)[gold]   (+ −s_gold with loss "mix", WSC)
//
// Gradient without a per-target-weight backward: GlmModel.backward(targetWeight = w) adds
// w·∇CE_full(target) for every target of the last forward. For the restricted softmax,
//   Σ_k (y_k − q_k)·∇CE_full(label_k) = Σ_k (q_k − y_k)·∇z_k   (the Σ_k (y_k − q_k) ∇lse term is 0)
// so label k's pass backpropagates with w_k = (y_k − q_k)/B — one forward + backward per label, the
// same dropout seed each time (the hidden state is the same in every pass). For candidates,
//   ∇L = Σ_c (q_c − y_c) ∇s_c = Σ_c [(y_c − q_c)/|c|^lp] Σ_t ∇CE_t
// so row c backpropagates with w_c = (y_c − q_c)/(|c|^lp B), after a first pass that computes every
// s_c with the same per-row seeds. Both are the exact gradient of the reference's loss.
import type { GlmModel } from '@blankglm/model-spec';
import { counterHash32 } from '@blankglm/tensor';
import type { LossSums, Objective } from '@blankglm/trainer';
import { accuracy, answerSetScores, binaryF1, groupExactMatch, macroF1 } from '../metrics/classification.js';
import { TaskFileError, type EvaluateOptions, type Metrics, type PreparedTask, type TaskDefinition, type TaskEnv, type TaskKind } from '../tasks/registry.js';
import { clozeTrainingExamples, evalCandidates, loadClozeExamples, type ClozeExample } from './examples.js';
import { candidateIds, candidateRow, encodeContext, clozeRowsToBatch, verbalizerRow, verbalizerTokenIds, type ClozeRow } from './inputs.js';
import { parseClozeTask, type ClozeTask } from './task.js';

/** One example as model rows. */
export interface ClozeItem {
  example: ClozeExample;
  /** Verbalizer: one row (Part A + sop, no target). Candidates: one row per candidate. */
  rows: ClozeRow[];
  /** Index of the right label / candidate (−1: none). */
  gold: number;
  /** Answer lengths (candidate tokens + eop) per row, for length normalisation. */
  answerLengths: number[];
}

export interface ClozeBatch {
  items: ClozeItem[];
}

/** Metric names a cloze task file may list. */
export const CLOZE_METRICS = ['accuracy', 'macro-f1', 'f1a', 'em', 'f1'] as const;

/** A dropout stream label for cloze passes ('clz'). */
const CLOZE_STREAM = 0x636c7a;

function logSoftmax(z: readonly number[]): number[] {
  const m = Math.max(...z);
  const lse = m + Math.log(z.reduce((s, v) => s + Math.exp(v - m), 0));
  return z.map((v) => v - lse);
}

export class PreparedCloze implements PreparedTask<ClozeExample, ClozeBatch> {
  readonly labelTokens: number[] | null;
  readonly objective: Objective<ClozeBatch>;

  constructor(
    readonly task: ClozeTask,
    readonly env: TaskEnv,
  ) {
    this.labelTokens = task.answer.mode === 'verbalizer' ? verbalizerTokenIds(task, env) : null;
    this.objective = {
      targets: (b) => b.items.length,
      tokens: (b) => b.items.reduce((n, it) => n + it.rows.reduce((m, r) => m + r.ids.length, 0), 0),
      trainStep: (model, batch, { seed, targetWeight }) => this.trainStep(model, batch, seed, targetWeight),
      evaluate: (model, batch) => this.evalLoss(model, batch),
    };
  }

  private get lengthPenalty(): number {
    return this.task.answer.mode === 'candidates' ? this.task.answer.lengthPenalty : 0;
  }

  /** Rows of one example; `candidates` defaults to the example's own (evaluation's). */
  item(example: ClozeExample, candidates?: readonly string[]): ClozeItem {
    const { tokenizer, maxLength } = this.env;
    const sp = tokenizer.special;
    if (this.task.answer.mode === 'verbalizer') {
      const context = encodeContext(this.task, example, tokenizer, maxLength, 1);
      return { example, rows: [verbalizerRow(context, sp.sop, -1)], gold: example.gold, answerLengths: [1] };
    }
    const texts = candidates ?? evalCandidates(this.task, example);
    const ids = candidateIds(texts, tokenizer, example, maxLength);
    const context = encodeContext(this.task, example, tokenizer, maxLength, Math.max(...ids.map((c) => c.length)) + 1);
    return { example, rows: ids.map((c) => candidateRow(context, c, sp.sop, sp.eop)), gold: example.gold, answerLengths: ids.map((c) => c.length + 1) };
  }

  buildBatch(examples: readonly ClozeExample[]): ClozeBatch {
    return { items: examples.map((ex) => this.item(ex, ex.candidates ?? undefined)) };
  }

  /** Label logits (verbalizer) or normalised candidate scores of one item, one forward per needed pass. */
  private trainItem(model: GlmModel, item: ClozeItem, seed: number, weight: number): number {
    const sp = this.env.tokenizer.special;
    if (item.gold < 0) throw new RangeError(`${item.example.file}:${item.example.line}: a training example needs a right answer`);
    if (this.labelTokens) {
      const row = item.rows[0]!;
      const labels = this.labelTokens;
      const withTarget = (k: number) => clozeRowsToBatch([{ ...row, targets: [...row.targets.slice(0, -1), labels[k]!], lossMask: [...row.lossMask.slice(0, -1), 1] }], sp.eos);
      const first = model.forward(withTarget(0), { mode: 'train', seed, logitsAt: [{ row: 0, position: row.sep }] });
      const logits = first.logits!.values;
      const logq = logSoftmax(labels.map((t) => logits[t]!));
      const coef = logq.map((lq, k) => weight * ((k === item.gold ? 1 : 0) - Math.exp(lq)));
      model.backward({ targetWeight: coef[0]! });
      for (let k = 1; k < labels.length; k++) {
        if (coef[k] === 0) continue;
        model.forward(withTarget(k), { mode: 'train', seed });
        model.backward({ targetWeight: coef[k]! });
      }
      return -logq[item.gold]!;
    }
    const lp = this.lengthPenalty;
    const rowSeed = (c: number): number => counterHash32(seed, CLOZE_STREAM, c);
    const norm = item.answerLengths.map((n) => n ** lp);
    const scores = item.rows.map((row, c) => {
      const r = model.forward(clozeRowsToBatch([row], sp.eos), { mode: 'train', seed: rowSeed(c), keepActivations: false });
      return r.targets.logProb.reduce((s, v) => s + v, 0) / norm[c]!;
    });
    const logq = logSoftmax(scores);
    const mix = this.task.answer.mode === 'candidates' && this.task.answer.loss === 'mix';
    item.rows.forEach((row, c) => {
      const dScore = (c === item.gold ? 1 : 0) - Math.exp(logq[c]!) + (mix && c === item.gold ? 1 : 0);
      if (dScore === 0) return;
      model.forward(clozeRowsToBatch([row], sp.eos), { mode: 'train', seed: rowSeed(c) });
      model.backward({ targetWeight: (weight * dScore) / norm[c]! });
    });
    return -logq[item.gold]! + (mix ? -scores[item.gold]! : 0);
  }

  private trainStep(model: GlmModel, batch: ClozeBatch, seed: number, targetWeight: number): LossSums {
    let lossSum = 0;
    batch.items.forEach((item, i) => {
      lossSum += this.trainItem(model, item, counterHash32(seed >>> 0, CLOZE_STREAM, i), targetWeight);
    });
    return { lossSum, targets: batch.items.length };
  }

  /** Eval-mode scores of items: per item, label logits or normalised candidate scores. */
  score(model: GlmModel, items: readonly ClozeItem[], rowsPerForward: number, onRows?: (itemsDone: number) => void): number[][] {
    const sp = this.env.tokenizer.special;
    const flat: { item: number; row: ClozeRow }[] = [];
    items.forEach((it, i) => it.rows.forEach((row) => flat.push({ item: i, row })));
    const out: number[][] = items.map(() => []);
    const lp = this.lengthPenalty;
    let itemsDone = 0;
    for (let start = 0; start < flat.length; start += rowsPerForward) {
      const chunk = flat.slice(start, start + rowsPerForward);
      const batch = clozeRowsToBatch(chunk.map((c) => c.row), sp.eos);
      if (this.labelTokens) {
        const r = model.forward(batch, { mode: 'eval', logitsAt: chunk.map((c, b) => ({ row: b, position: c.row.sep })) });
        const { values, vocabSize } = r.logits!;
        chunk.forEach((c, b) => out[c.item]!.push(...this.labelTokens!.map((t) => values[b * vocabSize + t]!)));
      } else {
        const r = model.forward(batch, { mode: 'eval' });
        const sums = new Float64Array(chunk.length);
        for (let t = 0; t < r.targets.row.length; t++) sums[r.targets.row[t]!]! += r.targets.logProb[t]!;
        chunk.forEach((c, b) => {
          const n = items[c.item]!.answerLengths[out[c.item]!.length]!;
          out[c.item]!.push(sums[b]! / n ** lp);
        });
      }
      while (itemsDone < items.length && out[itemsDone]!.length === items[itemsDone]!.rows.length) itemsDone++;
      onRows?.(itemsDone);
    }
    return out;
  }

  private evalLoss(model: GlmModel, batch: ClozeBatch): LossSums {
    const scores = this.score(model, batch.items, 64);
    const mix = this.task.answer.mode === 'candidates' && this.task.answer.loss === 'mix';
    let lossSum = 0;
    batch.items.forEach((it, i) => {
      if (it.gold >= 0) lossSum -= logSoftmax(scores[i]!)[it.gold]! + (mix ? scores[i]![it.gold]! : 0);
    });
    return { lossSum, targets: batch.items.filter((it) => it.gold >= 0).length };
  }

  evaluate(model: GlmModel, examples: readonly ClozeExample[], options: EvaluateOptions): Metrics {
    if (examples.length === 0) throw new RangeError(`${this.task.name}: nothing to evaluate`);
    const items = examples.map((ex) => this.item(ex));
    const scores = this.score(model, items, Math.max(1, options.batchSize), options.onProgress ? (done) => options.onProgress!(done, examples.length) : undefined);
    const predictions = scores.map((s) => s.indexOf(Math.max(...s)));
    return clozeMetrics(this.task, examples, predictions);
  }
}

/** The task's metrics from argmax predictions (indices into labels / candidates). */
export function clozeMetrics(task: ClozeTask, examples: readonly ClozeExample[], predictions: readonly number[]): Metrics {
  const answer = task.answer;
  const labels = answer.labels;
  let predicted: string[];
  let golds: string[];
  let texts: string[] | null = null;
  if (answer.mode === 'verbalizer' || answer.rule.from === 'verbalizer') {
    predicted = predictions.map((p) => labels![p]!);
    golds = examples.map((ex) => ex.label);
  } else if (answer.rule.from === 'span') {
    // WSC: an example is predicted true iff its own span (candidate 0) wins.
    predicted = predictions.map((p) => String(p === 0));
    golds = examples.map((ex) => ex.label);
  } else if (answer.rule.from === 'entities') {
    texts = predictions.map((p, i) => examples[i]!.candidates![p]!);
    predicted = texts;
    golds = examples.map((ex) => ex.answers![0]!);
  } else {
    predicted = predictions.map(String);
    golds = examples.map((ex) => String(ex.gold));
  }
  const out: Metrics = {};
  for (const name of task.metrics) {
    if (name === 'accuracy') out.accuracy = texts ? answerSetScores(texts, examples.map((ex) => ex.answers!)).em : accuracy(predicted, golds);
    else if (name === 'macro-f1') out['macro-f1'] = macroF1(predicted, golds);
    else if (name === 'f1a') out.f1a = binaryF1(predicted, golds, positiveLabel(task));
    else if (name === 'em') out.em = texts ? answerSetScores(texts, examples.map((ex) => ex.answers!)).em : groupExactMatch(predicted, golds, examples.map((ex) => ex.group));
    else if (name === 'f1') {
      if (!texts) throw new Error(`${task.source}: metric 'f1' (token F1 against gold answers) needs "candidates": { "from": "entities" }`);
      out.f1 = answerSetScores(texts, examples.map((ex) => ex.answers!)).f1;
    }
  }
  out.examples = examples.length;
  return out;
}

function positiveLabel(task: ClozeTask): string {
  const v = task.raw.positiveLabel;
  if (typeof v === 'string') return v;
  const labels = task.answer.labels ?? [];
  return labels.includes('1') ? '1' : 'true';
}

export const clozeKind: TaskKind<ClozeTask, ClozeExample, ClozeBatch> = {
  kind: 'cloze',
  summary: 'classification as blank filling: a pattern with one [MASK], a one-token verbalizer or multi-token candidates (SuperGLUE)',
  parseTask(base: TaskDefinition): ClozeTask {
    const task = parseClozeTask(base);
    for (const m of task.metrics) {
      if (!(CLOZE_METRICS as readonly string[]).includes(m)) throw new TaskFileError(task.source, 'metrics', `unknown metric '${m}' for a cloze task; known: ${CLOZE_METRICS.join(', ')}`);
      if (m === 'f1' && !(task.answer.mode === 'candidates' && task.answer.rule.from === 'entities')) {
        throw new TaskFileError(task.source, 'metrics', "'f1' (token F1 against a gold answer set) needs \"candidates\": { \"from\": \"entities\" }");
      }
    }
    return task;
  },
  loadExamples: loadClozeExamples,
  trainingExamples: clozeTrainingExamples,
  prepare: (task, env) => new PreparedCloze(task, env),
};
