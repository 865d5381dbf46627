// The shared conformance suite, single- and multi-threaded. Ops without a kernel would show as
// unsupported (skipped with the ledger's reason), never as silent passes.
import { defineConformanceTests } from '@blankglm/conformance/vitest';
import { describe, expect, it } from 'vitest';
import { createWasmBackend } from '../dist/index.js';

// The suite's cross-entropy backward starts at V = 2 (at V = 1 the exact gradient is 0 and the
// reference's f64-vs-f32 rounding is all there is to compare); the exact V = 1 answer is checked below.
defineConformanceTests('wasm (1 thread)', () => createWasmBackend({ threads: 1 }));
defineConformanceTests('wasm (2 threads)', () => createWasmBackend({ threads: 2 }));

// The real GLM sizes (hidden 768/1024, vocab 30592, L = 512) only when asked for.
if (process.env.BLANKGLM_CONFORMANCE_FULL) {
  defineConformanceTests('wasm (full, 2 threads)', () => createWasmBackend({ threads: 2 }), { tier: 'full', granularity: 'case' });
}

describe('crossEntropyBackward with a one-word vocabulary', () => {
  it('gives the exact gradient: dHidden = 0 and dWordEmb unchanged, with and without label smoothing', () => {
    const b = createWasmBackend({ threads: 2 });
    const T = 9;
    const H = 5;
    const put = (data: number[], dtype: 'f32' | 'i32' = 'f32') => {
      const t = b.alloc(dtype, data.length);
      b.write(t, data);
      return t;
    };
    const hidden = put(Array.from({ length: T * H }, (_, i) => Math.sin(i * 1.7) * 3));
    const wordEmb = put([0.3, -1.2, 0.7, 2.5, -0.01]);
    const targets = put(new Array(T).fill(0), 'i32');
    const weights = put(Array.from({ length: T }, (_, i) => (i % 3 === 0 ? 0 : 1 / T)));
    for (const labelSmoothing of [0, 0.1]) {
      const losses = b.alloc('f32', T);
      const lse = b.alloc('f32', T);
      const ce = { hidden, wordEmb, targets, losses, lse, tokens: T, hiddenSize: H, vocab: 1, labelSmoothing };
      b.run('crossEntropy', ce);
      const zero = (t: Parameters<typeof b.read>[0]) => [...b.read(t)].map((v) => (v === 0 ? 0 : v)); // −0 counts as 0
      expect(zero(losses)).toEqual(new Array(T).fill(0)); // log 1 = 0
      const dHidden = put(new Array(T * H).fill(7)); // overwritten
      const dWordEmb = put([1, 2, 3, 4, 5]); // accumulated into
      b.run('crossEntropyBackward', { ...ce, weights, dHidden, dWordEmb });
      expect(zero(dHidden)).toEqual(new Array(T * H).fill(0));
      expect([...b.read(dWordEmb)]).toEqual([1, 2, 3, 4, 5]);
      for (const t of [losses, lse, dHidden, dWordEmb]) b.free(t);
    }
    b.dispose();
  });
});
