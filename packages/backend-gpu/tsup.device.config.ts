// The self-contained bundles the GPU machine runs (no node_modules there): the GPU checks and the
// training benchmark, with every @blankglm package inlined. Built by scripts/prepare-device.sh.
import { defineConfig } from 'tsup';

export default defineConfig({
  entry: { 'gpu-check': 'scripts/device/gpu-check.ts', 'train-bench': '../../benchmarks/gpu/train-bench.mjs', 'attention-bench': '../../benchmarks/gpu/attention-bench.mjs', 'norm-bench': '../../benchmarks/gpu/norm-bench.mjs', 'host-overhead': '../../benchmarks/gpu/host-overhead.mjs' },
  outDir: '../../.carry/device',
  format: ['esm'],
  outExtension: () => ({ js: '.mjs' }),
  platform: 'node',
  target: 'node20',
  noExternal: [/.*/],
  external: ['vitest'],
  splitting: false,
  dts: false,
  sourcemap: false,
  clean: true,
});
