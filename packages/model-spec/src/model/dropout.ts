// Dropout seeds: every dropout site of one forward call gets its own 32-bit seed derived from the
// call's seed, so a training step is reproducible from (seed) alone and sites never share masks.
//
//   siteSeed(callSeed, site) = counterHash32(callSeed, DROPOUT_SALT, site), stream 0
//   site 0          embedding output
//   site 1 + 3·l    layer l attention probabilities (the attention op adds b·heads + h to the stream)
//   site 2 + 3·l    layer l attention output (attention.dense, before the residual add)
//   site 3 + 3·l    layer l MLP output (dense_4h_to_h, before the residual add)
import { counterHash32, type DropoutAttrs } from '@blankglm/tensor';

/** Mixed into every site seed so dropout masks do not coincide with other users of counterHash32. */
export const DROPOUT_SALT = 0x64726f70; // "drop"

export const NO_DROPOUT: DropoutAttrs = { p: 0, seed: 0, stream: 0 };

export type DropoutSite = 'embedding' | 'attentionProbs' | 'attentionOutput' | 'mlpOutput';

export function dropoutSiteIndex(site: DropoutSite, layer = 0): number {
  switch (site) {
    case 'embedding':
      return 0;
    case 'attentionProbs':
      return 1 + 3 * layer;
    case 'attentionOutput':
      return 2 + 3 * layer;
    case 'mlpOutput':
      return 3 + 3 * layer;
  }
}

/** The dropout attributes of one site; p = 0 (no hashing at all) when `callSeed` is null (eval mode). */
export function siteDropout(p: number, callSeed: number | null, site: DropoutSite, layer = 0): DropoutAttrs {
  if (callSeed === null || p === 0) return NO_DROPOUT;
  return { p, seed: counterHash32(callSeed >>> 0, DROPOUT_SALT, dropoutSiteIndex(site, layer)), stream: 0 };
}
