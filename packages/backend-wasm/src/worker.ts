// A pool worker: instantiates the kernel module on the shared memory, then loops: wait for a new
// generation, run its job slot, count itself done. Failures are reported through the control block
// (the main thread is blocked in Atomics.wait and cannot receive messages while a job runs).
import { workerData } from 'node:worker_threads';
import { enableRelaxedSimd } from './features.js';
import { CMD, CMD_EXIT, DONE, GEN, MESSAGE_BYTES, READY_BASE, STATUS_BASE, STATUS_EXITED, STATUS_FAILED, kernelNames, runSlot, writeMessage, type WorkerInit } from './protocol.js';

const init = workerData as WorkerInit;
const control = new Int32Array(init.control);
const messages = new Uint8Array(init.messages);

// However this thread ends (process.exit, an uncaught error), tell the main thread and wake it.
process.on('exit', (code) => {
  writeMessage(messages, init.index, `worker thread ${init.index} exited with code ${code}`);
  Atomics.store(control, STATUS_BASE + init.index, STATUS_EXITED);
  Atomics.add(control, DONE, 1);
  Atomics.notify(control, DONE);
});

if (init.relaxed) enableRelaxedSimd();
const jobs = new Float64Array(init.jobs);
const instance = new WebAssembly.Instance(init.module, {
  env: {
    memory: init.memory,
    abort: () => {
      throw new Error('kernel abort');
    },
  },
});
const exports = instance.exports as Record<string, (...args: number[]) => unknown>;
const kernels = kernelNames(init.module).map((name) => exports[name]!);

// Spin briefly before sleeping: a training step dispatches hundreds of small jobs back to back.
const SPIN = 2000;
// Generation 0 is the one at creation: a job posted before this thread started still runs.
let seen = 0;
Atomics.store(control, READY_BASE + init.index, 1);
for (;;) {
  let spins = 0;
  let gen: number;
  while ((gen = Atomics.load(control, GEN)) === seen) {
    if (++spins > SPIN) {
      Atomics.wait(control, GEN, seen);
      spins = 0;
    }
  }
  seen = gen;
  if (Atomics.load(control, CMD) === CMD_EXIT) break;
  try {
    runSlot(jobs, init.index, kernels);
  } catch (e) {
    writeMessage(messages, init.index, e instanceof Error ? `${e.name}: ${e.message}`.slice(0, MESSAGE_BYTES - 4) : String(e));
    Atomics.store(control, STATUS_BASE + init.index, STATUS_FAILED);
  }
  Atomics.add(control, DONE, 1);
  Atomics.notify(control, DONE);
}
