// Checks a GlmBatch against a config before any buffer is touched, so bad input fails with a
// message naming the field, the row and the index instead of reading past an embedding table.
import { glmKeyRanges, type GlmBatch, type KeyRanges } from '@blankglm/tensor';
import type { GlmConfig } from '../config.js';

/** A place in a batch: row `row`, sequence index `position`. */
export interface RowPosition {
  row: number;
  position: number;
}

function checkLength(name: string, arr: ArrayLike<number> | undefined, expected: number, what: string): void {
  if (!arr) throw new TypeError(`batch.${name} is missing`);
  if (arr.length !== expected) throw new RangeError(`batch.${name} has ${arr.length} entries, expected ${what} = ${expected}`);
}

function checkRange(name: string, arr: ArrayLike<number>, L: number, lo: number, hi: number, expected: string): void {
  for (let o = 0; o < arr.length; o++) {
    const v = arr[o]!;
    if (!Number.isInteger(v) || v < lo || v > hi) {
      throw new RangeError(`batch.${name}[row ${Math.floor(o / L)}][index ${o % L}] = ${v}, expected ${expected}`);
    }
  }
}

/**
 * Validates `batch` for a model with `config` and returns its attention key ranges.
 * Checks: array lengths, token ids < vocab_size, position ids < max_sequence_length + 1 (the table
 * rows), sep and segment ids (via glmKeyRanges), loss mask 0/1 with a target id wherever it is 1.
 */
export function validateBatch(batch: GlmBatch, config: GlmConfig): KeyRanges {
  const { batchSize: B, seqLength: L } = batch;
  if (!Number.isInteger(B) || B < 1) throw new RangeError(`batch.batchSize must be a positive integer, got ${B}`);
  if (!Number.isInteger(L) || L < 1) throw new RangeError(`batch.seqLength must be a positive integer, got ${L}`);
  const T = B * L;
  const rows = config.max_sequence_length + 1;
  checkLength('inputIds', batch.inputIds, T, 'batchSize × seqLength');
  checkLength('positionIds', batch.positionIds, T, 'batchSize × seqLength');
  checkLength('blockPositionIds', batch.blockPositionIds, T, 'batchSize × seqLength');
  checkRange('inputIds', batch.inputIds, L, 0, config.vocab_size - 1, `a token id in 0..${config.vocab_size - 1} (vocab_size ${config.vocab_size})`);
  checkRange('positionIds', batch.positionIds, L, 0, rows - 1, `a position in 0..${rows - 1} (the position table has max_sequence_length + 1 = ${rows} rows)`);
  if (config.block_position_encoding) {
    checkRange('blockPositionIds', batch.blockPositionIds, L, 0, rows - 1, `a block position in 0..${rows - 1} (the block position table has ${rows} rows)`);
  }
  const S = batch.numSegments;
  if (!Number.isInteger(S) || S < 1) throw new RangeError(`batch.numSegments must be a positive integer, got ${S}`);
  if (batch.sep.length !== B * S) throw new RangeError(`batch.sep has ${batch.sep.length} entries, expected batchSize × numSegments = ${B} × ${S}`);
  if (!batch.segmentIds) {
    for (let b = 0; b < B; b++) {
      const sp = batch.sep[b * S]!;
      if (!Number.isInteger(sp) || sp < 0 || sp > L) throw new RangeError(`batch.sep[row ${b}] = ${sp}, expected 0..seqLength (${L})`);
    }
  }
  let ranges: KeyRanges;
  try {
    ranges = glmKeyRanges(batch);
  } catch (e) {
    throw new RangeError(`batch: ${(e as Error).message}`);
  }
  if (batch.lossMask) {
    checkLength('lossMask', batch.lossMask, T, 'batchSize × seqLength');
    checkLength('targetIds', batch.targetIds, T, 'batchSize × seqLength (targetIds is required with lossMask)');
    const targets = batch.targetIds!;
    for (let o = 0; o < T; o++) {
      const m = batch.lossMask[o]!;
      if (m !== 0 && m !== 1) throw new RangeError(`batch.lossMask[row ${Math.floor(o / L)}][index ${o % L}] = ${m}, expected 0 or 1`);
      const t = targets[o]!;
      if (m === 1 && !(Number.isInteger(t) && t >= 0 && t < config.vocab_size)) {
        throw new RangeError(`batch.targetIds[row ${Math.floor(o / L)}][index ${o % L}] = ${t} (a loss position), expected a token id in 0..${config.vocab_size - 1}`);
      }
    }
  }
  return ranges;
}

/** Checks requested logits positions against the batch shape. */
export function validatePositions(at: readonly RowPosition[], batchSize: number, seqLength: number, name = 'logitsAt'): void {
  at.forEach((p, i) => {
    if (!Number.isInteger(p.row) || p.row < 0 || p.row >= batchSize) throw new RangeError(`${name}[${i}].row = ${p.row}, expected 0..${batchSize - 1}`);
    if (!Number.isInteger(p.position) || p.position < 0 || p.position >= seqLength) {
      throw new RangeError(`${name}[${i}].position = ${p.position}, expected 0..${seqLength - 1}`);
    }
  });
}
