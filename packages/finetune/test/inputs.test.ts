// Model inputs exactly as glm-reference §4.1: [CLS] A [eos] | [sop] …, positions, truncation.
import { describe, expect, it } from 'vitest';
import { getPreset } from '@blankglm/model-spec';
import { loadBertTokenizer } from '@blankglm/tokenizer';
import { PreparedCloze, clozeRowsToBatch, loadClozeExamples, loadTask, type ClozeTask } from '../src/index.js';
import { CB_ROWS, COPA_ROWS, tempDir, writeJsonl } from './helpers/micro.js';

const tokenizer = loadBertTokenizer();
const sp = tokenizer.special;
const env = (maxLength: number) => ({ tokenizer, config: getPreset('glm-tiny'), maxLength });

describe('cloze inputs', () => {
  const dir = tempDir();
  it('single-token verbalizer (CB pattern 3): Part A, eos = [PAD], sop at the mask position', () => {
    const task = loadTask('cb') as ClozeTask;
    const [ex] = loadClozeExamples(task, writeJsonl(dir, 'cb.jsonl', CB_ROWS));
    const item = new PreparedCloze(task, env(128)).item(ex!);
    const row = item.rows[0]!;
    // "The cat sat?" [MASK] "." "The cat sat on the mat all day."
    const expectedA = [sp.cls, ...tokenizer.encodeIds('The cat sat'), ...tokenizer.encodeIds('? '), sp.mask, ...tokenizer.encodeIds('. '), ...tokenizer.encodeIds('The cat sat on the mat all day.'), sp.eos];
    expect(sp.eos).toBe(0);
    expect(row.ids).toEqual([...expectedA, sp.sop]);
    expect(row.sep).toBe(expectedA.length);
    const maskPos = expectedA.indexOf(sp.mask);
    expect(row.positions).toEqual([...expectedA.map((_, i) => i), maskPos]);
    expect(row.blocks).toEqual([...expectedA.map(() => 0), 1]);
    expect(item.gold).toBe(1); // labels in verbalizer order: contradiction, entailment, neutral
  });

  it('multi-token candidates (COPA): answer = tokens + eop, block positions 1..n, targets shifted', () => {
    const task = loadTask('copa') as ClozeTask;
    const [ex] = loadClozeExamples(task, writeJsonl(dir, 'copa.jsonl', COPA_ROWS));
    const item = new PreparedCloze(task, env(128)).item(ex!);
    expect(ex!.candidates).toEqual([' the toilet filled with water', ' water flowed from the spout']);
    const row = item.rows[1]!;
    const cand = tokenizer.encodeIds(' water flowed from the spout');
    const a = row.sep;
    expect(row.ids.slice(a)).toEqual([sp.sop, ...cand]);
    expect(row.targets.slice(a)).toEqual([...cand, sp.eop]);
    expect(row.blocks.slice(a)).toEqual(cand.map((_, k) => k + 1).concat(cand.length + 1));
    const maskPos = row.ids.lastIndexOf(sp.mask);
    expect(row.positions.slice(a).every((p) => p === maskPos)).toBe(true);
    expect(item.answerLengths).toEqual([tokenizer.encodeIds(' the toilet filled with water').length + 1, cand.length + 1]);
    expect(tokenizer.decode(row.ids.slice(1, a - 1))).toBe('" the toilet filled with water " or " water flowed from the spout "? the man turned on the faucet, so [MASK].');
    // padded batch: eos padding, segment −1, no loss
    const batch = clozeRowsToBatch(item.rows, sp.eos);
    expect(batch.batchSize).toBe(2);
    const L = batch.seqLength;
    const shorter = item.rows[0]!.ids.length < item.rows[1]!.ids.length ? 0 : 1;
    expect(batch.segmentIds![shorter * L + L - 1]).toBe(-1);
    expect(batch.lossMask![shorter * L + L - 1]).toBe(0);
  });

  it('truncates the shortenable part from the right to fit the max length', () => {
    const task = loadTask('cb') as ClozeTask;
    const long = { premise: Array.from({ length: 200 }, (_, i) => `word${i % 10}`).join(' '), hypothesis: 'Short claim.', label: 'neutral' };
    const [ex] = loadClozeExamples(task, writeJsonl(dir, 'long.jsonl', [long]));
    const row = new PreparedCloze(task, env(64)).item(ex!).rows[0]!;
    expect(row.ids.length).toBe(64);
    expect(row.ids.slice(0, 5)).toEqual([sp.cls, ...tokenizer.encodeIds('Short claim'), ...tokenizer.encodeIds('? '), sp.mask]);
    expect(row.ids[row.sep - 1]).toBe(sp.eos);
    // the premise keeps its beginning
    expect(tokenizer.decode(row.ids.slice(row.ids.indexOf(sp.mask) + 2, row.sep - 1)).startsWith('word0 word1 word2')).toBe(true);
    const tooShort = loadTask('copa') as ClozeTask;
    const [c] = loadClozeExamples(tooShort, writeJsonl(dir, 'c.jsonl', COPA_ROWS));
    expect(() => new PreparedCloze(tooShort, env(16)).item(c!)).toThrow(/c\.jsonl:1: the pattern needs \d+ tokens without its shortenable parts \(none\), over the max length 16/);
  });
});
