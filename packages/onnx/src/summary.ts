// Reads what a runner needs from an exported .onnx file — opset, producer, and blankglm's metadata
// (config, mask kind, past key/values) — without reading the graph: top-level ModelProto fields
// are visited with positioned reads and the (possibly 440 MB) graph field is skipped.
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { configFromJson, type GlmConfig } from '@blankglm/model-spec';
import { fieldInt, fieldString, readProtoFields } from './protobuf-read.js';
import type { MaskInput } from './glm-graph.js';

export interface OnnxModelSummary {
  irVersion: number;
  opsetVersion: number | null;
  producer: string;
  metadata: Record<string, string>;
  /** Present when the file was exported by blankglm. */
  glm: { config: GlmConfig; mask: MaskInput; pastKeyValues: boolean } | null;
}

function readVarintAt(fd: number, pos: number, path: string): [bigint, number] {
  const buf = Buffer.alloc(10);
  const n = readSync(fd, buf, 0, 10, pos);
  let v = 0n;
  for (let i = 0; i < n; i++) {
    v |= BigInt(buf[i]! & 0x7f) << BigInt(7 * i);
    if ((buf[i]! & 0x80) === 0) return [v, pos + i + 1];
  }
  throw new RangeError(`${path}: not an ONNX model (bad protobuf varint at byte ${pos})`);
}

export function readOnnxSummary(path: string): OnnxModelSummary {
  const fd = openSync(path, 'r');
  try {
    const size = fstatSync(fd).size;
    const out: OnnxModelSummary = { irVersion: 0, opsetVersion: null, producer: '', metadata: {}, glm: null };
    let pos = 0;
    while (pos < size) {
      const [key, p1] = readVarintAt(fd, pos, path);
      const field = Number(key >> 3n);
      const wire = Number(key & 7n);
      if (wire === 0) {
        const [v, p2] = readVarintAt(fd, p1, path);
        if (field === 1) out.irVersion = Number(v);
        pos = p2;
        continue;
      }
      if (wire !== 2) throw new RangeError(`${path}: not an ONNX model (unexpected wire type ${wire} for top-level field ${field} at byte ${pos})`);
      const [len, p2] = readVarintAt(fd, p1, path);
      const end = p2 + Number(len);
      if (end > size) throw new RangeError(`${path}: truncated ONNX file (field ${field} needs ${len} bytes at ${p2}, the file has ${size})`);
      if (field !== 7) {
        // Small fields: producer (2), opset_import (8), metadata_props (14), doc (6)...
        const bytes = Buffer.alloc(Number(len));
        readSync(fd, bytes, 0, bytes.length, p2);
        if (field === 2) out.producer = bytes.toString('utf8');
        if (field === 8) {
          const f = readProtoFields(bytes, `${path} opset_import`);
          const domain = f.find((x) => x.field === 1);
          const version = f.find((x) => x.field === 2);
          if ((!domain || fieldString(domain) === '' || fieldString(domain) === 'ai.onnx') && version) out.opsetVersion = fieldInt(version);
        }
        if (field === 14) {
          const f = readProtoFields(bytes, `${path} metadata_props`);
          const k = f.find((x) => x.field === 1);
          const v = f.find((x) => x.field === 2);
          if (k) out.metadata[fieldString(k)] = v ? fieldString(v) : '';
        }
      }
      pos = end;
    }
    const cfg = out.metadata['blankglm.config'];
    if (cfg !== undefined) {
      const mask = out.metadata['blankglm.mask'];
      if (mask !== 'sep' && mask !== 'matrix') throw new RangeError(`${path}: metadata blankglm.mask = ${JSON.stringify(mask)}, expected sep or matrix`);
      out.glm = { config: configFromJson(JSON.parse(cfg), `${path} (metadata blankglm.config)`), mask, pastKeyValues: out.metadata['blankglm.past_key_values'] === 'true' };
    }
    return out;
  } finally {
    closeSync(fd);
  }
}
