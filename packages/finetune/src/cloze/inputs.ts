// Model inputs of cloze examples (glm-reference §4.1):
//
//   Part A = [CLS] + pattern tokens (parts tokenized one by one) + eos      sep = |A|, block positions 0
//   mask_pos = index of the LAST mask token in Part A
//   single-token verbalizer:  Part B = [sop] at (mask_pos, 1); its logits score the labels' tokens
//   multi-token candidate:    answer = candidate tokens + [eop]; Part B = [sop] + answer[:-1],
//                             positions mask_pos, block 1..|answer|, targets = answer
//
// Shortenable parts (passage, premise) lose tokens from their right end, longest first, until the
// row fits `maxLength` (BERT family: eos is [PAD], id 0).
import type { GlmBatch } from '@blankglm/tensor';
import type { GlmTokenizer } from '@blankglm/tokenizer';
import type { TaskEnv } from '../tasks/registry.js';
import { renderPattern } from './pattern.js';
import type { ClozeExample } from './examples.js';
import type { ClozeTask } from './task.js';

/** Part A of an example: its ids and where the blank is. */
export interface EncodedContext {
  ids: number[];
  maskPos: number;
}

/** One model row: Part A + Part B. */
export interface ClozeRow {
  ids: number[];
  positions: number[];
  blocks: number[];
  targets: number[];
  lossMask: number[];
  sep: number;
}

/** Part A from a pattern; `partBLength` = tokens Part B will need. Throws when it cannot fit. */
export function encodeContext(task: ClozeTask, example: ClozeExample, tokenizer: GlmTokenizer, maxLength: number, partBLength: number): EncodedContext {
  const sp = tokenizer.special;
  const rendered = renderPattern(task.pattern, example.scope, task.shortenable);
  const parts = rendered.map((p) => (p.type === 'mask' ? { ids: [sp.mask], shortenable: false } : { ids: tokenizer.encodeIds(p.text), shortenable: p.shortenable }));
  const budget = maxLength - partBLength - 2; // [CLS] and eos
  let total = parts.reduce((n, p) => n + p.ids.length, 0);
  while (total > budget) {
    let longest: { ids: number[] } | null = null;
    for (const p of parts) if (p.shortenable && p.ids.length > 0 && (!longest || p.ids.length > longest.ids.length)) longest = p;
    if (!longest) {
      throw new RangeError(
        `${example.file}:${example.line}: the pattern needs ${total + partBLength + 2} tokens without its shortenable parts (${[...task.shortenable].join(', ') || 'none'}), over the max length ${maxLength}`,
      );
    }
    longest.ids.pop();
    total--;
  }
  const ids = [sp.cls, ...parts.flatMap((p) => p.ids), sp.eos];
  return { ids, maskPos: ids.lastIndexOf(sp.mask) };
}

/** Part A + [sop] (single-token verbalizer): target `target` at the sop position (-1: no target). */
export function verbalizerRow(context: EncodedContext, sop: number, target: number): ClozeRow {
  const a = context.ids.length;
  return {
    ids: [...context.ids, sop],
    positions: [...context.ids.map((_, i) => i), context.maskPos],
    blocks: [...context.ids.map(() => 0), 1],
    targets: [...context.ids.map(() => 0), Math.max(0, target)],
    lossMask: [...context.ids.map(() => 0), target >= 0 ? 1 : 0],
    sep: a,
  };
}

/** Part A + [sop] + candidate tokens, targets candidate tokens + [eop]. */
export function candidateRow(context: EncodedContext, answerIds: readonly number[], sop: number, eop: number): ClozeRow {
  const answer = [...answerIds, eop];
  const partB = [sop, ...answerIds];
  const a = context.ids.length;
  return {
    ids: [...context.ids, ...partB],
    positions: [...context.ids.map((_, i) => i), ...partB.map(() => context.maskPos)],
    blocks: [...context.ids.map(() => 0), ...partB.map((_, k) => k + 1)],
    targets: [...context.ids.map(() => 0), ...answer],
    lossMask: [...context.ids.map(() => 0), ...answer.map(() => 1)],
    sep: a,
  };
}

/** Rows padded to the longest with eos (segment −1: attends only to itself, no loss). */
export function clozeRowsToBatch(rows: readonly ClozeRow[], eos: number): GlmBatch {
  const B = rows.length;
  const L = Math.max(...rows.map((r) => r.ids.length));
  const batch: GlmBatch = {
    batchSize: B,
    seqLength: L,
    numSegments: 1,
    sep: Int32Array.from(rows, (r) => r.sep),
    inputIds: new Int32Array(B * L).fill(eos),
    positionIds: new Int32Array(B * L),
    blockPositionIds: new Int32Array(B * L),
    segmentIds: new Int32Array(B * L).fill(-1),
    targetIds: new Int32Array(B * L),
    lossMask: new Uint8Array(B * L),
  };
  rows.forEach((r, b) => {
    const o = b * L;
    batch.inputIds.set(r.ids, o);
    batch.positionIds.set(r.positions, o);
    batch.blockPositionIds.set(r.blocks, o);
    batch.segmentIds!.fill(0, o, o + r.ids.length);
    batch.targetIds!.set(r.targets, o);
    batch.lossMask!.set(r.lossMask, o);
  });
  return batch;
}

/** The token ids of each candidate text; throws naming the example if one is empty or too long. */
export function candidateIds(candidates: readonly string[], tokenizer: GlmTokenizer, example: ClozeExample, maxLength: number): number[][] {
  return candidates.map((c) => {
    const ids = tokenizer.encodeIds(c);
    if (ids.length === 0) throw new RangeError(`${example.file}:${example.line}: the candidate ${JSON.stringify(c)} has no tokens`);
    if (ids.length + 8 > maxLength) throw new RangeError(`${example.file}:${example.line}: the candidate ${JSON.stringify(c.slice(0, 60))} is ${ids.length} tokens, too long for max length ${maxLength}`);
    return ids;
  });
}

/** Single-token verbalizer ids, in label order; throws saying which label is not one token. */
export function verbalizerTokenIds(task: ClozeTask, env: TaskEnv): number[] {
  const answer = task.answer;
  if (answer.mode !== 'verbalizer') throw new Error('verbalizerTokenIds: the task uses candidates');
  return answer.labels.map((label) => {
    const text = answer.verbalizer.get(label)!;
    const ids = env.tokenizer.encodeIds(text);
    if (ids.length !== 1) {
      const pieces = ids.map((id) => env.tokenizer.idToToken(id) ?? String(id)).join(' ');
      throw new RangeError(
        `${task.source}: the verbalizer of label '${label}' (${JSON.stringify(text)}) is ${ids.length} tokens for this tokenizer (${pieces || 'none'}); ` +
          `pattern ${task.patternId} scores one token at the blank. Pick a one-token text, or score multi-token answers with "candidates": { "from": "verbalizer" }`,
      );
    }
    return ids[0]!;
  });
}
