// Cloze examples from SuperGLUE-format JSONL: one example per row, or per element of nested arrays
// (`data.iterate`: MultiRC's questions → answers, ReCoRD's qas). Every row is checked against what
// the task reads (pattern fields, label, candidates) and every bad line is reported together.
import { Rng } from '@blankglm/tensor';
import { readJsonl } from '../data/jsonl.js';
import { applyTransforms, fieldText, getPath, patternFields, renderPattern } from './pattern.js';
import type { ClozeTask } from './task.js';

export interface ClozeExample {
  file: string;
  line: number;
  /** The row with the iterate aliases added: what patterns read. */
  scope: Record<string, unknown>;
  /** The label as text (String of the JSON value), e.g. 'entailment', 'true', '1'. */
  label: string;
  /** Verbalizer mode and candidates from the verbalizer: the label's index in the verbalizer. */
  labelIndex: number;
  /** Candidate texts (multi-token mode), prefix applied. */
  candidates: string[] | null;
  /** Index of the right candidate; -1 when none is right (a WSC row labelled false). */
  gold: number;
  /** ReCoRD: the gold answer texts (token F1 / EM are taken against this set). */
  answers: string[] | null;
  /** Question identity for per-question metrics (MultiRC EM). */
  group: string;
}

type Obj = Record<string, unknown>;

/** The scopes of one row: the row itself, or one per element of the nested arrays. */
function expandRow(task: ClozeTask, row: Obj, problems: string[]): Obj[] {
  let scopes: Obj[] = [row];
  for (const level of task.iterate) {
    const next: Obj[] = [];
    for (const scope of scopes) {
      const arr = getPath(scope, level.path);
      if (!Array.isArray(arr)) {
        problems.push(`field '${level.path}' is missing or not a list`);
        return [];
      }
      for (const element of arr) next.push({ ...scope, [level.as]: element });
    }
    scopes = next;
  }
  return scopes;
}

const WSC_DETERMINERS = new Set(['the', 'a', 'an', 'his', 'her', 'their', 'my', 'our', 'your', 'its', 'this', 'that']);
const WSC_STOP = new Set(['i', 'he', 'she', 'it', 'they', 'we', 'you', 'him', 'her', 'them', 'us', 'me', 'the', 'a', 'an', 'but', 'and', 'so', 'because', 'when', 'then', 'if', 'what', 'this', 'that', 'there', 'his', 'their', 'my', 'our', 'your', 'its']);
const stripWord = (w: string): string => w.replace(/^[^\p{L}\p{N}]+|[^\p{L}\p{N}]+$/gu, '');

/**
 * Noun-phrase-like spans of a text, for WSC negatives when no other row gives them (the original
 * mines them offline into a "WSC-negative" folder that is not part of SuperGLUE): determiner + the
 * next one or two words, and capitalised words that are not pronouns or sentence starts.
 */
export function mineNounPhrases(text: string): string[] {
  const words = text.split(/\s+/).filter((w) => w !== '');
  const out: string[] = [];
  for (let i = 0; i < words.length; i++) {
    const w = stripWord(words[i]!);
    const lower = w.toLowerCase();
    if (WSC_DETERMINERS.has(lower) && lower !== 'that' && lower !== 'this' && i + 1 < words.length) {
      const n1 = stripWord(words[i + 1]!);
      if (n1 && !WSC_STOP.has(n1.toLowerCase())) out.push(`${w} ${n1}`);
    } else if (/^\p{Lu}/u.test(w) && !WSC_STOP.has(lower) && i > 0 && !/[.!?]["']?$/.test(words[i - 1]!)) {
      // A run of capitalised words is one name ("New York", "Mr. Moncrieff"); a bare title is not.
      let j = i + 1;
      while (j < words.length && /^\p{Lu}/u.test(stripWord(words[j]!)) && !/[,;:!?]$/.test(words[j - 1]!)) j++;
      const name = words.slice(i, j).map(stripWord).join(' ');
      if (!/^(Mr|Mrs|Ms|Dr|St)$/.test(name)) out.push(name);
      i = j - 1;
    }
  }
  return out;
}

const norm = (s: string): string => s.trim().toLowerCase().replace(/\s+/g, ' ');

function dedupe(texts: string[]): string[] {
  const seen = new Set<string>();
  const out: string[] = [];
  for (const t of texts) {
    const k = norm(t);
    if (k === '' || seen.has(k)) continue;
    seen.add(k);
    out.push(t);
  }
  return out;
}

/** ReCoRD-style entity spans ({start, end} with end inclusive) as texts; null if malformed. */
function entityTexts(text: string, entities: unknown): string[] | null {
  if (!Array.isArray(entities)) return null;
  const out: string[] = [];
  for (const e of entities) {
    const s = (e as Obj | null)?.start;
    const t = (e as Obj | null)?.end;
    if (typeof s !== 'number' || typeof t !== 'number' || s < 0 || t < s || t >= text.length) return null;
    out.push(text.slice(s, t + 1));
  }
  return dedupe(out);
}

/** Reads a split of a cloze task; all bad lines are reported in one DataFileError. */
export function loadClozeExamples(task: ClozeTask, file: string): ClozeExample[] {
  const answer = task.answer;
  const fields = patternFields(task.pattern);
  const examples = readJsonl<ClozeExample>(file, ({ line, value }, problems) => {
    const scopes = expandRow(task, value, problems);
    const out: ClozeExample[] = [];
    for (const scope of scopes) {
      const before = problems.length;
      for (const f of fields) if (fieldText(scope, f) === null) problems.push(`missing field '${f}' (the pattern reads it)`);
      if (problems.length === before) {
        try {
          renderPattern(task.pattern, scope, task.shortenable);
        } catch (e) {
          problems.push((e as Error).message);
        }
      }
      const rawLabel = getPath(scope, task.label);
      let label = '';
      if (rawLabel === undefined || rawLabel === null || typeof rawLabel === 'object') problems.push(`missing field '${task.label}' (the label)`);
      else label = String(rawLabel);
      let labelIndex = -1;
      let candidates: string[] | null = null;
      let gold = -1;
      let answers: string[] | null = null;
      const labels = answer.mode === 'verbalizer' ? answer.labels : answer.labels;
      if (labels && label !== '') {
        labelIndex = labels.indexOf(label);
        if (labelIndex < 0 && (answer.mode === 'verbalizer' || answer.rule.from === 'verbalizer')) {
          problems.push(`label '${label}' is not in the verbalizer (${labels.join(', ')})`);
        }
      }
      if (answer.mode === 'verbalizer') gold = labelIndex;
      else {
        const rule = answer.rule;
        if (rule.from === 'verbalizer') {
          candidates = [...answer.verbalizer!.values()];
          gold = labelIndex;
        } else if (rule.from === 'fields') {
          candidates = [];
          for (const f of rule.fields) {
            const v = fieldText(scope, f);
            if (v === null) problems.push(`missing field '${f}' (a candidate)`);
            else candidates.push(rule.prefix + applyTransforms(v, rule.transforms, scope));
          }
          const idx = Number(label);
          if (label !== '' && !(Number.isInteger(idx) && idx >= 0 && idx < rule.fields.length)) {
            problems.push(`label '${label}' must be the index of the right candidate (0..${rule.fields.length - 1})`);
          }
          gold = idx;
        } else if (rule.from === 'span') {
          const span = fieldText(scope, rule.candidate);
          if (span === null) problems.push(`missing field '${rule.candidate}' (the candidate span)`);
          if (fieldText(scope, rule.text) === null) problems.push(`missing field '${rule.text}'`);
          if (label !== '' && label !== 'true' && label !== 'false') problems.push(`label '${label}' must be true or false`);
          candidates = span === null ? null : [span];
          gold = label === 'true' ? 0 : -1;
        } else {
          const text = fieldText(scope, rule.text);
          const ents = text === null ? null : entityTexts(text, getPath(scope, rule.entities));
          if (text === null) problems.push(`missing field '${rule.text}'`);
          else if (!ents || ents.length === 0) problems.push(`field '${rule.entities}' must be a non-empty list of { start, end } spans inside '${rule.text}'`);
          const rawAnswers = getPath(scope, rule.answers);
          if (!Array.isArray(rawAnswers) || rawAnswers.length === 0 || !rawAnswers.every((a) => typeof (a as Obj | null)?.text === 'string')) {
            problems.push(`field '${rule.answers}' must be a non-empty list of { text } answers`);
          } else {
            answers = dedupe(rawAnswers.map((a) => (a as { text: string }).text));
          }
          candidates = ents;
          gold = -1;
        }
      }
      if (problems.length > before) continue;
      const group = task.group.map((g) => JSON.stringify(getPath(scope, g) ?? null)).join('|') || `${line}`;
      out.push({ file, line, scope, label, labelIndex, candidates, gold, answers, group });
    }
    return out;
  });
  if (answer.mode === 'candidates' && answer.rule.from === 'span') addSpanNegatives(examples, answer.rule);
  return examples;
}

/** WSC: each example's candidates = its span, then the other spans of its group, then mined phrases. */
function addSpanNegatives(examples: ClozeExample[], rule: Extract<ClozeTask['answer'], { mode: 'candidates' }>['rule'] & { from: 'span' }): void {
  const groups = new Map<string, string[]>();
  const keyOf = (ex: ClozeExample): string => rule.groupBy.map((g) => JSON.stringify(getPath(ex.scope, g) ?? null)).join('|');
  for (const ex of examples) {
    const k = keyOf(ex);
    if (!groups.has(k)) groups.set(k, []);
    groups.get(k)!.push(fieldText(ex.scope, rule.candidate)!);
  }
  for (const ex of examples) {
    const span = fieldText(ex.scope, rule.candidate)!;
    const excluded = new Set([norm(span), ...rule.exclude.map((p) => norm(fieldText(ex.scope, p) ?? ''))]);
    const spanWords = new Set(norm(span).split(' '));
    const fromGroup = groups.get(keyOf(ex))!.filter((s) => !excluded.has(norm(s)));
    // Mined phrases that share no word with the span (its own words are not negatives).
    const mined = mineNounPhrases(fieldText(ex.scope, rule.text)!).filter((p) => !excluded.has(norm(p)) && !norm(p).split(' ').some((w) => spanWords.has(w) && !WSC_DETERMINERS.has(w)));
    const negatives = dedupe([...fromGroup, ...mined]).filter((s) => !excluded.has(norm(s))).slice(0, rule.maxNegatives);
    ex.candidates = [span, ...negatives].map((c) => rule.prefix + c);
  }
}

/**
 * What training iterates over: COPA-style mirrored copies; WSC rows labelled true that have a
 * negative; ReCoRD one example per gold answer with up to `maxNegatives` other entities (seeded by
 * the example's line, so the same every run).
 */
export function clozeTrainingExamples(task: ClozeTask, examples: readonly ClozeExample[]): ClozeExample[] {
  const answer = task.answer;
  if (answer.mode === 'verbalizer') return [...examples];
  const rule = answer.rule;
  if (rule.from === 'fields') {
    if (!task.mirror) return [...examples];
    const [a, b] = task.mirror;
    const out: ClozeExample[] = [];
    for (const ex of examples) {
      out.push(ex);
      const scope = { ...ex.scope, [a]: getPath(ex.scope, b), [b]: getPath(ex.scope, a) };
      out.push({ ...ex, scope, candidates: [...ex.candidates!].reverse(), gold: ex.candidates!.length - 1 - ex.gold, label: String(ex.candidates!.length - 1 - ex.gold) });
    }
    return out;
  }
  if (rule.from === 'span') return examples.filter((ex) => ex.gold === 0 && ex.candidates!.length > 1);
  if (rule.from === 'entities') {
    const out: ClozeExample[] = [];
    examples.forEach((ex, i) => {
      const golds = new Set(ex.answers!.map(norm));
      const negatives = ex.candidates!.filter((c) => !golds.has(norm(c)));
      const rng = new Rng(0x7ec0 + ex.line * 1009 + i);
      for (const answerText of ex.answers!) {
        const pool = [...negatives];
        rng.shuffle(pool);
        const candidates = [answerText, ...pool.slice(0, rule.maxNegatives)].map((c) => rule.prefix + c);
        out.push({ ...ex, candidates, gold: 0 });
      }
    });
    return out;
  }
  return examples.filter((ex) => ex.gold >= 0);
}

/** Candidates of an evaluation example with the rule's prefix (ReCoRD entities get it here). */
export function evalCandidates(task: ClozeTask, ex: ClozeExample): string[] {
  const answer = task.answer;
  if (answer.mode === 'candidates' && answer.rule.from === 'entities') return ex.candidates!.map((c) => (answer.rule as { prefix: string }).prefix + c);
  return ex.candidates!;
}
