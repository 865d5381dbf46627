// GLM's learning-rate schedule, `AnnealingLR` of the original learning_rates.py (glm-reference §3),
// reproduced exactly:
//
//   warmupIters = warmup × decayIters                 (warmup is a fraction of the decay iterations)
//   n ≤ warmupIters:      lr = peak × n / warmupIters  (linear warmup; n = updates done so far)
//   cosine:               t = min(1, (n − warmupIters) / (decayIters − warmupIters))
//                         lr = peak × (ratio + (1 − ratio) × (cos(π t) + 1) / 2)   → clamped at peak × ratio
//   linear:               t = (n − warmupIters) / (decayIters − warmupIters)   (not clamped, as the original)
//                         lr = peak − peak × (1 − ratio) × t
//   constant:             lr = peak
//
// The original's scheduler is stepped after each optimizer step and starts at n = 0, so update
// number k (1-based) uses lr(k − 1): the very first update of a warmed-up run has lr 0, as there.
// One deliberate difference: the unclamped linear decay would go negative past decayIters; here
// it stops at 0 (AdamW refuses a negative learning rate).

export type DecayStyle = 'cosine' | 'linear' | 'constant';

export interface ScheduleOptions {
  /** Peak learning rate (GLM-Large: 2e-4, GLM-Base: 4e-4). */
  lr: number;
  /** Iterations the decay spans, warmup included (the original's lr_decay_iters; default: the run's total steps). */
  decayIters: number;
  /** Warmup as a fraction of decayIters (the original's --warmup; GLM-Base/Large 0.05, 2B/10B 0.04). */
  warmup: number;
  decayStyle: DecayStyle;
  /** Floor as a fraction of the peak (the original's lr_decay_ratio: 0.05 for Base/Large, 0.1 for 2B/10B). */
  decayRatio: number;
}

/** The schedule as a pure function of the number of completed updates. */
export class AnnealingLR {
  readonly options: Readonly<ScheduleOptions>;
  readonly warmupIters: number;

  constructor(options: ScheduleOptions) {
    const { lr, decayIters, warmup, decayStyle, decayRatio } = options;
    if (!(lr >= 0 && Number.isFinite(lr))) throw new RangeError(`schedule: lr must be a finite number >= 0, got ${lr}`);
    if (!Number.isInteger(decayIters) || decayIters < 1) throw new RangeError(`schedule: decayIters must be a positive integer, got ${decayIters}`);
    if (!(warmup >= 0 && warmup < 1)) throw new RangeError(`schedule: warmup is a fraction of decayIters in [0, 1), got ${warmup}`);
    if (!(decayRatio >= 0 && decayRatio <= 1)) throw new RangeError(`schedule: decayRatio must be in [0, 1], got ${decayRatio}`);
    if (!['cosine', 'linear', 'constant'].includes(decayStyle)) throw new RangeError(`schedule: decayStyle must be cosine, linear or constant, got '${String(decayStyle)}'`);
    this.options = { ...options };
    // The original passes warmup × lr_decay_iters (a float) and compares the step count to it.
    this.warmupIters = warmup * decayIters;
  }

  /** The learning rate of the update that follows `completedUpdates` updates. */
  at(completedUpdates: number): number {
    const n = completedUpdates;
    const { lr: peak, decayIters, decayStyle, decayRatio } = this.options;
    const w = this.warmupIters;
    if (w > 0 && n <= w) return (peak * n) / w;
    const span = decayIters - w;
    if (decayStyle === 'cosine') {
      const t = Math.min(1, (n - w) / span);
      return peak * (decayRatio + ((1 - decayRatio) * (Math.cos(Math.PI * t) + 1)) / 2);
    }
    if (decayStyle === 'linear') return Math.max(0, peak - peak * (1 - decayRatio) * ((n - w) / span));
    return peak;
  }
}
