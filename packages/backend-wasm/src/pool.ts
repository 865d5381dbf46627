// The thread pool: thread 0 is the caller's (main) thread, threads 1..n−1 are worker_threads that
// share the kernel module's memory. `run(perThread)` hands each thread its list of kernel calls,
// runs thread 0's list itself, and returns when every thread is done — synchronously, through
// Atomics.wait/notify on a shared control block. Which elements a thread computes is decided by
// the caller (the op's host wrapper); a kernel's result never depends on the thread count.
import { Worker } from 'node:worker_threads';
import {
  CMD,
  CMD_EXIT,
  CMD_RUN,
  CONTROL_WORDS,
  DONE,
  GEN,
  HOOK_EXIT,
  HOOK_THROW,
  MAX_THREADS,
  MESSAGE_BYTES,
  READY_BASE,
  SLOT_WORDS,
  STATUS_BASE,
  STATUS_EXITED,
  STATUS_FAILED,
  STATUS_OK,
  kernelNames,
  readMessage,
  runSlot,
  type WorkerInit,
} from './protocol.js';

/** A kernel call: the export's name, then its arguments (byte offsets and sizes). */
export type KernelCall = readonly [name: string, ...args: number[]];

export class WorkerDiedError extends Error {
  override readonly name = 'WorkerDiedError';
  readonly code = 'WASM_WORKER_DIED';
}

export class ThreadPool {
  readonly threads: number;
  private readonly workers: Worker[] = [];
  private readonly control: Int32Array;
  private readonly jobs: Float64Array;
  private readonly messages: Uint8Array;
  private readonly index = new Map<string, number>();
  private readonly kernels: ((...args: number[]) => unknown)[];
  /** Set once a worker died or the pool was disposed: every later run fails with it. */
  private broken: string | null = null;
  private readonly createdAt = Date.now();
  /** A worker that has not started after this long is treated as dead (it cannot load). */
  static startupTimeoutMs = 60_000;

  constructor(
    readonly module: WebAssembly.Module,
    readonly memory: WebAssembly.Memory,
    instance: WebAssembly.Instance,
    threads: number,
    relaxed: boolean,
  ) {
    if (!Number.isInteger(threads) || threads < 1 || threads > MAX_THREADS) throw new RangeError(`threads must be an integer in [1, ${MAX_THREADS}], got ${threads}`);
    this.threads = threads;
    const names = kernelNames(module);
    names.forEach((n, i) => this.index.set(n, i));
    const exports = instance.exports as Record<string, (...args: number[]) => unknown>;
    this.kernels = names.map((n) => exports[n]!);
    const shared = threads > 1;
    const sab = (bytes: number): ArrayBuffer => (shared ? new SharedArrayBuffer(bytes) : new ArrayBuffer(bytes)) as ArrayBuffer;
    const control = sab(CONTROL_WORDS * 4);
    const jobs = sab(threads * SLOT_WORDS * 8);
    const messages = sab(threads * MESSAGE_BYTES);
    this.control = new Int32Array(control);
    this.jobs = new Float64Array(jobs);
    this.messages = new Uint8Array(messages);
    for (let w = 1; w < threads; w++) {
      const init: WorkerInit = {
        module,
        memory,
        control: control as unknown as SharedArrayBuffer,
        jobs: jobs as unknown as SharedArrayBuffer,
        messages: messages as unknown as SharedArrayBuffer,
        index: w,
        relaxed,
      };
      const worker = new Worker(new URL('./worker.js', import.meta.url), { workerData: init });
      // A worker that dies between jobs is noticed here (the event loop runs between ops).
      worker.on('error', (e) => this.markBroken(`worker thread ${w} failed: ${e.message}`));
      worker.on('exit', (code) => {
        if (this.broken === null) this.markBroken(`worker thread ${w} exited with code ${code}`);
      });
      worker.unref();
      this.workers.push(worker);
    }
  }

  private markBroken(reason: string): void {
    this.broken ??= reason;
  }

  /** Runs each thread's calls (entry t for thread t; null or empty: nothing) and waits for all. */
  run(what: string, perThread: readonly (readonly KernelCall[] | null)[]): void {
    if (this.broken !== null) throw new WorkerDiedError(`wasm backend: cannot run ${what}: ${this.broken}; dispose() this backend and create a new one`);
    if (perThread.length > this.threads) throw new RangeError(`${what}: ${perThread.length} thread lists for a pool of ${this.threads}`);
    for (let t = 0; t < this.threads; t++) this.encode(t, perThread[t] ?? null, what);
    if (this.threads === 1) {
      runSlot(this.jobs, 0, this.kernels);
      return;
    }
    const workers = this.threads - 1;
    Atomics.store(this.control, DONE, 0);
    Atomics.store(this.control, CMD, CMD_RUN);
    Atomics.add(this.control, GEN, 1);
    Atomics.notify(this.control, GEN);
    let mainError: unknown = null;
    try {
      runSlot(this.jobs, 0, this.kernels);
    } catch (e) {
      mainError = e;
    }
    // Wait in slices: a worker's exit handler wakes us, and the slices make sure a missed
    // notification costs at most one slice, never a hang.
    for (;;) {
      const done = Atomics.load(this.control, DONE);
      if (done >= workers) break;
      if (Atomics.wait(this.control, DONE, done, 200) === 'timed-out' && Date.now() - this.createdAt > ThreadPool.startupTimeoutMs) {
        const stuck = this.notStarted();
        if (stuck.length > 0) {
          this.markBroken(`worker thread(s) ${stuck.join(', ')} never started (${ThreadPool.startupTimeoutMs} ms)`);
          throw new WorkerDiedError(`wasm backend: ${what} failed: ${this.broken}; dispose() this backend and create a new one`);
        }
      }
    }
    const failures: string[] = [];
    for (let w = 1; w < this.threads; w++) {
      const status = Atomics.load(this.control, STATUS_BASE + w);
      if (status === STATUS_OK) continue;
      const message = readMessage(this.messages, w);
      if (status === STATUS_EXITED) {
        this.markBroken(message);
        failures.push(message);
      } else if (status === STATUS_FAILED) {
        failures.push(`worker thread ${w}: ${message}`);
        Atomics.store(this.control, STATUS_BASE + w, STATUS_OK);
      }
    }
    if (mainError) throw new Error(`wasm backend: ${what} failed on the main thread: ${(mainError as Error).message}`, { cause: mainError });
    if (failures.length > 0) {
      const died = this.broken !== null;
      const msg = `wasm backend: ${what} failed: ${failures.join('; ')}${died ? '; the pool lost a thread: dispose() this backend and create a new one' : ''}`;
      throw died ? new WorkerDiedError(msg) : new Error(msg);
    }
  }

  private notStarted(): number[] {
    const out: number[] = [];
    for (let w = 1; w < this.threads; w++) if (Atomics.load(this.control, READY_BASE + w) !== 1) out.push(w);
    return out;
  }

  /** Resolves once every worker has instantiated the module (rejects if one dies first). */
  async ready(): Promise<void> {
    const start = Date.now();
    while (this.notStarted().length > 0) {
      if (this.broken !== null) throw new WorkerDiedError(`wasm backend: ${this.broken}`);
      if (Date.now() - start > ThreadPool.startupTimeoutMs) throw new WorkerDiedError(`wasm backend: worker thread(s) ${this.notStarted().join(', ')} did not start within ${ThreadPool.startupTimeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 2));
    }
  }

  private encode(t: number, calls: readonly KernelCall[] | null, what: string): void {
    let p = t * SLOT_WORDS;
    const end = p + SLOT_WORDS;
    const jobs = this.jobs;
    jobs[p++] = calls ? calls.length : 0;
    if (!calls) return;
    for (const [name, ...args] of calls) {
      const fn = name === '__exit' ? HOOK_EXIT : name === '__throw' ? HOOK_THROW : this.index.get(name);
      if (fn === undefined) throw new RangeError(`${what}: the kernel module has no export '${name}' (rebuild the package?)`);
      if (p + 2 + args.length > end) throw new RangeError(`${what}: thread ${t}'s job list does not fit its slot (${SLOT_WORDS} words)`);
      jobs[p++] = fn;
      jobs[p++] = args.length;
      for (const a of args) jobs[p++] = a;
    }
  }

  /** Calls a kernel on the calling thread only (cheap helpers, results through the return value). */
  call(name: string, ...args: number[]): unknown {
    const fn = this.index.get(name);
    if (fn === undefined) throw new RangeError(`the kernel module has no export '${name}'`);
    return this.kernels[fn]!(...args);
  }

  /** Test hook: make worker `w` exit (code) or throw during the next job. */
  testHook(kind: 'exit' | 'throw', worker: number): void {
    const perThread: (KernelCall[] | null)[] = new Array(this.threads).fill(null);
    perThread[worker] = [[kind === 'exit' ? '__exit' : '__throw', 7]];
    this.run(`test hook (${kind} worker ${worker})`, perThread);
  }

  dispose(): void {
    if (this.threads > 1 && this.broken === null) {
      Atomics.store(this.control, CMD, CMD_EXIT);
      Atomics.add(this.control, GEN, 1);
      Atomics.notify(this.control, GEN);
    }
    this.broken ??= 'the backend was disposed';
    for (const w of this.workers) void w.terminate();
  }
}
