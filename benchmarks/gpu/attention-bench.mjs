#!/usr/bin/env node
// The CUDA backend's fused attention alone, at GLM-Base and GLM-Large training shapes (batch 32,
// 512 tokens, 64-dim heads, GLM's prefix mask, probability dropout 0.1, bf16 operands): GPU time
// per call of the forward, of the backward after that forward (it reuses the forward's dropout
// keep bits), and of the backward on its own (a fresh lse buffer: it hashes the dropout again),
// with the achieved TFLOP/s of the useful products (forward 4·B·H·L²·D, backward 2.5× that).
// Small enough to run under Nsight Compute:
//   ncu --clock-control none --kernel-name regex:tca --launch-count 3 node attention-bench.mjs --iters 1
//
// Usage: node benchmarks/gpu/attention-bench.mjs [--shapes base,large] [--iters 10] [--out DIR]
// Runs from the repo after `pnpm build`, or as the bundle .carry/device/attention-bench.mjs.
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createGpuBackend, probeGpu } from '../../packages/backend-gpu/dist/index.js';
import { Rng, glmKeyRanges } from '../../packages/tensor/dist/index.js';

const { values: opts } = parseArgs({
  options: {
    shapes: { type: 'string', default: 'base,large' },
    iters: { type: 'string', default: '10' },
    out: { type: 'string', default: process.env.OUT || '.' },
  },
});
const SHAPES = { base: { heads: 12 }, large: { heads: 16 } };
const B = 32, L = 512, D = 64, SPAN = 80;
const iters = Number(opts.iters);

const probe = await probeGpu();
if (!probe.available) {
  console.error(`attention-bench: no GPU: ${probe.detail}`);
  process.exit(2);
}
const gpu = createGpuBackend();
console.log(`attention-bench on ${gpu.info.name}: B ${B}, L ${L}, D ${D}, GLM mask (Part B ${SPAN}), dropout 0.1, bf16`);
const results = { card: gpu.info, shapes: [] };

/** GPU ms per call of `body` over `iters` calls (the addon's per-op event timing). */
function timed(body) {
  gpu.synchronize();
  gpu.profileReport(true);
  gpu.setProfiling(true);
  try {
    for (let i = 0; i < iters; i++) body(i);
  } finally {
    gpu.setProfiling(false);
  }
  const ops = gpu.profileReport(true);
  return ops.reduce((n, o) => n + o.ms, 0) / iters;
}

for (const name of opts.shapes.split(',')) {
  const { heads } = SHAPES[name];
  const W = heads * D;
  const rng = new Rng(1);
  const bf16 = (n, std = 1) => {
    const t = gpu.alloc('bf16', n);
    gpu.write(t, Float32Array.from({ length: n }, () => rng.normal(0, std)));
    return t;
  };
  const qkv = bf16(B * L * 3 * W), dOut = bf16(B * L * W), out = gpu.alloc('bf16', B * L * W), dqkv = gpu.alloc('bf16', B * L * 3 * W);
  const lse = gpu.alloc('f32', B * heads * L), lseCopy = gpu.alloc('f32', B * heads * L);
  const sep = new Int32Array(B).fill(L - SPAN);
  const { keyStart: ksHost, keyEnd: keHost } = glmKeyRanges({ batchSize: B, seqLength: L, sep, numSegments: 1 });
  const keyStart = gpu.alloc('i32', B * L), keyEnd = gpu.alloc('i32', B * L);
  gpu.write(keyStart, ksHost);
  gpu.write(keyEnd, keHost);
  const view = (tensor, part) => ({ tensor, offset: part * W, rowStride: 3 * W, batchStride: L * 3 * W });
  const common = { batch: B, queries: L, keys: L, heads, headDim: D, scale: 1 / Math.sqrt(D), keyStart, keyEnd };
  const dropout = (i) => ({ p: 0.1, seed: 100 + i, stream: 7 });
  const forward = (i, lseOut) => gpu.run('attention', { ...common, q: view(qkv, 0), k: view(qkv, 1), v: view(qkv, 2), out, lse: lseOut, dropout: dropout(i) });
  const backward = (i, lseIn) =>
    gpu.run('attentionBackward', {
      ...common, q: view(qkv, 0), k: view(qkv, 1), v: view(qkv, 2), out, lse: lseIn, dOut, dq: view(dqkv, 0), dk: view(dqkv, 1), dv: view(dqkv, 2), dropout: dropout(i),
    });
  for (let i = 0; i < 2; i++) {
    forward(i, lse);
    backward(i, lse);
  }
  const fwdMs = timed((i) => forward(i, lse));
  // The backward right after its forward (keep bits reused), as in training.
  gpu.synchronize();
  gpu.profileReport(true);
  for (let i = 0; i < iters; i++) {
    forward(i, lse);
    gpu.setProfiling(true);
    backward(i, lse);
    gpu.setProfiling(false);
  }
  const bwdMs = gpu.profileReport(true).reduce((n, o) => n + o.ms, 0) / iters;
  // The backward with an lse buffer no forward wrote (dropout hashed again).
  gpu.run('copy', { src: lse, srcOffset: 0, dst: lseCopy, dstOffset: 0, size: B * heads * L });
  const bwdHashMs = timed(() => backward(iters - 1, lseCopy));
  const fwdFlop = 4 * B * heads * L * L * D;
  const row = { shape: name, heads, forwardMs: fwdMs, backwardMs: bwdMs, backwardHashingMs: bwdHashMs, forwardTflops: fwdFlop / fwdMs / 1e9, backwardTflops: (2.5 * fwdFlop) / bwdMs / 1e9 };
  results.shapes.push(row);
  console.log(
    `${name} (${heads} heads): forward ${fwdMs.toFixed(3)} ms (${row.forwardTflops.toFixed(0)} TFLOP/s), backward ${bwdMs.toFixed(3)} ms (${row.backwardTflops.toFixed(0)} TFLOP/s) with the forward's keep bits, ${bwdHashMs.toFixed(3)} ms hashing`,
  );
  for (const t of [qkv, dOut, out, dqkv, lse, lseCopy, keyStart, keyEnd]) gpu.free(t);
}
mkdirSync(opts.out, { recursive: true });
writeFileSync(join(opts.out, 'attention-bench.json.tmp'), JSON.stringify(results, null, 2));
renameSync(join(opts.out, 'attention-bench.json.tmp'), join(opts.out, 'attention-bench.json'));
gpu.dispose();
