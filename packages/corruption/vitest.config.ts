import { defineProject } from 'vitest/config';

export default defineProject({
  test: { name: 'corruption', pool: 'forks', testTimeout: 60_000 },
});
