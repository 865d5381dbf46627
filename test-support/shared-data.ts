// Where tests find the real data of ../shared/data (BERT/GPT-2 vocabularies, books, SuperGLUE, ...).
// It is read in place and never copied into the repo; on a user's machine it is absent, and tests
// that need it skip with a message naming the missing path.
import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** The shared data folder: $BLANKGLM_SHARED_DATA, else `<repo>/../shared/data`. */
export const sharedDataDir = process.env.BLANKGLM_SHARED_DATA ?? resolve(repoRoot, '../shared/data');

/** Absolute path of a file under the shared data folder. */
export function sharedData(relative: string): string {
  return resolve(sharedDataDir, relative);
}

/**
 * Whether a shared data file exists; when it does not, prints why the dependent tests skip.
 * Use as `describe.skipIf(!hasSharedData('vocab/gpt2-merges.txt'))(...)`.
 */
export function hasSharedData(relative: string): boolean {
  const p = sharedData(relative);
  if (existsSync(p)) return true;
  console.warn(`[skip] shared data not found: ${p} (tests that need it are skipped)`);
  return false;
}

export { repoRoot };
