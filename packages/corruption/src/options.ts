// What a caller tells the corruption functions: the special token ids, the objective mixture and
// the ablation switches. Field names follow the original collator's flags (§1.2, §1.10 of
// docs/glm-reference.md) translated into words; defaults are the original's defaults.

/**
 * The special token ids corruption needs. `GlmSpecialTokens` of @blankglm/tokenizer has these
 * field names, so a tokenizer's `special` can be passed as it is.
 */
export interface CorruptionTokens {
  /** `[CLS]` (the original's ENC): every window starts with it. */
  cls: number;
  /** End of document; for BERT-vocab models this is `[PAD]` = 0, as in the original. */
  eos: number;
  pad: number;
  /** `[MASK]`: token-level spans, and every span when task masks are off. */
  mask: number;
  /** `[sMASK]`: sentence-level spans (with task masks). */
  sMask: number;
  /** `[gMASK]`: document-level spans (with task masks). */
  gMask: number;
  /** `<|startofpiece|>`: first input of every Part-B span. */
  sop: number;
  /** `<|endofpiece|>`: last target of every Part-B span. */
  eop: number;
  /** `[dBLOCK]`: needed only with `blockMaskProb > 0`. */
  dBlock?: number;
}

/** Probabilities of the three GLM objectives; they must sum to 1. */
export interface ObjectiveMixture {
  /** The original's bert_prob: token-level blank infilling. */
  token: number;
  /** The original's gap_sentence_prob: sentence-level infilling. */
  sentence: number;
  /** The rest (the original's gpt branch): document-level generation. */
  document: number;
}

/** The `--sentinel-token` ablation: one mask and one sop id per span, in Part-B order. */
export interface SentinelTokens {
  /** maskIds[i] replaces the mask token of the i-th span in Part-B order (the original: [MASK], [MASK1], …). */
  maskIds: ArrayLike<number>;
  /** sopIds[i] starts the i-th span of Part B (the original: sop, sop1, …). */
  sopIds: ArrayLike<number>;
  /** Every Part-B token gets this position id (the original: max_seq_length). */
  positionId: number;
}

export interface CorruptionOptions {
  tokens: CorruptionTokens;
  /**
   * sentenceEnd[id] = 1 for token ids that end a sentence (the tokenizer's `sentenceEndTable()`).
   * Required when the mixture has a sentence share; ids beyond its length never end a sentence.
   */
  sentenceEnd?: Uint8Array;
  /** Default: token-level only (GLM-Base / GLM-Large). */
  mixture?: ObjectiveMixture;
  /** 'batch' (the original, default): one objective for the whole batch; 'sample': one draw per sample. */
  objectiveScope?: 'batch' | 'sample';
  /** The original's single_span_prob: with this probability, token mode with ONE Poisson span. Default 0. */
  singleSpanProb?: number;
  /** bert_ratio: token-level spans cover at least this share of the window. Default 0.15. */
  maskRatio?: number;
  /** gap_sentence_ratio: sentence-level spans cover at least this share. Default 0.15. */
  sentenceRatio?: number;
  /** λ of the Poisson span-length distribution. Default 3. */
  averageSpanLength?: number;
  /** max_block_length: span lengths are 1 .. maxSpanLength-1. Default 40. */
  maxSpanLength?: number;
  /** gpt_min_ratio: document spans cover at least this share of the shortest text. Default 0.5 (0.25 in the 2B/10B configs). */
  documentMinRatio?: number;
  /** The original's gpt_infill_prob, which is in fact the chance of the PREFIX form (see README). Default 0.5. */
  documentPrefixProb?: number;
  /** --task-mask: [sMASK]/[gMASK] for sentence/document spans (else [MASK]). Default true. */
  taskMask?: boolean;
  /** Shuffle the order of spans in Part B (default true); false = left to right (ablation "– shuffle spans"). */
  shuffleSpans?: boolean;
  /** 2D positions (default true); false = block position 1 for all of Part B (ablation "– 2D positional encoding"). */
  blockPositions?: boolean;
  /** Ablation "+ sentinel tokens". */
  sentinel?: SentinelTokens;
  /** Replace each Part-B input token of a token-level span by [dBLOCK] with this probability. Default 0. */
  blockMaskProb?: number;
  /** Baselines through the same span code: 'mlm' = BERT masked LM, 'clm' = GPT causal LM. */
  baseline?: 'mlm' | 'clm';
}

/** The options with every default filled in and every value checked. */
export interface ResolvedOptions {
  tokens: CorruptionTokens;
  sentenceEnd: Uint8Array | undefined;
  mixture: ObjectiveMixture;
  objectiveScope: 'batch' | 'sample';
  singleSpanProb: number;
  maskRatio: number;
  sentenceRatio: number;
  /** Cumulative unnormalised Poisson weights: cdf[k-1] = Σ_{j≤k} pmf(j), k = 1..maxSpanLength-1. */
  spanLengthCdf: Float64Array;
  documentMinRatio: number;
  documentPrefixProb: number;
  taskMask: boolean;
  shuffleSpans: boolean;
  blockPositions: boolean;
  sentinel: SentinelTokens | undefined;
  blockMaskProb: number;
  baseline: 'mlm' | 'clm' | undefined;
}

/** A preset: the options of one released configuration, minus the token ids. */
export type CorruptionPreset = Omit<CorruptionOptions, 'tokens' | 'sentenceEnd'>;

/**
 * The mixtures of the released GLM models (§1.2). `short_seq_prob` is not here: it changes how
 * windows are cut, which is the data pipeline's job, not sample construction's.
 */
export const corruptionPresets = {
  /** GLM-Base / GLM-Large ("Token"): token-level only, no task masks. */
  'glm-base': { mixture: { token: 1, sentence: 0, document: 0 }, taskMask: false },
  'glm-large': { mixture: { token: 1, sentence: 0, document: 0 }, taskMask: false },
  /** GLM-RoBERTa: token-level only (the pretraining script passes --task-mask). */
  'glm-roberta': { mixture: { token: 1, sentence: 0, document: 0 }, taskMask: true },
  /** GLM-Doc / 410M / 515M: token + document, 0.5 / 0 / 0.5 (the repo's default bert_prob; unconfirmed). */
  'glm-doc': { mixture: { token: 0.5, sentence: 0, document: 0.5 }, taskMask: false, documentMinRatio: 0.5 },
  /** GLM-Sent: token + sentence; the ratio is not in the repo, 0.5 / 0.5 / 0 assumed (unconfirmed). */
  'glm-sent': { mixture: { token: 0.5, sentence: 0.5, document: 0 }, taskMask: true },
  'glm-large-chinese': {
    mixture: { token: 0.4, sentence: 0.3, document: 0.3 },
    taskMask: true,
    documentMinRatio: 0.25,
    blockMaskProb: 0.1,
  },
  'glm-2b': { mixture: { token: 0.4, sentence: 0.3, document: 0.3 }, taskMask: true, documentMinRatio: 0.25, blockMaskProb: 0.1 },
  /** GLM-10B, 512-token phase. */
  'glm-10b': { mixture: { token: 0.5, sentence: 0.3, document: 0.2 }, taskMask: true, documentMinRatio: 0.25, blockMaskProb: 0.1 },
  /** GLM-10B, 1024-token "longer" phase: 0.4 / 0.3 / 0.3 plus 5% single-span batches. */
  'glm-10b-longer': {
    mixture: { token: 0.4, sentence: 0.3, document: 0.3 },
    singleSpanProb: 0.05,
    taskMask: true,
    documentMinRatio: 0.25,
    blockMaskProb: 0.1,
  },
  'glm-10b-chinese': {
    mixture: { token: 0.5, sentence: 0.3, document: 0.2 },
    taskMask: true,
    documentMinRatio: 0.25,
    blockMaskProb: 0.1,
  },
} as const satisfies Record<string, CorruptionPreset>;

export type CorruptionPresetName = keyof typeof corruptionPresets;

function checkProbability(name: string, value: number): number {
  if (!(value >= 0 && value <= 1)) throw new RangeError(`corruption option ${name} = ${value}: expected a probability in [0, 1]`);
  return value;
}

function checkTokenId(name: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) {
    throw new TypeError(`corruption option tokens.${name} = ${String(value)}: expected a non-negative integer token id`);
  }
  return value;
}

const cdfCache = new Map<string, Float64Array>();

/** Unnormalised Poisson(λ) weights for k = 1..maxSpanLength-1, accumulated (the original's block_length_distribution). */
export function spanLengthCdf(averageSpanLength: number, maxSpanLength: number): Float64Array {
  const key = `${averageSpanLength}/${maxSpanLength}`;
  let cdf = cdfCache.get(key);
  if (cdf) return cdf;
  cdf = new Float64Array(maxSpanLength - 1);
  // pmf(k) = e^-λ λ^k / k!, computed as a running product to avoid factorial overflow.
  let pmf = Math.exp(-averageSpanLength);
  let total = 0;
  for (let k = 1; k < maxSpanLength; k++) {
    pmf *= averageSpanLength / k;
    total += pmf;
    cdf[k - 1] = total;
  }
  cdfCache.set(key, cdf);
  return cdf;
}

/** Fills in defaults and checks every option, with errors naming the field. */
export function resolveOptions(options: CorruptionOptions): ResolvedOptions {
  if (!options || typeof options !== 'object') throw new TypeError('corruption options: expected an object with at least `tokens`');
  const t = options.tokens;
  if (!t || typeof t !== 'object') throw new TypeError('corruption option tokens: expected the special token ids {cls, eos, pad, mask, sMask, gMask, sop, eop}');
  for (const name of ['cls', 'eos', 'pad', 'mask', 'sMask', 'gMask', 'sop', 'eop'] as const) checkTokenId(name, t[name]);
  if (t.dBlock !== undefined) checkTokenId('dBlock', t.dBlock);

  const mixture = options.mixture ?? { token: 1, sentence: 0, document: 0 };
  checkProbability('mixture.token', mixture.token);
  checkProbability('mixture.sentence', mixture.sentence);
  checkProbability('mixture.document', mixture.document);
  const sum = mixture.token + mixture.sentence + mixture.document;
  if (Math.abs(sum - 1) > 1e-9) {
    throw new RangeError(`corruption option mixture: token + sentence + document = ${sum}, expected 1`);
  }
  if (mixture.sentence > 0 && !(options.sentenceEnd instanceof Uint8Array)) {
    throw new TypeError('corruption option sentenceEnd: a Uint8Array (the tokenizer\'s sentenceEndTable()) is required when mixture.sentence > 0');
  }
  const averageSpanLength = options.averageSpanLength ?? 3;
  if (!(averageSpanLength > 0)) throw new RangeError(`corruption option averageSpanLength = ${averageSpanLength}: expected > 0`);
  const maxSpanLength = options.maxSpanLength ?? 40;
  if (!Number.isInteger(maxSpanLength) || maxSpanLength < 2) {
    throw new RangeError(`corruption option maxSpanLength = ${maxSpanLength}: expected an integer >= 2 (lengths are 1..maxSpanLength-1)`);
  }
  const maskRatio = checkProbability('maskRatio', options.maskRatio ?? 0.15);
  const sentenceRatio = checkProbability('sentenceRatio', options.sentenceRatio ?? 0.15);
  const documentMinRatio = checkProbability('documentMinRatio', options.documentMinRatio ?? 0.5);
  const documentPrefixProb = checkProbability('documentPrefixProb', options.documentPrefixProb ?? 0.5);
  const singleSpanProb = checkProbability('singleSpanProb', options.singleSpanProb ?? 0);
  const blockMaskProb = checkProbability('blockMaskProb', options.blockMaskProb ?? 0);
  if (blockMaskProb > 0 && t.dBlock === undefined) {
    throw new TypeError(`corruption option blockMaskProb = ${blockMaskProb} needs tokens.dBlock (the [dBLOCK] id)`);
  }
  const scope = options.objectiveScope ?? 'batch';
  if (scope !== 'batch' && scope !== 'sample') throw new RangeError(`corruption option objectiveScope = '${String(scope)}': expected 'batch' or 'sample'`);
  const baseline = options.baseline;
  if (baseline !== undefined && baseline !== 'mlm' && baseline !== 'clm') {
    throw new RangeError(`corruption option baseline = '${String(baseline)}': expected 'mlm', 'clm' or undefined`);
  }
  const sentinel = options.sentinel;
  if (sentinel) {
    if (sentinel.maskIds.length === 0 || sentinel.maskIds.length !== sentinel.sopIds.length) {
      throw new RangeError(
        `corruption option sentinel: maskIds (${sentinel.maskIds.length}) and sopIds (${sentinel.sopIds.length}) must be non-empty and of equal length`,
      );
    }
    if (!Number.isInteger(sentinel.positionId) || sentinel.positionId < 0) {
      throw new RangeError(`corruption option sentinel.positionId = ${sentinel.positionId}: expected max_seq_length, a non-negative integer`);
    }
  }
  return {
    tokens: t,
    sentenceEnd: options.sentenceEnd,
    mixture,
    objectiveScope: scope,
    singleSpanProb,
    maskRatio,
    sentenceRatio,
    spanLengthCdf: spanLengthCdf(averageSpanLength, maxSpanLength),
    documentMinRatio,
    documentPrefixProb,
    taskMask: options.taskMask ?? true,
    shuffleSpans: options.shuffleSpans ?? true,
    blockPositions: options.blockPositions ?? true,
    sentinel,
    blockMaskProb,
    baseline,
  };
}
