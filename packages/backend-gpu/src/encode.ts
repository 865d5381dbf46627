// Host side of `runSequence`: op calls → one Float64Array in the wire format of schema.ts, and
// back (the inverse is used by tests; the addon has its own C++ decoder, checked against this).
import type { Activation, DropoutAttrs, OpCall, OpName, StridedView, Tensor } from '@blankglm/tensor';
import { FIELD_WORDS, OP_SCHEMA, type FieldKind } from './schema.js';

const ACTIVATION_CODES: Record<Activation, number> = { none: 0, gelu_tanh: 1, gelu_erf: 2 };
const ACTIVATIONS = Object.keys(ACTIVATION_CODES) as Activation[];

interface Field {
  name: string;
  kind: FieldKind;
}

interface OpLayout {
  id: number;
  fields: Field[];
  words: number;
}

const LAYOUTS = new Map<OpName, OpLayout>(
  OP_SCHEMA.map(([op, specs], id) => {
    const fields = specs.map((s) => {
      const [name, kind] = s.split(':') as [string, FieldKind];
      return { name, kind };
    });
    return [op, { id, fields, words: fields.reduce((n, f) => n + FIELD_WORDS[f.kind], 0) }];
  }),
);

/** Maps a tensor to its id on the device, throwing if it is not this backend's. */
export type TensorResolver = (t: Tensor, where: string) => number;

function layoutOf(op: OpName): OpLayout {
  const l = LAYOUTS.get(op);
  if (!l) throw new RangeError(`unknown op '${String(op)}'`);
  return l;
}

/** Encodes calls as [callCount, (opId, wordCount, ...fields)...]. */
export function encodeSequence(calls: readonly OpCall[], resolve: TensorResolver): Float64Array {
  let total = 1;
  for (const c of calls) total += 2 + layoutOf(c.op).words;
  const out = new Float64Array(total);
  out[0] = calls.length;
  let pos = 1;
  calls.forEach((call, k) => {
    const layout = layoutOf(call.op);
    out[pos++] = layout.id;
    out[pos++] = layout.words;
    const args = call.args as unknown as Record<string, unknown>;
    for (const f of layout.fields) {
      const where = `${call.op}${calls.length > 1 ? ` (call #${k})` : ''}: argument '${f.name}'`;
      const v = args[f.name];
      switch (f.kind) {
        case 't':
          out[pos++] = v === null || v === undefined ? -1 : resolve(v as Tensor, where);
          break;
        case 'v': {
          const view = v as StridedView;
          if (!view || typeof view !== 'object' || !('tensor' in view)) throw new TypeError(`${where} must be a strided view`);
          out[pos++] = resolve(view.tensor, where);
          out[pos++] = view.offset;
          out[pos++] = view.rowStride;
          out[pos++] = view.batchStride;
          break;
        }
        case 'i':
        case 'f': {
          if (typeof v !== 'number') throw new TypeError(`${where} must be a number, got ${typeof v}`);
          out[pos++] = v;
          break;
        }
        case 'b':
          out[pos++] = v ? 1 : 0;
          break;
        case 'd': {
          const d = v as DropoutAttrs;
          if (!d || typeof d.p !== 'number' || typeof d.seed !== 'number' || typeof d.stream !== 'number') throw new TypeError(`${where} must be {p, seed, stream}`);
          out[pos++] = d.p;
          out[pos++] = d.seed;
          out[pos++] = d.stream;
          break;
        }
        case 'a': {
          const code = ACTIVATION_CODES[v as Activation];
          if (code === undefined) throw new RangeError(`${where}: unknown activation '${String(v)}'`);
          out[pos++] = code;
          break;
        }
      }
    }
  });
  return out;
}

/** A decoded call: tensors appear as their ids (null when absent), views as {tensor: id, …}. */
export interface DecodedOpCall {
  op: OpName;
  args: Record<string, unknown>;
}

/** The inverse of encodeSequence (tests, debugging). */
export function decodeSequence(words: Float64Array): DecodedOpCall[] {
  const byId = OP_SCHEMA.map(([op]) => layoutOf(op));
  const names = OP_SCHEMA.map(([op]) => op);
  const calls: DecodedOpCall[] = [];
  const count = words[0] ?? 0;
  let pos = 1;
  for (let k = 0; k < count; k++) {
    const id = words[pos++]!;
    const n = words[pos++]!;
    const layout = byId[id];
    if (!layout || layout.words !== n) throw new RangeError(`call #${k}: bad op id ${id} or word count ${n}`);
    const args: Record<string, unknown> = {};
    for (const f of layout.fields) {
      switch (f.kind) {
        case 't': {
          const t = words[pos++]!;
          args[f.name] = t < 0 ? null : t;
          break;
        }
        case 'v':
          args[f.name] = { tensor: words[pos]!, offset: words[pos + 1]!, rowStride: words[pos + 2]!, batchStride: words[pos + 3]! };
          pos += 4;
          break;
        case 'd':
          args[f.name] = { p: words[pos]!, seed: words[pos + 1]!, stream: words[pos + 2]! };
          pos += 3;
          break;
        case 'b':
          args[f.name] = words[pos++] !== 0;
          break;
        case 'a':
          args[f.name] = ACTIVATIONS[words[pos++]!];
          break;
        default:
          args[f.name] = words[pos++]!;
      }
    }
    calls.push({ op: names[id]!, args });
  }
  if (pos !== words.length) throw new RangeError(`${words.length - pos} words after the last call`);
  return calls;
}

/** The same call with every tensor replaced by its id and views by {tensor: id, …}: what a decoder returns. */
export function callWithIds(call: OpCall, resolve: TensorResolver): DecodedOpCall {
  const layout = layoutOf(call.op);
  const args = call.args as unknown as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const f of layout.fields) {
    const v = args[f.name];
    if (f.kind === 't') out[f.name] = v ? resolve(v as Tensor, f.name) : null;
    else if (f.kind === 'v') {
      const view = v as StridedView;
      out[f.name] = { tensor: resolve(view.tensor, f.name), offset: view.offset, rowStride: view.rowStride, batchStride: view.batchStride };
    } else if (f.kind === 'b') out[f.name] = Boolean(v);
    else if (f.kind === 'd') {
      const d = v as DropoutAttrs;
      out[f.name] = { p: d.p, seed: d.seed, stream: d.stream };
    } else out[f.name] = v;
  }
  return { op: call.op, args: out };
}
