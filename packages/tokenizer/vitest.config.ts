import { defineProject } from 'vitest/config';

export default defineProject({
  test: { name: 'tokenizer', pool: 'forks', testTimeout: 60_000 },
});
