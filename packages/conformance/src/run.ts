// The harness: materialise each case on the backend under test and on a fresh reference backend
// with identical inputs, run the op on both, compare every output, and check the safety rules
// (no guard violations, no leaked buffers, read-only inputs unchanged).
import { OP_CATALOGUE, OP_NAMES, Rng, seedToU32, validateOpArgs, type Backend, type DType, type OpArgs, type OpName, type Tensor } from '@blankglm/tensor';
import type { ConformanceCase, FloatDType, Tier } from './case.js';
import { allCases } from './cases/index.js';
import { compareExact, compareFloat, firstDifference, formatNumber, formatValue, type TensorComparison } from './compare.js';
import { defaultReference } from './reference.js';
import { thresholdFor } from './thresholds.js';

export type CaseStatus = 'pass' | 'fail' | 'unsupported';

export interface CaseResult {
  /** The case name with all its parameters, e.g. `linear(rows=33,in=65,out=129,act=gelu_tanh,bias=yes)`. */
  name: string;
  op: OpName;
  status: CaseStatus;
  /** The worst NMSE over the case's float outputs (null: none computed, e.g. NaN or unsupported). */
  nmse: number | null;
  /** The threshold of the output that gave `nmse`. */
  threshold: number | null;
  /** Human-readable lines: what failed and where, or why unsupported. Empty for a clean pass. */
  details: string[];
  /** The seed the case's inputs were drawn from (derived from the run's seed and the case name). */
  seed: number;
  /** Per-output comparisons (empty when the op did not run). */
  outputs: TensorComparison[];
  /** Milliseconds the backend under test spent in run + synchronize. */
  ms: number;
}

export interface OpSummary {
  op: OpName;
  cases: number;
  pass: number;
  fail: number;
  unsupported: number;
  /** The worst NMSE/threshold ratio over the op's compared outputs (1 = at the threshold). */
  worstRatio: number | null;
  /** The backend's ledger entry for the op, if it lists one. */
  ledger?: string;
}

export interface ConformanceReport {
  backend: string;
  device: string;
  tier: Tier;
  dtype: FloatDType;
  seed: number;
  cases: CaseResult[];
  /** One row per op that had cases, in catalogue order. */
  summary: OpSummary[];
  /** The backend's ledger: ops it does not cover and why. */
  ledger: Partial<Record<OpName, string>>;
  totals: { pass: number; fail: number; unsupported: number };
  /** True when no case failed (unsupported cases do not fail a run: they are reported). */
  ok: boolean;
}

export interface ConformanceOptions {
  /** 'quick' (default): small and awkward sizes, fast on the scalar reference. 'full': adds the real GLM sizes. */
  tier?: Tier;
  /** Only cases whose name contains this string (or matches this RegExp). */
  filter?: string | RegExp;
  /** Base seed (default 1); each case draws its inputs from a seed derived from this and its name. */
  seed?: number;
  /** Float tensors as f32 (default) or bf16. */
  dtype?: FloatDType;
  /** Only these ops (default: all). */
  ops?: readonly OpName[];
  /** Creates the oracle (default: the reference backend). A fresh one is made for every case. */
  reference?: () => Backend;
  /** Called after each case, e.g. for progress output. */
  onCase?: (result: CaseResult) => void;
}

/** The cases a run with these options would execute, in order (no data generated). */
export function listCases(opts: Pick<ConformanceOptions, 'tier' | 'filter' | 'ops'> = {}): ConformanceCase[] {
  const tier = opts.tier ?? 'quick';
  return allCases().filter((c) => (tier === 'full' || c.tier === 'quick') && (!opts.ops || opts.ops.includes(c.op)) && matches(c.name, opts.filter));
}

function matches(name: string, filter: string | RegExp | undefined): boolean {
  if (filter === undefined) return true;
  return typeof filter === 'string' ? name.includes(filter) : filter.test(name);
}

/** The seed a case's inputs are drawn from. */
export function caseSeed(baseSeed: number, name: string): number {
  return seedToU32(`${baseSeed}:${name}`);
}

/**
 * Runs the conformance suite against `backend` (an instance, or a factory called once and disposed
 * at the end) and returns a report; it never throws for a failing backend.
 */
export function runConformance(backend: Backend | (() => Backend), opts: ConformanceOptions = {}): ConformanceReport {
  const tier = opts.tier ?? 'quick';
  const dtype = opts.dtype ?? 'f32';
  const seed = opts.seed ?? 1;
  const reference = opts.reference ?? defaultReference;
  const owned = typeof backend === 'function';
  const b = owned ? backend() : backend;
  try {
    const ledger = b.ledger();
    const results: CaseResult[] = [];
    for (const c of listCases(opts)) {
      const r = runCase(b, reference, c, { seed, dtype, ledger });
      results.push(r);
      opts.onCase?.(r);
    }
    return buildReport(b, results, { tier, dtype, seed, ledger });
  } finally {
    if (owned) b.dispose();
  }
}

/** A report (per-op summary and totals) from case results, e.g. results gathered over several runs. */
export function buildReport(
  b: Pick<Backend, 'name' | 'device'>,
  results: CaseResult[],
  meta: { tier: Tier; dtype: FloatDType; seed: number; ledger: Partial<Record<OpName, string>> },
): ConformanceReport {
  const summary: OpSummary[] = [];
  for (const op of OP_NAMES) {
    const rs = results.filter((r) => r.op === op);
    if (rs.length === 0) continue;
    let worst: number | null = null;
    for (const r of rs) {
      for (const o of r.outputs) {
        if (o.kind !== 'nmse' || o.nmse === null || o.threshold <= 0) continue;
        const ratio = o.nmse / o.threshold;
        if (worst === null || ratio > worst) worst = ratio;
      }
    }
    const row: OpSummary = {
      op,
      cases: rs.length,
      pass: rs.filter((r) => r.status === 'pass').length,
      fail: rs.filter((r) => r.status === 'fail').length,
      unsupported: rs.filter((r) => r.status === 'unsupported').length,
      worstRatio: worst,
    };
    if (meta.ledger[op] !== undefined) row.ledger = meta.ledger[op];
    summary.push(row);
  }
  const totals = {
    pass: results.filter((r) => r.status === 'pass').length,
    fail: results.filter((r) => r.status === 'fail').length,
    unsupported: results.filter((r) => r.status === 'unsupported').length,
  };
  return { backend: b.name, device: b.device.name, ...meta, cases: results, summary, totals, ok: totals.fail === 0 };
}

type HostData = Float32Array | Int32Array | Uint8Array;

interface Materialised {
  tensors: Record<string, Tensor>;
  dtypes: Record<string, DType>;
}

function allocAll(b: Backend, tensors: Record<string, { dtype: DType; data: HostData }>, caseName: string): Materialised {
  const out: Record<string, Tensor> = {};
  const dtypes: Record<string, DType> = {};
  try {
    for (const [name, init] of Object.entries(tensors)) {
      const t = b.alloc(init.dtype, init.data.length, `${caseName}:${name}`);
      out[name] = t;
      dtypes[name] = init.dtype;
      b.write(t as Tensor & { dtype: DType }, init.data);
    }
  } catch (e) {
    freeAll(b, out);
    throw e;
  }
  return { tensors: out, dtypes };
}

function freeAll(b: Backend, tensors: Record<string, Tensor>): void {
  for (const t of Object.values(tensors)) b.free(t);
}

/** Names of the case's tensors that `op` writes (through any of its `writes` arguments, views included). */
function writtenTensors(op: OpName, args: OpArgs[OpName], tensors: Record<string, Tensor>): Map<string, string> {
  const byId = new Map<number, string>();
  for (const [name, t] of Object.entries(tensors)) byId.set(t.id, name);
  const written = new Map<string, string>(); // tensor name → first argument name writing it
  for (const argName of OP_CATALOGUE[op].writes) {
    const v = (args as unknown as Record<string, unknown>)[argName];
    if (v === null || v === undefined) continue;
    const t = (isView(v) ? v.tensor : v) as Tensor;
    const name = byId.get(t.id);
    if (name !== undefined && !written.has(name)) written.set(name, argName);
  }
  return written;
}

function isView(v: unknown): v is { tensor: Tensor } {
  return typeof v === 'object' && v !== null && 'tensor' in v && 'rowStride' in v;
}

function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

const isInteger = (d: DType): boolean => d === 'i32' || d === 'u8';

/** Runs one case; never throws for backend failures (they become a 'fail' result). */
export function runCase(
  b: Backend,
  reference: () => Backend,
  c: ConformanceCase,
  run: { seed: number; dtype: FloatDType; ledger?: Partial<Record<OpName, string>> },
): CaseResult {
  const seed = caseSeed(run.seed, c.name);
  const result: CaseResult = { name: c.name, op: c.op, status: 'fail', nmse: null, threshold: null, details: [], seed, outputs: [], ms: 0 };
  const reproduce = `inputs from seed ${seed}; rerun with runConformance(backend, { filter: ${JSON.stringify(c.name)}, seed: ${run.seed}${run.dtype === 'bf16' ? ", dtype: 'bf16'" : ''} })`;

  // 1. Build the inputs and compute the expected outputs on a fresh reference.
  let host: Record<string, { dtype: DType; data: HostData }>;
  let before: Record<string, HostData>;
  let expected: Record<string, HostData>;
  const inputs = c.build(new Rng(seed), run.dtype);
  {
    const resolved: Record<string, { dtype: DType; data: HostData }> = {};
    for (const [name, init] of Object.entries(inputs.tensors)) resolved[name] = { dtype: init.dtype === 'float' ? run.dtype : init.dtype, data: init.data };
    const ref = reference();
    try {
      const m = allocAll(ref, resolved, c.name);
      for (const step of inputs.prepare ?? []) {
        const a = step.args(m.tensors);
        validateOpArgs(step.op, a);
        const s = ref.supports(step.op, a);
        if (!s.supported) return unsupported(result, `the reference cannot prepare this case (${step.op}): ${s.reason}`, reproduce);
        ref.run(step.op, a);
      }
      const args = inputs.args(m.tensors);
      validateOpArgs(c.op, args);
      const s = ref.supports(c.op, args);
      if (!s.supported) return unsupported(result, `the reference backend does not support this case: ${s.reason}`, reproduce);
      ref.synchronize();
      // Host data as the reference holds it (after prepare steps, and rounded to bf16 where it applies).
      host = {};
      for (const [name, t] of Object.entries(m.tensors)) host[name] = { dtype: m.dtypes[name]!, data: ref.read(t) };
      before = Object.fromEntries(Object.entries(host).map(([k, v]) => [k, v.data]));
      ref.run(c.op, args);
      ref.synchronize();
      expected = {};
      for (const name of writtenTensors(c.op, args, m.tensors).keys()) expected[name] = ref.read(m.tensors[name]!);
    } catch (e) {
      result.details.push(`the case could not be built on the reference: ${errorMessage(e)}`, reproduce);
      return result;
    } finally {
      ref.dispose();
    }
  }

  // 2. The backend under test, with the same inputs.
  const liveBefore = b.liveBuffers();
  const guardsBefore = b.checkGuards ? b.checkGuards().length : 0;
  let m: Materialised;
  try {
    m = allocAll(b, host, c.name);
  } catch (e) {
    result.details.push(`allocating or writing the inputs failed: ${errorMessage(e)}`, reproduce);
    return result;
  }
  const failures: string[] = [];
  try {
    const args = inputs.args(m.tensors);
    let support;
    try {
      support = b.supports(c.op, args);
    } catch (e) {
      failures.push(`supports() threw: ${errorMessage(e)}`);
      support = null;
    }
    if (support && !support.supported) {
      const ledgerEntry = run.ledger?.[c.op];
      return unsupported(result, `${b.name}: ${support.reason}${ledgerEntry !== undefined ? ` (ledger: ${ledgerEntry})` : ''}`, null);
    }
    if (support) {
      const written = writtenTensors(c.op, args, m.tensors);
      const readOnlyBefore: Record<string, HostData> = {};
      // slice(): a snapshot even if a backend's read() returned a live view of its memory.
      for (const [name, t] of Object.entries(m.tensors)) if (!written.has(name)) readOnlyBefore[name] = b.read(t).slice();
      const t0 = performance.now();
      let ran = false;
      try {
        b.run(c.op, args);
        b.synchronize();
        ran = true;
      } catch (e) {
        failures.push(`run threw: ${errorMessage(e)}`);
      }
      result.ms = performance.now() - t0;
      if (ran) {
        for (const [name, argName] of written) {
          const got = b.read(m.tensors[name]!);
          const label = name === argName ? name : `${argName} (${name})`;
          const cmp = isInteger(m.dtypes[name]!)
            ? compareExact(label, got, expected[name]!)
            : compareFloat(label, got, expected[name]!, thresholdFor(c.op, argName, run.dtype), before[name], m.dtypes[name] === 'bf16' ? 'bf16' : 'f32');
          result.outputs.push(cmp);
          if (!cmp.ok) {
            failures.push(cmp.message);
            for (const d of cmp.diffs) {
              const diff = Number.isFinite(d.got - d.expected) ? ` (diff ${formatNumber(d.got - d.expected)})` : '';
              failures.push(`  ${label}[${d.index}]: got ${formatValue(d.got)}, expected ${formatValue(d.expected)}${diff}`);
            }
          }
        }
        for (const [name, data] of Object.entries(readOnlyBefore)) {
          const after = b.read(m.tensors[name]!);
          const i = firstDifference(data, after);
          if (i >= 0) failures.push(`read-only input ${name} was modified: [${i}] was ${formatValue(data[i] ?? NaN)}, now ${formatValue(after[i] ?? NaN)}`);
        }
        checkOverwrites(b, reference, c.op, c.name, inputs.args, host, written, run.dtype, failures);
      }
    }
    if (b.checkGuards) {
      const ids = new Set(Object.values(m.tensors).map((t) => t.id));
      const violations = b.checkGuards();
      const mine = violations.filter((v) => ids.has(v.tensor.id));
      for (const v of mine) {
        const name = Object.entries(m.tensors).find(([, t]) => t.id === v.tensor.id)?.[0] ?? v.tensor.label ?? `#${v.tensor.id}`;
        failures.push(`out-of-bounds write ${v.side} ${name} (${v.tensor.size} elements): guard element ${v.index} overwritten`);
      }
      if (violations.length - mine.length > guardsBefore) {
        failures.push(`out-of-bounds writes into ${violations.length - mine.length - guardsBefore} guard region(s) of buffers outside this case`);
      }
    }
  } catch (e) {
    failures.push(`the harness failed while checking the backend: ${errorMessage(e)}`);
  } finally {
    try {
      freeAll(b, m.tensors);
    } catch (e) {
      failures.push(`free() threw: ${errorMessage(e)}`);
    }
  }
  const liveAfter = b.liveBuffers();
  if (liveAfter !== liveBefore) {
    failures.push(`buffer leak: liveBuffers() was ${liveBefore} before the case and ${liveAfter} after freeing its ${Object.keys(m.tensors).length} buffers`);
  }

  let worst: TensorComparison | null = null;
  for (const o of result.outputs) {
    if (o.kind !== 'nmse' || o.nmse === null) continue;
    if (!worst || o.nmse / o.threshold > (worst.nmse ?? 0) / worst.threshold) worst = o;
  }
  const nanOutput = result.outputs.find((o) => o.kind === 'nmse' && o.nmse === null);
  result.nmse = nanOutput ? null : (worst?.nmse ?? (result.outputs.length ? 0 : null));
  result.threshold = (nanOutput ?? worst)?.threshold ?? null;
  if (failures.length === 0) {
    result.status = 'pass';
  } else {
    result.details.push(...failures, reproduce);
  }
  return result;
}

/**
 * What an op overwrites whole must not depend on what the buffer held, NaN included (the contract
 * behind alloc(…, 'uninitialized')): the case runs once more with every written float tensor full
 * of NaN; each output that comes out of the reference free of NaN was overwritten, not added to,
 * and must come out of the backend under test the same. Outputs the op adds to (or leaves partly
 * untouched) keep NaN on the reference and are not checked this way.
 */
function checkOverwrites(
  b: Backend,
  reference: () => Backend,
  op: OpName,
  caseName: string,
  argsOf: (t: Record<string, Tensor>) => OpArgs[OpName],
  host: Record<string, { dtype: DType; data: HostData }>,
  written: Map<string, string>,
  dtype: FloatDType,
  failures: string[],
): void {
  const poisoned = { ...host };
  for (const name of written.keys()) {
    const h = host[name]!;
    if (!isInteger(h.dtype)) poisoned[name] = { dtype: h.dtype, data: new Float32Array(h.data.length).fill(NaN) };
  }
  const overwritten = new Map<string, HostData>();
  const ref = reference();
  try {
    const m = allocAll(ref, poisoned, caseName);
    ref.run(op, argsOf(m.tensors));
    ref.synchronize();
    for (const name of written.keys()) {
      if (isInteger(poisoned[name]!.dtype)) continue;
      const out = ref.read(m.tensors[name]!);
      if (!out.some((v) => Number.isNaN(v))) overwritten.set(name, out);
    }
  } catch {
    return; // the reference itself cannot run it this way (an op that reads its outputs): nothing to check
  } finally {
    ref.dispose();
  }
  if (overwritten.size === 0) return;
  const m = allocAll(b, poisoned, caseName);
  try {
    b.run(op, argsOf(m.tensors));
    b.synchronize();
    for (const [name, want] of overwritten) {
      const argName = written.get(name)!;
      const label = `${name === argName ? name : `${argName} (${name})`} over NaN`;
      const cmp = compareFloat(label, b.read(m.tensors[name]!), want, thresholdFor(op, argName, dtype), host[name]!.data, poisoned[name]!.dtype === 'bf16' ? 'bf16' : 'f32');
      if (cmp.ok) continue;
      failures.push(`${cmp.message} — with NaN in ${name} beforehand; the op overwrites it whole, so its old contents must not matter`);
      for (const d of cmp.diffs) failures.push(`  ${label}[${d.index}]: got ${formatValue(d.got)}, expected ${formatValue(d.expected)}`);
    }
  } catch (e) {
    failures.push(`run threw with NaN in its outputs beforehand: ${errorMessage(e)}`);
  } finally {
    freeAll(b, m.tensors);
  }
}

function unsupported(result: CaseResult, reason: string, reproduce: string | null): CaseResult {
  result.status = 'unsupported';
  result.details.push(`not supported: ${reason}`);
  if (reproduce) result.details.push(reproduce);
  return result;
}
