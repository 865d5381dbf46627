import { defineProject } from 'vitest/config';

export default defineProject({
  test: { name: 'model-spec', pool: 'forks', testTimeout: 60_000 },
});
