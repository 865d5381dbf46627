// Classification and extractive-QA metrics of SuperGLUE (as the original computes them:
// tasks/superglue/evaluate.py and the official ReCoRD script).

function checkLengths(a: ArrayLike<unknown>, b: ArrayLike<unknown>, what: string): void {
  if (a.length !== b.length) throw new RangeError(`${what}: ${a.length} predictions but ${b.length} gold labels`);
  if (a.length === 0) throw new RangeError(`${what}: no examples`);
}

/** Share of predictions equal to the gold label. */
export function accuracy<T>(predictions: readonly T[], golds: readonly T[]): number {
  checkLengths(predictions, golds, 'accuracy');
  let right = 0;
  for (let i = 0; i < predictions.length; i++) if (predictions[i] === golds[i]) right++;
  return right / predictions.length;
}

/** F1 of one class (0 when it has neither predictions nor gold examples… or no overlap). */
function classF1<T>(predictions: readonly T[], golds: readonly T[], positive: T): number {
  let tp = 0;
  let fp = 0;
  let fn = 0;
  for (let i = 0; i < predictions.length; i++) {
    const p = predictions[i] === positive;
    const g = golds[i] === positive;
    if (p && g) tp++;
    else if (p) fp++;
    else if (g) fn++;
  }
  return tp === 0 ? 0 : (2 * tp) / (2 * tp + fp + fn);
}

/**
 * Macro-averaged F1 (CB): the unweighted mean of per-class F1 over the classes that occur in the
 * gold labels or the predictions (scikit-learn's `f1_score(average='macro')`, as the original).
 */
export function macroF1<T>(predictions: readonly T[], golds: readonly T[]): number {
  checkLengths(predictions, golds, 'macro-F1');
  const classes = [...new Set([...golds, ...predictions])];
  return classes.reduce((s, c) => s + classF1(predictions, golds, c), 0) / classes.length;
}

/** Binary F1 of the positive class over all answer options (MultiRC's F1a). */
export function binaryF1<T>(predictions: readonly T[], golds: readonly T[], positive: T): number {
  checkLengths(predictions, golds, 'F1a');
  return classF1(predictions, golds, positive);
}

/** Share of groups (MultiRC questions) whose every prediction is right. */
export function groupExactMatch<T>(predictions: readonly T[], golds: readonly T[], groups: readonly string[]): number {
  checkLengths(predictions, golds, 'exact match');
  if (groups.length !== predictions.length) throw new RangeError(`exact match: ${groups.length} group ids for ${predictions.length} predictions`);
  const allRight = new Map<string, boolean>();
  for (let i = 0; i < predictions.length; i++) allRight.set(groups[i]!, (allRight.get(groups[i]!) ?? true) && predictions[i] === golds[i]);
  let n = 0;
  for (const v of allRight.values()) if (v) n++;
  return n / allRight.size;
}

/** SQuAD / ReCoRD answer normalisation: lower case, no punctuation, no articles, single spaces. */
export function normalizeAnswer(text: string): string {
  const lower = text.toLowerCase();
  const noPunct = lower.replace(/[!"#$%&'()*+,\-./:;<=>?@[\\\]^_`{|}~]/g, '');
  const noArticles = noPunct.replace(/\b(a|an|the)\b/g, ' ');
  return noArticles.split(/\s+/).filter((w) => w !== '').join(' ');
}

/** Token-level F1 between a prediction and one gold answer (bag of normalised tokens). */
export function tokenF1(prediction: string, gold: string): number {
  const p = normalizeAnswer(prediction).split(' ').filter((w) => w !== '');
  const g = normalizeAnswer(gold).split(' ').filter((w) => w !== '');
  const counts = new Map<string, number>();
  for (const w of g) counts.set(w, (counts.get(w) ?? 0) + 1);
  let common = 0;
  for (const w of p) {
    const c = counts.get(w) ?? 0;
    if (c > 0) {
      common++;
      counts.set(w, c - 1);
    }
  }
  if (common === 0) return 0;
  const precision = common / p.length;
  const recall = common / g.length;
  return (2 * precision * recall) / (precision + recall);
}

/** ReCoRD: mean over questions of the best token F1 / exact match against any gold answer. */
export function answerSetScores(predictions: readonly string[], goldSets: readonly (readonly string[])[]): { f1: number; em: number } {
  checkLengths(predictions, goldSets, 'token F1');
  let f1 = 0;
  let em = 0;
  for (let i = 0; i < predictions.length; i++) {
    const golds = goldSets[i]!;
    if (golds.length === 0) throw new RangeError(`token F1: question ${i} has no gold answers`);
    f1 += Math.max(...golds.map((g) => tokenF1(predictions[i]!, g)));
    em += golds.some((g) => normalizeAnswer(g) === normalizeAnswer(predictions[i]!)) ? 1 : 0;
  }
  return { f1: f1 / predictions.length, em: em / predictions.length };
}
