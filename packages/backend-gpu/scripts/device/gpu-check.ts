// The GPU checks as one plain node program (bundled by scripts/prepare-device.sh into
// .carry/device/gpu-check.mjs, so the GPU machine needs no node_modules): device info, the
// conformance suite (quick tier, then full tier), a GLM-tiny run tracking the reference, the
// determinism check, and informational runs with TF32 / cuBLASLt's GELU epilogue / the builtin
// matmul. Results go to $OUT/gpu-check-<stages>.json (rewritten after every stage) and stdout.
//
// Stages 'bf16' (the quick tier with bf16 tensors: bf16 products and tensor-core attention) and
// 'bf16scalar' (attention ops in bf16 through the scalar kernels, to tell a tensor-core attention
// failure from a bf16 one) check the mixed-precision path.
//
// Stage 'trainbf16' tracks the reference with the model in bf16; 'resume' checks a checkpoint resume (f32 and bf16).
//
// Buffers the model allocates 'uninitialized' start as NaN bytes here (--uninitialized nan, the
// default of this script), so a kernel that reads one before writing it fails the training checks.
//
// Stage 'parity' compares logits, loss and every gradient with model-spec's PyTorch fixtures
// (read from packages/model-spec/fixtures under the working directory, or BLANKGLM_MODEL_FIXTURES).
//
// Usage: node gpu-check.mjs [--stages quick,parity,generation,train,trainbf16,resume,determinism,bf16,bf16scalar,tf32,ltgelu,builtin,full,fullnorm]
//          [--uninitialized nan|none|zeros] [--out DIR]
// (default: quick,parity,generation,train,trainbf16,resume,determinism,bf16,bf16scalar; the results file is gpu-check-<stages>.json)
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { formatReport, runConformance, type ConformanceReport } from '@blankglm/conformance';
import { createGpuBackend, probeGpu, type GpuBackend, type UninitializedFill } from '../../src/index.js';
import { checkParity } from '../../../model-spec/test/parity-helpers.js';
import { checkDeterminism, checkGeneration, checkResume, trackReferenceTraining } from '../../test/gpu-checks.js';

const argv = process.argv.slice(2);
const outDir = argv.includes('--out') ? argv[argv.indexOf('--out') + 1]! : process.env.OUT || '.';
const stages = new Set((argv.includes('--stages') ? argv[argv.indexOf('--stages') + 1]! : 'quick,parity,generation,train,trainbf16,resume,determinism,bf16,bf16scalar').split(','));
// The bundle runs from the repo root: the parity fixtures are in the working tree there.
process.env.BLANKGLM_MODEL_FIXTURES ??= join(process.cwd(), 'packages', 'model-spec', 'fixtures');
const tag = [...stages].join('-');
const uninitialized = (argv.includes('--uninitialized') ? argv[argv.indexOf('--uninitialized') + 1]! : 'nan') as UninitializedFill;
const create = (): GpuBackend => createGpuBackend({ uninitialized });
mkdirSync(outDir, { recursive: true });

interface StageResult {
  stage: string;
  ok: boolean;
  seconds: number;
  summary: string;
}
const results: StageResult[] = [];
const extra: Record<string, unknown> = {};

function save(): void {
  const file = join(outDir, `gpu-check-${tag}.json`);
  writeFileSync(`${file}.tmp`, JSON.stringify({ results, ...extra }, null, 2));
  renameSync(`${file}.tmp`, file);
}

function stage(name: string, body: () => { ok: boolean; summary: string }): void {
  const t0 = performance.now();
  console.log(`\n=== ${name} ===`);
  let r: { ok: boolean; summary: string };
  try {
    r = body();
  } catch (e) {
    const err = e as Error & { code?: string };
    r = { ok: false, summary: `threw ${err.code ? `${err.code}: ` : ''}${err.stack ?? err.message}` };
  }
  const seconds = (performance.now() - t0) / 1000;
  results.push({ stage: name, ok: r.ok, seconds, summary: r.summary });
  console.log(`--- ${name}: ${r.ok ? 'PASS' : 'FAIL'} in ${seconds.toFixed(1)} s — ${r.summary.split('\n')[0]}`);
  save();
}

function conformance(gpu: GpuBackend, tier: 'quick' | 'full', label: string, opts: { ops?: readonly string[]; dtype?: 'f32' | 'bf16' } = {}): { ok: boolean; summary: string } {
  let done = 0;
  const t0 = performance.now();
  const report: ConformanceReport = runConformance(gpu, {
    tier,
    dtype: opts.dtype ?? 'f32',
    ...(opts.ops ? { ops: opts.ops as never } : {}),
    onCase: (r) => {
      done++;
      if (r.status !== 'pass') console.log(`  ${r.status.toUpperCase()} ${r.name}\n    ${r.details.slice(0, 6).join('\n    ')}`);
      else if (done % 50 === 0) console.log(`  ${done} cases, ${((performance.now() - t0) / 1000).toFixed(0)} s`);
    },
  });
  const text = formatReport(report, { details: true });
  console.log(text);
  writeFileSync(join(outDir, `conformance-${label}.txt`), text);
  extra[`conformance-${label}`] = report.totals;
  const t = report.totals;
  return { ok: report.ok && t.unsupported === 0, summary: `${t.pass} pass, ${t.fail} fail, ${t.unsupported} unsupported of ${report.cases.length} cases` };
}

const probe = await probeGpu();
console.log(`probe: ${probe.available ? 'available' : 'NOT available'} — ${probe.detail}`);
extra.probe = probe;
save();
if (!probe.available) process.exit(2);

let gpu: GpuBackend;
try {
  gpu = create();
} catch (e) {
  const err = e as Error & { code?: string };
  console.log(`createGpuBackend failed: ${err.code ?? ''} ${err.message}`);
  extra.createError = { code: err.code, message: err.message };
  save();
  process.exit(2);
}
console.log('device:', JSON.stringify(gpu.info));
extra.device = gpu.info;
save();

if (stages.has('quick')) stage('conformance quick (f32, exact f32 matmuls)', () => conformance(gpu, 'quick', 'quick'));
if (stages.has('parity')) stage('PyTorch parity (model-spec fixtures: logits, loss, every gradient; f32)', () => {
  const e = checkParity(gpu);
  return { ok: true, summary: `relative errors: logits ${e.logits.toExponential(2)}, loss ${e.loss.toExponential(2)}, worst of ${e.gradients} gradients ${e.worstGradient.toExponential(2)} (limits 1e-5, 1e-6, 1e-5)` };
});
if (stages.has('generation')) stage('blank filling with the key/value cache matches the reference', () => {
  const r = checkGeneration(gpu);
  return { ok: r.ok, summary: r.detail };
});
if (stages.has('train')) stage('GLM-tiny training tracks the reference', () => {
  const r = trackReferenceTraining(gpu, { log: (s) => console.log(`  ${s}`) });
  extra.tracking = r;
  return { ok: r.ok, summary: r.detail };
});
if (stages.has('trainbf16')) stage('GLM-tiny training in bf16 tracks the f32 reference', () => {
  const r = trackReferenceTraining(gpu, { precision: 'bf16', log: (s) => console.log(`  ${s}`) });
  extra.trackingBf16 = r;
  return { ok: r.ok, summary: r.detail };
});
if (stages.has('resume')) stage('resume from a trainer checkpoint', () => {
  const results = (['f32', 'bf16'] as const).map((p) => checkResume(create, p));
  return { ok: results.every((r) => r.ok), summary: results.map((r) => r.detail).join('; ') };
});
if (stages.has('determinism')) stage('determinism', () => {
  const r = checkDeterminism(create);
  return { ok: r.ok, summary: r.detail };
});
if (stages.has('bf16')) stage('conformance quick (bf16 tensors, bf16 products, tensor-core attention)', () => {
  gpu.setOptions({ attention: 'tensor-core' });
  return conformance(gpu, 'quick', 'bf16', { dtype: 'bf16' });
});
if (stages.has('bf16scalar')) stage('attention in bf16 with the scalar kernels (informational)', () => {
  gpu.setOptions({ attention: 'scalar' });
  try {
    return conformance(gpu, 'quick', 'bf16-scalar-attention', { dtype: 'bf16', ops: ['attention', 'attentionBackward'] });
  } finally {
    gpu.setOptions({ attention: 'tensor-core' });
  }
});
if (stages.has('tf32')) stage('matmul ops with TF32 (informational)', () => {
  gpu.setOptions({ tf32: true });
  try {
    return conformance(gpu, 'quick', 'tf32-linear', { ops: ['linear', 'linearBackward', 'logits', 'crossEntropy', 'crossEntropyBackward'] });
  } finally {
    gpu.setOptions({ tf32: false });
  }
});
if (stages.has('ltgelu')) stage('linear with cuBLASLt GELU_AUX_BIAS epilogue (informational)', () => {
  gpu.setOptions({ ltGelu: true });
  try {
    return conformance(gpu, 'quick', 'ltgelu-linear', { ops: ['linear'] });
  } finally {
    gpu.setOptions({ ltGelu: false });
  }
});
if (stages.has('builtin')) stage('matmul ops with the builtin kernel instead of cuBLASLt (informational)', () => {
  gpu.setOptions({ gemm: 'builtin' });
  try {
    return conformance(gpu, 'quick', 'builtin-gemm', { ops: ['linear', 'linearBackward', 'logits', 'crossEntropy', 'crossEntropyBackward'] });
  } finally {
    gpu.setOptions({ gemm: 'cublaslt' });
  }
});
if (stages.has('full')) stage('conformance full (real GLM sizes)', () => conformance(gpu, 'full', 'full'));
if (stages.has('fullnorm')) stage('conformance full, layer norm only', () => conformance(gpu, 'full', 'full-layernorm', { ops: ['layerNorm', 'layerNormBackward'] }));

gpu.dispose();
console.log('\n=== summary ===');
for (const r of results) console.log(`${r.ok ? 'PASS' : 'FAIL'}  ${r.stage} (${r.seconds.toFixed(1)} s): ${r.summary.split('\n')[0]}`);
save();
process.exitCode = results.filter((r) => !r.stage.includes('informational')).every((r) => r.ok) ? 0 : 1;
