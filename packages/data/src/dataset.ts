// A deterministic, resumable stream of GLM training batches over prepared shards.
//
// Each batch: `batchSize` windows drawn as in GLM's BlockDataset (windows.ts), corrupted into
// Part A / Part B samples by @blankglm/corruption, then laid out in rows of a fixed length (one
// sample per row, padded; or several per row, packed). Two seeded streams drive it, one for
// windows and one for corruption; together with the batch counter they are the whole state, so
// `state()` taken after batch N and `restore()`d in a fresh instance yields batch N+1, N+2, …
// exactly as the uninterrupted stream would.
import { corruptBatch, packSamples, padSamples, type CorruptionOptions, type GlmSample, type PackedBatch } from '@blankglm/corruption';
import { Rng, counterUniform, type RngState } from '@blankglm/tensor';
import type { ShardSet } from './shards.js';
import { WindowSampler } from './windows.js';

/** Corruption options without the token ids, which come from the shards' tokenizer. */
export type DatasetCorruptionOptions = Omit<CorruptionOptions, 'tokens' | 'sentenceEnd'>;

export interface GlmDatasetOptions {
  /** Window length, [CLS] included (GLM: 512). */
  seqLength: number;
  /** Windows per batch. */
  batchSize: number;
  /** Length of every batch row. Part B adds a start token per span, so this must exceed seqLength (default: seqLength + seqLength/4, rounded up to a multiple of 8). */
  rowLength?: number;
  /** 'pad': one sample per row (default); 'pack': as many samples per row as fit, isolated by segment ids. */
  layout?: 'pad' | 'pack';
  /** Which documents to draw from: 'train' (default) or the held-out 'valid' documents. */
  split?: 'train' | 'valid';
  /** Share of documents held out for validation (default 0: all documents are training documents). */
  validFraction?: number;
  /** Seed of the train/valid assignment, separate from the sampling seed so that it never moves (default 0). */
  splitSeed?: number;
  /** Pack several short documents into one window, as GLM (default true). */
  sampleAcrossDocuments?: boolean;
  /**
   * GLM's short_seq_prob: the chance per batch that its windows are cut into more, shorter windows
   * (0.02 for GLM-2B/10B; default 0). Such a batch has more rows with the 'pad' layout.
   */
  shortSequenceProb?: number;
  corruption?: DatasetCorruptionOptions;
  /** The stream's randomness; the dataset forks its window and corruption streams from it. */
  rng: Rng;
}

export interface DatasetState {
  format: 'blankglm-dataset-state';
  version: 1;
  /** Batches yielded so far. */
  batches: number;
  windowRng: RngState;
  corruptionRng: RngState;
  /** What the state belongs to; restoring into a differently configured dataset is refused. */
  config: {
    split: 'train' | 'valid';
    seqLength: number;
    batchSize: number;
    rowLength: number;
    layout: 'pad' | 'pack';
    shortSequenceProb: number;
    validFraction: number;
    splitSeed: number;
    documents: number;
    tokens: number;
    vocabHash: string;
  };
}

export interface DatasetBatch {
  /** The model input: a GlmBatch of [rows, rowLength], plus where each sample went. */
  batch: PackedBatch;
  /** The corrupted samples, in row order (for display and checks). */
  samples: GlmSample[];
  /** The uncorrupted windows the samples were made from. */
  windows: Int32Array[];
  /** 0-based index of this batch in the stream. */
  index: number;
}

/**
 * Which documents are held out: document d is a validation document when a hash of (splitSeed, d)
 * falls below validFraction. Depends only on the index, never on the sampling seed, so train and
 * valid never mix across runs. When the fraction is positive but no document falls below it,
 * the single lowest-hash document is held out so that validation is never empty.
 */
export function splitDocuments(documentCount: number, validFraction: number, splitSeed = 0): { train: Uint32Array; valid: Uint32Array } {
  if (!(validFraction >= 0 && validFraction < 1)) throw new RangeError(`validFraction must be in [0, 1), got ${validFraction}`);
  const train: number[] = [];
  const valid: number[] = [];
  let lowest = -1;
  let lowestU = Infinity;
  for (let d = 0; d < documentCount; d++) {
    const u = counterUniform(splitSeed, 0x5e1ec7, d);
    if (u < lowestU) {
      lowestU = u;
      lowest = d;
    }
    (u < validFraction ? valid : train).push(d);
  }
  if (validFraction > 0 && valid.length === 0 && documentCount > 1) {
    valid.push(lowest);
    train.splice(train.indexOf(lowest), 1);
  }
  return { train: Uint32Array.from(train), valid: Uint32Array.from(valid) };
}

function roundUp(n: number, multiple: number): number {
  return Math.ceil(n / multiple) * multiple;
}

export class GlmDataset {
  readonly sampler: WindowSampler;
  readonly rowLength: number;
  private readonly corruptionOptions: CorruptionOptions;
  private windowRng: Rng;
  private corruptionRng: Rng;
  private batches = 0;
  private readonly config: DatasetState['config'];

  constructor(
    readonly shards: ShardSet,
    private readonly options: GlmDatasetOptions,
  ) {
    const { seqLength, batchSize } = options;
    if (!Number.isInteger(batchSize) || batchSize < 1) throw new RangeError(`batchSize must be a positive integer, got ${batchSize}`);
    const shortProb = options.shortSequenceProb ?? 0;
    if (!(shortProb >= 0 && shortProb <= 1)) throw new RangeError(`shortSequenceProb must be a probability in [0, 1], got ${shortProb}`);
    const split = options.split ?? 'train';
    const validFraction = options.validFraction ?? 0;
    const splitSeed = options.splitSeed ?? 0;
    const { train, valid } = splitDocuments(shards.documentCount, validFraction, splitSeed);
    const documents = split === 'train' ? train : valid;
    if (documents.length === 0) {
      throw new RangeError(
        split === 'valid'
          ? `no validation documents: pass a validFraction > 0 (the corpus has ${shards.documentCount} documents)`
          : `no training documents left: validFraction ${validFraction} holds out all ${shards.documentCount} documents`,
      );
    }
    const info = shards.manifest.tokenizer;
    const special = info.special as Record<string, number>;
    const sentenceEnd = new Uint8Array(Math.max(info.vocabSize, Number(special.paddedVocabSize ?? 0)));
    for (const id of info.sentenceEndIds) sentenceEnd[id] = 1;
    this.sampler = new WindowSampler(shards, documents, { cls: special.cls!, eos: special.eos!, sentenceEnd }, {
      seqLength,
      sampleAcrossDocuments: options.sampleAcrossDocuments ?? true,
    });
    this.rowLength = options.rowLength ?? roundUp(seqLength + Math.ceil(seqLength / 4), 8);
    if (!Number.isInteger(this.rowLength) || this.rowLength <= seqLength) {
      throw new RangeError(`rowLength ${this.rowLength} must exceed seqLength ${seqLength}: Part B adds a start token per span`);
    }
    this.corruptionOptions = {
      ...(options.corruption ?? {}),
      tokens: {
        cls: special.cls!,
        eos: special.eos!,
        pad: special.pad!,
        mask: special.mask!,
        sMask: special.sMask!,
        gMask: special.gMask!,
        sop: special.sop!,
        eop: special.eop!,
        ...(special.dBlock !== undefined ? { dBlock: special.dBlock } : {}),
      },
      sentenceEnd,
    };
    this.windowRng = options.rng.fork('windows');
    this.corruptionRng = options.rng.fork('corruption');
    this.config = {
      split,
      seqLength,
      batchSize,
      rowLength: this.rowLength,
      layout: options.layout ?? 'pad',
      shortSequenceProb: options.shortSequenceProb ?? 0,
      validFraction,
      splitSeed,
      documents: shards.documentCount,
      tokens: shards.tokenCount,
      vocabHash: info.vocabHash,
    };
  }

  /** Documents this split draws from. */
  get documentCount(): number {
    return this.sampler.documents.length;
  }

  /** The next batch. */
  next(): DatasetBatch {
    const windows: Int32Array[] = [];
    for (let i = 0; i < this.options.batchSize; i++) windows.push(this.sampler.window(this.windowRng));
    const shortProb = this.config.shortSequenceProb;
    const shortWindows = shortProb > 0 && this.windowRng.float() < shortProb ? this.sampler.splitShort(windows, this.windowRng) : undefined;
    if (shortWindows) windows.splice(0, windows.length, ...shortWindows);
    const { samples } = corruptBatch(windows, this.corruptionOptions, this.corruptionRng);
    const padId = this.corruptionOptions.tokens.pad;
    const batch = this.config.layout === 'pack' ? packSamples(samples, this.rowLength, { padId }) : padSamples(samples, this.rowLength, { padId });
    return { batch, samples, windows, index: this.batches++ };
  }

  /** `count` batches (an iterator; the stream itself never ends). */
  *take(count: number): Generator<DatasetBatch> {
    for (let i = 0; i < count; i++) yield this.next();
  }

  /** The exact position of the stream, JSON-serialisable. */
  state(): DatasetState {
    return {
      format: 'blankglm-dataset-state',
      version: 1,
      batches: this.batches,
      windowRng: this.windowRng.getState(),
      corruptionRng: this.corruptionRng.getState(),
      config: { ...this.config },
    };
  }

  /** Continues from a saved position; refuses a state saved by a differently configured dataset. */
  restore(state: DatasetState): void {
    if (state?.format !== 'blankglm-dataset-state' || state.version !== 1) {
      throw new TypeError(`not a dataset state: expected {format: 'blankglm-dataset-state', version: 1}`);
    }
    for (const [key, value] of Object.entries(this.config)) {
      const saved = (state.config as Record<string, unknown>)[key];
      if (saved !== value) throw new RangeError(`dataset state was saved with ${key} = ${JSON.stringify(saved)}, this dataset has ${JSON.stringify(value)}`);
    }
    this.windowRng = Rng.fromState(state.windowRng);
    this.corruptionRng = Rng.fromState(state.corruptionRng);
    this.batches = state.batches;
  }
}
