// The pretraining job on a micro GLM (reference backend): bit-exact resume after a kill,
// checkpoints kept and written atomically, metrics, loss curve, evaluation, and the errors a user meets.
import { describe, expect, it } from 'vitest';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { createReferenceBackend } from '@blankglm/backend-ref';
import { PretrainError, listCheckpoints, loadTrainingCheckpoint, resolvePrecision, runPretraining, type TrainRecord } from '../src/index.js';
import { microConfig, smallCorpus, tempDir } from './helpers.js';

function trainLosses(outDir: string): Map<number, number> {
  const lines = readFileSync(join(outDir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as TrainRecord);
  return new Map(lines.filter((r) => r.kind === 'train').map((r) => [r.step, r.loss]));
}

const bytes = (p: string): Buffer => readFileSync(p);

describe('runPretraining', () => {
  it('resumes a killed run bit-exactly: same losses, same parameters, same optimizer moments', async () => {
    const data = await smallCorpus();
    const whole = tempDir();
    const a = await runPretraining(microConfig(data, whole), { backend: createReferenceBackend() });
    expect(a.status).toBe('done');
    expect(a.step).toBe(6);

    const killed = tempDir();
    // checkpoint at step 3, step 4 runs, then the process "dies" before its next checkpoint
    const b1 = await runPretraining(microConfig(data, killed), { backend: createReferenceBackend(), stopAfterStep: 4 });
    expect(b1.status).toBe('stopped');
    expect(listCheckpoints(join(killed, 'checkpoints')).map((c) => c.step)).toEqual([3]);
    const b2 = await runPretraining(microConfig(data, killed), { backend: createReferenceBackend(), resume: 'auto' });
    expect(b2.resumedFrom).toMatch(/step-00000003$/);
    expect(b2.startStep).toBe(3);
    expect(b2.step).toBe(6);

    const la = trainLosses(whole);
    const lb = trainLosses(killed);
    expect([...lb.keys()]).toEqual([1, 2, 3, 4, 5, 6]); // step 4 of the killed run was rewritten, not duplicated
    for (const [step, loss] of la) expect(lb.get(step), `step ${step}`).toBe(loss);
    const ca = join(whole, 'checkpoints', 'step-00000006');
    const cb = join(killed, 'checkpoints', 'step-00000006');
    expect(bytes(join(cb, 'model.safetensors')).equals(bytes(join(ca, 'model.safetensors')))).toBe(true);
    expect(bytes(join(cb, 'optimizer.safetensors')).equals(bytes(join(ca, 'optimizer.safetensors')))).toBe(true);
    const sa = loadTrainingCheckpoint(ca).trainer;
    const sb = loadTrainingCheckpoint(cb).trainer;
    expect(sb.source).toEqual(sa.source);
    expect(sb.tokensSeen).toBe(sa.tokensSeen);
    expect(a.evals.map((e) => e.step)).toEqual([0, 3, 6]);
    expect(b2.evals.at(-1)!.loss).toBe(a.evals.at(-1)!.loss);
  });

  it('writes metrics, a loss curve, the resolved configuration, keeps the last N checkpoints, and the loss falls', async () => {
    const data = await smallCorpus();
    const out = tempDir();
    const cfg = microConfig(data, out, { steps: 20, checkpointEvery: 4, keep: 2, evalEvery: 10, lr: 1e-2, warmup: 0.1 });
    const r = await runPretraining(cfg, { backend: createReferenceBackend(), backendName: 'ref', tokenizerFiles: { 'vocab.txt': 'x\n' } });
    expect(listCheckpoints(join(out, 'checkpoints')).map((c) => c.step)).toEqual([16, 20]);
    expect(readdirSync(join(out, 'checkpoints')).filter((n) => n.startsWith('.'))).toEqual([]);
    const ck = join(out, 'checkpoints', 'step-00000020');
    for (const f of ['config.json', 'model.safetensors', 'vocab.txt', 'optimizer.safetensors', 'training-state.json']) expect(existsSync(join(ck, f)), f).toBe(true);
    const run = JSON.parse(readFileSync(join(out, 'run-config.json'), 'utf8'));
    expect(run).toMatchObject({ preset: 'glm-tiny', steps: 20, seqLength: 32, backend: 'ref', objective: 'mixture', layout: 'pack' });
    expect(run.modelConfig.hidden_size).toBe(32);
    const svg = readFileSync(join(out, 'loss-curve.svg'), 'utf8');
    expect(svg).toMatch(/^<svg[^>]+xmlns/);
    expect(svg).toContain('<polyline');
    expect(svg.match(/<circle/g)!.length).toBe(3 + 1); // evals at 0, 10, 20 + the legend dot
    const losses = trainLosses(out);
    expect(losses.size).toBe(20);
    const [e0, , e20] = r.evals;
    expect(e0!.loss).toBeGreaterThan(10); // ln(30592) ≈ 10.33 for an untrained model
    expect(e20!.loss).toBeLessThan(e0!.loss - 1.5);
    expect(e20!.perplexity).toBeCloseTo(Math.exp(e20!.loss), 6);
  });

  it('stops on a NaN loss naming the last good checkpoint, which stays intact', async () => {
    const data = await smallCorpus();
    const out = tempDir();
    let poison: (() => void) | null = null;
    const run = runPretraining(microConfig(data, out, { checkpointEvery: 2, evalEvery: 0 }), {
      backend: createReferenceBackend(),
      onStart: ({ model }) => {
        poison = () => {
          const t = model.parameter('transformer.final_layernorm.bias');
          model.backend.write(t as typeof t & { dtype: 'f32' }, [Infinity], 0);
        };
      },
      onCheckpoint: (_dir, step) => {
        if (step === 2) poison!();
      },
    });
    await expect(run).rejects.toThrow(/became NaN at step 3.*the last good checkpoint is .*step-00000002 \(step 2\)/);
    const ck = loadTrainingCheckpoint(join(out, 'checkpoints', 'step-00000002'));
    expect([...ck.stateDict.values()].every((x) => x.every(Number.isFinite))).toBe(true);
  });

  it('stops on an abort signal with a checkpoint of the current step', async () => {
    const data = await smallCorpus();
    const out = tempDir();
    const ac = new AbortController();
    const r = await runPretraining(microConfig(data, out, { checkpointEvery: 100, evalEvery: 0 }), { backend: createReferenceBackend(), signal: ac.signal, onStep: (m) => m.step === 2 && ac.abort() });
    expect(r.status).toBe('interrupted');
    expect(listCheckpoints(join(out, 'checkpoints')).map((c) => c.step)).toEqual([2]);
  });

  it('trains in mixed precision when asked (bf16 products, f32 masters), records it, and resumes in it', async () => {
    const data = await smallCorpus();
    const out = tempDir();
    const a = await runPretraining(microConfig(data, out, { steps: 4, evalEvery: 0, checkpointEvery: 2, precision: 'bf16', lr: 1e-2, warmup: 0 }), {
      backend: createReferenceBackend(), stopAfterStep: 3,
    });
    expect(a.status).toBe('stopped');
    expect(JSON.parse(readFileSync(join(out, 'run-config.json'), 'utf8')).precision).toBe('bf16');
    // 'auto' on resume takes the saved run's precision, not the backend's default (f32 on the reference).
    const b = await runPretraining(microConfig(data, out, { steps: 4, evalEvery: 0, checkpointEvery: 2, lr: 1e-2, warmup: 0 }), { backend: createReferenceBackend(), resume: 'auto' });
    expect(b.startStep).toBe(2);
    expect(JSON.parse(readFileSync(join(out, 'run-config.json'), 'utf8')).precision).toBe('bf16');
    const losses = trainLosses(out);
    expect([...losses.keys()]).toEqual([1, 2, 3, 4]);
    for (const l of losses.values()) expect(Number.isFinite(l)).toBe(true);
  });

  it('resolves precision: auto is bf16 only where the backend computes in bf16; bf16 on an f32-only backend is refused', () => {
    const ref = createReferenceBackend();
    expect(resolvePrecision('auto', ref, null)).toBe('f32');
    expect(resolvePrecision(undefined, ref, null)).toBe('f32');
    expect(resolvePrecision('bf16', ref, null)).toBe('bf16'); // emulated bf16 storage
    expect(resolvePrecision('auto', ref, { precision: 'bf16' })).toBe('bf16');
    expect(resolvePrecision('auto', ref, { preset: 'glm-tiny' })).toBe('f32'); // saved before precision existed
    const gpuLike = { ...ref, name: 'cuda', device: { ...ref.device, features: ['bf16', 'f32'] } } as unknown as typeof ref;
    expect(resolvePrecision('auto', gpuLike, null)).toBe('bf16');
    expect(resolvePrecision('f32', gpuLike, null)).toBe('f32');
    const f32Only = { ...ref, name: 'wasm', device: { ...ref.device, features: ['simd128'] } } as unknown as typeof ref;
    expect(() => resolvePrecision('bf16', f32Only, null)).toThrow(/precision bf16 needs a backend with bf16 tensors .* the wasm backend computes in f32: use precision f32 or auto/);
    ref.dispose();
  });

  it('out of memory in a step: stops naming a micro-batch that fits and the accumulation that keeps the step the same', async () => {
    const data = await smallCorpus();
    // The reference backend with a memory limit: allocations past `cap` live elements throw like the GPU's.
    const ref = createReferenceBackend();
    let live = 0;
    let peak = 0;
    let cap = Infinity;
    const sizes = new Map<number, number>();
    const limited = new Proxy(ref, {
      get(target, prop, receiver) {
        if (prop === 'alloc') {
          return (dtype: never, size: number, label?: string, init?: never) => {
            if (live + size > cap) throw Object.assign(new Error(`out of memory: ${label ?? 'a tensor'} needs ${size} elements, ${cap - live} free`), { code: 'GPU_OUT_OF_MEMORY' });
            const t = target.alloc(dtype, size, label, init);
            live += size;
            peak = Math.max(peak, live);
            sizes.set(t.id, size);
            return t;
          };
        }
        if (prop === 'free') {
          return (t: { id: number }) => {
            live -= sizes.get(t.id) ?? 0;
            sizes.delete(t.id);
            target.free(t as never);
          };
        }
        const v = Reflect.get(target, prop, receiver);
        return typeof v === 'function' ? v.bind(target) : v;
      },
    });
    // Calibrate: the live elements at the start of training, and the peak of one step of 8 windows.
    let atStart = 0;
    const config = microConfig(data, tempDir(), { steps: 1, batchSize: 8, evalEvery: 0, checkpointEvery: 1 });
    await runPretraining(config, { backend: limited, onStart: () => void (atStart = live) });
    const perStep = peak - atStart;
    // Room for about a third of that step: 8 and 4 windows do not fit, 2 do.
    const out = tempDir();
    await expect(
      runPretraining(microConfig(data, out, { steps: 2, batchSize: 8, accumulation: 1, evalEvery: 0, checkpointEvery: 1 }), {
        backend: limited,
        onStart: () => void (cap = live + Math.floor(perStep * 0.35)),
      }),
    ).rejects.toThrow(/a micro-batch of 8 windows of 32 tokens does not fit in memory \(out of memory: .*\); 2 windows fit: use --batch-size 2 --accumulation 4 to keep 8 windows per step\. Training stopped; no checkpoint was written yet/);
    expect(listCheckpoints(join(out, 'checkpoints'))).toEqual([]);
    expect(live).toBe(0); // every buffer of the failed step, the probes and the model was freed
  });

  it('refuses bad input with the fix: sequence past the position table, a corpus smaller than one batch, another preset on resume, missing data', async () => {
    const data = await smallCorpus();
    const backend = createReferenceBackend();
    await expect(runPretraining(microConfig(data, tempDir(), { seqLength: 65 }), { backend })).rejects.toThrow(
      /seqLength 65 is past the position table of glm-tiny \(max_sequence_length 64\); use --seq-len 64 or less/,
    );
    const tiny = await smallCorpus(600);
    await expect(runPretraining(microConfig(tiny, tempDir(), { batchSize: 8, seqLength: 64, evalEvery: 0 }), { backend })).rejects.toThrow(
      /smaller than one batch: \d+ training tokens .* needs 512; give a larger corpus, or lower --batch-size \/ --seq-len/,
    );
    const out = tempDir();
    await runPretraining(microConfig(data, out, { steps: 1, evalEvery: 0 }), { backend });
    await expect(
      runPretraining(microConfig(data, out, { steps: 2, evalEvery: 0, model: { num_layers: 2, hidden_size: 32, num_attention_heads: 2, max_sequence_length: 64 } }), { backend, resume: 'auto' }),
    ).rejects.toThrow(/cannot resume from .*step-00000001: .*num_layers 1 \(checkpoint\) vs 2 \(this run\).*or a fresh --out/);
    await expect(runPretraining(microConfig(join(out, 'nowhere'), tempDir()), { backend })).rejects.toThrow(PretrainError);
    await expect(runPretraining(microConfig(data, tempDir(), { objective: 'bogus' }), { backend })).rejects.toThrow(/objective 'bogus' is unknown; expected one of token, sentence, document/);
    await expect(runPretraining(microConfig(data, tempDir(), { precision: 'fp16' as never }), { backend })).rejects.toThrow(/precision must be auto, f32 or bf16, got 'fp16'/);
    expect(backend.liveBuffers()).toBe(0);
  });
});
