// The cloze losses' gradients (built from per-label / per-candidate backward passes) against central
// differences of the loss itself, on a micro model without dropout (reference backend).
import { describe, expect, it } from 'vitest';
import { loadBertTokenizer } from '@blankglm/tokenizer';
import type { GlmModel } from '@blankglm/model-spec';
import { Rng } from '@blankglm/tensor';
import { lossSumOf } from '@blankglm/trainer';
import { PreparedCloze, clozeTrainingExamples, loadClozeExamples, loadTask, type ClozeBatch, type ClozeTask } from '../src/index.js';
import { CB_ROWS, COPA_ROWS, microModel, tempDir, writeJsonl } from './helpers/micro.js';

const NO_DROPOUT = { embedding_dropout_prob: 0, attention_dropout_prob: 0, output_dropout_prob: 0 };

/** Directional derivative (eval loss = the training loss without dropout) of the eval loss along `direction` vs the gradient the objective accumulated. */
function checkDirection(model: GlmModel, prepared: PreparedCloze, batch: ClozeBatch, seed: number): { numeric: number; analytic: number; loss: number } {
  const params = model.stateDict();
  const rng = new Rng(seed);
  const direction = new Map([...params].map(([k, v]) => [k, Float32Array.from(v, () => rng.normal())]));
  model.zeroGrad();
  const sums = prepared.objective.trainStep(model, batch, { seed: 1, targetWeight: 1 / batch.items.length });
  const grads = model.gradDict();
  let analytic = 0;
  for (const [k, g] of grads) {
    const d = direction.get(k)!;
    for (let i = 0; i < g.length; i++) analytic += g[i]! * d[i]!;
  }
  const lossAt = (eps: number): number => {
    model.loadStateDict(new Map([...params].map(([k, v]) => [k, Float32Array.from(v, (x, i) => x + eps * direction.get(k)![i]!)])));
    const r = prepared.objective.evaluate(model, batch);
    return lossSumOf(r) / r.targets;
  };
  const eps = 3e-4;
  const numeric = (lossAt(eps) - lossAt(-eps)) / (2 * eps);
  model.loadStateDict(params);
  return { numeric, analytic, loss: lossSumOf(sums) / sums.targets };
}

describe('cloze gradients', () => {
  const tokenizer = loadBertTokenizer();

  it('single-token verbalizer: restricted softmax over the label tokens (CB)', () => {
    const dir = tempDir();
    const task = loadTask('cb') as ClozeTask;
    const examples = loadClozeExamples(task, writeJsonl(dir, 'train.jsonl', CB_ROWS));
    const model = microModel(3, NO_DROPOUT);
    const prepared = new PreparedCloze(task, { tokenizer, config: model.config, maxLength: 96 });
    const batch = prepared.buildBatch(examples.slice(0, 3));
    const r = checkDirection(model, prepared, batch, 11);
    expect(Math.abs(r.analytic)).toBeGreaterThan(1e-3);
    expect(Math.abs(r.numeric - r.analytic) / Math.abs(r.analytic)).toBeLessThan(2e-2);
    // three labels, random model: the restricted loss is about ln 3
    expect(r.loss).toBeGreaterThan(0.5);
    expect(r.loss).toBeLessThan(2);
    model.dispose();
  });

  it('multi-token candidates, summed (COPA) and length-normalised with the mix loss (WSC rule)', () => {
    const dir = tempDir();
    const copa = loadTask('copa') as ClozeTask;
    const model = microModel(5, NO_DROPOUT);
    const train = clozeTrainingExamples(copa, loadClozeExamples(copa, writeJsonl(dir, 'copa.jsonl', COPA_ROWS)));
    expect(train.length).toBe(8); // mirrored
    const prepared = new PreparedCloze(copa, { tokenizer, config: model.config, maxLength: 96 });
    const r = checkDirection(model, prepared, prepared.buildBatch(train.slice(0, 3)), 12);
    expect(Math.abs(r.numeric - r.analytic) / Math.abs(r.analytic)).toBeLessThan(2e-2);

    const wsc = loadTask('wsc') as ClozeTask;
    const rows = [
      { text: 'The city councilmen refused the demonstrators a permit because they feared violence.', target: { span1_text: 'The city councilmen', span1_index: 0, span2_text: 'they', span2_index: 9 }, label: true },
      { text: 'The trophy does not fit into the brown suitcase because it is too large.', target: { span1_text: 'The trophy', span1_index: 0, span2_text: 'it', span2_index: 9 }, label: true },
    ];
    const wscTrain = clozeTrainingExamples(wsc, loadClozeExamples(wsc, writeJsonl(dir, 'wsc.jsonl', rows)));
    expect(wscTrain.length).toBe(2);
    expect(wscTrain[1]!.candidates).toEqual([' The trophy', ' the brown']);
    const preparedWsc = new PreparedCloze(wsc, { tokenizer, config: model.config, maxLength: 96 });
    const w = checkDirection(model, preparedWsc, preparedWsc.buildBatch(wscTrain), 13);
    expect(Math.abs(w.numeric - w.analytic) / Math.abs(w.analytic)).toBeLessThan(2e-2);
    model.dispose();
  });
});
