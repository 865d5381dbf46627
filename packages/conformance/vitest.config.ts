import { defineProject } from 'vitest/config';

export default defineProject({
  test: { name: 'conformance', pool: 'forks', testTimeout: 60_000 },
});
