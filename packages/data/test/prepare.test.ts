// Preparation through the built package (the worker pool starts dist/worker.js): build first.
import { describe, expect, it } from 'vitest';
import { mkdtemp, readFile, readdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadBertTokenizer, loadGpt2Tokenizer } from '@blankglm/tokenizer';
import { listCorpusFiles, openShards, prepareCorpus, readCorpusDocuments, type PrepareProgress } from '../dist/index.js';
import { hasSharedData, sharedData } from '../../../test-support/shared-data.js';

async function tempDir(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'blankglm-prepare-'));
}

const haveBooks = hasSharedData('corpus/gutenberg/shakespeare-macbeth.txt');

describe.skipIf(!haveBooks)('prepareCorpus on Gutenberg books', () => {
  const books = ['shakespeare-macbeth.txt', 'blake-poems.txt', 'shakespeare-caesar.txt'].map((b) => sharedData(`corpus/gutenberg/${b}`));

  it('writes shards whose documents are exactly the tokenizer ids of the corpus documents, the same bytes for 0, 1 and 3 workers', async () => {
    const files = await listCorpusFiles(books);
    const outputs: string[] = [];
    const progress: PrepareProgress[] = [];
    for (const workers of [0, 1, 3]) {
      const outDir = await tempDir();
      const r = await prepareCorpus({ files, outDir, tokenizer: { kind: 'bert' }, encoding: 'auto', workers, shardTokens: 20_000, onProgress: (p) => progress.push(p) });
      expect(r.manifest.shards.length).toBeGreaterThan(3);
      outputs.push(outDir);
    }
    const manifests = await Promise.all(outputs.map(async (d) => JSON.parse(await readFile(join(d, 'manifest.json'), 'utf8'))));
    for (const m of manifests.slice(1)) expect(m.shards).toEqual(manifests[0].shards);
    for (const d of outputs.slice(1)) {
      for (const f of (await readdir(outputs[0]!)).filter((x) => x.startsWith('shard-'))) {
        expect((await readFile(join(d, f))).equals(await readFile(join(outputs[0]!, f))), f).toBe(true);
      }
    }
    const m = manifests[0];
    expect(m.sources.map((s: { encoding: string }) => s.encoding)).toEqual(['utf8', 'utf8', 'latin1']);
    expect(m.dtype).toBe('uint16');
    expect(m.tokenizer.family).toBe('bert');
    expect(m.tokenizer.special.cls).toBe(101);

    const tokenizer = loadBertTokenizer();
    const set = await openShards(outputs[0]!, { verify: true });
    let d = 0;
    for await (const doc of readCorpusDocuments(files, { encoding: 'auto' })) {
      expect(Array.from(set.document(d)), `document ${d}`).toEqual(tokenizer.encodeIds(doc.text));
      d++;
    }
    expect(d).toBe(set.documentCount);
    const last = progress[progress.length - 1]!;
    expect(last.done).toBe(true);
    expect(last.bytesRead).toBe(last.totalBytes);
    expect(last.tokens).toBe(m.tokens);
  });

  it('stores GPT-2 ids (vocabulary over 50k, still uint16)', async () => {
    const files = await listCorpusFiles([books[0]!]);
    const outDir = await tempDir();
    const r = await prepareCorpus({ files, outDir, tokenizer: { kind: 'gpt2' }, workers: 1 });
    expect(r.manifest.tokenizer.family).toBe('gpt2');
    const set = await openShards(outDir);
    const gpt2 = loadGpt2Tokenizer();
    const first = (await readCorpusDocuments(files).next()).value!;
    expect(Array.from(set.document(0))).toEqual(gpt2.encodeIds(first.text));
  });
});

describe('prepareCorpus safety and errors', () => {
  it('refuses to overwrite prepared data without force, and replaces it (removing stale shards) with force', async () => {
    const corpus = await tempDir();
    await writeFile(join(corpus, 'a.txt'), Array.from({ length: 400 }, (_, i) => `Paragraph ${i} has a few words in it.`).join('\n\n'));
    const outDir = await tempDir();
    const files = await listCorpusFiles([corpus]);
    const first = await prepareCorpus({ files, outDir, tokenizer: { kind: 'bert' }, workers: 0, shardTokens: 500 });
    expect(first.manifest.shards.length).toBeGreaterThan(5);
    await expect(prepareCorpus({ files, outDir, tokenizer: { kind: 'bert' }, workers: 0 })).rejects.toThrow(/already holds prepared data \(manifest\.json\); pass --force/);
    const second = await prepareCorpus({ files, outDir, tokenizer: { kind: 'bert' }, workers: 0, force: true });
    expect(second.manifest.shards.length).toBe(1);
    expect((await readdir(outDir)).sort()).toEqual(['manifest.json', 'shard-00000.bin', 'shard-00000.idx']);
  });

  it('names the empty corpus', async () => {
    const corpus = await tempDir();
    await writeFile(join(corpus, 'blank.txt'), '\n\n   \n');
    await expect(prepareCorpus({ files: await listCorpusFiles([corpus]), outDir: await tempDir(), tokenizer: { kind: 'bert' }, workers: 1 })).rejects.toThrow(
      /the corpus is empty: 1 file\(s\) .*blank\.txt.* hold no non-blank text/,
    );
  });

  it('stops the worker pool and reports a bad record in the middle of a corpus', async () => {
    const corpus = await tempDir();
    const lines = Array.from({ length: 3000 }, (_, i) => JSON.stringify({ text: `record ${i}` }));
    lines[2500] = '{"text": oops}';
    await writeFile(join(corpus, 'data.jsonl'), lines.join('\n'));
    await expect(prepareCorpus({ files: await listCorpusFiles([corpus]), outDir: await tempDir(), tokenizer: { kind: 'bert' }, workers: 2 })).rejects.toThrow(
      /data\.jsonl:2501: malformed JSON/,
    );
  });
});
