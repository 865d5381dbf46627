export * from './random.js';
export * from './batch.js';
