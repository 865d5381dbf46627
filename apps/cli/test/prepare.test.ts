// `blankglm prepare` and `blankglm demo`, run in-process. The tokenizer workers start from
// packages/data/dist: build first (pnpm turbo run build --filter=@blankglm/cli...).
import { describe, expect, it } from 'vitest';
import { mkdtemp, readFile, readdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Writable } from 'node:stream';
import { openShards } from '@blankglm/data';
import { runCli } from '../src/index.js';
import { Progress } from '../src/progress.js';
import { hasSharedData, sharedData } from '../../../test-support/shared-data.js';

class Capture extends Writable {
  text = '';
  override _write(chunk: Buffer, _enc: string, done: () => void): void {
    this.text += chunk.toString();
    done();
  }
}

async function run(argv: string[], cwd: string, isTTY = false): Promise<{ code: number; stdout: string; stderr: string }> {
  const stdout = new Capture();
  const stderr = new Capture();
  const code = await runCli(argv, { stdout, stderr, stdin: new PassThrough(), cwd, isTTY });
  return { code, stdout: stdout.text, stderr: stderr.text };
}

async function tempDir(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'blankglm-cli-prepare-'));
}

describe.skipIf(!hasSharedData('corpus/gutenberg/shakespeare-caesar.txt'))('blankglm prepare on Gutenberg books', () => {
  it('prepares books into verified shards with a summary, refuses to overwrite without --force', async () => {
    const cwd = await tempDir();
    const books = ['shakespeare-caesar.txt', 'shakespeare-macbeth.txt'].map((b) => sharedData(`corpus/gutenberg/${b}`));
    const r = await run(['prepare', ...books, '--out', 'data', '--encoding', 'auto', '--workers', '2'], cwd);
    expect(r.stderr).toMatch(/tokenizing\s+100%/);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/prepared [\d,]+ documents, [\d,]+ tokens from 2 file\(s\)/);
    expect(r.stdout).toMatch(/tokenizer: bert, 30526 tokens/);
    expect(r.stdout).toMatch(/tokens\/s/);
    const shards = await openShards(join(cwd, 'data'), { verify: true });
    expect(shards.manifest.sources.map((s) => s.encoding)).toEqual(['latin1', 'utf8']);
    expect(shards.tokenCount).toBeGreaterThan(40_000);

    const again = await run(['prepare', ...books, '--out', 'data', '--encoding', 'auto'], cwd);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/already holds prepared data \(manifest\.json\); pass --force/);
    const forced = await run(['prepare', books[1]!, '--out', 'data', '--force', '--split', 'lines', '--tokenizer', 'gpt2'], cwd);
    expect(forced.code).toBe(0);
    expect(forced.stdout).toMatch(/from 1 file\(s\)/);
    expect((await openShards(join(cwd, 'data'))).manifest.tokenizer.family).toBe('gpt2');
  });

  it('names the Latin-1 book, its byte offset and line, and suggests --encoding', async () => {
    const r = await run(['prepare', sharedData('corpus/gutenberg/shakespeare-caesar.txt'), '--out', 'data'], await tempDir());
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/shakespeare-caesar\.txt: not valid UTF-8 at byte \d+ \(line 119, byte 0xe6\).*--encoding latin1/);
  });
});

describe('blankglm prepare: bad input', () => {
  it('reports a malformed JSONL line, a missing field, an empty corpus, a missing path and bad flags', async () => {
    const cwd = await tempDir();
    await writeFile(join(cwd, 'bad.jsonl'), '{"text":"fine"}\n{"text":"fine"\n');
    await writeFile(join(cwd, 'other.jsonl'), '{"body":"x"}\n');
    await writeFile(join(cwd, 'empty.txt'), '\n \n');
    const cases: Array<[string[], RegExp]> = [
      [['prepare', 'bad.jsonl', '--out', 'o'], /bad\.jsonl:2: malformed JSON/],
      [['prepare', 'other.jsonl', '--out', 'o'], /other\.jsonl:1: field 'text' is missing \(fields present: body\)/],
      [['prepare', 'empty.txt', '--out', 'o'], /the corpus is empty/],
      [['prepare', 'nowhere/', '--out', 'o'], /corpus path not found: nowhere\//],
      [['prepare', 'empty.txt'], /missing --out <dir>/],
      [['prepare', 'empty.txt', '--out', 'o', '--split', 'words'], /--split must be paragraphs, lines or file, got 'words'/],
      [['prepare', 'empty.txt', '--out', 'o', '--workers=-1'], /--workers must be a whole number ≥ 0, got -1/],
      [['prepare', '--embedded', 'empty.txt', '--out', 'o'], /either corpus paths or --embedded/],
    ];
    for (const [argv, message] of cases) {
      const r = await run(argv, cwd);
      expect(r.code, argv.join(' ')).not.toBe(0);
      expect(r.stderr, argv.join(' ')).toMatch(message);
    }
    expect((await run(['prepare', 'other.jsonl', '--out', 'o', '--text-field', 'body'], cwd)).code).toBe(0);
    expect(await readdir(join(cwd, 'o'))).toContain('manifest.json');
  });

  it('documents its options in --help', async () => {
    const r = await run(['prepare', '--help'], await tempDir());
    for (const flag of ['--out', '--embedded', '--split', '--text-field', '--encoding', '--workers', '--force', '--tokenizer', '--vocab', '--merges']) expect(r.stdout).toContain(flag);
  });
});

describe('blankglm prepare --embedded', () => {
  it('prepares the embedded books (no KJV Bible, Latin-1 books decoded) and refuses to overwrite without --force', async () => {
    const cwd = await tempDir();
    const first = await run(['prepare', '--embedded', '--out', 'data'], cwd);
    expect(first.stderr).not.toMatch(/Error|at /);
    expect(first.code).toBe(0);
    expect(first.stdout).toMatch(/prepared [\d,]+ documents, [\d,]+ tokens from 17 file\(s\)/);
    const manifest = JSON.parse(await readFile(join(cwd, 'data/manifest.json'), 'utf8'));
    expect(manifest.sources.some((s: { path: string }) => s.path.endsWith('bible-kjv.txt'))).toBe(false);
    expect(manifest.sources.filter((s: { encoding: string }) => s.encoding === 'latin1').length).toBe(2);
    const again = await run(['prepare', '--embedded', '--out', 'data'], cwd);
    expect(again.code).not.toBe(0);
    expect(again.stderr).toMatch(/already holds prepared data .*pass --force/);
  });
});

describe('Progress', () => {
  it('draws a bar with percent, rate and ETA on a terminal, and plain throttled lines otherwise', () => {
    let now = 0;
    const tty = new Capture();
    const bar = new Progress(tty, { label: 'tokenizing', unit: 'MB', isTTY: true, now: () => now });
    now = 2000;
    bar.update({ done: 2, total: 8 });
    expect(tty.text).toMatch(/^\rtokenizing {2}\[#{7}\.{21}\] {2} 25% {2}2\.0\/8\.0 MB {2}1\.0 MB\/s {2}elapsed 00:02 {2}ETA 00:06/);
    now = 2050;
    bar.update({ done: 3, total: 8 }); // within 100 ms: not redrawn
    expect(tty.text.split('\r').length).toBe(2);
    bar.finish({ done: 8, total: 8 });
    expect(tty.text.endsWith('\n')).toBe(true);

    now = 0;
    const log = new Capture();
    const lines = new Progress(log, { label: 'steps', unit: 'steps', isTTY: false, lineIntervalMs: 1000, now: () => now });
    for (let t = 0; t <= 3000; t += 250) {
      now = t;
      lines.update({ done: t / 100 });
    }
    lines.finish({ done: 30 });
    expect(log.text).not.toContain('\r');
    expect(log.text.trim().split('\n').length).toBe(5); // t = 0, 1000, 2000, 3000, and the final line
  });
});
