// The classifier-head alternative to cloze fine-tuning (glm-reference §4.5, the paper's
// "– cloze finetune" ablation), as HF's GLMForSequenceClassification:
//
//   input  [CLS] a [SEP] b [eos]      sep = full length (fully bidirectional, no Part B)
//   h      final hidden state (after the final LayerNorm) at [CLS]                 [B, H]
//   head   dropout → dense (H→H) → tanh → dropout → out_proj (H→num_labels)      [B, N]
//   loss   cross-entropy over the labels, averaged over the batch
//
// The head is tiny, so it lives on the host (TypeScript math, f64 accumulation); the transformer
// gets ∂L/∂h through GlmModel.backward({ hiddenGrad }). One forward + one backward per batch. The
// head has its own AdamW state and steps with the model's learning rate after every update; its
// gradient is clipped on its own (global norm over the head's four tensors), not together with the
// model's. Parameters are named as the HF port: dense.weight [H, H], dense.bias [H],
// out_proj.weight [N, H], out_proj.bias [N]; saved beside the checkpoint as classifier-head.safetensors.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { readSafetensors, writeSafetensors, type GlmModel } from '@blankglm/model-spec';
import { counterHash32, counterUniform, Rng } from '@blankglm/tensor';
import type { LossSums, Objective } from '@blankglm/trainer';
import type { GlmBatch } from '@blankglm/tensor';
import type { EvaluateOptions, Hyperparameters, Metrics, PreparedTask, TaskEnv } from '../tasks/registry.js';
import type { ClozeExample } from './examples.js';
import { clozeMetrics } from './kind.js';
import { renderPattern, type PatternPart } from './pattern.js';
import type { ClozeTask } from './task.js';

/** The file the head is saved in, beside the checkpoint's weights. */
export const CLASSIFIER_HEAD_FILE = 'classifier-head.safetensors';

/** Dropout streams of the head's two sites ('clh' + site). */
const HEAD_STREAM = 0x636c6800;

export interface HeadForward {
  logits: Float64Array; // [B, N]
  /** What backward needs: the dropped-out inputs of both linears, tanh output, masks' scales. */
  x1: Float64Array; // [B, H] dropout(h)
  t: Float64Array; // [B, H] tanh(dense(x1))
  x2: Float64Array; // [B, H] dropout(t)
  scale1: Float64Array; // [B, H] 0 or 1/(1−p)
  scale2: Float64Array; // [B, H]
  rows: number;
}

/** `tanh(Linear(h,h))` → dropout → `Linear(h, num_labels)` with dropout before dense, on the host. */
export class ClassifierHead {
  readonly params: Map<string, Float32Array>;
  readonly grads: Map<string, Float64Array>;
  private readonly m: Map<string, Float64Array>;
  private readonly v: Map<string, Float64Array>;
  private steps = 0;

  constructor(
    readonly hidden: number,
    readonly numLabels: number,
    rng: Rng,
    initializerRange = 0.02,
  ) {
    const H = hidden;
    const N = numLabels;
    this.params = new Map([
      ['dense.weight', Float32Array.from({ length: H * H }, () => rng.normal(0, initializerRange))],
      ['dense.bias', new Float32Array(H)],
      ['out_proj.weight', Float32Array.from({ length: N * H }, () => rng.normal(0, initializerRange))],
      ['out_proj.bias', new Float32Array(N)],
    ]);
    this.grads = new Map([...this.params].map(([k, p]) => [k, new Float64Array(p.length)]));
    this.m = new Map([...this.params].map(([k, p]) => [k, new Float64Array(p.length)]));
    this.v = new Map([...this.params].map(([k, p]) => [k, new Float64Array(p.length)]));
  }

  /** Logits of hidden rows `h` [B, H]; dropout with probability p from (seed) when p > 0. */
  forward(h: ArrayLike<number>, rows: number, dropout: { p: number; seed: number } | null): HeadForward {
    const H = this.hidden;
    const N = this.numLabels;
    const W1 = this.params.get('dense.weight')!;
    const b1 = this.params.get('dense.bias')!;
    const W2 = this.params.get('out_proj.weight')!;
    const b2 = this.params.get('out_proj.bias')!;
    const mask = (site: number): Float64Array => {
      const s = new Float64Array(rows * H).fill(1);
      if (!dropout || dropout.p <= 0) return s;
      const keep = 1 / (1 - dropout.p);
      for (let i = 0; i < s.length; i++) s[i] = counterUniform(dropout.seed, HEAD_STREAM + site, i) < dropout.p ? 0 : keep;
      return s;
    };
    const scale1 = mask(1);
    const scale2 = mask(2);
    const x1 = Float64Array.from({ length: rows * H }, (_, i) => h[i]! * scale1[i]!);
    const t = new Float64Array(rows * H);
    for (let b = 0; b < rows; b++) {
      for (let o = 0; o < H; o++) {
        let z = b1[o]!;
        for (let i = 0; i < H; i++) z += W1[o * H + i]! * x1[b * H + i]!;
        t[b * H + o] = Math.tanh(z);
      }
    }
    const x2 = Float64Array.from(t, (v, i) => v * scale2[i]!);
    const logits = new Float64Array(rows * N);
    for (let b = 0; b < rows; b++) {
      for (let k = 0; k < N; k++) {
        let z = b2[k]!;
        for (let i = 0; i < H; i++) z += W2[k * H + i]! * x2[b * H + i]!;
        logits[b * N + k] = z;
      }
    }
    return { logits, x1, t, x2, scale1, scale2, rows };
  }

  /** Adds the head's parameter gradients for ∂L/∂logits; returns ∂L/∂h [B, H]. */
  backward(f: HeadForward, dLogits: ArrayLike<number>): Float32Array {
    const H = this.hidden;
    const N = this.numLabels;
    const W1 = this.params.get('dense.weight')!;
    const W2 = this.params.get('out_proj.weight')!;
    const gW1 = this.grads.get('dense.weight')!;
    const gb1 = this.grads.get('dense.bias')!;
    const gW2 = this.grads.get('out_proj.weight')!;
    const gb2 = this.grads.get('out_proj.bias')!;
    const dh = new Float32Array(f.rows * H);
    const dz = new Float64Array(H);
    for (let b = 0; b < f.rows; b++) {
      dz.fill(0);
      for (let k = 0; k < N; k++) {
        const g = dLogits[b * N + k]!;
        if (g === 0) continue;
        gb2[k]! += g;
        for (let i = 0; i < H; i++) {
          gW2[k * H + i]! += g * f.x2[b * H + i]!;
          dz[i]! += g * W2[k * H + i]!; // d(x2)
        }
      }
      for (let i = 0; i < H; i++) {
        const t = f.t[b * H + i]!;
        dz[i] = dz[i]! * f.scale2[b * H + i]! * (1 - t * t); // through dropout and tanh
      }
      for (let o = 0; o < H; o++) {
        const g = dz[o]!;
        gb1[o]! += g;
        for (let i = 0; i < H; i++) gW1[o * H + i]! += g * f.x1[b * H + i]!;
      }
      for (let i = 0; i < H; i++) {
        let d = 0;
        for (let o = 0; o < H; o++) d += dz[o]! * W1[o * H + i]!;
        dh[b * H + i] = d * f.scale1[b * H + i]!;
      }
    }
    return dh;
  }

  zeroGrad(): void {
    for (const g of this.grads.values()) g.fill(0);
  }

  /**
   * One AdamW step (PyTorch AdamW: decoupled weight decay, bias correction) at learning rate `lr`,
   * after clipping the head's gradient to global norm `maxGradNorm` (0: no clipping); weight decay
   * on the two weight matrices only. Zeroes the gradients afterwards.
   */
  step(lr: number, o: { beta1: number; beta2: number; eps: number; weightDecay: number; maxGradNorm: number }): void {
    let sq = 0;
    for (const g of this.grads.values()) for (const x of g) sq += x * x;
    const norm = Math.sqrt(sq);
    const clip = o.maxGradNorm > 0 && norm > o.maxGradNorm ? o.maxGradNorm / (norm + 1e-6) : 1;
    this.steps++;
    const c1 = 1 - o.beta1 ** this.steps;
    const c2 = 1 - o.beta2 ** this.steps;
    for (const [name, p] of this.params) {
      const g = this.grads.get(name)!;
      const m = this.m.get(name)!;
      const v = this.v.get(name)!;
      const decay = name.endsWith('.weight') ? o.weightDecay : 0;
      for (let i = 0; i < p.length; i++) {
        const gi = g[i]! * clip;
        m[i] = o.beta1 * m[i]! + (1 - o.beta1) * gi;
        v[i] = o.beta2 * v[i]! + (1 - o.beta2) * gi * gi;
        p[i] = p[i]! * (1 - lr * decay) - (lr * (m[i]! / c1)) / (Math.sqrt(v[i]! / c2) + o.eps);
      }
    }
    this.zeroGrad();
  }

  save(dir: string): void {
    const H = this.hidden;
    const N = this.numLabels;
    const shapes: Record<string, number[]> = { 'dense.weight': [H, H], 'dense.bias': [H], 'out_proj.weight': [N, H], 'out_proj.bias': [N] };
    writeSafetensors(join(dir, CLASSIFIER_HEAD_FILE), new Map([...this.params].map(([k, data]) => [k, { shape: shapes[k]!, data }])), { format: 'blankglm-classifier-head' });
  }

  /** Loads a saved head; throws naming the file when a tensor is missing or has the wrong size. */
  load(dir: string): void {
    const file = join(dir, CLASSIFIER_HEAD_FILE);
    if (!existsSync(file)) throw new Error(`${file}: not found; a classifier head is trained and saved by 'finetune' with "head": "classifier" (or --head classifier)`);
    const { tensors } = readSafetensors(file);
    for (const [name, p] of this.params) {
      const t = tensors.get(name);
      if (!t) throw new Error(`${file}: tensor '${name}' is missing`);
      if (!(t.data instanceof Float32Array) || t.data.length !== p.length) {
        throw new Error(`${file}: tensor '${name}' has shape [${t.shape.join(', ')}], expected ${p.length} f32 values (hidden ${this.hidden}, ${this.numLabels} labels)`);
      }
      p.set(t.data);
    }
  }
}

/** One classifier row per example, and the gold label indices. */
export interface ClassifierBatch {
  examples: ClozeExample[];
  rows: number[][];
}

function logSoftmax(z: ArrayLike<number>, from: number, n: number): number[] {
  let m = -Infinity;
  for (let k = 0; k < n; k++) m = Math.max(m, z[from + k]!);
  let s = 0;
  for (let k = 0; k < n; k++) s += Math.exp(z[from + k]! - m);
  const lse = m + Math.log(s);
  return Array.from({ length: n }, (_, k) => z[from + k]! - lse);
}

export class PreparedClassifier implements PreparedTask<ClozeExample, ClassifierBatch> {
  readonly head: ClassifierHead;
  readonly objective: Objective<ClassifierBatch>;
  private readonly labels: string[];

  constructor(
    readonly task: ClozeTask,
    readonly env: TaskEnv,
    readonly inputs: PatternPart[][],
    seed: number,
  ) {
    if (!task.answer.labels || task.answer.labels.length < 2) {
      throw new Error(`${task.source}: the classifier head needs labels (a "verbalizer"); this task scores candidates from ${task.answer.mode === 'candidates' ? task.answer.rule.from : 'nothing'}`);
    }
    if (task.answer.mode === 'candidates' && task.answer.rule.from !== 'verbalizer') {
      throw new Error(`${task.source}: the classifier head needs one label per example from the verbalizer, not candidates from '${task.answer.rule.from}'`);
    }
    if (inputs.length === 0) throw new Error(`${task.source}: the classifier head needs "classifierInput" (e.g. ["{premise}", "{hypothesis}"]): the pattern has no fields`);
    this.labels = task.answer.labels;
    this.head = new ClassifierHead(env.config.hidden_size, this.labels.length, new Rng(seed), env.config.initializer_range);
    this.objective = {
      targets: (b) => b.examples.length,
      tokens: (b) => b.rows.reduce((n, r) => n + r.length, 0),
      trainStep: (model, batch, { seed: s, targetWeight }) => this.trainStep(model, batch, s, targetWeight),
      evaluate: (model, batch) => this.evalLoss(model, batch),
    };
  }

  /** `[CLS] a [SEP] b [eos]`; the first (shortenable-first, then longest) text loses tokens from its right end. */
  row(example: ClozeExample): number[] {
    const { tokenizer, maxLength } = this.env;
    const sp = tokenizer.special;
    let texts: { ids: number[]; shortenable: boolean }[];
    try {
      texts = this.inputs.map((parts) => {
        const rendered = renderPattern(parts, example.scope, this.task.shortenable);
        return { ids: rendered.flatMap((p) => (p.type === 'text' ? tokenizer.encodeIds(p.text) : [])), shortenable: rendered.some((p) => p.type === 'text' && p.shortenable) };
      });
    } catch (e) {
      throw new Error(`${example.file}:${example.line}: classifierInput: ${(e as Error).message}`);
    }
    const budget = maxLength - 1 - texts.length; // [CLS], one [SEP] between texts, eos
    let total = texts.reduce((n, t) => n + t.ids.length, 0);
    while (total > budget) {
      const pool = texts.some((t) => t.shortenable && t.ids.length > 0) ? texts.filter((t) => t.shortenable) : texts;
      const longest = pool.reduce((a, t) => (t.ids.length > a.ids.length ? t : a));
      if (longest.ids.length === 0) throw new RangeError(`${example.file}:${example.line}: the classifier input does not fit max length ${maxLength}`);
      longest.ids.pop();
      total--;
    }
    return [sp.cls, ...texts.flatMap((t, i) => (i === 0 ? t.ids : [sp.sep, ...t.ids])), sp.eos];
  }

  buildBatch(examples: readonly ClozeExample[]): ClassifierBatch {
    return { examples: [...examples], rows: examples.map((ex) => this.row(ex)) };
  }

  /** Rows padded with eos (segment −1); sep = each row's length, so Part A is the whole row. */
  toGlmBatch(rows: readonly number[][]): GlmBatch {
    const B = rows.length;
    const L = Math.max(...rows.map((r) => r.length));
    const eos = this.env.tokenizer.special.eos;
    const batch: GlmBatch = {
      batchSize: B, seqLength: L, numSegments: 1,
      sep: Int32Array.from(rows, (r) => r.length),
      inputIds: new Int32Array(B * L).fill(eos), positionIds: new Int32Array(B * L), blockPositionIds: new Int32Array(B * L),
      segmentIds: new Int32Array(B * L).fill(-1), targetIds: new Int32Array(B * L), lossMask: new Uint8Array(B * L),
    };
    rows.forEach((r, b) => {
      batch.inputIds.set(r, b * L);
      for (let i = 0; i < r.length; i++) batch.positionIds[b * L + i] = i;
      batch.segmentIds!.fill(0, b * L, b * L + r.length);
    });
    return batch;
  }

  private gold(example: ClozeExample): number {
    const k = this.labels.indexOf(example.label);
    if (k < 0) throw new RangeError(`${example.file}:${example.line}: label '${example.label}' is not one of ${this.labels.join(', ')}`);
    return k;
  }

  private trainStep(model: GlmModel, batch: ClassifierBatch, seed: number, weight: number): LossSums {
    const N = this.labels.length;
    const B = batch.rows.length;
    const at = batch.rows.map((_, b) => ({ row: b, position: 0 }));
    const r = model.forward(this.toGlmBatch(batch.rows), { mode: 'train', seed, hiddenAt: at });
    const f = this.head.forward(r.hidden!.values, B, { p: model.config.output_dropout_prob, seed: counterHash32(seed >>> 0, HEAD_STREAM, 0) });
    const dLogits = new Float64Array(B * N);
    let lossSum = 0;
    batch.examples.forEach((ex, b) => {
      const gold = this.gold(ex);
      const logq = logSoftmax(f.logits, b * N, N);
      for (let k = 0; k < N; k++) dLogits[b * N + k] = weight * (Math.exp(logq[k]!) - (k === gold ? 1 : 0));
      lossSum -= logq[gold]!;
    });
    model.backward({ hiddenGrad: this.head.backward(f, dLogits) });
    return { lossSum, targets: B };
  }

  /** Eval-mode label logits [examples, N], `batchSize` rows per forward. */
  logits(model: GlmModel, examples: readonly ClozeExample[], batchSize: number, onProgress?: (done: number) => void): Float64Array {
    const N = this.labels.length;
    const out = new Float64Array(examples.length * N);
    for (let start = 0; start < examples.length; start += batchSize) {
      const chunk = examples.slice(start, start + batchSize);
      const rows = chunk.map((ex) => this.row(ex));
      const r = model.forward(this.toGlmBatch(rows), { mode: 'eval', hiddenAt: rows.map((_, b) => ({ row: b, position: 0 })) });
      out.set(this.head.forward(r.hidden!.values, rows.length, null).logits, start * N);
      onProgress?.(start + chunk.length);
    }
    return out;
  }

  private evalLoss(model: GlmModel, batch: ClassifierBatch): LossSums {
    const N = this.labels.length;
    const z = this.logits(model, batch.examples, batch.examples.length);
    let lossSum = 0;
    batch.examples.forEach((ex, b) => (lossSum -= logSoftmax(z, b * N, N)[this.gold(ex)]!));
    return { lossSum, targets: batch.examples.length };
  }

  evaluate(model: GlmModel, examples: readonly ClozeExample[], options: EvaluateOptions): Metrics {
    if (examples.length === 0) throw new RangeError(`${this.task.name}: nothing to evaluate`);
    const N = this.labels.length;
    const z = this.logits(model, examples, Math.max(1, options.batchSize), options.onProgress ? (done) => options.onProgress!(done, examples.length) : undefined);
    const predictions = examples.map((_, b) => {
      let best = 0;
      for (let k = 1; k < N; k++) if (z[b * N + k]! > z[b * N + best]!) best = k;
      return best;
    });
    return clozeMetrics(this.task, examples, predictions);
  }

  afterUpdate(info: { lr: number; hyperparameters: Hyperparameters }): void {
    const h = info.hyperparameters;
    this.head.step(info.lr, { beta1: h.beta1, beta2: h.beta2, eps: h.eps, weightDecay: h.weightDecay, maxGradNorm: h.maxGradNorm });
  }

  saveState(dir: string): void {
    this.head.save(dir);
  }

  loadState(dir: string): void {
    this.head.load(dir);
  }
}
