// Cases for the embedding lookup (word + position + block position) and its scatter-add backward.
import { defineCase, f, i32, ints, intsWithRepeats, normal, type ConformanceCase, type TensorInit } from '../case.js';

interface EmbeddingSpec {
  tokens: number;
  hidden: number;
  vocab: number;
  positions: number;
  block: boolean;
  tier: 'quick' | 'full';
}

const SPECS: EmbeddingSpec[] = [
  { tokens: 1, hidden: 1, vocab: 1, positions: 1, block: false, tier: 'quick' },
  { tokens: 3, hidden: 31, vocab: 5, positions: 4, block: true, tier: 'quick' },
  { tokens: 33, hidden: 65, vocab: 129, positions: 63, block: true, tier: 'quick' },
  { tokens: 63, hidden: 33, vocab: 1000, positions: 65, block: false, tier: 'quick' },
  { tokens: 127, hidden: 64, vocab: 3, positions: 129, block: true, tier: 'quick' },
  // GLM-base (hidden 768) and GLM-large (hidden 1024) with the BERT vocabulary and 512 positions.
  { tokens: 512, hidden: 768, vocab: 30592, positions: 512, block: true, tier: 'full' },
  { tokens: 512, hidden: 1024, vocab: 30592, positions: 512, block: true, tier: 'full' },
];

/** Position ids as GLM makes them: 0..L-1 for Part A, then the mask's position repeated for Part B. */
function glmPositions(rng: Parameters<ConformanceCase['build']>[0], tokens: number, positions: number): { pos: Int32Array; block: Int32Array } {
  const pos = new Int32Array(tokens);
  const block = new Int32Array(tokens);
  const sep = tokens > 1 ? rng.intBetween(1, tokens - 1) : tokens;
  for (let i = 0; i < tokens; i++) {
    if (i < sep) pos[i] = i % positions;
    else {
      pos[i] = rng.int(Math.min(sep, positions));
      block[i] = ((i - sep) % (positions - 1)) + 1;
    }
  }
  if (positions > 1 && tokens > 1) pos[0] = positions - 1; // touch the last table row
  return { pos, block };
}

export function embeddingCases(): ConformanceCase[] {
  return SPECS.map((s) =>
    defineCase('embedding', s.tier, { T: s.tokens, H: s.hidden, V: s.vocab, P: s.positions, blockPos: s.block }, (rng) => {
      const { pos, block } = glmPositions(rng, s.tokens, s.positions);
      const tensors: Record<string, TensorInit> = {
        wordEmb: f(normal(rng, s.vocab * s.hidden, 0.02)),
        posEmb: f(normal(rng, s.positions * s.hidden, 0.02)),
        inputIds: i32(ints(rng, s.tokens, s.vocab)),
        positionIds: i32(pos),
        out: f(normal(rng, s.tokens * s.hidden)),
      };
      if (s.block) {
        tensors.blockPosEmb = f(normal(rng, s.positions * s.hidden, 0.02));
        tensors.blockPositionIds = i32(block);
      }
      return {
        tensors,
        args: (t) => ({
          wordEmb: t.wordEmb!, posEmb: t.posEmb!, blockPosEmb: s.block ? t.blockPosEmb! : null,
          inputIds: t.inputIds!, positionIds: t.positionIds!, blockPositionIds: s.block ? t.blockPositionIds! : null,
          out: t.out!, tokens: s.tokens, hiddenSize: s.hidden, vocab: s.vocab, positions: s.positions,
        }),
      };
    }),
  );
}

export function embeddingBackwardCases(): ConformanceCase[] {
  return SPECS.map((s) =>
    defineCase('embeddingBackward', s.tier, { T: s.tokens, H: s.hidden, V: s.vocab, P: s.positions, blockPos: s.block, repeats: true }, (rng) => {
      const { pos, block } = glmPositions(rng, s.tokens, s.positions);
      const tensors: Record<string, TensorInit> = {
        dOut: f(normal(rng, s.tokens * s.hidden)),
        inputIds: i32(intsWithRepeats(rng, s.tokens, s.vocab)),
        positionIds: i32(pos),
        dWordEmb: f(normal(rng, s.vocab * s.hidden, 0.1)),
        dPosEmb: f(normal(rng, s.positions * s.hidden, 0.1)),
      };
      if (s.block) {
        tensors.blockPositionIds = i32(block);
        tensors.dBlockPosEmb = f(normal(rng, s.positions * s.hidden, 0.1));
      }
      return {
        tensors,
        args: (t) => ({
          dOut: t.dOut!, inputIds: t.inputIds!, positionIds: t.positionIds!, blockPositionIds: s.block ? t.blockPositionIds! : null,
          dWordEmb: t.dWordEmb!, dPosEmb: t.dPosEmb!, dBlockPosEmb: s.block ? t.dBlockPosEmb! : null,
          tokens: s.tokens, hiddenSize: s.hidden, vocab: s.vocab, positions: s.positions,
        }),
      };
    }),
  );
}
