// ROUGE-1/2/L and ROUGE-Lsum computed in-process, following Google's `rouge_score` package (the
// scorer GLM's seq2seq code reports during training, glm-reference §4.6):
//
//   tokenise  lower-case → every run of characters outside [a-z0-9] becomes one space → split on
//             whitespace → (stemming) Porter-stem tokens longer than 3 characters → keep tokens
//             matching ^[a-z0-9]+$
//   ROUGE-N   clipped n-gram overlap: P = overlap / #candidate n-grams, R = overlap / #reference
//             n-grams, F = 2PR / (P + R) (0 when P + R = 0)
//   ROUGE-L   longest common subsequence of the two token lists: P = LCS / |candidate|,
//             R = LCS / |reference|, F as above
//   ROUGE-Lsum summary-level LCS over newline-separated sentences: for each reference sentence the
//             union of its LCS token indices with every candidate sentence; hits are counted with
//             each token's count in both summaries as a budget (rouge_score `_summary_level_lcs`)
//
// Corpus scores are means of per-example scores (what rouge_score's BootstrapAggregator reports as
// its mid value, without the resampling). Differences from the Perl ROUGE-1.5.5 (files2rouge) the
// paper's final numbers come from: no PTB tokenisation step by Stanford CoreNLP, no stop-word option,
// ROUGE-1.5.5's own Porter variant and its `-m` stemming of every token (here: only tokens longer
// than 3 characters, as rouge_score), and no jackknifing over multiple references (one reference).
import { porterStem } from './porter.js';

export interface RougeScore {
  precision: number;
  recall: number;
  fmeasure: number;
}

export type RougeType = 'rouge1' | 'rouge2' | 'rougeL' | 'rougeLsum';
export const ROUGE_TYPES: readonly RougeType[] = ['rouge1', 'rouge2', 'rougeL', 'rougeLsum'];

export interface RougeOptions {
  /** Porter-stem tokens longer than 3 characters (rouge_score `use_stemmer`; GLM's seq2seq evaluation uses it). Default true. */
  stem?: boolean;
}

/** rouge_score's default tokenisation (see the file comment). */
export function rougeTokenize(text: string, options: RougeOptions = {}): string[] {
  const stem = options.stem ?? true;
  const words = text.toLowerCase().replace(/[^a-z0-9]+/g, ' ').split(/\s+/);
  const out: string[] = [];
  for (const w of words) {
    const t = stem && w.length > 3 ? porterStem(w) : w;
    if (/^[a-z0-9]+$/.test(t)) out.push(t);
  }
  return out;
}

function fmeasure(precision: number, recall: number): number {
  return precision + recall > 0 ? (2 * precision * recall) / (precision + recall) : 0;
}

function ngramCounts(tokens: readonly string[], n: number): Map<string, number> {
  const counts = new Map<string, number>();
  for (let i = 0; i + n <= tokens.length; i++) {
    const key = tokens.slice(i, i + n).join(' ');
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return counts;
}

/** ROUGE-N of token lists. */
export function rougeN(reference: readonly string[], candidate: readonly string[], n: number): RougeScore {
  const ref = ngramCounts(reference, n);
  const cand = ngramCounts(candidate, n);
  let overlap = 0;
  for (const [gram, c] of cand) overlap += Math.min(c, ref.get(gram) ?? 0);
  const refTotal = Math.max(0, reference.length - n + 1);
  const candTotal = Math.max(0, candidate.length - n + 1);
  const precision = overlap / Math.max(candTotal, 1);
  const recall = overlap / Math.max(refTotal, 1);
  return { precision, recall, fmeasure: fmeasure(precision, recall) };
}

/** The LCS length table, [(|a| + 1) × (|b| + 1)] row-major. */
function lcsTable(a: readonly string[], b: readonly string[]): Int32Array {
  const cols = b.length + 1;
  const t = new Int32Array((a.length + 1) * cols);
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      t[i * cols + j] = a[i - 1] === b[j - 1] ? t[(i - 1) * cols + j - 1]! + 1 : Math.max(t[(i - 1) * cols + j]!, t[i * cols + j - 1]!);
    }
  }
  return t;
}

/** ROUGE-L of token lists (LCS-based F-measure). */
export function rougeL(reference: readonly string[], candidate: readonly string[]): RougeScore {
  if (reference.length === 0 || candidate.length === 0) return { precision: 0, recall: 0, fmeasure: 0 };
  const lcs = lcsTable(reference, candidate)[reference.length * (candidate.length + 1) + candidate.length]!;
  const precision = lcs / candidate.length;
  const recall = lcs / reference.length;
  return { precision, recall, fmeasure: fmeasure(precision, recall) };
}

/** Indices into `ref` of one LCS with `cand`, backtracked as rouge_score `_backtrack_norec`. */
function lcsIndices(ref: readonly string[], cand: readonly string[]): number[] {
  const t = lcsTable(ref, cand);
  const cols = cand.length + 1;
  let i = ref.length;
  let j = cand.length;
  const out: number[] = [];
  while (i > 0 && j > 0) {
    if (ref[i - 1] === cand[j - 1]) {
      out.push(i - 1);
      i--;
      j--;
    } else if (t[i * cols + j - 1]! > t[(i - 1) * cols + j]!) j--;
    else i--;
  }
  return out.reverse();
}

/** Summary-level ROUGE-L over sentences (token lists). */
export function rougeLsum(referenceSentences: readonly (readonly string[])[], candidateSentences: readonly (readonly string[])[]): RougeScore {
  const m = referenceSentences.reduce((s, x) => s + x.length, 0);
  const n = candidateSentences.reduce((s, x) => s + x.length, 0);
  if (m === 0 || n === 0) return { precision: 0, recall: 0, fmeasure: 0 };
  const refBudget = new Map<string, number>();
  const candBudget = new Map<string, number>();
  for (const s of referenceSentences) for (const t of s) refBudget.set(t, (refBudget.get(t) ?? 0) + 1);
  for (const s of candidateSentences) for (const t of s) candBudget.set(t, (candBudget.get(t) ?? 0) + 1);
  let hits = 0;
  for (const ref of referenceSentences) {
    const union = new Set<number>();
    for (const cand of candidateSentences) for (const i of lcsIndices(ref, cand)) union.add(i);
    for (const i of [...union].sort((a, b) => a - b)) {
      const t = ref[i]!;
      if ((candBudget.get(t) ?? 0) > 0 && (refBudget.get(t) ?? 0) > 0) {
        hits++;
        candBudget.set(t, candBudget.get(t)! - 1);
        refBudget.set(t, refBudget.get(t)! - 1);
      }
    }
  }
  const precision = hits / n;
  const recall = hits / m;
  return { precision, recall, fmeasure: fmeasure(precision, recall) };
}

/** rouge_score's sentence split for rougeLsum: on newlines, empty lines dropped. */
export function rougeSentences(text: string): string[] {
  return text.split('\n').filter((s) => s.length > 0);
}

/** All four ROUGE scores of one candidate against one reference (plain text). */
export function rougeScores(reference: string, candidate: string, options: RougeOptions = {}): Record<RougeType, RougeScore> {
  const ref = rougeTokenize(reference, options);
  const cand = rougeTokenize(candidate, options);
  return {
    rouge1: rougeN(ref, cand, 1),
    rouge2: rougeN(ref, cand, 2),
    rougeL: rougeL(ref, cand),
    rougeLsum: rougeLsum(
      rougeSentences(reference).map((s) => rougeTokenize(s, options)),
      rougeSentences(candidate).map((s) => rougeTokenize(s, options)),
    ),
  };
}

/** Mean of per-example scores over a corpus; `references[i]` pairs with `candidates[i]`. */
export function corpusRouge(references: readonly string[], candidates: readonly string[], options: RougeOptions = {}): Record<RougeType, RougeScore> {
  if (references.length !== candidates.length) {
    throw new RangeError(`corpusRouge: ${references.length} references but ${candidates.length} candidates; they must pair up one to one`);
  }
  if (references.length === 0) throw new RangeError('corpusRouge: no examples to score');
  const total = Object.fromEntries(ROUGE_TYPES.map((t) => [t, { precision: 0, recall: 0, fmeasure: 0 }])) as Record<RougeType, RougeScore>;
  references.forEach((ref, i) => {
    const s = rougeScores(ref, candidates[i]!, options);
    for (const t of ROUGE_TYPES) {
      total[t].precision += s[t].precision;
      total[t].recall += s[t].recall;
      total[t].fmeasure += s[t].fmeasure;
    }
  });
  for (const t of ROUGE_TYPES) {
    total[t].precision /= references.length;
    total[t].recall /= references.length;
    total[t].fmeasure /= references.length;
  }
  return total;
}
