// GLM forward throughput of one checkpoint in four engines, in one process, on the same batch:
// onnxruntime-node (CPU provider, 1 and 2 intra-op threads) and onnxruntime-web's WASM backend in
// Node — both running the graph `blankglm export-onnx` writes — and blankglm's own WASM backend
// running GlmModel.forward. A random GLM-Base-sized model (110M parameters) by default: this also
// checks that a model of that size exports, loads and agrees across engines (logits NMSE), and
// against the reference backend on a short batch.
//   node benchmarks/src/onnx-forward.mjs [--preset glm-base] [--tokens 128] [--reps 3] [--no-ref]
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createReferenceBackend } from '@blankglm/backend-ref';
import { getPreset, GlmModel, initParameters, parameterCount } from '@blankglm/model-spec';
import { exportGlmToOnnx, OnnxGlm, scoreFromLogits } from '@blankglm/onnx';
import { Rng } from '@blankglm/tensor';

const argv = process.argv.slice(2);
const arg = (name, fallback) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : fallback;
};
const presetName = arg('preset', 'glm-base');
const L = Number(arg('tokens', 128));
const reps = Number(arg('reps', 3));
const checkRef = !argv.includes('--no-ref');

const config = getPreset(presetName);
const work = mkdtempSync(join(tmpdir(), 'blankglm-onnx-bench-'));
const mb = (n) => (n / 1e6).toFixed(0) + ' MB';
const log = (s) => console.log(s);

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/** Runs `fn` once to warm up, then `reps` times; returns the median seconds. */
async function time(fn) {
  await fn();
  const times = [];
  for (let r = 0; r < reps; r++) {
    const t0 = performance.now();
    await fn();
    times.push((performance.now() - t0) / 1000);
  }
  return median(times);
}

/** One row of L tokens: Part A = first half, Part B = the rest as one span (GLM's layout), targets everywhere. */
function makeBatch(length, seed, rows = 1) {
  const rng = new Rng(seed);
  const T = rows * length;
  const sep = Int32Array.from({ length: rows }, (_, b) => Math.max(1, Math.floor(length / (2 + b))));
  const positionIds = new Int32Array(T);
  const blockPositionIds = new Int32Array(T);
  for (let b = 0; b < rows; b++) {
    for (let i = 0; i < length; i++) {
      positionIds[b * length + i] = i < sep[b] ? i : sep[b] - 1;
      blockPositionIds[b * length + i] = i < sep[b] ? 0 : i - sep[b] + 1;
    }
  }
  return {
    batchSize: rows, seqLength: length, numSegments: 1, sep, positionIds, blockPositionIds,
    inputIds: Int32Array.from({ length: T }, () => rng.int(config.vocab_size)),
    targetIds: Int32Array.from({ length: T }, () => rng.int(config.vocab_size)),
    lossMask: new Uint8Array(T).fill(1),
  };
}

function nmse(got, want) {
  let num = 0;
  let den = 0;
  for (let i = 0; i < want.length; i++) {
    num += (got[i] - want[i]) ** 2;
    den += want[i] ** 2;
  }
  return num / den;
}

log(`GLM forward: ${presetName} (${(parameterCount(config) / 1e6).toFixed(1)}M parameters, random weights), batch 1 × ${L} tokens, median of ${reps}`);
log(`machine: ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, Node ${process.version}; timings are wall clock (noisy on a shared machine)`);

let t0 = performance.now();
const stateDict = initParameters(config, new Rng(42));
log(`init: ${((performance.now() - t0) / 1000).toFixed(1)} s`);
const onnxPath = join(work, `${presetName}.onnx`);
t0 = performance.now();
const written = exportGlmToOnnx(config, stateDict, onnxPath);
log(`export: ${mb(statSync(onnxPath).size)} .onnx (${written.initializers} initializers, ${written.dataPath ? 'external data' : 'inline'}) in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

const batch = makeBatch(L, 7);
const results = [];
const logitsBy = {};

// ---- onnxruntime-node, CPU provider
const ortNode = await import('onnxruntime-node');
for (const threads of [1, 2]) {
  t0 = performance.now();
  const glm = await OnnxGlm.load(ortNode, onnxPath, { threads });
  const loadS = (performance.now() - t0) / 1000;
  let logits;
  const s = await time(async () => (logits = await glm.logits(batch)));
  logitsBy[`ort-node-${threads}`] = logits;
  results.push({ engine: `onnxruntime-node cpu, ${threads} thread${threads > 1 ? 's' : ''}`, key: `ort_node_${threads}t`, seconds: s, load: loadS });
  await glm.release();
}

// ---- onnxruntime-web, WASM backend, in Node (reads the model from bytes). Its thread count is
// fixed when the WASM module first initialises, so one setting per process: 1 thread.
try {
  const ortWeb = await import('onnxruntime-web');
  ortWeb.env.wasm.numThreads = 1;
  t0 = performance.now();
  const glm = await OnnxGlm.load(ortWeb, onnxPath, { bytes: readFileSync(onnxPath), executionProviders: ['wasm'] });
  const loadS = (performance.now() - t0) / 1000;
  let logits;
  const s = await time(async () => (logits = await glm.logits(batch)));
  logitsBy['ort-web-1'] = logits;
  results.push({ engine: 'onnxruntime-web wasm (SIMD), 1 thread', key: 'ort_web_1t', seconds: s, load: loadS });
  await glm.release();
} catch (e) {
  results.push({ engine: 'onnxruntime-web wasm', key: 'ort_web_1t', pending: `failed: ${e.message.split('\n')[0]}` });
}

// ---- blankglm's WASM backend (GlmModel.forward: loss at every position = the same logits work)
let ourLogProbs = null;
try {
  const { backend: wasm } = await import('@blankglm/backend-wasm');
  const probe = await wasm.probe();
  if (!probe.available) throw new Error(probe.detail);
  for (const threads of [1, 2]) {
    const be = await wasm.create({ threads });
    const model = GlmModel.create(be, config, { stateDict });
    try {
      let result;
      const s = await time(async () => (result = model.forward(batch)));
      ourLogProbs = result.targets.logProb;
      results.push({ engine: `blankglm wasm (${probe.detail.split(' on ')[0].replace('WebAssembly ', '')}), ${threads} thread${threads > 1 ? 's' : ''}`, key: `blankglm_wasm_${threads}t`, seconds: s });
    } finally {
      model.dispose();
      be.dispose?.();
    }
  }
} catch (e) {
  results.push({ engine: 'blankglm wasm', key: 'blankglm_wasm', pending: `not measured: ${e.message.split('\n')[0]}` });
}

// ---- agreement
log('\nagreement (logits NMSE; conformance bound 5e-4):');
const base = logitsBy['ort-node-1'];
for (const [k, v] of Object.entries(logitsBy)) if (k !== 'ort-node-1') log(`  ${k} vs ort-node-1: ${nmse(v, base).toExponential(2)}`);
if (ourLogProbs) {
  const ortScores = scoreFromLogits(base, config.vocab_size, batch).targets.logProb;
  log(`  blankglm wasm vs ort-node-1 (log p of ${L} targets): ${nmse(ourLogProbs, ortScores).toExponential(2)}`);
}
let refNmse = null;
if (checkRef) {
  // The reference backend is scalar TypeScript: a short 2 × 8 batch keeps this to seconds.
  const small = makeBatch(8, 9, 2);
  const model = GlmModel.create(createReferenceBackend(), config, { stateDict });
  const at = Array.from({ length: 16 }, (_, o) => ({ row: Math.floor(o / 8), position: o % 8 }));
  t0 = performance.now();
  const ref = model.forward(small, { logitsAt: at }).logits.values;
  model.dispose();
  const glm = await OnnxGlm.load(ortNode, onnxPath, { threads: 2 });
  refNmse = nmse(await glm.logits(small), ref);
  await glm.release();
  log(`  ort-node vs reference backend (2 × 8 tokens, ${((performance.now() - t0) / 1000).toFixed(1)} s): ${refNmse.toExponential(2)}`);
}

// ---- table
const ref1 = results.find((r) => r.key === 'ort_node_1t');
const ours = results.find((r) => r.key === 'blankglm_wasm_2t' && r.seconds);
log(`\n${'engine'.padEnd(56)} ${'ms/forward'.padStart(11)} ${'tokens/s'.padStart(9)} ${'vs ort-node 1t'.padStart(15)} ${'vs blankglm wasm 2t'.padStart(20)}`);
for (const r of results) {
  if (r.pending) {
    log(`${r.engine.padEnd(56)} ${r.pending}`);
    continue;
  }
  r.tokensPerSecond = L / r.seconds;
  const vsOrt = (ref1.seconds / r.seconds).toFixed(2) + '×';
  const vsOurs = ours ? (ours.seconds / r.seconds).toFixed(2) + '×' : 'n/a';
  log(`${r.engine.padEnd(56)} ${(r.seconds * 1000).toFixed(0).padStart(11)} ${r.tokensPerSecond.toFixed(0).padStart(9)} ${vsOrt.padStart(15)} ${vsOurs.padStart(20)}`);
}
rmSync(work, { recursive: true, force: true });
const summary = { preset: presetName, tokens: L };
for (const r of results) summary[r.key] = r.pending ? r.pending : Math.round(r.tokensPerSecond);
if (refNmse !== null) summary.ref_nmse = Number(refNmse.toExponential(2));
console.log(JSON.stringify(summary));
