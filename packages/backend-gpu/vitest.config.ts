import { defineProject } from 'vitest/config';

export default defineProject({
  test: { name: 'backend-gpu', pool: 'forks', testTimeout: 600_000 },
});
