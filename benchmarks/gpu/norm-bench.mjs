#!/usr/bin/env node
// The CUDA backend's layer norm alone at the training shapes of GLM-Base and GLM-Large (16384 rows
// of 768 / 1024; x, gamma, dx f32 as the residual stream, y and dy bf16 as in mixed precision,
// dx accumulated): GPU time per call and the bytes each call must move, as effective GB/s. Small
// enough to run under Nsight Compute:
//   ncu --clock-control none --kernel-name regex:layerNorm --launch-count 4 node norm-bench.mjs --iters 1
//
// Usage: node benchmarks/gpu/norm-bench.mjs [--iters 10]
// Runs from the repo after `pnpm build`, or as the bundle .carry/device/norm-bench.mjs.
import { parseArgs } from 'node:util';
import { createGpuBackend, probeGpu } from '../../packages/backend-gpu/dist/index.js';
import { Rng } from '../../packages/tensor/dist/index.js';

const { values: opts } = parseArgs({ options: { iters: { type: 'string', default: '10' } } });
const iters = Number(opts.iters);
const probe = await probeGpu();
if (!probe.available) {
  console.error(`norm-bench: no GPU: ${probe.detail}`);
  process.exit(2);
}
const gpu = createGpuBackend();
console.log(`norm-bench on ${gpu.info.name}`);
const R = 16384;
for (const H of [768, 1024]) {
  const rng = new Rng(1);
  const tensor = (dtype, n, std = 1) => {
    const t = gpu.alloc(dtype, n);
    gpu.write(t, Float32Array.from({ length: n }, () => rng.normal(0, std)));
    return t;
  };
  const x = tensor('f32', R * H), gamma = tensor('f32', H, 0.1), beta = tensor('f32', H, 0.1), dy = tensor('bf16', R * H), dx = tensor('f32', R * H);
  const y = gpu.alloc('bf16', R * H), mean = gpu.alloc('f32', R), rstd = gpu.alloc('f32', R), dGamma = gpu.alloc('f32', H), dBeta = gpu.alloc('f32', H);
  const forward = () => gpu.run('layerNorm', { x, gamma, beta, y, mean, rstd, rows: R, hiddenSize: H, eps: 1e-5 });
  const backward = () => gpu.run('layerNormBackward', { dy, x, gamma, mean, rstd, dx, dGamma, dBeta, rows: R, hiddenSize: H, accumulate: true });
  const time = (body) => {
    body();
    gpu.synchronize();
    gpu.profileReport(true);
    gpu.setProfiling(true);
    try {
      for (let i = 0; i < iters; i++) body();
    } finally {
      gpu.setProfiling(false);
    }
    return gpu.profileReport(true).reduce((n, o) => n + o.ms, 0) / iters;
  };
  const fwd = time(forward), bwd = time(backward);
  const fwdBytes = R * H * (4 + 2), bwdBytes = R * H * (2 + 4 + 4 + 4);
  console.log(
    `H ${H}: layerNorm ${(fwd * 1000).toFixed(1)} µs (${(fwdBytes / fwd / 1e6).toFixed(0)} GB/s), layerNormBackward ${(bwd * 1000).toFixed(1)} µs (${(bwdBytes / bwd / 1e6).toFixed(0)} GB/s)`,
  );
  for (const t of [x, gamma, beta, dy, dx, y, mean, rstd, dGamma, dBeta]) gpu.free(t);
}
gpu.dispose();
