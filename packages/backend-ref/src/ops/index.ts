// Where each op of the catalogue lives. The mapped type makes a missing op a compile error, so
// the reference backend covers the whole catalogue by construction.
import type { OpArgs, OpName } from '@blankglm/tensor';
import { attention, attentionBackward } from './attention.js';
import type { OpContext } from './context.js';
import { dropoutAdd, dropoutBackward } from './dropout.js';
import { embedding, embeddingBackward } from './embedding.js';
import { layerNorm, layerNormBackward } from './layer-norm.js';
import { linear, linearBackward } from './linear.js';
import { copy, fill, scale } from './memory-ops.js';
import { adamw, sumSquares } from './optimizer.js';
import { crossEntropy, crossEntropyBackward, logits } from './output.js';
import { gatherRows, scatterAddRows } from './rows.js';

export type OpImplementation<K extends OpName> = (ctx: OpContext, args: OpArgs[K]) => void;

export const REFERENCE_OPS: { [K in OpName]: OpImplementation<K> } = {
  embedding,
  embeddingBackward,
  layerNorm,
  layerNormBackward,
  linear,
  linearBackward,
  attention,
  attentionBackward,
  dropoutAdd,
  dropoutBackward,
  gatherRows,
  scatterAddRows,
  logits,
  crossEntropy,
  crossEntropyBackward,
  adamw,
  sumSquares,
  fill,
  copy,
  scale,
};

export type { OpContext } from './context.js';
