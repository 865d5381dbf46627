import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { evaluateTask, loadSplit as loadExamples, loadTask, parseTaskDefinition } from '../src/index.js';
import {
  buildLambadaRow, buildMultipleChoiceRows, buildWindowRow, detokenizeWikitext, evaluateLambada, evaluateWikitext,
  lmWindows, parseLambadaRow, scoreRows, wikitextWordCount, type LambadaExample,
} from '../src/lm/index.js';
import { hasSharedData, sharedData } from '../../../test-support/shared-data.js';
import { bertTokenizer, microModel } from './lm-helpers.js';

const tok = bertTokenizer();
const S = tok.special; // BERT: cls 101, mask 103, eos = pad 0, sop 30522, gMask 30524

function readLambada(n: number): LambadaExample[] {
  const lines = readFileSync(sharedData('lambada/lambada_openai.first500.jsonl'), 'utf8').split('\n').filter(Boolean).slice(0, n);
  return lines.map((l, i) => parseLambadaRow(JSON.parse(l), i + 1, [])!);
}

describe.skipIf(!hasSharedData('lambada/lambada_openai.first500.jsonl'))('LAMBADA inputs on the real data', () => {
  it('bidirectional: [CLS] context [MASK] [eos] | [sop] w[:-1], all at the mask position', () => {
    const [ex] = readLambada(1);
    expect(ex!.lastWord).toBe('signs');
    const context = tok.encodeIds(ex!.context);
    expect(context.slice(-6)).toEqual(tok.encodeIds("I don't care about"));
    const word = tok.encodeIds(' signs'); // one WordPiece
    const row = buildLambadaRow(tok, ex!, { protocol: 'bidirectional', maskToken: 'mask', maxLength: 512 });
    const n = context.length;
    expect(row.sep).toBe(n + 3);
    expect(row.inputIds).toEqual([S.cls, ...context, S.mask, S.eos, S.sop, ...word.slice(0, -1)]);
    expect(row.positionIds).toEqual([...Array.from({ length: n + 3 }, (_, i) => i), ...word.map(() => n + 1)]);
    expect(row.blockPositionIds).toEqual([...new Array(n + 3).fill(0), ...word.map((_, k) => k + 1)]);
    expect(row.targetIds.slice(n + 3)).toEqual(word);
    expect(row.lossMask).toEqual([...new Array(n + 3).fill(0), ...word.map(() => 1)]);
  });

  it('unidirectional: [CLS] t0 [gMASK] [eos] | [sop] rest + w, loss on w only', () => {
    const ex = readLambada(3)[2]!;
    const context = tok.encodeIds(ex.context);
    const word = tok.encodeIds(' ' + ex.lastWord);
    const row = buildLambadaRow(tok, ex, { protocol: 'unidirectional', maskToken: 'gMask', maxLength: 512 });
    const rest = context.slice(1);
    expect(row.inputIds.slice(0, 4)).toEqual([S.cls, context[0], S.gMask, S.eos]);
    expect(row.sep).toBe(4);
    expect(row.inputIds.slice(4)).toEqual([S.sop, ...[...rest, ...word].slice(0, -1)]);
    expect(row.targetIds.slice(4)).toEqual([...rest, ...word]);
    expect(row.positionIds.slice(4).every((p) => p === 2)).toBe(true);
    expect(row.lossMask.slice(4)).toEqual([...rest.map(() => 0), ...word.map(() => 1)]);
  });

  it('a long context loses tokens on the left to fit maxLength', () => {
    const [ex] = readLambada(1);
    const row = buildLambadaRow(tok, ex!, { protocol: 'bidirectional', maskToken: 'mask', maxLength: 20 });
    expect(row.inputIds.length).toBe(20);
    expect(row.inputIds.slice(row.sep - 8, row.sep - 2)).toEqual(tok.encodeIds("I don't care about"));
  });

  it('a micro model: bidirectional and unidirectional accuracy through the task kind (zero-shot)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'lambada-'));
    const file = join(dir, 'lambada.jsonl');
    writeFileSync(file, readFileSync(sharedData('lambada/lambada_openai.first500.jsonl'), 'utf8').split('\n').slice(0, 6).join('\n') + '\n');
    const model = microModel(3, 128);
    try {
      for (const name of ['lambada', 'lambada-uni']) {
        const task = loadTask(name);
        const m = evaluateTask(model, tok, task, loadExamples(task, file), { batchSize: 4, maxLength: 128 });
        expect(m.examples).toBe(6);
        expect(m.accuracy).toBeGreaterThanOrEqual(0);
        expect(m.accuracy).toBeLessThanOrEqual(1);
        expect(m['last-word-nll']).toBeGreaterThan(0);
      }
    } finally {
      model.dispose();
    }
  });
});

describe('LAMBADA scoring', () => {
  it('a hit needs every last-word token to be the argmax; a model that knows the answer scores 1', () => {
    const model = microModel(5, 64);
    try {
      const ex: LambadaExample = { line: 1, context: 'the sun rose over the', lastWord: 'mountains' };
      const row = buildLambadaRow(tok, ex, { protocol: 'bidirectional', maskToken: 'mask', maxLength: 64 });
      const [score] = scoreRows(model, [row], { batchSize: 1, argmax: true });
      const r = evaluateLambada(model, tok, [ex], { protocol: 'bidirectional', maskToken: 'mask', maxLength: 64, batchSize: 1 });
      expect(r.correct[0]).toBe(score!.hits!.every(Boolean));
      expect(r.lastWordNll).toBeCloseTo(-score!.logProbs.reduce((a, b) => a + b, 0), 5);
    } finally {
      model.dispose();
    }
  });

  it('reads the original lambada_test.jsonl format and names bad rows', () => {
    expect(parseLambadaRow({ text: 'he looked at the  door' }, 1, [])).toEqual({ line: 1, context: 'he looked at the', lastWord: 'door' });
    const problems: string[] = [];
    expect(parseLambadaRow({ context: 'x' }, 2, problems)).toBeNull();
    expect(problems.join()).toMatch(/continuation/);
    const p2: string[] = [];
    parseLambadaRow({ foo: 1 }, 3, p2);
    expect(p2.join()).toMatch(/expected fields 'context' and 'continuation'.*got foo/);
  });
});

describe('WikiText windows', () => {
  it('every token after the first is predicted exactly once (reference layout: S = 1024, overlap 256)', () => {
    for (const n of [2, 500, 1023, 1024, 1279, 1280, 5000]) {
      const windows = lmWindows(n, 1024, 256);
      const count = new Int32Array(n);
      for (const w of windows) for (let t = w.predictFrom; t < w.end; t++) count[t]!++;
      expect(count[0]).toBe(0);
      for (let t = 1; t < n; t++) expect(count[t], `token ${t} of ${n}`).toBe(1);
      windows.forEach((w, i) => {
        expect(w.start).toBe(i * 256);
        expect(w.end - w.start).toBeLessThanOrEqual(1023);
        if (i > 0) expect(w.predictFrom - w.start).toBe(1023 - 256); // 767 tokens of context
      });
    }
    expect(lmWindows(5000, 1024, 256)).toHaveLength(17);
  });

  it('window rows: Part A = [CLS] context [gMASK], Part B = [sop] predicted[:-1] at the mask position', () => {
    const tokens = Array.from({ length: 40 }, (_, i) => 1000 + i);
    const windows = lmWindows(40, 16, 4); // window length 15, 11 tokens of context after the first
    const special = { cls: S.cls, sop: S.sop, mask: S.gMask };
    const first = buildWindowRow(tokens, windows[0]!, special, 'bidirectional');
    expect(first.inputIds.slice(0, 3)).toEqual([S.cls, 1000, S.gMask]);
    expect(first.sep).toBe(3);
    expect(first.inputIds.slice(3)).toEqual([S.sop, ...tokens.slice(1, 14)]);
    expect(first.targetIds.slice(3)).toEqual(tokens.slice(1, 15));
    expect(first.positionIds.slice(3).every((p) => p === 2)).toBe(true);
    expect(first.blockPositionIds.slice(3)).toEqual(Array.from({ length: 14 }, (_, k) => k + 1));
    const second = buildWindowRow(tokens, windows[1]!, special, 'bidirectional');
    expect(windows[1]).toEqual({ start: 4, end: 19, predictFrom: 15 });
    expect(second.inputIds.slice(0, second.sep)).toEqual([S.cls, ...tokens.slice(4, 15), S.gMask]);
    expect(second.targetIds.slice(second.sep)).toEqual(tokens.slice(15, 19));
    expect(second.positionIds.slice(second.sep).every((p) => p === 12)).toBe(true);
    const uni = buildWindowRow(tokens, windows[1]!, special, 'unidirectional');
    expect(uni.inputIds.slice(0, 3)).toEqual([S.cls, 1004, S.gMask]);
    expect(uni.targetIds.slice(3)).toEqual(tokens.slice(5, 19));
    expect(uni.lossMask.slice(3)).toEqual([...new Array(10).fill(0), 1, 1, 1, 1]);
  });

  it('detokenises as the reference and counts words as Megatron', () => {
    expect(detokenizeWikitext(' = = Life = = \n The lobster , which is 0 @.@ 7 kg ( 1 @.@ 5 lb ) , is red @-@ tipped . \n')).toBe(
      ' == Life ==\nThe lobster, which is 0.7 kg (1.5 lb), is red-tipped.\n',
    );
    // the reference's single-quote rule runs from one ' to the next, so it also eats this space (kept as the reference)
    expect(detokenizeWikitext("the players ' \" best \" year 's end")).toBe("the players'\"best\" year's end");
    expect(wikitextWordCount(' a b \n c \n ')).toBe(4); // strip → "a b \n c", split(" ") → a, b, \n, c
  });

  it('a micro model: perplexity from the windows equals exp(mean NLL), token- and word-normalised', () => {
    const raw = ' = Homarus = \n Homarus gammarus , known as the European lobster , is a species of lobster from the eastern Atlantic Ocean . \n It may grow to a length of 60 cm ( 24 in ) . \n'.repeat(3);
    const model = microModel(11, 64);
    try {
      const r = evaluateWikitext(model, tok, raw, { seqLength: 32, overlap: 8, protocol: 'bidirectional', maskToken: 'gMask', batchSize: 4 });
      expect(r.tokens).toBe(tok.encodeIds(detokenizeWikitext(raw)).length);
      expect(r.predicted).toBe(r.tokens - 1);
      expect(r.words).toBe(wikitextWordCount(raw));
      expect(r.perplexity).toBeCloseTo(Math.exp(r.loss), 6);
      expect(r.adjustedPerplexity).toBeCloseTo(Math.exp((r.loss * (r.tokens - 1)) / (r.words - 1)), 6);
      // an untrained model is near-uniform over the 30,592 rows
      expect(r.perplexity).toBeGreaterThan(5000);
      const uni = evaluateWikitext(model, tok, raw, { seqLength: 32, overlap: 8, protocol: 'unidirectional', maskToken: 'gMask', batchSize: 4 });
      expect(uni.predicted).toBe(uni.tokens - 1);
    } finally {
      model.dispose();
    }
  });
});

describe.skipIf(!hasSharedData('wikitext-2/valid.tokens.txt'))('WikiText on the real file', () => {
  it('the wikitext task evaluates a prefix of valid.tokens.txt with the micro model', () => {
    const task = parseTaskDefinition({ ...JSON.parse(readFileSync(loadTask('wikitext').source, 'utf8')), seqLength: 64, overlap: 16, maxTokens: 600 }, 'test');
    const docs = loadExamples(task, sharedData('wikitext-2/valid.tokens.txt'));
    const model = microModel(2, 64);
    try {
      const m = evaluateTask(model, tok, task, docs, { batchSize: 8 });
      expect(m.tokens).toBe(600);
      expect(m.windows).toBe(lmWindows(600, 64, 16).length);
      expect(m.perplexity).toBeCloseTo(Math.exp(m.loss!), 6);
      expect(m['adjusted-perplexity']).toBeGreaterThan(m.perplexity!); // BERT pieces per word > 1 here
    } finally {
      model.dispose();
    }
  });
});

describe('multiple choice', () => {
  it('appends [MASK] when absent and builds one row per choice at the mask', () => {
    const rows = buildMultipleChoiceRows(tok, { line: 1, input: 'The sky is', choices: ['blue', 'very green'], label: 0 }, 64);
    const body = tok.encodeIds('The sky is');
    expect(rows).toHaveLength(2);
    expect(rows[0]!.inputIds.slice(0, rows[0]!.sep)).toEqual([S.cls, ...body, S.mask, S.eos]);
    expect(rows[1]!.targetIds.slice(rows[1]!.sep)).toEqual(tok.encodeIds('very green'));
    expect(rows[1]!.positionIds.slice(rows[1]!.sep).every((p) => p === body.length + 1)).toBe(true);
    const inner = buildMultipleChoiceRows(tok, { line: 1, input: 'A [MASK] is a fruit.', choices: ['apple', 'car'], label: 0 }, 64);
    expect(inner[0]!.positionIds[inner[0]!.sep]).toBe(2);
  });

  it('a micro model picks the choice with the larger Σ log p; bad rows are all reported', () => {
    const dir = mkdtempSync(join(tmpdir(), 'mc-'));
    const good = join(dir, 'mc.jsonl');
    writeFileSync(good, [
      { inputs_pretokenized: 'The sky is', choices_pretokenized: ['blue', 'green'], label: 0 },
      { inputs_pretokenized: 'Water is [MASK] .', choices_pretokenized: ['wet', 'dry', 'loud'], label: 0 },
    ].map((r) => JSON.stringify(r)).join('\n'));
    const task = loadTask('multichoice');
    const model = microModel(4, 64);
    try {
      const m = evaluateTask(model, tok, task, loadExamples(task, good), { batchSize: 2, maxLength: 64 });
      expect(m.examples).toBe(2);
      expect([0, 0.5, 1]).toContain(m.accuracy);
    } finally {
      model.dispose();
    }
    const bad = join(dir, 'bad.jsonl');
    writeFileSync(bad, ['{"inputs_pretokenized": "x", "choices_pretokenized": ["a"], "label": 0}', '{"inputs_pretokenized": "x", "choices_pretokenized": ["a", "b"], "label": 2}', 'nope'].join('\n'));
    expect(() => loadExamples(task, bad)).toThrow(/3 bad lines[\s\S]*:1: field 'choices_pretokenized'[\s\S]*:2: label 2 is not an index[\s\S]*:3: not valid JSON/);
  });
});
