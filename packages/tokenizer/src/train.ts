// WordPiece vocabulary training as Hugging Face's WordPieceTrainer does it: BPE training over the
// normalised, pre-tokenised words with `##` on every non-initial character, merging the most frequent
// adjacent pair until the vocabulary is full, then reading the BPE vocabulary as a WordPiece one.
//
// One deliberate difference: Hugging Face walks its words in hash-map order, so the ids of `##x`
// tokens, and with them the order of merges whose counts tie, vary from run to run. Here words are
// walked in order of first occurrence, so training is deterministic.
import { renameSync, writeFileSync } from 'node:fs';
import { BertPreTokenizer, UNCASED_BERT_NORMALIZER, type BertNormalizerOptions } from './bert.js';
import { bertTokenizerFromVocab } from './load.js';
import type { GlmTokenizer } from './tokenizer.js';

export interface WordPieceTrainerOptions {
  /** Target number of tokens, special tokens and alphabet included. Default 30,000 (Hugging Face's). */
  vocabSize?: number;
  /** A merge must occur at least this often (counted over the corpus). Default 0 (Hugging Face's). */
  minFrequency?: number;
  /** Tokens given the first ids, in this order. Default BERT's `[PAD] [UNK] [CLS] [SEP] [MASK]`. */
  specialTokens?: string[];
  /** Keep only this many of the most frequent characters as the initial alphabet. Default: all. */
  limitAlphabet?: number;
  /** Characters always kept in the alphabet. */
  initialAlphabet?: string[];
  continuingSubwordPrefix?: string;
  normalizer?: BertNormalizerOptions;
}

export interface TrainedWordPiece {
  /** Tokens in id order. */
  vocab: string[];
  /** The vocabulary as a vocab.txt (one token per line). */
  vocabText(): string;
  /** Writes vocab.txt atomically (temporary file, then rename). */
  save(path: string): void;
  /** A BERT-family GlmTokenizer over the trained vocabulary (GLM's command tokens appended). */
  tokenizer(): GlmTokenizer;
}

/** A max-heap entry: a pair, its count when queued, and the words it occurs in. */
interface Merge {
  left: number;
  right: number;
  count: number;
  words: Set<number>;
}

/** Hugging Face's merge order: higher count first, then the smaller pair (left id, then right id). */
function before(a: Merge, b: Merge): boolean {
  if (a.count !== b.count) return a.count > b.count;
  if (a.left !== b.left) return a.left < b.left;
  return a.right < b.right;
}

class MergeQueue {
  private readonly heap: Merge[] = [];
  get size(): number {
    return this.heap.length;
  }
  push(m: Merge): void {
    const h = this.heap;
    h.push(m);
    let i = h.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(h[i]!, h[parent]!)) break;
      [h[i], h[parent]] = [h[parent]!, h[i]!];
      i = parent;
    }
  }
  pop(): Merge | undefined {
    const h = this.heap;
    const top = h[0];
    const last = h.pop();
    if (h.length > 0 && last !== undefined) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let best = i;
        if (l < h.length && before(h[l]!, h[best]!)) best = l;
        if (r < h.length && before(h[r]!, h[best]!)) best = r;
        if (best === i) break;
        [h[i], h[best]] = [h[best]!, h[i]!];
        i = best;
      }
    }
    return top;
  }
}

const PAIR_SHIFT = 2 ** 21;
const pairKey = (a: number, b: number): number => a * PAIR_SHIFT + b;

/** Trains a WordPiece vocabulary on `texts` (any iterable of strings, e.g. lines of a book). */
export function trainWordPiece(texts: Iterable<string>, options: WordPieceTrainerOptions = {}): TrainedWordPiece {
  const vocabSize = options.vocabSize ?? 30_000;
  const minFrequency = options.minFrequency ?? 0;
  const specialTokens = options.specialTokens ?? ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'];
  const prefix = options.continuingSubwordPrefix ?? '##';
  const normalizer = options.normalizer ?? UNCASED_BERT_NORMALIZER;
  if (!Number.isInteger(vocabSize) || vocabSize < 1) throw new Error(`trainWordPiece: vocabSize must be a positive integer, got ${vocabSize}`);

  // 1. Word counts, in order of first occurrence.
  const pre = new BertPreTokenizer(normalizer);
  const wordCounts = new Map<string, number>();
  for (const text of texts) {
    pre.scan(text, (word) => wordCounts.set(word, (wordCounts.get(word) ?? 0) + 1), false);
  }

  const idToWord: string[] = [];
  const wordToId = new Map<string, number>();
  const add = (token: string): number => {
    let id = wordToId.get(token);
    if (id === undefined) {
      id = idToWord.length;
      idToWord.push(token);
      wordToId.set(token, id);
    }
    return id;
  };
  // 2. Special tokens first.
  for (const t of specialTokens) add(t);

  // 3. The alphabet: every character, weighted by word counts; the rarest dropped past the limit;
  // added in code point order.
  const alphabet = new Map<number, number>();
  for (const [word, count] of wordCounts) {
    for (const ch of word) {
      const cp = ch.codePointAt(0)!;
      alphabet.set(cp, (alphabet.get(cp) ?? 0) + count);
    }
  }
  for (const ch of options.initialAlphabet ?? []) alphabet.set(ch.codePointAt(0)!, Number.MAX_SAFE_INTEGER);
  let kept = [...alphabet.entries()];
  const limit = options.limitAlphabet;
  if (limit !== undefined && kept.length > limit) {
    kept.sort((a, b) => a[1] - b[1] || a[0] - b[0]);
    kept = kept.slice(kept.length - limit);
  }
  kept.sort((a, b) => a[0] - b[0]);
  for (const [cp] of kept) add(String.fromCodePoint(cp));

  // 4. Each word as symbol ids: its first character plain, the others with the `##` prefix;
  // characters outside the alphabet are dropped.
  const words: number[][] = [];
  const counts: number[] = [];
  for (const [word, count] of wordCounts) {
    const symbols: number[] = [];
    let first = true;
    for (const ch of word) {
      if (wordToId.has(ch)) symbols.push(add(first ? ch : prefix + ch));
      first = false;
    }
    words.push(symbols);
    counts.push(count);
  }

  // 5. Pair counts and where each pair occurs.
  const pairCounts = new Map<number, number>();
  let whereToUpdate = new Map<number, Set<number>>();
  words.forEach((symbols, w) => {
    for (let k = 0; k + 1 < symbols.length; k++) {
      const key = pairKey(symbols[k]!, symbols[k + 1]!);
      pairCounts.set(key, (pairCounts.get(key) ?? 0) + counts[w]!);
      let where = whereToUpdate.get(key);
      if (!where) whereToUpdate.set(key, (where = new Set()));
      where.add(w);
    }
  });
  const queue = new MergeQueue();
  const enqueueUpdates = (): void => {
    for (const [key, where] of whereToUpdate) {
      const count = pairCounts.get(key) ?? 0;
      if (count > 0) queue.push({ left: Math.floor(key / PAIR_SHIFT), right: key % PAIR_SHIFT, count, words: where });
    }
    whereToUpdate = new Map();
  };
  enqueueUpdates();

  // 6. Merge the most frequent pair until the vocabulary is full.
  while (wordToId.size < vocabSize && queue.size > 0) {
    const top = queue.pop()!;
    const key = pairKey(top.left, top.right);
    const current = pairCounts.get(key) ?? 0;
    if (top.count !== current) {
      top.count = current;
      queue.push(top);
      continue;
    }
    if (top.count < 1 || minFrequency > top.count) break;
    const partA = idToWord[top.left]!;
    let partB = idToWord[top.right]!;
    if (partB.startsWith(prefix)) partB = partB.slice(prefix.length);
    const merged = add(partA + partB);
    for (const w of top.words) {
      const changes = mergeInWord(words[w]!, top.left, top.right, merged);
      for (let c = 0; c < changes.length; c += 2) {
        const pair = changes[c]!;
        const change = changes[c + 1]!;
        pairCounts.set(pair, (pairCounts.get(pair) ?? 0) + change * counts[w]!);
        if (change > 0) {
          let where = whereToUpdate.get(pair);
          if (!where) whereToUpdate.set(pair, (where = new Set()));
          where.add(w);
        }
      }
    }
    enqueueUpdates();
  }

  const vocab = idToWord;
  const vocabText = (): string => vocab.join('\n') + '\n';
  return {
    vocab,
    vocabText,
    save(path: string): void {
      const tmp = `${path}.tmp-${process.pid}`;
      writeFileSync(tmp, vocabText(), 'utf8');
      renameSync(tmp, path);
    },
    tokenizer(): GlmTokenizer {
      const map = new Map<string, number>();
      vocab.forEach((t, id) => map.set(t, id));
      return bertTokenizerFromVocab(map, { continuingSubwordPrefix: prefix, normalizer, unkToken: specialTokens.includes('[UNK]') ? '[UNK]' : vocab[0]! });
    },
  };
}

/**
 * Replaces every (left, right) in `symbols` by `merged`, left to right; returns the pair-count
 * changes as flat [pairKey, delta, …], exactly as Hugging Face's `Word::merge`.
 */
function mergeInWord(symbols: number[], left: number, right: number, merged: number): number[] {
  const changes: number[] = [];
  let i = 0;
  while (i < symbols.length) {
    if (symbols[i] === left && i + 1 < symbols.length && symbols[i + 1] === right) {
      if (i > 0) {
        changes.push(pairKey(symbols[i - 1]!, left), -1);
        changes.push(pairKey(symbols[i - 1]!, merged), 1);
      }
      symbols.splice(i, 2, merged);
      if (i < symbols.length - 1) {
        changes.push(pairKey(right, symbols[i + 1]!), -1);
        changes.push(pairKey(merged, symbols[i + 1]!), 1);
      }
    }
    i++;
  }
  return changes;
}
