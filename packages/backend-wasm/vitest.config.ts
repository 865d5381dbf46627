import { defineProject } from 'vitest/config';

export default defineProject({
  test: { name: 'backend-wasm', pool: 'forks', testTimeout: 60_000 },
});
