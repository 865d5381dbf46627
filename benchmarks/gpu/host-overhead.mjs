#!/usr/bin/env node
// The host side of a CUDA training step, measured without a GPU: the model of @blankglm/model-spec
// runs a GLM training step (zeroGrad, forward, backward, AdamW with clipping) on the CUDA backend
// with a stand-in addon that does no device work, so what is timed is the JavaScript (validation,
// encoding, bookkeeping) a real step spends on the CPU. It also counts what the device would be
// asked for: Node-API crossings, allocations and the bytes they zero-fill, and reads (each one a
// wait for the device), and times how long the host takes to reach the first layer's kernels (the
// device is idle until then). Where the GPU is faster than the host can issue, this is the floor.
//
// Usage: node benchmarks/gpu/host-overhead.mjs [--model glm-base] [--batch 32] [--seq 512] [--steps 20] [--precision bf16]
// Runs from the repo after `pnpm build` (no GPU, no addon needed), or as the bundle .carry/device/host-overhead.mjs.
import { cpus } from 'node:os';
import { parseArgs } from 'node:util';
import { GpuBackend } from '../../packages/backend-gpu/dist/index.js';
import { AdamW, GlmModel, getPreset, initParameters } from '../../packages/model-spec/dist/index.js';
import { DTYPE_BYTES, Rng } from '../../packages/tensor/dist/index.js';
import { makeBatch } from './glm-batch.mjs';

const { values: opts } = parseArgs({
  options: {
    model: { type: 'string', default: 'glm-base' },
    batch: { type: 'string', default: '32' },
    seq: { type: 'string', default: '512' },
    steps: { type: 'string', default: '20' },
    precision: { type: 'string', default: 'bf16' },
  },
});
const B = Number(opts.batch), L = Number(opts.seq), steps = Number(opts.steps);

const DTYPES = ['f32', 'bf16', 'i32', 'u8'];
const counts = { runs: 0, allocs: 0, allocBytes: 0, zeroedBytes: 0, reads: 0 };
/** A NativeAddon that accepts every call and does nothing (reads return zeros). */
const standIn = {
  alloc(_id, dtype, elements, _label, fill = 0) {
    counts.allocs++;
    const bytes = elements * DTYPE_BYTES[DTYPES[dtype]];
    counts.allocBytes += bytes;
    if (fill !== 1) counts.zeroedBytes += bytes;
  },
  free() {},
  write() {},
  read() {
    counts.reads++;
  },
  run() {
    counts.runs++;
  },
  synchronize() {},
  setOptions: () => info,
};
const info = {
  name: 'stand-in (no device)', computeCapability: '9.0', multiprocessors: 132, memoryBytes: 2 ** 40, runtimeVersion: 13000, driverVersion: 13000,
  cublasLt: null, gemm: 'cublasLt', tf32: false, ltGelu: false, tcAttention: true, lnSplit: false, splitDecode: false,
};
const gpu = new GpuBackend(standIn, info);

// When the host reaches the first attention op of a step: everything before it is host time the
// device cannot hide (it has only the zero fills and weight casts to run meanwhile).
let stepStart = 0;
let firstAttention = null;
const run = gpu.run.bind(gpu), runSequence = gpu.runSequence.bind(gpu);
gpu.run = (op, args) => {
  if (op === 'attention' && firstAttention === null) firstAttention = performance.now() - stepStart;
  run(op, args);
};
gpu.runSequence = (calls) => runSequence(calls);

const config = getPreset(opts.model);
const model = GlmModel.create(gpu, config, { stateDict: initParameters(config, new Rng(1)), precision: opts.precision });
const optimizer = new AdamW(model, { lr: 1e-4, weightDecay: 0.01, maxGradNorm: 1 });

const batch = makeBatch(new Rng(2), B, L, config.vocab_size);

const rows = [];
for (let s = 0; s < steps + 3; s++) {
  for (const k of Object.keys(counts)) counts[k] = 0;
  firstAttention = null;
  stepStart = performance.now();
  model.zeroGrad();
  const t1 = performance.now();
  const r = model.forward(batch, { mode: 'train', seed: s });
  const t2 = performance.now();
  model.backward();
  const t3 = performance.now();
  optimizer.update();
  void r.loss;
  const t4 = performance.now();
  if (s >= 3) rows.push({ zero: t1 - stepStart, forward: t2 - t1, backward: t3 - t2, update: t4 - t3, total: t4 - stepStart, firstAttention, ...counts });
}
optimizer.dispose();
model.dispose();

const median = (key) => rows.map((r) => r[key]).sort((a, b) => a - b)[Math.floor(rows.length / 2)];
const ms = (key) => median(key).toFixed(2);
const c = rows[0];
const gib = (b) => (b / 2 ** 30).toFixed(2);
console.log(`host side of one ${opts.model} ${opts.precision} training step (batch ${B} × ${L}) on the CUDA backend with a stand-in addon (no device work)`);
console.log(`node ${process.version}, ${cpus()[0]?.model ?? 'unknown CPU'} × ${cpus().length}; median of ${rows.length} steps`);
console.log(`  JavaScript per step: ${ms('total')} ms (zeroGrad ${ms('zero')}, forward ${ms('forward')}, backward ${ms('backward')}, update ${ms('update')})`);
console.log(`  first attention op issued after ${ms('firstAttention')} ms (the device runs only fills and casts before it)`);
console.log(`  ${c.runs} Node-API launches, ${c.reads} reads (waits for the device), ${c.allocs} allocations of ${gib(c.allocBytes)} GiB, of which ${gib(c.zeroedBytes)} GiB zero-filled`);
