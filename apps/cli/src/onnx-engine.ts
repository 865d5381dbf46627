// The ONNX engine of the CLI: onnxruntime-node (a dependency of the CLI only; the library
// package @blankglm/onnx takes the runtime as a parameter) behind the same scoring and blank
// filling as the native engine. onnxruntime-node's install script only fetches optional GPU
// provider libraries; the CPU provider is bundled, so this works whether or not it ran.
import { existsSync } from 'node:fs';
import type { ForwardResult, GlmConfig, RowPosition } from '@blankglm/model-spec';
import { OnnxGlm, OnnxRuntimeSetupError, scoreFromLogits, type OrtModuleLike } from '@blankglm/onnx';
import type { GlmBatch } from '@blankglm/tensor';
import { CliError } from './cli.js';

export const ENGINE_NAMES = ['native', 'onnx'] as const;
export type EngineName = (typeof ENGINE_NAMES)[number];

/** Parses --engine; the error lists the choices. */
export function parseEngine(value: unknown): EngineName {
  const v = value === undefined ? 'native' : String(value);
  if (!(ENGINE_NAMES as readonly string[]).includes(v)) throw new CliError(`unknown --engine '${v}'; expected ${ENGINE_NAMES.join(' or ')}`);
  return v as EngineName;
}

let ortModule: OrtModuleLike | null = null;

/** onnxruntime-node, loaded on first use (so commands that do not need it never load its native addon). */
export async function loadOnnxRuntime(): Promise<OrtModuleLike> {
  if (ortModule) return ortModule;
  try {
    // onnxruntime-node's own typings are wider than the structural OrtModuleLike (overloaded Tensor constructors).
    ortModule = (await import('onnxruntime-node')) as unknown as OrtModuleLike;
  } catch (e) {
    throw new CliError(
      `could not load onnxruntime-node (${(e as Error).message}).\n` +
        'It is a dependency of @blankglm/cli: reinstall it (pnpm install / npm install @blankglm/cli). Its CPU provider is bundled; no install script is needed.',
    );
  }
  return ortModule;
}

export interface OnnxEngineOptions {
  /** Execution providers, e.g. ['cpu'] (default) or ['cuda', 'cpu']. */
  executionProviders?: string[];
  threads?: number;
  /** Checked against the model's own metadata: a mismatch means the wrong .onnx for this checkpoint. */
  expectConfig?: GlmConfig;
}

/** Opens an exported model with onnxruntime-node; errors are CliErrors that say what to do. */
export async function openOnnxModel(path: string, options: OnnxEngineOptions = {}): Promise<OnnxGlm> {
  if (!existsSync(path)) throw new CliError(`--onnx: ${path} does not exist (export one with 'blankglm export-onnx <checkpoint> --out ${path}')`);
  const ort = await loadOnnxRuntime();
  let glm: OnnxGlm;
  try {
    glm = await OnnxGlm.load(ort, path, {
      ...(options.executionProviders ? { executionProviders: options.executionProviders } : {}),
      ...(options.threads !== undefined ? { threads: options.threads } : {}),
    });
  } catch (e) {
    if (e instanceof OnnxRuntimeSetupError) throw new CliError(e.message);
    throw new CliError((e as Error).message);
  }
  const want = options.expectConfig;
  if (want) {
    const got = glm.config;
    const fields = ['num_layers', 'hidden_size', 'num_attention_heads', 'vocab_size', 'max_sequence_length', 'hidden_act', 'layernorm_epsilon', 'block_position_encoding'] as const;
    const diff = fields.filter((f) => got[f] !== want[f]).map((f) => `${f}: model ${String(got[f])}, checkpoint ${String(want[f])}`);
    if (diff.length) {
      await glm.release();
      throw new CliError(`${path} was exported from a different model than the checkpoint (${diff.join('; ')}); re-export it with 'blankglm export-onnx'`);
    }
  }
  return glm;
}

/** The native forward's result (targets, loss, logits rows) computed by ONNX Runtime. */
export async function onnxForward(glm: OnnxGlm, batch: GlmBatch, logitsAt: readonly RowPosition[]): Promise<ForwardResult> {
  let logits: Float32Array;
  try {
    logits = await glm.logits(batch);
  } catch (e) {
    throw new CliError(`ONNX Runtime failed: ${(e as Error).message}`);
  }
  return scoreFromLogits(logits, glm.config.vocab_size, batch, logitsAt);
}
