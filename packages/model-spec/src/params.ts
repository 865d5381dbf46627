// GLM's parameters, named and shaped exactly as the original GLMModel state dict (glm-reference
// §6.1), so THUDM `pytorch_model.bin` files and original `module` dicts load strictly.
import type { Rng } from '@blankglm/tensor';
import type { GlmConfig } from './config.js';

export type ParamInit = 'normal' | 'scaled_normal' | 'zeros' | 'ones';

export interface ParamSpec {
  name: string;
  shape: number[];
  /** From-scratch initialisation (§2.1): N(0, σ), N(0, σ/√(2·layers)) for output layers, 0 or 1. */
  init: ParamInit;
  /** AdamW applies weight decay (false for biases and LayerNorm parameters). */
  decay: boolean;
}

export function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** Every parameter in state-dict order. */
export function parameterSpecs(c: GlmConfig): ParamSpec[] {
  const h = c.hidden_size;
  const rows = c.max_sequence_length + 1;
  const specs: ParamSpec[] = [
    { name: 'word_embeddings.weight', shape: [c.vocab_size, h], init: 'normal', decay: true },
    { name: 'transformer.position_embeddings.weight', shape: [rows, h], init: 'normal', decay: true },
  ];
  if (c.block_position_encoding) {
    specs.push({ name: 'transformer.block_position_embeddings.weight', shape: [rows, h], init: 'normal', decay: true });
  }
  for (let i = 0; i < c.num_layers; i++) {
    const p = `transformer.layers.${i}.`;
    specs.push(
      { name: p + 'input_layernorm.weight', shape: [h], init: 'ones', decay: false },
      { name: p + 'input_layernorm.bias', shape: [h], init: 'zeros', decay: false },
      { name: p + 'attention.query_key_value.weight', shape: [3 * h, h], init: 'normal', decay: true },
      { name: p + 'attention.query_key_value.bias', shape: [3 * h], init: 'zeros', decay: false },
      { name: p + 'attention.dense.weight', shape: [h, h], init: 'scaled_normal', decay: true },
      { name: p + 'attention.dense.bias', shape: [h], init: 'zeros', decay: false },
      { name: p + 'post_attention_layernorm.weight', shape: [h], init: 'ones', decay: false },
      { name: p + 'post_attention_layernorm.bias', shape: [h], init: 'zeros', decay: false },
      { name: p + 'mlp.dense_h_to_4h.weight', shape: [4 * h, h], init: 'normal', decay: true },
      { name: p + 'mlp.dense_h_to_4h.bias', shape: [4 * h], init: 'zeros', decay: false },
      { name: p + 'mlp.dense_4h_to_h.weight', shape: [h, 4 * h], init: 'scaled_normal', decay: true },
      { name: p + 'mlp.dense_4h_to_h.bias', shape: [h], init: 'zeros', decay: false },
    );
  }
  specs.push(
    { name: 'transformer.final_layernorm.weight', shape: [h], init: 'ones', decay: false },
    { name: 'transformer.final_layernorm.bias', shape: [h], init: 'zeros', decay: false },
  );
  return specs;
}

export function parameterCount(c: GlmConfig): number {
  return parameterSpecs(c).reduce((n, s) => n + numel(s.shape), 0);
}

/** Host copies of every parameter, by name. */
export type StateDict = Map<string, Float32Array>;

/** Fresh parameters initialised as the original (§2.1), from an explicit Rng. */
export function initParameters(c: GlmConfig, rng: Rng): StateDict {
  const sigma = c.initializer_range;
  const scaled = sigma / Math.sqrt(2 * c.num_layers);
  const out: StateDict = new Map();
  for (const s of parameterSpecs(c)) {
    const data = new Float32Array(numel(s.shape));
    if (s.init === 'ones') data.fill(1);
    else if (s.init === 'normal' || s.init === 'scaled_normal') {
      const std = s.init === 'normal' ? sigma : scaled;
      for (let i = 0; i < data.length; i++) data[i] = rng.normal(0, std);
    }
    out.set(s.name, data);
  }
  return out;
}

export interface StateDictReport {
  missing: { name: string; shape: number[] }[];
  unexpected: { name: string; shape: number[] }[];
  wrongShape: { name: string; expected: number[]; got: number[] }[];
}

/** Compares tensors (by name, with shapes) with the parameters `config` (or a spec list) needs. */
export function checkStateDict(config: GlmConfig | readonly ParamSpec[], tensors: ReadonlyMap<string, { shape: readonly number[] }>): StateDictReport {
  const report: StateDictReport = { missing: [], unexpected: [], wrongShape: [] };
  const specs = Array.isArray(config) ? (config as readonly ParamSpec[]) : parameterSpecs(config as GlmConfig);
  const known = new Set(specs.map((s) => s.name));
  for (const s of specs) {
    const t = tensors.get(s.name);
    if (!t) report.missing.push({ name: s.name, shape: s.shape });
    else if (t.shape.join(',') !== s.shape.join(',')) report.wrongShape.push({ name: s.name, expected: s.shape, got: [...t.shape] });
  }
  for (const [name, t] of tensors) if (!known.has(name)) report.unexpected.push({ name, shape: [...t.shape] });
  return report;
}

export function reportIsClean(r: StateDictReport, allowUnexpected = false): boolean {
  return r.missing.length === 0 && r.wrongShape.length === 0 && (allowUnexpected || r.unexpected.length === 0);
}

/** A readable report: at most `limit` names per section, shapes in brackets. */
export function formatStateDictReport(r: StateDictReport, limit = 20): string {
  const lines: string[] = [];
  const section = <T>(title: string, items: T[], fmt: (x: T) => string): void => {
    if (items.length === 0) return;
    lines.push(`${title} (${items.length}):`);
    for (const x of items.slice(0, limit)) lines.push(`  ${fmt(x)}`);
    if (items.length > limit) lines.push(`  ... and ${items.length - limit} more`);
  };
  section('wrongly shaped', r.wrongShape, (x) => `${x.name}: expected [${x.expected.join(', ')}], got [${x.got.join(', ')}]`);
  section('missing', r.missing, (x) => `${x.name} [${x.shape.join(', ')}]`);
  section('unexpected', r.unexpected, (x) => `${x.name} [${x.shape.join(', ')}]`);
  return lines.join('\n');
}
