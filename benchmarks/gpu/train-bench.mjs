#!/usr/bin/env node
// GLM training throughput on the CUDA backend: tokens/s and MFU for GLM-Base and GLM-Large at
// sequence length 512 (batch 32, halved on out-of-memory), the model of @blankglm/model-spec run
// step by step exactly as a user trains it (forward, backward, AdamW with clipping), plus greedy
// blank-filling speed with the key/value cache. Its PyTorch peer is benchmarks/gpu/hf_peer.py,
// run beside it by packages/backend-gpu/scripts/device-check.sh on the same card.
//
// Each model trains in mixed precision ('bf16': bf16 matrix operands and tensor-core attention,
// f32 parameters and AdamW state) and, for --f32-models, in f32 storage with TF32 products, so the
// two sit side by side. One extra step per run is profiled (cudaEvents around every op) and its
// per-op GPU time printed, with the sum next to the step's wall time.
//
// --variants compares kernel / allocation choices (VARIANTS below) on the same model, batches and
// card, one after another in one process: e.g. default,ln-fused,zero-fill.
//
// Usage: node benchmarks/gpu/train-bench.mjs [--models glm-base,glm-large] [--f32-models glm-base]
//          [--variants default] [--decode-variants split,one-block] [--batch 32] [--seq 512] [--steps 6] [--warmup 2] [--no-tf32] [--no-profile] [--out DIR]
// Runs from the repo after `pnpm build`, or as the bundle .carry/device/train-bench.mjs.
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createGpuBackend, probeGpu } from '../../packages/backend-gpu/dist/index.js';
import { AdamW, GlmModel, fillBlanks, getPreset, initParameters } from '../../packages/model-spec/dist/index.js';
import { Rng } from '../../packages/tensor/dist/index.js';
import { SPAN, makeBatch } from './glm-batch.mjs';

const { values: opts } = parseArgs({
  options: {
    models: { type: 'string', default: 'glm-base,glm-large' },
    batch: { type: 'string', default: '32' },
    seq: { type: 'string', default: '512' },
    steps: { type: 'string', default: '6' },
    warmup: { type: 'string', default: '2' },
    'no-tf32': { type: 'boolean', default: false },
    'f32-models': { type: 'string', default: 'glm-base' },
    'no-profile': { type: 'boolean', default: false },
    variants: { type: 'string', default: 'default' },
    'decode-variants': { type: 'string', default: 'split' },
    out: { type: 'string', default: process.env.OUT || '.' },
  },
});
const seq = Number(opts.seq), steps = Number(opts.steps), warmup = Number(opts.warmup);
const tf32 = !opts['no-tf32'];

/** Dense peak FLOP/s of known cards: [bf16 tensor core, tf32 tensor core]. */
function peaks(name) {
  if (/H100|H200|H800|GH200/.test(name)) return { bf16: 989e12, tf32: 494.7e12 };
  if (/A100|A800/.test(name)) return { bf16: 312e12, tf32: 156e12 };
  return null;
}

/** Model FLOPs per trained token (forward + backward = 6 per weight use; attention scores and values; logits at targets only). */
function flopsPerToken(c, L, targetFraction) {
  const H = c.hidden_size, layers = c.num_layers;
  const layerWeights = layers * (4 * H * H + 8 * H * H); // qkv + dense + two MLP matrices
  return 6 * layerWeights + 12 * layers * H * L + 6 * H * c.vocab_size * targetFraction;
}

/** Per-op GPU time of one training step, biggest first, as printable lines and data. */
function profileStep(gpu, model, optimizer, batch, seed) {
  gpu.synchronize();
  gpu.profileReport(true);
  gpu.setProfiling(true);
  const start = performance.now();
  try {
    model.zeroGrad();
    model.forward(batch, { mode: 'train', seed });
    model.backward();
    optimizer.update();
    gpu.synchronize();
  } finally {
    gpu.setProfiling(false);
  }
  const wallMs = performance.now() - start;
  const ops = gpu.profileReport(true).sort((a, b) => b.ms - a.ms);
  const gpuMs = ops.reduce((n, o) => n + o.ms, 0);
  const lines = [`    profiled step: wall ${wallMs.toFixed(1)} ms (with event overhead), GPU time in ops ${gpuMs.toFixed(1)} ms`];
  for (const o of ops.slice(0, 24)) lines.push(`    ${o.ms.toFixed(2).padStart(9)} ms ${((100 * o.ms) / gpuMs).toFixed(1).padStart(5)}%  ${String(o.calls).padStart(5)}×  ${o.op}`);
  if (ops.length > 24) lines.push(`    ${ops.slice(24).reduce((n, o) => n + o.ms, 0).toFixed(2).padStart(9)} ms in ${ops.length - 24} more op kinds`);
  return { wallMs, gpuMs, ops, lines };
}

/**
 * Kernel and allocation choices a run can compare on one card in one process (--variants): each is
 * applied with gpu.setOptions on top of the backend's defaults, for the same model and batches.
 */
const VARIANTS = {
  default: {},
  // Every buffer zero-filled by a memset, as before the model marked its op outputs 'uninitialized'.
  'zero-fill': { uninitialized: 'zeros' },
  'ln-split': { layerNormBackward: 'split' },
  'ln-fused': { layerNormBackward: 'fused' },
};

/** One model in one precision: the median step of each variant, all on the same parameters and batches. */
function trainBench(gpu, name, batch, precision, variants) {
  const config = getPreset(name);
  const t0 = performance.now();
  const model = GlmModel.create(gpu, config, { stateDict: initParameters(config, new Rng(1)), precision });
  const initSeconds = (performance.now() - t0) / 1000;
  const optimizer = new AdamW(model, { lr: 1e-4, weightDecay: 0.01, maxGradNorm: 1 });
  const rng = new Rng(2);
  const batches = [makeBatch(rng, batch, seq, config.vocab_size), makeBatch(rng, batch, seq, config.vocab_size)];
  const defaults = { uninitialized: gpu.uninitialized, layerNormBackward: gpu.info.lnSplit ? 'split' : 'fused' };
  const out = [];
  try {
    for (const variant of variants) {
      gpu.setOptions({ ...defaults, ...VARIANTS[variant] });
      const times = [];
      const losses = [];
      let profile = null;
      for (let s = 0; s < warmup + steps; s++) {
        const start = performance.now();
        model.zeroGrad();
        const r = model.forward(batches[s % 2], { mode: 'train', seed: s });
        model.backward();
        optimizer.update();
        gpu.synchronize();
        const seconds = (performance.now() - start) / 1000;
        losses.push(r.loss);
        if (s >= warmup) times.push(seconds);
        console.log(`  ${name} ${precision} ${variant} b${batch} step ${s}${s < warmup ? ' (warm-up)' : ''}: ${(seconds * 1000).toFixed(1)} ms, loss ${r.loss.toFixed(4)}`);
      }
      if (!opts['no-profile']) {
        profile = profileStep(gpu, model, optimizer, batches[0], 1000);
        for (const line of profile.lines) console.log(line);
      }
      times.sort((a, b) => a - b);
      const median = times[Math.floor(times.length / 2)];
      const tokens = batch * seq;
      const fpt = flopsPerToken(config, seq, (SPAN + 1) / seq);
      out.push({
        model: name, precision, variant, options: { ...defaults, ...VARIANTS[variant] }, batch, seq, steps, medianStepMs: median * 1000, tokensPerSecond: tokens / median,
        flopsPerToken: fpt, achievedTflops: (fpt * tokens) / median / 1e12, initSeconds, losses, lossesFinite: losses.every(Number.isFinite), profile: profile && { wallMs: profile.wallMs, gpuMs: profile.gpuMs, ops: profile.ops },
      });
    }
  } finally {
    gpu.setOptions(defaults);
    optimizer.dispose();
    model.dispose();
  }
  return out;
}

/** GLM's special ids in its BERT-derived vocabulary (30 592 entries): [MASK] 103, sop 30590, eop 30591. */
const MASK_ID = 103, SOP_ID = 30590, EOP_ID = 30591;

function inferenceBench(gpu) {
  const config = getPreset('glm-base');
  if (config.vocab_size <= EOP_ID) throw new Error(`inference bench: glm-base's vocabulary (${config.vocab_size}) has no id ${EOP_ID}`);
  const model = GlmModel.create(gpu, config, { stateDict: initParameters(config, new Rng(3)) });
  try {
    const rng = new Rng(4);
    const context = Array.from({ length: 400 }, () => rng.intBetween(1000, 30000));
    context[200] = MASK_ID;
    const options = { maskIds: [MASK_ID], sopId: SOP_ID, eopId: EOP_ID, maxTokens: 64, minTokens: 64 };
    // Warm-up on a short context that holds its own mask (the caches and kernels get loaded).
    const warm = context.slice(0, 64);
    warm[32] = MASK_ID;
    fillBlanks(model, warm, { ...options, maxTokens: 4, minTokens: 4 });
    // The context's prefill plus one token, then the same with 64 tokens: the difference is 63 decode steps.
    let start = performance.now();
    fillBlanks(model, context, { ...options, maxTokens: 1, minTokens: 1 });
    const firstSeconds = (performance.now() - start) / 1000;
    start = performance.now();
    const r = fillBlanks(model, context, options);
    const seconds = (performance.now() - start) / 1000;
    // Once more with per-op GPU timing (events add overhead, so the timing above is without).
    gpu.synchronize();
    gpu.profileReport(true);
    gpu.setProfiling(true);
    try {
      fillBlanks(model, context, options);
    } finally {
      gpu.setProfiling(false);
    }
    const ops = gpu.profileReport(true).sort((a, b) => b.ms - a.ms);
    const gpuMs = ops.reduce((n, o) => n + o.ms, 0);
    const generated = r.blanks.reduce((n, b) => n + b.length, 0) + (r.finished.filter(Boolean).length);
    const decodeTokensPerSecond = (generated - 1) / (seconds - firstSeconds);
    console.log(`    blank filling: prefill + first token ${(firstSeconds * 1000).toFixed(1)} ms; ${generated} tokens in ${(seconds * 1000).toFixed(1)} ms wall; a profiled run: GPU time in ops ${gpuMs.toFixed(1)} ms`);
    for (const o of ops.slice(0, 8)) console.log(`    ${o.ms.toFixed(2).padStart(9)} ms  ${String(o.calls).padStart(6)}×  ${o.op}`);
    return { model: 'glm-base', context: context.length, generatedTokens: generated, seconds, tokensPerSecond: generated / seconds, firstTokenSeconds: firstSeconds, decodeTokensPerSecond, gpuMs, ops };
  } finally {
    model.dispose();
  }
}

const out = opts.out;
mkdirSync(out, { recursive: true });
const results = { card: null, tf32, train: [], inference: null, inferenceVariants: [], errors: [] };
const save = () => {
  writeFileSync(join(out, 'train-bench.json.tmp'), JSON.stringify(results, null, 2));
  renameSync(join(out, 'train-bench.json.tmp'), join(out, 'train-bench.json'));
};

const probe = await probeGpu();
if (!probe.available) {
  console.error(`train-bench: no GPU: ${probe.detail}`);
  results.errors.push(probe.detail);
  save();
  process.exit(2);
}
const gpu = createGpuBackend({ tf32 });
results.card = gpu.info;
console.log(`train-bench on ${gpu.info.name} (${gpu.info.gemm}; bf16 runs: bf16 products, ${gpu.info.tcAttention ? 'tensor-core' : 'scalar'} attention; f32 runs: ${tf32 ? 'TF32' : 'exact f32'} products)`);
const peak = peaks(gpu.info.name);
const f32Models = new Set(opts['f32-models'].split(',').filter(Boolean));
const runs = opts.models.split(',').flatMap((name) => [[name, 'bf16'], ...(f32Models.has(name) ? [[name, 'f32']] : [])]);
const variants = opts.variants.split(',').filter(Boolean);
for (const v of variants) if (!(v in VARIANTS)) throw new Error(`train-bench: unknown variant '${v}', expected some of ${Object.keys(VARIANTS).join(', ')}`);

for (const [name, precision] of runs) {
  let batch = Number(opts.batch);
  while (batch >= 1) {
    try {
      for (const r of trainBench(gpu, name, batch, precision, variants)) {
        if (peak) {
          r.mfuVsBf16Peak = (r.achievedTflops * 1e12) / peak.bf16;
          r.mfuVsTf32Peak = (r.achievedTflops * 1e12) / peak.tf32;
        }
        results.train.push(r);
        console.log(`${name} ${precision} ${r.variant}: ${r.tokensPerSecond.toFixed(0)} tokens/s (batch ${batch}, ${r.medianStepMs.toFixed(1)} ms/step, ${r.achievedTflops.toFixed(1)} TFLOP/s${peak ? `, MFU ${(100 * r.mfuVsBf16Peak).toFixed(1)}% of bf16 peak, ${(100 * r.mfuVsTf32Peak).toFixed(1)}% of TF32 peak` : ''})`);
      }
      break;
    } catch (e) {
      if (e.code === 'GPU_OUT_OF_MEMORY' && batch > 1) {
        console.log(`${name} ${precision}: batch ${batch} does not fit (${e.message.split('.')[0]}); trying ${batch / 2}`);
        results.errors.push(`${name} ${precision} batch ${batch}: ${e.message}`);
        batch = Math.floor(batch / 2);
        continue;
      }
      console.log(`${name} ${precision}: failed: ${e.code ?? ''} ${e.stack ?? e.message}`);
      results.errors.push(`${name} ${precision}: ${e.code ?? ''} ${e.message}`);
      break;
    }
  }
  save();
}

// Blank filling once per decode-attention kernel (--decode-variants); the first is results.inference.
const decodeDefault = gpu.info.splitDecode ? 'split' : 'one-block';
for (const decodeAttention of opts['decode-variants'].split(',').filter(Boolean)) {
  try {
    gpu.setOptions({ decodeAttention });
    const r = { decodeAttention, ...inferenceBench(gpu) };
    results.inference ??= r;
    results.inferenceVariants.push(r);
    console.log(`blank filling (glm-base, KV cache, greedy, 400-token context, ${decodeAttention} decode attention): ${r.tokensPerSecond.toFixed(1)} tokens/s with the prefill, ${r.decodeTokensPerSecond.toFixed(1)} tokens/s decoding`);
  } catch (e) {
    console.log(`inference bench (${decodeAttention}) failed: ${e.code ?? ''} ${e.message}`);
    results.errors.push(`inference (${decodeAttention}): ${e.message}`);
  } finally {
    gpu.setOptions({ decodeAttention: decodeDefault });
  }
  save();
}
gpu.dispose();
