// Running an exported GLM with ONNX Runtime. The runtime module is *injected* (onnxruntime-node,
// onnxruntime-web, …) and typed structurally, so this library has no dependency on either: the
// CLI and the benchmarks pass `await import('onnxruntime-node')`.
import { glmKeyRanges, type GlmBatch } from '@blankglm/tensor';
import type { GlmConfig } from '@blankglm/model-spec';
import { GLM_ONNX_NAMES, type MaskInput } from './glm-graph.js';
import { readOnnxSummary } from './summary.js';

/** The part of an ONNX Runtime tensor used here. */
export interface OrtTensorLike {
  readonly data: unknown;
  readonly dims: readonly number[];
  readonly type: string;
  dispose?(): void;
}

export interface OrtSessionLike {
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  run(feeds: Record<string, OrtTensorLike>): Promise<Record<string, OrtTensorLike>>;
  release?(): Promise<void>;
}

export interface OrtSessionOptions {
  executionProviders?: string[];
  intraOpNumThreads?: number;
  interOpNumThreads?: number;
  graphOptimizationLevel?: 'disabled' | 'basic' | 'extended' | 'all';
}

/** The part of the onnxruntime-node / onnxruntime-web module used here. */
export interface OrtModuleLike {
  Tensor: new (type: 'float32' | 'int64', data: Float32Array | BigInt64Array, dims: readonly number[]) => OrtTensorLike;
  InferenceSession: { create(pathOrBytes: string | Uint8Array, options?: OrtSessionOptions): Promise<OrtSessionLike> };
  /** onnxruntime-node only: the execution providers this build can use. */
  listSupportedBackends?: () => ReadonlyArray<{ name: string; bundled?: boolean }>;
}

/** The runtime lacks something asked for (an execution provider); the message says what to do. */
export class OnnxRuntimeSetupError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'OnnxRuntimeSetupError';
  }
}

export interface OnnxGlmOptions {
  /** Execution providers in order of preference (default ['cpu']). */
  executionProviders?: string[];
  /** Intra-op threads (ORT's default: one per core). */
  threads?: number;
  /** The model's config, when the file carries no blankglm metadata (a foreign export). */
  config?: GlmConfig;
  /** The file's bytes instead of a path (onnxruntime-web in Node reads no files). */
  bytes?: Uint8Array;
}

function providerHint(ep: string): string {
  if (ep === 'cuda' || ep === 'tensorrt') {
    return (
      ` onnxruntime-node ships its ${ep} provider libraries only through its install script, which this workspace does not run ` +
      `(pnpm-workspace.yaml: allowBuilds: onnxruntime-node: false). On a machine with the NVIDIA driver, CUDA 12 and access to the NuGet feed, ` +
      `set 'onnxruntime-node: true' and reinstall; otherwise use the cpu provider (the default).`
    );
  }
  if (ep === 'webgpu') return ' The webgpu provider needs a GPU adapter (Vulkan/Metal/D3D12) visible to this process; use cpu otherwise.';
  return ' Use the cpu provider (the default), or a runtime build that includes this provider.';
}

/**
 * Checks each requested execution provider against the ones the runtime knows (onnxruntime-node's
 * listSupportedBackends); an unknown one throws OnnxRuntimeSetupError naming the supported ones.
 * Known but unbundled providers (cuda, tensorrt) can still fail at session creation; `OnnxGlm.load`
 * turns that failure into the same error with what to do.
 */
export function checkExecutionProviders(ort: OrtModuleLike, requested: readonly string[]): void {
  if (!ort.listSupportedBackends) return; // onnxruntime-web: the session reports unsupported ones itself
  const supported = ort.listSupportedBackends();
  for (const ep of requested) {
    if (!supported.some((b) => b.name === ep)) {
      const names = supported.map((b) => (b.bundled === false ? `${b.name} (not bundled)` : b.name));
      throw new OnnxRuntimeSetupError(`ONNX Runtime here has no '${ep}' execution provider (supported: ${names.join(', ')}).${providerHint(ep)}`);
    }
  }
}

/** A GLM forward over an ONNX Runtime session. */
export class OnnxGlm {
  private constructor(
    readonly ort: OrtModuleLike,
    readonly session: OrtSessionLike,
    readonly config: GlmConfig,
    readonly mask: MaskInput,
    readonly pastKeyValues: boolean,
  ) {}

  /** Loads an exported model; the config, mask kind and past key/values come from its metadata. */
  static async load(ort: OrtModuleLike, modelPath: string, options: OnnxGlmOptions = {}): Promise<OnnxGlm> {
    const summary = readOnnxSummary(modelPath);
    const glm = summary.glm;
    const config = options.config ?? glm?.config;
    if (!config) throw new RangeError(`${modelPath}: no blankglm metadata (not exported by 'blankglm export-onnx'); pass the model's config`);
    const eps = options.executionProviders ?? ['cpu'];
    checkExecutionProviders(ort, eps);
    const sessionOptions: OrtSessionOptions = { executionProviders: eps, graphOptimizationLevel: 'all' };
    if (options.threads !== undefined) {
      if (!Number.isInteger(options.threads) || options.threads < 1) throw new RangeError(`threads must be a positive integer, got ${options.threads}`);
      sessionOptions.intraOpNumThreads = options.threads;
      sessionOptions.interOpNumThreads = 1;
    }
    let session: OrtSessionLike;
    try {
      session = await ort.InferenceSession.create(options.bytes ?? modelPath, sessionOptions);
    } catch (e) {
      const message = (e as Error).message.split('\n')[0]!;
      const gpuEp = eps.find((ep) => ep !== 'cpu');
      if (gpuEp && /shared library|backend not found|adapter|provider/i.test(message)) {
        throw new OnnxRuntimeSetupError(`ONNX Runtime could not start the '${gpuEp}' execution provider (${message}).${providerHint(gpuEp)}`);
      }
      throw new Error(`ONNX Runtime could not load ${modelPath}: ${message}`);
    }
    const names = new Set(session.inputNames);
    for (const n of [GLM_ONNX_NAMES.inputIds, GLM_ONNX_NAMES.positionIds, GLM_ONNX_NAMES.attentionMask]) {
      if (!names.has(n)) throw new RangeError(`${modelPath}: the model has no input '${n}' (inputs: ${session.inputNames.join(', ')}); not a blankglm GLM export`);
    }
    return new OnnxGlm(ort, session, config, glm?.mask ?? 'sep', names.has(GLM_ONNX_NAMES.pastKey(0)));
  }

  get headDim(): number {
    return this.config.hidden_size / this.config.num_attention_heads;
  }

  /** Empty past key/values ([B, heads, 0, d]) for a plain forward. */
  private emptyPast(batch: number): Record<string, OrtTensorLike> {
    const feeds: Record<string, OrtTensorLike> = {};
    if (!this.pastKeyValues) return feeds;
    const dims = [batch, this.config.num_attention_heads, 0, this.headDim];
    for (let l = 0; l < this.config.num_layers; l++) {
      feeds[GLM_ONNX_NAMES.pastKey(l)] = new this.ort.Tensor('float32', new Float32Array(0), dims);
      feeds[GLM_ONNX_NAMES.pastValue(l)] = new this.ort.Tensor('float32', new Float32Array(0), dims);
    }
    return feeds;
  }

  /** The model's input feeds for a batch (no cache). Packed rows need a 'matrix' model. */
  feeds(batch: GlmBatch): Record<string, OrtTensorLike> {
    const B = batch.batchSize;
    const L = batch.seqLength;
    const packed = batch.numSegments !== 1 || batch.segmentIds !== undefined;
    const positions = new BigInt64Array(B * 2 * L);
    for (let b = 0; b < B; b++) {
      for (let i = 0; i < L; i++) {
        positions[(b * 2) * L + i] = BigInt(batch.positionIds[b * L + i]!);
        positions[(b * 2 + 1) * L + i] = BigInt(batch.blockPositionIds[b * L + i]!);
      }
    }
    let mask: OrtTensorLike;
    if (this.mask === 'sep') {
      if (packed) throw new RangeError('this ONNX model takes one sep per row; packed rows (several segments) need a model exported with --mask matrix');
      mask = new this.ort.Tensor('int64', BigInt64Array.from(batch.sep, (s) => BigInt(s)), [B]);
    } else {
      const { keyStart, keyEnd } = glmKeyRanges(batch);
      const m = new Float32Array(B * L * L); // [B, 1, L, L]
      for (let o = 0; o < B * L; o++) m.fill(1, o * L + keyStart[o]!, o * L + keyEnd[o]!);
      mask = new this.ort.Tensor('float32', m, [B, 1, L, L]);
    }
    return {
      [GLM_ONNX_NAMES.inputIds]: new this.ort.Tensor('int64', BigInt64Array.from(batch.inputIds, (t) => BigInt(t)), [B, L]),
      [GLM_ONNX_NAMES.positionIds]: new this.ort.Tensor('int64', positions, [B, 2, L]),
      [GLM_ONNX_NAMES.attentionMask]: mask,
      ...this.emptyPast(B),
    };
  }

  /** Full logits [B, L, vocab_size] for a batch. */
  async logits(batch: GlmBatch): Promise<Float32Array> {
    const out = await this.session.run(this.feeds(batch));
    const logits = out[GLM_ONNX_NAMES.logits];
    if (!logits) throw new Error(`the ONNX model returned no '${GLM_ONNX_NAMES.logits}' output`);
    for (const [name, t] of Object.entries(out)) if (name !== GLM_ONNX_NAMES.logits) t.dispose?.();
    return logits.data as Float32Array;
  }

  async release(): Promise<void> {
    await this.session.release?.();
  }
}
