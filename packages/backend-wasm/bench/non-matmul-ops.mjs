// Per-op times of the non-matmul ops on the wasm backend (1 and N threads) against the reference
// backend, at glm-tiny and glm-base sizes, in one process. Prints medians and ratios.
//   node bench/non-matmul-ops.mjs [--threads N] [--repeats R] [--only op,op]
// Run `pnpm --filter @blankglm/backend-wasm build` first. Timings on a shared machine are noisy.
import os from 'node:os';
import { parseArgs } from 'node:util';
import { createReferenceBackend } from '@blankglm/backend-ref';
import { glmKeyRanges, Rng } from '@blankglm/tensor';
import { createWasmBackend } from '../dist/index.js';

const { values } = parseArgs({
  options: { threads: { type: 'string', default: String(Math.min(4, os.availableParallelism())) }, repeats: { type: 'string', default: '5' }, only: { type: 'string' } },
});
const threads = Number(values.threads);
const repeats = Number(values.repeats);
const only = values.only ? values.only.split(',') : null;

const SIZES = {
  'glm-tiny': { B: 1, L: 512, H: 128, heads: 4, V: 30592, P: 513 },
  'glm-base': { B: 4, L: 512, H: 768, heads: 12, V: 30592, P: 513 },
};

/** Op cases at one model size: name, op, host tensors, args builder. */
function cases(s, rng) {
  const { B, L, H, heads, V, P } = s;
  const T = B * L;
  const D = H / heads;
  const normal = (n, std = 1) => Float32Array.from({ length: n }, () => rng.normal(0, std));
  const ints = (n, bound) => Int32Array.from({ length: n }, () => rng.int(bound));
  const sep = Int32Array.from({ length: B }, () => L >> 1);
  const { keyStart, keyEnd } = glmKeyRanges({ batchSize: B, seqLength: L, sep, numSegments: 1 });
  const f = (data) => ({ dtype: 'f32', data });
  const i = (data) => ({ dtype: 'i32', data });
  const dropout = { p: 0.1, seed: 42, stream: 3 };
  const qkvView = (t, third) => ({ tensor: t, offset: third * H, rowStride: 3 * H, batchStride: L * 3 * H });
  const attn = (t) => ({
    q: qkvView(t.qkv, 0), k: qkvView(t.qkv, 1), v: qkvView(t.qkv, 2), keyStart: t.keyStart, keyEnd: t.keyEnd, out: t.out, lse: t.lse,
    batch: B, queries: L, keys: L, heads, headDim: D, scale: 1 / Math.sqrt(D), dropout,
  });
  const ln = (t) => ({ x: t.x, gamma: t.gamma, beta: t.beta, y: t.y, mean: t.mean, rstd: t.rstd, rows: T, hiddenSize: H, eps: 1e-5 });
  const nParams = 12 * H * H; // one transformer layer's weights
  return [
    { name: `layerNorm ${T}×${H}`, op: 'layerNorm', tensors: { x: f(normal(T * H)), gamma: f(normal(H)), beta: f(normal(H)), y: f(new Float32Array(T * H)), mean: f(new Float32Array(T)), rstd: f(new Float32Array(T)) }, args: ln },
    {
      name: `layerNormBackward ${T}×${H}`, op: 'layerNormBackward',
      tensors: { x: f(normal(T * H)), gamma: f(normal(H)), beta: f(normal(H)), y: f(new Float32Array(T * H)), mean: f(new Float32Array(T)), rstd: f(new Float32Array(T)), dy: f(normal(T * H)), dx: f(new Float32Array(T * H)), dGamma: f(new Float32Array(H)), dBeta: f(new Float32Array(H)) },
      prepare: [['layerNorm', ln]],
      args: (t) => ({ dy: t.dy, x: t.x, gamma: t.gamma, mean: t.mean, rstd: t.rstd, dx: t.dx, dGamma: t.dGamma, dBeta: t.dBeta, rows: T, hiddenSize: H, accumulate: true }),
    },
    { name: `attention B=${B} L=${L} ${heads}×${D} p=0.1`, op: 'attention', tensors: { qkv: f(normal(T * 3 * H)), keyStart: i(keyStart), keyEnd: i(keyEnd), out: f(new Float32Array(T * H)), lse: f(new Float32Array(B * heads * L)) }, args: attn },
    {
      name: `attentionBackward B=${B} L=${L} ${heads}×${D} p=0.1`, op: 'attentionBackward',
      tensors: { qkv: f(normal(T * 3 * H)), dqkv: f(new Float32Array(T * 3 * H)), dOut: f(normal(T * H)), keyStart: i(keyStart), keyEnd: i(keyEnd), out: f(new Float32Array(T * H)), lse: f(new Float32Array(B * heads * L)) },
      prepare: [['attention', attn]],
      args: (t) => ({ ...attn(t), dOut: t.dOut, dq: qkvView(t.dqkv, 0), dk: qkvView(t.dqkv, 1), dv: qkvView(t.dqkv, 2) }),
    },
    {
      name: `embedding T=${T} H=${H}`, op: 'embedding',
      tensors: { wordEmb: f(normal(V * H, 0.02)), posEmb: f(normal(P * H, 0.02)), blockPosEmb: f(normal(P * H, 0.02)), ids: i(ints(T, V)), pos: i(ints(T, L)), block: i(ints(T, 20)), out: f(new Float32Array(T * H)) },
      args: (t) => ({ wordEmb: t.wordEmb, posEmb: t.posEmb, blockPosEmb: t.blockPosEmb, inputIds: t.ids, positionIds: t.pos, blockPositionIds: t.block, out: t.out, tokens: T, hiddenSize: H, vocab: V, positions: P }),
    },
    {
      name: `embeddingBackward T=${T} H=${H}`, op: 'embeddingBackward',
      tensors: { dWordEmb: f(new Float32Array(V * H)), dPosEmb: f(new Float32Array(P * H)), dBlockPosEmb: f(new Float32Array(P * H)), ids: i(ints(T, V)), pos: i(ints(T, L)), block: i(ints(T, 20)), dOut: f(normal(T * H)) },
      args: (t) => ({ dOut: t.dOut, inputIds: t.ids, positionIds: t.pos, blockPositionIds: t.block, dWordEmb: t.dWordEmb, dPosEmb: t.dPosEmb, dBlockPosEmb: t.dBlockPosEmb, tokens: T, hiddenSize: H, vocab: V, positions: P }),
    },
    { name: `dropoutAdd ${T}×${H} p=0.1`, op: 'dropoutAdd', tensors: { x: f(normal(T * H)), r: f(normal(T * H)) }, args: (t) => ({ x: t.x, residual: t.r, out: t.r, size: T * H, dropout }) },
    { name: `dropoutBackward ${T}×${H} p=0.1`, op: 'dropoutBackward', tensors: { dy: f(normal(T * H)), dx: f(normal(T * H)) }, args: (t) => ({ dy: t.dy, dx: t.dx, size: T * H, dropout, accumulate: true }) },
    { name: `gatherRows ${T >> 3} of ${T}×${H}`, op: 'gatherRows', tensors: { x: f(normal(T * H)), index: i(ints(T >> 3, T)), out: f(new Float32Array((T >> 3) * H)) }, args: (t) => ({ x: t.x, index: t.index, out: t.out, count: T >> 3, rows: T, width: H }) },
    { name: `scatterAddRows ${T >> 3} into ${T}×${H}`, op: 'scatterAddRows', tensors: { dOut: f(normal((T >> 3) * H)), index: i(ints(T >> 3, T)), dx: f(new Float32Array(T * H)) }, args: (t) => ({ dOut: t.dOut, index: t.index, dx: t.dx, count: T >> 3, rows: T, width: H }) },
    {
      name: `adamw ${nParams} (one layer)`, op: 'adamw', tensors: { p: f(normal(nParams, 0.02)), g: f(normal(nParams, 1e-3)), m: f(new Float32Array(nParams)), v: f(new Float32Array(nParams)) },
      args: (t) => ({ param: t.p, grad: t.g, m: t.m, v: t.v, size: nParams, lr: 1e-4, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01, step: 10, gradScale: 1 }),
    },
    { name: `sumSquares ${nParams}`, op: 'sumSquares', tensors: { x: f(normal(nParams)), out: f(new Float32Array(1)) }, args: (t) => ({ x: t.x, size: nParams, out: t.out, outIndex: 0 }) },
    { name: `scale ${nParams}`, op: 'scale', tensors: { x: f(normal(nParams)) }, args: (t) => ({ x: t.x, size: nParams, factor: 0.999 }) },
  ];
}

function time(be, c, reps) {
  const t = {};
  for (const [name, init] of Object.entries(c.tensors)) {
    t[name] = be.alloc(init.dtype, init.data.length, name);
    be.write(t[name], init.data);
  }
  for (const [op, args] of c.prepare ?? []) be.run(op, args(t));
  const args = c.args(t);
  be.run(c.op, args); // warm-up
  const ms = [];
  for (let r = 0; r < reps; r++) {
    const t0 = performance.now();
    be.run(c.op, args);
    be.synchronize();
    ms.push(performance.now() - t0);
  }
  for (const x of Object.values(t)) be.free(x);
  ms.sort((a, b) => a - b);
  return ms[ms.length >> 1];
}

const ref = createReferenceBackend({ guardElements: 0 });
const one = createWasmBackend({ threads: 1 });
const many = createWasmBackend({ threads });
await many.ready();
console.log(`node ${process.version}, ${os.cpus()[0]?.model ?? 'cpu'} × ${os.availableParallelism()}; wasm: ${one.device.name} | ${many.device.name}; median of ${repeats} (reference: of ${Math.min(repeats, 3)})`);
for (const [size, s] of Object.entries(SIZES)) {
  console.log(`\n${size} (B=${s.B}, L=${s.L}, H=${s.H}, heads=${s.heads})`);
  console.log(`${'op'.padEnd(46)}${'ref ms'.padStart(10)}${'wasm×1 ms'.padStart(11)}${`wasm×${threads} ms`.padStart(11)}${'ref/w×1'.padStart(9)}${`ref/w×${threads}`.padStart(9)}`);
  for (const c of cases(s, new Rng(size))) {
    if (only && !only.includes(c.op)) continue;
    const r = time(ref, c, Math.min(repeats, 3));
    const w1 = time(one, c, repeats);
    const wn = time(many, c, repeats);
    console.log(`${c.name.padEnd(46)}${r.toFixed(2).padStart(10)}${w1.toFixed(2).padStart(11)}${wn.toFixed(2).padStart(11)}${(r / w1).toFixed(1).padStart(9)}${(r / wn).toFixed(1).padStart(9)}`);
  }
}
one.dispose();
many.dispose();
ref.dispose();
