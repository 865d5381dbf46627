import { defineProject } from 'vitest/config';

export default defineProject({
  test: { name: 'data', pool: 'forks', testTimeout: 60_000 },
});
