// Checkpoint folders: blankglm's own, THUDM Hugging Face, and the original release layout.
//
//   blankglm          config.json (model_type "blankglm") + model.safetensors [+ tokenizer files]
//   THUDM HF          config.json (model_type "glm") + pytorch_model.bin, or shards
//                     pytorch_model-0000i-of-0000n.bin + pytorch_model.bin.index.json;
//                     keys may carry a `glm.` prefix (HF heads), which is stripped
//   original release  latest_checkpointed_iteration.txt → <tag>/mp_rank_XX_model_states.pt, weights
//                     under 'module'; no config (shape from a preset or a config file); several
//                     mp_rank_XX files are merged back as Megatron split them (see mergeModelParallel)
//
// Every load is checked strictly against parameterSpecs(config): missing, unexpected and wrongly
// shaped tensors are reported together, by name and shape.
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { configFromJson, configToJson, type GlmConfig } from '../config.js';
import { checkStateDict, formatStateDictReport, numel, parameterSpecs, reportIsClean, type StateDict, type StateDictReport } from '../params.js';
import { readSafetensors, writeSafetensors, type TensorData, type TensorToWrite } from './safetensors.js';
import { readTorchStateDict, type TorchTensor } from './torch.js';

export type CheckpointFormat = 'blankglm' | 'thudm-hf' | 'original-release';

export interface LoadedTensor {
  shape: number[];
  data: TensorData;
}

export interface LoadedCheckpoint {
  format: CheckpointFormat;
  config: GlmConfig;
  stateDict: StateDict;
  /** Where the config came from: the folder's config.json or the caller. */
  configSource: string;
  /** Tokenizer files found beside the weights (names relative to the folder). */
  tokenizerFiles: string[];
  /** What the loader did beyond reading: prefixes stripped, shards merged, keys ignored. */
  notes: string[];
}

export interface LoadCheckpointOptions {
  /** Required for original release folders (they carry no config); overrides a folder's config.json otherwise. */
  config?: GlmConfig;
  /** Say where `config` came from (e.g. "preset glm-large"), for messages. */
  configSource?: string;
  /** Drop tensors the config has no parameter for (listed in notes) instead of refusing. Missing or misshaped tensors always fail. */
  allowUnexpected?: boolean;
}

/** Tokenizer files the loaders carry along. */
export const TOKENIZER_FILE_NAMES = ['tokenizer.json', 'vocab.txt', 'vocab.json', 'merges.txt', 'tokenizer_config.json', 'special_tokens_map.json', 'added_tokens.json', 'spiece.model', 'cog-pretrain.model'];

export const LATEST_FILE = 'latest_checkpointed_iteration.txt';

/** Which kind of checkpoint folder `dir` is; throws naming what was looked for. */
export function detectCheckpointFormat(dir: string): CheckpointFormat {
  if (!existsSync(dir)) throw new Error(`${dir}: no such checkpoint folder`);
  if (!statSync(dir).isDirectory()) throw new Error(`${dir}: a checkpoint must be a folder (config.json + weights, or an original release folder)`);
  const configPath = join(dir, 'config.json');
  if (existsSync(configPath)) {
    const json = readJson(configPath) as { model_type?: unknown };
    if (json.model_type === 'blankglm') return 'blankglm';
    if (json.model_type === 'glm') return 'thudm-hf';
    throw new Error(`${configPath}: model_type ${JSON.stringify(json.model_type)} is neither "blankglm" nor THUDM's "glm"`);
  }
  if (existsSync(join(dir, LATEST_FILE))) return 'original-release';
  if (existsSync(join(dir, 'model.safetensors')) || existsSync(join(dir, 'pytorch_model.bin')) || existsSync(join(dir, 'pytorch_model.bin.index.json'))) {
    throw new Error(`${dir}: weights but no config.json; add the config.json that came with them`);
  }
  throw new Error(
    `${dir}: not a checkpoint folder: expected config.json (blankglm or THUDM Hugging Face) or ${LATEST_FILE} (original GLM release; missing here)`,
  );
}

function readJson(file: string): unknown {
  try {
    return JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new Error(`${file}: not valid JSON (${(e as Error).message})`);
  }
}

function fromTorch(t: Map<string, TorchTensor>): Map<string, LoadedTensor> {
  const out = new Map<string, LoadedTensor>();
  for (const [k, v] of t) out.set(k, { shape: v.shape, data: v.data });
  return out;
}

/** Strips the `glm.` prefix HF head models add and the `module.` prefix of wrapped models. */
function stripPrefixes(tensors: Map<string, LoadedTensor>, notes: string[]): Map<string, LoadedTensor> {
  let out = tensors;
  for (const prefix of ['module.', 'glm.']) {
    const keys = [...out.keys()];
    if (keys.length > 0 && keys.some((k) => k.startsWith(prefix))) {
      const next = new Map<string, LoadedTensor>();
      let stripped = 0;
      for (const [k, v] of out) {
        const name = k.startsWith(prefix) ? ((stripped += 1), k.slice(prefix.length)) : k;
        if (next.has(name)) throw new Error(`tensor '${name}' appears both with and without the '${prefix}' prefix`);
        next.set(name, v);
      }
      notes.push(`stripped the '${prefix}' prefix from ${stripped} tensor names`);
      out = next;
    }
  }
  return out;
}

function loadThudmWeights(dir: string, notes: string[]): Map<string, LoadedTensor> {
  const single = join(dir, 'pytorch_model.bin');
  if (existsSync(single)) return fromTorch(readTorchStateDict(single));
  const indexPath = join(dir, 'pytorch_model.bin.index.json');
  if (!existsSync(indexPath)) throw new Error(`${dir}: THUDM folder without pytorch_model.bin or pytorch_model.bin.index.json`);
  const index = readJson(indexPath) as { weight_map?: Record<string, string> };
  if (!index.weight_map || typeof index.weight_map !== 'object') throw new Error(`${indexPath}: no weight_map object`);
  const shards = [...new Set(Object.values(index.weight_map))].sort();
  const out = new Map<string, LoadedTensor>();
  for (const shard of shards) {
    if (shard.includes('/') || shard.includes('\\')) throw new Error(`${indexPath}: shard name '${shard}' must be a file in the folder`);
    const tensors = readTorchStateDict(join(dir, shard));
    for (const [k, v] of tensors) {
      if (index.weight_map[k] !== shard) throw new Error(`${join(dir, shard)}: tensor '${k}' is not listed for this shard in ${basename(indexPath)}`);
      out.set(k, { shape: v.shape, data: v.data });
    }
  }
  for (const k of Object.keys(index.weight_map)) if (!out.has(k)) throw new Error(`${indexPath}: tensor '${k}' is listed in shard ${index.weight_map[k]} but not found there`);
  notes.push(`read ${shards.length} weight shards`);
  return out;
}

/** The tag folder of an original release: `latest_checkpointed_iteration.txt` holds "release" or an iteration. */
export function originalReleaseShards(dir: string): { tag: string; files: string[] } {
  const latest = join(dir, LATEST_FILE);
  if (!existsSync(latest)) throw new Error(`${dir}: missing ${LATEST_FILE} (it names the checkpoint tag, e.g. "release")`);
  const tag = readFileSync(latest, 'utf8').trim();
  if (!/^[A-Za-z0-9_.-]+$/.test(tag)) throw new Error(`${latest}: expected a tag like "release" or an iteration number, got ${JSON.stringify(tag)}`);
  const candidates = [join(dir, tag)];
  if (/^\d+$/.test(tag)) candidates.push(join(dir, `iter_${tag.padStart(7, '0')}`));
  const tagDir = candidates.find((c) => existsSync(c) && statSync(c).isDirectory());
  if (!tagDir) throw new Error(`${latest} names tag '${tag}', but ${candidates.join(' / ')} does not exist`);
  const ranks = readdirSync(tagDir)
    .map((f) => /^mp_rank_(\d+)_model_states\.pt$/.exec(f))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ rank: Number(m[1]), file: join(tagDir, m[0]) }))
    .sort((a, b) => a.rank - b.rank);
  if (ranks.length === 0) throw new Error(`${tagDir}: no mp_rank_XX_model_states.pt files`);
  ranks.forEach((r, i) => {
    if (r.rank !== i) throw new Error(`${tagDir}: model-parallel shards must be mp_rank_00 .. mp_rank_${String(ranks.length - 1).padStart(2, '0')}; rank ${i} is missing`);
  });
  return { tag, files: ranks.map((r) => r.file) };
}

type MergeRule = 'qkv' | 'rows' | 'columns' | 'replicated';

/** How Megatron's model parallelism split each GLM parameter. */
export function modelParallelRule(name: string): MergeRule {
  if (/attention\.query_key_value\.(weight|bias)$/.test(name)) return 'qkv';
  if (/mlp\.dense_h_to_4h\.(weight|bias)$/.test(name) || name === 'word_embeddings.weight') return 'rows';
  if (/(attention\.dense|mlp\.dense_4h_to_h)\.weight$/.test(name)) return 'columns';
  return 'replicated';
}

function concatRows(parts: LoadedTensor[]): LoadedTensor {
  const rest = parts[0]!.shape.slice(1);
  const rows = parts.reduce((n, p) => n + p.shape[0]!, 0);
  const data = new Float32Array(parts.reduce((n, p) => n + p.data.length, 0));
  let at = 0;
  for (const p of parts) {
    data.set(p.data as Float32Array, at);
    at += p.data.length;
  }
  return { shape: [rows, ...rest], data };
}

/**
 * Merges model-parallel shards (rank order) into one state dict, undoing Megatron's split:
 *  - query_key_value (ColumnParallelLinear, stride 3): rank r holds [Q_r; K_r; V_r] → [Q_0..Q_p; K_0..K_p; V_0..V_p];
 *  - dense_h_to_4h weight/bias and the vocab-parallel word embedding: rows concatenated;
 *  - attention.dense and dense_4h_to_h weights (RowParallelLinear): columns concatenated, biases replicated;
 *  - everything else replicated: the shards must agree exactly.
 */
export function mergeModelParallel(shards: Map<string, LoadedTensor>[], shardNames: string[]): Map<string, LoadedTensor> {
  if (shards.length === 1) return shards[0]!;
  const out = new Map<string, LoadedTensor>();
  for (const [name, first] of shards[0]!) {
    const parts = shards.map((s, r) => {
      const t = s.get(name);
      if (!t) throw new Error(`${shardNames[r]}: tensor '${name}' is missing (present in ${shardNames[0]})`);
      if (t.shape.join() !== first.shape.join()) throw new Error(`${shardNames[r]}: tensor '${name}' has shape [${t.shape}], shard 0 has [${first.shape}]`);
      if (!(t.data instanceof Float32Array)) throw new Error(`${shardNames[r]}: tensor '${name}' is not a floating-point tensor`);
      return t;
    });
    const rule = modelParallelRule(name);
    if (rule === 'replicated') {
      for (let r = 1; r < parts.length; r++) {
        const a = first.data as Float32Array;
        const b = parts[r]!.data as Float32Array;
        for (let i = 0; i < a.length; i++) {
          if (a[i] !== b[i] && !(Number.isNaN(a[i]) && Number.isNaN(b[i]))) {
            throw new Error(`${shardNames[r]}: tensor '${name}' should be replicated across model-parallel ranks but differs from rank 0 at element ${i} (${b[i]} vs ${a[i]})`);
          }
        }
      }
      out.set(name, first);
    } else if (rule === 'rows') {
      out.set(name, concatRows(parts));
    } else if (rule === 'qkv') {
      const rows = first.shape[0]!;
      if (rows % 3 !== 0) throw new Error(`${shardNames[0]}: tensor '${name}' has ${rows} rows, not divisible into Q, K, V thirds`);
      const thirds = [0, 1, 2].map((k) =>
        concatRows(
          parts.map((p) => {
            const per = p.data.length / 3;
            return { shape: [rows / 3, ...p.shape.slice(1)], data: (p.data as Float32Array).subarray(k * per, (k + 1) * per) };
          }),
        ),
      );
      out.set(name, concatRows(thirds));
    } else {
      if (first.shape.length !== 2) throw new Error(`${shardNames[0]}: tensor '${name}' should be 2-D to merge by columns, has shape [${first.shape}]`);
      const [rowsN, cols] = first.shape as [number, number];
      const total = cols * parts.length;
      const data = new Float32Array(rowsN * total);
      parts.forEach((p, r) => {
        const src = p.data as Float32Array;
        for (let i = 0; i < rowsN; i++) data.set(src.subarray(i * cols, (i + 1) * cols), i * total + r * cols);
      });
      out.set(name, { shape: [rowsN, total], data });
    }
  }
  for (let r = 1; r < shards.length; r++) {
    for (const name of shards[r]!.keys()) if (!out.has(name)) throw new Error(`${shardNames[r]}: tensor '${name}' is not in ${shardNames[0]}`);
  }
  return out;
}

export class CheckpointMismatchError extends Error {
  override name = 'CheckpointMismatchError';
  constructor(
    readonly source: string,
    readonly report: StateDictReport,
    configSource: string,
  ) {
    super(`${source}: the tensors do not match the config (${configSource}):\n${formatStateDictReport(report)}`);
  }
}

/** Checks strictly and returns the state dict in parameterSpecs order, as f32. */
function toStateDict(source: string, config: GlmConfig, configSource: string, tensors: Map<string, LoadedTensor>, allowUnexpected: boolean, notes: string[]): StateDict {
  const report = checkStateDict(config, tensors);
  if (!reportIsClean(report, allowUnexpected)) throw new CheckpointMismatchError(source, report, configSource);
  if (report.unexpected.length > 0) notes.push(`ignored ${report.unexpected.length} tensors the model has no parameter for: ${report.unexpected.map((u) => u.name).join(', ')}`);
  const sd: StateDict = new Map();
  for (const s of parameterSpecs(config)) {
    const t = tensors.get(s.name)!;
    if (!(t.data instanceof Float32Array)) throw new Error(`${source}: tensor '${s.name}' is an integer tensor, expected floating point`);
    sd.set(s.name, t.data);
  }
  return sd;
}

function tokenizerFilesIn(dir: string): string[] {
  return TOKENIZER_FILE_NAMES.filter((f) => existsSync(join(dir, f)));
}

/** Loads any supported checkpoint folder, checked strictly against its config. */
export function loadCheckpoint(dirIn: string, options: LoadCheckpointOptions = {}): LoadedCheckpoint {
  const dir = resolve(dirIn);
  const format = detectCheckpointFormat(dir);
  const notes: string[] = [];
  let config: GlmConfig;
  let configSource: string;
  if (options.config) {
    config = options.config;
    configSource = options.configSource ?? 'the given config';
  } else if (format === 'original-release') {
    throw new Error(`${dir}: an original GLM release folder carries no config; give its shape with --preset NAME or --config FILE`);
  } else {
    config = configFromJson(readJson(join(dir, 'config.json')), join(dir, 'config.json'));
    configSource = join(dir, 'config.json');
  }
  let tensors: Map<string, LoadedTensor>;
  let source = dir;
  if (format === 'blankglm') {
    source = join(dir, 'model.safetensors');
    if (!existsSync(source)) throw new Error(`${dir}: blankglm folder without model.safetensors`);
    tensors = readSafetensors(source).tensors;
  } else if (format === 'thudm-hf') {
    tensors = stripPrefixes(loadThudmWeights(dir, notes), notes);
  } else {
    const { tag, files } = originalReleaseShards(dir);
    const shards = files.map((f) => stripPrefixes(fromTorch(readTorchStateDict(f, 'module')), []));
    tensors = mergeModelParallel(shards, files);
    notes.push(files.length > 1 ? `merged ${files.length} model-parallel shards of tag '${tag}'` : `read tag '${tag}'`);
  }
  const stateDict = toStateDict(source, config, configSource, tensors, options.allowUnexpected ?? false, notes);
  return { format, config, stateDict, configSource, tokenizerFiles: tokenizerFilesIn(dir), notes };
}

export interface SaveCheckpointOptions {
  /** Tokenizer files to write beside the weights (file name → contents). */
  tokenizerFiles?: Record<string, string | Uint8Array>;
  /** Replace an existing folder (the old one is removed only after the new one is in place). */
  overwrite?: boolean;
}

/**
 * Writes blankglm's format: config.json + model.safetensors (+ tokenizer files), atomically: a
 * temporary folder beside `dir`, renamed into place when complete.
 */
export function saveCheckpoint(dirIn: string, config: GlmConfig, stateDict: StateDict, options: SaveCheckpointOptions = {}): void {
  const dir = resolve(dirIn);
  const report = checkStateDict(config, new Map([...stateDict].map(([k, v]) => [k, { shape: [v.length] }])));
  if (report.missing.length > 0) throw new Error(`saveCheckpoint ${dir}: state dict lacks ${report.missing.map((m) => m.name).join(', ')}`);
  if (report.unexpected.length > 0) throw new Error(`saveCheckpoint ${dir}: state dict has tensors the config does not: ${report.unexpected.map((m) => m.name).join(', ')}`);
  if (existsSync(dir) && !options.overwrite) throw new Error(`${dir} already exists (pass overwrite / --force to replace it)`);
  const tensors = new Map<string, TensorToWrite>();
  for (const s of parameterSpecs(config)) {
    const data = stateDict.get(s.name)!;
    if (data.length !== numel(s.shape)) throw new Error(`saveCheckpoint ${dir}: '${s.name}' has ${data.length} values, shape [${s.shape.join(', ')}] needs ${numel(s.shape)}`);
    tensors.set(s.name, { shape: s.shape, data });
  }
  mkdirSync(dirname(dir), { recursive: true });
  const tmp = `${dir}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp);
  try {
    writeFileSync(join(tmp, 'config.json'), JSON.stringify(configToJson(config), null, 2) + '\n');
    writeSafetensors(join(tmp, 'model.safetensors'), tensors, { format: 'pt', producer: 'blankglm' });
    for (const [name, contents] of Object.entries(options.tokenizerFiles ?? {})) {
      if (name !== basename(name) || name.startsWith('.')) throw new Error(`saveCheckpoint: tokenizer file name '${name}' must be a plain file name`);
      writeFileSync(join(tmp, name), contents);
    }
    if (existsSync(dir)) {
      const old = `${dir}.old-${process.pid}`;
      renameSync(dir, old);
      renameSync(tmp, dir);
      rmSync(old, { recursive: true, force: true });
    } else {
      renameSync(tmp, dir);
    }
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
}
