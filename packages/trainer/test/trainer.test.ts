// The generic loop: token-averaged loss across accumulated micro-batches, and a NaN stop that
// leaves the parameters untouched.
import { describe, expect, it } from 'vitest';
import { createReferenceBackend } from '@blankglm/backend-ref';
import { GlmDataset, openShards } from '@blankglm/data';
import { padSamples, type GlmSample } from '@blankglm/corruption';
import { AdamW, GlmModel, getPreset, type GlmConfig } from '@blankglm/model-spec';
import { Rng, type GlmBatch } from '@blankglm/tensor';
import { AnnealingLR, NonFiniteLossError, Trainer, blankInfillingObjective, countTargets, type BatchSource } from '../src/index.js';
import { smallCorpus } from './helpers.js';

const micro: GlmConfig = {
  ...getPreset('glm-tiny'),
  num_layers: 1, hidden_size: 32, num_attention_heads: 2, max_sequence_length: 64,
  embedding_dropout_prob: 0, attention_dropout_prob: 0, output_dropout_prob: 0,
};

class ArraySource implements BatchSource<GlmBatch> {
  private i = 0;
  constructor(private readonly batches: GlmBatch[]) {}
  next(): GlmBatch {
    return this.batches[this.i++ % this.batches.length]!;
  }
  state(): unknown {
    return this.i;
  }
  restore(s: unknown): void {
    this.i = s as number;
  }
}

async function samples(count: number): Promise<GlmSample[]> {
  const shards = await openShards(await smallCorpus());
  const ds = new GlmDataset(shards, { seqLength: 32, batchSize: count, rng: new Rng(3), corruption: { mixture: { token: 1, sentence: 0, document: 0 } } });
  return ds.next().samples;
}

function setup(batches: GlmBatch[], accumulation: number) {
  const backend = createReferenceBackend();
  const model = GlmModel.create(backend, micro, { rng: new Rng(11) });
  const optimizer = new AdamW(model, { lr: 1e-2, weightDecay: 0.1, maxGradNorm: 0 });
  const schedule = new AnnealingLR({ lr: 1e-2, decayIters: 10, warmup: 0, decayStyle: 'constant', decayRatio: 1 });
  const trainer = new Trainer({ model, optimizer, schedule, source: new ArraySource(batches), objective: blankInfillingObjective(), accumulation, seed: 5 });
  return { backend, model, optimizer, trainer };
}

describe('Trainer', () => {
  it('averages the loss over the targets of all accumulated micro-batches, as one big batch would', async () => {
    const s = await samples(4);
    const rowLength = 48;
    const whole = padSamples(s, rowLength);
    const first = padSamples(s.slice(0, 1), rowLength); // unequal micro-batches: 1 and 3 samples
    const rest = padSamples(s.slice(1), rowLength);
    expect(countTargets(first)).not.toBe(countTargets(rest) / 3);
    const a = setup([whole], 1);
    const b = setup([first, rest], 2);
    const ma = a.trainer.trainStep();
    const mb = b.trainer.trainStep();
    expect(mb.targets).toBe(ma.targets);
    expect(mb.loss).toBeCloseTo(ma.loss, 5);
    expect(mb.gradNorm).toBeCloseTo(ma.gradNorm, 5);
    // the mean of per-micro-batch means would differ:
    const perMicro = [first, rest].map((batch) => a.model.forward(batch).loss!);
    const pa = a.model.stateDict();
    const pb = b.model.stateDict();
    for (const [name, x] of pa) {
      const y = pb.get(name)!;
      let worst = 0;
      for (let i = 0; i < x.length; i++) worst = Math.max(worst, Math.abs(x[i]! - y[i]!));
      expect(worst, name).toBeLessThan(1e-6);
    }
    expect(Math.abs((perMicro[0]! + perMicro[1]!) / 2 - a.model.forward(whole).loss!)).toBeGreaterThan(1e-4);
    for (const t of [a, b]) {
      t.optimizer.dispose();
      t.model.dispose();
      expect(t.backend.liveBuffers()).toBe(0);
    }
  });

  it('waits for the device once per step: nothing is read until every micro-batch is issued, and the gradient norm is read first', async () => {
    const s = await samples(4);
    const { backend, model, trainer, optimizer } = setup([padSamples(s.slice(0, 2), 48), padSamples(s.slice(2), 48)], 2);
    // Every backend call in order (a read is where a GPU makes the host wait).
    const events: string[] = [];
    const logged = new Proxy(backend, {
      get(target, prop, receiver) {
        if (prop === 'read') return (t: { label?: string }, ...rest: never[]) => (events.push(`read ${t.label}`), target.read(t as never, ...rest));
        if (prop === 'run') return (op: string, args: never) => (events.push(op), target.run(op as never, args));
        if (prop === 'runSequence') return (calls: Array<{ op: string }>) => (calls.forEach((c) => events.push(c.op)), target.runSequence(calls as never));
        const v = Reflect.get(target, prop, receiver);
        return typeof v === 'function' ? v.bind(target) : v;
      },
    });
    (model as unknown as { backend: typeof backend }).backend = logged;
    (optimizer as unknown as { model: GlmModel }).model = model;
    const m = trainer.trainStep();
    const firstRead = events.findIndex((e) => e.startsWith('read'));
    expect(events[firstRead]).toBe('read gradSquares');
    expect(events.lastIndexOf('embeddingBackward')).toBeLessThan(firstRead);
    expect(events.filter((e) => e === 'embeddingBackward')).toHaveLength(2);
    expect(events.filter((e) => e === 'read gradSquares')).toHaveLength(1); // AdamW reuses the trainer's norm
    expect(events.filter((e) => e === 'read losses')).toHaveLength(2);
    expect(Number.isFinite(m.loss) && m.loss > 0).toBe(true);
    optimizer.dispose();
    model.dispose();
  });

  it('stops on a NaN loss with NonFiniteLossError and leaves every parameter as it was', async () => {
    const s = await samples(2);
    const { model, trainer, optimizer } = setup([padSamples(s, 48)], 1);
    trainer.trainStep();
    const poisoned = model.parameter('transformer.final_layernorm.weight');
    model.backend.write(poisoned as typeof poisoned & { dtype: 'f32' }, [NaN], 3);
    const before = model.stateDict();
    expect(() => trainer.trainStep()).toThrow(NonFiniteLossError);
    expect(() => trainer.trainStep()).toThrow(/became NaN at step 2; the update was not applied/);
    expect(trainer.step).toBe(1);
    expect(optimizer.step).toBe(1);
    const after = model.stateDict();
    for (const [name, x] of before) expect(Buffer.from(after.get(name)!.buffer).equals(Buffer.from(x.buffer)), name).toBe(true);
    optimizer.dispose();
    model.dispose();
  });
});
