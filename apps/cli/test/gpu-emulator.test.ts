// The CLI on the CUDA backend, run on the CPU emulator of its addon (packages/backend-gpu/build/emu):
// pretraining with a checkpoint resume, blank filling against the reference backend, and running
// out of device memory, as a user meets them. Spawned runs use apps/cli/dist (build first).
import { spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { microWorkspace, trainLosses } from './micro-run.js';

const MAIN = join(dirname(fileURLToPath(import.meta.url)), '..', 'dist', 'main.js');
const EMU = join(dirname(createRequire(import.meta.url).resolve('@blankglm/backend-gpu/package.json')), 'build', 'emu');
const built = existsSync(join(EMU, 'gpu.node')) && existsSync(join(EMU, 'libcublasLt-emu.so'));

function cli(argv: string[], cwd: string, env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((res) => {
    const child = spawn(process.execPath, [MAIN, ...argv], {
      cwd,
      env: { ...process.env, BLANKGLM_GPU_ADDON: join(EMU, 'gpu.node'), BLANKGLM_CUBLASLT: join(EMU, 'libcublasLt-emu.so'), ...env },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c) => (stdout += c));
    child.stderr.on('data', (c) => (stderr += c));
    child.on('close', (code) => res({ code: code ?? -1, stdout, stderr }));
  });
}

const pretrain = ['pretrain', '--config', 'micro.json', '--data', 'corpus.txt', '--backend', 'gpu', '--eval-every', '0'];

describe.runIf(built)('blankglm on the CUDA backend (CPU emulator of the addon)', () => {
  it('pretrains in mixed precision, and a run resumed from its checkpoint continues it exactly', async () => {
    const cwd = microWorkspace('blankglm-cli-gpu-emu-');
    const straight = await cli([...pretrain, '--out', 'a', '--steps', '4', '--checkpoint-every', '2', '--keep', '5'], cwd);
    expect(straight.code, straight.stderr).toBe(0);
    expect(straight.stdout).toMatch(/on the gpu backend \(bf16 products, f32 master weights\)/);
    const resumed = await cli([...pretrain, '--out', 'b', '--steps', '4', '--resume', join('a', 'checkpoints', 'step-00000002')], cwd);
    expect(resumed.code, resumed.stderr).toBe(0);
    const a = trainLosses(join(cwd, 'a')), b = trainLosses(join(cwd, 'b'));
    expect([...b.keys()]).toEqual([3, 4]);
    for (const step of [3, 4]) expect(b.get(step)).toBe(a.get(step));

    // Blank filling with that checkpoint: the same tokens as the reference backend, log-probabilities within f32 rounding.
    const fill = async (backend: string) => {
      const r = await cli(['fill', join('a', 'checkpoints', 'step-00000004'), 'It was a dark and stormy [MASK], and the rain fell.', '--backend', backend, '--min-tokens', '3', '--max-tokens', '3', '--json'], cwd);
      expect(r.code, r.stderr).toBe(0);
      return JSON.parse(r.stdout) as { backend: string; blanks: { tokens: number[]; log_prob: number }[] };
    };
    const gpu = await fill('gpu'), ref = await fill('ref');
    expect(gpu.backend).toBe('gpu');
    expect(gpu.blanks[0]!.tokens).toHaveLength(3);
    expect(gpu.blanks[0]!.tokens).toEqual(ref.blanks[0]!.tokens);
    expect(Math.abs(gpu.blanks[0]!.log_prob - ref.blanks[0]!.log_prob)).toBeLessThan(1e-4 * Math.abs(ref.blanks[0]!.log_prob));
  }, 120_000);

  it('out of device memory: names what needed how much of what was free, and a micro-batch that then trains in the same memory', async () => {
    const cwd = microWorkspace('blankglm-cli-gpu-emu-');
    const memory = { BLANKGLM_EMU_MEMORY: String(68 << 20) };
    const big = await cli([...pretrain, '--out', 'big', '--steps', '1', '--batch-size', '64'], cwd, memory);
    expect(big.code).not.toBe(0);
    const m = /a micro-batch of 64 windows of 32 tokens does not fit in memory \(out of GPU memory: .+ needs [\d.]+ MiB, [\d.]+ MiB free of 68\.0 MiB on blankglm CUDA emulator \(CPU\)\. Use a smaller batch size .*\); (\d+) windows fit: use --batch-size (\d+) --accumulation (\d+) to keep \d+ windows per step\. Training stopped; no checkpoint was written yet/.exec(big.stderr);
    expect(m, big.stderr).not.toBeNull();
    expect(existsSync(join(cwd, 'big', 'checkpoints')) ? readdirSync(join(cwd, 'big', 'checkpoints')) : []).toEqual([]);
    const advised = await cli([...pretrain, '--out', 'advised', '--steps', '1', '--batch-size', m![2]!, '--accumulation', m![3]!], cwd, memory);
    expect(advised.code, advised.stderr).toBe(0);
    expect(trainLosses(join(cwd, 'advised')).size).toBe(1);
  }, 120_000);
});

describe.skipIf(built)('blankglm on the CUDA backend (CPU emulator of the addon)', () => {
  it.skip(`the emulator is not built (${EMU}): see packages/backend-gpu/scripts/build-emu.mjs`, () => {});
});
