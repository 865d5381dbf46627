export * from './random.js';
export * from './batch.js';
export * from './backend.js';
export * from './ops.js';
