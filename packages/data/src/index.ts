// @blankglm/data: corpora → binary token shards (in worker threads) → a deterministic, resumable
// stream of GLM training batches.
export * from './corpus.js';
export * from './embedded.js';
export * from './shards.js';
export * from './tokenizer.js';
export * from './prepare.js';
export * from './windows.js';
export * from './dataset.js';
