// Writing an ONNX model to disk: one .onnx file with the weights inside, or — for models near
// protobuf's 2 GiB message limit, or on request — a .onnx graph plus a `<name>.onnx.data` file
// holding every large initializer at a 4096-byte-aligned offset (ONNX's external-data convention:
// location / offset / length entries on each TensorProto). Both files are written to temporary
// names and renamed into place, data file first, so a reader never sees a half-written model.
import { closeSync, existsSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { encodeModel, type ModelSpec, type TensorSpec } from './onnx-proto.js';

/** Protobuf messages cannot exceed 2 GiB; stay clear of it (the graph itself adds a little). */
export const INLINE_LIMIT_BYTES = 1.8 * 1024 ** 3;
/** Initializers smaller than this stay inside the .onnx file even with external data. */
const EXTERNAL_MIN_BYTES = 1024;
const ALIGN = 4096;

export interface WriteOnnxOptions {
  /** 'auto' (default): external data above INLINE_LIMIT_BYTES of weights; true/false: force. */
  externalData?: boolean | 'auto';
  /** Replace existing files (default false: refuse). */
  overwrite?: boolean;
}

export interface WrittenOnnx {
  modelPath: string;
  /** The external data file, when one was written. */
  dataPath: string | null;
  modelBytes: number;
  dataBytes: number;
  initializers: number;
}

function writeAll(fd: number, chunks: readonly Uint8Array[]): number {
  let total = 0;
  for (const c of chunks) {
    let off = 0;
    while (off < c.byteLength) off += writeSync(fd, c, off, c.byteLength - off);
    total += c.byteLength;
  }
  return total;
}

/** Writes `model` to `path` (and `path + '.data'` with external data); atomic per file. */
export function writeOnnxModel(model: ModelSpec, path: string, options: WriteOnnxOptions = {}): WrittenOnnx {
  const weightBytes = model.graph.initializers.reduce((n, t) => n + t.raw.byteLength, 0);
  const mode = options.externalData ?? 'auto';
  const external = mode === 'auto' ? weightBytes > INLINE_LIMIT_BYTES : mode;
  const dataPath = path + '.data';
  for (const p of external ? [path, dataPath] : [path]) {
    if (existsSync(p) && !options.overwrite) throw new Error(`${p} already exists (pass overwrite to replace it)`);
  }
  const dir = dirname(path);
  if (!existsSync(dir)) throw new Error(`cannot write ${path}: folder ${dir} does not exist`);
  const tmpSuffix = `.tmp-${process.pid}-${Date.now()}`;
  const tmpModel = join(dir, basename(path) + tmpSuffix);
  const tmpData = dataPath + tmpSuffix;
  let dataBytes = 0;
  let spec = model;
  try {
    if (external) {
      const location = basename(dataPath);
      const fd = openSync(tmpData, 'w');
      try {
        const initializers: TensorSpec[] = model.graph.initializers.map((t) => {
          if (t.raw.byteLength < EXTERNAL_MIN_BYTES) return t;
          const pad = (ALIGN - (dataBytes % ALIGN)) % ALIGN;
          if (pad) dataBytes += writeAll(fd, [new Uint8Array(pad)]);
          const offset = dataBytes;
          dataBytes += writeAll(fd, [t.raw]);
          return { ...t, external: { location, offset, length: t.raw.byteLength } };
        });
        fsyncSync(fd);
        spec = { ...model, graph: { ...model.graph, initializers } };
      } finally {
        closeSync(fd);
      }
    }
    const encoded = encodeModel(spec);
    if (encoded.byteLength > 0x7fffffff) {
      throw new Error(`the ONNX graph would be ${encoded.byteLength} bytes, over protobuf's 2 GiB limit: export with external data`);
    }
    const fd = openSync(tmpModel, 'w');
    let modelBytes: number;
    try {
      modelBytes = writeAll(fd, encoded.chunks());
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    if (external) renameSync(tmpData, dataPath);
    else if (existsSync(dataPath) && options.overwrite) rmSync(dataPath); // a stale data file from an earlier external export
    renameSync(tmpModel, path);
    return { modelPath: path, dataPath: external ? dataPath : null, modelBytes, dataBytes, initializers: model.graph.initializers.length };
  } finally {
    rmSync(tmpModel, { force: true });
    rmSync(tmpData, { force: true });
  }
}
