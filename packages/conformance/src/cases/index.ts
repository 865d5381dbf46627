// Every conformance case, by op. Each op of OP_CATALOGUE must have cases (checked by a test).
import type { OpName } from '@blankglm/tensor';
import type { ConformanceCase } from '../case.js';
import { attentionBackwardCases, attentionCases } from './attention.js';
import {
  adamwCases, copyCases, dropoutAddCases, dropoutBackwardCases, fillCases, gatherRowsCases, scaleCases, scatterAddRowsCases, sumSquaresCases,
} from './elementwise.js';
import { embeddingBackwardCases, embeddingCases } from './embedding.js';
import { linearBackwardCases, linearCases } from './linear.js';
import { crossEntropyBackwardCases, crossEntropyCases, logitsCases } from './loss.js';
import { layerNormBackwardCases, layerNormCases } from './norm.js';

const GENERATORS: Record<OpName, () => ConformanceCase[]> = {
  embedding: embeddingCases,
  embeddingBackward: embeddingBackwardCases,
  layerNorm: layerNormCases,
  layerNormBackward: layerNormBackwardCases,
  linear: linearCases,
  linearBackward: linearBackwardCases,
  attention: attentionCases,
  attentionBackward: attentionBackwardCases,
  dropoutAdd: dropoutAddCases,
  dropoutBackward: dropoutBackwardCases,
  gatherRows: gatherRowsCases,
  scatterAddRows: scatterAddRowsCases,
  logits: logitsCases,
  crossEntropy: crossEntropyCases,
  crossEntropyBackward: crossEntropyBackwardCases,
  adamw: adamwCases,
  sumSquares: sumSquaresCases,
  fill: fillCases,
  copy: copyCases,
  scale: scaleCases,
};

/** All cases of every op, in catalogue order (both tiers; filter by `tier`). Cheap: no data is generated. */
export function allCases(): ConformanceCase[] {
  return (Object.keys(GENERATORS) as OpName[]).flatMap((op) => GENERATORS[op]());
}
