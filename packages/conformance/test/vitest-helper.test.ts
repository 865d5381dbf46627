// The vitest helper on a backend that does not support one op: that op's test is skipped with the
// backend's reason (visible in the vitest output), the others pass, and the printed report counts
// the unsupported cases and shows the ledger.
import { afterAll, expect } from 'vitest';
import { defineConformanceTests } from '../src/vitest.js';
import { FaultyBackend } from './faulty-backend.js';

const reason = 'Σx² needs a tree reduction, not written yet';
let printed = '';

defineConformanceTests(
  'reference without sumSquares',
  () => new FaultyBackend('no-sumSquares', { supports: (op) => (op === 'sumSquares' ? { supported: false, reason } : undefined), ledger: { sumSquares: reason } }),
  { ops: ['sumSquares', 'scale'], log: (text) => (printed = text) },
);

afterAll(() => {
  expect(printed).toMatch(/^sumSquares\s+4\s+0\s+0\s+4\s+—\s+ledger: Σx² needs a tree reduction, not written yet$/m);
  expect(printed).toMatch(/^scale\s+4\s+4\s+0\s+0\s+0$/m);
  expect(printed).toContain(`UNSUPPORTED sumSquares(size=65537,outIndex=0)\n  not supported: no-sumSquares: ${reason} (ledger: ${reason})`);
});
