// AdamW over a GlmModel's parameters (PyTorch AdamW / apex FusedAdam in adam_w_mode): decoupled
// weight decay, none on biases and LayerNorm parameters (ParamSpec.decay), optional clipping of
// the global gradient norm folded into the update as `gradScale` (gradients stay untouched).
import { runAll, type Tensor } from '@blankglm/tensor';
import { numel, type StateDict } from '../params.js';
import type { GlmModel } from '../model/glm-model.js';

export interface AdamWOptions {
  /** Learning rate (a schedule passes its own value to step()). */
  lr: number;
  beta1?: number; // 0.9
  beta2?: number; // 0.999 (GLM pretraining: 0.98 or 0.95)
  eps?: number; // 1e-8 (GLM-Base/Large: 1e-6)
  /** Decoupled weight decay for parameters with spec.decay (0.01; GLM pretraining 0.1). */
  weightDecay?: number;
  /** Clip the global gradient norm to this (GLM: 1.0); 0 or undefined: no clipping. */
  maxGradNorm?: number;
}

/** Optimizer state as host arrays, for checkpoints: first and second moments by parameter name. */
export interface AdamWState {
  step: number;
  m: StateDict;
  v: StateDict;
}

export interface StepResult {
  /** Global gradient norm before clipping. */
  gradNorm: number;
  /** Factor the gradients were scaled by (1 when not clipped). */
  gradScale: number;
  lr: number;
  step: number;
}

interface Slot {
  name: string;
  size: number;
  decay: boolean;
  param: Tensor;
  grad: Tensor;
  m: Tensor; // f32, same size as param
  v: Tensor;
}

export class AdamW {
  readonly lr: number;
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  readonly weightDecay: number;
  readonly maxGradNorm: number;
  private stepCount = 0;
  private slots: Slot[] = [];
  private disposed = false;

  constructor(
    private readonly model: GlmModel,
    options: AdamWOptions,
  ) {
    this.lr = options.lr;
    this.beta1 = options.beta1 ?? 0.9;
    this.beta2 = options.beta2 ?? 0.999;
    this.eps = options.eps ?? 1e-8;
    this.weightDecay = options.weightDecay ?? 0.01;
    this.maxGradNorm = options.maxGradNorm ?? 0;
    const check = (name: string, v: number, ok: boolean): void => {
      if (!ok) throw new RangeError(`AdamW: ${name} = ${v} is out of range`);
    };
    check('lr', this.lr, this.lr >= 0 && Number.isFinite(this.lr));
    check('beta1', this.beta1, this.beta1 >= 0 && this.beta1 < 1);
    check('beta2', this.beta2, this.beta2 >= 0 && this.beta2 < 1);
    check('eps', this.eps, this.eps > 0);
    check('weightDecay', this.weightDecay, this.weightDecay >= 0);
    check('maxGradNorm', this.maxGradNorm, this.maxGradNorm >= 0);
    const be = model.backend;
    try {
      for (const { spec, param, grad } of model.trainables()) {
        const size = numel(spec.shape);
        this.slots.push({
          name: spec.name, size, decay: spec.decay, param, grad,
          m: be.alloc('f32', size, `adam.m:${spec.name}`), v: be.alloc('f32', size, `adam.v:${spec.name}`),
        });
      }
    } catch (e) {
      this.dispose();
      throw e;
    }
  }

  /** Updates completed so far (the next step is number step + 1 in the bias corrections). */
  get step(): number {
    return this.stepCount;
  }

  /**
   * One update from the current gradients, with `lr` (default: the constructor's). A caller that
   * has just computed `model.globalGradNorm()` of these gradients (to check it, as the trainer
   * does) passes it as `gradNorm`, saving a pass over the gradients and a wait for the device.
   */
  update(lr: number = this.lr, known: { gradNorm?: number } = {}): StepResult {
    if (this.disposed) throw new Error('AdamW: used after dispose()');
    if (!(lr >= 0 && Number.isFinite(lr))) throw new RangeError(`AdamW.update: lr must be a finite number >= 0, got ${lr}`);
    if (known.gradNorm !== undefined && !(known.gradNorm >= 0)) throw new RangeError(`AdamW.update: gradNorm must be a number >= 0, got ${known.gradNorm}`);
    const gradNorm = known.gradNorm ?? this.model.globalGradNorm();
    if (!Number.isFinite(gradNorm)) throw new RangeError(`AdamW.update: the gradient norm is ${gradNorm}; refusing to update the parameters`);
    // Megatron's clip_grad_norm: scale by maxNorm / (norm + 1e-6) when that is below 1.
    const gradScale = this.maxGradNorm > 0 ? Math.min(1, this.maxGradNorm / (gradNorm + 1e-6)) : 1;
    this.stepCount++;
    // One sequence: backends may merge the per-parameter updates into one launch.
    runAll(
      this.model.backend,
      this.slots.map((s) => ({
        op: 'adamw',
        args: {
          param: s.param, grad: s.grad, m: s.m, v: s.v, size: s.size, lr, beta1: this.beta1, beta2: this.beta2, eps: this.eps,
          weightDecay: s.decay ? this.weightDecay : 0, step: this.stepCount, gradScale,
        },
      })),
    );
    return { gradNorm, gradScale, lr, step: this.stepCount };
  }

  /** Host copies of the moments and the step count. */
  getState(): AdamWState {
    const be = this.model.backend;
    const m: StateDict = new Map();
    const v: StateDict = new Map();
    for (const s of this.slots) {
      m.set(s.name, Float32Array.from(be.read(s.m)));
      v.set(s.name, Float32Array.from(be.read(s.v)));
    }
    return { step: this.stepCount, m, v };
  }

  /** Restores moments and step count (exact resume); every parameter must be present with its size. */
  setState(state: AdamWState): void {
    if (!Number.isInteger(state.step) || state.step < 0) throw new RangeError(`AdamW state: step must be an integer >= 0, got ${state.step}`);
    for (const s of this.slots) {
      for (const [kind, dict] of [['m', state.m], ['v', state.v]] as const) {
        const data = dict.get(s.name);
        if (!data) throw new RangeError(`AdamW state: ${kind} is missing parameter '${s.name}'`);
        if (data.length !== s.size) throw new RangeError(`AdamW state: ${kind}['${s.name}'] has ${data.length} elements, expected ${s.size}`);
      }
    }
    const known = new Set(this.slots.map((s) => s.name));
    for (const dict of [state.m, state.v]) {
      for (const name of dict.keys()) if (!known.has(name)) throw new RangeError(`AdamW state: unexpected parameter '${name}'`);
    }
    const be = this.model.backend;
    for (const s of this.slots) {
      be.write(s.m as Tensor & { dtype: 'f32' }, state.m.get(s.name)!);
      be.write(s.v as Tensor & { dtype: 'f32' }, state.v.get(s.name)!);
    }
    this.stepCount = state.step;
  }

  /** Frees the moment buffers (the model's parameters and gradients stay). */
  dispose(): void {
    if (this.disposed) return;
    for (const s of this.slots) {
      this.model.backend.free(s.m);
      this.model.backend.free(s.v);
    }
    this.slots = [];
    this.disposed = true;
  }
}
