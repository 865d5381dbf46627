// Which tokenizer a preparation uses, as plain data: the main thread and every worker load the
// same one from this description (a tokenizer object cannot cross a thread boundary).
import { loadBertTokenizer, loadGpt2Tokenizer, loadTokenizer, type GlmTokenizer } from '@blankglm/tokenizer';

export type TokenizerSpec =
  /** The embedded BERT uncased WordPiece vocabulary (GLM-Base/Large). */
  | { kind: 'bert' }
  /** The embedded GPT-2 byte-level BPE (GLM-2B/10B). */
  | { kind: 'gpt2' }
  /** Files: a WordPiece `vocab` (.txt) or BPE `vocab` (.json) + `merges`, or a `tokenizerJson`. Absolute paths. */
  | { kind: 'files'; vocab?: string; merges?: string; tokenizerJson?: string };

export type { GlmTokenizer };

export async function loadTokenizerFromSpec(spec: TokenizerSpec): Promise<GlmTokenizer> {
  switch (spec.kind) {
    case 'bert':
      return await loadBertTokenizer();
    case 'gpt2':
      return await loadGpt2Tokenizer();
    case 'files':
      return await loadTokenizer({ vocab: spec.vocab, merges: spec.merges, tokenizerJson: spec.tokenizerJson });
    default:
      throw new TypeError(`unknown tokenizer spec ${JSON.stringify(spec)}`);
  }
}

/** Token ids of several texts, concatenated, with each text's length: what a worker sends back. */
export interface TokenizedChunk {
  ids: Uint32Array;
  lengths: Uint32Array;
}

export function tokenizeTexts(tokenizer: Pick<GlmTokenizer, 'encodeIds'>, texts: readonly string[]): TokenizedChunk {
  const parts: number[][] = [];
  let total = 0;
  for (const t of texts) {
    const ids = tokenizer.encodeIds(t);
    parts.push(ids);
    total += ids.length;
  }
  const ids = new Uint32Array(total);
  const lengths = new Uint32Array(texts.length);
  let at = 0;
  for (let i = 0; i < parts.length; i++) {
    ids.set(parts[i]!, at);
    at += parts[i]!.length;
    lengths[i] = parts[i]!.length;
  }
  return { ids, lengths };
}
