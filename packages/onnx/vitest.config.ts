import { defineProject } from 'vitest/config';

export default defineProject({
  test: { name: 'onnx', pool: 'forks', testTimeout: 60_000 },
});
