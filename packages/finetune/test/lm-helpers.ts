// A micro GLM over the BERT vocabulary on the reference backend, for fast end-to-end tests.
import { createReferenceBackend } from '@blankglm/backend-ref';
import { GlmModel, getPreset } from '@blankglm/model-spec';
import { Rng } from '@blankglm/tensor';
import { loadBertTokenizer, type GlmTokenizer } from '@blankglm/tokenizer';

let bert: GlmTokenizer | null = null;
export function bertTokenizer(): GlmTokenizer {
  bert ??= loadBertTokenizer();
  return bert;
}

export function microModel(seed = 7, maxSequenceLength = 128): GlmModel {
  const config = { ...getPreset('glm-tiny'), num_layers: 1, hidden_size: 32, num_attention_heads: 2, max_sequence_length: maxSequenceLength };
  return GlmModel.create(createReferenceBackend(), config, { rng: new Rng(seed) });
}
