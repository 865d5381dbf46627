// The GPU checks' own harness, run here with the reference backend standing in for the GPU: a
// bug in the tracking or determinism code must show up before the one GPU run, not during it.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createReferenceBackend } from '@blankglm/backend-ref';
import { describe, expect, it } from 'vitest';
import { checkDeterminism, trackReferenceTraining } from './gpu-checks.js';

describe('GPU check harness (reference standing in for the GPU)', () => {
  it('training tracking passes against itself, bit for bit', () => {
    const stand = createReferenceBackend();
    const r = trackReferenceTraining(stand, { steps: 4 });
    expect(r.ok, r.detail).toBe(true);
    expect(r.steps.every((s) => s.lossRelDiff === 0 && s.gradNormRelDiff === 0)).toBe(true);
    expect(r.maxParamRelDiff).toBe(0);
    expect(stand.liveBuffers()).toBe(0);
  });

  it('determinism check passes on a deterministic backend', () => {
    const r = checkDeterminism(() => createReferenceBackend());
    expect(r.ok, r.detail).toBe(true);
  });
});

describe('device-check summary (scripts/device/summary.mjs)', () => {
  function summarize(files: Record<string, unknown>): string {
    const dir = mkdtempSync(join(tmpdir(), 'blankglm-summary-'));
    try {
      for (const [name, json] of Object.entries(files)) {
        mkdirSync(dirname(join(dir, name)), { recursive: true });
        writeFileSync(join(dir, name), JSON.stringify(json));
      }
      return execFileSync(process.execPath, [fileURLToPath(new URL('../scripts/device/summary.mjs', import.meta.url)), dir], { encoding: 'utf8' });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  const run = (model: string, variant: string, tokensPerSecond: number, lossesFinite = true) => ({ model, precision: 'bf16', variant, batch: 32, tokensPerSecond, lossesFinite });
  const eager = { runs: [{ model: 'bert-base', mode: 'eager', batch: 32, tokensPerSecond: 300_000 }, { model: 'bert-large', mode: 'eager', batch: 32, tokensPerSecond: 136_000 }] };

  it("judges issue 6's targets by the fastest shippable variant (not zero-fill, finite losses)", () => {
    const text = summarize({
      'gpu-check-quick.json': { results: [{ stage: 'conformance quick', ok: true, summary: '337/337' }] },
      'train-bench.json': {
        train: [
          run('glm-base', 'zero-fill', 460_000), run('glm-base', 'default', 455_000), run('glm-base', 'ln-fused', 470_000, false),
          run('glm-large', 'default', 170_000), run('glm-large', 'ln-fused', 180_000),
        ],
      },
      'hf-eager/hf_peer.json': eager,
    });
    expect(text).toMatch(/GPU checks: 1\/1 passed/);
    expect(text).toMatch(/target glm-base >= 1\.50x bert-base eager: 1\.517x with variant default \(455,000 vs 300,000 tokens\/s\): MET/);
    expect(text).toMatch(/target glm-large >= 1\.30x bert-large eager: 1\.324x with variant ln-fused .*: MET/);
  });

  it('says what was not measured, and a ratio met with failing checks', () => {
    const text = summarize({
      'gpu-check-quick.json': { results: [{ stage: 'conformance quick', ok: false, summary: '336/337' }] },
      'train-bench.json': { train: [run('glm-base', 'default', 480_000)] },
      'hf-eager/hf_peer.json': eager,
    });
    expect(text).toMatch(/glm-base .*: MET, but the GPU checks did not all pass/);
    expect(text).toMatch(/target glm-large >= 1\.30x bert-large eager: NOT MEASURED \(no blankglm run\)/);
    expect(summarize({})).toMatch(/target glm-base .*NOT MEASURED/);
  });
});
