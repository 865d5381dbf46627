// `blankglm finetune` and `blankglm evaluate`, in-process on a tiny random checkpoint and a handful
// of CB-format rows (reference backend).
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runCommand, saveTinyCheckpoint } from './fill-helpers.js';

const work = mkdtempSync(join(tmpdir(), 'blankglm-finetune-cli-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));
const ckpt = saveTinyCheckpoint(work);
const rows = [
  { premise: 'The cat sat on the mat all day.', hypothesis: 'The cat sat.', label: 'entailment' },
  { premise: 'Nobody came to the party.', hypothesis: 'Many people came.', label: 'contradiction' },
  { premise: 'He might go to Paris next year.', hypothesis: 'He will go to Paris.', label: 'neutral' },
  { premise: 'The sun is shining brightly.', hypothesis: 'It is sunny.', label: 'entailment' },
];
const jsonl = (r: readonly object[]): string => r.map((x) => JSON.stringify(x)).join('\n') + '\n';
mkdirSync(join(work, 'cb'));
writeFileSync(join(work, 'cb', 'train.jsonl'), jsonl(rows));
writeFileSync(join(work, 'cb', 'val.jsonl'), jsonl(rows.slice(0, 3)));
const common = ['--backend', 'ref', '--max-length', '48'];

describe('blankglm finetune / evaluate', () => {
  it('fine-tunes with per-epoch validation, keeps the best checkpoint, and evaluate reads it', async () => {
    const r = await runCommand(['finetune', ckpt, '--task', 'cb', '--data', 'cb', '--epochs', '2', '--batch-size', '2', '--lr', '1e-3', '--out', 'run', ...common], work);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/task CB \(cloze, .*cb\.json\); 4 training, 3 validation examples/);
    expect(r.out).toMatch(/epoch 1 \(step 2\): train loss \d+\.\d{4}; validation accuracy \d\.\d{4}, macro-f1 \d\.\d{4}, examples 3/);
    expect(r.out).toMatch(/epoch 2 \(step 4\)/);
    expect(r.out).toMatch(/best: epoch \d, accuracy \d\.\d{4} → .*run\/best/);
    expect(r.err).toMatch(/epoch 1 .*2\.0\/2\.0 steps.*\n(.*\n)*validating .*3\.0\/3\.0 examples/); // progress lines
    const metrics = readFileSync(join(work, 'run', 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { type: string; metrics?: Record<string, number> });
    expect(metrics.filter((m) => m.type === 'eval').length).toBe(2);
    expect(existsSync(join(work, 'run', 'best', 'model.safetensors'))).toBe(true);
    expect(existsSync(join(work, 'run', 'best', 'vocab.txt'))).toBe(true);

    const e = await runCommand(['evaluate', 'run/best', '--task', 'cb', '--data', 'cb/val.jsonl', '--json', ...common], work);
    expect(e.code, e.err).toBe(0);
    const j = JSON.parse(e.out) as { task: string; metrics: Record<string, number> };
    expect(j.task).toBe('CB');
    expect(j.metrics.examples).toBe(3);
    const bestEval = metrics.filter((m) => m.type === 'eval').map((m) => m.metrics!.accuracy!);
    expect(bestEval).toContain(j.metrics.accuracy);
    const text = await runCommand(['evaluate', 'run/best', '--task', 'cb', '--data', 'cb', ...common], work);
    expect(text.out).toMatch(/task CB on .*val\.jsonl \(3 examples, ref backend, .*\)\naccuracy: \d\.\d{4}\nmacro-f1: \d\.\d{4}\nexamples: 3/);
  });

  it('--precision bf16 fine-tunes with bf16 products (and says so); the classifier head too; a bad value is refused', async () => {
    for (const head of ['cloze', 'classifier']) {
      const r = await runCommand(['finetune', ckpt, '--task', 'cb', '--data', 'cb', '--epochs', '1', '--batch-size', '2', '--head', head, '--out', `bf16-${head}`, '--precision', 'bf16', ...common], work);
      expect(r.code, r.err).toBe(0);
      expect(r.out).toMatch(/on the ref backend \(bf16 products, f32 master weights\)/);
      expect(r.out).toMatch(/epoch 1 \(step 2\): train loss \d+\.\d{4}; validation accuracy/);
    }
    const bad = await runCommand(['finetune', ckpt, '--task', 'cb', '--data', 'cb', '--precision', 'fp16', ...common], work);
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/--precision must be auto, f32 or bf16, got 'fp16'/);
  });

  it('runs a task file of your own (FewGLUE-style --train / --valid)', async () => {
    const task = {
      name: 'my-nli', kind: 'cloze', patterns: { '0': '{premise} Question: {hypothesis} Answer: [MASK].' }, shortenable: ['premise'],
      verbalizer: { entailment: ' yes', contradiction: ' no', neutral: ' maybe' }, metrics: ['macro-f1', 'accuracy'], hyperparameters: { epochs: 1, batchSize: 4 },
    };
    writeFileSync(join(work, 'my-task.json'), JSON.stringify(task));
    const r = await runCommand(['finetune', ckpt, '--task', 'my-task.json', '--train', 'cb/train.jsonl', '--valid', 'cb/val.jsonl', '--out', 'mine', '--json', ...common], work);
    expect(r.code, r.err).toBe(0);
    const j = JSON.parse(r.out) as { task: string; steps: number; best: { primary: { name: string } } };
    expect(j.task).toBe('my-nli');
    expect(j.steps).toBe(1);
    expect(j.best.primary.name).toBe('macro-f1');
  });

  it('bad input: no task, unknown task, bad rows (all listed), missing splits', async () => {
    const noTask = await runCommand(['evaluate', ckpt, '--data', 'cb', ...common], work);
    expect(noTask.code).toBe(2);
    expect(noTask.err).toMatch(/--task is required/);
    const unknown = await runCommand(['evaluate', ckpt, '--task', 'cola', '--data', 'cb', ...common], work);
    expect(unknown.err).toMatch(/cola: no such task file, and no built-in task of that name; built-in tasks: .*boolq.*wsc/);
    writeFileSync(join(work, 'bad.jsonl'), jsonl([rows[0]!, { premise: 'x', label: 'entailment' }, { premise: 'x', hypothesis: 'y', label: 'unsure' }]));
    const bad = await runCommand(['evaluate', ckpt, '--task', 'cb', '--data', 'bad.jsonl', ...common], work);
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/bad\.jsonl: 2 bad lines:\n.*bad\.jsonl:2: missing field 'hypothesis'.*\n.*bad\.jsonl:3: label 'unsure' is not in the verbalizer/);
    const noValid = await runCommand(['finetune', ckpt, '--task', 'cb', '--train', 'cb/train.jsonl', ...common], work);
    expect(noValid.err).toMatch(/no validation split/);
    writeFileSync(join(work, 'empty.jsonl'), '');
    const empty = await runCommand(['finetune', ckpt, '--task', 'cb', '--train', 'empty.jsonl', '--valid', 'cb/val.jsonl', ...common], work);
    expect(empty.err).toMatch(/empty\.jsonl: the split is empty/);
  });
});
