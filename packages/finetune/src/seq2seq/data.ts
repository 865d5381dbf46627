// Seq2seq data: `{source, target}` JSONL (question generation adds `answer`), or the original's
// line-aligned `<split>.source` / `<split>.target` pair (CNN/DM, XSum, Gigaword as GLM's README
// lays them out). And a small task anyone can build here: Gutenberg paragraphs → their first sentence.
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { readJsonl } from '../data/jsonl.js';
import { DataFileError, type DataProblem } from '../tasks/registry.js';
import type { Seq2seqExample } from './format.js';

export function parseSeq2seqRow(value: Record<string, unknown>, line: number, problems: string[], needAnswer: boolean): Seq2seqExample | null {
  if (typeof value.source !== 'string' || value.source.trim() === '') problems.push(`field 'source' must be a non-empty string`);
  if (typeof value.target !== 'string') problems.push(`field 'target' must be a string`);
  if (needAnswer && (typeof value.answer !== 'string' || value.answer.trim() === '')) problems.push(`field 'answer' must be a non-empty string (question generation)`);
  if (problems.length) return null;
  return { line, source: value.source as string, target: value.target as string, ...(typeof value.answer === 'string' ? { answer: value.answer } : {}) };
}

/** Reads a JSONL split, or `x.source` with its sibling `x.target`. */
export function readSeq2seqSplit(file: string, needAnswer: boolean): Seq2seqExample[] {
  if (file.endsWith('.source')) {
    const targetFile = file.slice(0, -'.source'.length) + '.target';
    if (!existsSync(targetFile)) throw new DataFileError(file, [], `${file}: expected its targets in ${targetFile} (line-aligned), which does not exist`);
    if (needAnswer) throw new DataFileError(file, [], `${file}: question generation needs an answer per example; use JSONL with source, target and answer`);
    const strip = (t: string): string[] => {
      const lines = t.split('\n');
      if (lines[lines.length - 1] === '') lines.pop();
      return lines;
    };
    const sources = strip(readFileSync(file, 'utf8'));
    const targets = strip(readFileSync(targetFile, 'utf8'));
    if (sources.length !== targets.length) throw new DataFileError(file, [], `${file} has ${sources.length} lines but ${targetFile} has ${targets.length}; they must be line-aligned`);
    const problems: DataProblem[] = [];
    const out: Seq2seqExample[] = [];
    sources.forEach((source, i) => {
      if (source.trim() === '') problems.push({ line: i + 1, message: 'empty source line' });
      else out.push({ line: i + 1, source, target: targets[i]! });
    });
    if (problems.length) throw new DataFileError(file, problems);
    if (out.length === 0) throw new DataFileError(file, [], `${file}: the split is empty`);
    return out;
  }
  return readJsonl(file, ({ value, line }, problems) => {
    const ex = parseSeq2seqRow(value, line, problems, needAnswer);
    return ex ? [ex] : [];
  });
}

/** The first sentence of a paragraph (up to `.`, `!` or `?` and whitespace) and the rest, or null. */
export function firstSentence(paragraph: string): { sentence: string; rest: string } | null {
  const m = /^(.+?[.!?]['"”’)]*)\s+(\S[\s\S]*)$/.exec(paragraph);
  if (!m) return null;
  return { sentence: m[1]!, rest: m[2]! };
}

export interface LeadSentenceOptions {
  /** Paragraphs shorter than this many words are skipped. */
  minWords?: number;
  /** Paragraphs longer than this many words are skipped. */
  maxWords?: number;
  /** Every n-th usable paragraph goes to validation (default 10). */
  validEvery?: number;
}

/**
 * A summarisation task from public-domain text: source = a paragraph (whitespace normalised),
 * target = its first sentence ("lead-1"; ROUGE of a copy of the first sentence is the ceiling,
 * a trained model should learn to copy it). Paragraphs are blank-line separated.
 */
export function leadSentenceExamples(texts: readonly string[], options: LeadSentenceOptions = {}): { train: Seq2seqExample[]; valid: Seq2seqExample[] } {
  const minWords = options.minWords ?? 25;
  const maxWords = options.maxWords ?? 120;
  const validEvery = options.validEvery ?? 10;
  const train: Seq2seqExample[] = [];
  const valid: Seq2seqExample[] = [];
  let usable = 0;
  for (const text of texts) {
    for (const para of text.replace(/\r\n?/g, '\n').split(/\n\s*\n/)) {
      const flat = para.replace(/\s+/g, ' ').trim();
      const words = flat.split(' ').length;
      if (words < minWords || words > maxWords) continue;
      const split = firstSentence(flat);
      if (!split || split.sentence.split(' ').length < 4) continue;
      usable++;
      const ex: Seq2seqExample = { line: 0, source: flat, target: split.sentence };
      (usable % validEvery === 0 ? valid : train).push(ex);
    }
  }
  train.forEach((e, i) => (e.line = i + 1));
  valid.forEach((e, i) => (e.line = i + 1));
  return { train, valid };
}

/** Writes `train.jsonl` and `val.jsonl` of examples into `dir` (each file atomically). */
export function writeSeq2seqSplits(dir: string, splits: { train: readonly Seq2seqExample[]; valid: readonly Seq2seqExample[] }): void {
  mkdirSync(dir, { recursive: true });
  for (const [name, rows] of [['train.jsonl', splits.train], ['val.jsonl', splits.valid]] as const) {
    const file = join(dir, name);
    const tmp = `${file}.tmp-${process.pid}`;
    writeFileSync(tmp, rows.map((r) => JSON.stringify({ source: r.source, target: r.target, ...(r.answer !== undefined ? { answer: r.answer } : {}) })).join('\n') + '\n');
    renameSync(tmp, file);
  }
}
