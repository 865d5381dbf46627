// `blankglm doctor`: what this machine and build can run, and why not. Probes the JavaScript
// runtime's WebAssembly features itself (tiny hand-written modules, nothing compiled or run), the
// NVIDIA driver and CUDA libraries from the file system, and every backend through probeBackends();
// a missing optional package is a reason on its line, never a crash. Always exits 0.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { availableParallelism, cpus, platform, arch, totalmem } from 'node:os';
import { join } from 'node:path';
import { probeBackends, type BackendProbe } from '../backends.js';
import type { Command } from '../cli.js';

/** (module (func (result v128) v128.const i32x4 0 0 0 0)) */
const SIMD_PROBE = Uint8Array.from([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x01, 0x05, 0x01, 0x60, 0x00, 0x01, 0x7b, 0x03, 0x02, 0x01, 0x00, 0x0a, 0x16, 0x01, 0x14, 0x00, 0xfd,
  0x0c, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x0b,
]);
/** (module (memory 1 1 shared)) */
const THREADS_PROBE = Uint8Array.from([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x05, 0x04, 0x01, 0x03, 0x01, 0x01]);
/** (func (param v128 v128 v128) (result v128) local.get 0 local.get 1 local.get 2 f32x4.relaxed_madd) */
const RELAXED_PROBE = Uint8Array.from([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x01, 0x60, 0x03, 0x7b, 0x7b, 0x7b, 0x01, 0x7b, 0x03, 0x02, 0x01, 0x00, 0x0a, 0x0d, 0x01,
  0x0b, 0x00, 0x20, 0x00, 0x20, 0x01, 0x20, 0x02, 0xfd, 0x85, 0x02, 0x0b,
]);

/** The one WebAssembly call used here (the CLI compiles without the DOM typings that declare it). */
const wasmApi = (globalThis as unknown as { WebAssembly?: { validate(bytes: Uint8Array): boolean } }).WebAssembly;

function validates(bytes: Uint8Array): boolean {
  if (!wasmApi) return false;
  try {
    return wasmApi.validate(bytes);
  } catch {
    return false;
  }
}

export interface Check {
  name: string;
  ok: boolean;
  detail: string;
}

/** WebAssembly features of this runtime. */
export function wasmChecks(): Check[] {
  const simd = validates(SIMD_PROBE);
  const shared = typeof SharedArrayBuffer === 'function' && typeof Atomics === 'object';
  const threads = shared && validates(THREADS_PROBE);
  const relaxed = validates(RELAXED_PROBE);
  return [
    { name: 'WebAssembly SIMD (simd128)', ok: simd, detail: simd ? 'supported' : 'not supported by this runtime: the wasm backend needs it (Node ≥ 16.4)' },
    { name: 'relaxed SIMD', ok: relaxed, detail: relaxed ? 'supported' : 'not enabled by default on this runtime (Node 20 has it behind --experimental-wasm-relaxed-simd; the plain SIMD kernels are used)' },
    {
      name: 'threads (SharedArrayBuffer, shared memory)',
      ok: threads,
      detail: threads ? 'supported' : !shared ? 'SharedArrayBuffer/Atomics are unavailable: the wasm backend runs single-threaded' : 'shared WebAssembly memory does not validate: single-threaded',
    },
  ];
}

/** Directories where CUDA libraries usually live, LD_LIBRARY_PATH first. */
function libraryDirs(): string[] {
  const fromEnv = (process.env.LD_LIBRARY_PATH ?? '').split(':').filter(Boolean);
  const common = ['/usr/local/nvidia/lib64', '/usr/local/cuda/lib64', '/usr/local/cuda/targets/x86_64-linux/lib', '/usr/lib/x86_64-linux-gnu', '/usr/lib64', '/usr/lib/aarch64-linux-gnu', '/usr/lib/wsl/lib', '/lib', '/lib64'];
  return [...new Set([...fromEnv, ...common])];
}

function findLibrary(prefix: string): string | null {
  for (const dir of libraryDirs()) {
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch {
      continue;
    }
    const hit = names.filter((n) => n.startsWith(prefix)).sort();
    if (hit.length) return join(dir, hit[hit.length - 1]!);
  }
  return null;
}

/**
 * The driver version in the first line of /proc/driver/nvidia/version, e.g. "NVRM version: NVIDIA
 * UNIX Open Kernel Module for x86_64  580.159.04  Release Build …" → "580.159.04".
 */
export function parseNvidiaDriverVersion(line: string): string | null {
  return /\b(\d{2,4}\.\d+(?:\.\d+)?)\b/.exec(line)?.[1] ?? null;
}

/** NVIDIA driver, devices and CUDA libraries as the file system shows them (Linux). */
export function cudaChecks(): Check[] {
  if (platform() !== 'linux') return [{ name: 'CUDA', ok: false, detail: `not checked on ${platform()} (the gpu backend targets Linux)` }];
  const out: Check[] = [];
  const versionFile = '/proc/driver/nvidia/version';
  if (existsSync(versionFile)) {
    const first = readFileSync(versionFile, 'utf8').split('\n')[0] ?? '';
    const version = parseNvidiaDriverVersion(first);
    out.push({ name: 'NVIDIA driver', ok: true, detail: version ? `version ${version}` : first.trim() });
  } else {
    out.push({ name: 'NVIDIA driver', ok: false, detail: `no ${versionFile}: no NVIDIA kernel driver is loaded` });
  }
  let devices: string[] = [];
  try {
    devices = readdirSync('/dev').filter((n) => /^nvidia\d+$/.test(n));
  } catch {
    devices = [];
  }
  out.push({ name: 'GPU devices', ok: devices.length > 0, detail: devices.length ? devices.map((d) => '/dev/' + d).join(', ') : 'no /dev/nvidiaN device nodes' });
  const libcuda = findLibrary('libcuda.so');
  out.push({ name: 'CUDA driver library', ok: libcuda !== null, detail: libcuda ?? 'libcuda.so not found (LD_LIBRARY_PATH and the usual folders)' });
  const lt = findLibrary('libcublasLt.so');
  out.push({ name: 'cuBLASLt', ok: lt !== null, detail: lt ?? 'libcublasLt.so not found (LD_LIBRARY_PATH, /usr/local/cuda/lib64, …): install the CUDA toolkit or its cuBLAS runtime' });
  return out;
}

export interface DoctorReport {
  node: string;
  platform: string;
  cpu: { model: string; cores: number; parallelism: number };
  memoryGiB: number;
  wasm: Check[];
  cuda: Check[];
  backends: BackendProbe[];
  /** What `--backend auto` picks. */
  auto: string;
}

export async function doctorReport(): Promise<DoctorReport> {
  const cpuList = cpus();
  const backends = await probeBackends();
  return {
    node: process.version,
    platform: `${platform()} ${arch()}`,
    cpu: { model: cpuList[0]?.model?.trim() ?? 'unknown', cores: cpuList.length, parallelism: availableParallelism() },
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    wasm: wasmChecks(),
    cuda: cudaChecks(),
    backends,
    auto: backends.find((b) => b.available)?.name ?? 'ref',
  };
}

export const doctorCommand: Command = {
  name: 'doctor',
  summary: 'Show which compute backends run here, and why the others do not',
  description: `
Checks the runtime (Node version, CPU cores, memory), WebAssembly SIMD, relaxed SIMD and threads
(SharedArrayBuffer), the NVIDIA driver, GPU devices, libcuda and cuBLASLt, and asks every backend
(gpu, wasm, ref) whether it can run here, printing the reason when not. Changes nothing; exits 0.

Examples:
  blankglm doctor
  blankglm doctor --json`,
  options: {
    json: { type: 'boolean', description: 'Print one JSON object.' },
  },
  async run({ options, io }) {
    const r = await doctorReport();
    if (options.json) {
      io.stdout.write(JSON.stringify(r) + '\n');
      return 0;
    }
    const w = (line: string): void => void io.stdout.write(line + '\n');
    const mark = (ok: boolean): string => (ok ? 'yes' : 'no ');
    w(`node ${r.node} on ${r.platform}; ${r.cpu.cores} CPU cores (${r.cpu.parallelism} usable), ${r.cpu.model}; ${r.memoryGiB} GiB memory`);
    w('');
    w('WebAssembly:');
    for (const c of r.wasm) w(`  ${mark(c.ok)} ${c.name.padEnd(44)} ${c.detail}`);
    w('CUDA:');
    for (const c of r.cuda) w(`  ${mark(c.ok)} ${c.name.padEnd(44)} ${c.detail}`);
    w('Backends (fastest first):');
    for (const b of r.backends) w(`  ${mark(b.available)} ${b.name.padEnd(44)} ${b.detail}`);
    w('');
    w(`--backend auto uses: ${r.auto}`);
    return 0;
  },
};
