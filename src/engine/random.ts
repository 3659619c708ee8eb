// Seeded pseudo-random numbers for the whole engine (calibration/ and stats/).
//
// Generator: xoshiro128** (Blackman & Vigna): 128 bits of state, period 2^128 − 1, output
// rotl(b·5, 7)·9. Floats in [0, 1) take 53 bits from two outputs, integers in [0, n) are drawn
// without modulo bias (rejection), normals come from Box–Muller using both values of each pair.
// Only 32-bit integer arithmetic, so every platform produces the same numbers.
//
// Independent streams: a stream is named by a base seed plus tags (strings or integers), e.g.
// `new Rng(seed, i)` for synthetic input i or `seededPermutation(d, seed, 'dr', s)` for DR subset s.
// `deriveSeed` hashes (seed, tags) with the murmur3 32-bit finaliser (`fmix32`) into one 32-bit
// value, and splitmix32 expands that into the four state words. A stream therefore depends only on
// its (seed, tags), never on how many numbers other parts consumed. `hashUniform(seed, index)` is
// the stateless counterpart: a uniform that depends only on (seed, index), with no generator.

/** murmur3 fmix32 finaliser: a bijective 32-bit avalanche mix. */
export function fmix32(h: number): number {
  h >>>= 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** Derive a 32-bit seed from a base seed and a list of tags (strings or integers). */
export function deriveSeed(seed: number, ...tags: (string | number)[]): number {
  // Fold the (possibly non-32-bit) seed: low and high words.
  let h = fmix32((seed >>> 0) ^ 0x9e3779b9);
  h = fmix32(h ^ Math.floor(seed / 4294967296) >>> 0);
  for (const tag of tags) {
    if (typeof tag === 'number') {
      h = fmix32(Math.imul(h ^ (tag >>> 0), 0x01000193) ^ Math.floor(tag / 4294967296) >>> 0);
    } else {
      for (let i = 0; i < tag.length; i++) h = fmix32(Math.imul(h ^ tag.charCodeAt(i), 0x01000193));
      h = fmix32(h ^ tag.length);
    }
  }
  return h >>> 0;
}

/**
 * A uniform number in [0, 1) that depends only on (seed, index): used for reservoir sampling so
 * every stream (block) makes the same keep/replace decision for row `index`.
 */
export function hashUniform(seed: number, index: number): number {
  const lo = index >>> 0;
  const hi = Math.floor(index / 4294967296) >>> 0;
  const a = fmix32(fmix32(seed ^ 0x85ebca6b) ^ lo);
  const b = fmix32(fmix32(a ^ hi ^ 0x27d4eb2f) + 0x165667b1);
  const c = fmix32(b ^ lo ^ 0x9e3779b9);
  // 53-bit uniform from two 32-bit words (21 + 32 bits).
  return ((b >>> 11) * 4294967296 + c) / 9007199254740992;
}

function splitmix32(state: { s: number }): number {
  state.s = (state.s + 0x9e3779b9) | 0;
  let z = state.s;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

/** xoshiro128** generator for the stream (seed, ...tags); see the top of this file. */
export class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;
  private spare: number | null = null;

  constructor(seed: number, ...tags: (string | number)[]) {
    const st = { s: deriveSeed(seed, ...tags) | 0 };
    this.a = splitmix32(st);
    this.b = splitmix32(st);
    this.c = splitmix32(st);
    this.d = splitmix32(st);
    if ((this.a | this.b | this.c | this.d) === 0) this.a = 1;
  }

  /** Uniform 32-bit unsigned integer. */
  nextU32(): number {
    const result = Math.imul(rotl(Math.imul(this.b, 5), 7), 9) >>> 0;
    const t = this.b << 9;
    this.c ^= this.a;
    this.d ^= this.b;
    this.b ^= this.c;
    this.a ^= this.d;
    this.c ^= t;
    this.d = rotl(this.d, 11);
    return result;
  }

  /** Uniform in [0, 1) with 53 random bits. */
  next(): number {
    const hi = this.nextU32() >>> 5; // 27 bits
    const lo = this.nextU32() >>> 6; // 26 bits
    return (hi * 67108864 + lo) / 9007199254740992;
  }

  /** Uniform integer in [0, n), without modulo bias. */
  int(n: number): number {
    if (!(n >= 1)) throw new RangeError(`Rng.int: n must be ≥ 1, got ${n}`);
    if (n <= 4294967296) {
      const limit = 4294967296 - (4294967296 % n);
      for (;;) {
        const x = this.nextU32();
        if (x < limit) return x % n;
      }
    }
    return Math.floor(this.next() * n);
  }

  /** Standard normal N(0, 1) by Box–Muller (both values of each pair are used). */
  normal(): number {
    if (this.spare !== null) {
      const s = this.spare;
      this.spare = null;
      return s;
    }
    const u1 = 1 - this.next(); // (0, 1]: log is finite
    const u2 = this.next();
    const r = Math.sqrt(-2 * Math.log(u1));
    const theta = 2 * Math.PI * u2;
    this.spare = r * Math.sin(theta);
    return r * Math.cos(theta);
  }
}

/** Fisher–Yates random permutation of 0..n−1 (`randperm(n)`), drawing from `rng`. */
export function randperm(n: number, rng: Rng): Int32Array {
  const p = new Int32Array(n);
  for (let i = 0; i < n; i++) p[i] = i;
  for (let i = n - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    const t = p[i];
    p[i] = p[j];
    p[j] = t;
  }
  return p;
}

/** Permutation of 0..n−1 determined by the stream (seed, ...tags). */
export function seededPermutation(n: number, seed: number, ...tags: (string | number)[]): Int32Array {
  return randperm(n, new Rng(seed, ...tags));
}

/** A seeded subset of size k of 0..n−1, ascending: the first k entries of `seededPermutation(n, seed)`. */
export function sortedSubset(n: number, k: number, seed: number): number[] {
  if (k >= n) return Array.from({ length: n }, (_, i) => i);
  return Array.from(seededPermutation(n, seed).subarray(0, k)).sort((x, y) => x - y);
}
