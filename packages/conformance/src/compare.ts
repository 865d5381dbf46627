// Output comparison like ggml's test-backend-ops: NMSE against the reference for floats, exact
// equality for integers, NaN always fails, infinities must match in position and sign.

/** One element where the backend under test and the reference disagree. */
export interface ElementDiff {
  index: number;
  got: number;
  expected: number;
}

export interface TensorComparison {
  /** Argument name of the output (e.g. 'dWeight'). */
  output: string;
  /** 'nmse' for float outputs, 'exact' for integer outputs. */
  kind: 'nmse' | 'exact';
  /** NMSE (float outputs); for an all-zero reference, the plain sum of squared errors. Null when not computable (NaN). */
  nmse: number | null;
  threshold: number;
  ok: boolean;
  /** What is wrong, one line; empty when ok. */
  message: string;
  /** The first few elements that differ noticeably (for exact: at all), in index order. */
  diffs: ElementDiff[];
}

/** How many differing elements a failure lists. */
export const MAX_LISTED_DIFFS = 5;

/**
 * Compares a float output with the reference.
 *
 * NMSE = Σ(a−b)² / E over the finite elements, a = backend, b = reference, b₀ = the output's content
 * before the op (the same on both backends). E is the smaller of Σb² (ggml's definition) and
 * Σ(b−b₀)² (the energy of what the op changed), so neither kind of op is judged leniently:
 * - an op that overwrites a buffer holding larger old data (`x *= 1/65536`) is judged on Σb²;
 * - an op that adds a small gradient into a large buffer (`dW +=`, an AdamW step) on Σ(b−b₀)².
 * When the smaller energy is numerically zero next to the larger (below 1e-12 of it: the output is
 * f32 rounding noise, e.g. dq of attention over a single key), the larger one is used; when
 * both are zero, Σ(a−b)² itself is held to the threshold.
 *
 * An element counts as "differing" for the listing when |a−b| exceeds sqrt(threshold)·sqrt(E/n):
 * the per-element error that alone would use up the budget.
 *
 * `storage` 'bf16': the output is stored in bf16, so a difference of at most one bf16 ulp of the
 * reference value is its own rounding, not an error (it counts as zero). Without this, an op that
 * adds a small change into a bf16 buffer (dW += …) would be judged against the change's energy,
 * far below the buffer's own rounding step: one element rounding the other way would fail.
 */
export function compareFloat(
  output: string,
  got: ArrayLike<number>,
  expected: ArrayLike<number>,
  threshold: number,
  before?: ArrayLike<number>,
  storage: 'f32' | 'bf16' = 'f32',
): TensorComparison {
  const n = expected.length;
  if (got.length !== n) {
    return { output, kind: 'nmse', nmse: null, threshold, ok: false, message: `${output}: read back ${got.length} elements, reference has ${n}`, diffs: [] };
  }
  let errSq = 0;
  let resultSq = 0; // Σb²
  let changeSq = 0; // Σ(b−b₀)²
  let firstNaN = -1;
  let expectedNaN = -1;
  let firstInfMismatch = -1;
  for (let i = 0; i < n; i++) {
    const a = got[i]!;
    const b = expected[i]!;
    if (Number.isNaN(b)) {
      if (expectedNaN < 0) expectedNaN = i;
      continue;
    }
    if (Number.isNaN(a)) {
      if (firstNaN < 0) firstNaN = i;
      continue;
    }
    if (!Number.isFinite(a) || !Number.isFinite(b)) {
      if (a !== b && firstInfMismatch < 0) firstInfMismatch = i;
      continue;
    }
    const b0 = before ? before[i]! : 0;
    const err = storage === 'bf16' && Math.abs(a - b) <= bf16Ulp(b) ? 0 : a - b;
    errSq += err * err;
    resultSq += b * b;
    changeSq += Number.isFinite(b0) ? (b - b0) * (b - b0) : b * b;
  }
  const small = Math.min(resultSq, changeSq);
  const large = Math.max(resultSq, changeSq);
  const refSq = small >= 1e-12 * large ? small : large;
  const nmse = refSq > 0 ? errSq / refSq : errSq;
  const rms = Math.sqrt(refSq / Math.max(1, n));
  const tol = Math.sqrt(threshold) * (rms > 0 ? rms : 1);
  const diffs: ElementDiff[] = [];
  for (let i = 0; i < n && diffs.length < MAX_LISTED_DIFFS; i++) {
    const a = got[i]!;
    const b = expected[i]!;
    const bad = Number.isNaN(a) || Number.isNaN(b) || (!Number.isFinite(a) || !Number.isFinite(b) ? a !== b : Math.abs(a - b) > Math.max(tol, storage === 'bf16' ? bf16Ulp(b) : 0));
    if (bad) diffs.push({ index: i, got: a, expected: b });
  }
  if (expectedNaN >= 0) {
    return { output, kind: 'nmse', nmse: null, threshold, ok: false, message: `${output}: the reference produced NaN at [${expectedNaN}] (a bad case or a reference bug)`, diffs };
  }
  if (firstNaN >= 0) {
    return { output, kind: 'nmse', nmse: null, threshold, ok: false, message: `${output}: NaN at [${firstNaN}] (expected ${expected[firstNaN]})`, diffs };
  }
  if (firstInfMismatch >= 0) {
    return {
      output, kind: 'nmse', nmse, threshold, ok: false,
      message: `${output}: infinity mismatch at [${firstInfMismatch}]: got ${got[firstInfMismatch]}, expected ${expected[firstInfMismatch]}`,
      diffs,
    };
  }
  const ok = nmse <= threshold;
  return { output, kind: 'nmse', nmse, threshold, ok, message: ok ? '' : `${output}: NMSE ${formatNumber(nmse)} > threshold ${formatNumber(threshold)}`, diffs: ok ? [] : diffs };
}

/** The spacing of bf16 values at |x| (8 significant bits); the smallest normal spacing at 0. */
export function bf16Ulp(x: number): number {
  const ax = Math.abs(x);
  if (!(ax >= 2 ** -126)) return 2 ** -133;
  let e = Math.floor(Math.log2(ax));
  if (2 ** e > ax) e--; // log2 rounding just below a power of two
  return 2 ** (e - 7);
}

/** Compares an integer output element by element: any difference fails. */
export function compareExact(output: string, got: ArrayLike<number>, expected: ArrayLike<number>): TensorComparison {
  if (got.length !== expected.length) {
    return { output, kind: 'exact', nmse: null, threshold: 0, ok: false, message: `${output}: read back ${got.length} elements, reference has ${expected.length}`, diffs: [] };
  }
  const diffs: ElementDiff[] = [];
  let count = 0;
  for (let i = 0; i < expected.length; i++) {
    if (got[i] !== expected[i]) {
      if (diffs.length < MAX_LISTED_DIFFS) diffs.push({ index: i, got: got[i]!, expected: expected[i]! });
      count++;
    }
  }
  const ok = count === 0;
  return { output, kind: 'exact', nmse: ok ? 0 : null, threshold: 0, ok, message: ok ? '' : `${output}: ${count} of ${expected.length} integer elements differ`, diffs };
}

/** Whether two read-backs are bitwise identical as numbers (NaN equals NaN); returns the first differing index or -1. */
export function firstDifference(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Math.min(a.length, b.length);
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!;
    const y = b[i]!;
    if (x !== y && !(Number.isNaN(x) && Number.isNaN(y))) return i;
    if (x === 0 && y === 0 && 1 / x !== 1 / y) return i; // +0 vs -0
  }
  return -1;
}

/** Short scientific notation for reports. */
export function formatNumber(x: number | null): string {
  if (x === null) return '—';
  if (x === 0) return '0';
  if (!Number.isFinite(x)) return String(x);
  return Math.abs(x) >= 1e-3 && Math.abs(x) < 1e4 ? String(Number(x.toPrecision(4))) : x.toExponential(2);
}

/** An element value for a diff listing: integers exactly, floats with f32's 8 significant digits. */
export function formatValue(x: number): string {
  if (Number.isInteger(x) || !Number.isFinite(x)) return String(x);
  return String(Number(x.toPrecision(8)));
}
