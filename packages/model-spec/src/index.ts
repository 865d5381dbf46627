export * from './config.js';
export * from './params.js';
