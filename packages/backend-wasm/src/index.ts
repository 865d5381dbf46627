export { WasmBackend, WasmUnavailableError, createWasmBackend, resolveVariant, type WasmBackendOptions } from './backend.js';
export { OutOfMemoryError, formatBytes } from './arena.js';
export { WorkerDiedError, type KernelCall } from './pool.js';
export { enableRelaxedSimd, hasSimd, hasThreads, type Variant } from './features.js';
export { WASM_OPS, type WasmOp, type WasmOpContext, type WasmOpTable, type SplitOptions } from './ops/index.js';
export { backend } from './entry.js';
export { assertFits, glmParameterCount, largestBatchThatFits, planMemory, type MemoryPlan, type PlanConfig, type PlanOptions } from './plan.js';
