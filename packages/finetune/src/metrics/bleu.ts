// Corpus BLEU-4 as Moses' multi-bleu.perl computes it (the script GLM's text-infilling evaluation
// runs, glm-reference §4.7):
//
//   tokens      the text split on whitespace, nothing else (no lower-casing unless `lowercase`,
//               no punctuation splitting: tokenise both sides the same way before calling)
//   p_n         Σ_sentences clipped n-gram matches / Σ_sentences candidate n-grams, n = 1..4, where a
//               candidate n-gram's count is clipped by its largest count in any one reference
//   r, c        Σ closest reference length (ties: the shorter), Σ candidate length
//   BP          1 if c ≥ r, else exp(1 − r / c)
//   BLEU        100 · BP · exp(¼ Σ_n log p_n); uniform weights, no smoothing: any p_n = 0 gives 0

/** Whitespace tokens of a text (empty strings dropped), as Perl's `split` on whitespace. */
export function wordTokens(text: string): string[] {
  return text.split(/\s+/).filter((w) => w.length > 0);
}

export interface BleuResult {
  /** 0..100, as multi-bleu.perl prints it. */
  bleu: number;
  /** p_1..p_4 (fractions). */
  precisions: [number, number, number, number];
  /** Clipped matches and candidate n-grams per order. */
  matches: [number, number, number, number];
  totals: [number, number, number, number];
  brevityPenalty: number;
  /** c / r. */
  ratio: number;
  candidateLength: number;
  referenceLength: number;
}

export interface BleuOptions {
  /** multi-bleu.perl -lc. Default false. */
  lowercase?: boolean;
}

function counts(tokens: readonly string[], n: number): Map<string, number> {
  const m = new Map<string, number>();
  // A separator no whitespace-split token can contain.
  for (let i = 0; i + n <= tokens.length; i++) {
    const key = tokens.slice(i, i + n).join('\u0000');
    m.set(key, (m.get(key) ?? 0) + 1);
  }
  return m;
}

/**
 * Corpus BLEU-4 of candidate texts against one or more references each
 * (`references[i]` is a string or an array of strings for candidate i).
 */
export function corpusBleu(references: ReadonlyArray<string | readonly string[]>, candidates: readonly string[], options: BleuOptions = {}): BleuResult {
  if (references.length !== candidates.length) {
    throw new RangeError(`corpusBleu: ${references.length} reference entries but ${candidates.length} candidates; they must pair up one to one`);
  }
  const tok = (s: string): string[] => wordTokens(options.lowercase ? s.toLowerCase() : s);
  const matches: [number, number, number, number] = [0, 0, 0, 0];
  const totals: [number, number, number, number] = [0, 0, 0, 0];
  let c = 0;
  let r = 0;
  candidates.forEach((candidate, i) => {
    const refsRaw = references[i]!;
    const refs = (typeof refsRaw === 'string' ? [refsRaw] : refsRaw).map(tok);
    if (refs.length === 0) throw new RangeError(`corpusBleu: candidate ${i} has no reference`);
    const cand = tok(candidate);
    c += cand.length;
    let closest = refs[0]!.length;
    for (const ref of refs) {
      const diff = Math.abs(cand.length - ref.length);
      const best = Math.abs(cand.length - closest);
      if (diff < best || (diff === best && ref.length < closest)) closest = ref.length;
    }
    r += closest;
    for (let n = 1; n <= 4; n++) {
      const maxRef = new Map<string, number>();
      for (const ref of refs) for (const [g, k] of counts(ref, n)) maxRef.set(g, Math.max(maxRef.get(g) ?? 0, k));
      for (const [g, k] of counts(cand, n)) {
        totals[n - 1] += k;
        matches[n - 1] += Math.min(k, maxRef.get(g) ?? 0);
      }
    }
  });
  const precisions = matches.map((m, i) => (totals[i]! > 0 ? m / totals[i]! : 0)) as [number, number, number, number];
  const brevityPenalty = c === 0 ? 0 : c < r ? Math.exp(1 - r / c) : 1;
  const bleu = precisions.some((p) => p === 0) ? 0 : 100 * brevityPenalty * Math.exp(precisions.reduce((s, p) => s + Math.log(p), 0) / 4);
  return { bleu, precisions, matches, totals, brevityPenalty, ratio: r > 0 ? c / r : 0, candidateLength: c, referenceLength: r };
}
