// Input embeddings: word + position (+ block position, GLM's second position row).
import type { OpArgs } from '@blankglm/tensor';
import { checkIds, type OpContext } from './context.js';
import { scatterAddRowsInto } from './rows.js';

/** out[t, :] = wordEmb[inputIds[t], :] + posEmb[positionIds[t], :] (+ blockPosEmb[blockPositionIds[t], :]).  out: [T, H] */
export function embedding(ctx: OpContext, a: OpArgs['embedding']): void {
  const { tokens: T, hiddenSize: H } = a;
  const inputIds = ctx.ints(a.inputIds, 'inputIds'); // [T]
  const positionIds = ctx.ints(a.positionIds, 'positionIds'); // [T]
  const blockIds = a.blockPositionIds ? ctx.ints(a.blockPositionIds, 'blockPositionIds') : null; // [T]
  checkIds(ctx, inputIds, T, 'inputIds', a.vocab, 'the word embedding table');
  checkIds(ctx, positionIds, T, 'positionIds', a.positions, 'the position table');
  if (blockIds) checkIds(ctx, blockIds, T, 'blockPositionIds', a.positions, 'the block position table');

  const wordEmb = ctx.floats(a.wordEmb, 'wordEmb'); // [V, H]
  const posEmb = ctx.floats(a.posEmb, 'posEmb'); // [P, H]
  const blockPosEmb = a.blockPosEmb ? ctx.floats(a.blockPosEmb, 'blockPosEmb') : null; // [P, H]
  const out = ctx.floats(a.out, 'out'); // [T, H]
  for (let t = 0; t < T; t++) {
    const w = inputIds[t]! * H;
    const p = positionIds[t]! * H;
    const bp = blockIds ? blockIds[t]! * H : 0;
    for (let h = 0; h < H; h++) {
      let sum = wordEmb[w + h]! + posEmb[p + h]!;
      if (blockPosEmb) sum += blockPosEmb[bp + h]!;
      out[t * H + h] = sum;
    }
  }
}

/** dWordEmb[inputIds[t]] += dOut[t]; dPosEmb[positionIds[t]] += dOut[t]; dBlockPosEmb likewise. */
export function embeddingBackward(ctx: OpContext, a: OpArgs['embeddingBackward']): void {
  const { tokens: T, hiddenSize: H } = a;
  const inputIds = ctx.ints(a.inputIds, 'inputIds');
  const positionIds = ctx.ints(a.positionIds, 'positionIds');
  const blockIds = a.blockPositionIds ? ctx.ints(a.blockPositionIds, 'blockPositionIds') : null;
  checkIds(ctx, inputIds, T, 'inputIds', a.vocab, 'the word embedding table');
  checkIds(ctx, positionIds, T, 'positionIds', a.positions, 'the position table');
  if (blockIds) checkIds(ctx, blockIds, T, 'blockPositionIds', a.positions, 'the block position table');

  const dOut = ctx.floats(a.dOut, 'dOut'); // [T, H]
  scatterAddRowsInto(dOut, inputIds, ctx.floats(a.dWordEmb, 'dWordEmb'), T, H);
  scatterAddRowsInto(dOut, positionIds, ctx.floats(a.dPosEmb, 'dPosEmb'), T, H);
  if (blockIds && a.dBlockPosEmb) scatterAddRowsInto(dOut, blockIds, ctx.floats(a.dBlockPosEmb, 'dBlockPosEmb'), T, H);
}
