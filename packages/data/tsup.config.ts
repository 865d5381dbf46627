import { defineConfig } from 'tsup';

export default defineConfig({
  // worker.ts is its own entry: the tokenizer pool starts it as dist/worker.js.
  entry: ['src/index.ts', 'src/worker.ts'],
  format: ['esm'],
  platform: 'node',
  target: 'node20',
  dts: { entry: 'src/index.ts' },
  sourcemap: true,
  clean: true,
});
