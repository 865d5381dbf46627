// The dispatch table: which host wrapper runs each op of the catalogue. An op missing here is
// reported as unsupported (with the ledger's reason) instead of failing deep inside.
// To add an op: write src/ops/<op>.ts exporting a `WasmOp<'<op>'>` and add it below
// (one import line, one table entry) — see CONTRIBUTING-KERNELS.md.
import type { WasmOpTable } from './context.js';
import { linear, linearBackward, logits } from './linear.js';
import { copy, fill } from './memory-ops.js';
import { crossEntropy, crossEntropyBackward } from './output.js';
import { attention, attentionBackward } from './attention.js';
import { dropoutAdd, dropoutBackward, scale } from './elementwise.js';
import { layerNorm, layerNormBackward } from './layer-norm.js';
import { adamw, sumSquares } from './optimizer.js';
import { embedding, embeddingBackward, gatherRows, scatterAddRows } from './rows.js';

export const WASM_OPS: WasmOpTable = {
  fill,
  copy,
  linear,
  linearBackward,
  logits,
  crossEntropy,
  crossEntropyBackward,
  embedding,
  embeddingBackward,
  layerNorm,
  layerNormBackward,
  attention,
  attentionBackward,
  dropoutAdd,
  dropoutBackward,
  gatherRows,
  scatterAddRows,
  adamw,
  sumSquares,
  scale,
};

export type { WasmOp, WasmOpContext, WasmOpTable, SplitOptions } from './context.js';
