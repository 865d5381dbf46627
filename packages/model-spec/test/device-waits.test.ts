// Where a training step waits for its device: forward leaves the target losses on the device until
// they are looked at (or the model's next forward / dispose), and AdamW takes a gradient norm the
// caller has just computed instead of computing it again. Checked with a reference backend that
// counts its reads (each would be a wait on a GPU) and its runs.
import { createReferenceBackend } from '@blankglm/backend-ref';
import { Rng, type Backend, type GlmBatch, type OpName } from '@blankglm/tensor';
import { describe, expect, it } from 'vitest';
import { AdamW, GlmModel, MAX_UNREAD_SCORES } from '../src/index.js';
import { blankSample, microConfig, patternText, rowsBatch } from './model-helpers.js';

/** A reference backend with some of its methods replaced (each given the real backend). */
function wrappedReference(overrides: Partial<Record<'read' | 'run' | 'runSequence', (target: Backend) => unknown>>): Backend {
  return new Proxy(createReferenceBackend(), {
    get(target, prop, receiver) {
      const override = overrides[prop as keyof typeof overrides];
      if (override) return override(target);
      const v = Reflect.get(target, prop, receiver);
      return typeof v === 'function' ? v.bind(target) : v;
    },
  });
}

/** A reference backend that counts read() calls and runs of each op (single calls and sequences). */
function countingBackend(): { backend: Backend; reads: () => number; runs: (op: OpName) => number } {
  let reads = 0;
  const runs = new Map<string, number>();
  const count = (op: string): void => void runs.set(op, (runs.get(op) ?? 0) + 1);
  const backend = wrappedReference({
    read: (target) => (...a: Parameters<Backend['read']>) => (reads++, target.read(...a)),
    run: (target) => (op: OpName, args: never) => (count(op), target.run(op, args)),
    runSequence: (target) => (calls: Parameters<NonNullable<Backend['runSequence']>>[0]) => (calls.forEach((c) => count(c.op)), target.runSequence!(calls)),
  });
  return { backend, reads: () => reads, runs: (op) => runs.get(op) ?? 0 };
}

function batch(): GlmBatch {
  return rowsBatch([blankSample(patternText(12, 4, 3), [[2, 5], [8, 10]]), blankSample(patternText(10, 7, 5), [[1, 4]])], 16);
}

describe('forward leaves the target losses on the device until they are used', () => {
  it('reads nothing during forward and backward; the loss read afterwards equals an eager eval', () => {
    const config = microConfig();
    const c = countingBackend();
    const model = GlmModel.create(c.backend, config, { rng: new Rng(5) });
    const b = batch();
    model.zeroGrad();
    const live = c.backend.liveBuffers();
    const r = model.forward(b, { mode: 'train', seed: 1 });
    model.backward();
    expect(c.reads()).toBe(0);
    const loss = r.loss!;
    expect(c.reads()).toBe(1);
    expect(r.targets.loss.length).toBe(r.numTargets);
    expect(r.targets.logProb[0]).toBe(-r.targets.loss[0]!);
    expect(c.reads()).toBe(1); // read once
    expect(c.backend.liveBuffers()).toBe(live); // the losses' buffer went with the read
    // Dropout is off in microConfig, so train and eval forwards agree.
    const again = model.forward(b, { mode: 'eval' });
    expect(again.loss).toBeCloseTo(loss, 6);
    expect(Array.from(again.targets.loss)).toEqual(Array.from(r.targets.loss));
    model.dispose();
    expect(c.backend.liveBuffers()).toBe(0);
  });

  it('results nobody looked at stay valid: read once more than MAX_UNREAD_SCORES pile up, or on dispose', () => {
    const config = microConfig();
    const c = countingBackend();
    const model = GlmModel.create(c.backend, config, { rng: new Rng(5) });
    const b = batch();
    const first = model.forward(b, { mode: 'eval' });
    const second = model.forward(b, { mode: 'eval', labelSmoothing: 0.1 });
    expect(c.reads()).toBe(0); // a step's micro-batches need not wait for each other
    for (let i = 2; i < MAX_UNREAD_SCORES; i++) model.forward(b, { mode: 'eval' });
    expect(c.reads()).toBe(0);
    model.forward(b, { mode: 'eval' }); // one too many: the oldest is read
    expect(c.reads()).toBe(1);
    model.dispose();
    expect(c.reads()).toBe(MAX_UNREAD_SCORES + 2); // all 17 results, the smoothed one with its plain losses too
    expect(c.backend.liveBuffers()).toBe(0);
    expect(second.loss).not.toBe(first.loss); // the smoothed loss
    // logProb stays the unsmoothed log-probability.
    expect(Array.from(second.targets.logProb)).toEqual(Array.from(first.targets.logProb));
    // Spread and JSON see the values, as from a plain object.
    expect({ ...first }.loss).toBe(first.loss);
    expect(JSON.parse(JSON.stringify(first)).loss).toBeCloseTo(first.loss!, 6);
  });

  it('dispose frees every unread result even when reading one fails; that result reports the failure when asked', () => {
    let failReads = false;
    const backend = wrappedReference({
      read: (target) => (...a: Parameters<Backend['read']>) => {
        if (failReads) throw new Error('device lost (injected)');
        return target.read(...a);
      },
    });
    const model = GlmModel.create(backend, microConfig(), { rng: new Rng(5) });
    const results = [model.forward(batch(), { mode: 'eval' }), model.forward(batch(), { mode: 'eval' })];
    failReads = true;
    model.dispose();
    expect(backend.liveBuffers()).toBe(0);
    for (const r of results) expect(() => r.loss).toThrow(/device lost \(injected\)/);
  });
});

describe('AdamW.update with a known gradient norm', () => {
  it('skips its own norm pass and updates exactly as without it', () => {
    const config = microConfig();
    const run = (known: boolean): { params: Map<string, Float32Array>; sumSquares: number; gradNorm: number } => {
      const c = countingBackend();
      const model = GlmModel.create(c.backend, config, { rng: new Rng(5) });
      const opt = new AdamW(model, { lr: 1e-2, weightDecay: 0.01, maxGradNorm: 0.5 });
      model.zeroGrad();
      model.forward(batch(), { mode: 'train', seed: 1 });
      model.backward();
      const norm = known ? model.globalGradNorm() : undefined;
      const before = c.runs('sumSquares');
      const r = opt.update(1e-2, { gradNorm: norm });
      const out = { params: model.stateDict(), sumSquares: c.runs('sumSquares') - before, gradNorm: r.gradNorm };
      opt.dispose();
      model.dispose();
      return out;
    };
    const own = run(false), given = run(true);
    expect(own.sumSquares).toBeGreaterThan(0);
    expect(given.sumSquares).toBe(0);
    expect(given.gradNorm).toBe(own.gradNorm);
    expect(own.gradNorm).toBeGreaterThan(0.5); // clipping applied in both
    for (const [name, p] of own.params) expect(Array.from(given.params.get(name)!), name).toEqual(Array.from(p));
  });

  it('refuses a gradient norm that is not a number >= 0', () => {
    const model = GlmModel.create(createReferenceBackend(), microConfig(), { rng: new Rng(5) });
    const opt = new AdamW(model, { lr: 1e-2 });
    expect(() => opt.update(1e-2, { gradNorm: NaN })).toThrow(/gradNorm must be a number >= 0, got NaN/);
    expect(() => opt.update(1e-2, { gradNorm: -1 })).toThrow(/gradNorm must be a number >= 0, got -1/);
    expect(() => opt.update(1e-2, { gradNorm: Infinity })).toThrow(/the gradient norm is Infinity; refusing to update/);
    opt.dispose();
    model.dispose();
  });
});
