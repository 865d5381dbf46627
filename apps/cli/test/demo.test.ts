// `blankglm demo` (the main job), shortened: a few steps on the reference backend, then the
// held-out fills of the untrained and the trained model.
import { describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Writable } from 'node:stream';
import { runCli } from '../src/index.js';

class Capture extends Writable {
  text = '';
  override _write(chunk: Buffer, _enc: string, done: () => void): void {
    this.text += chunk.toString();
    done();
  }
}

describe('blankglm demo', () => {
  it('prepares the embedded books, trains glm-tiny, reports the loss and fills held-out blanks before and after', async () => {
    const cwd = mkdtempSync(join(tmpdir(), 'blankglm-cli-demo-'));
    const stdout = new Capture();
    const stderr = new Capture();
    const argv = ['demo', '--backend', 'ref', '--steps', '3', '--batch-size', '2', '--seq-len', '32', '--fills', '3'];
    const code = await runCli(argv, { stdout, stderr, stdin: new PassThrough(), cwd, isTTY: false });
    expect(stderr.text).toMatch(/preparing the embedded corpus \(17 Gutenberg books\)/);
    expect(code).toBe(0);
    const out = stdout.text;
    expect(out).toMatch(/^backend: ref/);
    expect(out).toMatch(/main job: glm-tiny, 3 steps of 2 × 32 tokens on the ref backend/);
    expect(out).toMatch(/held-out loss 10\.\d+ → \d+\.\d+ \(perplexity \d+ → \d+\)/);
    expect(out.match(/^\d\. .*\[MASK\]/gm)?.length).toBe(3);
    expect(out.match(/^ {3}original: +[a-z]+$/gm)?.length).toBe(3);
    expect(out.match(/^ {3}untrained: .*\(loss \d+\.\d\d, rank [\d,]+; top: \S+ \S+ \S+\)$/gm)?.length).toBe(3);
    expect(out.match(/^ {3}trained: .*\(loss \d+\.\d\d, rank [\d,]+; top: \S+ \S+ \S+\)$/gm)?.length).toBe(3);
    expect(out).toMatch(
      /exact fills: untrained \d\/3, trained \d\/3; mean loss of the original words: untrained \d+\.\d\d, trained \d+\.\d\d nats\/token; median rank of their first token: untrained [\d,.]+, trained [\d,.]+/,
    );
    expect(existsSync(join(cwd, 'runs/demo/run/loss-curve.svg'))).toBe(true);
    expect(existsSync(join(cwd, 'runs/demo/run/checkpoints/step-00000003/model.safetensors'))).toBe(true);

    const help = new Capture();
    await runCli(['demo', '--help'], { stdout: help, stderr: new Capture(), stdin: new PassThrough(), cwd, isTTY: false });
    for (const flag of ['--out', '--backend', '--steps', '--batch-size', '--seq-len', '--lr', '--seed', '--fills']) expect(help.text).toContain(flag);
  });
});
