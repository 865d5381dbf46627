// The best epoch by the task's first metric, in that metric's direction (perplexity and loss:
// lower is better).
import { describe, expect, it } from 'vitest';
import { loadBertTokenizer } from '@blankglm/tokenizer';
import { getTaskKind, finetune, isImprovement, loadSplit, loadTask, metricDirection, registerMetricDirection, registerTaskKind, type Metrics, type TaskDefinition } from '../src/index.js';
import { microModel, tempDir, writeJsonl } from './helpers/micro.js';

describe('metric directions', () => {
  it('lower is better for losses, NLLs and perplexities; higher for the rest', () => {
    for (const name of ['perplexity', 'adjusted-perplexity', 'loss', 'last-word-nll']) expect(metricDirection(name)).toBe('lower');
    for (const name of ['accuracy', 'macro-f1', 'f1a', 'em', 'f1', 'rouge1', 'rouge-avg', 'bleu']) expect(metricDirection(name)).toBe('higher');
    registerMetricDirection('edit-distance', 'lower');
    expect(metricDirection('edit-distance')).toBe('lower');
    expect(isImprovement('lower', 2, 3)).toBe(true);
    expect(isImprovement('lower', 3, 2)).toBe(false);
    expect(isImprovement('higher', 3, 3)).toBe(false);
    expect(isImprovement('higher', Number.NaN, 1)).toBe(false);
  });

  it('finetune() keeps the epoch with the lowest loss when the first metric is a loss', async () => {
    // A kind that trains like `multichoice` but reports a scripted validation loss per epoch.
    const base = getTaskKind('multichoice')!;
    const scripted = [3, 1, 2];
    let evaluations = 0;
    registerTaskKind<TaskDefinition, unknown, unknown>({
      kind: 'test-scripted-loss',
      summary: 'test only',
      parseTask: (def) => def,
      loadExamples: (task, file) => base.loadExamples(task, file),
      trainingExamples: (task, examples) => base.trainingExamples(task, examples),
      prepare(task, env) {
        const inner = base.prepare(task, env);
        return { ...inner, evaluate: (): Metrics => ({ loss: scripted[evaluations++]!, examples: 2 }) };
      },
    });
    const dir = tempDir();
    const taskFile = writeJsonl(dir, 'task.json', [{ name: 'scripted', kind: 'test-scripted-loss', metrics: ['loss'] }]);
    const task = loadTask(taskFile);
    const rows = [
      { inputs_pretokenized: 'The sky is', choices_pretokenized: ['blue', 'loud'], label: 0 },
      { inputs_pretokenized: 'Fire is', choices_pretokenized: ['cold', 'hot'], label: 1 },
    ];
    const train = loadSplit(task, writeJsonl(dir, 'train.jsonl', rows));
    const model = microModel(2);
    const result = await finetune({
      model, tokenizer: loadBertTokenizer(), task, train, valid: train, seed: 1,
      hyperparameters: { epochs: 3, lr: 1e-3, batchSize: 2, maxLength: 32, warmup: 0 },
    });
    model.dispose();
    expect(result.epochs.map((e) => e.primary.value)).toEqual([3, 1, 2]);
    expect(result.epochs.map((e) => e.isBest)).toEqual([true, true, false]);
    expect(result.best!.epoch).toBe(2);
    expect(result.best!.primary.direction).toBe('lower');
  });
});
