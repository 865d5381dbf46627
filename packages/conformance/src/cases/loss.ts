// Cases for the tied output projection (logits) and the fused cross-entropy with its backward.
import { defineCase, f, f32, i32, ints, normal, uniform, type ConformanceCase } from '../case.js';

interface LossSpec {
  tokens: number;
  hidden: number;
  vocab: number;
  tier: 'quick' | 'full';
}

const SPECS: LossSpec[] = [
  { tokens: 1, hidden: 1, vocab: 1, tier: 'quick' },
  { tokens: 3, hidden: 31, vocab: 5, tier: 'quick' },
  { tokens: 33, hidden: 65, vocab: 129, tier: 'quick' },
  { tokens: 17, hidden: 64, vocab: 1031, tier: 'quick' },
  // The real BERT vocabulary with a narrow hidden size: vocabulary-sized reductions stay in the quick tier.
  { tokens: 2, hidden: 16, vocab: 30592, tier: 'quick' },
  { tokens: 64, hidden: 768, vocab: 30592, tier: 'full' },
  { tokens: 48, hidden: 1024, vocab: 30592, tier: 'full' },
];

/** Hidden states and an embedding table scaled so logits have a spread of a few units, like a trained model. */
function tensorsFor(rng: Parameters<ConformanceCase['build']>[0], s: LossSpec) {
  return {
    hidden: f(normal(rng, s.tokens * s.hidden)),
    wordEmb: f(normal(rng, s.vocab * s.hidden, 2 / Math.sqrt(s.hidden))),
  };
}

export function logitsCases(): ConformanceCase[] {
  return SPECS.map((s) =>
    defineCase('logits', s.tier, { T: s.tokens, H: s.hidden, V: s.vocab }, (rng) => ({
      tensors: { ...tensorsFor(rng, s), out: f32(normal(rng, s.tokens * s.vocab)) },
      args: (t) => ({ hidden: t.hidden!, wordEmb: t.wordEmb!, out: t.out!, tokens: s.tokens, hiddenSize: s.hidden, vocab: s.vocab }),
    })),
  );
}

export function crossEntropyCases(): ConformanceCase[] {
  const out: ConformanceCase[] = [];
  for (const s of SPECS) {
    for (const labelSmoothing of [0, 0.1]) {
      out.push(
        defineCase('crossEntropy', s.tier, { T: s.tokens, H: s.hidden, V: s.vocab, labelSmoothing }, (rng) => ({
          tensors: { ...tensorsFor(rng, s), targets: i32(ints(rng, s.tokens, s.vocab)), losses: f32(normal(rng, s.tokens)), lse: f32(normal(rng, s.tokens)) },
          args: (t) => ({
            hidden: t.hidden!, wordEmb: t.wordEmb!, targets: t.targets!, losses: t.losses!, lse: t.lse!,
            tokens: s.tokens, hiddenSize: s.hidden, vocab: s.vocab, labelSmoothing,
          }),
        })),
      );
    }
  }
  return out;
}

export function crossEntropyBackwardCases(): ConformanceCase[] {
  const out: ConformanceCase[] = [];
  // With a one-token vocabulary the softmax is exactly 1 and every gradient is exactly 0: what the
  // reference adds is then the rounding of its f64 logit against the stored f32 lse, not a
  // gradient, so the backward starts at the smallest vocabulary with a real gradient (V=2).
  for (const s of SPECS.map((spec) => (spec.vocab === 1 ? { ...spec, vocab: 2 } : spec))) {
    for (const labelSmoothing of [0, 0.1]) {
      out.push(
        defineCase('crossEntropyBackward', s.tier, { T: s.tokens, H: s.hidden, V: s.vocab, labelSmoothing, weights: 'masked' }, (rng) => {
          // Loss weights as the trainer makes them: 1/count on loss-mask positions, 0 elsewhere (about a third masked out).
          const weights = uniform(rng, s.tokens, 0, 1).map((u) => (u < 0.33 && s.tokens > 1 ? 0 : 1 / s.tokens));
          return {
            tensors: {
              ...tensorsFor(rng, s),
              targets: i32(ints(rng, s.tokens, s.vocab)),
              losses: f32(new Float32Array(s.tokens)),
              lse: f32(new Float32Array(s.tokens)),
              weights: f32(weights),
              dHidden: f(normal(rng, s.tokens * s.hidden)),
              dWordEmb: f(normal(rng, s.vocab * s.hidden, 1e-3)),
            },
            prepare: [
              {
                op: 'crossEntropy',
                args: (t) => ({
                  hidden: t.hidden!, wordEmb: t.wordEmb!, targets: t.targets!, losses: t.losses!, lse: t.lse!,
                  tokens: s.tokens, hiddenSize: s.hidden, vocab: s.vocab, labelSmoothing,
                }),
              },
            ],
            args: (t) => ({
              hidden: t.hidden!, wordEmb: t.wordEmb!, targets: t.targets!, lse: t.lse!, weights: t.weights!,
              dHidden: t.dHidden!, dWordEmb: t.dWordEmb!, tokens: s.tokens, hiddenSize: s.hidden, vocab: s.vocab, labelSmoothing,
            }),
          };
        }),
      );
    }
  }
  return out;
}
