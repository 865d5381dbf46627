// A tokenizing worker thread: loads the tokenizer named in workerData, then turns each chunk of
// texts it is sent into token ids. Chunks carry a sequence number so the main thread can write
// results in corpus order whatever order they finish in.
import { parentPort, workerData } from 'node:worker_threads';
import { loadTokenizerFromSpec, tokenizeTexts, type TokenizerSpec } from './tokenizer.js';

export interface WorkerRequest {
  seq: number;
  texts: string[];
}

export type WorkerReply = { seq: number; ids: Uint32Array; lengths: Uint32Array } | { seq: number; error: string };

const port = parentPort;
if (!port) throw new Error('worker.js must run as a worker thread');

const ready = loadTokenizerFromSpec((workerData as { tokenizer: TokenizerSpec }).tokenizer);

port.on('message', (req: WorkerRequest) => {
  ready
    .then((tokenizer) => {
      const { ids, lengths } = tokenizeTexts(tokenizer, req.texts);
      const reply: WorkerReply = { seq: req.seq, ids, lengths };
      // Both arrays were just allocated by tokenizeTexts (plain, not shared): move them, don't copy.
      port.postMessage(reply, [ids.buffer as ArrayBuffer, lengths.buffer as ArrayBuffer]);
    })
    .catch((e: unknown) => {
      const reply: WorkerReply = { seq: req.seq, error: (e as Error)?.message ?? String(e) };
      port.postMessage(reply);
    });
});
