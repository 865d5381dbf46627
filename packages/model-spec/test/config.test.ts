import { describe, expect, it } from 'vitest';
import { Rng } from '@blankglm/tensor';
import { PRESETS, configFromJson, getPreset, initParameters, padVocabSize, parameterCount, parameterSpecs } from '../src/index.js';

describe('presets', () => {
  it('match the parameter counts of the released models (glm-reference §2.2)', () => {
    for (const [name, p] of Object.entries(PRESETS)) {
      if (p.referenceParams === undefined) continue;
      const n = parameterCount(p.config);
      // the reference table rounds to 0.1M (or 0.01B)
      expect(Math.abs(n - p.referenceParams) / p.referenceParams, name).toBeLessThan(0.006);
    }
  });

  it('pads vocabularies to a multiple of 128 as the released models do', () => {
    expect(padVocabSize(30522 + 2)).toBe(30592);
    expect(padVocabSize(50265 + 2)).toBe(50304);
    expect(padVocabSize(50010)).toBe(50048);
  });

  it('names an unknown preset and lists the known ones', () => {
    expect(() => getPreset('glm-huge')).toThrow(/unknown preset 'glm-huge'.*glm-base/);
  });
});

describe('parameters', () => {
  it('are named and shaped as the THUDM state dict', () => {
    const specs = parameterSpecs(getPreset('glm-base'));
    const byName = new Map(specs.map((s) => [s.name, s.shape]));
    expect(byName.get('word_embeddings.weight')).toEqual([30592, 768]);
    expect(byName.get('transformer.position_embeddings.weight')).toEqual([513, 768]);
    expect(byName.get('transformer.block_position_embeddings.weight')).toEqual([513, 768]);
    expect(byName.get('transformer.layers.11.attention.query_key_value.weight')).toEqual([2304, 768]);
    expect(byName.get('transformer.layers.0.mlp.dense_4h_to_h.weight')).toEqual([768, 3072]);
    expect(byName.get('transformer.final_layernorm.bias')).toEqual([768]);
    expect(specs.length).toBe(3 + 12 * 12 + 2);
  });

  it('initialise as the original: N(0, 0.02), scaled output layers, LN (1, 0)', () => {
    const c = { ...getPreset('glm-tiny'), num_layers: 8 };
    const p = initParameters(c, new Rng(1));
    const std = (a: Float32Array): number => Math.sqrt(a.reduce((s, x) => s + x * x, 0) / a.length);
    expect(std(p.get('word_embeddings.weight')!)).toBeCloseTo(0.02, 3);
    expect(std(p.get('transformer.layers.0.attention.dense.weight')!)).toBeCloseTo(0.02 / 4, 3);
    expect(std(p.get('transformer.layers.0.mlp.dense_4h_to_h.weight')!)).toBeCloseTo(0.02 / 4, 3);
    expect(Array.from(p.get('transformer.layers.0.input_layernorm.weight')!.slice(0, 3))).toEqual([1, 1, 1]);
    expect(Array.from(p.get('transformer.layers.0.attention.query_key_value.bias')!.slice(0, 3))).toEqual([0, 0, 0]);
  });
});

describe('config.json', () => {
  const thudm = {
    architectures: ['GLMModel'],
    model_type: 'glm',
    num_layers: 24,
    vocab_size: 50304,
    hidden_size: 1024,
    num_attention_heads: 16,
    embedding_dropout_prob: 0.1,
    attention_dropout_prob: 0.1,
    output_dropout_prob: 0.1,
    max_sequence_length: 512,
    checkpoint_activations: false,
    checkpoint_num_layers: 1,
    parallel_output: true,
    relative_encoding: false,
    block_position_encoding: true,
    output_predict: true,
    spell_length: null,
    spell_func: 'lstm',
    attention_scale: 1.0,
    initializer_range: 0.02,
    pool_token: 'cls',
    tokenizer_class: 'GLMRobertaTokenizer',
  };

  it('reads a THUDM config.json as plain JSON, with the HF port’s exact GELU', () => {
    const c = configFromJson(thudm);
    expect(c).toMatchObject({ model_type: 'blankglm', num_layers: 24, hidden_size: 1024, vocab_size: 50304, hidden_act: 'gelu_erf', tokenizer_family: 'roberta' });
  });

  it('round-trips blankglm’s own config', () => {
    const c = getPreset('glm-tiny');
    expect(configFromJson(JSON.parse(JSON.stringify(c)))).toEqual(c);
  });

  it('refuses GLM-4 configs and bad fields with the field named', () => {
    expect(() => configFromJson({ model_type: 'glm', num_hidden_layers: 40 })).toThrow(/GLM-4/);
    expect(() => configFromJson({ ...thudm, hidden_size: 1000 })).toThrow(/divisible/);
    expect(() => configFromJson({ ...thudm, num_layers: '24' })).toThrow(/'num_layers'/);
    expect(() => configFromJson({ model_type: 'bert' })).toThrow(/not a GLM config/);
  });
});
