// blankglm's WASM backend against the WebAssembly peers — and native code — in one process:
//   1. matmul GFLOP/s on GLM-Base's linear shapes (2048 tokens = 4 × 512): blankglm wasm (relaxed
//      SIMD and plain SIMD, 1 and 2 threads), @tensorflow/tfjs-backend-wasm (XNNPACK, 1 thread in
//      Node), onnxruntime-web's WASM backend (1 thread in Node) and onnxruntime-node (native CPU
//      provider, "what native code gets", 1 and 2 threads);
//   2. per-op times of attention, layer norm and cross-entropy on GLM-Base sizes;
//   3. a GLM training step (forward + backward + AdamW) in tokens/s for the tiny and base presets,
//      its rate in GFLOP/s as a fraction of the matmul rate and of the machine's measured SIMD peak.
//   node benchmarks/src/wasm-matmul.mjs [--quick] [--reps 5] [--no-train]
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { cpus, loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import { createWasmBackend } from '@blankglm/backend-wasm';
import { AdamW, GlmModel, getPreset, parameterCount } from '@blankglm/model-spec';
import { DataType, encodeModel } from '@blankglm/onnx';
import { glmKeyRanges, Rng } from '@blankglm/tensor';

const argv = process.argv.slice(2);
const arg = (name, fallback) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : fallback;
};
const quick = argv.includes('--quick');
const reps = Number(arg('reps', quick ? 2 : 5));
const train = !argv.includes('--no-train');
const log = (s) => console.log(s);
const require = createRequire(import.meta.url);
const version = (pkg) => {
  try {
    return JSON.parse(readFileSync(require.resolve(`${pkg}/package.json`), 'utf8')).version;
  } catch {
    return JSON.parse(readFileSync(new URL(`../node_modules/${pkg}/package.json`, import.meta.url), 'utf8')).version;
  }
};

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
/** Warm-up runs (V8 swaps optimised wasm code in between calls), then the median of `reps`. */
async function time(fn, warmup = 2) {
  for (let i = 0; i < warmup; i++) await fn();
  const times = [];
  for (let r = 0; r < reps; r++) {
    const t0 = performance.now();
    await fn();
    times.push((performance.now() - t0) / 1000);
  }
  return median(times);
}
function random(n, seed, scale = 1) {
  const r = new Rng(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = (r.float() - 0.5) * scale;
  return out;
}

const SHAPES = quick
  ? [{ name: 'fc1', M: 2048, K: 768, N: 3072 }]
  : [
      { name: 'fc1', M: 2048, K: 768, N: 3072 },
      { name: 'fc2', M: 2048, K: 3072, N: 768 },
      { name: 'qkv', M: 2048, K: 768, N: 2304 },
      { name: 'dense', M: 2048, K: 768, N: 768 },
    ];
const shapeLabel = (s) => `${s.name} ${s.M}×${s.K}·${s.K}×${s.N}`;

log(`machine: ${cpus().length} × ${cpus()[0]?.model ?? 'unknown CPU'}, Node ${process.versions.node} (V8 ${process.versions.v8}), load average ${loadavg()[0].toFixed(1)} at start`);
log(
  `versions: @blankglm/backend-wasm ${version('@blankglm/backend-wasm')}, @tensorflow/tfjs-backend-wasm ${version('@tensorflow/tfjs-backend-wasm')}, onnxruntime-web ${version('onnxruntime-web')}, onnxruntime-node ${version('onnxruntime-node')}`,
);

// ---- engines: each returns { label, key, prepare(shape) → async run() } ----
function blankglmEngine(variant, threads) {
  const be = createWasmBackend({ variant, threads, notice: () => {} });
  return {
    label: `blankglm wasm ${variant === 'relaxed' ? 'relaxed SIMD' : 'SIMD'}, ${threads}t`,
    key: `blankglm_${variant === 'relaxed' ? 'relaxed' : 'simd'}_${threads}t`,
    backend: be,
    async prepare({ M, K, N }) {
      await be.ready();
      const x = be.alloc('f32', M * K);
      const w = be.alloc('f32', N * K);
      const y = be.alloc('f32', M * N);
      be.write(x, random(M * K, 1));
      be.write(w, random(N * K, 2, 0.1));
      const args = { x, weight: w, bias: null, y, preAct: null, rows: M, inFeatures: K, outFeatures: N, activation: 'none' };
      return { run: () => be.run('linear', args), done: () => [x, w, y].forEach((t) => be.free(t)) };
    },
    dispose: () => be.dispose(),
  };
}

async function tfjsEngine() {
  const tf = await import('@tensorflow/tfjs-core');
  await import('@tensorflow/tfjs-backend-wasm');
  // Its multi-threaded build needs browser workers; in Node it runs its SIMD build on one thread.
  tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', false);
  await tf.setBackend('wasm');
  await tf.ready();
  return {
    label: 'tfjs-backend-wasm (XNNPACK SIMD), 1t',
    key: 'tfjs_wasm_1t',
    async prepare({ M, K, N }) {
      // A·B with B [K, N]: XNNPACK's fast path (A·Bᵀ takes a generic path, ~20× slower here).
      const a = tf.tensor2d(random(M * K, 1), [M, K]);
      const b = tf.tensor2d(random(K * N, 2, 0.1), [K, N]);
      return {
        run: () => {
          const y = tf.matMul(a, b);
          y.dataSync();
          y.dispose();
        },
        done: () => {
          a.dispose();
          b.dispose();
        },
      };
    },
    dispose: () => {},
  };
}

/** A one-node ONNX model: Y = A·B with A an input [M, K] and B an initializer [K, N]. */
function matmulModel({ M, K, N }) {
  const b = random(K * N, 2, 0.1);
  return encodeModel({
    irVersion: 8,
    opsetVersion: 17,
    producerName: 'blankglm-bench',
    producerVersion: '0',
    graph: {
      name: 'matmul',
      nodes: [{ opType: 'MatMul', inputs: ['A', 'B'], outputs: ['Y'], name: 'mm' }],
      initializers: [{ name: 'B', dataType: DataType.FLOAT, dims: [K, N], raw: new Uint8Array(b.buffer) }],
      inputs: [{ name: 'A', elemType: DataType.FLOAT, shape: [M, K] }],
      outputs: [{ name: 'Y', elemType: DataType.FLOAT, shape: [M, N] }],
    },
  }).toBytes();
}

function ortEngine(ort, label, key, sessionOptions) {
  return {
    label,
    key,
    async prepare(shape) {
      const session = await ort.InferenceSession.create(matmulModel(shape), sessionOptions);
      const a = new ort.Tensor('float32', random(shape.M * shape.K, 1), [shape.M, shape.K]);
      return { run: async () => void (await session.run({ A: a })), done: () => session.release?.() };
    },
    dispose: () => {},
  };
}

const engines = [];
engines.push(blankglmEngine('relaxed', 1), blankglmEngine('relaxed', 2), blankglmEngine('simd-threads', 1), blankglmEngine('simd-threads', 2));
const pending = [];
try {
  engines.push(await tfjsEngine());
} catch (e) {
  pending.push(`tfjs-backend-wasm: ${e.message.split('\n')[0]}`);
}
try {
  const ortWeb = await import('onnxruntime-web');
  ortWeb.env.wasm.numThreads = 1;
  engines.push(ortEngine(ortWeb, 'onnxruntime-web wasm (SIMD), 1t', 'ort_web_1t', { executionProviders: ['wasm'] }));
} catch (e) {
  pending.push(`onnxruntime-web: ${e.message.split('\n')[0]}`);
}
try {
  const ortNode = await import('onnxruntime-node');
  for (const t of [1, 2]) engines.push(ortEngine(ortNode, `onnxruntime-node (native CPU), ${t}t`, `ort_node_${t}t`, { executionProviders: ['cpu'], intraOpNumThreads: t, interOpNumThreads: 1 }));
} catch (e) {
  pending.push(`onnxruntime-node: ${e.message.split('\n')[0]}`);
}

// ---- 1. matmul ----
log(`\n1. matmul GFLOP/s (median of ${reps} after 2 warm-ups)`);
const gflops = {}; // key → shape → GFLOP/s
for (const shape of SHAPES) {
  for (const e of engines) {
    try {
      const p = await e.prepare(shape);
      const s = await time(p.run);
      p.done();
      ((gflops[e.key] ??= {})[shape.name] = (2 * shape.M * shape.K * shape.N) / s / 1e9);
    } catch (err) {
      pending.push(`${e.label} on ${shapeLabel(shape)}: ${err.message.split('\n')[0]}`);
    }
  }
}
const mean = (key) => {
  const v = Object.values(gflops[key] ?? {});
  return v.length ? v.reduce((a, b) => a + b, 0) / v.length : NaN;
};
log(`${'engine'.padEnd(42)}${SHAPES.map((s) => s.name.padStart(9)).join('')}${'mean'.padStart(9)}${'ours 2t ÷'.padStart(11)}`);
const ours2 = mean('blankglm_relaxed_2t');
for (const e of engines) {
  if (!gflops[e.key]) continue;
  log(`${e.label.padEnd(42)}${SHAPES.map((s) => (gflops[e.key][s.name]?.toFixed(1) ?? '—').padStart(9)).join('')}${mean(e.key).toFixed(1).padStart(9)}${(ours2 / mean(e.key)).toFixed(2).padStart(10)}×`);
}
log(`shapes: ${SHAPES.map(shapeLabel).join(', ')}`);

// ---- 2. per-op times (blankglm wasm relaxed, 2 threads; GLM-Base sizes) ----
const be = engines[1].backend;
const opTimes = {};
{
  log(`\n2. per-op times, ${be.device.name}, GLM-Base sizes`);
  const B = 4, L = 512, heads = 12, D = 64, H = heads * D, T = B * L, V = 30592;
  const put = (data, dtype = 'f32') => {
    const t = be.alloc(dtype, data.length);
    be.write(t, data);
    return t;
  };
  const sep = Int32Array.from({ length: B }, (_, b) => 128 + 96 * b);
  const ranges = glmKeyRanges({ batchSize: B, seqLength: L, sep, numSegments: 1 });
  const qkv = put(random(T * 3 * H, 3));
  const view = (o) => ({ tensor: qkv, offset: o, rowStride: 3 * H, batchStride: L * 3 * H });
  const keyStart = put(ranges.keyStart, 'i32');
  const keyEnd = put(ranges.keyEnd, 'i32');
  const out = be.alloc('f32', T * H);
  const lse = be.alloc('f32', B * heads * L);
  const attn = { q: view(0), k: view(H), v: view(2 * H), keyStart, keyEnd, out, lse, batch: B, queries: L, keys: L, heads, headDim: D, scale: 1 / 8, dropout: { p: 0.1, seed: 1, stream: 0 } };
  opTimes.attention = await time(() => be.run('attention', attn));
  const dOut = put(random(T * H, 4));
  const dqkv = be.alloc('f32', T * 3 * H);
  const dview = (o) => ({ tensor: dqkv, offset: o, rowStride: 3 * H, batchStride: L * 3 * H });
  const attnB = { ...attn, dOut, dq: dview(0), dk: dview(H), dv: dview(2 * H) };
  delete attnB.k; // rebuilt below to keep property order readable
  opTimes.attentionBackward = await time(() => be.run('attentionBackward', { ...attnB, k: view(H) }));
  const x = put(random(T * H, 5));
  const gamma = put(random(H, 6));
  const beta = put(random(H, 7));
  const y = be.alloc('f32', T * H);
  const mean_ = be.alloc('f32', T);
  const rstd = be.alloc('f32', T);
  opTimes.layerNorm = await time(() => be.run('layerNorm', { x, gamma, beta, y, mean: mean_, rstd, rows: T, hiddenSize: H, eps: 1e-5 }));
  const dx = be.alloc('f32', T * H);
  const dGamma = be.alloc('f32', H);
  const dBeta = be.alloc('f32', H);
  opTimes.layerNormBackward = await time(() => be.run('layerNormBackward', { dy: dOut, x, gamma, mean: mean_, rstd, dx, dGamma, dBeta, rows: T, hiddenSize: H, accumulate: false }));
  const n = Math.round(T * 0.15); // GLM's blanked tokens: ~15% of the text
  const hidden = put(random(n * H, 8));
  const wordEmb = put(random(V * H, 9, 0.1));
  const tr = new Rng(10);
  const targets = put(Int32Array.from({ length: n }, () => tr.int(V)), 'i32');
  const losses = be.alloc('f32', n);
  const ceLse = be.alloc('f32', n);
  const ce = { hidden, wordEmb, targets, losses, lse: ceLse, tokens: n, hiddenSize: H, vocab: V, labelSmoothing: 0 };
  opTimes.crossEntropy = await time(() => be.run('crossEntropy', ce));
  const weights = put(new Float32Array(n).fill(1 / n));
  const dHidden = be.alloc('f32', n * H);
  const dWordEmb = be.alloc('f32', V * H);
  opTimes.crossEntropyBackward = await time(() => be.run('crossEntropyBackward', { ...ce, weights, dHidden, dWordEmb }));
  const flops = {
    attention: 4 * B * heads * D * L * L, // QKᵀ and PV over the full L×L (the mask skips part of it)
    layerNorm: 0,
    crossEntropy: 2 * n * V * H,
    crossEntropyBackward: 6 * n * V * H,
  };
  log(`${'op'.padEnd(24)}${'shape'.padEnd(44)}${'ms'.padStart(9)}${'GFLOP/s'.padStart(9)}`);
  const shapes = {
    attention: `B=${B} L=${L} heads=${heads} D=${D} glm mask, p=0.1`,
    attentionBackward: 'same',
    layerNorm: `${T}×${H}`,
    layerNormBackward: `${T}×${H}`,
    crossEntropy: `${n} targets × V=${V} × H=${H}`,
    crossEntropyBackward: 'same',
  };
  for (const [op, s] of Object.entries(opTimes)) {
    const f = op === 'attentionBackward' ? 2.5 * flops.attention : flops[op];
    log(`${op.padEnd(24)}${shapes[op].padEnd(44)}${(s * 1000).toFixed(1).padStart(9)}${(f ? (f / s / 1e9).toFixed(1) : '—').padStart(9)}`);
  }
}

// ---- 3. training step ----
const peak = be.measureSimdPeak();
log(`\nmeasured SIMD peak (8 independent f32x4 multiply-add chains, no memory): ${peak.perThread.toFixed(1)} GFLOP/s on 1 thread, ${peak.allThreads.toFixed(1)} on ${be.threads}`);
const steps = {};
if (train) {
  log(`\n3. GLM training step (forward + backward + AdamW), ${be.device.name}`);
  const presets = quick ? [['glm-tiny', 4, 128]] : [['glm-tiny', 8, 256], ['glm-base', 2, 512]];
  for (const [name, B, L] of presets) {
    const config = { ...getPreset(name), max_sequence_length: Math.max(L, getPreset(name).max_sequence_length) };
    const model = GlmModel.create(be, config, { rng: new Rng(1) });
    const opt = new AdamW(model, { lr: 1e-4 });
    const rng = new Rng(2);
    const T = B * L;
    // GLM layout per row: Part A = first 70%, Part B = the rest (the blanked spans, all targets).
    const sepAt = Math.floor(L * 0.7);
    const batch = {
      batchSize: B, seqLength: L, numSegments: 1,
      sep: new Int32Array(B).fill(sepAt),
      inputIds: Int32Array.from({ length: T }, () => rng.int(config.vocab_size)),
      positionIds: Int32Array.from({ length: T }, (_, i) => Math.min(i % L, sepAt - 1)),
      blockPositionIds: Int32Array.from({ length: T }, (_, i) => Math.max(0, (i % L) - sepAt + 1)),
      targetIds: Int32Array.from({ length: T }, () => rng.int(config.vocab_size)),
      lossMask: Uint8Array.from({ length: T }, (_, i) => (i % L >= sepAt ? 1 : 0)),
    };
    let step = 0;
    const s = await time(() => {
      model.zeroGrad();
      model.forward(batch, { mode: 'train', seed: step++ });
      model.backward();
      opt.update();
    }, 1);
    // Model FLOPs: 3 × forward matmuls (24·H² per token per layer), attention QKᵀ/PV over L keys
    // (×3), and the cross-entropy's 4 vocabulary products at the target rows.
    const H = config.hidden_size;
    const targetsN = batch.lossMask.reduce((a, m) => a + m, 0);
    const flops = 3 * config.num_layers * (T * 24 * H * H + 4 * T * L * H) + 4 * 2 * targetsN * config.vocab_size * H;
    const rate = flops / s / 1e9;
    steps[name] = { batch: `${B}×${L}`, seconds: s, tokensPerSecond: T / s, gflops: rate, ofMatmul: rate / ours2, ofPeak: rate / peak.allThreads };
    log(
      `${name.padEnd(9)} (${(parameterCount(config) / 1e6).toFixed(1)}M params) batch ${B}×${L}: ${(s * 1000).toFixed(0)} ms/step, ${(T / s).toFixed(0)} tokens/s, ` +
        `${rate.toFixed(1)} GFLOP/s = ${((100 * rate) / ours2).toFixed(0)}% of the matmul rate, ${((100 * rate) / peak.allThreads).toFixed(0)}% of the measured SIMD peak`,
    );
    opt.dispose();
    model.dispose();
  }
}
for (const p of pending) log(`not measured: ${p}`);
for (const e of engines) e.dispose();

const round = (x) => Math.round(x * 10) / 10;
console.log(
  JSON.stringify({
    machine: `${cpus().length}× ${cpus()[0]?.model}`,
    matmulGflops: Object.fromEntries(Object.keys(gflops).map((k) => [k, round(mean(k))])),
    oursVs: Object.fromEntries(Object.keys(gflops).filter((k) => k !== 'blankglm_relaxed_2t').map((k) => [k, Math.round((ours2 / mean(k)) * 100) / 100])),
    opMs: Object.fromEntries(Object.entries(opTimes).map(([k, v]) => [k, round(v * 1000)])),
    simdPeak: { perThread: round(peak.perThread), allThreads: round(peak.allThreads) },
    trainStep: Object.fromEntries(Object.entries(steps).map(([k, v]) => [k, { tokensPerSecond: Math.round(v.tokensPerSecond), gflops: round(v.gflops), ofMatmul: Math.round(v.ofMatmul * 100) / 100 }])),
  }),
);
