#!/usr/bin/env node
// Builds build/gpu.node with plain nvcc (static cudart; cuBLASLt is loaded at run time), after
// tsup has built dist/. Generates build/generated/schema.h from dist/schema.js first.
// (build-emu.mjs builds the same source for the CPU emulator.)
//
// Environment:
//   NVCC        the compiler (default: nvcc on PATH)
//   CUDA_ARCHS  comma-separated SM versions (default 80,90); PTX of the highest is added for newer cards
//   GPU_BUILD   'required' makes a missing nvcc an error (CI on a CUDA image); 'skip' skips the build
import { execFileSync, spawnSync } from 'node:child_process';
import { renameSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { nodeIncludeDir, writeSchemaHeader } from './native-shared.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const buildDir = join(root, 'build');
const log = (m) => console.log(`[backend-gpu] ${m}`);

if (process.env.GPU_BUILD === 'skip') {
  log('GPU_BUILD=skip: not building the CUDA addon');
  process.exit(0);
}

const nvcc = process.env.NVCC || 'nvcc';
const probe = spawnSync(nvcc, ['--version'], { encoding: 'utf8' });
if (probe.error || probe.status !== 0) {
  const msg = `nvcc not found (${nvcc}): skipping the CUDA addon build; the gpu backend will report GPU_ADDON_NOT_BUILT`;
  if (process.env.GPU_BUILD === 'required') {
    console.error(`[backend-gpu] ${msg}, but GPU_BUILD=required`);
    process.exit(1);
  }
  log(msg);
  process.exit(0);
}

// 1. The wire-format table, from the same source as the TypeScript encoder.
let generatedDir, nodeInclude;
try {
  generatedDir = await writeSchemaHeader(root);
  nodeInclude = nodeIncludeDir();
} catch (e) {
  console.error(`[backend-gpu] ${e.message}`);
  process.exit(1);
}

// 2. nvcc.
const archs = (process.env.CUDA_ARCHS || '80,90')
  .split(',')
  .map((a) => a.trim())
  .filter(Boolean);
for (const a of archs) {
  if (!/^\d+a?$/.test(a)) {
    console.error(`[backend-gpu] CUDA_ARCHS: '${a}' is not an SM version like 80, 90 or 90a`);
    process.exit(1);
  }
}
const gencode = archs.flatMap((a) => ['-gencode', `arch=compute_${a},code=sm_${a}`]);
const ptx = archs.filter((a) => !a.endsWith('a')).sort((x, y) => Number(y) - Number(x))[0];
if (ptx) gencode.push('-gencode', `arch=compute_${ptx},code=compute_${ptx}`);

const tmpOut = join(buildDir, `gpu.node.tmp-${process.pid}`);
const args = [
  '-O3',
  '-std=c++17',
  '-shared',
  '-Xcompiler',
  '-fPIC,-fvisibility=hidden',
  '-cudart',
  'static',
  ...gencode,
  '-DNAPI_VERSION=8',
  '-I',
  nodeInclude,
  '-I',
  generatedDir,
  join(root, 'native', 'addon.cu'),
  '-o',
  tmpOut,
  '-ldl',
  '-lpthread',
  '-lrt',
];
const started = Date.now();
log(`nvcc for ${archs.map((a) => `sm_${a}`).join(', ')}${ptx ? ` + PTX compute_${ptx}` : ''}`);
try {
  execFileSync(nvcc, args, { stdio: 'inherit' });
} catch {
  console.error('[backend-gpu] nvcc failed (command above)');
  process.exit(1);
}
renameSync(tmpOut, join(buildDir, 'gpu.node'));
log(`built build/gpu.node in ${((Date.now() - started) / 1000).toFixed(1)} s`);
