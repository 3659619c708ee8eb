// Seeded pseudo-random numbers for everything in stats/ that needs randomness.
//
// Generator: mulberry32 (Tommy Ettinger's 32-bit-state generator): state += 0x6D2B79F5, then an
// xorshift-multiply output mix. Period 2^32, fine for choosing subsets and orders.
// Seeds for independent streams are derived by hashing (seed, tag, indices) with the
// murmur3 32-bit finaliser (`fmix32`), so e.g. the DR subset for seed s does not depend on how
// many random numbers other parts consumed.
//
// Integers in [0, n) are floor(u·n) with u = next32 / 2^32 (bias < n / 2^32; deterministic).

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

export class Rng {
  private state: number;
  constructor(seed: number) {
    this.state = seed >>> 0;
  }
  /** Next unsigned 32-bit integer (mulberry32). */
  nextU32(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }
  /** Uniform in [0, 1) with 32 random bits. */
  next(): number {
    return this.nextU32() / 4294967296;
  }
  /** Uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
}

/** Fisher–Yates random permutation of 0..n−1 (`randperm(n)`). */
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

/** Permutation of 0..n−1 determined by (seed, tags). */
export function seededPermutation(n: number, seed: number, ...tags: (string | number)[]): Int32Array {
  return randperm(n, new Rng(deriveSeed(seed, ...tags)));
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
