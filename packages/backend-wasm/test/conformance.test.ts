// The shared conformance suite, single- and multi-threaded. Ops without a kernel show as
// unsupported (skipped with the ledger's reason), never as silent passes.
import { defineConformanceTests } from '@blankglm/conformance/vitest';
import { createWasmBackend } from '../dist/index.js';

defineConformanceTests('wasm (1 thread)', () => createWasmBackend({ threads: 1 }));
defineConformanceTests('wasm (2 threads)', () => createWasmBackend({ threads: 2 }));

// The real GLM sizes (hidden 768/1024, vocab 30592, L = 512) only when asked for.
if (process.env.BLANKGLM_CONFORMANCE_FULL) {
  defineConformanceTests('wasm (full, 2 threads)', () => createWasmBackend({ threads: 2 }), { tier: 'full', granularity: 'case' });
}
