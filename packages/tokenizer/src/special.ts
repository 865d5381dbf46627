// GLM's command tokens, one table per tokenizer family, with the exact ids of the original THUDM/GLM
// code and its Hugging Face port (glm-reference.md §2.2). Every other module reads ids from here.

export type TokenizerFamily = 'bert' | 'gpt2' | 'roberta' | 'chinese-sp';

/** The ids GLM gives its command tokens in one tokenizer family. */
export interface GlmSpecialTokens {
  family: TokenizerFamily;
  /** Padding id. */
  pad: number;
  /** End-of-document id appended to every document (BERT: the same id as `[PAD]`). */
  eos: number;
  /** `[CLS]` (the `ENC` command token every sample starts with). */
  cls: number;
  sep: number;
  /** `[MASK]`: token-level blank. */
  mask: number;
  unk: number;
  /** `<|startofpiece|>`: starts each Part-B span. */
  sop: number;
  /** `<|endofpiece|>`: ends each Part-B span. */
  eop: number;
  /** `[gMASK]`: document-level (generation) blank. */
  gMask: number;
  /** `[sMASK]`: sentence-level blank. */
  sMask: number;
  /** `[dBLOCK]`: only GPT-2-family pretraining defines it. */
  dBlock?: number;
  /** Rows of the embedding table (vocabulary padded to a multiple the model was trained with). */
  paddedVocabSize: number;
}

/** The text of every command token, per family (the string a user may type with `parseSpecialTokens`). */
export interface CommandTokenText {
  id: number;
  text: string;
  /** The token absorbs the whitespace on its left when parsed from text (GPT-2: the mask tokens). */
  lstrip: boolean;
}

export const GLM_SPECIAL_TOKENS: Readonly<Record<TokenizerFamily, Readonly<GlmSpecialTokens>>> = Object.freeze({
  // BERT uncased (GLM-Base/Large/Doc/Sent/410M/515M): [PAD] doubles as eos.
  bert: Object.freeze({
    family: 'bert',
    pad: 0,
    eos: 0,
    unk: 100,
    cls: 101,
    sep: 102,
    mask: 103,
    sop: 30522,
    eop: 30523,
    gMask: 30524,
    sMask: 30525,
    paddedVocabSize: 30592,
  }),
  // GPT-2 BPE (GLM-2B/10B): <|endoftext|> is pad and eos; the HF port calls [UNK] "[UNUSED]".
  gpt2: Object.freeze({
    family: 'gpt2',
    pad: 50256,
    eos: 50256,
    sop: 50257,
    eop: 50258,
    cls: 50259,
    mask: 50260,
    sep: 50261,
    unk: 50262,
    gMask: 50263,
    sMask: 50264,
    dBlock: 50265,
    paddedVocabSize: 50304,
  }),
  // RoBERTa BPE (GLM-RoBERTa): pad = eos = sep = </s>. [gMASK]/[sMASK] only exist with --task-mask.
  roberta: Object.freeze({
    family: 'roberta',
    pad: 2,
    eos: 2,
    sep: 2,
    cls: 0,
    unk: 3,
    mask: 50264,
    sop: 50265,
    eop: 50266,
    gMask: 50267,
    sMask: 50268,
    paddedVocabSize: 50304,
  }),
  // Chinese SentencePiece (GLM-Large-Chinese, and GLM-10B-Chinese as its HF port remaps it:
  // the original 10B-Chinese gave [gMASK] id 50007 = eop; see CHINESE_10B_ORIGINAL_GMASK).
  'chinese-sp': Object.freeze({
    family: 'chinese-sp',
    pad: 50000,
    eos: 50000,
    sep: 50001,
    cls: 50002,
    mask: 50003,
    unk: 50004,
    sop: 50006,
    eop: 50007,
    sMask: 50008,
    gMask: 50009,
    paddedVocabSize: 50048,
  }),
});

/**
 * GLM-10B-Chinese was pretrained without --fix-command-token, so its `[gMASK]` got id 50007, the same
 * id as `<|endofpiece|>`. The HF conversion copies embedding row 50007 to 50009 and maps `[gMASK]`
 * to 50009 (and bans 50009 from generation), which is what GLM_SPECIAL_TOKENS['chinese-sp'] holds.
 * A loader of the ORIGINAL 10B-Chinese checkpoint must copy row CHINESE_10B_ORIGINAL_GMASK into
 * row GLM_SPECIAL_TOKENS['chinese-sp'].gMask the same way.
 */
export const CHINESE_10B_ORIGINAL_GMASK = 50007;

const bertCommandTexts = (s: GlmSpecialTokens): CommandTokenText[] => [
  { id: s.pad, text: '[PAD]', lstrip: false },
  { id: s.unk, text: '[UNK]', lstrip: false },
  { id: s.cls, text: '[CLS]', lstrip: false },
  { id: s.sep, text: '[SEP]', lstrip: false },
  { id: s.mask, text: '[MASK]', lstrip: false },
  { id: s.sop, text: '<|startofpiece|>', lstrip: false },
  { id: s.eop, text: '<|endofpiece|>', lstrip: false },
  { id: s.gMask, text: '[gMASK]', lstrip: false },
  { id: s.sMask, text: '[sMASK]', lstrip: false },
];

/** The command tokens' texts per family (the strings `parseSpecialTokens: true` turns into ids). */
export const GLM_COMMAND_TOKEN_TEXTS: Readonly<Record<TokenizerFamily, readonly CommandTokenText[]>> = Object.freeze({
  bert: bertCommandTexts(GLM_SPECIAL_TOKENS.bert),
  gpt2: [
    { id: 50256, text: '<|endoftext|>', lstrip: false },
    { id: 50257, text: '<|startofpiece|>', lstrip: false },
    { id: 50258, text: '<|endofpiece|>', lstrip: false },
    { id: 50259, text: '[CLS]', lstrip: false },
    { id: 50260, text: '[MASK]', lstrip: true },
    { id: 50261, text: '[SEP]', lstrip: false },
    { id: 50262, text: '[UNK]', lstrip: false },
    { id: 50263, text: '[gMASK]', lstrip: true },
    { id: 50264, text: '[sMASK]', lstrip: true },
    { id: 50265, text: '[dBLOCK]', lstrip: false },
  ],
  roberta: [
    { id: 0, text: '<s>', lstrip: false },
    { id: 2, text: '</s>', lstrip: false },
    { id: 3, text: '<unk>', lstrip: false },
    { id: 50264, text: '<mask>', lstrip: true },
    { id: 50265, text: '<|startofpiece|>', lstrip: false },
    { id: 50266, text: '<|endofpiece|>', lstrip: false },
    { id: 50267, text: '[gMASK]', lstrip: true },
    { id: 50268, text: '[sMASK]', lstrip: true },
  ],
  'chinese-sp': [
    { id: 50000, text: '<|endoftext|>', lstrip: false },
    { id: 50001, text: '[SEP]', lstrip: false },
    { id: 50002, text: '[CLS]', lstrip: false },
    { id: 50003, text: '[MASK]', lstrip: false },
    { id: 50004, text: '[UNUSED1]', lstrip: false },
    { id: 50005, text: '[UNUSED2]', lstrip: false },
    { id: 50006, text: '<|startofpiece|>', lstrip: false },
    { id: 50007, text: '<|endofpiece|>', lstrip: false },
    { id: 50008, text: '[sMASK]', lstrip: false },
    { id: 50009, text: '[gMASK]', lstrip: false },
  ],
});
