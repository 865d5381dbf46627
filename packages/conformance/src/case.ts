// What a conformance case is: an op, a name carrying every parameter, and a seeded builder of its
// inputs. Builders describe tensors as host data, so the backend under test and the reference get
// bit-identical inputs, and a case is only materialised (allocated, filled) when it runs.
import type { DType, OpArgs, OpName, Rng, Tensor } from '@blankglm/tensor';

export type Tier = 'quick' | 'full';
/** The dtype of float tensors in a run: f32, or bf16 where the op allows it. */
export type FloatDType = 'f32' | 'bf16';

/** A tensor of a case as host data. `dtype: 'float'` follows the run's float dtype (f32 or bf16). */
export interface TensorInit {
  dtype: DType | 'float';
  data: Float32Array | Int32Array | Uint8Array;
}

/** An op run on the reference before the case, to produce saved inputs (mean/rstd, lse, preAct …). */
export interface PrepareStep<P extends OpName = OpName> {
  op: P;
  args: (t: Record<string, Tensor>) => OpArgs[P];
}

/** The materialised inputs of one case. */
export interface CaseInputs<K extends OpName = OpName> {
  /** Every tensor of the case by name, outputs included (outputs start with random data too, so
   *  elements an op must not touch and accumulation into existing values are checked). */
  tensors: Record<string, TensorInit>;
  /** The op's arguments over the allocated tensors. */
  args: (t: Record<string, Tensor>) => OpArgs[K];
  /** Forward ops run on a reference first; the tensors they write become inputs of the case. */
  prepare?: PrepareStep[];
}

export interface ConformanceCase<K extends OpName = OpName> {
  op: K;
  /** The op and all its parameters, e.g. `linear(rows=33,in=65,out=129,act=gelu_tanh,bias=yes)`. */
  name: string;
  tier: Tier;
  /** Builds the inputs from a seeded Rng (deterministic: same seed, same data). */
  build: (rng: Rng, dtype: FloatDType) => CaseInputs<K>;
}

/** `op(k=v,k=v,…)` from ordered parameters. */
export function caseName(op: string, params: Record<string, string | number | boolean>): string {
  const parts = Object.entries(params).map(([k, v]) => `${k}=${typeof v === 'boolean' ? (v ? 'yes' : 'no') : v}`);
  return `${op}(${parts.join(',')})`;
}

/** Builds a typed case without losing the op's argument type. */
export function defineCase<K extends OpName>(op: K, tier: Tier, params: Record<string, string | number | boolean>, build: ConformanceCase<K>['build']): ConformanceCase<K> {
  return { op, tier, name: caseName(op, params), build };
}

// ---- host data helpers (all draw from the case's Rng) ----

/** Normal(mean, std) values: Box–Muller using both outputs of each pair (twice as fast as Rng.normal for large tables). */
export function normal(rng: Rng, n: number, std = 1, mean = 0): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    let u = 0;
    while (u === 0) u = rng.float();
    const r = std * Math.sqrt(-2 * Math.log(u));
    const theta = 2 * Math.PI * rng.float();
    out[i] = mean + r * Math.cos(theta);
    if (i + 1 < n) out[i + 1] = mean + r * Math.sin(theta);
  }
  return out;
}

/** Uniform values in [lo, hi). */
export function uniform(rng: Rng, n: number, lo: number, hi: number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = lo + (hi - lo) * rng.float();
  return out;
}

/** Integers uniform in [0, bound). */
export function ints(rng: Rng, n: number, bound: number): Int32Array {
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) out[i] = rng.int(bound);
  return out;
}

/** Integers in [0, bound) with deliberate repeats (every index drawn from a pool of about n/3 values), for scatter-add collisions. */
export function intsWithRepeats(rng: Rng, n: number, bound: number): Int32Array {
  const pool = ints(rng, Math.max(1, Math.ceil(n / 3)), bound);
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) out[i] = pool[rng.int(pool.length)]!;
  if (n > 1) out[n - 1] = bound - 1; // always touch the last row: catches off-by-one row strides
  return out;
}

export const f = (data: Float32Array): TensorInit => ({ dtype: 'float', data });
export const f32 = (data: Float32Array): TensorInit => ({ dtype: 'f32', data });
export const i32 = (data: Int32Array): TensorInit => ({ dtype: 'i32', data });
