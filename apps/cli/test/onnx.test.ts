// ONNX export + onnxruntime-node against the reference backend: logits parity for several masks,
// packed rows (explicit mask), incremental decoding through past key/values, external data, and
// `blankglm forward --engine onnx` printing what the native forward prints.
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as ort from 'onnxruntime-node';
import { createReferenceBackend } from '@blankglm/backend-ref';
import { fillBlanks, getPreset, GlmModel, readSafetensors, saveCheckpoint, type GlmConfig, type StateDict } from '@blankglm/model-spec';
import { checkExecutionProviders, fillBlanksOnnx, OnnxGlm, OnnxGlmDecoder, OnnxRuntimeSetupError, readOnnxSummary, type OrtModuleLike } from '@blankglm/onnx';
import { Rng, type GlmBatch } from '@blankglm/tensor';
import { compareWithReference, PARITY_NMSE, verificationBatch } from '../src/commands/export-onnx.js';
import { runCommand, saveTinyCheckpoint } from './fill-helpers.js';

const ORT = ort as unknown as OrtModuleLike;
const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'packages', 'model-spec', 'fixtures');
const THUDM = join(FIXTURES, 'tiny-thudm');
const BATCH = join(FIXTURES, 'batch.json');
const work = mkdtempSync(join(tmpdir(), 'blankglm-onnx-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const cli = (argv: string[]): ReturnType<typeof runCommand> => runCommand(argv, work);

// A tiny random GLM with erf GELU and the tanh one: both activations must export exactly.
const CONFIG: GlmConfig = { ...getPreset('glm-tiny'), num_layers: 2, hidden_size: 32, num_attention_heads: 4, vocab_size: 160, max_sequence_length: 40 };
let stateDict: StateDict;
const CK = join(work, 'tiny');
const CK_ERF = join(work, 'tiny-erf');

/** Reference logits [B, L, V] of every position. */
function referenceLogits(config: GlmConfig, sd: StateDict, batch: GlmBatch): Float32Array {
  const model = GlmModel.create(createReferenceBackend(), config, { stateDict: sd });
  try {
    const at = Array.from({ length: batch.batchSize * batch.seqLength }, (_, o) => ({ row: Math.floor(o / batch.seqLength), position: o % batch.seqLength }));
    return model.forward(batch, { logitsAt: at }).logits!.values;
  } finally {
    model.dispose();
  }
}

/** The conformance criterion: NMSE ≤ 5e-4, or every element within 1e-4 relative to the row's scale. */
function expectClose(got: Float32Array, want: Float32Array, rowWidth: number, what: string): number {
  expect(got.length, what).toBe(want.length);
  let num = 0;
  let den = 0;
  let worstRel = 0;
  for (let r = 0; r < want.length / rowWidth; r++) {
    let scale = 0;
    for (let v = 0; v < rowWidth; v++) scale = Math.max(scale, Math.abs(want[r * rowWidth + v]!));
    for (let v = 0; v < rowWidth; v++) {
      const d = got[r * rowWidth + v]! - want[r * rowWidth + v]!;
      num += d * d;
      den += want[r * rowWidth + v]! ** 2;
      worstRel = Math.max(worstRel, Math.abs(d) / scale);
    }
  }
  const nmse = num / den;
  expect(nmse, `${what}: NMSE`).toBeLessThan(PARITY_NMSE);
  expect(worstRel, `${what}: max relative element error`).toBeLessThan(1e-4);
  return nmse;
}

/** One-segment rows with the given seps; Part B tokens at their mask-like positions. */
function sepBatch(L: number, seps: number[], seed: number): GlmBatch {
  const rng = new Rng(seed);
  const B = seps.length;
  const positionIds = new Int32Array(B * L);
  const blockPositionIds = new Int32Array(B * L);
  seps.forEach((s, b) => {
    for (let i = 0; i < L; i++) {
      positionIds[b * L + i] = i < s ? i : Math.max(0, s - 1);
      blockPositionIds[b * L + i] = i < s ? 0 : i - s + 1;
    }
  });
  return {
    batchSize: B, seqLength: L, numSegments: 1, sep: Int32Array.from(seps), positionIds, blockPositionIds,
    inputIds: Int32Array.from({ length: B * L }, () => rng.int(CONFIG.vocab_size)),
  };
}

beforeAll(() => {
  stateDict = initTiny(CONFIG, 7);
  saveCheckpoint(CK, CONFIG, stateDict);
  saveCheckpoint(CK_ERF, { ...CONFIG, hidden_act: 'gelu_erf' }, stateDict);
});

function initTiny(config: GlmConfig, seed: number): StateDict {
  const model = GlmModel.create(createReferenceBackend(), config, { rng: new Rng(seed) });
  const sd = model.stateDict();
  model.dispose();
  // Non-trivial LayerNorm and bias parameters, so a swapped weight/bias or a missing bias shows.
  const rng = new Rng(seed + 1);
  for (const [name, data] of sd) if (!name.endsWith('embeddings.weight') && data.length <= 4 * config.hidden_size) for (let i = 0; i < data.length; i++) data[i] = data[i]! + rng.normal(0, 0.1);
  return sd;
}

describe('export-onnx + onnxruntime-node', () => {
  it('matches the reference backend for sep at 1, the middle and L−1 (tanh and erf GELU), and --verify passes', async () => {
    for (const [ck, act] of [[CK, 'gelu_tanh'], [CK_ERF, 'gelu_erf']] as const) {
      const out = join(work, `sep-${act}.onnx`);
      const r = await cli(['export-onnx', ck, '--out', out, '--verify']);
      expect(r.err).toBe('');
      expect(r.code).toBe(0);
      expect(r.out).toMatch(/opset 17, mask sep, with past key\/values/);
      expect(r.out).toMatch(/verify: onnxruntime-node vs reference backend on 2×16 tokens: logits NMSE .* — ok/);
      const summary = readOnnxSummary(out);
      expect(summary.opsetVersion).toBe(17);
      expect(summary.glm?.config.hidden_act).toBe(act);
      const glm = await OnnxGlm.load(ORT, out, { threads: 1 });
      try {
        const L = 12;
        const batch = sepBatch(L, [1, 6, L - 1, L], 11);
        const config = { ...CONFIG, hidden_act: act };
        expectClose(await glm.logits(batch), referenceLogits(config, stateDict, batch), CONFIG.vocab_size, act);
        // dynamic axes: another batch size and length through the same session
        const other = sepBatch(5, [3], 12);
        expectClose(await glm.logits(other), referenceLogits(config, stateDict, other), CONFIG.vocab_size, `${act} B=1 L=5`);
      } finally {
        await glm.release();
      }
    }
  });

  it('takes an explicit mask for packed rows (two segments + padding per row)', async () => {
    const out = join(work, 'matrix.onnx');
    expect((await cli(['export-onnx', CK, '--out', out, '--mask', 'matrix', '--no-past'])).code).toBe(0);
    const glm = await OnnxGlm.load(ORT, out, { threads: 1 });
    try {
      expect(glm.mask).toBe('matrix');
      expect(glm.pastKeyValues).toBe(false);
      const L = 14;
      const base = sepBatch(L, [0, 0], 21);
      // row 0: segment 0 = [0, 6) sep 3, segment 1 = [6, 12) sep 9, padding [12, 14)
      // row 1: segment 0 = [0, 9) sep 9 (no Part B), segment 1 = [9, 14) sep 10
      const seg = [[0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, -1, -1], [0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1]];
      const batch: GlmBatch = { ...base, numSegments: 2, segmentIds: Int32Array.from(seg.flat()), sep: Int32Array.of(3, 9, 9, 10) };
      expectClose(await glm.logits(batch), referenceLogits(CONFIG, stateDict, batch), CONFIG.vocab_size, 'packed');
      // the same model also takes plain rows (the mask is built from sep on the host)
      const plain = sepBatch(9, [1, 4, 8], 22);
      expectClose(await glm.logits(plain), referenceLogits(CONFIG, stateDict, plain), CONFIG.vocab_size, 'matrix, plain rows');
    } finally {
      await glm.release();
    }
    // a sep model refuses packed rows with a clear message
    const sepModel = await OnnxGlm.load(ORT, join(work, 'sep-gelu_tanh.onnx'), { threads: 1 });
    try {
      const packed: GlmBatch = { ...sepBatch(4, [0, 0], 1), numSegments: 2, segmentIds: Int32Array.of(0, 0, 1, 1, 0, 0, 1, 1), sep: Int32Array.of(1, 3, 1, 3) };
      expect(() => sepModel.feeds(packed)).toThrow(/packed rows \(several segments\) need a model exported with --mask matrix/);
    } finally {
      await sepModel.release();
    }
  });

  it('decodes incrementally through past key/values (sep and matrix models) as a full forward does, and fills blanks as model-spec does', async () => {
    const matrixPast = join(work, 'matrix-past.onnx');
    expect((await cli(['export-onnx', CK, '--out', matrixPast, '--mask', 'matrix'])).code).toBe(0);
    for (const path of [join(work, 'sep-gelu_tanh.onnx'), matrixPast]) {
      const glm = await OnnxGlm.load(ORT, path, { threads: 1 });
      try {
        // context of 6 (Part A), then Part B tokens fed 2 + 1 + 1 at a time
        const rng = new Rng(5);
        const ids = Array.from({ length: 10 }, () => rng.int(CONFIG.vocab_size));
        const pos = [0, 1, 2, 3, 4, 5, 2, 2, 2, 4];
        const block = [0, 0, 0, 0, 0, 0, 1, 2, 3, 1];
        const full: GlmBatch = { batchSize: 1, seqLength: 10, numSegments: 1, sep: Int32Array.of(6), inputIds: Int32Array.from(ids), positionIds: Int32Array.from(pos), blockPositionIds: Int32Array.from(block) };
        const want = referenceLogits(CONFIG, stateDict, full);
        const V = CONFIG.vocab_size;
        const dec = new OnnxGlmDecoder(glm);
        const got = new Float32Array(10 * V);
        got.set(await dec.prefill(ids.slice(0, 6)), 0);
        got.set(await dec.decode(ids.slice(6, 8), pos.slice(6, 8), block.slice(6, 8)), 6 * V);
        got.set(await dec.decode(ids.slice(8, 9), pos.slice(8, 9), block.slice(8, 9)), 8 * V);
        got.set(await dec.decode(ids.slice(9), pos.slice(9), block.slice(9)), 9 * V);
        expect(dec.length).toBe(10);
        dec.dispose();
        expectClose(got, want, V, `incremental ${glm.mask}`);

        const MASK = 3, SOP = 4, EOP = 5;
        const context = [10, 11, MASK, 14, 15, MASK, 16];
        const model = GlmModel.create(createReferenceBackend(), CONFIG, { stateDict });
        try {
          const native = fillBlanks(model, context, { maskIds: [MASK], sopId: SOP, eopId: EOP, maxTokens: 5 });
          const viaOnnx = await fillBlanksOnnx(glm, context, { maskIds: [MASK], sopId: SOP, eopId: EOP, maxTokens: 5 });
          expect(viaOnnx.blanks).toEqual(native.blanks);
          expect(viaOnnx.filled).toEqual(native.filled);
          expect(viaOnnx.finished).toEqual(native.finished);
        } finally {
          model.dispose();
        }
      } finally {
        await glm.release();
      }
    }
  });

  it('writes weights as external data on request, and ONNX Runtime reads them', async () => {
    const out = join(work, 'ext.onnx');
    const r = await cli(['export-onnx', CK, '--out', out, '--external-data', '--verify']);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/weights in .*ext\.onnx\.data/);
    expect(r.out).toMatch(/— ok/);
    expect(existsSync(out + '.data')).toBe(true);
    // the graph file holds no weights: far smaller than the inline export
    expect(statSync(out).size).toBeLessThan(statSync(join(work, 'sep-gelu_tanh.onnx')).size / 4);
  });

  it('`forward --engine onnx` prints the native JSON (and matches the PyTorch fixture)', async () => {
    const onnxPath = join(work, 'fixture.onnx');
    expect((await cli(['export-onnx', THUDM, '--out', onnxPath])).code).toBe(0);
    const args = ['forward', THUDM, '--inputs', BATCH, '--json', '--logits', '1,9', '--logits', '3,15'];
    const native = JSON.parse((await cli([...args, '--backend', 'ref'])).out);
    const r = await cli([...args, '--engine', 'onnx', '--onnx', onnxPath]);
    expect(r.err).toBe('');
    const viaOnnx = JSON.parse(r.out);
    expect(viaOnnx.backend).toBe('onnx');
    expect(Object.keys(viaOnnx).sort()).toEqual(Object.keys(native).sort());
    expect(viaOnnx.num_targets).toBe(native.num_targets);
    expect(viaOnnx.lengths).toEqual(native.lengths);
    expect(Math.abs(viaOnnx.loss - native.loss) / native.loss).toBeLessThan(1e-5);
    viaOnnx.targets.forEach((t: { row: number; position: number; token: number; log_prob: number }, k: number) => {
      expect([t.row, t.position, t.token]).toEqual([native.targets[k].row, native.targets[k].position, native.targets[k].token]);
      expect(Math.abs(t.log_prob - native.targets[k].log_prob)).toBeLessThan(1e-4);
    });
    // logits rows against PyTorch's own (an independent check of both engines)
    const all = readSafetensors(join(FIXTURES, 'expected.safetensors')).tensors.get('logits')!.data as Float32Array; // [4, 16, 128]
    for (const l of viaOnnx.logits as { row: number; position: number; values: number[] }[]) {
      const o = (l.row * 16 + l.position) * 128;
      expectClose(Float32Array.from(l.values), all.slice(o, o + 128), 128, `fixture logits ${l.row},${l.position}`);
    }
  });

  it('`fill --engine onnx` gives the native fills (greedy, and seeded sampling with constraints)', async () => {
    const ck = saveTinyCheckpoint(work, 'bert-tiny'); // real BERT vocabulary, 30592 rows
    const onnxPath = join(work, 'bert-tiny.onnx');
    expect((await cli(['export-onnx', ck, '--out', onnxPath])).code).toBe(0);
    const prompt = 'the old man [MASK] to the sea . [sMASK] and then [gMASK]';
    for (const extra of [[], ['--strategy', 'sample', '--seed', '3', '--top-k', '40', '--min-tokens', '2', '--no-repeat-ngram', '2']]) {
      const args = ['fill', ck, prompt, '--json', '--max-tokens', '4', ...extra];
      const native = JSON.parse((await cli([...args, '--backend', 'ref'])).out);
      const r = await cli([...args, '--engine', 'onnx', '--onnx', onnxPath]);
      expect(r.err).toBe('');
      const viaOnnx = JSON.parse(r.out);
      expect(viaOnnx.backend).toBe('onnx');
      expect(viaOnnx.text).toBe(native.text);
      expect(viaOnnx.marked).toBe(native.marked);
      viaOnnx.blanks.forEach((b: { tokens: number[]; finished: boolean; log_prob: number }, i: number) => {
        expect(b.tokens).toEqual(native.blanks[i].tokens);
        expect(b.finished).toBe(native.blanks[i].finished);
        expect(Math.abs(b.log_prob - native.blanks[i].log_prob)).toBeLessThan(1e-4);
      });
    }
    const r = await cli(['fill', ck, prompt, '--engine', 'onnx', '--onnx', onnxPath, '--num-beams', '3']);
    expect(r.err).toMatch(/--engine onnx decodes greedily or by sampling; beam search needs --engine native/);
    expect((await cli(['fill', ck, prompt, '--engine', 'onnx'])).err).toMatch(/--engine onnx needs --onnx <model\.onnx>/);
  });

  it('reports bad input clearly', async () => {
    let r = await cli(['forward', THUDM, '--inputs', BATCH, '--engine', 'onnx']);
    expect(r.err).toMatch(/--engine onnx needs --onnx <model\.onnx>/);
    r = await cli(['forward', THUDM, '--inputs', BATCH, '--engine', 'onnx', '--onnx', 'nope.onnx']);
    expect(r.err).toMatch(/--onnx: .*nope\.onnx does not exist \(export one with 'blankglm export-onnx/);
    r = await cli(['forward', THUDM, '--inputs', BATCH, '--engine', 'tpu']);
    expect(r.err).toMatch(/unknown --engine 'tpu'; expected native or onnx/);
    r = await cli(['forward', THUDM, '--inputs', BATCH, '--engine', 'onnx', '--onnx', join(work, 'fixture.onnx'), '--grads']);
    expect(r.err).toMatch(/--grads needs --engine native/);
    // an export of another model
    r = await cli(['forward', THUDM, '--inputs', BATCH, '--engine', 'onnx', '--onnx', join(work, 'sep-gelu_tanh.onnx')]);
    expect(r.err).toMatch(/was exported from a different model than the checkpoint \(vocab_size: model 160, checkpoint 128; .*re-export it with 'blankglm export-onnx'/);
    r = await cli(['export-onnx', CK, '--out', join(work, 'sep-gelu_tanh.onnx')]);
    expect(r.err).toMatch(/already exists; pass --force/);
    r = await cli(['export-onnx', CK, '--out', join(work, 'x.onnx'), '--mask', 'both']);
    expect(r.err).toMatch(/--mask 'both': expected sep or matrix/);
    r = await cli(['export-onnx', CK, '--out', join(work, 'no-such-dir', 'x.onnx')]);
    expect(r.err).toMatch(/--out: folder .*no-such-dir does not exist/);
    // a checkpoint the exporter cannot express: a non-finite weight
    const bad = new Map(stateDict);
    const ln = Float32Array.from(bad.get('transformer.layers.1.input_layernorm.weight')!);
    ln[3] = Number.NaN;
    bad.set('transformer.layers.1.input_layernorm.weight', ln);
    saveCheckpoint(join(work, 'nan'), CONFIG, bad);
    r = await cli(['export-onnx', join(work, 'nan'), '--out', join(work, 'nan.onnx')]);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/cannot export: transformer\.layers\.1\.input_layernorm\.weight\[3\] = NaN/);
    expect(existsSync(join(work, 'nan.onnx'))).toBe(false);
    // an execution provider this onnxruntime-node lacks
    expect(() => checkExecutionProviders(ORT, ['cpu', 'dml'])).toThrow(OnnxRuntimeSetupError);
    expect(() => checkExecutionProviders(ORT, ['dml'])).toThrow(/no 'dml' execution provider \(supported: cpu, .*\)\. Use the cpu provider/);
    r = await cli(['forward', THUDM, '--inputs', BATCH, '--engine', 'onnx', '--onnx', join(work, 'fixture.onnx'), '--onnx-provider', 'cuda']);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/could not start the 'cuda' execution provider .*allowBuilds: onnxruntime-node: false.*use the cpu provider/);
    // listed but not bundled (the install script that fetches it is not run): fails at session creation, explained
    const noTensorrt = OnnxGlm.load(ORT, join(work, 'fixture.onnx'), { executionProviders: ['tensorrt'] });
    await expect(noTensorrt).rejects.toThrow(OnnxRuntimeSetupError);
    await expect(noTensorrt).rejects.toThrow(/could not start the 'tensorrt' execution provider .*allowBuilds: onnxruntime-node: false/);
  });

  it('compareWithReference agrees with the export command on a fresh model', async () => {
    const out = join(work, 'again.onnx');
    expect((await cli(['export-onnx', CK, '--out', out])).code).toBe(0);
    const glm = await OnnxGlm.load(ORT, out, { threads: 2 });
    try {
      const report = await compareWithReference(glm, CONFIG, stateDict, verificationBatch(CONFIG, 20, 3));
      expect(report.values).toBe(2 * 20 * CONFIG.vocab_size);
      expect(report.nmse).toBeLessThan(1e-10);
    } finally {
      await glm.release();
    }
  });
});
