import { defineProject } from 'vitest/config';

export default defineProject({
  test: { name: 'finetune', pool: 'forks', testTimeout: 120_000 },
});
