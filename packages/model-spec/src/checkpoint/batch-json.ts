// The JSON form of a GLM batch (what `blankglm forward --inputs batch.json` and the parity
// fixtures use), in the THUDM model's own input layout:
//
//   {
//     "input_ids":    [[...], ...],                  one list of token ids per row
//     "position_ids": [[[positions], [block positions]], ...],   per row two lists (GLM's 2D positions)
//     "sep":          [s0, s1, ...],                 per row: where Part B starts (the attention_mask argument)
//     "targets":      [[...], ...],                  optional: the token each position predicts (no shift)
//     "loss_mask":    [[0/1, ...], ...]              optional (needs targets): 1 where the loss counts
//   }
//
// Rows may have different lengths: shorter rows are padded as the original collator pads them —
// token 0, position 0, block position 0, loss mask 0 — after their last token. Padding sits after
// `sep`, in the causal Part B, so no real token attends to it and real outputs do not change.
import type { GlmBatch } from '@blankglm/tensor';
import type { GlmConfig } from '../config.js';

export interface ParsedBatch {
  batch: GlmBatch;
  /** Each row's real length before padding. */
  lengths: number[];
}

function fail(source: string, msg: string): never {
  throw new RangeError(`${source}: ${msg}`);
}

function intRows(source: string, json: Record<string, unknown>, field: string, rows: number | null): number[][] {
  const v = json[field];
  if (!Array.isArray(v)) fail(source, `field '${field}' must be a list of rows (lists of integers), got ${v === undefined ? 'nothing' : JSON.stringify(v).slice(0, 40)}`);
  if (rows !== null && v.length !== rows) fail(source, `field '${field}' has ${v.length} rows, but input_ids has ${rows}`);
  return v.map((row, b) => {
    if (!Array.isArray(row)) fail(source, `${field}[${b}] must be a list of integers`);
    row.forEach((x, i) => {
      if (!Number.isInteger(x)) fail(source, `${field}[${b}][${i}] = ${JSON.stringify(x)}, expected an integer`);
    });
    return row as number[];
  });
}

/** Parses and checks a batch.json against a model config; errors name the field, row and index. */
export function parseBatchJson(json: unknown, config: GlmConfig, source = 'batch.json'): ParsedBatch {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) fail(source, 'expected a JSON object with input_ids, position_ids and sep');
  const j = json as Record<string, unknown>;
  const inputIds = intRows(source, j, 'input_ids', null);
  const B = inputIds.length;
  if (B === 0) fail(source, 'input_ids has no rows');
  const lengths = inputIds.map((r, b) => {
    if (r.length === 0) fail(source, `input_ids[${b}] is empty`);
    return r.length;
  });
  const L = Math.max(...lengths);
  const V = config.vocab_size;
  const tableRows = config.max_sequence_length + 1;
  inputIds.forEach((row, b) =>
    row.forEach((t, i) => {
      if (t < 0 || t >= V) fail(source, `input_ids[${b}][${i}] = ${t}, expected a token id in 0..${V - 1} (vocab_size ${V})`);
    }),
  );

  const pos = j.position_ids;
  if (!Array.isArray(pos) || pos.length !== B) fail(source, `field 'position_ids' must hold one [positions, block_positions] pair per row (${B} rows)`);
  const positions: number[][] = [];
  const blocks: number[][] = [];
  pos.forEach((pair, b) => {
    if (!Array.isArray(pair) || pair.length !== 2) fail(source, `position_ids[${b}] must be two lists: [positions, block positions]`);
    pair.forEach((list, k) => {
      if (!Array.isArray(list) || list.length !== lengths[b]) fail(source, `position_ids[${b}][${k}] must be a list of ${lengths[b]} integers (the row's length)`);
      list.forEach((x, i) => {
        const what = k === 0 ? 'position' : 'block position';
        if (!Number.isInteger(x) || x < 0 || x >= tableRows) {
          fail(source, `position_ids[${b}][${k}][${i}] = ${JSON.stringify(x)}, expected a ${what} in 0..${tableRows - 1} (the table has max_sequence_length + 1 = ${tableRows} rows)`);
        }
      });
    });
    positions.push(pair[0] as number[]);
    blocks.push(pair[1] as number[]);
  });

  const sep = j.sep;
  if (!Array.isArray(sep) || sep.length !== B) fail(source, `field 'sep' must be a list of ${B} integers (one per row: where Part B starts)`);
  sep.forEach((s, b) => {
    if (!Number.isInteger(s) || s < 0 || s > lengths[b]!) fail(source, `sep[${b}] = ${JSON.stringify(s)}, expected 0..${lengths[b]} (the row's length)`);
  });

  let targets: number[][] | null = null;
  let lossMask: number[][] | null = null;
  if (j.targets !== undefined) {
    targets = intRows(source, j, 'targets', B);
    targets.forEach((row, b) => {
      if (row.length !== lengths[b]) fail(source, `targets[${b}] has ${row.length} entries, expected ${lengths[b]} (the row's length)`);
    });
  }
  if (j.loss_mask !== undefined) {
    if (!targets) fail(source, `field 'loss_mask' needs 'targets'`);
    lossMask = intRows(source, j, 'loss_mask', B);
    lossMask.forEach((row, b) => {
      if (row.length !== lengths[b]) fail(source, `loss_mask[${b}] has ${row.length} entries, expected ${lengths[b]} (the row's length)`);
      row.forEach((m, i) => {
        if (m !== 0 && m !== 1) fail(source, `loss_mask[${b}][${i}] = ${m}, expected 0 or 1`);
        if (m === 1) {
          const t = targets![b]![i]!;
          if (t < 0 || t >= V) fail(source, `targets[${b}][${i}] = ${t} (a loss position), expected a token id in 0..${V - 1}`);
        }
      });
    });
  } else if (targets) {
    // Targets without a mask: every position counts.
    lossMask = targets.map((row) => row.map(() => 1));
    targets.forEach((row, b) =>
      row.forEach((t, i) => {
        if (t < 0 || t >= V) fail(source, `targets[${b}][${i}] = ${t}, expected a token id in 0..${V - 1}`);
      }),
    );
  }

  const flat = (rows: number[][] | null): Int32Array => {
    const out = new Int32Array(B * L); // padding: 0
    rows?.forEach((row, b) => out.set(row, b * L));
    return out;
  };
  const batch: GlmBatch = {
    batchSize: B,
    seqLength: L,
    inputIds: flat(inputIds),
    positionIds: flat(positions),
    blockPositionIds: flat(blocks),
    sep: Int32Array.from(sep as number[]),
    numSegments: 1,
  };
  if (targets) {
    batch.targetIds = flat(targets);
    batch.lossMask = Uint8Array.from(flat(lossMask));
  }
  return { batch, lengths };
}
