// The `cloze` task file: patterns with one blank, and either a verbalizer (label → one token, scored
// at the sop position: glm-reference §4.2) or a candidate rule (each candidate scored by the sum of
// its token log-probs + eop). See the package README ("Add your own task") for the format.
import { TaskFileError, type TaskDefinition } from '../tasks/registry.js';
import { parsePattern, patternFields, type PatternPart, type Transform } from './pattern.js';

export interface IterateLevel {
  /** Dotted path of an array in the row (or in an outer level's alias). */
  path: string;
  /** Name the array's element gets in patterns, e.g. `question` → `{question.question}`. */
  as: string;
}

export type CandidateRule =
  /** Candidates from row fields (COPA: choice1, choice2); the label is the index of the right one. */
  | { from: 'fields'; fields: string[]; transforms: Transform[]; prefix: string }
  /** The verbalizer's texts as multi-token candidates (for verbalizers that are not one token). */
  | { from: 'verbalizer' }
  /**
   * WSC: the row's span is candidate 0; negatives are the other spans of rows with the same text and
   * pronoun, then noun phrases mined from the text. Training keeps rows whose label is true; a row is
   * predicted true iff its span wins.
   */
  | { from: 'span'; candidate: string; groupBy: string[]; text: string; exclude: string[]; prefix: string; maxNegatives: number }
  /** ReCoRD: candidates are the passage entities; the gold set is the answers' texts. */
  | { from: 'entities'; text: string; entities: string; answers: string; prefix: string; maxNegatives: number };

export type AnswerSpec =
  | { mode: 'verbalizer'; labels: string[]; verbalizer: Map<string, string> }
  | { mode: 'candidates'; rule: CandidateRule; labels: string[] | null; verbalizer: Map<string, string> | null; lengthPenalty: number; loss: 'cross-entropy' | 'mix' };

export interface ClozeTask extends TaskDefinition {
  kind: 'cloze';
  patternId: string;
  pattern: PatternPart[];
  /** Every pattern of the file, by id (all checked). */
  patterns: Map<string, PatternPart[]>;
  shortenable: Set<string>;
  iterate: IterateLevel[];
  /** Dotted path of the label (relative to the innermost scope). */
  label: string;
  /** Paths whose values identify a question (MultiRC's per-question exact match). */
  group: string[];
  /** Training copies with these two fields swapped (COPA's mirroring), label index flipped. */
  mirror: [string, string] | null;
  answer: AnswerSpec;
  /**
   * 'cloze' (default): blank filling. 'classifier': glm-reference §4.5's classifier head over the
   * [CLS] hidden state (the "– cloze finetune" ablation), input `[CLS] a [SEP] b [eos]`.
   */
  head: 'cloze' | 'classifier';
  /** The classifier head's texts a (and b): `classifierInput`, else one per field of the pattern in order. */
  classifierInput: PatternPart[][];
  /** Seed of the classifier head's initialisation (`headSeed`, default 1). */
  headSeed: number;
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

function stringList(v: unknown, file: string, field: string): string[] {
  if (v === undefined) return [];
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) throw new TaskFileError(file, field, 'must be a list of field paths (strings)');
  return v as string[];
}

function parseVerbalizer(v: unknown, file: string, field: string): Map<string, string> {
  if (!isObj(v) || Object.keys(v).length < 2) throw new TaskFileError(file, field, 'must map every label to its text, e.g. { "entailment": " Yes", "not_entailment": " No" } (at least two labels)');
  const out = new Map<string, string>();
  for (const [k, t] of Object.entries(v)) {
    if (typeof t !== 'string' || t.trim() === '') throw new TaskFileError(file, `${field}.${k}`, 'must be a non-empty text');
    out.set(k, t);
  }
  return out;
}

function parseTransforms(v: unknown, file: string, field: string): Transform[] {
  const names = stringList(v, file, field);
  if (names.length === 0) return [];
  // Reuse the pattern parser for the transform syntax.
  try {
    const parts = parsePattern(`{x|${names.join('|')}}[MASK]`);
    return (parts[0] as Extract<PatternPart, { type: 'field' }>).transforms;
  } catch (e) {
    throw new TaskFileError(file, field, (e as Error).message.replace(/^'\{x\|.*?\}': /, ''));
  }
}

function positiveInt(v: unknown, fallback: number, file: string, field: string): number {
  if (v === undefined) return fallback;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) throw new TaskFileError(file, field, `must be a whole number ≥ 1, got ${JSON.stringify(v)}`);
  return v;
}

function parseCandidates(v: unknown, file: string): CandidateRule {
  if (!isObj(v)) throw new TaskFileError(file, 'candidates', 'must be an object with "from": fields | verbalizer | span | entities');
  const prefix = v.prefix === undefined ? ' ' : v.prefix;
  if (typeof prefix !== 'string') throw new TaskFileError(file, 'candidates.prefix', 'must be a string (default " ")');
  const path = (key: string): string => {
    const p = v[key];
    if (typeof p !== 'string' || p === '') throw new TaskFileError(file, `candidates.${key}`, 'must be a field path');
    return p;
  };
  switch (v.from) {
    case 'fields': {
      const fields = stringList(v.fields, file, 'candidates.fields');
      if (fields.length < 2) throw new TaskFileError(file, 'candidates.fields', 'needs at least two fields');
      return { from: 'fields', fields, transforms: parseTransforms(v.transforms, file, 'candidates.transforms'), prefix };
    }
    case 'verbalizer':
      return { from: 'verbalizer' };
    case 'span':
      return {
        from: 'span', candidate: path('candidate'), groupBy: stringList(v.groupBy, file, 'candidates.groupBy'), text: path('text'),
        exclude: stringList(v.exclude, file, 'candidates.exclude'), prefix, maxNegatives: positiveInt(v.maxNegatives, 9, file, 'candidates.maxNegatives'),
      };
    case 'entities':
      return { from: 'entities', text: path('text'), entities: path('entities'), answers: path('answers'), prefix, maxNegatives: positiveInt(v.maxNegatives, 9, file, 'candidates.maxNegatives') };
    default:
      throw new TaskFileError(file, 'candidates.from', `must be fields, verbalizer, span or entities, got ${JSON.stringify(v.from)}`);
  }
}

/** Checks a cloze task file (its common fields are already checked). */
export function parseClozeTask(base: TaskDefinition): ClozeTask {
  const file = base.source;
  const raw = base.raw;
  if (!isObj(raw.patterns) || Object.keys(raw.patterns).length === 0) {
    throw new TaskFileError(file, 'patterns', 'must map pattern ids to pattern texts, e.g. { "0": "{premise} Question: {question}? Answer: [MASK]." }');
  }
  const patterns = new Map<string, PatternPart[]>();
  for (const [id, text] of Object.entries(raw.patterns)) {
    if (typeof text !== 'string') throw new TaskFileError(file, `patterns.${id}`, 'must be a string');
    try {
      patterns.set(id, parsePattern(text));
    } catch (e) {
      throw new TaskFileError(file, `patterns.${id}`, `${(e as Error).message}: ${JSON.stringify(text)}`);
    }
  }
  const patternId = raw.patternId === undefined ? [...patterns.keys()][0]! : String(raw.patternId);
  const pattern = patterns.get(patternId);
  if (!pattern) throw new TaskFileError(file, 'patternId', `no pattern '${patternId}'; the file has ${[...patterns.keys()].join(', ')}`);

  const data = raw.data === undefined ? {} : raw.data;
  if (!isObj(data)) throw new TaskFileError(file, 'data', 'must be an object');
  const iterate: IterateLevel[] = [];
  if (data.iterate !== undefined) {
    if (!Array.isArray(data.iterate)) throw new TaskFileError(file, 'data.iterate', 'must be a list of { "path": …, "as": … }');
    data.iterate.forEach((level, i) => {
      if (!isObj(level) || typeof level.path !== 'string' || typeof level.as !== 'string' || !/^[A-Za-z_]\w*$/.test(level.as)) {
        throw new TaskFileError(file, `data.iterate[${i}]`, 'must be { "path": "<array field>", "as": "<name>" }');
      }
      iterate.push({ path: level.path, as: level.as });
    });
  }
  const label = data.label === undefined ? 'label' : data.label;
  if (typeof label !== 'string') throw new TaskFileError(file, 'data.label', 'must be a field path');
  const group = stringList(data.group, file, 'data.group');
  const shortenable = new Set(stringList(raw.shortenable, file, 'shortenable'));
  const fields = new Set([...patterns.values()].flatMap(patternFields));
  for (const s of shortenable) if (!fields.has(s)) throw new TaskFileError(file, 'shortenable', `'${s}' is not a field any pattern uses (${[...fields].join(', ')})`);

  let mirror: [string, string] | null = null;
  if (raw.mirror !== undefined) {
    const m = stringList(raw.mirror, file, 'mirror');
    if (m.length !== 2) throw new TaskFileError(file, 'mirror', 'must name exactly two fields to swap, e.g. ["choice1", "choice2"]');
    mirror = [m[0]!, m[1]!];
  }

  const hasVerbalizer = raw.verbalizer !== undefined;
  const verbalizers = raw.verbalizers;
  let verbalizer: Map<string, string> | null = null;
  if (isObj(verbalizers) && verbalizers[patternId] !== undefined) verbalizer = parseVerbalizer(verbalizers[patternId], file, `verbalizers.${patternId}`);
  else if (hasVerbalizer) verbalizer = parseVerbalizer(raw.verbalizer, file, 'verbalizer');

  let answer: AnswerSpec;
  if (raw.candidates !== undefined) {
    const rule = parseCandidates(raw.candidates, file);
    if (rule.from === 'verbalizer' && !verbalizer) throw new TaskFileError(file, 'candidates', '"from": "verbalizer" needs a verbalizer');
    const lengthPenalty = raw.lengthPenalty === undefined ? 0 : raw.lengthPenalty;
    if (typeof lengthPenalty !== 'number' || !(lengthPenalty >= 0)) throw new TaskFileError(file, 'lengthPenalty', 'must be a number ≥ 0 (0: sum of log-probs, 1: mean)');
    const loss = raw.loss === undefined ? 'cross-entropy' : raw.loss;
    if (loss !== 'cross-entropy' && loss !== 'mix') throw new TaskFileError(file, 'loss', `must be cross-entropy or mix, got ${JSON.stringify(loss)}`);
    answer = { mode: 'candidates', rule, labels: verbalizer ? [...verbalizer.keys()] : null, verbalizer, lengthPenalty, loss };
  } else if (verbalizer) {
    answer = { mode: 'verbalizer', labels: [...verbalizer.keys()], verbalizer };
  } else {
    throw new TaskFileError(file, 'verbalizer', 'a cloze task needs a "verbalizer" (label → one token) or a "candidates" rule');
  }
  if (mirror && !(answer.mode === 'candidates' && answer.rule.from === 'fields' && answer.rule.fields.length === 2)) {
    throw new TaskFileError(file, 'mirror', 'mirroring swaps two candidate fields: it needs "candidates": { "from": "fields", "fields": [two fields] }');
  }
  const head = raw.head === undefined ? 'cloze' : raw.head;
  if (head !== 'cloze' && head !== 'classifier') throw new TaskFileError(file, 'head', `must be "cloze" or "classifier", got ${JSON.stringify(head)}`);
  const classifierInput = parseClassifierInput(raw.classifierInput, pattern, file);
  const headSeed = raw.headSeed === undefined ? 1 : raw.headSeed;
  if (typeof headSeed !== 'number' || !Number.isInteger(headSeed)) throw new TaskFileError(file, 'headSeed', `must be an integer, got ${JSON.stringify(headSeed)}`);
  return { ...base, kind: 'cloze', patternId, pattern, patterns, shortenable, iterate, label, group, mirror, answer, head, classifierInput, headSeed };
}

/** `classifierInput`: one or two texts with placeholders and no [MASK]; default: the pattern's fields in order. */
function parseClassifierInput(v: unknown, pattern: readonly PatternPart[], file: string): PatternPart[][] {
  if (v === undefined) {
    const fields = pattern.filter((p): p is Extract<PatternPart, { type: 'field' }> => p.type === 'field');
    return fields.slice(0, 2).map((f, i) => (i === 1 && fields.length > 2 ? fields.slice(1).flatMap((g, k) => (k === 0 ? [g] : [{ type: 'text', text: ' ' } as PatternPart, g])) : [f]));
  }
  if (!Array.isArray(v) || v.length < 1 || v.length > 2 || !v.every((x) => typeof x === 'string')) {
    throw new TaskFileError(file, 'classifierInput', 'must be one or two texts with {field} placeholders, e.g. ["{premise}", "{hypothesis}"]');
  }
  return v.map((text: string, i) => {
    let parts: PatternPart[];
    try {
      parts = parsePattern(text, 0);
    } catch (e) {
      throw new TaskFileError(file, `classifierInput.${i}`, `${(e as Error).message}: ${JSON.stringify(text)}`);
    }
    return parts;
  });
}
