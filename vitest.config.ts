import { defineConfig } from 'vitest/config';

// One process runs every project's tests (`pnpm test`); each package also has its own
// vitest.config.ts so `pnpm --filter <pkg> test` works on its own.
export default defineConfig({
  test: {
    projects: ['packages/*', 'apps/*'],
    pool: 'forks',
  },
});
