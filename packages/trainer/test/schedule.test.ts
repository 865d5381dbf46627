import { describe, expect, it } from 'vitest';
import { AnnealingLR } from '../src/index.js';

describe('AnnealingLR (the original learning_rates.py)', () => {
  it('reproduces GLM-Base: warmup 5% of 120k decay iterations, cosine to 0.05×, clamped afterwards', () => {
    const s = new AnnealingLR({ lr: 4e-4, decayIters: 120_000, warmup: 0.05, decayStyle: 'cosine', decayRatio: 0.05 });
    expect(s.warmupIters).toBe(6000);
    expect(s.at(0)).toBe(0); // the original's first update runs at lr 0
    expect(s.at(3000)).toBeCloseTo(2e-4, 15);
    expect(s.at(6000)).toBeCloseTo(4e-4, 15);
    // halfway through the decay: (cos(π/2) + 1)/2 = 0.5 → 0.05 + 0.95 × 0.5 = 0.525 of the peak
    expect(s.at(6000 + 57_000)).toBeCloseTo(4e-4 * 0.525, 15);
    expect(s.at(120_000)).toBeCloseTo(2e-5, 15);
    expect(s.at(150_000)).toBeCloseTo(2e-5, 15); // GLM-Base trains 150k steps: the floor holds
    for (let n = 6000; n < 120_000; n += 997) expect(s.at(n + 997)).toBeLessThanOrEqual(s.at(n));
  });

  it('decays linearly without clamping (GLM-RoBERTa), but never below 0', () => {
    const s = new AnnealingLR({ lr: 4e-4, decayIters: 500_000, warmup: 0.06, decayStyle: 'linear', decayRatio: 0.025 });
    expect(s.warmupIters).toBeCloseTo(30_000, 9);
    expect(s.at(500_000)).toBeCloseTo(4e-4 * 0.025, 12);
    expect(s.at(510_000)).toBeLessThan(4e-4 * 0.025); // past the decay: keeps going down, as the original
    expect(s.at(5_000_000)).toBe(0);
  });

  it('has no warmup branch when warmup is 0, a constant style, and refuses bad settings naming them', () => {
    expect(new AnnealingLR({ lr: 1e-3, decayIters: 10, warmup: 0, decayStyle: 'cosine', decayRatio: 0.1 }).at(0)).toBe(1e-3);
    expect(new AnnealingLR({ lr: 1e-3, decayIters: 10, warmup: 0.5, decayStyle: 'constant', decayRatio: 0.1 }).at(9)).toBe(1e-3);
    expect(() => new AnnealingLR({ lr: 1e-3, decayIters: 10, warmup: 1, decayStyle: 'cosine', decayRatio: 0.1 })).toThrow(/warmup is a fraction/);
    expect(() => new AnnealingLR({ lr: 1e-3, decayIters: 0, warmup: 0, decayStyle: 'cosine', decayRatio: 0.1 })).toThrow(/decayIters/);
    expect(() => new AnnealingLR({ lr: 1e-3, decayIters: 10, warmup: 0, decayStyle: 'exp' as 'linear', decayRatio: 0.1 })).toThrow(/decayStyle/);
  });
});
