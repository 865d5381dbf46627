import { describe, expect, it } from 'vitest';
import { Rng, counterHash32, counterUniform } from '../src/index.js';

describe('Rng', () => {
  it('is deterministic per seed and differs across seeds', () => {
    const a = new Rng(42);
    const b = new Rng(42);
    const c = new Rng(43);
    const xa = Array.from({ length: 8 }, () => a.nextU32());
    const xb = Array.from({ length: 8 }, () => b.nextU32());
    const xc = Array.from({ length: 8 }, () => c.nextU32());
    expect(xa).toEqual(xb);
    expect(xa).not.toEqual(xc);
  });

  it('resumes exactly from a saved state', () => {
    const a = new Rng('resume');
    for (let i = 0; i < 100; i++) a.float();
    const saved = JSON.parse(JSON.stringify(a.getState()));
    const next = Array.from({ length: 20 }, () => a.int(1000));
    const b = Rng.fromState(saved);
    expect(Array.from({ length: 20 }, () => b.int(1000))).toEqual(next);
  });

  it('rejects malformed states with a clear message', () => {
    expect(() => Rng.fromState({ algorithm: 'xoshiro128**', s: [0, 0, 0, 0] })).toThrow(/all zero/);
    expect(() => Rng.fromState({ algorithm: 'mt' as 'xoshiro128**', s: [1, 2, 3, 4] })).toThrow(/not an Rng state/);
  });

  it('draws uniform integers and floats with the right moments', () => {
    const r = new Rng(7);
    const counts = new Array(10).fill(0);
    let sum = 0;
    const n = 100_000;
    for (let i = 0; i < n; i++) {
      counts[r.int(10)]++;
      sum += r.float();
    }
    for (const c of counts) expect(Math.abs(c - n / 10)).toBeLessThan(600);
    expect(Math.abs(sum / n - 0.5)).toBeLessThan(0.005);
  });

  it('draws normals with mean 0 and std 1', () => {
    const r = new Rng(9);
    let s = 0;
    let s2 = 0;
    const n = 50_000;
    for (let i = 0; i < n; i++) {
      const x = r.normal();
      s += x;
      s2 += x * x;
    }
    expect(Math.abs(s / n)).toBeLessThan(0.02);
    expect(Math.abs(Math.sqrt(s2 / n - (s / n) ** 2) - 1)).toBeLessThan(0.02);
  });

  it('forks independent streams without moving the parent', () => {
    const a = new Rng(1);
    const before = a.getState();
    const f1 = a.fork('data');
    const f2 = a.fork('dropout');
    expect(a.getState()).toEqual(before);
    expect(f1.nextU32()).not.toEqual(f2.nextU32());
  });
});

describe('counterHash32', () => {
  it('is a pure function of its counters (pinned values for cross-backend parity)', () => {
    expect(counterHash32(0, 0, 0)).toBe(counterHash32(0, 0, 0));
    expect(counterHash32(1, 2, 3)).not.toBe(counterHash32(1, 2, 4));
    // Pinned so that AssemblyScript and CUDA implementations can check their bits.
    expect([counterHash32(0, 0, 0), counterHash32(1234, 5, 678), counterHash32(0xffffffff, 0xffffffff, 0xffffffff)]).toMatchInlineSnapshot(`
      [
        2605812845,
        3041185900,
        1179372525,
      ]
    `);
  });

  it('drops close to p of elements', () => {
    let dropped = 0;
    const n = 200_000;
    for (let i = 0; i < n; i++) if (counterUniform(99, 3, i) < 0.1) dropped++;
    expect(Math.abs(dropped / n - 0.1)).toBeLessThan(0.003);
  });
});
