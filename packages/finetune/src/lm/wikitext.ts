// WikiText zero-shot perplexity with overlapping windows (glm-reference §4.8; Megatron's LM
// evaluation, which GLM copies).
//
// The `.tokens` file is read whole, detokenised (`detokenizeWikitext`, below) and tokenised as one
// document t_0..t_{N-1}. With sequence length S (1024 for WikiText-103 in the reference) the windows
// are w_i = t[i·o : i·o + S − 1] for overlap o (256):
//
//   window 0   Part A = [CLS] t_0 [gMASK]                       Part B = [sop] t_1 .. t_{S-3}
//              predicts t_1 .. t_{S-2} (every token of the window after t_0)
//   window i   Part A = [CLS] w_i[0 .. S−1−o) [gMASK]           Part B = [sop] + its last o tokens[:-1]
//              predicts the last o tokens of w_i (Part A gives it S − 1 − o tokens of bidirectional context)
//
// Part B sits at the mask's position with block positions 1..k; no eos in LM windows. Window i ≥ 1
// predicts t[i·o + S − 1 − o, i·o + S − 1), so every token after t_0 is predicted exactly once;
// windows whose predicted range is empty (past the end) are not built. Unidirectional mode: Part A =
// [CLS] w_i[0] [gMASK], the rest of the window in Part B, loss only on the tokens the window predicts.
//
//   token PPL     exp(Σ NLL / (N − 1))                          N = tokens after detokenisation
//   adjusted PPL  exp(Σ NLL / (W − 1))                          W = words of the ORIGINAL file,
//                 Megatron's `len(raw_text.strip().split(" "))`: single-space split, so newlines
//                 inside " \n " count as words, as in the reference
import type { GlmModel } from '@blankglm/model-spec';
import type { GlmTokenizer } from '@blankglm/tokenizer';
import { appendSpan, partA, type GlmRow } from './rows.js';
import { scoreRows } from './score.js';
import type { LmMaskToken, LmProtocol } from './lambada.js';

/**
 * Megatron's `wikitext_detokenizer` (which GLM's `tasks/language_model/detokenizer.py` copies), rule by
 * rule, in order:
 *  1. `s '` → `s'`; the literal pattern `/' [0-9]/` → `/'[0-9]/` (a no-op on real text, kept as the
 *     reference has it);
 *  2. number separators ` @-@ ` → `-`, ` @,@ ` → `,`, ` @.@ ` → `.`;
 *  3. ` : `→`: `, ` ; `→`; `, ` . `→`. `, ` ! `→`! `, ` ? `→`? `, ` , `→`, `;
 *  4. brackets and quotes hug their content: `( x )`→`(x)`, `[ x ]`→`[x]`, `{ x }`→`{x}`,
 *     `" x "`→`"x"`, `' x '`→`'x'` (non-greedy, left to right);
 *  5. `= = = =`→`====`, `= = =`→`===`, `= =`→`==`; ` ° `→`°`; ` \n`→`\n`; `\n `→`\n`;
 *     ` N `→` 1 `; ` 's`→`'s`.
 */
export function detokenizeWikitext(text: string): string {
  let s = text;
  s = s.split("s '").join("s'");
  s = s.replace(/\/' [0-9]\//g, "/'[0-9]/");
  s = s.split(' @-@ ').join('-');
  s = s.split(' @,@ ').join(',');
  s = s.split(' @.@ ').join('.');
  s = s.split(' : ').join(': ');
  s = s.split(' ; ').join('; ');
  s = s.split(' . ').join('. ');
  s = s.split(' ! ').join('! ');
  s = s.split(' ? ').join('? ');
  s = s.split(' , ').join(', ');
  s = s.replace(/\(\s*([^)]*?)\s*\)/g, '($1)');
  s = s.replace(/\[\s*([^\]]*?)\s*\]/g, '[$1]');
  s = s.replace(/{\s*([^}]*?)\s*}/g, '{$1}');
  s = s.replace(/"\s*([^"]*?)\s*"/g, '"$1"');
  s = s.replace(/'\s*([^']*?)\s*'/g, "'$1'");
  s = s.split('= = = =').join('====');
  s = s.split('= = =').join('===');
  s = s.split('= =').join('==');
  s = s.split(' \u00b0 ').join('\u00b0');
  s = s.split(' \n').join('\n');
  s = s.split('\n ').join('\n');
  s = s.split(' N ').join(' 1 ');
  s = s.split(" 's").join("'s");
  return s;
}

/** Megatron's word count of the original (not detokenised) text: `len(text.strip().split(" "))`. */
export function wikitextWordCount(raw: string): number {
  // Python's str.strip() removes whitespace at both ends; split(" ") keeps empty strings.
  return raw.replace(/^\s+|\s+$/g, '').split(' ').length;
}

export interface LmWindow {
  /** Index of the window's first token in the document. */
  start: number;
  /** Document tokens the window covers: [start, end). */
  end: number;
  /** Tokens [predictFrom, end) are predicted by this window. */
  predictFrom: number;
}

/**
 * The windows over a document of `n` tokens: length `seqLength − 1`, stride `overlap`; window 0
 * predicts from token 1, window i from `start + seqLength − 1 − overlap`. Windows predicting
 * nothing are dropped.
 */
export function lmWindows(n: number, seqLength: number, overlap: number): LmWindow[] {
  const windowLength = seqLength - 1;
  if (!Number.isInteger(seqLength) || seqLength < 4) throw new RangeError(`lmWindows: seqLength must be a whole number ≥ 4, got ${seqLength}`);
  if (!Number.isInteger(overlap) || overlap < 1 || overlap > windowLength - 1) {
    throw new RangeError(`lmWindows: overlap must be a whole number in 1..${windowLength - 1} (seqLength − 2), got ${overlap}`);
  }
  const out: LmWindow[] = [];
  if (n < 2) return out;
  out.push({ start: 0, end: Math.min(n, windowLength), predictFrom: 1 });
  for (let i = 1; ; i++) {
    const start = i * overlap;
    const predictFrom = start + windowLength - overlap;
    if (predictFrom >= n) break;
    out.push({ start, end: Math.min(n, start + windowLength), predictFrom });
  }
  return out;
}

/** The model input of one window of `tokens`. */
export function buildWindowRow(tokens: ArrayLike<number>, w: LmWindow, special: { cls: number; sop: number; mask: number }, protocol: LmProtocol): GlmRow {
  const slice = (a: number, b: number): number[] => Array.from({ length: b - a }, (_, k) => tokens[a + k]!);
  if (protocol === 'bidirectional') {
    const context = slice(w.start, w.predictFrom);
    const row = partA([special.cls, ...context, special.mask]);
    appendSpan(row, special.sop, context.length + 1, slice(w.predictFrom, w.end));
    return row;
  }
  const row = partA([special.cls, tokens[w.start]!, special.mask]);
  appendSpan(row, special.sop, 2, slice(w.start + 1, w.end), w.predictFrom - (w.start + 1));
  return row;
}

export interface WikitextResult {
  /** exp(Σ NLL / (tokens − 1)). */
  perplexity: number;
  /** exp(Σ NLL / (words − 1)). */
  adjustedPerplexity: number;
  /** Σ NLL / (tokens − 1). */
  loss: number;
  tokens: number;
  words: number;
  windows: number;
  predicted: number;
}

export interface WikitextOptions {
  seqLength: number;
  overlap: number;
  protocol: LmProtocol;
  maskToken: LmMaskToken;
  batchSize: number;
  /** Only the first this many tokens of the document (a quick look); the word count is scaled to match. */
  maxTokens?: number;
  onProgress?: (done: number, total: number) => void;
}

/** Perplexity of `model` on the raw `.tokens` text of a WikiText file. */
export function evaluateWikitext(model: GlmModel, tokenizer: GlmTokenizer, raw: string, options: WikitextOptions): WikitextResult {
  let tokens = tokenizer.encodeIds(detokenizeWikitext(raw));
  let words = wikitextWordCount(raw);
  if (options.maxTokens !== undefined && options.maxTokens < tokens.length) {
    // Words in proportion to the tokens kept, so that the adjusted PPL stays comparable.
    words = Math.max(2, Math.round((words * options.maxTokens) / tokens.length));
    tokens = tokens.slice(0, options.maxTokens);
  }
  if (tokens.length < 2) throw new RangeError('evaluateWikitext: the text has fewer than 2 tokens; nothing to predict');
  const s = tokenizer.special;
  const special = { cls: s.cls, sop: s.sop, mask: options.maskToken === 'gMask' ? s.gMask : s.mask };
  const windows = lmWindows(tokens.length, options.seqLength, options.overlap);
  const rows = windows.map((w) => buildWindowRow(tokens, w, special, options.protocol));
  const scores = scoreRows(model, rows, { batchSize: options.batchSize, padId: s.pad, ...(options.onProgress ? { onProgress: options.onProgress } : {}) });
  let nll = 0;
  let predicted = 0;
  for (const sc of scores) {
    for (const lp of sc.logProbs) nll -= lp;
    predicted += sc.logProbs.length;
  }
  const loss = nll / (tokens.length - 1);
  return {
    perplexity: Math.exp(loss),
    adjustedPerplexity: Math.exp(nll / (words - 1)),
    loss,
    tokens: tokens.length,
    words,
    windows: windows.length,
    predicted,
  };
}
