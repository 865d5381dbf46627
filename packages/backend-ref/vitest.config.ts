import { defineProject } from 'vitest/config';

export default defineProject({
  test: { name: 'backend-ref', pool: 'forks', testTimeout: 60_000 },
});
