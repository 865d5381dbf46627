// The shared control block between the main thread and the pool's workers.
//
// control (Int32Array over a SharedArrayBuffer):
//   [GEN]   generation: bumped by the main thread to start a job
//   [DONE]  workers finished with the current generation
//   [CMD]   0 = run the job slots, 1 = exit
//   [STATUS_BASE + w]  per worker: 0 ok, 1 kernel failed (message in its text slot), 2 exited
//   [READY_BASE + w]   per worker: 1 once it is waiting for jobs
// jobs (Float64Array): one slot of SLOT_WORDS per thread:
//   [callCount, (fnIndex, argCount, ...args) × callCount]
// Negative fnIndex values are test hooks (a worker that dies or throws on purpose).
export const GEN = 0;
export const DONE = 1;
export const CMD = 2;
export const STATUS_BASE = 8;
/** [READY_BASE + w] = 1 once worker w has instantiated the module. */
export const READY_BASE = 136;
export const CONTROL_WORDS = 264;
export const MAX_THREADS = READY_BASE - STATUS_BASE;

export const CMD_RUN = 0;
export const CMD_EXIT = 1;

export const STATUS_OK = 0;
export const STATUS_FAILED = 1;
export const STATUS_EXITED = 2;

export const SLOT_WORDS = 1024;
export const MESSAGE_BYTES = 1024;

/** Test hooks run by a worker in place of a kernel. */
export const HOOK_EXIT = -1;
export const HOOK_THROW = -2;

export interface WorkerInit {
  module: WebAssembly.Module;
  memory: WebAssembly.Memory;
  control: SharedArrayBuffer;
  jobs: SharedArrayBuffer;
  messages: SharedArrayBuffer;
  /** Thread index (1-based: thread 0 is the main thread). */
  index: number;
  relaxed: boolean;
}

/** The module's exported functions in a fixed order, so an index means the same kernel everywhere. */
export function kernelNames(module: WebAssembly.Module): string[] {
  return WebAssembly.Module.exports(module)
    .filter((e) => e.kind === 'function')
    .map((e) => e.name)
    .sort();
}

type Kernel = (...args: number[]) => unknown;

/** Runs one job slot against an instance's exports; throws what a kernel throws. */
export function runSlot(jobs: Float64Array, slot: number, kernels: readonly Kernel[]): void {
  let p = slot * SLOT_WORDS;
  const calls = jobs[p++]!;
  for (let c = 0; c < calls; c++) {
    const fn = jobs[p++]!;
    const argc = jobs[p++]!;
    const args: number[] = new Array(argc);
    for (let i = 0; i < argc; i++) args[i] = jobs[p + i]!;
    p += argc;
    if (fn === HOOK_EXIT) process.exit(args[0] ?? 1);
    if (fn === HOOK_THROW) throw new Error('test hook: a kernel failed on purpose');
    kernels[fn]!(...args);
  }
}

export function writeMessage(messages: Uint8Array, index: number, text: string): void {
  const bytes = new TextEncoder().encode(text).subarray(0, MESSAGE_BYTES - 4);
  const view = new DataView(messages.buffer, messages.byteOffset + index * MESSAGE_BYTES, MESSAGE_BYTES);
  view.setUint32(0, bytes.length, true);
  messages.set(bytes, index * MESSAGE_BYTES + 4);
}

export function readMessage(messages: Uint8Array, index: number): string {
  const view = new DataView(messages.buffer, messages.byteOffset + index * MESSAGE_BYTES, MESSAGE_BYTES);
  const n = view.getUint32(0, true);
  return new TextDecoder().decode(messages.slice(index * MESSAGE_BYTES + 4, index * MESSAGE_BYTES + 4 + n));
}
