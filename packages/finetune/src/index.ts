// @blankglm/finetune: GLM fine-tuning and evaluation as data. A task is a JSON file; a task kind
// (cloze, and the kinds other modules register) turns it and a data split into examples, model
// inputs, a training loss and metrics. `finetune()` runs the trainer's loop over any kind.
export * from './tasks/registry.js';
export * from './tasks/load.js';
export * from './data/jsonl.js';
export * from './finetune.js';
export * from './lm/index.js';
import './lm/register.js';
export * from './metrics/classification.js';
export * from './cloze/pattern.js';
export * from './cloze/task.js';
export * from './cloze/examples.js';
export * from './cloze/inputs.js';
export * from './cloze/kind.js';
export * from './cloze/classifier.js';

import { clozeKind } from './cloze/kind.js';
import { registerTaskKind } from './tasks/registry.js';

registerTaskKind(clozeKind);
