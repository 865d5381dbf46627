#!/usr/bin/env node
// Builds the CPU emulator of the CUDA addon (native/emu/emu.h explains it): build/emu/gpu.node,
// the addon's own source compiled by the host C++ compiler, and build/emu/libcublasLt-emu.so, a
// CPU cuBLASLt. Tests load them with BLANKGLM_GPU_ADDON and BLANKGLM_CUBLASLT (see
// test/emulator.test.ts). Needs g++ (CXX) and the CUDA toolkit's headers (no GPU, no driver);
// without either it says so and exits 0, as the nvcc build does without nvcc.
//
// Each `kernel<<<grid, block, smem, stream>>>(args)` is rewritten into
// `emu::launch("kernel", <a call of kernel>, grid, block, smem, stream)(args)` in a copy of the sources
// (build/emu/src); nothing else in them changes.
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cudaIncludeDir, nodeIncludeDir, writeSchemaHeader } from './native-shared.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const outDir = join(root, 'build', 'emu');
const srcDir = join(outDir, 'src');
const log = (m) => console.log(`[backend-gpu] ${m}`);

if (process.env.GPU_BUILD === 'skip') {
  log('GPU_BUILD=skip: not building the CUDA emulator');
  process.exit(0);
}
if (process.platform !== 'linux' || process.arch !== 'x64') {
  log(`the CUDA emulator is built for linux x64 only (this is ${process.platform} ${process.arch}): skipping it`);
  process.exit(0);
}
const cxx = process.env.CXX || 'g++';
const cxxProbe = spawnSync(cxx, ['--version'], { encoding: 'utf8' });
if (cxxProbe.error || cxxProbe.status !== 0) {
  log(`no C++ compiler (${cxx}): skipping the CUDA emulator build`);
  process.exit(0);
}
const cudaInclude = cudaIncludeDir();
if (!cudaInclude) {
  log('no CUDA toolkit headers (cuda_runtime.h) found: skipping the CUDA emulator build');
  process.exit(0);
}

/** `name<T, 4><<<a, b, c, d>>>(` → `emu::launch("name<T, 4>", [&](auto... emuArgs) { name<T, 4>(emuArgs...); }, a, b, c, d)(`. */
function rewriteLaunches(source) {
  return source.replace(/([A-Za-z_][\w:]*(?:<(?:[^<>;{}()]|\([^()]*\))*>)?)\s*<<<([\s\S]*?)>>>\s*\(/g, (_, kernel, config) => {
    const name = kernel.replace(/\s+/g, ' ');
    return `emu::launch(${JSON.stringify(name)}, [&](auto... emuArgs) { ${kernel}(emuArgs...); }, ${config.trim()})(`;
  });
}

const started = Date.now();
const generatedDir = await writeSchemaHeader(root);
mkdirSync(srcDir, { recursive: true });
let launches = 0;
for (const file of readdirSync(join(root, 'native'))) {
  if (!/\.(cu|cuh)$/.test(file)) continue;
  const text = readFileSync(join(root, 'native', file), 'utf8');
  const rewritten = rewriteLaunches(text);
  launches += (text.match(/<<</g) ?? []).length;
  if (rewritten.includes('<<<')) {
    console.error(`[backend-gpu] ${file}: a kernel launch the emulator build could not rewrite is left`);
    process.exit(1);
  }
  writeFileSync(join(srcDir, file), rewritten);
}
copyFileSync(join(root, 'native', 'emu', 'emu.h'), join(srcDir, 'emu.h'));

const common = ['-std=c++17', '-O2', '-fPIC', '-shared', '-w', '-isystem', cudaInclude];
const tmp = (name) => join(outDir, `${name}.tmp-${process.pid}`);
try {
  execFileSync(
    cxx,
    [
      ...common,
      '-fvisibility=hidden',
      '-include',
      join(srcDir, 'emu.h'),
      '-DNAPI_VERSION=8',
      '-I',
      nodeIncludeDir(),
      '-I',
      generatedDir,
      '-x',
      'c++',
      join(srcDir, 'addon.cu'),
      '-o',
      tmp('gpu.node'),
      '-ldl',
      '-lpthread',
    ],
    { stdio: 'inherit' },
  );
  execFileSync(cxx, [...common, '-O3', join(root, 'native', 'emu', 'cublaslt.cpp'), '-o', tmp('libcublasLt-emu.so')], { stdio: 'inherit' });
} catch {
  console.error(`[backend-gpu] ${cxx} failed building the CUDA emulator (command above)`);
  process.exit(1);
}
renameSync(tmp('gpu.node'), join(outDir, 'gpu.node'));
renameSync(tmp('libcublasLt-emu.so'), join(outDir, 'libcublasLt-emu.so'));
log(`built the CUDA emulator (build/emu: ${launches} launches rewritten) in ${((Date.now() - started) / 1000).toFixed(1)} s`);
