// GLM model configuration. Field names mirror the THUDM Hugging Face `config.json` (GLMConfig,
// glm-reference §6.2) so those files read as they are; blankglm's own saved configs carry
// `model_type: "blankglm"` (the name "glm" now also means GLM-4 in transformers) plus the few
// fields the original keeps elsewhere (activation, layer-norm epsilon, tokenizer family).

export type HiddenAct = 'gelu_tanh' | 'gelu_erf';
export type TokenizerFamily = 'bert' | 'gpt2' | 'roberta' | 'chinese-sp';

export interface GlmConfig {
  model_type: 'blankglm';
  num_layers: number;
  /** Rows of the (tied) word embedding: the tokenizer's vocabulary plus command tokens, padded to a multiple of 128. */
  vocab_size: number;
  hidden_size: number;
  num_attention_heads: number;
  /** Both position tables have max_sequence_length + 1 rows. */
  max_sequence_length: number;
  embedding_dropout_prob: number;
  attention_dropout_prob: number;
  output_dropout_prob: number;
  /** Second (block) position table: GLM's 2D positional encoding. */
  block_position_encoding: boolean;
  /** 1.0 in every released model; other values (an fp16 overflow trick) are not supported. */
  attention_scale: number;
  initializer_range: number;
  /** 'gelu_tanh': what the original trained with; 'gelu_erf': what the THUDM HF port computes. */
  hidden_act: HiddenAct;
  layernorm_epsilon: number;
  tokenizer_family: TokenizerFamily;
}

/** Rounds a vocabulary size up to a multiple of 128 (`--make-vocab-size-divisible-by 128`). */
export function padVocabSize(n: number, multiple = 128): number {
  return Math.ceil(n / multiple) * multiple;
}

const DEFAULTS: Omit<GlmConfig, 'num_layers' | 'hidden_size' | 'num_attention_heads' | 'vocab_size' | 'max_sequence_length' | 'tokenizer_family'> = {
  model_type: 'blankglm',
  embedding_dropout_prob: 0.1,
  attention_dropout_prob: 0.1,
  output_dropout_prob: 0.1,
  block_position_encoding: true,
  attention_scale: 1.0,
  initializer_range: 0.02,
  hidden_act: 'gelu_tanh',
  layernorm_epsilon: 1e-5,
};

function preset(p: Pick<GlmConfig, 'num_layers' | 'hidden_size' | 'num_attention_heads' | 'vocab_size' | 'max_sequence_length' | 'tokenizer_family'>): GlmConfig {
  return { ...DEFAULTS, ...p };
}

export interface PresetInfo {
  config: GlmConfig;
  /** What it is, and where the numbers come from. */
  description: string;
  /** Parameter count from the reference table (glm-reference §2.2), for checking. */
  referenceParams?: number;
}

/** Every released GLM (glm-reference §2.2) and small presets for CPU work. */
export const PRESETS: Record<string, PresetInfo> = {
  'glm-base': {
    config: preset({ num_layers: 12, hidden_size: 768, num_attention_heads: 12, vocab_size: 30592, max_sequence_length: 512, tokenizer_family: 'bert' }),
    description: 'GLM-Base (glm-base-blank): 12 layers, 768 hidden, BERT uncased WordPiece',
    referenceParams: 109.3e6,
  },
  'glm-large': {
    config: preset({ num_layers: 24, hidden_size: 1024, num_attention_heads: 16, vocab_size: 30592, max_sequence_length: 512, tokenizer_family: 'bert' }),
    description: 'GLM-Large (glm-large-blank): 24 layers, 1024 hidden, BERT uncased WordPiece',
    referenceParams: 334.7e6,
  },
  'glm-doc': {
    config: preset({ num_layers: 24, hidden_size: 1024, num_attention_heads: 16, vocab_size: 30592, max_sequence_length: 512, tokenizer_family: 'bert' }),
    description: 'GLM-Doc (glm-large-generation): GLM-Large shape, token + document objectives',
    referenceParams: 334.7e6,
  },
  'glm-sent': {
    config: preset({ num_layers: 24, hidden_size: 1024, num_attention_heads: 16, vocab_size: 30592, max_sequence_length: 512, tokenizer_family: 'bert' }),
    description: 'GLM-Sent (paper only): GLM-Large shape, token + sentence objectives (its fine-tune config extends positions to 603)',
  },
  'glm-410m': {
    config: preset({ num_layers: 30, hidden_size: 1024, num_attention_heads: 16, vocab_size: 30592, max_sequence_length: 512, tokenizer_family: 'bert' }),
    description: 'GLM-410M (glm-1.25-generation): 30 layers, 1024 hidden',
    referenceParams: 410.3e6,
  },
  'glm-515m': {
    config: preset({ num_layers: 30, hidden_size: 1152, num_attention_heads: 18, vocab_size: 30592, max_sequence_length: 512, tokenizer_family: 'bert' }),
    description: 'GLM-515M (glm-1.5-generation): 30 layers, 1152 hidden',
    referenceParams: 514.6e6,
  },
  'glm-roberta': {
    config: preset({ num_layers: 24, hidden_size: 1024, num_attention_heads: 16, vocab_size: 50304, max_sequence_length: 512, tokenizer_family: 'roberta' }),
    description: 'GLM-RoBERTa (glm-roberta-large-blank): GLM-Large shape, RoBERTa BPE',
    referenceParams: 354.9e6,
  },
  'glm-large-chinese': {
    config: preset({ num_layers: 24, hidden_size: 1024, num_attention_heads: 16, vocab_size: 50048, max_sequence_length: 1024, tokenizer_family: 'chinese-sp' }),
    description: 'GLM-Large-Chinese: 24 layers, 1024 hidden, Chinese SentencePiece',
    referenceParams: 355.7e6,
  },
  'glm-2b': {
    config: preset({ num_layers: 36, hidden_size: 2048, num_attention_heads: 32, vocab_size: 50304, max_sequence_length: 1024, tokenizer_family: 'gpt2' }),
    description: 'GLM-2B: 36 layers, 2048 hidden, GPT-2 BPE',
    referenceParams: 1.92e9,
  },
  'glm-10b': {
    config: preset({ num_layers: 48, hidden_size: 4096, num_attention_heads: 64, vocab_size: 50304, max_sequence_length: 1024, tokenizer_family: 'gpt2' }),
    description: 'GLM-10B (glm-10b-1024): 48 layers, 4096 hidden, GPT-2 BPE',
    referenceParams: 9.88e9,
  },
  'glm-10b-chinese': {
    config: preset({ num_layers: 48, hidden_size: 4096, num_attention_heads: 64, vocab_size: 50048, max_sequence_length: 1024, tokenizer_family: 'chinese-sp' }),
    description: 'GLM-10B-Chinese: 48 layers, 4096 hidden, Chinese SentencePiece',
    referenceParams: 9.88e9,
  },
  'glm-small': {
    config: preset({ num_layers: 4, hidden_size: 256, num_attention_heads: 4, vocab_size: 30592, max_sequence_length: 512, tokenizer_family: 'bert' }),
    description: 'blankglm small: 4 layers, 256 hidden, BERT vocab — CPU experiments',
  },
  'glm-tiny': {
    config: preset({ num_layers: 2, hidden_size: 128, num_attention_heads: 4, vocab_size: 30592, max_sequence_length: 256, tokenizer_family: 'bert' }),
    description: 'blankglm tiny: 2 layers, 128 hidden, BERT vocab — trains in minutes on 2 CPU cores',
  },
};

export function presetNames(): string[] {
  return Object.keys(PRESETS);
}

/** A copy of a preset's config; throws listing the known presets for an unknown name. */
export function getPreset(name: string): GlmConfig {
  const p = PRESETS[name];
  if (!p) throw new RangeError(`unknown preset '${name}'; known presets: ${presetNames().join(', ')}`);
  return { ...p.config };
}

/** Checks a config and returns it; the error names the field and what was expected. */
export function validateConfig(c: GlmConfig): GlmConfig {
  const int = (name: keyof GlmConfig, min = 1): void => {
    const v = c[name];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min) throw new RangeError(`config field '${name}' must be an integer >= ${min}, got ${JSON.stringify(v)}`);
  };
  const prob = (name: keyof GlmConfig): void => {
    const v = c[name];
    if (typeof v !== 'number' || !(v >= 0 && v < 1)) throw new RangeError(`config field '${name}' must be a probability in [0, 1), got ${JSON.stringify(v)}`);
  };
  int('num_layers');
  int('vocab_size');
  int('hidden_size');
  int('num_attention_heads');
  int('max_sequence_length');
  if (c.hidden_size % c.num_attention_heads !== 0) {
    throw new RangeError(`hidden_size (${c.hidden_size}) must be divisible by num_attention_heads (${c.num_attention_heads})`);
  }
  prob('embedding_dropout_prob');
  prob('attention_dropout_prob');
  prob('output_dropout_prob');
  if (c.attention_scale !== 1) throw new RangeError(`config field 'attention_scale' = ${c.attention_scale} is not supported (every released GLM uses 1.0)`);
  if (c.hidden_act !== 'gelu_tanh' && c.hidden_act !== 'gelu_erf') throw new RangeError(`config field 'hidden_act' must be 'gelu_tanh' or 'gelu_erf', got ${JSON.stringify(c.hidden_act)}`);
  if (!(c.layernorm_epsilon > 0)) throw new RangeError(`config field 'layernorm_epsilon' must be > 0`);
  if (!(c.initializer_range > 0)) throw new RangeError(`config field 'initializer_range' must be > 0`);
  if (typeof c.block_position_encoding !== 'boolean') throw new RangeError(`config field 'block_position_encoding' must be true or false`);
  return c;
}

/**
 * Reads a config.json: blankglm's own (`model_type: "blankglm"`) or a THUDM Hugging Face one
 * (`model_type: "glm"`, read as plain JSON — the same name means GLM-4 in transformers, whose
 * configs have other fields and are refused). THUDM configs compute exact-erf GELU by default,
 * as the HF port does. `source` names the file in error messages.
 */
export function configFromJson(json: unknown, source = 'config.json'): GlmConfig {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new TypeError(`${source}: expected a JSON object`);
  const j = json as Record<string, unknown>;
  const num = (k: string, fallback?: number): number => {
    const v = j[k];
    if (v === undefined && fallback !== undefined) return fallback;
    if (typeof v !== 'number') throw new TypeError(`${source}: field '${k}' must be a number, got ${JSON.stringify(v)}`);
    return v;
  };
  if (j.model_type === 'glm') {
    if (j.num_layers === undefined && (j.num_hidden_layers !== undefined || j.multi_query_attention !== undefined)) {
      throw new TypeError(`${source}: this is a GLM-4/ChatGLM config (model_type "glm" with num_hidden_layers), not a THUDM GLM (2022) config`);
    }
    if (j.relative_encoding === true) throw new RangeError(`${source}: relative_encoding = true is not supported (no released GLM uses it)`);
    const vocab = num('vocab_size');
    const family: TokenizerFamily = vocab === 30592 ? 'bert' : vocab === 50048 ? 'chinese-sp' : j.tokenizer_class === 'GLMRobertaTokenizer' ? 'roberta' : 'gpt2';
    return validateConfig({
      model_type: 'blankglm',
      num_layers: num('num_layers'),
      vocab_size: vocab,
      hidden_size: num('hidden_size'),
      num_attention_heads: num('num_attention_heads'),
      max_sequence_length: num('max_sequence_length'),
      embedding_dropout_prob: num('embedding_dropout_prob', 0.1),
      attention_dropout_prob: num('attention_dropout_prob', 0.1),
      output_dropout_prob: num('output_dropout_prob', 0.1),
      block_position_encoding: j.block_position_encoding === undefined ? true : Boolean(j.block_position_encoding),
      attention_scale: num('attention_scale', 1),
      initializer_range: num('initializer_range', 0.02),
      hidden_act: j.hidden_act === 'gelu_tanh' ? 'gelu_tanh' : 'gelu_erf',
      layernorm_epsilon: num('layernorm_epsilon', 1e-5),
      tokenizer_family: (j.tokenizer_family as TokenizerFamily | undefined) ?? family,
    });
  }
  if (j.model_type === 'blankglm') {
    const c = { ...DEFAULTS, ...(j as Partial<GlmConfig>) } as GlmConfig;
    for (const k of ['num_layers', 'vocab_size', 'hidden_size', 'num_attention_heads', 'max_sequence_length'] as const) num(k);
    if (!['bert', 'gpt2', 'roberta', 'chinese-sp'].includes(c.tokenizer_family)) {
      throw new TypeError(`${source}: field 'tokenizer_family' must be bert, gpt2, roberta or chinese-sp, got ${JSON.stringify(c.tokenizer_family)}`);
    }
    return validateConfig(c);
  }
  throw new TypeError(`${source}: model_type ${JSON.stringify(j.model_type)} is not a GLM config (expected "blankglm" or THUDM's "glm")`);
}

/** The config as blankglm saves it (config.json beside model.safetensors). */
export function configToJson(c: GlmConfig): Record<string, unknown> {
  return { ...validateConfig(c) };
}
