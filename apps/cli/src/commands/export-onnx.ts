// `blankglm export-onnx`: a checkpoint → an ONNX graph of the GLM forward (see @blankglm/onnx),
// optionally verified against the reference backend with onnxruntime-node.
import { existsSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { createReferenceBackend } from '@blankglm/backend-ref';
import { GlmModel, type GlmConfig, type StateDict } from '@blankglm/model-spec';
import { exportGlmToOnnx, ONNX_OPSET, OnnxExportError, type MaskInput, type OnnxGlm } from '@blankglm/onnx';
import { Rng, type GlmBatch } from '@blankglm/tensor';
import { CliError, type Command } from '../cli.js';
import { openOnnxModel } from '../onnx-engine.js';
import { CONFIG_OPTIONS, describeConfig, FORMAT_NAMES, loadCheckpointForCli } from '../checkpoint-io.js';

export interface ParityReport {
  /** Σ(onnx − ref)² / Σ ref² over every logit compared. */
  nmse: number;
  maxAbsDiff: number;
  values: number;
}

/**
 * A seeded 2-row GLM batch of length L: row 0 with sep in the middle, row 1 with sep = 1
 * (almost all Part B); Part-B tokens carry block positions 1, 2, … as real GLM batches do.
 */
export function verificationBatch(config: GlmConfig, seqLength: number, seed: number): GlmBatch {
  const rng = new Rng(seed);
  const B = 2;
  const L = seqLength;
  const sep = Int32Array.of(Math.max(1, Math.floor(L / 2)), 1);
  const inputIds = Int32Array.from({ length: B * L }, () => rng.int(config.vocab_size));
  const positionIds = new Int32Array(B * L);
  const blockPositionIds = new Int32Array(B * L);
  for (let b = 0; b < B; b++) {
    for (let i = 0; i < L; i++) {
      const partB = i >= sep[b]!;
      positionIds[b * L + i] = partB ? sep[b]! - 1 : i;
      blockPositionIds[b * L + i] = partB ? i - sep[b]! + 1 : 0;
    }
  }
  return { batchSize: B, seqLength: L, numSegments: 1, sep, inputIds, positionIds, blockPositionIds };
}

/** Logits of every position from the reference backend and from ONNX Runtime, compared. */
export async function compareWithReference(glm: OnnxGlm, config: GlmConfig, stateDict: StateDict, batch: GlmBatch): Promise<ParityReport> {
  const model = GlmModel.create(createReferenceBackend(), config, { stateDict });
  let ref: Float32Array;
  try {
    const at = Array.from({ length: batch.batchSize * batch.seqLength }, (_, o) => ({ row: Math.floor(o / batch.seqLength), position: o % batch.seqLength }));
    ref = model.forward(batch, { logitsAt: at }).logits!.values;
  } finally {
    model.dispose();
  }
  const got = await glm.logits(batch);
  let num = 0;
  let den = 0;
  let maxAbsDiff = 0;
  for (let i = 0; i < ref.length; i++) {
    const d = got[i]! - ref[i]!;
    num += d * d;
    den += ref[i]! * ref[i]!;
    maxAbsDiff = Math.max(maxAbsDiff, Math.abs(d));
  }
  return { nmse: den > 0 ? num / den : num, maxAbsDiff, values: ref.length };
}

/** NMSE bound of the conformance suite's f32 tier. */
export const PARITY_NMSE = 5e-4;

export const exportOnnxCommand: Command = {
  name: 'export-onnx',
  summary: 'Export a checkpoint to ONNX (the GLM forward, opset 17) for ONNX Runtime',
  description: `
Writes the GLM forward as an ONNX graph (opset ${ONNX_OPSET}, IR 8) with the weights as initializers:
  inputs   input_ids int64 [batch, seq], position_ids int64 [batch, 2, seq],
           attention_mask int64 [batch] (--mask sep: where each row's Part B starts)
                       or float [batch, 1, seq, total_seq] (--mask matrix: 1 = attends; packed rows),
           past_key_<l> / past_value_<l> float [batch, heads, past_seq, head_dim] (unless --no-past;
           feed past_seq = 0 for a plain forward)
  outputs  logits float [batch, seq, vocab], present_key_<l> / present_value_<l>
Batch and sequence axes are dynamic. Models over 1.8 GB of weights (or with --external-data) keep
their weights in <out>.data beside the graph, as ONNX's external-data convention prescribes.

--verify runs a seeded 2-row batch through onnxruntime-node and the reference backend and prints
the NMSE of the logits (fails above ${PARITY_NMSE}).

Examples:
  blankglm export-onnx ./glm-base-bg --out glm-base.onnx --verify
  blankglm export-onnx ./glm-large-blank --preset glm-large --out glm-large.onnx --mask matrix`,
  positionals: [{ name: 'checkpoint', required: true, description: 'A checkpoint folder (blankglm, THUDM Hugging Face, original release).' }],
  options: {
    out: { type: 'string', placeholder: 'model.onnx', description: 'The ONNX file to write.' },
    mask: { type: 'string', placeholder: 'sep|matrix', default: 'sep', description: 'Attention-mask input: per-row sep, or an explicit [B, 1, L, T] matrix (packed rows).' },
    'no-past': { type: 'boolean', description: 'Leave out the past/present key-value inputs and outputs (no incremental decoding).' },
    'external-data': { type: 'boolean', description: 'Write the weights to <out>.data even when they would fit in the .onnx file.' },
    force: { type: 'boolean', description: 'Replace an existing --out file.' },
    verify: { type: 'boolean', description: 'Check the exported model against the reference backend with onnxruntime-node.' },
    ...CONFIG_OPTIONS,
  },
  async run({ positionals, options, io }) {
    const out = options.out as string | undefined;
    if (!out) throw new CliError("missing --out <model.onnx>: where to write the ONNX model\nRun 'blankglm export-onnx --help' for usage.");
    const outPath = resolve(io.cwd, out);
    if (!existsSync(dirname(outPath))) throw new CliError(`--out: folder ${dirname(outPath)} does not exist`);
    if (existsSync(outPath) && !options.force) throw new CliError(`${outPath} already exists; pass --force to replace it`);
    const mask = options.mask as string;
    if (mask !== 'sep' && mask !== 'matrix') throw new CliError(`--mask '${mask}': expected sep or matrix`);

    const ck = loadCheckpointForCli(positionals[0]!, options, io.cwd);
    const w = (s: string): void => void io.stdout.write(s + '\n');
    w(`checkpoint: ${FORMAT_NAMES[ck.format]}; ${describeConfig(ck.config)}`);
    const started = performance.now();
    let written;
    try {
      written = exportGlmToOnnx(ck.config, ck.stateDict, outPath, {
        mask: mask as MaskInput,
        pastKeyValues: !options['no-past'],
        externalData: options['external-data'] ? true : 'auto',
        overwrite: Boolean(options.force),
      });
    } catch (e) {
      if (e instanceof OnnxExportError) throw new CliError(e.message);
      throw new CliError(`export to ${outPath} failed: ${(e as Error).message}`);
    }
    const mb = (n: number): string => (n / 1e6).toFixed(1) + ' MB';
    w(`wrote ${written.modelPath} (${mb(statSync(written.modelPath).size)}, opset ${ONNX_OPSET}, mask ${mask}, ${options['no-past'] ? 'no' : 'with'} past key/values, ${written.initializers} initializers) in ${((performance.now() - started) / 1000).toFixed(1)} s`);
    if (written.dataPath) w(`weights in ${written.dataPath} (${mb(written.dataBytes)})`);

    if (options.verify) {
      const glm = await openOnnxModel(outPath, { expectConfig: ck.config });
      try {
        const L = Math.min(16, ck.config.max_sequence_length);
        const report = await compareWithReference(glm, ck.config, ck.stateDict, verificationBatch(ck.config, L, 1234));
        const ok = report.nmse <= PARITY_NMSE;
        w(`verify: onnxruntime-node vs reference backend on 2×${L} tokens: logits NMSE ${report.nmse.toExponential(2)}, max |diff| ${report.maxAbsDiff.toExponential(2)} — ${ok ? 'ok' : 'FAILED'}`);
        if (!ok) return 1;
      } finally {
        await glm.release();
      }
    }
  },
};
