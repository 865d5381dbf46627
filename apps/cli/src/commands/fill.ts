// `blankglm fill`: fills every blank of a prompt left to right, as GLM's generate_samples.py does:
// the prompt becomes [CLS] text (+ the end token unless it ends with a mask), each blank starts
// with <|startofpiece|> at its mask's position, earlier fills stay visible to later blanks, and a
// blank ends at <|endofpiece|>. Greedy, seeded sampling or beam search, with the key/value cache.
import { resolve } from 'node:path';
import { fillBlanks, type BlankFill, type DecodingStrategy } from '@blankglm/model-spec';
import { Rng } from '@blankglm/tensor';
import type { GlmTokenizer } from '@blankglm/tokenizer';
import { CliError, type Command, type OptionValues } from '../cli.js';
import { MODEL_OPTIONS, openModel } from '../checkpoint-io.js';
import { fillBlanksOnnx, type OnnxGlm } from '@blankglm/onnx';
import { ENGINE_NAMES, openOnnxModel, parseEngine } from '../onnx-engine.js';

const STRATEGIES = ['greedy', 'sample', 'beam'] as const;
type StrategyName = (typeof STRATEGIES)[number];

/** The model input for a prompt, as the original builds it, with where each blank is. */
export function buildFillContext(tokenizer: GlmTokenizer, text: string): { ids: number[]; maskIds: number[]; endsWithMask: boolean } {
  const s = tokenizer.special;
  const maskIds = [s.mask, s.sMask, s.gMask];
  const body = tokenizer.encodeIds(text, { parseSpecialTokens: true });
  const endsWithMask = body.length > 0 && maskIds.includes(body[body.length - 1]!);
  // generate_samples.py: [CLS] + text, and the end-of-document token unless the text ends with a mask.
  const ids = [s.cls, ...body, ...(endsWithMask ? [] : [s.eos])];
  return { ids, maskIds, endsWithMask };
}

function intOption(options: OptionValues, name: string, min: number): number {
  const v = options[name] as number;
  if (!Number.isInteger(v) || v < min) throw new CliError(`--${name} must be a whole number ≥ ${min}, got ${v}`);
  return v;
}

function strategyFromOptions(options: OptionValues): { strategy: DecodingStrategy; name: StrategyName; describe: string } {
  const beams = intOption(options, 'num-beams', 1);
  const given = options.strategy as string | undefined;
  if (given !== undefined && !(STRATEGIES as readonly string[]).includes(given)) {
    throw new CliError(`unknown --strategy '${given}'; expected ${STRATEGIES.join(', ')}`);
  }
  const name: StrategyName = (given as StrategyName | undefined) ?? (beams > 1 ? 'beam' : 'greedy');
  const samplingFlags = ['temperature', 'top-k', 'top-p'].filter((f) => options[f] !== undefined);
  if (name !== 'sample' && samplingFlags.length) throw new CliError(`--${samplingFlags[0]} only applies to --strategy sample`);
  if (name !== 'beam' && (beams > 1 || options['length-penalty'] !== undefined || options['early-stopping'])) {
    throw new CliError('--num-beams, --length-penalty and --early-stopping only apply to --strategy beam');
  }
  if (name === 'sample') {
    const seed = intOption(options, 'seed', 0);
    const temperature = (options.temperature as number | undefined) ?? 1;
    const topK = (options['top-k'] as number | undefined) ?? 0;
    const topP = (options['top-p'] as number | undefined) ?? 1;
    if (!(temperature > 0)) throw new CliError(`--temperature must be > 0, got ${temperature}`);
    if (!Number.isInteger(topK) || topK < 0) throw new CliError(`--top-k must be a whole number ≥ 0 (0 = off), got ${topK}`);
    if (!(topP > 0 && topP <= 1)) throw new CliError(`--top-p must be in (0, 1] (1 = off), got ${topP}`);
    return { strategy: { kind: 'sample', rng: new Rng(seed), temperature, topK, topP }, name, describe: `sampling (seed ${seed}, temperature ${temperature}, top-k ${topK || 'off'}, top-p ${topP === 1 ? 'off' : topP})` };
  }
  if (name === 'beam') {
    const lengthPenalty = (options['length-penalty'] as number | undefined) ?? 1;
    const earlyStopping = Boolean(options['early-stopping']);
    return {
      strategy: { kind: 'beam', numBeams: beams, lengthPenalty, earlyStopping },
      name,
      describe: `beam search (${beams} beams, length penalty ${lengthPenalty}${earlyStopping ? ', early stopping' : ''})`,
    };
  }
  return { strategy: { kind: 'greedy' }, name, describe: 'greedy' };
}

/** Joins decoded pieces: WordPiece text is space-separated, byte-level BPE text carries its own spaces. */
function joinPieces(tokenizer: GlmTokenizer, pieces: string[]): string {
  if (tokenizer.family === 'bert') return pieces.filter((p) => p.length > 0).join(' ');
  return pieces.join('');
}

export const fillCommand: Command = {
  name: 'fill',
  summary: 'Fill the blanks ([MASK], [sMASK], [gMASK]) of a prompt with a checkpoint',
  description: `
Every blank is filled left to right as GLM's own generator does: the prompt becomes
[CLS] text (plus the end-of-text token unless it ends with a mask), each blank's span starts with
<|startofpiece|> at its mask's position, later blanks see the earlier fills, and a blank ends at
<|endofpiece|> (or after --max-tokens). [MASK] asks for a word or phrase, [sMASK] for a sentence,
[gMASK] (at the end) for a long continuation — what the model was trained to put there.

Strategies: greedy (default); sample (temperature, top-k, top-p, seeded: the same --seed gives the
same text); beam (--num-beams; score = Σ log p / (1 + tokens)^length-penalty as Hugging Face's
beam scorer; each blank is searched on its own and its best span is what later blanks see).
--min-tokens and --no-repeat-ngram act on each blank's generated tokens.

Output: the text with each fill marked [[like this]], then one line per blank; --json prints
{ text, marked, blanks: [{ mask, position, tokens, token_strings, text, finished, log_prob, score }] }.

Examples:
  blankglm fill ./glm-large "The capital of France is [MASK]. It is known for [MASK]."
  blankglm fill ./glm-large "Tell me a story. [gMASK]" --strategy sample --top-p 0.9 --seed 7
  blankglm fill ./glm-large "[sMASK] Then the rain came." --num-beams 5 --no-repeat-ngram 3 --json`,
  positionals: [
    { name: 'checkpoint', required: true, description: 'A checkpoint folder (blankglm, THUDM Hugging Face, original release with --preset).' },
    { name: 'prompt', required: true, description: 'Text with at least one [MASK], [sMASK] or [gMASK].' },
  ],
  options: {
    strategy: { type: 'string', placeholder: 'name', description: `Decoding: ${STRATEGIES.join(', ')} (default greedy; beam when --num-beams > 1).` },
    'max-tokens': { type: 'number', placeholder: 'n', default: 32, description: 'Most tokens generated per blank.' },
    'min-tokens': { type: 'number', placeholder: 'n', default: 0, description: 'Fewest tokens per blank before it may end.' },
    'no-repeat-ngram': { type: 'number', placeholder: 'n', default: 0, description: 'Never repeat an n-gram within a blank (0: off).' },
    temperature: { type: 'number', placeholder: 't', description: 'Sampling temperature (default 1).' },
    'top-k': { type: 'number', placeholder: 'k', description: 'Sample among the k most likely tokens (default 0: all).' },
    'top-p': { type: 'number', placeholder: 'p', description: 'Sample within the top-p nucleus (default 1: all).' },
    seed: { type: 'number', placeholder: 'n', default: 1, description: 'Seed of the sampler.' },
    'num-beams': { type: 'number', placeholder: 'n', default: 1, description: 'Beams per blank (beam search).' },
    'length-penalty': { type: 'number', placeholder: 'x', description: 'Exponent of the length normalisation (default 1).' },
    'early-stopping': { type: 'boolean', description: 'Stop a blank once num-beams spans ended (default: no early stopping, as GLM).' },
    json: { type: 'boolean', description: 'Print one JSON object.' },
    engine: { type: 'string', placeholder: 'name', default: 'native', description: `${ENGINE_NAMES.join(' or ')}: onnx runs --onnx <model.onnx> (from 'blankglm export-onnx') with onnxruntime-node (greedy or sample).` },
    onnx: { type: 'string', placeholder: 'model.onnx', description: 'The exported model for --engine onnx.' },
    ...MODEL_OPTIONS,
  },
  async run({ positionals, options, io }) {
    const [folder, prompt] = positionals as [string, string];
    const maxTokens = intOption(options, 'max-tokens', 1);
    const minTokens = intOption(options, 'min-tokens', 0);
    const noRepeat = intOption(options, 'no-repeat-ngram', 0);
    if (minTokens > maxTokens) throw new CliError(`--min-tokens (${minTokens}) must not exceed --max-tokens (${maxTokens})`);
    const { strategy, describe } = strategyFromOptions(options);
    const engine = parseEngine(options.engine);
    if (engine === 'onnx' && !options.onnx) throw new CliError("--engine onnx needs --onnx <model.onnx> (write one with 'blankglm export-onnx <checkpoint> --out model.onnx')");
    if (engine === 'onnx' && strategy.kind === 'beam') throw new CliError('--engine onnx decodes greedily or by sampling; beam search needs --engine native');

    const opened = await openModel(folder, options, io.cwd);
    const { model, tokenizer } = opened;
    let onnx: OnnxGlm | null = null;
    try {
      if (engine === 'onnx') onnx = await openOnnxModel(resolve(io.cwd, options.onnx as string), { expectConfig: model.config });
      const engineName = onnx ? 'onnx' : opened.backendName;
      const { ids, maskIds, endsWithMask } = buildFillContext(tokenizer, prompt);
      const maskCount = ids.filter((t) => maskIds.includes(t)).length;
      if (maskCount === 0) {
        throw new CliError(
          'the prompt has no blank to fill: put [MASK] (a word or phrase), [sMASK] (a sentence) or [gMASK] (a long continuation, at the end) ' +
            `where text should go, e.g. blankglm fill ${folder} "${prompt.trim()} [gMASK]"`,
        );
      }
      const positions = model.positionRows - 1;
      if (ids.length > positions) {
        throw new CliError(
          `the prompt is ${ids.length} tokens long ([CLS] and the end token included) but this model reads at most ${positions} ` +
            `(max_sequence_length ${model.config.max_sequence_length}): shorten the prompt by ${ids.length - positions} tokens`,
        );
      }
      if (maxTokens + 1 >= model.positionRows) {
        throw new CliError(`--max-tokens ${maxTokens} is too large for this model: a blank's span can hold at most ${model.positionRows - 2} tokens (max_sequence_length ${model.config.max_sequence_length})`);
      }
      const s = tokenizer.special;
      const started = performance.now();
      const fillOptions = { maskIds, sopId: s.sop, eopId: s.eop, maxTokens, minTokens, noRepeatNgramSize: noRepeat, strategy };
      const result = onnx ? await fillBlanksOnnx(onnx, ids, fillOptions) : fillBlanks(model, ids, fillOptions);
      const seconds = (performance.now() - started) / 1000;

      // The text without [CLS] and the end token (absent when the prompt ends with a mask).
      const end = endsWithMask ? undefined : -1;
      const body = ids.slice(1, end);
      const filledBody = result.filled.slice(1, end);
      const offset = 1;
      const text = tokenizer.decode(filledBody);
      const pieces: string[] = [];
      let at = 0;
      const blanks = result.fills.map((f: BlankFill) => {
        const pos = f.maskPosition - offset;
        pieces.push(tokenizer.decode(body.slice(at, pos)));
        const fillText = tokenizer.decode(f.tokens);
        pieces.push(`[[${fillText}]]`);
        at = pos + 1;
        return {
          mask: tokenizer.idToToken(f.maskId) ?? String(f.maskId),
          position: f.maskPosition,
          tokens: f.tokens,
          token_strings: f.tokens.map((t) => tokenizer.idToToken(t) ?? String(t)),
          text: fillText,
          finished: f.finished,
          log_prob: f.logProb,
          score: f.score,
          token_log_probs: f.tokenLogProbs,
        };
      });
      pieces.push(tokenizer.decode(body.slice(at)));
      const marked = joinPieces(tokenizer, pieces);
      if (options.json) {
        io.stdout.write(
          JSON.stringify({ prompt, text, marked, strategy: describe, backend: engineName, context_tokens: ids.length, seconds, blanks }) + '\n',
        );
        return 0;
      }
      const w = (line: string): void => void io.stdout.write(line + '\n');
      w(marked);
      w('');
      blanks.forEach((b, i) => {
        const ending = b.finished ? 'ended' : `cut off at ${maxTokens} tokens`;
        w(`blank ${i + 1} ${b.mask} at token ${b.position}: "${b.text}" (${b.tokens.length} tokens, ${ending}, log p ${b.log_prob.toFixed(3)}, score ${b.score.toFixed(3)})`);
      });
      w(`${describe} on the ${engineName} ${onnx ? 'engine' : 'backend'}, ${ids.length} context tokens, ${seconds.toFixed(2)} s`);
      return 0;
    } finally {
      model.dispose();
      await onnx?.release();
    }
  },
};
