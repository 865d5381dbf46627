// Incremental decoding with a real key/value cache. The original GLM caches each layer's *input
// hidden states* and re-projects K and V of the whole prefix at every step (glm-reference §2.1,
// §7); here every layer keeps K and V of each processed token, so a step projects only the new
// tokens.
//
// Layout per layer: one buffer [B, capacity, 3H] holding the cached tokens' whole QKV rows (the Q
// thirds go unused), so appending n tokens of a row is one copy of n·3H elements from the QKV
// projection instead of 2n row copies; row b's token t sits at (b·capacity + t)·3H. The attention
// op reads K and V as strided views of it (offsets H and 2H, rowStride 3H, batchStride
// capacity·3H), with `keys` = tokens cached so far. Rows may be left-padded: row b's real tokens start at
// `rowStart[b]`, and every query of that row sees keys from rowStart[b] on:
//
//   cache index →   pad pad A A A | g1 g2 g3        (A: context = Part A, g: generated, Part B)
//   prefill A          .   .  x x x |  .  .  .      Part A: bidirectional among itself
//   decode g1          .   .  x x x |  x  .  .      generated tokens: all of Part A + earlier
//   decode g2          .   .  x x x |  x  x  .      generated tokens, causally
import { runAll, type Backend, type OpArgs, type OpCall, type OpName, type Tensor } from '@blankglm/tensor';
import { BufferGroup } from '../model/buffers.js';
import { NO_DROPOUT } from '../model/dropout.js';
import type { GlmModel } from '../model/glm-model.js';

export interface CacheOptions {
  /** Rows decoded together (beams, or independent prompts). */
  batchSize: number;
  /** Tokens per row the cache can hold (context + every token to be generated). */
  capacity: number;
}

/** Tokens for a prefill: B rows of equal length n (shorter contexts left-padded). */
export interface PrefillInput {
  /** [B, n] token ids. */
  inputIds: ArrayLike<number>;
  /** [B, n] first position row (Part A: 0, 1, 2, …). */
  positionIds: ArrayLike<number>;
  /** [B, n] block positions (0 in Part A). */
  blockPositionIds: ArrayLike<number>;
  /** [B] index of each row's first real token; earlier ones are padding, never attended. Default 0. */
  rowStart?: ArrayLike<number>;
}

/** Per-row values for one decode step: one number for all rows, or one per row. */
export type PerRow = number | ArrayLike<number>;

interface LayerCache {
  qkv: Tensor; // [B, capacity, 3H]: K at offset H, V at 2H of each row
}

export class KvCache {
  readonly model: GlmModel;
  readonly capacity: number;
  private rows: number;
  private cached = 0;
  private starts: Int32Array;
  private layers: LayerCache[] = [];
  private disposed = false;

  constructor(model: GlmModel, options: CacheOptions) {
    const { batchSize, capacity } = options;
    if (!Number.isInteger(batchSize) || batchSize < 1) throw new RangeError(`KvCache: batchSize must be a positive integer, got ${batchSize}`);
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`KvCache: capacity must be a positive integer, got ${capacity}`);
    this.model = model;
    this.capacity = capacity;
    this.rows = batchSize;
    this.starts = new Int32Array(batchSize);
    this.layers = this.allocLayers(batchSize);
  }

  private get backend(): Backend {
    return this.model.backend;
  }

  private allocLayers(rows: number): LayerCache[] {
    const out: LayerCache[] = [];
    const size = rows * this.capacity * 3 * this.model.hiddenSize;
    try {
      for (let l = 0; l < this.model.config.num_layers; l++) out.push({ qkv: this.backend.alloc('f32', size, `cache${l}.qkv`) });
    } catch (e) {
      for (const c of out) this.backend.free(c.qkv);
      throw e;
    }
    return out;
  }

  /** Rows in the cache. */
  get batchSize(): number {
    return this.rows;
  }

  /** Tokens cached per row so far. */
  get length(): number {
    return this.cached;
  }

  /** Index of each row's first real (non-padding) token. */
  get rowStart(): Int32Array {
    return this.starts.slice();
  }

  /**
   * Runs the context (Part A) through the model, bidirectional among itself, and caches its keys
   * and values. Must be the first call on an empty cache.
   */
  prefill(input: PrefillInput): void {
    this.checkAlive();
    if (this.cached !== 0) throw new Error(`KvCache.prefill: the cache already holds ${this.cached} tokens; prefill starts an empty cache`);
    const B = this.rows;
    if (input.inputIds.length % B !== 0 || input.inputIds.length === 0) {
      throw new RangeError(`KvCache.prefill: inputIds has ${input.inputIds.length} entries, expected batchSize (${B}) × context length`);
    }
    const n = input.inputIds.length / B;
    const starts = new Int32Array(B);
    if (input.rowStart) {
      if (input.rowStart.length !== B) throw new RangeError(`KvCache.prefill: rowStart has ${input.rowStart.length} entries, expected batchSize = ${B}`);
      for (let b = 0; b < B; b++) {
        const s = input.rowStart[b]!;
        if (!Number.isInteger(s) || s < 0 || s >= n) throw new RangeError(`KvCache.prefill: rowStart[${b}] = ${s}, expected 0..${n - 1}`);
        starts[b] = s;
      }
    }
    // Part A: every real token sees the row's whole context; a padding token only itself.
    const keyStart = new Int32Array(B * n);
    const keyEnd = new Int32Array(B * n);
    for (let b = 0; b < B; b++) {
      for (let i = 0; i < n; i++) {
        const pad = i < starts[b]!;
        keyStart[b * n + i] = pad ? i : starts[b]!;
        keyEnd[b * n + i] = pad ? i + 1 : n;
      }
    }
    this.starts = starts;
    this.extend(input.inputIds, input.positionIds, input.blockPositionIds, n, keyStart, keyEnd, false);
  }

  /**
   * Appends one token per row at 2D position (positionId, blockPositionId) — a generated token of
   * a blank gets (that mask's position, 1..k) — and returns its logits, [B, vocab_size].
   */
  decodeStep(tokens: PerRow, positionId: PerRow, blockPositionId: PerRow): Float32Array {
    const B = this.rows;
    return this.decode(perRow(tokens, B, 'tokens'), perRow(positionId, B, 'positionId'), perRow(blockPositionId, B, 'blockPositionId'));
  }

  /**
   * Appends n tokens per row ([B, n] each), causal among themselves and seeing everything cached
   * in their row; returns the logits of all of them, [B, n, vocab_size].
   */
  decode(inputIds: ArrayLike<number>, positionIds: ArrayLike<number>, blockPositionIds: ArrayLike<number>): Float32Array {
    this.checkAlive();
    const B = this.rows;
    if (this.cached === 0) throw new Error('KvCache.decode: prefill the context first');
    if (inputIds.length % B !== 0 || inputIds.length === 0) {
      throw new RangeError(`KvCache.decode: got ${inputIds.length} token ids, expected batchSize (${B}) × tokens per row`);
    }
    const n = inputIds.length / B;
    const keyStart = new Int32Array(B * n);
    const keyEnd = new Int32Array(B * n);
    for (let b = 0; b < B; b++) {
      for (let j = 0; j < n; j++) {
        keyStart[b * n + j] = this.starts[b]!;
        keyEnd[b * n + j] = this.cached + j + 1;
      }
    }
    return this.extend(inputIds, positionIds, blockPositionIds, n, keyStart, keyEnd, true)!;
  }

  /**
   * Keeps cache rows `indices` in that order: row b of the new cache is old row indices[b]. Rows
   * may repeat or be dropped, so the batch size may change (expanding one prompt to beams,
   * pruning finished ones).
   */
  reorder(indices: ArrayLike<number>): void {
    this.checkAlive();
    const newRows = indices.length;
    if (newRows < 1) throw new RangeError('KvCache.reorder: needs at least one row index');
    for (let i = 0; i < newRows; i++) {
      const r = indices[i]!;
      if (!Number.isInteger(r) || r < 0 || r >= this.rows) throw new RangeError(`KvCache.reorder: indices[${i}] = ${r}, expected 0..${this.rows - 1}`);
    }
    const width = 3 * this.model.hiddenSize;
    const rowSize = this.capacity * width;
    const used = this.cached * width;
    const fresh = this.allocLayers(newRows);
    if (used > 0) {
      const calls: OpCall[] = [];
      this.layers.forEach((old, l) => {
        for (let b = 0; b < newRows; b++) {
          calls.push({ op: 'copy', args: { src: old.qkv, srcOffset: indices[b]! * rowSize, dst: fresh[l]!.qkv, dstOffset: b * rowSize, size: used } });
        }
      });
      runAll(this.backend, calls);
    }
    this.freeLayers();
    this.layers = fresh;
    this.starts = Int32Array.from(indices, (r) => this.starts[r]!);
    this.rows = newRows;
  }

  /**
   * Forgets every token after the first `length` of each row (they will be overwritten): beam
   * search rewinds to the end of the committed context before the winning span is fed once more.
   */
  truncate(length: number): void {
    this.checkAlive();
    if (!Number.isInteger(length) || length < 1 || length > this.cached) {
      throw new RangeError(`KvCache.truncate: length ${length}, expected 1..${this.cached} (tokens cached)`);
    }
    for (let b = 0; b < this.rows; b++) {
      if (this.starts[b]! >= length) throw new RangeError(`KvCache.truncate: length ${length} would drop all of row ${b}'s context (it starts at ${this.starts[b]})`);
    }
    this.cached = length;
  }

  /** Runs n new tokens per row through every layer, caching their K and V; logits when asked. */
  private extend(
    inputIdsHost: ArrayLike<number>, positionIdsHost: ArrayLike<number>, blockPositionIdsHost: ArrayLike<number>,
    n: number, keyStartHost: Int32Array, keyEndHost: Int32Array, wantLogits: boolean,
  ): Float32Array | null {
    const m = this.model;
    const c = m.config;
    const be = this.backend;
    const B = this.rows;
    const T = B * n;
    const H = m.hiddenSize;
    const P = m.params;
    if (this.cached + n > this.capacity) {
      throw new RangeError(`KvCache: ${this.cached} cached + ${n} new tokens per row exceed the capacity of ${this.capacity}`);
    }
    checkIds('inputIds', inputIdsHost, T, n, c.vocab_size, `a token id in 0..${c.vocab_size - 1}`);
    checkIds('positionIds', positionIdsHost, T, n, m.positionRows, `a position in 0..${m.positionRows - 1}`);
    if (c.block_position_encoding) checkIds('blockPositionIds', blockPositionIdsHost, T, n, m.positionRows, `a block position in 0..${m.positionRows - 1}`);
    else if (blockPositionIdsHost.length !== T) throw new RangeError(`blockPositionIds has ${blockPositionIdsHost.length} entries, expected ${T}`);

    const g = new BufferGroup(be);
    // Every call of the step goes to the backend as one sequence (one crossing for backends with
    // runSequence, e.g. the CUDA addon; every backend validates each call).
    const calls: OpCall[] = [];
    const add = <K extends OpName>(op: K, args: OpArgs[K]): void => {
      calls.push({ op, args } as OpCall);
    };
    try {
      const inputIds = g.i32(inputIdsHost, 'inputIds'); // i32 [T]
      const positionIds = g.i32(positionIdsHost, 'positionIds');
      const blockPositionIds = P.blockPosEmb ? g.i32(blockPositionIdsHost, 'blockPositionIds') : null;
      const keyStart = g.i32(keyStartHost, 'keyStart'); // i32 [B, n]
      const keyEnd = g.i32(keyEndHost, 'keyEnd');
      const x = g.output('f32', T * H, 'residual'); // [T, H], updated in place layer by layer
      add('embedding', {
        wordEmb: P.wordEmb, posEmb: P.posEmb, blockPosEmb: P.blockPosEmb, inputIds, positionIds, blockPositionIds,
        out: x, tokens: T, hiddenSize: H, vocab: c.vocab_size, positions: m.positionRows,
      });
      const ln = g.output('f32', T * H, 'ln'); // [T, H]
      const mean = g.output('f32', T, 'lnMean');
      const rstd = g.output('f32', T, 'lnRstd');
      const qkv = g.output('f32', T * 3 * H, 'qkv'); // [T, 3H]
      const context = g.output('f32', T * H, 'context'); // [T, H]
      const branch = g.output('f32', T * H, 'branch'); // [T, H]
      const fc1Pre = g.output('f32', T * 4 * H, 'fc1Pre'); // [T, 4H]
      const fc1Out = g.output('f32', T * 4 * H, 'fc1Out');
      const lnArgs = { y: ln, mean, rstd, rows: T, hiddenSize: H, eps: c.layernorm_epsilon };
      const keys = this.cached + n;
      const rowSize = this.capacity * 3 * H; // one cache row of a layer: [capacity, 3H]

      for (let l = 0; l < c.num_layers; l++) {
        const w = P.layers[l]!;
        const cache = this.layers[l]!;
        add('layerNorm', { x, gamma: w.inputLnWeight, beta: w.inputLnBias, ...lnArgs });
        add('linear', { x: ln, weight: w.qkvWeight, bias: w.qkvBias, y: qkv, preAct: null, rows: T, inFeatures: H, outFeatures: 3 * H, activation: 'none' });
        // Append the new tokens' QKV rows to the cache: one copy per batch row.
        for (let b = 0; b < B; b++) {
          add('copy', { src: qkv, srcOffset: b * n * 3 * H, dst: cache.qkv, dstOffset: b * rowSize + this.cached * 3 * H, size: n * 3 * H });
        }
        add('attention', {
          q: { tensor: qkv, offset: 0, rowStride: 3 * H, batchStride: n * 3 * H },
          k: { tensor: cache.qkv, offset: H, rowStride: 3 * H, batchStride: rowSize },
          v: { tensor: cache.qkv, offset: 2 * H, rowStride: 3 * H, batchStride: rowSize },
          keyStart, keyEnd, out: context, lse: null, batch: B, queries: n, keys, heads: m.heads, headDim: m.headDim,
          scale: 1 / Math.sqrt(m.headDim), dropout: NO_DROPOUT,
        });
        add('linear', { x: context, weight: w.denseWeight, bias: w.denseBias, y: branch, preAct: null, rows: T, inFeatures: H, outFeatures: H, activation: 'none' });
        add('dropoutAdd', { x: branch, residual: x, out: x, size: T * H, dropout: NO_DROPOUT });
        add('layerNorm', { x, gamma: w.postLnWeight, beta: w.postLnBias, ...lnArgs });
        add('linear', { x: ln, weight: w.fc1Weight, bias: w.fc1Bias, y: fc1Out, preAct: fc1Pre, rows: T, inFeatures: H, outFeatures: 4 * H, activation: m.activation });
        add('linear', { x: fc1Out, weight: w.fc2Weight, bias: w.fc2Bias, y: branch, preAct: null, rows: T, inFeatures: 4 * H, outFeatures: H, activation: 'none' });
        add('dropoutAdd', { x: branch, residual: x, out: x, size: T * H, dropout: NO_DROPOUT });
      }
      if (!wantLogits) {
        runAll(be, calls);
        this.cached += n;
        return null;
      }
      add('layerNorm', { x, gamma: P.finalLnWeight, beta: P.finalLnBias, ...lnArgs });
      const logits = g.output('f32', T * c.vocab_size, 'logits'); // [T, V]
      add('logits', { hidden: ln, wordEmb: P.wordEmb, out: logits, tokens: T, hiddenSize: H, vocab: c.vocab_size });
      runAll(be, calls);
      this.cached += n;
      return Float32Array.from(be.read(logits));
    } finally {
      g.free();
    }
  }

  private checkAlive(): void {
    if (this.disposed) throw new Error('KvCache: used after dispose()');
  }

  private freeLayers(): void {
    for (const c of this.layers) this.backend.free(c.qkv);
    this.layers = [];
  }

  dispose(): void {
    if (this.disposed) return;
    this.freeLayers();
    this.disposed = true;
  }
}

function perRow(v: PerRow, rows: number, name: string): Int32Array {
  if (typeof v === 'number') return new Int32Array(rows).fill(v);
  if (v.length !== rows) throw new RangeError(`decodeStep: ${name} has ${v.length} entries, expected one per row (${rows})`);
  return Int32Array.from(v);
}

function checkIds(name: string, ids: ArrayLike<number>, count: number, perRowCount: number, limit: number, expected: string): void {
  if (ids.length !== count) throw new RangeError(`${name} has ${ids.length} entries, expected ${count}`);
  for (let o = 0; o < count; o++) {
    const v = ids[o]!;
    if (!Number.isInteger(v) || v < 0 || v >= limit) {
      throw new RangeError(`${name}[row ${Math.floor(o / perRowCount)}][index ${o % perRowCount}] = ${v}, expected ${expected}`);
    }
  }
}
