import { defineProject } from 'vitest/config';

export default defineProject({
  test: { name: 'trainer', pool: 'forks', testTimeout: 120_000 },
});
