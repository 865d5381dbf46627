import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Rng } from '@blankglm/tensor';
import { evaluateTask, finetune, loadSplit, loadTask, parseTaskDefinition } from '../src/index.js';
import { buildInfillRow, infillContext, infillParagraphs, maskedWords, maskRng, maskWords, parseMaskedText, readInfillSplit } from '../src/lm/index.js';
import { bertTokenizer, microModel } from './lm-helpers.js';

const tok = bertTokenizer();
const S = tok.special;

describe('infilling blanks and inputs (glm-reference §4.7)', () => {
  it('masks round(r · words) whole words, merging neighbours into one blank, reproducibly per line', () => {
    const text = 'one two three four five six seven eight nine ten';
    for (const ratio of [0.1, 0.3, 0.5]) {
      const ex = maskWords(text, ratio, maskRng(1, 7));
      const masked = ex.blanks.reduce((n, [a, b]) => n + b - a, 0);
      expect(masked).toBe(Math.round(ratio * 10));
      for (let i = 1; i < ex.blanks.length; i++) expect(ex.blanks[i]![0]).toBeGreaterThan(ex.blanks[i - 1]![1]); // never adjacent
      expect(maskWords(text, ratio, maskRng(1, 7))).toEqual(ex);
    }
    const ex = { line: 1, words: 'a b c d e'.split(' '), blanks: [[1, 3], [4, 5]] as Array<[number, number]> };
    expect(maskedWords(ex)).toEqual(['a', null, 'd', null]);
    expect(() => maskWords('single', 0.3, new Rng(1))).toThrow(/at least 2 words/);
  });

  it('Part A = " " + masked text (no [CLS]); Part B = [sop] span per blank, left to right, targets span [eop]', () => {
    const ex = { line: 1, words: 'the whale rose from the deep sea'.split(' '), blanks: [[1, 2], [4, 6]] as Array<[number, number]> };
    const row = buildInfillRow(tok, ex, 128);
    const { ids, maskPositions } = infillContext(tok, maskedWords(ex));
    expect(ids).toEqual([...tok.encodeIds(' the'), S.mask, ...tok.encodeIds(' rose from'), S.mask, ...tok.encodeIds(' sea')]);
    expect(maskPositions).toEqual([1, 4]);
    expect(row.sep).toBe(ids.length);
    const whale = tok.encodeIds(' whale');
    const theDeep = tok.encodeIds(' the deep');
    expect(row.inputIds.slice(row.sep)).toEqual([S.sop, ...whale, S.sop, ...theDeep]);
    expect(row.targetIds.slice(row.sep)).toEqual([...whale, S.eop, ...theDeep, S.eop]);
    expect(row.positionIds.slice(row.sep)).toEqual([1, 1, 4, 4, 4]);
    expect(row.blockPositionIds.slice(row.sep)).toEqual([1, 2, 1, 2, 3]);
    expect(() => buildInfillRow(tok, ex, 8)).toThrow(/more than the maximum 8/);
  });

  it('reads JSONL, plain lines and BLM .blank files; bad lines are all named', () => {
    const dir = mkdtempSync(join(tmpdir(), 'infill-'));
    writeFileSync(join(dir, 'test.txt'), 'the cat sat on the mat\na dog ran far away\n');
    writeFileSync(join(dir, 'test.maskratio0.3.blank'), 'the <blank> on the mat\na dog <blank> away\n');
    const items = readInfillSplit(join(dir, 'test.maskratio0.3.blank'));
    expect(items[0]).toEqual({ line: 1, text: 'the cat sat on the mat', masked: ['the', null, 'on', 'the', 'mat'] });
    expect(readInfillSplit(join(dir, 'test.txt'))).toHaveLength(2);
    writeFileSync(join(dir, 'bad.jsonl'), '{"text": "x"}\n{"text": "a b", "masked": "a b"}\n');
    expect(() => readInfillSplit(join(dir, 'bad.jsonl'))).toThrow(/2 bad lines[\s\S]*:1: field 'text'[\s\S]*:2: field 'masked' has no/);
    expect(parseMaskedText('a [MASK] b <blank>')).toEqual(['a', null, 'b', null]);
  });

  it('held-back paragraphs from text', () => {
    const para = 'Call me Ishmael. Some years ago, never mind how long precisely, having little or no money in my purse.';
    const { train, valid } = infillParagraphs([Array(20).fill(para).join('\n\n')]);
    expect(train).toHaveLength(18);
    expect(valid).toHaveLength(2);
  });
});

describe('infilling end to end with a micro model', () => {
  it('fine-tunes on fixed blanks and fills them back left to right (BLEU 100 on the training texts)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'infill-e2e-'));
    const texts = ['the old man went down to the sea', 'a white whale was seen at dawn'];
    const masked = ['the old [MASK] went down to the sea', 'a white whale was [MASK] at dawn'];
    writeFileSync(join(dir, 'train.jsonl'), texts.map((t, i) => JSON.stringify({ text: t, masked: masked[i] })).join('\n'));
    const task = parseTaskDefinition({
      ...(await import(loadTask('gutenberg-infill').source, { with: { type: 'json' } })).default,
      maxTokensPerBlank: 6,
      hyperparameters: { lr: 0.02, epochs: 40, batchSize: 2, warmup: 0, labelSmoothing: 0.1, maxLength: 64, weightDecay: 0 },
    }, 'test-task');
    const items = loadSplit(task, join(dir, 'train.jsonl'));
    const model = microModel(9, 64);
    try {
      const before = evaluateTask(model, tok, task, items, { batchSize: 2 });
      const result = await finetune({ model, tokenizer: tok, task, train: items, valid: items, seed: 5 });
      const after = result.epochs[result.epochs.length - 1]!.metrics;
      expect(after.bleu).toBeCloseTo(100, 6);
      expect(after.bleu!).toBeGreaterThan(before.bleu!);
    } finally {
      model.dispose();
    }
  });
});
