// The `cloze` task kind: SuperGLUE-style classification as blank filling (glm-reference §4.1–4.3).
//
// Loss (§4.2), per example, averaged over the batch:
//   single-token verbalizer   L = −log softmax(z)[gold],   z_k = logit of label k's token at the sop
//   multi-token candidates    s_c = Σ_t log p(answer_t) / |answer_c|^lengthPenalty (answer = tokens + eop)
//                             L = −log softmax(s)[gold]   (+ −s_gold with loss "mix", WSC)
//
// One forward + one backward per batch, exact gradients of these losses (tested against central
// differences): every row of the batch (one per example, or one per candidate) goes through one
// train-mode forward, the loss is computed here from what it returns, and its gradient goes back
// through GlmModel.backward —
//   verbalizer   ∂L/∂z_k = (q_k − y_k)/B at the sop logits rows       → backward({ logitsGrad })
//   candidates   ∂L/∂θ = Σ_c [(y_c − q_c + mix·y_c)/|c|^lp] Σ_t ∇CE_t / B → backward({ targetWeights })
// (q = softmax over labels / candidates, y = one-hot of the right one).
import type { GlmModel } from '@blankglm/model-spec';
import { counterHash32 } from '@blankglm/tensor';
import type { LossSums, Objective } from '@blankglm/trainer';
import { accuracy, answerSetScores, binaryF1, groupExactMatch, macroF1 } from '../metrics/classification.js';
import { TaskFileError, type EvaluateOptions, type Metrics, type PreparedTask, type TaskDefinition, type TaskEnv, type TaskKind } from '../tasks/registry.js';
import { clozeTrainingExamples, evalCandidates, loadClozeExamples, type ClozeExample } from './examples.js';
import { candidateIds, candidateRow, encodeContext, clozeRowsToBatch, verbalizerRow, verbalizerTokenIds, type ClozeRow } from './inputs.js';
import { parseClozeTask, type ClozeTask } from './task.js';
import { PreparedClassifier } from './classifier.js';

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

  /** One forward + one backward over every row of the batch; returns the summed loss. */
  private trainStep(model: GlmModel, batch: ClozeBatch, seed: number, weight: number): LossSums {
    const sp = this.env.tokenizer.special;
    for (const item of batch.items) {
      if (item.gold < 0) throw new RangeError(`${item.example.file}:${item.example.line}: a training example needs a right answer`);
    }
    const rows = batch.items.flatMap((it) => it.rows);
    const input = clozeRowsToBatch(rows, sp.eos);
    const trainSeed = counterHash32(seed >>> 0, CLOZE_STREAM, 0);
    let lossSum = 0;
    if (this.labelTokens) {
      const labels = this.labelTokens;
      const r = model.forward(input, { mode: 'train', seed: trainSeed, logitsAt: rows.map((row, b) => ({ row: b, position: row.sep })) });
      const { values, vocabSize } = r.logits!;
      const logitsGrad = new Float32Array(values.length); // [B, V], nonzero only at the label tokens
      batch.items.forEach((item, b) => {
        const logq = logSoftmax(labels.map((t) => values[b * vocabSize + t]!));
        labels.forEach((t, k) => {
          logitsGrad[b * vocabSize + t] = weight * (Math.exp(logq[k]!) - (k === item.gold ? 1 : 0));
        });
        lossSum -= logq[item.gold]!;
      });
      model.backward({ logitsGrad, targetWeight: 0 });
      return { lossSum, targets: batch.items.length };
    }
    const lp = this.lengthPenalty;
    const mix = this.task.answer.mode === 'candidates' && this.task.answer.loss === 'mix';
    const r = model.forward(input, { mode: 'train', seed: trainSeed });
    const rowScores = new Float64Array(rows.length); // Σ_t log p over each row's targets
    for (let t = 0; t < r.targets.row.length; t++) rowScores[r.targets.row[t]!]! += r.targets.logProb[t]!;
    const rowWeight = new Float32Array(rows.length); // the weight of each of the row's target losses
    let first = 0;
    for (const item of batch.items) {
      const norm = item.answerLengths.map((n) => n ** lp);
      const scores = item.rows.map((_, c) => rowScores[first + c]! / norm[c]!);
      const logq = logSoftmax(scores);
      item.rows.forEach((_, c) => {
        const y = c === item.gold ? 1 : 0;
        rowWeight[first + c] = (weight * (y - Math.exp(logq[c]!) + (mix ? y : 0))) / norm[c]!;
      });
      lossSum += -logq[item.gold]! + (mix ? -scores[item.gold]! : 0);
      first += item.rows.length;
    }
    model.backward({ targetWeights: Float32Array.from(r.targets.row, (b) => rowWeight[b]!) });
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
  prepare: (task, env): PreparedTask<ClozeExample, ClozeBatch> =>
    task.head === 'classifier'
      ? (new PreparedClassifier(task, env, task.classifierInput, task.headSeed) as unknown as PreparedTask<ClozeExample, ClozeBatch>)
      : new PreparedCloze(task, env),
};

/** The task with another head (the CLI's `--head`): 'classifier' for glm-reference §4.5's ablation. */
export function withHead(task: TaskDefinition, head: 'cloze' | 'classifier'): ClozeTask {
  if (task.kind !== 'cloze') throw new Error(`${task.source}: a head applies to cloze tasks; '${task.name}' is a '${task.kind}' task`);
  return clozeKind.parseTask({ ...task, raw: { ...task.raw, head } });
}
