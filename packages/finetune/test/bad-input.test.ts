// Clear errors for bad task files and bad data: naming the file, the field or line, what was expected.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { getPreset } from '@blankglm/model-spec';
import { loadBertTokenizer } from '@blankglm/tokenizer';
import { DataFileError, PreparedCloze, TaskFileError, loadClozeExamples, loadTask, readTaskFile, resolveSplits, type ClozeTask } from '../src/index.js';
import { CB_ROWS, tempDir, writeJsonl } from './helpers/micro.js';

const BASE = {
  name: 'tiny-nli', kind: 'cloze', patterns: { '0': '{hypothesis}? [MASK]. {premise}' }, shortenable: ['premise'],
  verbalizer: { entailment: ' Yes', contradiction: ' No', neutral: ' Maybe' }, metrics: ['accuracy'],
};

function taskFile(dir: string, body: object): string {
  const file = join(dir, 'task.json');
  writeFileSync(file, JSON.stringify(body));
  return file;
}

describe('bad task files', () => {
  const dir = tempDir();
  it('a pattern without the mask', () => {
    const file = taskFile(dir, { ...BASE, patterns: { '0': '{hypothesis}? {premise}' } });
    expect(() => readTaskFile(file)).toThrow(TaskFileError);
    expect(() => readTaskFile(file)).toThrow(/task\.json: patterns\.0: a pattern needs exactly one \[MASK\]/);
  });
  it('unknown kind, metric, pattern id, shortenable field, hyperparameter; no verbalizer; bad JSON', () => {
    expect(() => readTaskFile(taskFile(dir, { ...BASE, kind: 'clozy' }))).toThrow(/kind: unknown kind 'clozy'; registered kinds: .*cloze/);
    expect(() => readTaskFile(taskFile(dir, { ...BASE, metrics: ['bleu-ish'] }))).toThrow(/metrics: unknown metric 'bleu-ish'/);
    expect(() => readTaskFile(taskFile(dir, { ...BASE, patternId: 7 }))).toThrow(/patternId: no pattern '7'; the file has 0/);
    expect(() => readTaskFile(taskFile(dir, { ...BASE, shortenable: ['passage'] }))).toThrow(/shortenable: 'passage' is not a field/);
    expect(() => readTaskFile(taskFile(dir, { ...BASE, hyperparameters: { learningRate: 1 } }))).toThrow(/hyperparameters\.learningRate: unknown setting/);
    expect(() => readTaskFile(taskFile(dir, { ...BASE, verbalizer: undefined }))).toThrow(/needs a "verbalizer"/);
    writeFileSync(join(dir, 'broken.json'), '{"name": ');
    expect(() => readTaskFile(join(dir, 'broken.json'))).toThrow(/broken\.json: not valid JSON/);
    expect(() => loadTask('no-such-task', dir)).toThrow(/no built-in task of that name; built-in tasks: .*cb.*copa/);
  });
  it('a verbalizer that is not one token says which and suggests the multi-token mode', () => {
    const task = readTaskFile(taskFile(dir, { ...BASE, verbalizer: { entailment: ' Yes', contradiction: ' No', neutral: ' Perhapsish' } })) as ClozeTask;
    const env = { tokenizer: loadBertTokenizer(), config: getPreset('glm-tiny'), maxLength: 128 };
    expect(() => new PreparedCloze(task, env)).toThrow(/verbalizer of label 'neutral' \(" Perhapsish"\) is 2 tokens for this tokenizer \(perhaps ##ish\); .*"candidates": \{ "from": "verbalizer" \}/);
    // ... and the suggested mode works
    const multi = readTaskFile(taskFile(dir, { ...BASE, verbalizer: { entailment: ' Yes', contradiction: ' No', neutral: ' Perhapsish' }, candidates: { from: 'verbalizer' } })) as ClozeTask;
    const ex = loadClozeExamples(multi, writeJsonl(dir, 'cb.jsonl', CB_ROWS));
    const item = new PreparedCloze(multi, env).item(ex[2]!);
    expect(item.rows.length).toBe(3);
    expect(item.answerLengths).toEqual([2, 2, 3]);
  });
});

describe('bad data', () => {
  const dir = tempDir();
  const cb = loadTask('cb') as ClozeTask;
  it('reports every bad line of a partly bad file, by file:line and field', () => {
    const file = writeJsonl(dir, 'val.jsonl', [
      CB_ROWS[0]!,
      { premise: 'No hypothesis here.', label: 'neutral' },
      CB_ROWS[1]!,
      '{"premise": "cut short',
      { premise: 'P.', hypothesis: 'H.', label: 'maybe' },
      { premise: 'P.', hypothesis: 'H.' },
    ]);
    let err: DataFileError | null = null;
    try {
      loadClozeExamples(cb, file);
    } catch (e) {
      err = e as DataFileError;
    }
    expect(err).toBeInstanceOf(DataFileError);
    expect(err!.problems.map((p) => p.line)).toEqual([2, 4, 5, 6]);
    expect(err!.message).toMatch(/val\.jsonl: 4 bad lines/);
    expect(err!.message).toMatch(/val\.jsonl:2: missing field 'hypothesis'/);
    expect(err!.message).toMatch(/val\.jsonl:4: not valid JSON/);
    expect(err!.message).toMatch(/val\.jsonl:5: label 'maybe' is not in the verbalizer \(contradiction, entailment, neutral\)/);
    expect(err!.message).toMatch(/val\.jsonl:6: missing field 'label'/);
  });
  it('an empty split, and nested data missing its list', () => {
    writeFileSync(join(dir, 'empty.jsonl'), '\n\n');
    expect(() => loadClozeExamples(cb, join(dir, 'empty.jsonl'))).toThrow(/empty\.jsonl: the split is empty/);
    const multirc = loadTask('multirc') as ClozeTask;
    expect(() => loadClozeExamples(multirc, writeJsonl(dir, 'm.jsonl', [{ idx: 0, passage: { text: 'x' } }]))).toThrow(/m\.jsonl:1: field 'passage\.questions' is missing or not a list/);
  });
  it('data folders: SuperGLUE and FewGLUE layouts, explicit files', () => {
    const sg = tempDir();
    writeJsonl(sg, 'train.jsonl', CB_ROWS);
    writeJsonl(sg, 'val.jsonl', CB_ROWS);
    writeJsonl(sg, 'train32.jsonl', CB_ROWS);
    expect(resolveSplits({ data: sg })).toEqual({ train: join(sg, 'train.jsonl'), valid: join(sg, 'val.jsonl') });
    const few = tempDir();
    writeJsonl(few, 'train32.jsonl', CB_ROWS);
    writeJsonl(few, 'dev32.jsonl', CB_ROWS);
    expect(resolveSplits({ data: few })).toEqual({ train: join(few, 'train32.jsonl'), valid: join(few, 'dev32.jsonl') });
    expect(resolveSplits({ data: sg, valid: join(few, 'dev32.jsonl') }).valid).toBe(join(few, 'dev32.jsonl'));
    expect(() => resolveSplits({ data: join(sg, 'nope') })).toThrow(/--data .*nope: no such file or folder/);
    expect(() => resolveSplits({ data: tempDir() })).toThrow(/none of train\.jsonl/);
  });
});
