// @blankglm/corruption: GLM's autoregressive blank-infilling sample construction (§1 of
// docs/glm-reference.md) as pure, seeded functions over token ids.
export * from './options.js';
export * from './spans.js';
export * from './layout.js';
export * from './corrupt.js';
export * from './pack.js';
