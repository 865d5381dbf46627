// `blankglm tokenize`, run in-process.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { runCli } from '../src/index.js';
import { hasSharedData, sharedData } from '../../../test-support/shared-data.js';

async function run(argv: string[], stdin = '', cwd = process.cwd()): Promise<{ code: number; out: string; err: string }> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (c) => (out += c));
  stderr.on('data', (c) => (err += c));
  const code = await runCli(['tokenize', ...argv], { stdin: Readable.from([stdin]), stdout, stderr, isTTY: false, cwd });
  return { code, out, err };
}

describe('blankglm tokenize', () => {
  it('prints BERT uncased ids by default, without [CLS]/[SEP]', async () => {
    const { code, out, err } = await run(['Hello, World!']);
    expect(err).toBe('');
    expect(code).toBe(0);
    expect(out).toBe('7592 1010 2088 999\n');
    expect((await run(['--special', 'Hello, World!'])).out).toBe('101 7592 1010 2088 999 102\n');
  });

  it('--tokens prints token strings; --gpt2 uses the embedded GPT-2 files', async () => {
    expect((await run(['--tokens', 'unaffable'])).out).toBe('una ##ffa ##ble\n');
    expect((await run(['--gpt2', 'Hello world'])).out).toBe('15496 995\n');
    expect((await run(['--gpt2', '--tokens', 'Hello world'])).out).toBe('Hello Ġworld\n');
  });

  it('reads stdin; --lines --json gives one array per line, lines taken as they are', async () => {
    const { code, out } = await run(['--lines', '--json', '--gpt2'], 'a b\n  a b\n\nlast');
    expect(code).toBe(0);
    expect(out.trim().split('\n').map((l) => JSON.parse(l))).toEqual([[64, 275], [220, 257, 275], [], [12957]]);
    expect((await run([], 'the cat\n')).out).toBe('1996 4937\n');
  });

  it('literal [MASK] stays text unless --parse-special', async () => {
    expect((await run(['a [MASK] b'])).out).toBe('1037 1031 7308 1033 1038\n');
    expect((await run(['--parse-special', 'a [MASK] b'])).out).toBe('1037 103 1038\n');
    expect((await run(['--gpt2', '--parse-special', 'a [gMASK]'])).out).toBe('64 50263\n');
  });

  it.skipIf(!hasSharedData('vocab/gpt2-merges.txt'))('--vocab / --merges files give the same ids as the embedded ones', async () => {
    const bpe = await run(['--vocab', sharedData('vocab/gpt2-vocab.json'), '--merges', sharedData('vocab/gpt2-merges.txt'), 'Hello world']);
    expect(bpe.out).toBe('15496 995\n');
    const wp = await run(['--vocab', sharedData('vocab/bert-base-uncased-vocab.txt'), 'Hello, World!']);
    expect(wp.out).toBe('7592 1010 2088 999\n');
  });

  it('bad files: a clear error naming the file (and the line of a malformed merge)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'blankglm-tokenize-'));
    const missing = await run(['--vocab', 'missing.txt', 'x'], '', dir);
    expect(missing.code).not.toBe(0);
    expect(missing.err).toContain(`cannot read WordPiece vocabulary '${join(dir, 'missing.txt')}': no such file`);
    writeFileSync(join(dir, 'vocab.json'), JSON.stringify({ a: 0, b: 1, ab: 2 }));
    writeFileSync(join(dir, 'merges.txt'), '#version: 0.2\na b\nab\n');
    const bad = await run(['--vocab', 'vocab.json', '--merges', 'merges.txt', 'ab'], '', dir);
    expect(bad.code).not.toBe(0);
    expect(bad.err).toContain(`${join(dir, 'merges.txt')}:3: malformed merge "ab"`);
    writeFileSync(join(dir, 'tokenizer.json'), '{ not json');
    const badJson = await run(['--tokenizer', 'tokenizer.json', 'x'], '', dir);
    expect(badJson.err).toContain(`${join(dir, 'tokenizer.json')} is not valid JSON`);
    const onlyJson = await run(['--vocab', 'vocab.json', 'x'], '', dir);
    expect(onlyJson.err).toContain('looks like a BPE vocab.json');
  });
});
