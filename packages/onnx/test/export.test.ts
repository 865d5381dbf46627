// The exporter without a runtime: graph structure, weight layout, file layout (inline and external
// data), metadata, and refusals. Running the graph is tested in apps/cli/test/onnx.test.ts
// (onnxruntime-node is a CLI dependency only).
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { getPreset, initParameters, parameterCount, type GlmConfig } from '@blankglm/model-spec';
import { Rng } from '@blankglm/tensor';
import {
  buildGlmOnnxModel, DataType, exportGlmToOnnx, fieldInt, fieldString, OnnxExportError, packedInts, readOnnxSummary, readProtoFields, writeOnnxModel,
  type ModelSpec,
} from '../src/index.js';

const work = mkdtempSync(join(tmpdir(), 'blankglm-onnx-unit-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));
const CONFIG: GlmConfig = { ...getPreset('glm-tiny'), num_layers: 2, hidden_size: 16, num_attention_heads: 2, vocab_size: 64, max_sequence_length: 12 };
const SD = initParameters(CONFIG, new Rng(1));

/** Every node input must be a graph input, an initializer or an earlier node's output (ONNX requires topological order). */
function checkTopological(m: ModelSpec): void {
  const known = new Set([...m.graph.inputs.map((i) => i.name), ...m.graph.initializers.map((t) => t.name)]);
  for (const n of m.graph.nodes) {
    for (const i of n.inputs) expect(known.has(i), `${n.name} (${n.opType}) reads '${i}' before it is defined`).toBe(true);
    for (const o of n.outputs) known.add(o);
  }
  for (const o of m.graph.outputs) expect(known.has(o.name), `output ${o.name}`).toBe(true);
}

describe('buildGlmOnnxModel', () => {
  it('declares the GLM inputs and outputs with dynamic batch and length axes', () => {
    const m = buildGlmOnnxModel(CONFIG, SD);
    expect(m.opsetVersion).toBe(17);
    expect(m.irVersion).toBe(8);
    expect(m.graph.inputs.map((i) => [i.name, i.elemType, i.shape])).toEqual([
      ['input_ids', DataType.INT64, ['batch', 'seq']],
      ['position_ids', DataType.INT64, ['batch', 2, 'seq']],
      ['attention_mask', DataType.INT64, ['batch']],
      ['past_key_0', DataType.FLOAT, ['batch', 2, 'past_seq', 8]],
      ['past_value_0', DataType.FLOAT, ['batch', 2, 'past_seq', 8]],
      ['past_key_1', DataType.FLOAT, ['batch', 2, 'past_seq', 8]],
      ['past_value_1', DataType.FLOAT, ['batch', 2, 'past_seq', 8]],
    ]);
    expect(m.graph.outputs.map((o) => o.name)).toEqual(['logits', 'present_key_0', 'present_value_0', 'present_key_1', 'present_value_1']);
    expect(m.graph.outputs[0]!.shape).toEqual(['batch', 'seq', 64]);
    checkTopological(m);

    const matrix = buildGlmOnnxModel(CONFIG, SD, { mask: 'matrix', pastKeyValues: false });
    expect(matrix.graph.inputs.map((i) => [i.name, i.elemType, i.shape])).toEqual([
      ['input_ids', DataType.INT64, ['batch', 'seq']],
      ['position_ids', DataType.INT64, ['batch', 2, 'seq']],
      ['attention_mask', DataType.FLOAT, ['batch', 1, 'seq', 'total_seq']],
    ]);
    expect(matrix.graph.outputs.map((o) => o.name)).toEqual(['logits']);
    checkTopological(matrix);
  });

  it('stores the weights once: embeddings by reference, linears transposed to [in, out], GELU per config', () => {
    const m = buildGlmOnnxModel(CONFIG, SD);
    const byName = new Map(m.graph.initializers.map((t) => [t.name, t]));
    const word = byName.get('word_embeddings.weight')!;
    expect(word.dims).toEqual([64, 16]);
    expect(word.raw.buffer).toBe(SD.get('word_embeddings.weight')!.buffer); // no copy
    const qkvT = byName.get('transformer.layers.1.attention.query_key_value.weight_t')!;
    expect(qkvT.dims).toEqual([16, 48]);
    const qkvTf = new Float32Array(qkvT.raw.buffer, qkvT.raw.byteOffset, 16 * 48);
    const qkv = SD.get('transformer.layers.1.attention.query_key_value.weight')!; // [48, 16]
    for (const [o, i] of [[0, 0], [17, 3], [47, 15], [33, 9]] as const) expect(qkvTf[i * 48 + o]).toBe(qkv[o * 16 + i]);
    // float weights total = the parameter count (the tied output projection is a Transpose node, not a copy)
    const floats = m.graph.initializers.filter((t) => t.dataType === DataType.FLOAT && t.dims.length > 0).reduce((n, t) => n + t.raw.byteLength / 4, 0);
    expect(floats).toBe(parameterCount(CONFIG));
    expect(m.graph.nodes.filter((n) => n.opType === 'LayerNormalization')).toHaveLength(2 * 2 + 1);
    expect(m.graph.nodes.some((n) => n.opType === 'Tanh')).toBe(true);
    expect(m.graph.nodes.some((n) => n.opType === 'Erf')).toBe(false);
    const erf = buildGlmOnnxModel({ ...CONFIG, hidden_act: 'gelu_erf' }, SD);
    expect(erf.graph.nodes.some((n) => n.opType === 'Erf')).toBe(true);
    expect(erf.graph.nodes.some((n) => n.opType === 'Tanh')).toBe(false);
    const noBlock = buildGlmOnnxModel({ ...CONFIG, block_position_encoding: false }, new Map([...SD].filter(([k]) => !k.includes('block_position'))));
    expect(noBlock.graph.initializers.some((t) => t.name.includes('block_position'))).toBe(false);
    checkTopological(noBlock);
  });

  it('refuses what it cannot express, naming the tensor or field', () => {
    const nan = new Map(SD);
    const w = Float32Array.from(nan.get('transformer.layers.0.mlp.dense_h_to_4h.bias')!);
    w[5] = Infinity;
    nan.set('transformer.layers.0.mlp.dense_h_to_4h.bias', w);
    expect(() => buildGlmOnnxModel(CONFIG, nan)).toThrow(OnnxExportError);
    expect(() => buildGlmOnnxModel(CONFIG, nan)).toThrow(/transformer\.layers\.0\.mlp\.dense_h_to_4h\.bias\[5\] = Infinity/);
    const missing = new Map(SD);
    missing.delete('transformer.final_layernorm.bias');
    expect(() => buildGlmOnnxModel(CONFIG, missing)).toThrow(/cannot export this checkpoint to ONNX: [\s\S]*missing[\s\S]*transformer\.final_layernorm\.bias/);
    expect(() => buildGlmOnnxModel({ ...CONFIG, attention_scale: 8 }, SD)).toThrow(/cannot export this checkpoint to ONNX: config field 'attention_scale' = 8 is not supported/);
    expect(() => buildGlmOnnxModel(CONFIG, SD, { mask: 'both' as 'sep' })).toThrow(/mask must be 'sep' or 'matrix'/);
  });
});

describe('writeOnnxModel', () => {
  it('writes a ModelProto with the graph, opset 17 and blankglm metadata (read back without the graph)', () => {
    const path = join(work, 'inline.onnx');
    const w = exportGlmToOnnx(CONFIG, SD, path, { mask: 'matrix' });
    expect(w.dataPath).toBeNull();
    const bytes = new Uint8Array(readFileSync(path));
    expect(bytes.byteLength).toBe(w.modelBytes);
    const top = readProtoFields(bytes);
    expect(fieldInt(top.find((f) => f.field === 1)!)).toBe(8); // ir_version
    expect(fieldString(top.find((f) => f.field === 2)!)).toBe('blankglm');
    const graph = readProtoFields(top.find((f) => f.field === 7)!.bytes!);
    const inits = graph.filter((f) => f.field === 5).map((f) => readProtoFields(f.bytes!));
    const qkv = inits.find((t) => fieldString(t.find((f) => f.field === 8)!) === 'transformer.layers.0.attention.query_key_value.weight_t')!;
    expect(packedInts(qkv.find((f) => f.field === 1)!.bytes!)).toEqual([16, 48]); // dims
    expect(fieldInt(qkv.find((f) => f.field === 2)!)).toBe(DataType.FLOAT);
    expect(qkv.find((f) => f.field === 9)!.bytes!.byteLength).toBe(16 * 48 * 4); // raw_data
    const summary = readOnnxSummary(path);
    expect(summary.opsetVersion).toBe(17);
    expect(summary.glm).toEqual({ config: CONFIG, mask: 'matrix', pastKeyValues: true });
    expect(() => exportGlmToOnnx(CONFIG, SD, path)).toThrow(/inline\.onnx already exists \(pass overwrite to replace it\)/);
    expect(readdirSync(work).filter((f) => f.includes('.tmp-'))).toEqual([]);
  });

  it('puts large initializers in <file>.data at 4096-aligned offsets with location/offset/length entries', () => {
    const path = join(work, 'ext.onnx');
    const w = exportGlmToOnnx(CONFIG, SD, path, { externalData: true });
    expect(w.dataPath).toBe(path + '.data');
    const data = readFileSync(path + '.data');
    const graph = readProtoFields(readProtoFields(new Uint8Array(readFileSync(path))).find((f) => f.field === 7)!.bytes!);
    let externals = 0;
    for (const f of graph.filter((x) => x.field === 5)) {
      const t = readProtoFields(f.bytes!);
      const name = fieldString(t.find((x) => x.field === 8)!);
      const entries = Object.fromEntries(t.filter((x) => x.field === 13).map((x) => {
        const kv = readProtoFields(x.bytes!);
        return [fieldString(kv[0]!), fieldString(kv[1]!)];
      }));
      if (!entries.location) {
        expect(t.find((x) => x.field === 9)!.bytes!.byteLength, name).toBeLessThan(1024);
        continue;
      }
      externals++;
      expect(entries.location).toBe('ext.onnx.data');
      expect(fieldInt(t.find((x) => x.field === 14)!)).toBe(1); // data_location = EXTERNAL
      const offset = Number(entries.offset);
      expect(offset % 4096).toBe(0);
      if (name === 'word_embeddings.weight') {
        const stored = new Float32Array(data.buffer.slice(data.byteOffset + offset, data.byteOffset + offset + Number(entries.length)));
        expect(stored).toEqual(SD.get('word_embeddings.weight'));
      }
    }
    // every float weight of 1 KiB or more: word embedding + 4 linears per layer (the 13-row position tables stay inline)
    expect(externals).toBe(buildGlmOnnxModel(CONFIG, SD).graph.initializers.filter((t) => t.raw.byteLength >= 1024).length);
    expect(externals).toBe(1 + 4 * 2);
    // re-exporting inline over it removes the stale data file
    exportGlmToOnnx(CONFIG, SD, path, { overwrite: true });
    expect(existsSync(path + '.data')).toBe(false);
  });

  it('reports a missing folder, and a file that is not ONNX', () => {
    expect(() => writeOnnxModel(buildGlmOnnxModel(CONFIG, SD), join(work, 'nope', 'x.onnx'))).toThrow(/folder .*nope does not exist/);
    const junk = join(work, 'junk.onnx');
    writeFileSync(junk, Buffer.from([0x0f, 0xff, 0xff]));
    expect(() => readOnnxSummary(junk)).toThrow(/junk\.onnx: not an ONNX model/);
  });
});
