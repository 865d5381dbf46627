import { defineConfig } from 'tsup';

// Two entries: the library and the worker script (found at run time with
// new URL('./worker.js', import.meta.url)). `clean` wipes dist/, so the asc builds run after tsup.
export default defineConfig({
  entry: ['src/index.ts', 'src/worker.ts'],
  format: ['esm'],
  platform: 'node',
  target: 'node20',
  dts: { entry: 'src/index.ts' },
  sourcemap: true,
  clean: true,
});
