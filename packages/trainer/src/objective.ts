// The blank-infilling objective over GlmBatch: cross-entropy at the loss-masked positions (Part B
// targets in pretraining; the answer tokens in cloze fine-tuning), token-averaged over the batch.
import type { GlmBatch } from '@blankglm/tensor';
import type { GlmModel } from '@blankglm/model-spec';
import type { LossSums, Objective } from './trainer.js';

function sumLosses(losses: Float32Array): number {
  let s = 0;
  for (let i = 0; i < losses.length; i++) s += losses[i]!;
  return s;
}

/** Loss-bearing tokens of a batch (lossMask = 1). */
export function countTargets(batch: GlmBatch): number {
  const m = batch.lossMask;
  if (!m) return 0;
  let n = 0;
  for (let i = 0; i < m.length; i++) n += m[i]!;
  return n;
}

/** Tokens that belong to a sample (padding, segment −1, excluded). */
export function countTokens(batch: GlmBatch): number {
  const seg = batch.segmentIds;
  if (!seg) return batch.batchSize * batch.seqLength;
  let n = 0;
  for (let i = 0; i < seg.length; i++) if (seg[i]! >= 0) n++;
  return n;
}

export interface BlankInfillingOptions {
  /** Label smoothing of the training loss (seq2seq fine-tuning); 0 by default. */
  labelSmoothing?: number;
}

/** GLM's loss over GlmBatch rows, for pretraining and cloze-style fine-tuning. */
export function blankInfillingObjective(options: BlankInfillingOptions = {}): Objective<GlmBatch> {
  const labelSmoothing = options.labelSmoothing ?? 0;
  return {
    targets: countTargets,
    tokens: countTokens,
    trainStep(model: GlmModel, batch: GlmBatch, { seed, targetWeight }): LossSums {
      const r = model.forward(batch, { mode: 'train', seed, labelSmoothing });
      model.backward({ targetWeight });
      // Read later (see LossSums): the losses stay on the device until the trainer asks.
      return { lossSum: () => sumLosses(r.targets.loss), targets: r.numTargets };
    },
    evaluate(model: GlmModel, batch: GlmBatch): LossSums {
      const r = model.forward(batch, { mode: 'eval' });
      // Evaluation reports log p(target) without smoothing.
      let s = 0;
      for (let i = 0; i < r.targets.logProb.length; i++) s -= r.targets.logProb[i]!;
      return { lossSum: s, targets: r.numTargets };
    },
  };
}
