#!/usr/bin/env node
// Prints the short table that ends scripts/device-check.sh, from the JSON files the stages wrote
// under $OUT (any of them may be missing: a stage that failed or ran out of time). No imports
// beyond node: so it runs from the plain working tree.
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const out = process.argv[2] || process.env.OUT || '.';
const read = (f) => {
  const p = join(out, f);
  if (!existsSync(p)) return null;
  try {
    return JSON.parse(readFileSync(p, 'utf8'));
  } catch {
    return null;
  }
};
// The core checks: whichever gpu-check-*.json other than the full tier's the run wrote.
const coreFile = existsSync(out) ? readdirSync(out).find((f) => /^gpu-check-.*\.json$/.test(f) && f !== 'gpu-check-full.json') : undefined;
const core = coreFile ? read(coreFile) : null;
const full = read('gpu-check-full.json');
const bench = read('train-bench.json');
const attention = read('attention-bench.json');
const eager = read('hf-eager/hf_peer.json');
const compiled = read('hf-compile/hf_peer.json');
const lines = [];
const row = (...cells) => lines.push(cells.map((c, i) => String(c).padEnd(i === 0 ? 52 : 18)).join(' '));

lines.push(`card: ${bench?.card?.name ?? core?.device?.name ?? eager?.card ?? 'unknown'}; torch ${eager?.torch ?? '?'}, transformers ${eager?.transformers ?? '?'}; blankglm bf16 = bf16 products + tensor-core attention, f32 = f32 storage + ${bench?.tf32 ? 'TF32' : 'f32'} products`);
lines.push('');
row('check', 'result');
for (const r of [...(core?.results ?? []), ...(full?.results ?? [])]) row(r.stage.slice(0, 52), `${r.ok ? 'PASS' : 'FAIL'} ${r.summary.split('\n')[0].slice(0, 90)}`);
if (!core) row('GPU checks', 'no result (see gpu-check.log)');
else if (core.probe && !core.probe.available) row('GPU probe', `NOT available: ${core.probe.detail.slice(0, 110)}`);
else if (core.createError) row('creating the CUDA backend', `${core.createError.code}: ${String(core.createError.message).slice(0, 110)}`);
if (!full) row('conformance full', 'not run (or no result: see conformance-full.log)');
lines.push('');
const tps = (x) => (x ? `${Math.round(x.tokensPerSecond).toLocaleString('en-US')}` : '—');
const find = (list, model, mode) => (list?.runs ?? []).find((r) => r.model === model && (!mode || r.mode === mode));
row('training tokens/s (seq 512)', 'blankglm (cuda)', 'HF eager', 'HF compile', 'ratio vs eager', 'MFU (bf16 peak)');
for (const [glm, bert, precision] of [['glm-base', 'bert-base', 'bf16'], ['glm-base', 'bert-base', 'f32'], ['glm-large', 'bert-large', 'bf16'], ['glm-large', 'bert-large', 'f32']]) {
  const found = (bench?.train ?? []).filter((r) => r.model === glm && (r.precision ?? 'f32') === precision);
  if (!found.length && precision === 'f32') continue;
  const e = find(eager, bert, 'eager');
  const c = find(compiled, bert, 'compile');
  for (const g of found.length ? found : [undefined]) {
    const variant = (g?.variant && g.variant !== 'default' ? ` [${g.variant}]` : '') + (g?.lossesFinite === false ? ' LOSS NOT FINITE' : '');
    row(`${glm} ${precision}${variant} b${g?.batch ?? '?'} vs ${bert} b${e?.batch ?? '?'}`, tps(g), tps(e), tps(c), g && e ? `${(g.tokensPerSecond / e.tokensPerSecond).toFixed(2)}x` : '—', g?.mfuVsBf16Peak !== undefined ? `${(100 * g.mfuVsBf16Peak).toFixed(1)}%` : '—');
  }
}
// Issue 6's targets, from the fastest variant a change could ship (not zero-fill, the code path
// before 'uninitialized' outputs; finite losses; ln-fused joins the bench only after its checks).
lines.push('');
const checksOk = core?.results?.length ? core.results.every((r) => r.ok) : false;
lines.push(`GPU checks: ${core?.results?.length ? `${core.results.filter((r) => r.ok).length}/${core.results.length} passed` : 'no result'}`);
for (const [glm, bert, target] of [['glm-base', 'bert-base', 1.5], ['glm-large', 'bert-large', 1.3]]) {
  const e = find(eager, bert, 'eager');
  const best = (bench?.train ?? [])
    .filter((r) => r.model === glm && r.precision === 'bf16' && r.variant !== 'zero-fill' && r.lossesFinite !== false)
    .sort((a, b) => b.tokensPerSecond - a.tokensPerSecond)[0];
  if (!best || !e) {
    lines.push(`target ${glm} >= ${target.toFixed(2)}x ${bert} eager: NOT MEASURED (${!best ? 'no blankglm run' : 'no HF eager run'})`);
    continue;
  }
  const ratio = best.tokensPerSecond / e.tokensPerSecond;
  const verdict = ratio >= target ? (checksOk ? 'MET' : `MET, but the GPU checks ${core?.results?.length ? 'did not all pass' : 'gave no result'}`) : 'NOT MET';
  lines.push(`target ${glm} >= ${target.toFixed(2)}x ${bert} eager: ${ratio.toFixed(3)}x with variant ${best.variant ?? 'default'} (${tps(best)} vs ${tps(e)} tokens/s): ${verdict}`);
}
for (const g of bench?.train ?? []) {
  if (!g.profile) continue;
  lines.push('');
  lines.push(`per-op GPU time, ${g.model} ${g.precision}${g.variant ? ` ${g.variant}` : ''} (one profiled step: ${g.profile.gpuMs.toFixed(1)} ms in ops, ${g.profile.wallMs.toFixed(1)} ms wall)`);
  for (const o of g.profile.ops.slice(0, 12)) lines.push(`  ${o.ms.toFixed(2).padStart(9)} ms ${String(o.calls).padStart(5)}x  ${o.op}`);
}
lines.push('');
for (const inf of bench?.inferenceVariants?.length ? bench.inferenceVariants : bench?.inference ? [bench.inference] : []) {
  const label = `blank filling, glm-base, KV cache${inf.decodeAttention ? ` (${inf.decodeAttention})` : ''}, tokens/s`;
  row(label, inf.tokensPerSecond.toFixed(1), inf.decodeTokensPerSecond !== undefined ? `decode ${inf.decodeTokensPerSecond.toFixed(1)}` : '');
}
for (const a of attention?.shapes ?? []) {
  row(`attention ${a.shape} (${a.heads} heads), ms per call`, `fwd ${a.forwardMs.toFixed(3)}`, `bwd ${a.backwardMs.toFixed(3)}`, `bwd hashing ${a.backwardHashingMs.toFixed(3)}`, `${a.forwardTflops.toFixed(0)}/${a.backwardTflops.toFixed(0)} TFLOP/s`);
}
for (const e of [...(bench?.errors ?? []), ...(eager?.errors ?? []), ...(compiled?.errors ?? [])]) lines.push(`note: ${String(e).split('\n')[0].slice(0, 160)}`);
const text = lines.join('\n');
writeFileSync(join(out, 'summary.txt'), `${text}\n`);
console.log(text);
