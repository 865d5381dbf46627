// Token ids and offsets must equal Hugging Face `tokenizers` (the Rust library) on real corpora, on
// every Unicode code point, and on hand-written hard cases, for both families.
import { readdirSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadBertTokenizer, loadGpt2Tokenizer, type GlmTokenizer } from '../src/index.js';
import { hasSharedData, sharedData } from '../../../test-support/shared-data.js';
import {
  chunksOf,
  codePointOffsetsToUtf16,
  gutenbergFiles,
  hfBert,
  hfGpt2,
  jsonlStrings,
  type HfTokenizer,
} from './oracle.js';

/** BLANKGLM_TOKENIZER_FULL=1 compares everything; the default run samples (every 4th chunk, every 4th code point below U+32000). */
const FULL = process.env.BLANKGLM_TOKENIZER_FULL === '1';
const sample = <T>(xs: T[], every: number): T[] => (FULL ? xs : xs.filter((_, i) => i % every === 0));

interface Tally {
  texts: number;
  tokens: number;
  mismatches: string[];
}

/** Encodes `texts` with both tokenizers and lists the differences (ids, offsets, and the ids-only path). */
async function compare(oracle: HfTokenizer, ours: GlmTokenizer, texts: string[], parseSpecialTokens = false): Promise<Tally> {
  const tally: Tally = { texts: texts.length, tokens: 0, mismatches: [] };
  const commandIds = new Set(Object.values(ours.special).filter((v): v is number => typeof v === 'number'));
  for (let i = 0; i < texts.length; i += 1000) {
    const batch = texts.slice(i, i + 1000);
    const expected = await oracle.encodeBatch(batch, { addSpecialTokens: false });
    batch.forEach((text, j) => {
      const want = expected[j]!;
      const wantIds = want.getIds();
      const wantOffsets = codePointOffsetsToUtf16(text, want.getOffsets());
      const got = ours.encode(text, { parseSpecialTokens });
      const fast = ours.encodeIds(text, { parseSpecialTokens });
      tally.tokens += wantIds.length;
      // HF reports an lstrip-ed added token with the whitespace it absorbed (" [MASK]"); we give the token itself.
      const wantTokens = want.getTokens().map((t, k) => (commandIds.has(wantIds[k]!) ? t.trim() : t));
      const same =
        JSON.stringify(got.ids) === JSON.stringify(wantIds) &&
        JSON.stringify(fast) === JSON.stringify(wantIds) &&
        JSON.stringify(got.offsets) === JSON.stringify(wantOffsets) &&
        JSON.stringify(got.tokens) === JSON.stringify(wantTokens);
      if (!same && tally.mismatches.length < 3) {
        tally.mismatches.push(
          `${JSON.stringify(text.slice(0, 120))}\n  hf:   ${JSON.stringify(wantIds).slice(0, 200)} ${JSON.stringify(wantOffsets).slice(0, 200)}` +
            `\n  ours: ${JSON.stringify(got.ids).slice(0, 200)} ${JSON.stringify(got.offsets).slice(0, 200)}`,
        );
      }
    });
  }
  return tally;
}

const HARD_CASES = [
  'café naïve Ångström Ÿ İstanbul ǅemal ΣΊΣΥΦΟΣ ß ﬁnance Ⅻ ①',
  'CJK: 中文字符测试，日本語のテキスト。한국어 텍스트 𠀀𪜀 豈更 (compat ideographs)',
  'emoji 😀👍🏽 👨‍👩‍👧‍👦 🏳️‍🌈 ❤️ 🇫🇷 and ZWJ a\u200db',
  'zero\u200bwidth\u200c joiners\u200d bom\ufeffin the middle \ufeffstart',
  'replacement \ufffd char, NUL \u0000 bell \u0007 esc \u001b del \u007f nel \u0085 ls \u2028 ps \u2029',
  'runs   of    spaces\t\ttabs\n\n\nnewlines \r\n crlf \u00a0nbsp \u3000ideographic\u2003em',
  'x'.repeat(99) + ' ' + 'y'.repeat(100) + ' ' + 'z'.repeat(101) + ' ' + 'é'.repeat(101) + ' ' + '😀'.repeat(60),
  'Pneumonoultramicroscopicsilicovolcanoconiosis supercalifragilisticexpialidocious',
  'mixed: Привет мир! Γειά σου Κόσμε! مرحبا بالعالم שלום עולם नमस्ते दुनिया สวัสดีชาวโลก',
  'masks: [MASK] [sMASK] [gMASK] <|startofpiece|> <|endofpiece|> [CLS] [SEP] [PAD] [UNK] <|endoftext|> [dBLOCK]',
  "contractions: I'm you're we've they'll he'd it's don't 'S 'T  'LL",
  'numbers 3.14159 1,000,000 ½ ² ٣ ৩ 2024-01-01T00:00:00Z',
  'symbols ~!@#$%^&*()_+`-={}|[]\\:";\'<>?,./ ¡¿ «» „“ ‹› — – … · • ¶ § © ® ™ € £ ¥',
  '   leading and trailing spaces   ',
  '',
  ' ',
  '\n',
  'a',
  'lone surrogates \ud800 x \udc00 y',
  'combining: e\u0301 a\u0308 o\u0302\u0323 ḍ̇ Z̤͎̎ zalgo t̸̢̧̛̛̛͈͎',
  'turkish dotless ı I İ i; german ẞ; greek final sigma ΟΔΟΣ',
];

describe.skipIf(!hasSharedData('vocab/bert-base-uncased-vocab.txt') || !hasSharedData('vocab/gpt2-merges.txt'))('parity with Hugging Face tokenizers', () => {
  let hfB: HfTokenizer;
  let hfG: HfTokenizer;
  let hfBSpecial: HfTokenizer;
  let hfGSpecial: HfTokenizer;
  const bert = loadBertTokenizer();
  const gpt2 = loadGpt2Tokenizer();
  const totals = { bert: { texts: 0, tokens: 0 }, gpt2: { texts: 0, tokens: 0 } };

  beforeAll(async () => {
    [hfB, hfG, hfBSpecial, hfGSpecial] = await Promise.all([hfBert(false), hfGpt2(false), hfBert(true), hfGpt2(true)]);
  });

  async function both(texts: string[]): Promise<void> {
    const b = await compare(hfB, bert, texts);
    const g = await compare(hfG, gpt2, texts);
    totals.bert.texts += b.texts;
    totals.bert.tokens += b.tokens;
    totals.gpt2.texts += g.texts;
    totals.gpt2.tokens += g.tokens;
    expect(b.mismatches, 'BERT').toEqual([]);
    expect(g.mismatches, 'GPT-2').toEqual([]);
  }

  it(`every Gutenberg book, ${FULL ? 'all lines' : 'every 4th 8-line chunk'}`, async () => {
    const files = gutenbergFiles();
    expect(files.length).toBeGreaterThanOrEqual(10);
    for (const f of files) await both(sample(chunksOf(f, 8), 4));
  });

  it(`tiny-shakespeare and WikiText-2 (valid + test), ${FULL ? 'all lines' : 'every 4th chunk'}`, async () => {
    await both(sample(chunksOf(sharedData('corpus/tiny-shakespeare.txt'), 8), 4));
    await both(sample(chunksOf(sharedData('wikitext-2/valid.tokens.txt'), 4), 4));
    await both(sample(chunksOf(sharedData('wikitext-2/test.tokens.txt'), 4), 4));
  });

  it('held-out text: every string of every SuperGLUE jsonl file and LAMBADA', async () => {
    const texts: string[] = [];
    const root = sharedData('superglue');
    for (const task of readdirSync(root)) {
      for (const f of readdirSync(`${root}/${task}`)) if (f.endsWith('.jsonl')) texts.push(...jsonlStrings(`${root}/${task}/${f}`));
    }
    texts.push(...jsonlStrings(sharedData('lambada/lambada_openai.first500.jsonl')));
    expect(texts.length).toBeGreaterThan(5000);
    await both(texts);
  });

  it('hand-written hard cases (accents, CJK, emoji/ZWJ, controls, zero-width, U+FFFD, long words, scripts)', async () => {
    await both(HARD_CASES);
    // Each case again, glued to its neighbours without spaces.
    await both([HARD_CASES.join(''), HARD_CASES.join('\n')]);
  });

  it(`${FULL ? 'every' : 'every 4th assigned-plane (every 997th higher)'} Unicode code point (in three contexts each)`, async () => {
    const texts: string[] = [];
    for (let cp = 0; cp <= 0x10ffff; cp += FULL ? 1 : cp < 0x32000 ? 4 : 997) {
      if (cp >= 0xd800 && cp <= 0xdfff) continue;
      const c = String.fromCodePoint(cp);
      texts.push(`aB${c}b ${c} ${c}${c}x.`);
    }
    // Consecutive code points in one text each, so the per-character work is done once per 64.
    const grouped: string[] = [];
    for (let i = 0; i < texts.length; i += 64) grouped.push(texts.slice(i, i + 64).join(''));
    await both(grouped);
  }, FULL ? 900_000 : 60_000);

  it('literal command tokens are parsed only when asked (and then match HF added tokens, lstrip included)', async () => {
    const texts = [
      'Fill in: the capital of France is [MASK] .',
      'trailing mask [MASK]',
      '  [gMASK]  double spaces and [sMASK]\tafter a tab',
      '<|startofpiece|> Paris <|endofpiece|> [CLS][SEP] [UNK]x [PAD] <|endoftext|> [dBLOCK]',
      'no masks here',
      'partial [MAS K] [mask] [GMASK]',
    ];
    const b = await compare(hfBSpecial, bert, texts, true);
    const g = await compare(hfGSpecial, gpt2, texts, true);
    expect(b.mismatches).toEqual([]);
    expect(g.mismatches).toEqual([]);
    // Without parseSpecialTokens the literal strings are ordinary text.
    const plainB = await compare(hfB, bert, texts, false);
    const plainG = await compare(hfG, gpt2, texts, false);
    expect(plainB.mismatches).toEqual([]);
    expect(plainG.mismatches).toEqual([]);
    expect(bert.encodeIds('[MASK]')).not.toContain(bert.special.mask);
    expect(bert.encodeIds('[MASK]', { parseSpecialTokens: true })).toEqual([103]);
    expect(gpt2.encodeIds('a [gMASK]', { parseSpecialTokens: true })).toEqual([64, 50263]);
  });

  it('decode: WordPiece equals HF decode (with cleanup); byte-level gives the text back', async () => {
    for (const text of [...HARD_CASES, ...chunksOf(gutenbergFiles()[0]!, 40).slice(0, 50)]) {
      const bIds = bert.encodeIds(text);
      expect(bert.decode(bIds)).toBe(await hfB.decode(bIds, false));
      const gIds = gpt2.encodeIds(text);
      // Byte-level BPE is lossless except for lone surrogates.
      if (!/[\ud800-\udfff]/u.test(text.replace(/[\ud800-\udbff][\udc00-\udfff]/g, ''))) expect(gpt2.decode(gIds)).toBe(text);
    }
  });

  it('reports what was compared', () => {
    console.log(
      `[parity] BERT: ${totals.bert.texts} texts, ${totals.bert.tokens} tokens; GPT-2: ${totals.gpt2.texts} texts, ${totals.gpt2.tokens} tokens — all identical`,
    );
    expect(totals.bert.tokens).toBeGreaterThan(FULL ? 3_000_000 : 800_000);
  });
});
