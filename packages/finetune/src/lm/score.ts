// Teacher-forced scoring of rows in eval mode: per row the log-probability of every loss-bearing
// target, and (optionally) whether the model's argmax equals each of them — what LAMBADA, WikiText
// and multiple choice need.
import { argmax, type GlmModel } from '@blankglm/model-spec';
import { rowsToBatch, type GlmRow } from './rows.js';

export interface RowScore {
  /** log p(target) at each loss position, in order. */
  logProbs: number[];
  /** Whether argmax of the logits equals the target, per loss position (only with `argmax`). */
  hits: boolean[] | null;
}

export interface ScoreOptions {
  /** Rows per forward. */
  batchSize: number;
  /** Also compute argmax hits (needs full logits at every loss position). */
  argmax?: boolean;
  padId?: number;
  /** Called after every batch with rows done / total. */
  onProgress?: (done: number, total: number) => void;
}

/** Scores every row (eval mode, no dropout). */
export function scoreRows(model: GlmModel, rows: readonly GlmRow[], options: ScoreOptions): RowScore[] {
  const { batchSize } = options;
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new RangeError(`scoreRows: batchSize must be a whole number ≥ 1, got ${batchSize}`);
  const out: RowScore[] = [];
  for (let start = 0; start < rows.length; start += batchSize) {
    const group = rows.slice(start, start + batchSize);
    const batch = rowsToBatch(group, options.padId ?? 0);
    const at: Array<{ row: number; position: number }> = [];
    if (options.argmax) {
      group.forEach((r, b) => r.lossMask.forEach((m, i) => m && at.push({ row: b, position: i })));
    }
    const result = model.forward(batch, { mode: 'eval', ...(at.length ? { logitsAt: at } : {}) });
    const scores: RowScore[] = group.map(() => ({ logProbs: [], hits: options.argmax ? [] : null }));
    const t = result.targets;
    for (let k = 0; k < t.row.length; k++) scores[t.row[k]!]!.logProbs.push(t.logProb[k]!);
    if (options.argmax && result.logits) {
      const V = result.logits.vocabSize;
      // logitsAt was listed row-major in position order, as the targets are.
      for (let k = 0; k < at.length; k++) {
        const { row, position } = at[k]!;
        const best = argmax(result.logits.values.subarray(k * V, (k + 1) * V));
        scores[row]!.hits!.push(best === group[row]!.targetIds[position]);
      }
    }
    out.push(...scores);
    options.onProgress?.(Math.min(start + batchSize, rows.length), rows.length);
  }
  return out;
}
