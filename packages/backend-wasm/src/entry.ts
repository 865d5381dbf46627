// What apps/cli/src/backends.ts loads: probe() says whether the backend can run here and on what;
// create() builds one and waits for its worker threads.
import type { Backend } from '@blankglm/tensor';
import { WasmBackend, resolveVariant, type WasmBackendOptions } from './backend.js';

export const backend = {
  async probe(): Promise<{ available: boolean; detail: string }> {
    try {
      const { variant, threads, notes } = resolveVariant({});
      const what = variant === 'relaxed' ? 'relaxed SIMD (FMA)' : variant === 'simd-threads' ? 'SIMD128' : 'SIMD128, single thread';
      return { available: true, detail: `WebAssembly ${what} on ${threads} thread${threads === 1 ? '' : 's'}${notes.length ? ` (${notes.join('; ')})` : ''}` };
    } catch (e) {
      return { available: false, detail: (e as Error).message };
    }
  },
  async create(opts: Pick<WasmBackendOptions, 'threads'> = {}): Promise<Backend> {
    const b = new WasmBackend(opts.threads === undefined ? {} : { threads: opts.threads });
    await b.ready();
    return b;
  },
};
