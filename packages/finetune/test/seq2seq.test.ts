import { mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { evaluateTask, finetune, loadSplit, loadTask, parseTaskDefinition } from '../src/index.js';
import { buildSeq2seqInput, buildSeq2seqRow, firstSentence, leadSentenceExamples, readSeq2seqSplit, splitSentences, writeSeq2seqSplits } from '../src/lm/index.js';
import { hasSharedData, sharedData } from '../../../test-support/shared-data.js';
import { bertTokenizer, microModel } from './lm-helpers.js';

const tok = bertTokenizer();
const S = tok.special;

describe('seq2seq inputs (glm-reference §4.6)', () => {
  const ex = { line: 1, source: 'The whale rose from the sea. It was white.', target: 'A white whale rose.' };

  it('summarization: [CLS] [sMASK] " Content:" " "+source | [sop] target[:-1], all at position 1', () => {
    const input = buildSeq2seqInput(tok, ex, { format: 'summarization', sourceLength: 64, targetLength: 32 });
    const content = tok.encodeIds(' Content:');
    const source = tok.encodeIds(' ' + ex.source);
    const target = [...tok.encodeIds(' ' + ex.target), S.eop];
    expect(input.context).toEqual([S.cls, S.sMask, ...content, ...source]);
    expect(input.maskPosition).toBe(1);
    expect(input.target).toEqual(target);
    const row = buildSeq2seqRow(input, S.sop);
    const n = input.context.length;
    expect(row.sep).toBe(n);
    expect(row.inputIds.slice(n)).toEqual([S.sop, ...target.slice(0, -1)]);
    expect(row.targetIds.slice(n)).toEqual(target);
    expect(row.positionIds.slice(n).every((p) => p === 1)).toBe(true);
    expect(row.blockPositionIds.slice(n)).toEqual(target.map((_, k) => k + 1));
    expect(row.lossMask.slice(0, n).every((m) => m === 0) && row.lossMask.slice(n).every((m) => m === 1)).toBe(true);
  });

  it('cuts the source to sourceLength and the target (with its eop) to targetLength; padPartA pads as the reference', () => {
    const cut = buildSeq2seqInput(tok, ex, { format: 'summarization', sourceLength: 8, targetLength: 3 });
    expect(cut.context).toHaveLength(8);
    expect(cut.target).toEqual(tok.encodeIds(' ' + ex.target).slice(0, 3)); // eop cut off
    const padded = buildSeq2seqInput(tok, ex, { format: 'summarization', sourceLength: 40, targetLength: 32, padPartA: true });
    expect(padded.context).toHaveLength(40);
    expect(padded.context.slice(-3)).toEqual([S.pad, S.pad, S.pad]);
    expect(buildSeq2seqRow(padded, S.sop).sep).toBe(40); // the pads are Part A: attended
  });

  it('question generation: [CLS] paragraph " Question:" [MASK] " Answer: "+answer, window around the answer', () => {
    const qg = { line: 1, source: 'Ishmael went to sea on the Pequod, a whaler from Nantucket.', target: 'What ship did Ishmael sail on?', answer: 'the Pequod' };
    const input = buildSeq2seqInput(tok, qg, { format: 'question-generation', sourceLength: 64, targetLength: 16 });
    const q = tok.encodeIds(' Question:');
    const a = tok.encodeIds(' Answer: the Pequod');
    const p = tok.encodeIds(qg.source);
    expect(input.context).toEqual([S.cls, ...p, ...q, S.mask, ...a]);
    expect(input.maskPosition).toBe(1 + p.length + q.length);
    const small = buildSeq2seqInput(tok, qg, { format: 'question-generation', sourceLength: 2 + q.length + a.length + 6, targetLength: 16 });
    expect(tok.decode(small.context.slice(1, 7))).toMatch(/pe/); // the kept window holds the answer
    expect(() => buildSeq2seqInput(tok, { ...qg, answer: undefined }, { format: 'question-generation', sourceLength: 64, targetLength: 16 })).toThrow(/needs an 'answer'/);
  });

  it('data: JSONL (every bad line named) and line-aligned .source/.target', () => {
    const dir = mkdtempSync(join(tmpdir(), 's2s-'));
    writeFileSync(join(dir, 'bad.jsonl'), '{"source": "a"}\n{"target": "b"}\n{"source": "x", "target": "y"}\n');
    expect(() => readSeq2seqSplit(join(dir, 'bad.jsonl'), false)).toThrow(/2 bad lines[\s\S]*:1: field 'target'[\s\S]*:2: field 'source'/);
    writeFileSync(join(dir, 'val.source'), 'one source\ntwo source\n');
    writeFileSync(join(dir, 'val.target'), 'one\ntwo\n');
    expect(readSeq2seqSplit(join(dir, 'val.source'), false).map((e) => e.target)).toEqual(['one', 'two']);
    writeFileSync(join(dir, 'val.target'), 'one\n');
    expect(() => readSeq2seqSplit(join(dir, 'val.source'), false)).toThrow(/2 lines but .*val.target has 1/);
  });

  it('lead-sentence task and sentence splitting for ROUGE-Lsum', () => {
    expect(firstSentence('Call me Ishmael. Some years ago, never mind how long.')).toEqual({ sentence: 'Call me Ishmael.', rest: 'Some years ago, never mind how long.' });
    expect(splitSentences('One. Two! "Three?" four')).toBe('One.\nTwo!\n"Three?"\nfour');
    const para = 'It was a bright cold day in April, and the clocks were striking thirteen. ' + 'Winston Smith slipped quickly through the glass doors of Victory Mansions, though not quickly enough. '.repeat(2);
    const { train, valid } = leadSentenceExamples([Array(10).fill(para).join('\n\n')], { validEvery: 5 });
    expect(train).toHaveLength(8);
    expect(valid).toHaveLength(2);
    expect(valid[0]!.target).toBe('It was a bright cold day in April, and the clocks were striking thirteen.');
  });
});

describe('seq2seq end to end with a micro model', () => {
  it('fine-tuning with label smoothing learns the targets; beam decoding then reproduces them (ROUGE 1)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 's2s-e2e-'));
    const rows = [
      { source: 'the old man went down to the sea with his boat', target: 'old man sea' },
      { source: 'a white whale was seen by the ship at dawn', target: 'white whale ship' },
    ];
    writeSeq2seqSplits(dir, { train: rows.map((r, i) => ({ line: i + 1, ...r })), valid: rows.map((r, i) => ({ line: i + 1, ...r })) });
    const task = parseTaskDefinition({
      ...JSON.parse(readFileSync(loadTask('gutenberg-lead').source, 'utf8')),
      sourceLength: 32, targetLength: 8, numBeams: 2, maxEvalExamples: 0,
      hyperparameters: { lr: 0.02, epochs: 20, batchSize: 2, warmup: 0, labelSmoothing: 0.1, maxLength: 64, weightDecay: 0 },
    }, 'test-task');
    const train = loadSplit(task, join(dir, 'train.jsonl'));
    const valid = loadSplit(task, join(dir, 'val.jsonl'));
    const model = microModel(1, 64);
    try {
      const before = evaluateTask(model, tok, task, valid, { batchSize: 2 });
      const losses: number[] = [];
      const result = await finetune({ model, tokenizer: tok, task, train, valid, seed: 3, onStep: (m) => losses.push(m.loss) });
      expect(losses[losses.length - 1]!).toBeLessThan(losses[0]! / 3);
      const after = result.epochs[result.epochs.length - 1]!.metrics;
      expect(after.rouge1).toBe(1);
      expect(after.rougeL).toBe(1);
      expect(after.rouge1!).toBeGreaterThan(before.rouge1!);
    } finally {
      model.dispose();
    }
  });
});

describe.skipIf(!hasSharedData('corpus/gutenberg/melville-moby_dick.txt'))('a lead-sentence task from the shared Gutenberg books', () => {
  it('builds hundreds of paragraph → first-sentence pairs that the seq2seq kind reads back', () => {
    const books = readdirSync(sharedData('corpus/gutenberg')).filter((f) => f.endsWith('.txt')).map((f) => readFileSync(join(sharedData('corpus/gutenberg'), f), 'latin1'));
    const splits = leadSentenceExamples(books);
    expect(splits.train.length).toBeGreaterThan(1000);
    expect(splits.valid.length).toBeGreaterThan(100);
    const dir = mkdtempSync(join(tmpdir(), 'lead-'));
    writeSeq2seqSplits(dir, splits);
    const back = loadSplit(loadTask('gutenberg-lead'), join(dir, 'val.jsonl')) as Array<{ source: string; target: string }>;
    expect(back).toHaveLength(splits.valid.length);
    expect(back.every((e) => e.source.startsWith(e.target))).toBe(true);
  });
});
