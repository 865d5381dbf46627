// Checks that need a real GPU, shared by the vitest suite (it.runIf(haveGpu)) and the plain-node
// device script (scripts/device/gpu-check.ts, bundled so the GPU machine needs no node_modules).
// Each returns data and a verdict; callers decide how to report.
import { createReferenceBackend } from '@blankglm/backend-ref';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AdamW, GlmModel, fillBlanks, getPreset, initParameters, type FillBlanksOptions, type FillBlanksResult, type GlmConfig, type StateDict } from '@blankglm/model-spec';
import { Rng, type Backend, type GlmBatch, type OpCall, type RngState, type Tensor } from '@blankglm/tensor';
import { AnnealingLR, Trainer, blankInfillingObjective, loadTrainingCheckpoint, saveTrainingCheckpoint, type BatchSource } from '@blankglm/trainer';

/** Random GLM rows: Part A with one [MASK], Part B = sop + a span, targets span + eop (one segment per row). */
export function makeGlmBatch(rng: Rng, batchSize: number, seqLength: number, vocab: number, spanLength: number): GlmBatch {
  const MASK = 3, SOP = 4, EOP = 5;
  const B = batchSize, L = seqLength;
  const partA = L - (spanLength + 1);
  if (partA < 2) throw new RangeError(`seqLength ${L} too short for a span of ${spanLength}`);
  const inputIds = new Int32Array(B * L), positionIds = new Int32Array(B * L), blockPositionIds = new Int32Array(B * L);
  const targetIds = new Int32Array(B * L), lossMask = new Uint8Array(B * L), sep = new Int32Array(B);
  for (let b = 0; b < B; b++) {
    const row = b * L;
    const maskAt = rng.int(partA);
    const span = Array.from({ length: spanLength }, () => rng.intBetween(10, vocab - 1));
    for (let i = 0; i < partA; i++) {
      inputIds[row + i] = i === maskAt ? MASK : rng.intBetween(10, vocab - 1);
      positionIds[row + i] = i;
    }
    sep[b] = partA;
    for (let k = 0; k <= spanLength; k++) {
      const i = row + partA + k;
      inputIds[i] = k === 0 ? SOP : span[k - 1]!;
      positionIds[i] = maskAt;
      blockPositionIds[i] = k + 1;
      targetIds[i] = k < spanLength ? span[k]! : EOP;
      lossMask[i] = 1;
    }
  }
  return { batchSize: B, seqLength: L, numSegments: 1, sep, inputIds, positionIds, blockPositionIds, targetIds, lossMask };
}

export interface TrackingStep {
  step: number;
  refLoss: number;
  gpuLoss: number;
  refGradNorm: number;
  gpuGradNorm: number;
  lossRelDiff: number;
  gradNormRelDiff: number;
}

export interface TrackingResult {
  ok: boolean;
  steps: TrackingStep[];
  tolerance: number;
  maxParamRelDiff: number;
  detail: string;
}

/** A small GLM (glm-tiny layout, narrower vocab) so the reference keeps up. */
export function trackingConfig(): GlmConfig {
  return { ...getPreset('glm-tiny'), vocab_size: 1024, hidden_size: 128, num_attention_heads: 2, num_layers: 2, max_sequence_length: 64 };
}

/**
 * GLM-tiny trained on the GPU and on the reference side by side from the same initial weights,
 * with dropout (same seeds: the counter hash must agree bit for bit) and AdamW with clipping.
 * Passes when every step's loss and gradient norm agree within `tolerance` (relative). The final
 * parameters' largest difference is reported but not judged: Adam normalises gradients that are
 * mathematically zero and numerically noise (the key bias: softmax ignores a per-query constant)
 * to ±lr steps, so such elements drift apart on any two backends without changing the loss.
 */
export function trackReferenceTraining(
  gpu: Backend,
  opts: { steps?: number; tolerance?: number; precision?: 'f32' | 'bf16'; log?: (s: string) => void } = {},
): TrackingResult {
  const steps = opts.steps ?? 12;
  const precision = opts.precision ?? 'f32';
  // bf16 products (8-bit mantissas) move the loss by ~1e-3 relative per step; f32 agrees to ~1e-6.
  const tolerance = opts.tolerance ?? (precision === 'bf16' ? 2e-2 : 2e-3);
  const config = trackingConfig();
  const ref = createReferenceBackend();
  const refModel = GlmModel.create(ref, config, { rng: new Rng(7) });
  const gpuModel = GlmModel.create(gpu, config, { stateDict: refModel.stateDict(), precision });
  const optRef = new AdamW(refModel, { lr: 2e-3, weightDecay: 0.01, maxGradNorm: 1 });
  const optGpu = new AdamW(gpuModel, { lr: 2e-3, weightDecay: 0.01, maxGradNorm: 1 });
  const data = new Rng(11);
  const out: TrackingStep[] = [];
  try {
    for (let step = 0; step < steps; step++) {
      const batch = makeGlmBatch(data, 2, 48, config.vocab_size, 6);
      const run = (model: GlmModel, opt: AdamW): { loss: number; norm: number } => {
        model.zeroGrad();
        const r = model.forward(batch, { mode: 'train', seed: 1000 + step });
        model.backward();
        const u = opt.update();
        return { loss: r.loss!, norm: u.gradNorm };
      };
      const a = run(refModel, optRef);
      const b = run(gpuModel, optGpu);
      const s: TrackingStep = {
        step,
        refLoss: a.loss,
        gpuLoss: b.loss,
        refGradNorm: a.norm,
        gpuGradNorm: b.norm,
        lossRelDiff: Math.abs(a.loss - b.loss) / Math.abs(a.loss),
        gradNormRelDiff: Math.abs(a.norm - b.norm) / Math.abs(a.norm),
      };
      out.push(s);
      opts.log?.(`step ${step}: loss ref ${a.loss.toFixed(6)} gpu ${b.loss.toFixed(6)} (rel ${s.lossRelDiff.toExponential(2)}), grad norm ref ${a.norm.toFixed(5)} gpu ${b.norm.toFixed(5)} (rel ${s.gradNormRelDiff.toExponential(2)})`);
    }
    let maxParamRelDiff = 0;
    const refState = refModel.stateDict();
    const gpuState = gpuModel.stateDict();
    for (const [name, r] of refState) {
      const g = gpuState.get(name)!;
      let diff = 0, scale = 0;
      for (let i = 0; i < r.length; i++) {
        diff = Math.max(diff, Math.abs(r[i]! - g[i]!));
        scale = Math.max(scale, Math.abs(r[i]!));
      }
      maxParamRelDiff = Math.max(maxParamRelDiff, diff / (scale || 1));
    }
    const worst = Math.max(...out.map((s) => Math.max(s.lossRelDiff, s.gradNormRelDiff)));
    const ok = worst <= tolerance && out.every((s) => Number.isFinite(s.gpuLoss) && Number.isFinite(s.gpuGradNorm));
    return {
      ok,
      steps: out,
      tolerance,
      maxParamRelDiff,
      detail: `${steps} steps (${precision}): worst relative loss/grad-norm difference ${worst.toExponential(2)} (tolerance ${tolerance}); final parameters: largest difference ${maxParamRelDiff.toExponential(2)} of the tensor's largest value (informational)`,
    };
  } finally {
    optRef.dispose();
    optGpu.dispose();
    refModel.dispose();
    gpuModel.dispose();
    ref.dispose();
  }
}

export interface DeterminismResult {
  ok: boolean;
  detail: string;
}

/** Three GPU training steps twice from the same start must give bit-identical parameters; runSequence must equal op-by-op run. */
export function checkDeterminism(makeGpu: () => Backend): DeterminismResult {
  const config = trackingConfig();
  const init = initParameters(config, new Rng(3));
  const train = (): Map<string, Float32Array> => {
    const gpu = makeGpu();
    const model = GlmModel.create(gpu, config, { stateDict: init });
    const opt = new AdamW(model, { lr: 1e-3, weightDecay: 0.01, maxGradNorm: 1 });
    const data = new Rng(5);
    for (let step = 0; step < 3; step++) {
      model.zeroGrad();
      model.forward(makeGlmBatch(data, 4, 64, config.vocab_size, 8), { mode: 'train', seed: step });
      model.backward();
      opt.update();
    }
    const out = new Map<string, Float32Array>();
    for (const [name, t] of model.stateDict()) out.set(name, Float32Array.from(t));
    opt.dispose();
    model.dispose();
    gpu.dispose();
    return out;
  };
  const a = train();
  const b = train();
  const differing: string[] = [];
  for (const [name, x] of a) {
    const y = b.get(name)!;
    const xb = new Uint32Array(x.buffer), yb = new Uint32Array(y.buffer);
    if (xb.some((v, i) => v !== yb[i])) differing.push(name);
  }

  // runSequence (one crossing) against the same calls op by op.
  const gpu = makeGpu();
  const seqResult = runSmallSequence(gpu, true);
  const opResult = runSmallSequence(gpu, false);
  gpu.dispose();
  const seqSame = seqResult.every((v, i) => Object.is(v, opResult[i]));

  // Runs of optimizer calls (one multi-tensor launch per run on the GPU) against the same calls op by op.
  const gpu2 = makeGpu();
  const optSeq = runOptimizerSequence(gpu2, true);
  const optOps = runOptimizerSequence(gpu2, false);
  gpu2.dispose();
  const optDiff: string[] = [];
  optSeq.forEach((x, i) => {
    const y = optOps[i]!;
    const sums = i === optSeq.length - 1; // Σx² may differ in the last bits (another summation order)
    const bad = sums ? x.some((v, j) => !(Math.abs(v - y[j]!) <= 1e-6 * Math.abs(y[j]!))) : x.some((v, j) => !Object.is(v, y[j]));
    if (bad) optDiff.push(`#${i}`);
  });
  const ok = differing.length === 0 && seqSame && optDiff.length === 0;
  return {
    ok,
    detail:
      (differing.length === 0 ? 'two 3-step training runs gave bit-identical parameters' : `parameters differ between two identical runs: ${differing.join(', ')}`) +
      (seqSame ? '; runSequence equals op-by-op run bit for bit' : '; runSequence differs from op-by-op run') +
      (optDiff.length === 0
        ? '; grouped fill/dropoutAdd(p=0)/adamw/sumSquares runs equal op-by-op'
        : `; grouped fill/dropoutAdd(p=0)/adamw/sumSquares runs differ from op-by-op in results ${optDiff.join(', ')}`),
  };
}

/**
 * Runs of consecutive fill, dropoutAdd (p = 0, no residual), adamw and sumSquares calls, as a
 * sequence or op by op: sizes across the GPU's chunking (5, 768, 16385, 40000 elements), f32 and bf16,
 * two fills overlapping (the later must win), per-tensor weight decay. Returns every tensor written,
 * the Σx² last.
 */
function runOptimizerSequence(be: Backend, sequence: boolean): Float32Array[] {
  const rng = new Rng(11);
  const sizes = [40000, 5, 768, 16385];
  const f = (n: number, std = 1): Tensor => {
    const t = be.alloc('f32', n);
    be.write(t, Float32Array.from({ length: n }, () => rng.normal(0, std)));
    return t;
  };
  const params = sizes.map((n) => f(n)), grads = sizes.map((n) => f(n, 0.1));
  const ms = sizes.map((n) => f(n, 0.01));
  const vs = sizes.map((n) => {
    const t = be.alloc('f32', n);
    be.write(t, Float32Array.from({ length: n }, () => rng.float() * 1e-3));
    return t;
  });
  const copies = sizes.map((n) => be.alloc('bf16', n));
  const zeroed = sizes.map((n) => f(n)), sums = be.alloc('f32', sizes.length);
  const calls: OpCall[] = [
    ...zeroed.map((x, i) => ({ op: 'fill', args: { x, offset: 0, size: sizes[i]!, value: i === 1 ? 2.5 : 0 } }) as OpCall),
    { op: 'fill', args: { x: zeroed[0]!, offset: 100, size: 50, value: -1 } }, // overlaps the first fill: must come after it
    { op: 'fill', args: { x: zeroed[2]!, offset: 3, size: 10, value: 7 } },
    ...params.map((x, i) => ({ op: 'dropoutAdd', args: { x, residual: null, out: copies[i]!, size: sizes[i]!, dropout: { p: 0, seed: 0, stream: 0 } } }) as OpCall),
    ...params.map(
      (param, i) =>
        ({
          op: 'adamw',
          args: { param, grad: grads[i]!, m: ms[i]!, v: vs[i]!, size: sizes[i]!, lr: 1e-3, beta1: 0.9, beta2: 0.98, eps: 1e-6, weightDecay: i % 2 ? 0 : 0.1, step: 3, gradScale: 0.7 },
        }) as OpCall,
    ),
    ...grads.map((x, i) => ({ op: 'sumSquares', args: { x, size: sizes[i]!, out: sums, outIndex: i } }) as OpCall),
  ];
  if (sequence && be.runSequence) be.runSequence(calls);
  else for (const c of calls) be.run(c.op, c.args as never);
  const out = [...zeroed, ...copies, ...params, ...ms, ...vs, sums].map((t) => Float32Array.from(be.read(t)));
  for (const t of [...params, ...grads, ...ms, ...vs, ...copies, ...zeroed, sums]) be.free(t);
  return out;
}

function runSmallSequence(be: Backend, sequence: boolean): Float32Array {
  const T = 40, H = 64, rng = new Rng(9);
  const f = (n: number, std = 1): Tensor => {
    const t = be.alloc('f32', n);
    be.write(t, Float32Array.from({ length: n }, () => rng.normal(0, std)));
    return t;
  };
  const x = f(T * H), gamma = f(H, 0.1), beta = f(H, 0.1), w = f(3 * H * H, 0.05), bias = f(3 * H, 0.1);
  const y = be.alloc('f32', T * H), mean = be.alloc('f32', T), rstd = be.alloc('f32', T), qkv = be.alloc('f32', T * 3 * H), out = be.alloc('f32', T * H);
  const ks = be.alloc('i32', T), ke = be.alloc('i32', T);
  be.write(ks, new Int32Array(T));
  be.write(ke, Int32Array.from({ length: T }, (_, i) => (i < 20 ? 20 : i + 1)));
  const calls: OpCall[] = [
    { op: 'layerNorm', args: { x, gamma, beta, y, mean, rstd, rows: T, hiddenSize: H, eps: 1e-5 } },
    { op: 'linear', args: { x: y, weight: w, bias, y: qkv, preAct: null, rows: T, inFeatures: H, outFeatures: 3 * H, activation: 'none' } },
    {
      op: 'attention',
      args: {
        q: { tensor: qkv, offset: 0, rowStride: 3 * H, batchStride: 0 },
        k: { tensor: qkv, offset: H, rowStride: 3 * H, batchStride: 0 },
        v: { tensor: qkv, offset: 2 * H, rowStride: 3 * H, batchStride: 0 },
        keyStart: ks,
        keyEnd: ke,
        out,
        lse: null,
        batch: 1,
        queries: T,
        keys: T,
        heads: 2,
        headDim: H / 2,
        scale: 1 / Math.sqrt(H / 2),
        dropout: { p: 0.1, seed: 77, stream: 3 },
      },
    },
    { op: 'dropoutAdd', args: { x: out, residual: x, out: x, size: T * H, dropout: { p: 0.1, seed: 78, stream: 0 } } },
  ];
  if (sequence && be.runSequence) be.runSequence(calls);
  else for (const c of calls) be.run(c.op, c.args as never);
  const result = be.read(x) as Float32Array;
  for (const t of [x, gamma, beta, w, bias, y, mean, rstd, qkv, out, ks, ke]) be.free(t);
  return result;
}

/** A deterministic stream of GLM batches whose position is its Rng state (a BatchSource for the Trainer). */
class SyntheticBatches implements BatchSource<GlmBatch> {
  private rng = new Rng(21);
  constructor(private readonly vocab: number) {}
  next(): GlmBatch {
    return makeGlmBatch(this.rng, 2, 48, this.vocab, 6);
  }
  state(): unknown {
    return this.rng.getState();
  }
  restore(state: unknown): void {
    this.rng.setState(state as RngState);
  }
}

/**
 * Resume on the GPU through the trainer's own checkpoint files: 6 steps straight, against 3 steps,
 * saveTrainingCheckpoint, a fresh backend, loadTrainingCheckpoint + Trainer.restore, 3 more steps.
 * Passes when steps 4–6 have the same losses and the final parameters and Adam moments are
 * bit-identical (dropout on, so the dropout seeds must continue too).
 */
export function checkResume(makeGpu: () => Backend, precision: 'f32' | 'bf16' = 'f32'): DeterminismResult {
  const config = trackingConfig();
  const init = initParameters(config, new Rng(3));
  const steps = 6, split = 3;
  const start = (gpu: Backend, stateDict: StateDict): Trainer<GlmBatch> => {
    const model = GlmModel.create(gpu, config, { stateDict, precision });
    const optimizer = new AdamW(model, { lr: 1e-3, weightDecay: 0.01, maxGradNorm: 1 });
    const schedule = new AnnealingLR({ lr: 1e-3, decayIters: steps, warmup: 0.2, decayStyle: 'cosine', decayRatio: 0.1 });
    return new Trainer({ model, optimizer, schedule, source: new SyntheticBatches(config.vocab_size), objective: blankInfillingObjective(), seed: 9 });
  };
  const finish = (t: Trainer<GlmBatch>): { params: StateDict; moments: StateDict } => {
    const params = t.model.stateDict();
    const st = t.optimizer.getState();
    const moments: StateDict = new Map([...[...st.m].map(([k, v]) => [`m.${k}`, v] as const), ...[...st.v].map(([k, v]) => [`v.${k}`, v] as const)]);
    const be = t.model.backend;
    t.optimizer.dispose();
    t.model.dispose();
    be.dispose();
    return { params, moments };
  };

  const straight = start(makeGpu(), init);
  const lossesA: number[] = [];
  for (let i = 0; i < steps; i++) lossesA.push(straight.trainStep().loss);
  const a = finish(straight);

  const dir = mkdtempSync(join(tmpdir(), 'blankglm-gpu-resume-'));
  try {
    const first = start(makeGpu(), init);
    for (let i = 0; i < split; i++) first.trainStep();
    const saved = saveTrainingCheckpoint(dir, { config, stateDict: first.model.stateDict(), trainer: first.state(), run: { check: 'gpu resume' } });
    finish(first);
    const loaded = loadTrainingCheckpoint(saved);
    const resumed = start(makeGpu(), loaded.stateDict);
    resumed.restore(loaded.trainer);
    const lossesB: number[] = [];
    for (let i = split; i < steps; i++) lossesB.push(resumed.trainStep().loss);
    const b = finish(resumed);

    const sameBits = (x: StateDict, y: StateDict): string[] =>
      [...x].filter(([name, v]) => {
        const w = y.get(name);
        return !w || w.length !== v.length || !new Uint32Array(v.buffer, v.byteOffset, v.length).every((bits, i) => bits === new Uint32Array(w.buffer, w.byteOffset, w.length)[i]);
      }).map(([name]) => name);
    const lossesSame = lossesB.every((l, i) => Object.is(l, lossesA[split + i]));
    const params = sameBits(a.params, b.params), moments = sameBits(a.moments, b.moments);
    const ok = lossesSame && params.length === 0 && moments.length === 0;
    return {
      ok,
      detail:
        `${precision}: ${split} steps + checkpoint + fresh backend + ${steps - split} steps vs ${steps} straight: ` +
        (lossesSame ? 'same losses' : `losses differ (${lossesB.join(', ')} vs ${lossesA.slice(split).join(', ')})`) +
        (params.length === 0 ? ', bit-identical parameters' : `, parameters differ: ${params.slice(0, 5).join(', ')}`) +
        (moments.length === 0 ? ', bit-identical Adam moments' : `, moments differ: ${moments.slice(0, 5).join(', ')}`),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Blank filling with the key/value cache on the GPU against the reference backend, from the same
 * weights: greedy, seeded sampling (top-k, temperature, no repeated bigrams) and beam search over
 * two blanks of one context, once with each decode-attention kernel. Passes when every blank has
 * the same tokens and its log-probability agrees within 1e-4 (relative).
 */
const EOP_LIFT = 1.2;

export function checkGeneration(
  gpu: Backend & { setOptions?(o: { decodeAttention?: 'one-block' | 'split' }): unknown; info?: { splitDecode: boolean } },
): DeterminismResult {
  const decodeDefault = gpu.info?.splitDecode === false ? 'one-block' : 'split';
  const MASK = 3, SOP = 4, EOP = 5;
  const config = trackingConfig();
  const state = initParameters(config, new Rng(21));
  // Lean the output towards <|endofpiece|> (its logit + EOP_LIFT) so that blanks end at varied lengths (a random model rarely ends one).
  const E = state.get('word_embeddings.weight')!, bias = state.get('transformer.final_layernorm.bias')!;
  let norm2 = 0;
  for (let i = 0; i < config.hidden_size; i++) norm2 += E[EOP * config.hidden_size + i]! ** 2;
  for (let i = 0; i < config.hidden_size; i++) bias[i]! += (EOP_LIFT / norm2) * E[EOP * config.hidden_size + i]!;
  const rng = new Rng(22);
  const context = Array.from({ length: 40 }, () => rng.intBetween(10, config.vocab_size - 1));
  context[9] = MASK;
  context[30] = MASK;
  const base = { maskIds: [MASK], sopId: SOP, eopId: EOP, maxTokens: 8 };
  const runs: [string, () => FillBlanksOptions][] = [
    ['greedy', () => ({ ...base })],
    ['sampling', () => ({ ...base, noRepeatNgramSize: 2, strategy: { kind: 'sample', rng: new Rng(23), temperature: 0.8, topK: 40 } })],
    ['beam', () => ({ ...base, maxTokens: 6, strategy: { kind: 'beam', numBeams: 3 } })],
  ];
  const fill = (be: Backend, options: FillBlanksOptions): FillBlanksResult => {
    const model = GlmModel.create(be, config, { stateDict: state });
    try {
      return fillBlanks(model, context, options);
    } finally {
      model.dispose();
    }
  };
  const ref = createReferenceBackend();
  const expected = runs.map(([, o]) => fill(ref, o()));
  ref.dispose();
  const problems: string[] = [];
  let blanks = 0, ended = 0, worst = 0;
  for (const decodeAttention of ['one-block', 'split'] as const) {
    gpu.setOptions?.({ decodeAttention });
    runs.forEach(([name, o], k) => {
      const got = fill(gpu, o());
      got.fills.forEach((f, b) => {
        const want = expected[k]!.fills[b]!;
        blanks++;
        if (f.finished) ended++;
        const rel = Math.abs(f.logProb - want.logProb) / Math.max(Math.abs(want.logProb), 1e-30);
        worst = Math.max(worst, rel);
        if (f.tokens.join(',') !== want.tokens.join(',') || f.finished !== want.finished || !(rel <= 1e-4)) {
          problems.push(`${name}, ${decodeAttention} decode attention, blank ${b}: [${f.tokens}] log p ${f.logProb} vs the reference's [${want.tokens}] ${want.logProb}`);
        }
      });
    });
  }
  gpu.setOptions?.({ decodeAttention: decodeDefault });
  return problems.length === 0
    ? { ok: true, detail: `greedy, sampling and beam search: ${blanks} blanks (${ended} ended with eop) as the reference fills them, with both decode-attention kernels; log p within ${worst.toExponential(2)}` }
    : { ok: false, detail: problems.join('\n') };
}
