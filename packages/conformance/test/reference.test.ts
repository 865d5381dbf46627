// The suite run through its own vitest helper on a second reference backend: every case of the
// quick tier must pass (the oracle agrees with itself, and no case is malformed), one test per op,
// and the last test prints the per-op report table.
import { createReferenceBackend } from '@blankglm/backend-ref';
import { defineConformanceTests } from '../src/vitest.js';

defineConformanceTests('reference', () => createReferenceBackend());

// One test per case works too (a failure then names the case in the test title).
defineConformanceTests('reference, one test per case', () => createReferenceBackend(), {
  granularity: 'case',
  ops: ['copy', 'fill'],
  printReport: false,
});
