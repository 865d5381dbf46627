// The dispatch table: which host wrapper runs each op of the catalogue. An op missing here is
// reported as unsupported (with the ledger's reason) instead of failing deep inside.
// To add an op: write src/ops/<op>.ts exporting a `WasmOp<'<op>'>` and add it below
// (one import line, one table entry) — see CONTRIBUTING-KERNELS.md.
import type { WasmOpTable } from './context.js';
import { linear, linearBackward, logits } from './linear.js';
import { copy, fill } from './memory-ops.js';
import { crossEntropy, crossEntropyBackward } from './output.js';

export const WASM_OPS: WasmOpTable = {
  fill,
  copy,
  linear,
  linearBackward,
  logits,
  crossEntropy,
  crossEntropyBackward,
};

export type { WasmOp, WasmOpContext, WasmOpTable, SplitOptions } from './context.js';
