// `blankglm pretrain` in-process and as a real process: a micro GLM (via --config) on a slice of
// an embedded book, on the reference backend. Spawned runs use apps/cli/dist: build first
// (pnpm turbo run build --filter=@blankglm/cli...).
import { describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PassThrough, Writable } from 'node:stream';
import { runCli } from '../src/index.js';
import { microWorkspace as workspace, trainLosses } from './micro-run.js';

const MAIN = join(dirname(fileURLToPath(import.meta.url)), '..', 'dist', 'main.js');

class Capture extends Writable {
  text = '';
  override _write(chunk: Buffer, _enc: string, done: () => void): void {
    this.text += chunk.toString();
    done();
  }
}

async function run(argv: string[], cwd: string): Promise<{ code: number; stdout: string; stderr: string }> {
  const stdout = new Capture();
  const stderr = new Capture();
  const code = await runCli(argv, { stdout, stderr, stdin: new PassThrough(), cwd, isTTY: false });
  return { code, stdout: stdout.text, stderr: stderr.text };
}

function waitFor(predicate: () => boolean, timeoutMs: number): Promise<void> {
  return new Promise((res, rej) => {
    const started = Date.now();
    const tick = (): void => {
      if (predicate()) res();
      else if (Date.now() - started > timeoutMs) rej(new Error('timed out waiting'));
      else setTimeout(tick, 25);
    };
    tick();
  });
}

describe('blankglm pretrain', () => {
  it('documents every flag in --help', async () => {
    const r = await run(['pretrain', '--help'], tmpdir());
    expect(r.code).toBe(0);
    for (const flag of ['--config', '--preset', '--data', '--backend', '--steps', '--batch-size', '--seq-len', '--lr', '--seed', '--out', '--resume', '--json', '--keep', '--objective', '--accumulation', '--warmup', '--decay-style', '--precision']) {
      expect(r.stdout).toContain(flag);
    }
  });

  it('trains from a config file and flags, printing one JSON object per step, and writes the run folder', async () => {
    const cwd = workspace();
    const r = await run(['pretrain', '--config', 'micro.json', '--data', 'corpus.txt', '--out', 'run', '--backend', 'ref', '--steps', '4', '--eval-every', '2', '--json'], cwd);
    expect(r.stderr).toMatch(/preparing corpus\.txt \(1 file\(s\)\)/);
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, number>);
    const steps = lines.filter((l) => 'loss' in l);
    expect(steps.map((l) => l.step)).toEqual([1, 2, 3, 4]);
    for (const s of steps) expect(Number.isFinite(s.loss)).toBe(true);
    expect(lines.filter((l) => 'evalLoss' in l).map((l) => l.step)).toEqual([0, 2, 4]);
    for (const f of ['run-config.json', 'metrics.jsonl', 'loss-curve.svg', 'checkpoints/step-00000004/model.safetensors', 'data/manifest.json']) {
      expect(existsSync(join(cwd, 'run', f)), f).toBe(true);
    }
    const resolved = JSON.parse(readFileSync(join(cwd, 'run', 'run-config.json'), 'utf8'));
    expect(resolved).toMatchObject({ steps: 4, batchSize: 2, seqLength: 32, objective: 'mixture', backend: 'ref', evalEvery: 2 });
    const again = await run(['pretrain', '--config', 'micro.json', '--data', 'corpus.txt', '--out', 'run', '--backend', 'ref', '--steps', '4', '--resume', 'auto'], cwd);
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(/nothing to do: the run is already at step 4 \(--steps 4\); raise --steps/);
  });

  it('a run killed (SIGKILL) mid-way and resumed with --resume auto ends bit-identical to an uninterrupted run', async () => {
    const cwd = workspace();
    const args = ['pretrain', '--config', 'micro.json', '--data', 'corpus.txt', '--backend', 'ref', '--steps', '8', '--checkpoint-every', '2', '--eval-every', '4'];
    const whole = await run([...args, '--out', 'whole'], cwd);
    expect(whole.code).toBe(0);

    // Prepare the data first, so the killed process spends its time training.
    expect((await run([...args, '--out', 'killed', '--steps', '1', '--checkpoint-every', '1'], cwd)).code).toBe(0);
    const child = spawn(process.execPath, [MAIN, ...args, '--out', 'killed', '--resume', 'auto'], { cwd, stdio: 'ignore' });
    const exited = new Promise<number | null>((res) => child.on('exit', (code) => res(code)));
    await waitFor(() => existsSync(join(cwd, 'killed', 'checkpoints', 'step-00000004')), 60_000);
    child.kill('SIGKILL');
    await exited;
    const resumed = await run([...args, '--out', 'killed', '--resume', 'auto'], cwd);
    expect(resumed.code).toBe(0);
    expect(resumed.stdout).toMatch(/resuming from .*step-0000000[4-8] at step [4-8]|nothing to do/);

    const la = trainLosses(join(cwd, 'whole'));
    const lb = trainLosses(join(cwd, 'killed'));
    expect([...lb.keys()]).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    for (const [step, loss] of la) expect(lb.get(step), `step ${step}`).toBe(loss);
    const weights = (d: string): Buffer => readFileSync(join(cwd, d, 'checkpoints', 'step-00000008', 'model.safetensors'));
    expect(weights('killed').equals(weights('whole'))).toBe(true);
  });

  it('Ctrl-C (SIGINT) finishes the step, saves a checkpoint and exits with 130', async () => {
    const cwd = workspace();
    const args = ['pretrain', '--config', 'micro.json', '--data', 'corpus.txt', '--backend', 'ref', '--out', 'run', '--eval-every', '0'];
    expect((await run([...args, '--steps', '1'], cwd)).code).toBe(0);
    const child = spawn(process.execPath, [MAIN, ...args, '--steps', '100000', '--checkpoint-every', '100000', '--resume', 'auto', '--json'], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((res) => child.on('exit', (code) => res(code)));
    await waitFor(() => /"step":3,/.test(stdout), 60_000);
    child.kill('SIGINT');
    const code = await exited;
    expect(code).toBe(130);
    const m = /stopped at step (\d+); checkpoint (\S+); continue with --resume auto/.exec(stderr);
    expect(m, stderr).not.toBeNull();
    expect(m![2]).toContain(`step-${m![1]!.padStart(8, '0')}`);
    expect(existsSync(join(m![2]!, 'training-state.json'))).toBe(true);
  });

  it('refuses bad input with the fix', async () => {
    const cwd = workspace();
    const base = ['pretrain', '--config', 'micro.json', '--backend', 'ref', '--out', 'run', '--steps', '1', '--eval-every', '0'];
    const missing = await run([...base, '--data', 'no-such-corpus'], cwd);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/--data no-such-corpus: no such file or folder; give a corpus .* or omit --data for the embedded corpus/);
    const long = await run([...base, '--data', 'corpus.txt', '--seq-len', '100'], cwd);
    expect(long.code).toBe(1);
    expect(long.stderr).toMatch(/seqLength 100 is past the position table of glm-tiny \(max_sequence_length 64\); use --seq-len 64 or less/);
    writeFileSync(join(cwd, 'small.txt'), 'Call me Ishmael. Some years ago, never mind how long precisely.\n');
    const small = await run([...base, '--data', 'small.txt', '--out', 'small'], cwd);
    expect(small.code).toBe(1);
    expect(small.stderr).toMatch(/smaller than one batch: \d+ training tokens \(1 documents\), one batch of 2 × 32 needs 64; give a larger corpus, or lower --batch-size \/ --seq-len/);
    // a real glm-tiny (no micro overrides), then the same run folder with glm-small
    writeFileSync(join(cwd, 'plain.json'), JSON.stringify({ batchSize: 2, seqLength: 32, validFraction: 0.05 }));
    const plain = ['pretrain', '--config', 'plain.json', '--backend', 'ref', '--out', 'plain', '--eval-every', '0', '--data', 'corpus.txt'];
    expect((await run([...plain, '--steps', '1'], cwd)).code).toBe(0);
    const other = await run([...plain, '--preset', 'glm-small', '--steps', '2', '--resume', 'auto'], cwd);
    expect(other.code).toBe(1);
    expect(other.stderr).toMatch(/cannot resume from .*step-00000001: it holds a model of glm-tiny, this run asks for glm-small \(num_layers 2 \(checkpoint\) vs 4 \(this run\).*pass --preset glm-tiny to continue it, or a fresh --out/);
    writeFileSync(join(cwd, 'bad.json'), JSON.stringify({ stpes: 3 }));
    const typo = await run(['pretrain', '--config', 'bad.json', '--out', 'x'], cwd);
    expect(typo.code).toBe(2);
    expect(typo.stderr).toMatch(/--config .*bad\.json: unknown field 'stpes'/);
    const noOut = await run(['pretrain'], cwd);
    expect(noOut.stderr).toMatch(/missing --out <dir>/);
    const badPrecision = await run([...base, '--data', 'corpus.txt', '--precision', 'fp16'], cwd);
    expect(badPrecision.code).toBe(2);
    expect(badPrecision.stderr).toMatch(/precision must be auto, f32 or bf16, got 'fp16'/);
    const wasmBf16 = await run([...base, '--data', 'corpus.txt', '--out', 'wasm', '--backend', 'wasm', '--precision', 'bf16'], cwd);
    expect(wasmBf16.code).toBe(1);
    expect(wasmBf16.stderr).toMatch(/precision bf16 needs a backend with bf16 tensors .* the wasm backend computes in f32: use precision f32 or auto/);
  });

  it('--precision bf16 trains with bf16 products and says so', async () => {
    const cwd = workspace();
    const r = await run(['pretrain', '--config', 'micro.json', '--data', 'corpus.txt', '--out', 'run', '--backend', 'ref', '--steps', '2', '--eval-every', '0', '--precision', 'bf16'], cwd);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/on the ref backend \(bf16 products, f32 master weights\)/);
    expect(JSON.parse(readFileSync(join(cwd, 'run', 'run-config.json'), 'utf8')).precision).toBe('bf16');
  });
});
