// The wire format of `runSequence`: every op call becomes a run of f64 words that the addon
// decodes and launches without returning to JavaScript. This table is the single source of the
// format: scripts/build-native.mjs turns it into build/generated/schema.h for the C++ decoder,
// and the loader refuses an addon built from a different table.
//
// Buffer:  [callCount, (opId, wordCount, ...fields)...]
// Fields, by kind:
//   t  tensor id (−1 for null)                       1 word
//   v  strided view: tensor id, offset, rowStride, batchStride   4 words
//   i  integer                                       1 word
//   f  number (f64)                                  1 word
//   b  boolean (0 or 1)                              1 word
//   d  dropout: p, seed, stream                      3 words
//   a  activation: 0 none, 1 gelu_tanh, 2 gelu_erf   1 word
import type { OpName } from '@blankglm/tensor';

export type FieldKind = 't' | 'v' | 'i' | 'f' | 'b' | 'd' | 'a';

export const FIELD_WORDS: Record<FieldKind, number> = { t: 1, v: 4, i: 1, f: 1, b: 1, d: 3, a: 1 };

/** Fields of each op as "name:kind", in wire order. The op id is the index in this table. */
export const OP_SCHEMA: ReadonlyArray<readonly [OpName, readonly string[]]> = [
  ['embedding', ['wordEmb:t', 'posEmb:t', 'blockPosEmb:t', 'inputIds:t', 'positionIds:t', 'blockPositionIds:t', 'out:t', 'tokens:i', 'hiddenSize:i', 'vocab:i', 'positions:i']],
  ['embeddingBackward', ['dOut:t', 'inputIds:t', 'positionIds:t', 'blockPositionIds:t', 'dWordEmb:t', 'dPosEmb:t', 'dBlockPosEmb:t', 'tokens:i', 'hiddenSize:i', 'vocab:i', 'positions:i']],
  ['layerNorm', ['x:t', 'gamma:t', 'beta:t', 'y:t', 'mean:t', 'rstd:t', 'rows:i', 'hiddenSize:i', 'eps:f']],
  ['layerNormBackward', ['dy:t', 'x:t', 'gamma:t', 'mean:t', 'rstd:t', 'dx:t', 'dGamma:t', 'dBeta:t', 'rows:i', 'hiddenSize:i', 'accumulate:b']],
  ['linear', ['x:t', 'weight:t', 'bias:t', 'y:t', 'preAct:t', 'rows:i', 'inFeatures:i', 'outFeatures:i', 'activation:a']],
  ['linearBackward', ['dy:t', 'x:t', 'weight:t', 'preAct:t', 'dx:t', 'dWeight:t', 'dBias:t', 'rows:i', 'inFeatures:i', 'outFeatures:i', 'activation:a', 'accumulate:b']],
  ['attention', ['q:v', 'k:v', 'v:v', 'keyStart:t', 'keyEnd:t', 'out:t', 'lse:t', 'batch:i', 'queries:i', 'keys:i', 'heads:i', 'headDim:i', 'scale:f', 'dropout:d']],
  ['attentionBackward', ['dOut:t', 'q:v', 'k:v', 'v:v', 'out:t', 'lse:t', 'keyStart:t', 'keyEnd:t', 'dq:v', 'dk:v', 'dv:v', 'batch:i', 'queries:i', 'keys:i', 'heads:i', 'headDim:i', 'scale:f', 'dropout:d']],
  ['dropoutAdd', ['x:t', 'residual:t', 'out:t', 'size:i', 'dropout:d']],
  ['dropoutBackward', ['dy:t', 'dx:t', 'size:i', 'dropout:d', 'accumulate:b']],
  ['gatherRows', ['x:t', 'index:t', 'out:t', 'count:i', 'rows:i', 'width:i']],
  ['scatterAddRows', ['dOut:t', 'index:t', 'dx:t', 'count:i', 'rows:i', 'width:i']],
  ['logits', ['hidden:t', 'wordEmb:t', 'out:t', 'tokens:i', 'hiddenSize:i', 'vocab:i']],
  ['crossEntropy', ['hidden:t', 'wordEmb:t', 'targets:t', 'losses:t', 'lse:t', 'tokens:i', 'hiddenSize:i', 'vocab:i', 'labelSmoothing:f']],
  ['crossEntropyBackward', ['hidden:t', 'wordEmb:t', 'targets:t', 'lse:t', 'weights:t', 'dHidden:t', 'dWordEmb:t', 'tokens:i', 'hiddenSize:i', 'vocab:i', 'labelSmoothing:f']],
  ['adamw', ['param:t', 'grad:t', 'm:t', 'v:t', 'size:i', 'lr:f', 'beta1:f', 'beta2:f', 'eps:f', 'weightDecay:f', 'step:i', 'gradScale:f']],
  ['sumSquares', ['x:t', 'size:i', 'out:t', 'outIndex:i']],
  ['fill', ['x:t', 'offset:i', 'size:i', 'value:f']],
  ['copy', ['src:t', 'srcOffset:i', 'dst:t', 'dstOffset:i', 'size:i']],
  ['scale', ['x:t', 'size:i', 'factor:f']],
];

/** The schema as one string ("op(name:kind,…);…"), compared with the addon's at load time. */
export function schemaSignature(): string {
  return OP_SCHEMA.map(([op, fields]) => `${op}(${fields.join(',')})`).join(';');
}
