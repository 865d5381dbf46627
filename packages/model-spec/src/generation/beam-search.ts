// The finished-hypothesis bookkeeping of beam search, as Hugging Face's BeamHypotheses (which
// GLM's seq2seq decoder copies): a hypothesis of summed log-probability s and length L scores
// s / L^lengthPenalty; at most numBeams are kept (a better one evicts the worst); without early
// stopping the search is done only when no active beam can still beat the worst kept one.

export interface Hypothesis {
  tokens: number[];
  /** Σ log p of the tokens (and of the end token when it ended with one). */
  logProb: number;
  /** logProb / length^lengthPenalty. */
  score: number;
  /** Ended with the end token (false: cut off at the token limit). */
  finished: boolean;
  /** log p of each token (the end token's last when finished). */
  tokenLogProbs: number[];
}

export class BeamHypotheses {
  private readonly kept: Hypothesis[] = [];
  private worst = Infinity;

  constructor(
    readonly numBeams: number,
    readonly lengthPenalty: number,
    readonly earlyStopping: boolean,
  ) {}

  get size(): number {
    return this.kept.length;
  }

  /** Offers a hypothesis of `length` (GLM: sop + its tokens; the end token is not counted). */
  add(h: Omit<Hypothesis, 'score'>, length: number): void {
    const score = h.logProb / Math.pow(length, this.lengthPenalty);
    if (this.kept.length < this.numBeams || score > this.worst) {
      this.kept.push({ ...h, score });
      if (this.kept.length > this.numBeams) {
        let w = 0;
        for (let i = 1; i < this.kept.length; i++) if (this.kept[i]!.score < this.kept[w]!.score) w = i;
        this.kept.splice(w, 1);
        this.worst = Math.min(...this.kept.map((k) => k.score));
      } else {
        this.worst = Math.min(score, this.worst);
      }
    }
  }

  /** HF `is_done`: full, and (early stopping, or) the best active sum cannot beat the worst kept one. */
  isDone(bestActiveLogProb: number, currentLength: number): boolean {
    if (this.kept.length < this.numBeams) return false;
    if (this.earlyStopping) return true;
    return this.worst >= bestActiveLogProb / Math.pow(currentLength, this.lengthPenalty);
  }

  /** The best-scoring hypothesis (the earliest added on ties). */
  best(): Hypothesis {
    if (this.kept.length === 0) throw new Error('BeamHypotheses.best: no hypothesis was added');
    let b = 0;
    for (let i = 1; i < this.kept.length; i++) if (this.kept[i]!.score > this.kept[b]!.score) b = i;
    return this.kept[b]!;
  }

  /** Every kept hypothesis, best first. */
  all(): Hypothesis[] {
    return [...this.kept].sort((a, b) => b.score - a.score);
  }
}
