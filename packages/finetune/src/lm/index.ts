// Generation-style task kinds (seq2seq, infilling, zero-shot LM, multiple choice), their inputs and metrics.
export * from './rows.js';
export * from './score.js';
export * from './lambada.js';
export * from './wikitext.js';
export * from './multichoice.js';
export * from './kinds.js';
export * from '../seq2seq/format.js';
export * from '../seq2seq/data.js';
export * from '../seq2seq/generate.js';
export * from '../seq2seq/kind.js';
export * from '../infill/infill.js';
export * from '../infill/kind.js';
export * from '../metrics/rouge.js';
export * from '../metrics/bleu.js';
export * from '../metrics/porter.js';
