// Builds small shard folders directly (no tokenizer), for tests of the reader and the windows.
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SHARD_FORMAT, SHARD_FORMAT_VERSION, ShardWriter, writeFileAtomic, type ShardManifest } from '../src/shards.js';

export const BERT_SPECIAL = { family: 'bert', pad: 0, eos: 0, unk: 100, cls: 101, sep: 102, mask: 103, sop: 30522, eop: 30523, gMask: 30524, sMask: 30525, paddedVocabSize: 30592 };

export async function writeTestShards(docs: number[][], options: { shardTokens?: number; sentenceEndIds?: number[] } = {}): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'blankglm-shards-'));
  const writer = new ShardWriter(dir, 'uint16', options.shardTokens ?? 1000);
  for (const d of docs) await writer.add(d);
  await writer.flush();
  const manifest: ShardManifest = {
    format: SHARD_FORMAT,
    version: SHARD_FORMAT_VERSION,
    dtype: 'uint16',
    tokenizer: { family: 'bert', description: 'test', vocabSize: 30522, vocabHash: 'test', special: BERT_SPECIAL, sentenceEndIds: options.sentenceEndIds ?? [1012] },
    documents: docs.length,
    tokens: docs.reduce((s, d) => s + d.length, 0),
    shards: writer.shards,
    sources: [],
    reading: { split: 'paragraphs', textField: 'text', encoding: 'utf8' },
    createdBy: 'test',
  };
  await writeFileAtomic(join(dir, 'manifest.json'), JSON.stringify(manifest));
  return dir;
}
