// `blankglm corrupt`: shows what GLM's blank-infilling objective does to a text — Part A and
// Part B, both position rows, targets, loss mask and the attention mask — or prints the samples
// as JSON lines for other tools.
import { resolve } from 'node:path';
import { Rng, drawAttentionMask, glmKeyRanges } from '@blankglm/tensor';
import {
  corruptSample,
  corruptionPresets,
  padSamples,
  type CorruptionOptions,
  type CorruptionPresetName,
  type GlmSample,
} from '@blankglm/corruption';
import { loadBertTokenizer, loadGpt2Tokenizer, loadTokenizer, type GlmTokenizer } from '@blankglm/tokenizer';
import { CliError, type CliIO, type Command, type OptionValues } from '../cli.js';

const MODES = ['token', 'sentence', 'document', 'mixed'] as const;
type Mode = (typeof MODES)[number];

/** Longest sample whose attention mask is drawn (one character per key, one line per query). */
const MAX_PICTURE = 160;

function loadTokenizerFromOptions(options: OptionValues, cwd: string): GlmTokenizer {
  const tokenizer = options.tokenizer as string | undefined;
  const vocab = options.vocab as string | undefined;
  const merges = options.merges as string | undefined;
  try {
    if (tokenizer === 'bert' || tokenizer === 'gpt2') {
      if (vocab || merges) throw new CliError(`--tokenizer ${tokenizer} names an embedded tokenizer; do not combine it with --vocab/--merges`);
      return tokenizer === 'bert' ? loadBertTokenizer() : loadGpt2Tokenizer();
    }
    if (tokenizer) {
      if (vocab || merges) throw new CliError('give either --tokenizer <tokenizer.json> or --vocab/--merges, not both');
      return loadTokenizer({ tokenizerJson: resolve(cwd, tokenizer) });
    }
    if (merges && !vocab) throw new CliError('--merges needs --vocab (a GPT-2 vocab.json)');
    return loadTokenizer({
      ...(vocab ? { vocab: resolve(cwd, vocab) } : {}),
      ...(merges ? { merges: resolve(cwd, merges) } : {}),
    });
  } catch (e) {
    if (e instanceof CliError) throw e;
    throw new CliError(`cannot load the tokenizer: ${(e as Error).message}`);
  }
}

async function readStdin(io: CliIO): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of io.stdin) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer));
  return Buffer.concat(chunks).toString('utf8');
}

function corruptionOptions(mode: Mode, presetName: string, tok: GlmTokenizer, options: OptionValues): CorruptionOptions {
  const special = tok.special;
  const base: CorruptionOptions = { tokens: special, sentenceEnd: tok.sentenceEndTable(), shuffleSpans: !options['no-shuffle'] };
  if (mode === 'mixed') {
    if (!(presetName in corruptionPresets)) {
      throw new CliError(`unknown --preset '${presetName}'; expected one of: ${Object.keys(corruptionPresets).join(', ')}`);
    }
    const preset = corruptionPresets[presetName as CorruptionPresetName];
    // [dBLOCK] exists only in GPT-2-family pretraining vocabularies; without it, no Part-B corruption.
    const blockMaskProb = special.dBlock === undefined ? 0 : ('blockMaskProb' in preset ? preset.blockMaskProb : 0);
    return { ...base, ...preset, blockMaskProb, objectiveScope: 'sample' };
  }
  const mixture = { token: mode === 'token' ? 1 : 0, sentence: mode === 'sentence' ? 1 : 0, document: mode === 'document' ? 1 : 0 };
  return { ...base, mixture };
}

function tokenText(tok: GlmTokenizer, id: number): string {
  return tok.idToToken(id) ?? `<${id}>`;
}

function describeSample(sample: GlmSample, tok: GlmTokenizer, index: number, count: number): string {
  const { inputIds, targetIds, lossMask, positionIds, blockPositionIds, sep } = sample;
  const L = inputIds.length;
  const show = (ids: ArrayLike<number>, from: number, to: number): string =>
    Array.from({ length: to - from }, (_, k) => tokenText(tok, ids[from + k]!)).join(' ');
  const lines: string[] = [];
  lines.push(`sample ${index + 1}/${count}: objective ${sample.objective}, ${L} tokens, Part A ${sep} (sep = ${sep}), Part B ${L - sep}`);
  lines.push(`Part A: ${show(inputIds, 0, sep)}`);
  const partB = sample.spans
    .filter((s) => s.partBStart >= sep)
    .map((s) => {
      const end = s.partBStart + (sample.objective === 'document-prefix' ? s.end - s.start : s.end - s.start + 1);
      return show(inputIds, s.partBStart, end);
    });
  lines.push(`Part B: ${partB.length ? partB.join(' | ') : '(none)'}`);
  lines.push('spans (in Part-B order):');
  sample.spans.forEach((s, k) => {
    lines.push(
      `  ${k + 1}. text[${s.start}, ${s.end}) "${tok.decode(Array.from(targetIds.subarray(s.partBStart, s.partBStart + (s.end - s.start))))}"` +
        `  mask at ${s.maskIndex}, Part B from ${s.partBStart}`,
    );
  });
  const width = Math.min(24, Math.max(6, ...Array.from(inputIds, (id) => tokenText(tok, id).length)));
  lines.push('');
  lines.push(`  ${'idx'.padStart(4)}  ${'input'.padEnd(width)}  ${'target'.padEnd(width)}  loss  pos  block`);
  for (let i = 0; i < L; i++) {
    if (i === sep) lines.push(`  ${'-'.repeat(4 + 2 + width + 2 + width + 18)}  (sep)`);
    lines.push(
      `  ${String(i).padStart(4)}  ${tokenText(tok, inputIds[i]!).padEnd(width)}  ${tokenText(tok, targetIds[i]!).padEnd(width)}  ` +
        `${String(lossMask[i]).padStart(4)}  ${String(positionIds[i]).padStart(3)}  ${String(blockPositionIds[i]).padStart(5)}`,
    );
  }
  lines.push('');
  if (L <= MAX_PICTURE) {
    lines.push("attention mask (row = query, column = key, 'x' = attends):");
    lines.push(drawAttentionMask(glmKeyRanges(padSamples([sample])), L));
  } else {
    lines.push(`attention mask: not drawn for ${L} tokens (at most ${MAX_PICTURE}); queries < ${sep} see keys [0, ${sep}), query i ≥ ${sep} sees [0, i].`);
  }
  return lines.join('\n') + '\n';
}

function sampleJson(sample: GlmSample, tok: GlmTokenizer): string {
  return JSON.stringify({
    objective: sample.objective,
    input_ids: Array.from(sample.inputIds),
    input_tokens: Array.from(sample.inputIds, (id) => tokenText(tok, id)),
    position_ids: [Array.from(sample.positionIds), Array.from(sample.blockPositionIds)],
    target_ids: Array.from(sample.targetIds),
    loss_mask: Array.from(sample.lossMask),
    sep: sample.sep,
    spans: sample.spans.map((s) => ({ start: s.start, end: s.end, mask_index: s.maskIndex, part_b_start: s.partBStart })),
  });
}

export const corruptCommand: Command = {
  name: 'corrupt',
  summary: "Show what GLM's blank-infilling objective does to a text.",
  description: `
Tokenizes the text (the arguments, or stdin when there are none), frames it as a GLM training
window ([CLS] text eos), corrupts it with the chosen objective and prints Part A and Part B, the
two position rows, the targets, the loss mask and a picture of the attention mask.

  blankglm corrupt "The cat sat on the mat. It was happy."
  blankglm corrupt --mode sentence --count 3 --seed 7 < story.txt
  blankglm corrupt --mode document --json "Hello there, world."
`,
  positionals: [{ name: 'text', description: 'The text to corrupt (default: read stdin).', variadic: true }],
  options: {
    mode: { type: 'string', placeholder: MODES.join('|'), description: 'Objective: token spans, sentences, document, or a preset mixture.', default: 'token' },
    preset: {
      type: 'string',
      placeholder: 'name',
      description: `Mixture for --mode mixed: ${Object.keys(corruptionPresets).join(', ')}.`,
      default: 'glm-10b',
    },
    seed: { type: 'number', description: 'Random seed.', default: 0 },
    count: { type: 'number', description: 'How many samples to draw.', default: 1 },
    json: { type: 'boolean', description: 'Print one JSON object per sample instead of the tables.' },
    'no-shuffle': { type: 'boolean', description: 'Predict spans left to right (ablation).' },
    tokenizer: {
      type: 'string',
      placeholder: 'bert|gpt2|file',
      description: "Tokenizer: 'bert' (embedded BERT uncased, default), 'gpt2' (embedded GPT-2 BPE), or a tokenizer.json file.",
    },
    vocab: { type: 'string', placeholder: 'file', description: 'A WordPiece vocab.txt, or a GPT-2 vocab.json (with --merges).' },
    merges: { type: 'string', placeholder: 'file', description: 'GPT-2 merges.txt (with --vocab).' },
  },
  async run({ positionals, options, io }) {
    const mode = options.mode as string;
    if (!(MODES as readonly string[]).includes(mode)) throw new CliError(`unknown --mode '${mode}'; expected one of: ${MODES.join(', ')}`);
    const count = options.count as number;
    if (!Number.isInteger(count) || count < 1 || count > 10000) throw new CliError(`--count must be an integer in 1..10000, got ${count}`);
    const seed = options.seed as number;
    if (!Number.isSafeInteger(seed)) throw new CliError(`--seed must be an integer, got ${seed}`);

    const text = positionals.length > 0 ? positionals.join(' ') : await readStdin(io);
    if (text.trim() === '') throw new CliError('empty text: give the text as arguments or on stdin');
    const tok = loadTokenizerFromOptions(options, io.cwd);
    const ids = tok.encodeIds(text);
    if (ids.length === 0) throw new CliError('the text has no tokens after tokenization');
    const window = Int32Array.from([tok.special.cls, ...ids, tok.special.eos]);
    const corruption = corruptionOptions(mode as Mode, options.preset as string, tok, options);

    const rng = new Rng(seed);
    for (let k = 0; k < count; k++) {
      let sample: GlmSample;
      try {
        sample = corruptSample(window, corruption, rng);
      } catch (e) {
        throw new CliError(`cannot corrupt this text with --mode ${mode} (${ids.length} tokens): ${(e as Error).message}`);
      }
      io.stdout.write(options.json ? sampleJson(sample, tok) + '\n' : describeSample(sample, tok, k, count) + (k + 1 < count ? '\n' : ''));
    }
  },
};
