// The classifier-head alternative (glm-reference §4.5): head and hidden-state gradients against
// central differences, the joint gradient through the model, a micro fine-tune on CB rows.
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createReferenceBackend } from '@blankglm/backend-ref';
import { GlmModel, loadCheckpoint } from '@blankglm/model-spec';
import { Rng } from '@blankglm/tensor';
import { lossSumOf } from '@blankglm/trainer';
import { loadBertTokenizer } from '@blankglm/tokenizer';
import { CLASSIFIER_HEAD_FILE, ClassifierHead, PreparedClassifier, evaluateTask, finetune, loadClozeExamples, loadSplit, loadTask, withHead, type ClozeTask } from '../src/index.js';
import { CB_ROWS, microModel, tempDir, writeJsonl } from './helpers/micro.js';

const NO_DROPOUT = { embedding_dropout_prob: 0, attention_dropout_prob: 0, output_dropout_prob: 0 };

describe('ClassifierHead', () => {
  it('parameter and hidden-state gradients match central differences (with dropout masks fixed)', () => {
    const H = 6;
    const N = 3;
    const rows = 2;
    const head = new ClassifierHead(H, N, new Rng(3), 0.5);
    for (const p of head.params.values()) for (let i = 0; i < p.length; i++) p[i] = p[i]! + 0.1 * Math.sin(i + 1); // nonzero biases
    const rng = new Rng(4);
    const h = Float64Array.from({ length: rows * H }, () => rng.normal());
    const g = Float64Array.from({ length: rows * N }, () => rng.normal());
    const dropout = { p: 0.3, seed: 77 };
    const objective = (): number => {
      const z = head.forward(h, rows, dropout).logits;
      return z.reduce((s, v, i) => s + v * g[i]!, 0);
    };
    head.zeroGrad();
    const dh = head.backward(head.forward(h, rows, dropout), g);
    const eps = 1e-3;
    let checked = 0;
    for (const [name, p] of head.params) {
      const grad = head.grads.get(name)!;
      for (let i = 0; i < p.length; i += 5) {
        const x = p[i]!;
        p[i] = x + eps;
        const up = objective();
        p[i] = x - eps;
        const down = objective();
        p[i] = x;
        const numeric = (up - down) / (Math.fround(x + eps) - Math.fround(x - eps));
        expect(grad[i], `${name}[${i}]`).toBeCloseTo(numeric, 3);
        checked++;
      }
    }
    let nonzero = 0;
    for (let i = 0; i < h.length; i++) {
      const x = h[i]!;
      h[i] = x + eps;
      const up = objective();
      h[i] = x - eps;
      const down = objective();
      h[i] = x;
      expect(dh[i], `h[${i}]`).toBeCloseTo((up - down) / (2 * eps), 4);
      if (dh[i] !== 0) nonzero++;
    }
    expect(checked).toBeGreaterThan(10);
    // dropout before dense zeroes some inputs' gradients, but not most
    expect(nonzero).toBeGreaterThan(h.length / 2);
  });
});

describe('classifier head on a cloze task', () => {
  const tokenizer = loadBertTokenizer();

  it('the joint gradient (head + transformer through hiddenGrad) matches central differences', () => {
    const dir = tempDir();
    const task = withHead(loadTask('cb'), 'classifier');
    expect(task.head).toBe('classifier');
    const examples = loadClozeExamples(task, writeJsonl(dir, 'train.jsonl', CB_ROWS));
    const model = microModel(3, NO_DROPOUT);
    const prepared = new PreparedClassifier(task, { tokenizer, config: model.config, maxLength: 64 }, task.classifierInput, 2);
    // CB's task file: [CLS] premise [SEP] hypothesis [eos]
    const row = prepared.row(examples[0]!);
    const sp = tokenizer.special;
    expect(row[0]).toBe(sp.cls);
    expect(row.filter((t) => t === sp.sep).length).toBe(1);
    expect(row[row.length - 1]).toBe(sp.eos);
    expect(tokenizer.decode(row.slice(1, row.indexOf(sp.sep)))).toBe(tokenizer.decode(tokenizer.encodeIds(String(CB_ROWS[0]!.premise))));
    for (const p of prepared.head.params.values()) for (let i = 0; i < p.length; i++) p[i] = p[i]! * 20; // a head that is not ≈ 0

    const batch = prepared.buildBatch(examples.slice(0, 3));
    model.zeroGrad();
    prepared.head.zeroGrad();
    prepared.objective.trainStep(model, batch, { seed: 1, targetWeight: 1 / 3 });
    const loss = (): number => {
      const r = prepared.objective.evaluate(model, batch);
      return lossSumOf(r) / r.targets;
    };
    // transformer: one random direction over all parameters
    const params = model.stateDict();
    const grads = model.gradDict();
    const rng = new Rng(5);
    const direction = new Map([...params].map(([k, v]) => [k, Float32Array.from(v, () => rng.normal())]));
    let analytic = 0;
    for (const [k, gr] of grads) gr.forEach((v, i) => (analytic += v * direction.get(k)![i]!));
    const at = (eps: number): number => {
      model.loadStateDict(new Map([...params].map(([k, v]) => [k, Float32Array.from(v, (x, i) => x + eps * direction.get(k)![i]!)])));
      return loss();
    };
    const numeric = (at(3e-4) - at(-3e-4)) / 6e-4;
    model.loadStateDict(params);
    expect(Math.abs(analytic)).toBeGreaterThan(1e-3);
    expect(Math.abs(numeric - analytic) / Math.abs(analytic)).toBeLessThan(2e-2);
    // head: a few elements of out_proj.weight and dense.weight
    for (const name of ['out_proj.weight', 'dense.weight', 'out_proj.bias']) {
      const p = prepared.head.params.get(name)!;
      const g = prepared.head.grads.get(name)!;
      for (const i of [0, p.length - 1]) {
        const x = p[i]!;
        p[i] = x + 1e-2;
        const up = loss();
        p[i] = x - 1e-2;
        const down = loss();
        p[i] = x;
        expect(g[i], `${name}[${i}]`).toBeCloseTo((up - down) / (Math.fround(x + 1e-2) - Math.fround(x - 1e-2)), 3);
      }
    }
    model.dispose();
  });

  it('fine-tunes on CB rows: loss falls, the head is saved beside the best checkpoint and reloads', async () => {
    const dir = tempDir();
    const task = withHead(loadTask('cb'), 'classifier');
    const train = loadSplit(task, writeJsonl(dir, 'train.jsonl', CB_ROWS));
    const model = microModel(3);
    const out = join(dir, 'run');
    const result = await finetune({
      model, tokenizer, task, train, valid: train, seed: 5, outDir: out,
      // the head starts at ≈ 0 (std 0.02), so it needs more updates than the cloze loss: 60 here
      hyperparameters: { epochs: 20, lr: 3e-2, batchSize: 2, maxLength: 64, warmup: 0 },
    });
    const first = result.epochs[0]!;
    const last = result.epochs[result.epochs.length - 1]!;
    expect(last.trainLoss).toBeLessThan(first.trainLoss * 0.6); // 1.14 → 0.44 with seed 5
    expect(result.best!.metrics.accuracy).toBeGreaterThanOrEqual(5 / 6);
    expect(existsSync(join(out, 'best', CLASSIFIER_HEAD_FILE))).toBe(true);
    const best = loadCheckpoint(result.bestCheckpoint!);
    const reloaded = GlmModel.create(createReferenceBackend(), best.config, { stateDict: best.stateDict });
    expect(evaluateTask(reloaded, tokenizer, task, train, { maxLength: 64, stateDir: result.bestCheckpoint! }).accuracy).toBe(result.best!.metrics.accuracy);
    expect(() => evaluateTask(reloaded, tokenizer, task, train, { maxLength: 64, stateDir: dir })).toThrow(/classifier-head.safetensors: not found/);
    reloaded.dispose();
    model.dispose();
  });

  it('bad setups are clear errors', () => {
    const dir = tempDir();
    expect(() => withHead(loadTask('copa'), 'classifier')).not.toThrow();
    const copa = withHead(loadTask('copa'), 'classifier') as ClozeTask;
    const model = microModel(3, NO_DROPOUT);
    expect(() => new PreparedClassifier(copa, { tokenizer, config: model.config, maxLength: 64 }, copa.classifierInput, 1)).toThrow(/classifier head needs labels/);
    expect(() => withHead(loadTask('wikitext'), 'classifier')).toThrow(/a head applies to cloze tasks/);
    const file = join(dir, 'bad.json');
    writeFileSync(file, JSON.stringify({ name: 'x', kind: 'cloze', patterns: { 0: '{a} [MASK]' }, verbalizer: { y: ' yes', n: ' no' }, metrics: ['accuracy'], head: 'classifier', classifierInput: ['{a} [MASK]'] }));
    expect(() => loadTask(file)).toThrow(/classifierInput.0: takes no \[MASK\]/);
    writeFileSync(file, JSON.stringify({ name: 'x', kind: 'cloze', patterns: { 0: '{a} [MASK]' }, verbalizer: { y: ' yes', n: ' no' }, metrics: ['accuracy'], head: 'linear' }));
    expect(() => loadTask(file)).toThrow(/head: must be "cloze" or "classifier"/);
    model.dispose();
  });
});
