// The one place where the CLI picks a compute backend. Library code never chooses: it receives a
// Backend. The optional backends are separate packages loaded on demand, so a missing one (or a
// machine without SIMD, threads or a CUDA driver) is reported with its reason, never a crash.
import type { Backend } from '@blankglm/tensor';
import { createReferenceBackend } from '@blankglm/backend-ref';

export type BackendName = 'ref' | 'wasm' | 'gpu';
export const BACKEND_NAMES: readonly BackendName[] = ['gpu', 'wasm', 'ref'];

export interface BackendProbe {
  name: BackendName;
  available: boolean;
  /** Why it is not available, or what it would run on. */
  detail: string;
}

export interface BackendOptions {
  /** Worker threads for the WASM backend (default: all cores). */
  threads?: number;
}

/** What the optional backend packages export. */
interface OptionalBackendModule {
  probe(): Promise<{ available: boolean; detail: string }>;
  create(opts: BackendOptions): Promise<Backend>;
}

const OPTIONAL_PACKAGES: Record<Exclude<BackendName, 'ref'>, string> = {
  wasm: '@blankglm/backend-wasm',
  gpu: '@blankglm/backend-gpu',
};

async function loadOptional(name: Exclude<BackendName, 'ref'>): Promise<OptionalBackendModule | string> {
  const spec = OPTIONAL_PACKAGES[name];
  try {
    const mod = (await import(/* not bundled */ spec)) as { backend?: OptionalBackendModule };
    if (!mod.backend) return `${spec} does not export 'backend'`;
    return mod.backend;
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (err.code === 'ERR_MODULE_NOT_FOUND' || err.code === 'MODULE_NOT_FOUND') return `${spec} is not installed in this build`;
    return `${spec} failed to load: ${err.message}`;
  }
}

/** Which backends can run here, fastest first, each with its reason. */
export async function probeBackends(): Promise<BackendProbe[]> {
  const out: BackendProbe[] = [];
  for (const name of BACKEND_NAMES) {
    if (name === 'ref') {
      out.push({ name, available: true, detail: 'reference backend: scalar TypeScript, f64 accumulation (slow; the oracle)' });
      continue;
    }
    const mod = await loadOptional(name);
    if (typeof mod === 'string') {
      out.push({ name, available: false, detail: mod });
      continue;
    }
    try {
      const p = await mod.probe();
      out.push({ name, available: p.available, detail: p.detail });
    } catch (e) {
      out.push({ name, available: false, detail: `probe failed: ${(e as Error).message}` });
    }
  }
  return out;
}

/**
 * Creates the named backend, or with 'auto' the fastest available one (gpu, then wasm, then ref).
 * An explicitly requested backend that is not available is an error with the reason.
 */
export async function createBackend(name: BackendName | 'auto', opts: BackendOptions = {}): Promise<{ backend: Backend; name: BackendName }> {
  if (name === 'ref') return { backend: createReferenceBackend(), name };
  if (name !== 'auto' && !BACKEND_NAMES.includes(name)) {
    throw new Error(`unknown backend '${String(name)}'; expected one of ${BACKEND_NAMES.join(', ')} or auto`);
  }
  const candidates: Exclude<BackendName, 'ref'>[] = name === 'auto' ? ['gpu', 'wasm'] : [name];
  const reasons: string[] = [];
  for (const c of candidates) {
    const mod = await loadOptional(c);
    if (typeof mod === 'string') {
      reasons.push(`${c}: ${mod}`);
      continue;
    }
    const p = await mod.probe();
    if (!p.available) {
      reasons.push(`${c}: ${p.detail}`);
      continue;
    }
    return { backend: await mod.create(opts), name: c };
  }
  if (name !== 'auto') throw new Error(`the ${name} backend is not available here (${reasons.join('; ')}); run 'blankglm doctor' for details`);
  return { backend: createReferenceBackend(), name: 'ref' };
}
