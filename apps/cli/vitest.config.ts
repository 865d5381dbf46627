import { defineProject } from 'vitest/config';

export default defineProject({
  test: { name: 'cli', pool: 'forks', testTimeout: 120_000 },
});
