// @blankglm/trainer: the training loop shared by pretraining and fine-tuning (AdamW, GLM's
// AnnealingLR, gradient accumulation and clipping, evaluation), atomic checkpoints with bit-exact
// resume, metrics and a loss curve, and GLM pretraining on prepared shards.
export * from './schedule.js';
export * from './trainer.js';
export * from './objective.js';
export * from './checkpoints.js';
export * from './metrics.js';
export * from './pretrain.js';
