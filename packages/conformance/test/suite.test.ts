// Properties of the suite itself: coverage of the catalogue, case naming, seeding, the comparison
// rules and the report.
import { createReferenceBackend } from '@blankglm/backend-ref';
import { OP_NAMES, Rng } from '@blankglm/tensor';
import { describe, expect, it } from 'vitest';
import {
  allCases, bf16Ulp, caseSeed, compareExact, compareFloat, formatReport, listCases, OP_THRESHOLD_CLASS, runConformance, THRESHOLDS, thresholdFor,
} from '../src/index.js';

describe('cases', () => {
  it('cover every op of the catalogue in the quick tier and again at real GLM sizes in the full tier', () => {
    const quick = listCases({ tier: 'quick' });
    const full = listCases({ tier: 'full' });
    for (const op of OP_NAMES) {
      expect(quick.filter((c) => c.op === op).length, op).toBeGreaterThanOrEqual(3);
      expect(full.filter((c) => c.op === op && c.tier === 'full').length, op).toBeGreaterThanOrEqual(1);
    }
  });

  it('have unique names that carry their parameters', () => {
    const names = allCases().map((c) => c.name);
    expect(new Set(names).size).toBe(names.length);
    expect(names).toContain('linear(rows=33,in=65,out=129,act=gelu_tanh,bias=yes)');
    expect(names).toContain('attention(B=2,L=63,heads=4,D=16,mask=glm(sep=1),layout=separate,dropout=0.1,lse=yes)');
    expect(names).toContain('attentionBackward(B=2,L=65,heads=2,D=16,mask=packed(segments=3,pad=5),layout=separate,dropout=0)');
    expect(names).toContain('attention(B=2,Lq=1,Lk=65,capacity=80,heads=4,D=16,mask=kvCache(context=40),layout=kvCache,dropout=0,lse=no)');
    expect(names).toContain('crossEntropy(T=48,H=1024,V=30592,labelSmoothing=0.1)');
    expect(names).toContain('adamw(size=4099,weightDecay=0.1,gradScale=0.0009765625,step=1000)');
    for (const n of names) expect(n).toMatch(/^\w+\((\w+=[^,]+)(,\w+=[^,()]+(\([^)]*\))?)*\)$/);
  });

  it('include the GLM mask with the separator at 1, the middle and L−1, packed rows, and dropout on and off', () => {
    const names = listCases({ ops: ['attention'] }).map((c) => c.name);
    for (const m of ['glm(sep=1)', 'glm(sep=L/2)', 'glm(sep=L-1)', 'packed(', 'kvCache(']) expect(names.some((n) => n.includes(m)), m).toBe(true);
    expect(names.some((n) => n.includes('dropout=0.1'))).toBe(true);
    expect(names.some((n) => n.includes('dropout=0,'))).toBe(true);
  });

  it('draw the same inputs from the same seed and different ones from another', () => {
    const c = listCases({ filter: 'attentionBackward(B=1,L=65' })[0]!;
    const a = c.build(new Rng(caseSeed(1, c.name)), 'f32');
    const b = c.build(new Rng(caseSeed(1, c.name)), 'f32');
    const other = c.build(new Rng(caseSeed(2, c.name)), 'f32');
    expect(Object.keys(a.tensors)).toEqual(Object.keys(b.tensors));
    for (const k of Object.keys(a.tensors)) expect(a.tensors[k]!.data).toEqual(b.tensors[k]!.data);
    expect(other.tensors.qkv!.data).not.toEqual(a.tensors.qkv!.data);
    expect(caseSeed(1, c.name)).not.toBe(caseSeed(1, `${c.name} `));
  });

  it('filter by substring and by RegExp', () => {
    expect(listCases({ filter: 'scale(' }).every((c) => c.op === 'scale')).toBe(true);
    expect(listCases({ filter: /^copy\(dtype=i32/ }).map((c) => c.name)).toEqual(['copy(dtype=i32,size=63,srcOffset=1,dstOffset=2,sameBuffer=no)']);
  });
});

describe('comparison', () => {
  it('computes NMSE against the smaller of the result and the change the reference made', () => {
    const expected = [1, 2, 3, 4];
    const got = [1, 2, 3, 4.1];
    const cmp = compareFloat('y', got, expected, 1e-3);
    expect(cmp.nmse).toBeCloseTo(0.01 / 30, 12);
    expect(cmp.ok).toBe(true);
    // Accumulation into a large buffer: judged on what was added (2 → 2.1 vs 2 → 2.2), not diluted by the buffer.
    const acc = compareFloat('dW', [100, 102.1], [100, 102.2], 1e-3, [100, 100]);
    expect(acc.nmse).toBeCloseTo(0.01 / 4.84, 6);
    expect(acc.ok).toBe(false);
    expect(acc.message).toBe('dW: NMSE 0.002066 > threshold 0.001');
    expect(acc.diffs).toEqual([{ index: 1, got: 102.1, expected: 102.2 }]);
    // Overwriting large old content with a small result (x *= 1/64): judged on the result, 1% off fails.
    const shrink = compareFloat('x', [1.01 / 64, 2.02 / 64], [1 / 64, 2 / 64], 1e-7, [1, 2]);
    expect(shrink.nmse).toBeCloseTo(1e-4, 8);
    expect(shrink.ok).toBe(false);
    // An output that is rounding noise (mathematically zero) is judged on the change instead.
    const noise = compareFloat('dq', [3e-9, -2e-9], [1e-17, 0], 1e-6, [0.5, -1]);
    expect(noise.ok).toBe(true);
    expect(noise.nmse).toBeCloseTo((9e-18 + 4e-18) / 1.25, 25);
  });

  it('counts a one-ulp difference of a bf16 output as its rounding, and a two-ulp one as an error', () => {
    expect(bf16Ulp(0.13)).toBe(2 ** -10);
    expect(bf16Ulp(1)).toBe(2 ** -7);
    expect(bf16Ulp(-0.999)).toBe(2 ** -8);
    // dW (bf16) += a small change: the GPU rounded the sum to the neighbouring bf16 value (as seen on an H200).
    const before = [0.125];
    expect(compareFloat('dW', [0.130859375], [0.1298828125], 5e-3, before).ok).toBe(false);
    expect(compareFloat('dW', [0.130859375], [0.1298828125], 5e-3, before, 'bf16').ok).toBe(true);
    const twoUlps = compareFloat('dW', [0.1318359375], [0.1298828125], 5e-3, before, 'bf16');
    expect(twoUlps.ok).toBe(false);
    expect(twoUlps.diffs).toEqual([{ index: 0, got: 0.1318359375, expected: 0.1298828125 }]);
  });

  it('fails any NaN, requires infinities to match in sign, and holds an all-zero reference to the absolute error', () => {
    expect(compareFloat('x', [0, Number.NaN], [0, 1], 1).message).toBe('x: NaN at [1] (expected 1)');
    expect(compareFloat('x', [Number.NEGATIVE_INFINITY, 1], [Number.NEGATIVE_INFINITY, 1], 1e-7).ok).toBe(true);
    expect(compareFloat('x', [Number.POSITIVE_INFINITY, 1], [Number.NEGATIVE_INFINITY, 1], 1e-7).message).toBe('x: infinity mismatch at [0]: got Infinity, expected -Infinity');
    expect(compareFloat('x', [1e-3, 0], [0, 0], 1e-7).ok).toBe(false);
    expect(compareFloat('x', [1e-5, 0], [0, 0], 1e-9).nmse).toBeCloseTo(1e-10, 15);
    expect(compareFloat('x', [1, 1], [1, Number.NaN], 1).message).toContain('the reference produced NaN at [1]');
  });

  it('compares integers exactly', () => {
    expect(compareExact('ids', new Int32Array([1, 2, 3]), new Int32Array([1, 2, 3])).ok).toBe(true);
    const bad = compareExact('ids', new Int32Array([1, 2, 4]), new Int32Array([1, 2, 3]));
    expect(bad.message).toBe('ids: 1 of 3 integer elements differ');
    expect(bad.diffs).toEqual([{ index: 2, got: 4, expected: 3 }]);
  });

  it('takes thresholds from one table, per op class and per output, with one bf16 threshold', () => {
    for (const op of OP_NAMES) expect(OP_THRESHOLD_CLASS[op], op).toBeDefined();
    expect(thresholdFor('copy', 'dst', 'f32')).toBe(1e-7);
    expect(thresholdFor('layerNorm', 'y', 'f32')).toBe(1e-6);
    expect(thresholdFor('crossEntropy', 'losses', 'f32')).toBe(1e-6);
    expect(thresholdFor('crossEntropyBackward', 'dWordEmb', 'f32')).toBe(5e-4);
    expect(thresholdFor('attention', 'out', 'f32')).toBe(5e-4);
    expect(thresholdFor('attention', 'lse', 'f32')).toBe(1e-6);
    expect(thresholdFor('linear', 'y', 'bf16')).toBe(THRESHOLDS.bf16);
  });
});

describe('runs', () => {
  it('pass on the reference with bf16 tensors (inputs rounded the same way on both sides)', () => {
    const report = runConformance(() => createReferenceBackend(), { dtype: 'bf16', ops: ['linear', 'layerNorm', 'attention', 'adamw', 'copy'] });
    expect(report.totals.fail, formatReport(report)).toBe(0);
    expect(report.dtype).toBe('bf16');
    expect(report.cases.find((c) => c.op === 'linear')!.threshold).toBe(THRESHOLDS.bf16);
  });

  it('reuse a backend instance without disposing it, and leave it with no live buffers', () => {
    const backend = createReferenceBackend();
    const report = runConformance(backend, { ops: ['gatherRows', 'scatterAddRows'] });
    expect(report.ok).toBe(true);
    expect(backend.liveBuffers()).toBe(0);
    expect(() => backend.alloc('f32', 1)).not.toThrow();
    backend.dispose();
  });

  it('report per-op rows and a failing case with its details and how to rerun it', () => {
    const report = runConformance(() => createReferenceBackend(), { filter: /^scale\(size=(1|33),/ });
    expect(report.summary).toEqual([{ op: 'scale', cases: 2, pass: 2, fail: 0, unsupported: 0, worstRatio: 0 }]);
    const text = formatReport(report);
    expect(text.split('\n')[0]).toBe('conformance: reference on reference (scalar TypeScript, f64 accumulation) — tier quick, f32, seed 1');
    expect(text).toMatch(/^scale\s+2\s+2\s+0\s+0\s+0$/m);
    expect(text).toMatch(/^total\s+2\s+2\s+0\s+0$/m);
  });
});
