// @blankglm/tokenizer: exact BERT WordPiece and GPT-2 byte-level BPE (token ids equal to Hugging Face
// `tokenizers`), GLM's command tokens per family, embedded default vocabularies, WordPiece training.
export {
  GLM_SPECIAL_TOKENS,
  GLM_COMMAND_TOKEN_TEXTS,
  CHINESE_10B_ORIGINAL_GMASK,
  type GlmSpecialTokens,
  type TokenizerFamily,
  type CommandTokenText,
} from './special.js';
export {
  glmCommandTokens,
  type GlmTokenizer,
  type Encoding,
  type EncodeOptions,
  type DecodeOptions,
  type AddedToken,
  type SavedTokenizer,
} from './tokenizer.js';
export {
  BERT_UNCASED_VOCAB_SHA256,
  embeddedBertVocabText,
  loadBertTokenizer,
  loadGpt2Tokenizer,
  loadTokenizerJson,
  loadTokenizer,
  tokenizerFromHuggingFaceJson,
  tokenizerFromJSON,
  bertTokenizerFromVocab,
  gpt2TokenizerFromVocab,
  parseVocabTxt,
  parseVocabJson,
  parseMergesTxt,
  type WordPieceSettings,
  type BpeSettings,
} from './load.js';
export { UNCASED_BERT_NORMALIZER, type BertNormalizerOptions } from './bert.js';
export { bytesToUnicode, GPT2_SPLIT_PATTERN } from './gpt2.js';
export { trainWordPiece, type WordPieceTrainerOptions, type TrainedWordPiece } from './train.js';
