#!/usr/bin/env node
// Prints the short table that ends scripts/device-check.sh, from the JSON files the stages wrote
// under $OUT (any of them may be missing: a stage that failed or ran out of time). No imports
// beyond node: so it runs from the plain working tree.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
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
const core = read('gpu-check-quick-train-determinism-tf32-ltgelu-builtin.json');
const full = read('gpu-check-full.json');
const bench = read('train-bench.json');
const eager = read('hf-eager/hf_peer.json');
const compiled = read('hf-compile/hf_peer.json');
const lines = [];
const row = (...cells) => lines.push(cells.map((c, i) => String(c).padEnd(i === 0 ? 52 : 18)).join(' '));

lines.push(`card: ${bench?.card?.name ?? core?.device?.name ?? eager?.card ?? 'unknown'}; torch ${eager?.torch ?? '?'}, transformers ${eager?.transformers ?? '?'}; blankglm ${bench ? (bench.tf32 ? 'f32 storage, TF32 matmuls' : 'f32') : '?'}`);
lines.push('');
row('check', 'result');
for (const r of [...(core?.results ?? []), ...(full?.results ?? [])]) row(r.stage.slice(0, 52), `${r.ok ? 'PASS' : 'FAIL'} ${r.summary.split('\n')[0].slice(0, 90)}`);
if (!core) row('GPU checks', 'no result (see gpu-check.log)');
else if (core.probe && !core.probe.available) row('GPU probe', `NOT available: ${core.probe.detail.slice(0, 110)}`);
else if (core.createError) row('creating the CUDA backend', `${core.createError.code}: ${String(core.createError.message).slice(0, 110)}`);
if (!full) row('conformance full', 'no result (see conformance-full.log)');
lines.push('');
const tps = (x) => (x ? `${Math.round(x.tokensPerSecond).toLocaleString('en-US')}` : '—');
const find = (list, model, mode) => (list?.runs ?? []).find((r) => r.model === model && (!mode || r.mode === mode));
row('training tokens/s (seq 512)', 'blankglm (cuda)', 'HF eager', 'HF compile', 'ratio vs eager', 'MFU (bf16 peak)');
for (const [glm, bert] of [['glm-base', 'bert-base'], ['glm-large', 'bert-large']]) {
  const g = (bench?.train ?? []).find((r) => r.model === glm);
  const e = find(eager, bert, 'eager');
  const c = find(compiled, bert, 'compile');
  row(`${glm} b${g?.batch ?? '?'} vs ${bert} b${e?.batch ?? '?'}`, tps(g), tps(e), tps(c), g && e ? `${(g.tokensPerSecond / e.tokensPerSecond).toFixed(2)}x` : '—', g?.mfuVsBf16Peak !== undefined ? `${(100 * g.mfuVsBf16Peak).toFixed(1)}%` : '—');
}
if (bench?.inference) row('blank filling, glm-base, KV cache (tokens/s)', bench.inference.tokensPerSecond.toFixed(1));
for (const e of [...(bench?.errors ?? []), ...(eager?.errors ?? []), ...(compiled?.errors ?? [])]) lines.push(`note: ${String(e).split('\n')[0].slice(0, 160)}`);
const text = lines.join('\n');
writeFileSync(join(out, 'summary.txt'), `${text}\n`);
console.log(text);
