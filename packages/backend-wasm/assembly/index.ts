// The kernel module: every export is a kernel the host calls (through the worker pool) with byte
// offsets into the one imported memory and sizes as i32. Kernels allocate nothing.
// To add a kernel file: write assembly/<op>.ts and re-export it here (see CONTRIBUTING-KERNELS.md).
export { gemm, gemmFewRows, gemmScratchBytes, activationBackward, columnSums } from './gemm';
export { fill32, fill8, copyBytes } from './memory';

/** Where static data ends; the host's arena starts above it. */
export function heapBase(): usize {
  return __heap_base;
}
export { crossEntropyRows, crossEntropyBackwardRows } from './output';
export { simdPeak } from './peak';
export { layerNormRows, layerNormBackwardRows, layerNormReduceBlocks } from './layernorm';
export { attentionForward, attentionBackwardQueries, attentionBackwardKeys } from './attention';
export { embeddingRows, gatherRowsRange, scatterAddRowsRange } from './rows';
export { dropoutAddRange, dropoutBackwardRange, scaleRange, counterHashRange } from './elementwise';
export { adamwRange, sumSquaresBlocks, sumSquaresFinish } from './optimizer';
