// Target losses that forward() leaves on the device until someone looks at them. Reading them is
// the one thing in a forward pass that waits for a GPU, so a training step that reads its loss after
// backward (as the trainer does) keeps the device busy from the forward straight into the backward.
import type { Backend, Tensor } from '@blankglm/tensor';
import type { BufferGroup } from './buffers.js';

/** Losses and log-probabilities at the loss positions (lossMask = 1), in row-major order. */
export interface TargetScores {
  row: Int32Array;
  position: Int32Array;
  tokenId: Int32Array;
  /** Cross-entropy as trained (with label smoothing, if any). */
  loss: Float32Array;
  /** log p(target) under the model (no smoothing). */
  logProb: Float32Array;
}

export class DeviceScores {
  private group: BufferGroup | null;
  private failure: unknown = null;
  private meanLoss = 0;

  /**
   * `losses` (and, with label smoothing, the unsmoothed `plain` losses) live in `group`, which this
   * object frees once it has read them; `targets.loss` / `logProb` are filled then.
   */
  constructor(
    private readonly backend: Backend,
    group: BufferGroup,
    private readonly losses: Tensor,
    private readonly plain: Tensor | null,
    private readonly scores: TargetScores,
    private readonly onSettled: (s: DeviceScores) => void,
  ) {
    this.group = group;
  }

  /** Reads the losses (the first time only; this waits for the device) and frees their buffers. */
  settle(): void {
    if (this.failure !== null) throw this.failure;
    const g = this.group;
    if (!g) return;
    this.group = null;
    this.onSettled(this);
    try {
      const t = this.scores;
      const n = t.loss.length;
      t.loss.set(this.backend.read(this.losses) as Float32Array);
      if (this.plain) {
        const p = this.backend.read(this.plain);
        for (let i = 0; i < n; i++) t.logProb[i] = -p[i]!;
      } else {
        for (let i = 0; i < n; i++) t.logProb[i] = -t.loss[i]!;
      }
      let sum = 0;
      for (let i = 0; i < n; i++) sum += t.loss[i]!;
      this.meanLoss = sum / n;
    } catch (e) {
      this.failure = e;
      throw e;
    } finally {
      g.free();
    }
  }

  /** Σ loss / number of targets. */
  get loss(): number {
    this.settle();
    return this.meanLoss;
  }

  get targets(): TargetScores {
    this.settle();
    return this.scores;
  }
}
