// `blankglm demo`: the main job. Pretrains glm-tiny on the embedded Gutenberg books with GLM's
// token-level blank infilling on the fastest backend here, for a few minutes, then fills blanks in
// sentences from held-out documents with the untrained (step 0) and the trained model, beside the
// words that were there. Defaults depend on the backend actually available, so the demo takes a
// few minutes on any of them.
import { rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { openShards, splitDocuments, type ShardSet } from '@blankglm/data';
import { fillBlanks, type GlmModel, type NextTokenChooser } from '@blankglm/model-spec';
import { Rng, type GlmBatch } from '@blankglm/tensor';
import { loadBertTokenizer, type GlmTokenizer } from '@blankglm/tokenizer';
import { PretrainError, resolvePretrainConfig, type PretrainConfig } from '@blankglm/trainer';
import { CliError, type Command } from '../cli.js';
import type { BackendName } from '../backends.js';
import { BACKEND_OPTIONS, openBackend } from '../checkpoint-io.js';
import { formatCount, formatDuration } from '../progress.js';
import { resolveTrainingData, runTrainingWithProgress } from './pretrain.js';

type DemoSettings = Pick<PretrainConfig, 'steps' | 'batchSize' | 'seqLength' | 'lr' | 'warmup' | 'evalEvery' | 'evalBatches' | 'checkpointEvery'>;

/**
 * Per backend: sized for about five minutes on 2 CPU cores. The reference backend is the slow
 * oracle (~4–5 s per step of 4 × 64 tokens for glm-tiny), so its run is short and small.
 */
export const DEMO_SETTINGS: Record<BackendName, DemoSettings> = {
  ref: { steps: 50, batchSize: 4, seqLength: 64, lr: 5e-3, warmup: 0.1, evalEvery: 25, evalBatches: 2, checkpointEvery: 25 },
  wasm: { steps: 1000, batchSize: 8, seqLength: 128, lr: 3e-3, warmup: 0.05, evalEvery: 100, evalBatches: 4, checkpointEvery: 250 },
  gpu: { steps: 2000, batchSize: 16, seqLength: 256, lr: 2e-3, warmup: 0.05, evalEvery: 250, evalBatches: 8, checkpointEvery: 500 },
};

/** One blank to fill: a held-out sentence with one word masked. */
export interface DemoBlank {
  /** The sentence with the word replaced by [MASK]. */
  display: string;
  answer: string;
  /** [CLS] + the sentence's ids with the word's ids replaced by one [MASK]. */
  context: number[];
  answerIds: number[];
  maskPosition: number;
}

/**
 * Picks `count` sentences from held-out documents (never trained on) and masks one word in each:
 * sentences of 8–30 words, the word alphabetic, 3+ letters, not the first.
 */
export function heldOutBlanks(shards: ShardSet, tokenizer: GlmTokenizer, validFraction: number, count: number, seed: number): DemoBlank[] {
  const { valid } = splitDocuments(shards.documentCount, validFraction);
  const rng = new Rng(seed).fork('demo-blanks');
  const order = rng.shuffle(Array.from(valid));
  const out: DemoBlank[] = [];
  const mask = tokenizer.special.mask;
  for (const d of order) {
    if (out.length >= count) break;
    const text = tokenizer.decode(Array.from(shards.document(d)));
    const sentences = (text.match(/[^.!?]+[.!?]/g) ?? []).map((s) => s.trim()).filter((s) => {
      const words = s.split(/\s+/).length;
      return words >= 8 && words <= 30 && /^[a-z0-9 ,;'".!?-]+$/.test(s);
    });
    if (sentences.length === 0) continue;
    const sentence = sentences[rng.int(sentences.length)]!;
    const words = sentence.split(/\s+/);
    const candidates = words.map((w, i) => (i > 0 && /^[a-z]{3,}$/.test(w) ? i : -1)).filter((i) => i >= 0);
    if (candidates.length === 0) continue;
    const k = candidates[rng.int(candidates.length)]!;
    const before = tokenizer.encodeIds(words.slice(0, k).join(' '));
    const answerIds = tokenizer.encodeIds(words[k]!);
    const after = tokenizer.encodeIds(words.slice(k + 1).join(' '));
    const context = [tokenizer.special.cls, ...before, mask, ...after];
    out.push({
      display: [...words.slice(0, k), '[MASK]', ...words.slice(k + 1)].join(' '),
      answer: words[k]!,
      context,
      answerIds,
      maskPosition: 1 + before.length,
    });
  }
  return out;
}

/** The blank as a one-row GlmBatch whose targets are the true word then eop (for its log-likelihood). */
function answerBatch(blank: DemoBlank, sop: number, eop: number): GlmBatch {
  const n = blank.context.length;
  const k = blank.answerIds.length;
  const L = n + k + 1;
  const inputIds = Int32Array.from([...blank.context, sop, ...blank.answerIds]);
  const positionIds = Int32Array.from({ length: L }, (_, i) => (i < n ? i : blank.maskPosition));
  const blockPositionIds = Int32Array.from({ length: L }, (_, i) => (i < n ? 0 : i - n + 1));
  const targetIds = new Int32Array(L);
  const lossMask = new Uint8Array(L);
  [...blank.answerIds, eop].forEach((t, j) => {
    targetIds[n + j] = t;
    lossMask[n + j] = 1;
  });
  return { batchSize: 1, seqLength: L, numSegments: 1, sep: Int32Array.of(n), inputIds, positionIds, blockPositionIds, targetIds, lossMask };
}

interface FillResult {
  text: string;
  /** Mean negative log-likelihood per token of the true word (and its end), nats. */
  answerLoss: number;
  /** Rank (1 = the model's first choice) of the word's first token among the word tokens the model could put first. */
  answerRank: number;
  /** The model's three likeliest first tokens. */
  top: string[];
}

function fillAll(model: GlmModel, blanks: DemoBlank[], tokenizer: GlmTokenizer): FillResult[] {
  const { mask, sop, eop } = tokenizer.special;
  // Greedy over real words: command tokens ([PAD]/eos, [CLS], masks, sop) are never chosen, and a
  // blank gets at least one token (eop only from the second token on).
  const banned = new Set(Object.entries(tokenizer.special).filter(([k, v]) => typeof v === 'number' && k !== 'eop' && k !== 'paddedVocabSize').map(([, v]) => v as number));
  const firstTokenOrder = (logits: Float32Array): number[] => {
    const ids: number[] = [];
    for (let i = 0; i < tokenizer.vocabSize; i++) if (!banned.has(i) && i !== eop) ids.push(i);
    return ids.sort((a, b) => logits[b]! - logits[a]! || a - b);
  };
  const choose: NextTokenChooser = (logits, { step }) => {
    let best = -1;
    for (let i = 0; i < tokenizer.vocabSize && i < logits.length; i++) {
      if (banned.has(i) || (i === eop && step === 0)) continue;
      if (best < 0 || logits[i]! > logits[best]!) best = i;
    }
    if (step > 0 && eop < logits.length && logits[eop]! > logits[best]!) return eop;
    return best;
  };
  return blanks.map((b) => {
    const r = fillBlanks(model, b.context, { maskIds: [mask], sopId: sop, eopId: eop, maxTokens: 6, choose });
    const text = tokenizer.decode(r.blanks[0]!).trim() + (r.finished[0] ? '' : ' …');
    // One forward gives the true word's loss and, at the sop position, the first-token logits.
    const scored = model.forward(answerBatch(b, sop, eop), { logitsAt: [{ row: 0, position: b.context.length }] });
    const order = firstTokenOrder(scored.logits!.values);
    return {
      text,
      answerLoss: scored.loss!,
      answerRank: order.indexOf(b.answerIds[0]!) + 1,
      top: order.slice(0, 3).map((id) => tokenizer.idToToken(id) ?? String(id)),
    };
  });
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

export const demoCommand: Command = {
  name: 'demo',
  summary: 'The main job: pretrain glm-tiny on the embedded books for a few minutes, then fill blanks in held-out sentences.',
  description: `
Prepares the embedded corpus (17 public-domain Gutenberg books, ~1.8 M BERT tokens) once under
--out/data, pretrains the glm-tiny preset from scratch with GLM's token-level blank infilling on
the fastest available backend (CUDA, then WebAssembly, then the reference backend), evaluating on
held-out documents, and finally fills a [MASK] in sentences from held-out documents with the
untrained model (step 0) and the trained one, beside the original word and each model's loss on
it. Step count, batch and sequence length default by backend (${Object.entries(DEMO_SETTINGS)
    .map(([b, s]) => `${b}: ${s.steps} steps of ${s.batchSize}×${s.seqLength}`)
    .join('; ')}) so the run takes a few minutes; the flags override them.
The run (checkpoints, metrics.jsonl, loss-curve.svg, run-config.json) goes to --out/run and is
started afresh each time; continue it with 'blankglm pretrain --out <out>/run --resume auto'.

Examples:
  blankglm demo
  blankglm demo --backend ref --steps 20
  blankglm demo --fills 10 --seed 3`,
  options: {
    out: { type: 'string', short: 'o', placeholder: 'dir', default: 'runs/demo', description: 'Folder for the prepared data (data/) and the run (run/).' },
    ...BACKEND_OPTIONS,
    steps: { type: 'number', placeholder: 'n', description: 'Training steps (default: by backend).' },
    'batch-size': { type: 'number', placeholder: 'n', description: 'Windows per step (default: by backend).' },
    'seq-len': { type: 'number', placeholder: 'n', description: 'Window length in tokens (default: by backend).' },
    lr: { type: 'number', placeholder: 'x', description: 'Peak learning rate (default: by backend).' },
    seed: { type: 'number', placeholder: 'n', default: 1234, description: 'Seed of initialisation, data, dropout and the held-out sentences.' },
    fills: { type: 'number', placeholder: 'n', default: 6, description: 'Held-out sentences to fill.' },
  },
  async run({ options, io }) {
    const fills = options.fills as number;
    if (!Number.isInteger(fills) || fills < 0) throw new CliError(`--fills must be a whole number ≥ 0, got ${fills}`);
    const out = resolve(io.cwd, options.out as string);
    const data = await resolveTrainingData(io, undefined, join(out, 'data'), 'bert');
    const { backend, name } = await openBackend(options);
    try {
      const defaults = DEMO_SETTINGS[name];
      const runDir = join(out, 'run');
      const pick = (flag: string, fallback: number): number => (options[flag] as number | undefined) ?? fallback;
      let config: PretrainConfig;
      try {
        config = resolvePretrainConfig({
          ...defaults,
          preset: 'glm-tiny',
          objective: 'token',
          data: data.dir,
          outDir: runDir,
          steps: pick('steps', defaults.steps),
          batchSize: pick('batch-size', defaults.batchSize),
          seqLength: pick('seq-len', defaults.seqLength),
          lr: pick('lr', defaults.lr),
          seed: options.seed as number,
          evalEvery: Math.min(defaults.evalEvery, pick('steps', defaults.steps)),
          checkpointEvery: Math.min(defaults.checkpointEvery, pick('steps', defaults.steps)),
          keep: 2,
        });
      } catch (e) {
        if (e instanceof PretrainError) throw new CliError(e.message);
        throw e;
      }
      rmSync(runDir, { recursive: true, force: true });
      const tokenizer = loadBertTokenizer();
      const shards = await openShards(data.dir);
      const blanks = heldOutBlanks(shards, tokenizer, config.validFraction, fills, config.seed);
      let untrained: FillResult[] = [];
      let trained: FillResult[] = [];
      io.stdout.write(`backend: ${name} (${backend.device.name ?? name})${name === 'ref' ? ' — the slow reference backend; the demo is sized down for it' : ''}\n`);
      const started = performance.now();
      const result = await runTrainingWithProgress(io, {
        config,
        backend,
        backendName: name,
        json: false,
        logEvery: 1,
        hooks: {
          onStart: ({ model }) => {
            untrained = fillAll(model, blanks, tokenizer);
          },
          onFinish: (model) => {
            trained = fillAll(model, blanks, tokenizer);
          },
        },
      });
      if (result.status === 'interrupted') return 130;
      const first = result.evals[0];
      const last = result.evals.at(-1);
      io.stdout.write(
        `\nmain job: glm-tiny, ${result.step} steps of ${config.batchSize} × ${config.seqLength} tokens on the ${name} backend in ${formatDuration((performance.now() - started) / 1000)} ` +
          `(${formatCount(result.tokensPerSecond)} tokens/s)\n` +
          `  training loss ${result.firstLoss?.toFixed(3)} → ${result.lastLoss?.toFixed(3)}` +
          (first && last ? `; held-out loss ${first.loss.toFixed(3)} → ${last.loss.toFixed(3)} (perplexity ${first.perplexity.toFixed(0)} → ${last.perplexity.toFixed(0)})\n` : '\n'),
      );
      if (blanks.length > 0) {
        io.stdout.write(
          `\nfilling a blank in ${blanks.length} sentences from held-out documents (greedy, at least one word token; loss = nats per token of the original word ` +
            `under each model; rank = where the word's first token stands among ${tokenizer.vocabSize.toLocaleString('en-US')} candidates; top = the three likeliest first tokens):\n`,
        );
        let exactUntrained = 0;
        let exactTrained = 0;
        let lossUntrained = 0;
        let lossTrained = 0;
        const ranksUntrained: number[] = [];
        const ranksTrained: number[] = [];
        blanks.forEach((b, i) => {
          const u = untrained[i]!;
          const t = trained[i]!;
          if (u.text === b.answer) exactUntrained++;
          if (t.text === b.answer) exactTrained++;
          lossUntrained += u.answerLoss;
          lossTrained += t.answerLoss;
          ranksUntrained.push(u.answerRank);
          ranksTrained.push(t.answerRank);
          io.stdout.write(
            `\n${i + 1}. ${b.display}\n` +
              `   original:  ${b.answer}\n` +
              `   untrained: ${u.text || '(empty)'}   (loss ${u.answerLoss.toFixed(2)}, rank ${u.answerRank.toLocaleString('en-US')}; top: ${u.top.join(' ')})\n` +
              `   trained:   ${t.text || '(empty)'}   (loss ${t.answerLoss.toFixed(2)}, rank ${t.answerRank.toLocaleString('en-US')}; top: ${t.top.join(' ')})\n`,
          );
        });
        io.stdout.write(
          `\nexact fills: untrained ${exactUntrained}/${blanks.length}, trained ${exactTrained}/${blanks.length}; ` +
            `mean loss of the original words: untrained ${(lossUntrained / blanks.length).toFixed(2)}, trained ${(lossTrained / blanks.length).toFixed(2)} nats/token; ` +
            `median rank of their first token: untrained ${median(ranksUntrained).toLocaleString('en-US')}, trained ${median(ranksTrained).toLocaleString('en-US')}\n`,
        );
      }
      io.stdout.write(`\nrun folder: ${runDir} (loss-curve.svg, metrics.jsonl, checkpoints/)\n`);
    } finally {
      backend.dispose();
    }
  },
};
