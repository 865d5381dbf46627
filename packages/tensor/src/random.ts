// Seeded randomness for blankglm. Library code never calls Math.random: an Rng is created from a
// seed and passed in explicitly, and its whole state can be saved and restored (exact resume).
//
// Two kinds:
// - `Rng`: a sequential stream (xoshiro128**), for data sampling, shuffling and initialisation.
// - `counterHash32` / `counterUniform`: a stateless function of (seed, stream, index), for dropout
//   masks. Every backend (TypeScript, AssemblyScript, CUDA) computes the same bits from the same
//   counters with only 32-bit integer multiply, xor and shifts, so masks never need storing and
//   backends agree bit for bit.

/** The saved state of an Rng: four unsigned 32-bit words. */
export interface RngState {
  algorithm: 'xoshiro128**';
  s: [number, number, number, number];
}

function splitmix32(state: { x: number }): number {
  state.x = (state.x + 0x9e3779b9) >>> 0;
  let z = state.x;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
  return (z ^ (z >>> 16)) >>> 0;
}

/** Folds a seed (a safe integer or a string) into 32 bits, deterministically. */
export function seedToU32(seed: number | string): number {
  if (typeof seed === 'number') {
    if (!Number.isSafeInteger(seed)) throw new RangeError(`seed must be a safe integer, got ${seed}`);
    const lo = seed >>> 0;
    const hi = Math.floor(seed / 0x100000000) >>> 0;
    return (lo ^ Math.imul(hi, 0x9e3779b1)) >>> 0;
  }
  let h = 0x811c9dc5;
  for (let i = 0; i < seed.length; i++) {
    h = Math.imul(h ^ seed.charCodeAt(i), 0x01000193) >>> 0;
  }
  return h >>> 0;
}

const rotl = (x: number, k: number): number => ((x << k) | (x >>> (32 - k))) >>> 0;

/**
 * A seeded pseudo-random stream (xoshiro128**). Same seed, same sequence, on every platform.
 * `getState()`/`setState()` capture it exactly, so a resumed run continues the same stream.
 */
export class Rng {
  private s0 = 0;
  private s1 = 0;
  private s2 = 0;
  private s3 = 0;

  constructor(seed: number | string = 0) {
    const st = { x: seedToU32(seed) };
    this.s0 = splitmix32(st);
    this.s1 = splitmix32(st);
    this.s2 = splitmix32(st);
    this.s3 = splitmix32(st);
    if ((this.s0 | this.s1 | this.s2 | this.s3) === 0) this.s0 = 1;
  }

  static fromState(state: RngState): Rng {
    const r = new Rng(0);
    r.setState(state);
    return r;
  }

  getState(): RngState {
    return { algorithm: 'xoshiro128**', s: [this.s0, this.s1, this.s2, this.s3] };
  }

  setState(state: RngState): void {
    if (state?.algorithm !== 'xoshiro128**' || !Array.isArray(state.s) || state.s.length !== 4) {
      throw new TypeError(`not an Rng state: expected {algorithm: 'xoshiro128**', s: [4 × uint32]}`);
    }
    const [a, b, c, d] = state.s.map((v) => {
      if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new TypeError(`Rng state word out of range: ${v}`);
      return v >>> 0;
    }) as [number, number, number, number];
    if ((a | b | c | d) === 0) throw new TypeError('Rng state must not be all zero');
    this.s0 = a;
    this.s1 = b;
    this.s2 = c;
    this.s3 = d;
  }

  clone(): Rng {
    return Rng.fromState(this.getState());
  }

  /** A new, independent stream derived from this one's current state and a label; this one is unchanged. */
  fork(label: number | string): Rng {
    const l = seedToU32(label);
    const seed = (this.s0 ^ Math.imul(l, 0x9e3779b1) ^ rotl(this.s2, 7)) >>> 0;
    const r = new Rng(seed);
    r.s1 = (r.s1 ^ this.s1) >>> 0 || 1;
    r.s3 = (r.s3 ^ this.s3 ^ l) >>> 0;
    return r;
  }

  /** The next unsigned 32-bit integer. */
  nextU32(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5) >>> 0, 7), 9) >>> 0;
    const t = (this.s1 << 9) >>> 0;
    this.s2 = (this.s2 ^ this.s0) >>> 0;
    this.s3 = (this.s3 ^ this.s1) >>> 0;
    this.s1 = (this.s1 ^ this.s2) >>> 0;
    this.s0 = (this.s0 ^ this.s3) >>> 0;
    this.s2 = (this.s2 ^ t) >>> 0;
    this.s3 = rotl(this.s3, 11);
    return result;
  }

  /** A float uniform in [0, 1) with 53 random bits. */
  float(): number {
    const hi = this.nextU32() >>> 5; // 27 bits
    const lo = this.nextU32() >>> 6; // 26 bits
    return (hi * 67108864 + lo) / 9007199254740992;
  }

  /** An integer uniform in [0, n), without modulo bias. */
  int(n: number): number {
    if (!Number.isInteger(n) || n <= 0 || n > 0x100000000) throw new RangeError(`int(n) needs 1 <= n <= 2^32, got ${n}`);
    if (n === 1) return 0;
    const limit = 0x100000000 - (0x100000000 % n);
    for (;;) {
      const x = this.nextU32();
      if (x < limit) return x % n;
    }
  }

  /** An integer uniform in [lo, hi] (both inclusive). */
  intBetween(lo: number, hi: number): number {
    if (hi < lo) throw new RangeError(`intBetween(${lo}, ${hi}): empty range`);
    return lo + this.int(hi - lo + 1);
  }

  /** A standard normal draw (Box–Muller; one pair of uniforms per call). */
  normal(mean = 0, std = 1): number {
    let u = 0;
    while (u === 0) u = this.float();
    const v = this.float();
    return mean + std * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }

  /** Shuffles in place (Fisher–Yates) and returns the array. */
  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const tmp = items[i]!;
      items[i] = items[j]!;
      items[j] = tmp;
    }
    return items;
  }

  /** An index drawn with probability proportional to `weights[i]` (non-negative, not all zero). */
  weighted(weights: ArrayLike<number>): number {
    let total = 0;
    for (let i = 0; i < weights.length; i++) total += weights[i]!;
    if (!(total > 0)) throw new RangeError('weighted(): weights must have a positive sum');
    let x = this.float() * total;
    for (let i = 0; i < weights.length; i++) {
      x -= weights[i]!;
      if (x < 0) return i;
    }
    return weights.length - 1;
  }
}

function fmix32(h: number): number {
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/**
 * A stateless 32-bit hash of (seed, stream, index) — the counter-based RNG behind dropout.
 * Uses only 32-bit multiply, xor and shifts, so AssemblyScript and CUDA compute identical bits:
 *   h = fmix32(seed ^ imul(stream, 0x9e3779b1))
 *   h = fmix32(h ^ imul(index, 0x85ebca77) ^ 0xc2b2ae3d)
 */
export function counterHash32(seed: number, stream: number, index: number): number {
  let h = fmix32((seed ^ Math.imul(stream >>> 0, 0x9e3779b1)) >>> 0);
  h = fmix32((h ^ Math.imul(index >>> 0, 0x85ebca77) ^ 0xc2b2ae3d) >>> 0);
  return h;
}

/** `counterHash32` as a float in [0, 1): hash / 2^32. An element is dropped when this is < p. */
export function counterUniform(seed: number, stream: number, index: number): number {
  return counterHash32(seed, stream, index) / 4294967296;
}
