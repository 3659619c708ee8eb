// Linear CKA, biased (full set) and unbiased minibatch (Nguyen et al. 2021), in float64.
// Definitions: DESIGN.md §2. All large products go through a MatmulBackend.

import type { MatmulBackend } from '../linalg/index.js';
import { seededPermutation } from '../random.js';

export interface Centered {
  /** Column-centred copy, row-major n×d. Constant columns are exactly 0. */
  data: Float64Array;
  n: number;
  d: number;
  /** Column means that were subtracted. */
  mean: Float64Array;
  /** Every column is constant over the n rows (zero variance): CKA is undefined. */
  degenerate: boolean;
}

/** Column-centre X (n×d). A column whose values are all equal becomes exactly 0. */
export function centerColumns(x: Float64Array, n: number, d: number): Centered {
  if (x.length !== n * d) throw new Error(`centerColumns: expected ${n}×${d} values, got ${x.length}`);
  const mean = new Float64Array(d);
  const constant = new Uint8Array(d).fill(1);
  for (let i = 0; i < n; i++) {
    const o = i * d;
    for (let k = 0; k < d; k++) {
      const v = x[o + k];
      mean[k] += v;
      if (constant[k] && v !== x[k]) constant[k] = 0;
    }
  }
  for (let k = 0; k < d; k++) mean[k] = constant[k] ? (n > 0 ? x[k] : 0) : mean[k] / n;
  // Second pass correction (two-pass mean) for accuracy on large offsets.
  const corr = new Float64Array(d);
  for (let i = 0; i < n; i++) {
    const o = i * d;
    for (let k = 0; k < d; k++) corr[k] += x[o + k] - mean[k];
  }
  for (let k = 0; k < d; k++) if (!constant[k] && n > 0) mean[k] += corr[k] / n;
  const data = new Float64Array(n * d);
  let degenerate = true;
  for (let k = 0; k < d; k++) if (!constant[k]) degenerate = false;
  if (n < 2) degenerate = true;
  for (let i = 0; i < n; i++) {
    const o = i * d;
    for (let k = 0; k < d; k++) data[o + k] = constant[k] ? 0 : x[o + k] - mean[k];
  }
  return { data, n, d, mean, degenerate };
}

function frob2(a: Float64Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * a[i];
  return s;
}

export function dot(a: Float64Array, b: Float64Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

export type CkaMethod = 'gram' | 'feature';

/** Flop estimates for the biased CKA matrix over blocks of widths `dims` with n rows. */
export function ckaFlops(n: number, dims: number[]): { gram: number; feature: number } {
  const L = dims.length;
  let gram = 0;
  let feature = 0;
  for (let i = 0; i < L; i++) {
    gram += n * n * dims[i];
    for (let j = i; j < L; j++) {
      feature += n * dims[i] * dims[j] + dims[i] * dims[j];
      if (j > i) gram += n * n;
    }
  }
  return { gram, feature };
}

/**
 * Choose the cheaper path by flop estimate; the Gram path is only taken when its L n×n float64
 * matrices fit in `gramMemoryBytes`.
 */
export function chooseCkaMethod(n: number, dims: number[], gramMemoryBytes = 1 << 30): CkaMethod {
  const f = ckaFlops(n, dims);
  const gramBytes = dims.length * n * n * 8;
  return f.gram < f.feature && gramBytes <= gramMemoryBytes ? 'gram' : 'feature';
}

/**
 * Biased linear CKA matrix between centred blocks. Entries with a degenerate block are null.
 * Diagonal is exactly 1 for non-degenerate blocks. Exactly symmetric.
 */
export async function biasedCkaMatrix(blocks: Centered[], matmul: MatmulBackend, method: CkaMethod): Promise<(number | null)[][]> {
  const L = blocks.length;
  const out: (number | null)[][] = Array.from({ length: L }, () => new Array<number | null>(L).fill(null));
  if (L === 0) return out;
  const n = blocks[0].n;
  const live = blocks.map((b) => !b.degenerate);
  for (let i = 0; i < L; i++) if (live[i]) out[i][i] = 1;
  if (method === 'gram') {
    const grams: (Float64Array | null)[] = [];
    const norms: number[] = [];
    for (const b of blocks) {
      if (b.degenerate) {
        grams.push(null);
        norms.push(0);
        continue;
      }
      const k = await matmul.abt(b.data, n, b.data, n, b.d);
      grams.push(k);
      norms.push(Math.sqrt(frob2(k)));
    }
    for (let i = 0; i < L; i++) {
      for (let j = i + 1; j < L; j++) {
        const ki = grams[i];
        const kj = grams[j];
        if (!ki || !kj) continue;
        const v = dot(ki, kj) / (norms[i] * norms[j]);
        out[i][j] = v;
        out[j][i] = v;
      }
    }
    return out;
  }
  // Feature space: ‖XᵢᵀXⱼ‖²_F per pair, ‖XᵢᵀXᵢ‖_F per block.
  const selfNorm: number[] = [];
  for (const b of blocks) {
    if (b.degenerate) {
      selfNorm.push(0);
      continue;
    }
    selfNorm.push(Math.sqrt(frob2(await matmul.atb(b.data, n, b.d, b.data, b.d))));
  }
  for (let i = 0; i < L; i++) {
    for (let j = i + 1; j < L; j++) {
      if (!live[i] || !live[j]) continue;
      const c = await matmul.atb(blocks[i].data, n, blocks[i].d, blocks[j].data, blocks[j].d);
      const v = frob2(c) / (selfNorm[i] * selfNorm[j]);
      out[i][j] = v;
      out[j][i] = v;
    }
  }
  return out;
}

/** Biased linear CKA of two matrices X (n×dx), Y (n×dy). Null if either is degenerate. */
export async function linearCka(
  x: Float64Array, y: Float64Array, n: number, dx: number, dy: number,
  matmul: MatmulBackend, method: CkaMethod | 'auto' = 'auto',
): Promise<number | null> {
  const bx = centerColumns(x, n, dx);
  const by = centerColumns(y, n, dy);
  const m = method === 'auto' ? chooseCkaMethod(n, [dx, dy]) : method;
  const mat = await biasedCkaMatrix([bx, by], matmul, m);
  return mat[0][1];
}

/**
 * HSIC₁ (unbiased, Song et al. 2012) from Gram matrices with zeroed diagonals, given their row
 * sums and totals. `tr` = tr(K̃L̃) = Σ K̃∘L̃ (both symmetric).
 */
export function hsic1FromParts(tr: number, sumK: number, sumL: number, rowK: Float64Array, rowL: Float64Array, n: number): number {
  if (n < 4) throw new Error(`unbiased HSIC needs n ≥ 4, got ${n}`);
  const kl1 = dot(rowK, rowL);
  return (tr + (sumK * sumL) / ((n - 1) * (n - 2)) - (2 / (n - 2)) * kl1) / (n * (n - 3));
}

export interface ZeroDiagGram {
  k: Float64Array;
  rows: Float64Array;
  total: number;
}

export function zeroDiagParts(k: Float64Array, n: number): ZeroDiagGram {
  for (let i = 0; i < n; i++) k[i * n + i] = 0;
  const rows = new Float64Array(n);
  let total = 0;
  for (let i = 0; i < n; i++) {
    let s = 0;
    const o = i * n;
    for (let j = 0; j < n; j++) s += k[o + j];
    rows[i] = s;
    total += s;
  }
  return { k, rows, total };
}

/** Unbiased HSIC₁ of two n×n Gram matrices (copies are made; diagonals zeroed). */
export function hsic1(kIn: Float64Array, lIn: Float64Array, n: number): number {
  const a = zeroDiagParts(Float64Array.from(kIn), n);
  const b = zeroDiagParts(Float64Array.from(lIn), n);
  return hsic1FromParts(dot(a.k, b.k), a.total, b.total, a.rows, b.rows, n);
}

export interface UnbiasedBatches {
  /** Row indices of each batch (equal sizes). */
  batches: Int32Array[];
  batchSize: number;
  dropped: number;
}

/**
 * The batches used by the unbiased minibatch CKA: rows in the seeded order
 * seededPermutation(N, seed, 'unbiased-cka'), cut into floor(N / n) batches of n = min(batch, N);
 * the short remainder is dropped.
 */
export function unbiasedBatches(N: number, batch: number, seed: number): UnbiasedBatches {
  const size = Math.min(batch, N);
  const count = size > 0 ? Math.floor(N / size) : 0;
  const perm = seededPermutation(N, seed, 'unbiased-cka');
  const batches: Int32Array[] = [];
  for (let b = 0; b < count; b++) batches.push(perm.slice(b * size, (b + 1) * size));
  return { batches, batchSize: size, dropped: N - count * size };
}

/** HSIC(X,X) at or below this fraction of mean tr(K̃K̃)/(n(n−3)) is treated as zero. */
export const HSIC_ZERO_RELATIVE = 1e-10;

export interface UnbiasedResult {
  matrix: (number | null)[][];
  /** Mean HSIC₁ per pair over batches (null for degenerate blocks). */
  hsic: (number | null)[][];
  batches: number;
  batchSize: number;
  dropped: number;
  /** Blocks (not flagged degenerate) whose mean HSIC(X,X) was ≤ 0 or at rounding level. */
  nonPositive: number[];
}

/**
 * Unbiased minibatch linear CKA matrix: CKA = mean_b HSIC(X,Y) / sqrt(mean_b HSIC(X,X)·mean_b HSIC(Y,Y)).
 * Blocks are the centred representations (HSIC₁ is invariant to a shift of the features; centring
 * only helps rounding). Throws if the batch size is < 4.
 */
export async function unbiasedCkaMatrix(blocks: Centered[], matmul: MatmulBackend, batch: number, seed: number): Promise<UnbiasedResult> {
  const L = blocks.length;
  const N = L > 0 ? blocks[0].n : 0;
  const plan = unbiasedBatches(N, batch, seed);
  const n = plan.batchSize;
  if (n < 4) throw new Error(`unbiased CKA needs batches of at least 4 rows (have ${N} rows, batch ${batch})`);
  const sums = Array.from({ length: L }, () => new Float64Array(L));
  // Σ_b tr(K̃K̃)/(n(n−3)) per block: the scale against which HSIC(X,X) is judged to be zero.
  const scale = new Float64Array(L);
  const live = blocks.map((b) => !b.degenerate);
  for (const rows of plan.batches) {
    const parts: (ZeroDiagGram | null)[] = [];
    for (let b = 0; b < L; b++) {
      if (!live[b]) {
        parts.push(null);
        continue;
      }
      const { data, d } = blocks[b];
      const sub = new Float64Array(n * d);
      for (let r = 0; r < n; r++) sub.set(data.subarray(rows[r] * d, rows[r] * d + d), r * d);
      parts.push(zeroDiagParts(await matmul.abt(sub, n, sub, n, d), n));
    }
    for (let i = 0; i < L; i++) {
      const pi = parts[i];
      if (!pi) continue;
      for (let j = i; j < L; j++) {
        const pj = parts[j];
        if (!pj) continue;
        const tr = dot(pi.k, pj.k);
        if (i === j) scale[i] += tr / (n * (n - 3));
        sums[i][j] += hsic1FromParts(tr, pi.total, pj.total, pi.rows, pj.rows, n);
      }
    }
  }
  const B = plan.batches.length;
  const hsic: (number | null)[][] = Array.from({ length: L }, () => new Array<number | null>(L).fill(null));
  for (let i = 0; i < L; i++) {
    for (let j = i; j < L; j++) {
      if (!live[i] || !live[j]) continue;
      hsic[i][j] = hsic[j][i] = sums[i][j] / B;
    }
  }
  const matrix: (number | null)[][] = Array.from({ length: L }, () => new Array<number | null>(L).fill(null));
  const nonPositive: number[] = [];
  const ok: boolean[] = [];
  for (let i = 0; i < L; i++) {
    const h = hsic[i][i];
    // HSIC₁(K,K) ≥ 0 in exact arithmetic (it is a squared norm of the U-centred Gram matrix), so a
    // value that is ≤ 0 or at rounding level (no variation inside any batch) means "undefined".
    const good = h !== null && h > HSIC_ZERO_RELATIVE * (scale[i] / B);
    ok.push(good);
    if (live[i] && !good) nonPositive.push(i);
    if (ok[i]) matrix[i][i] = 1;
  }
  for (let i = 0; i < L; i++) {
    for (let j = i + 1; j < L; j++) {
      if (!ok[i] || !ok[j]) continue;
      const v = (hsic[i][j] as number) / Math.sqrt((hsic[i][i] as number) * (hsic[j][j] as number));
      if (!Number.isFinite(v)) continue;
      matrix[i][j] = matrix[j][i] = v;
    }
  }
  return { matrix, hsic, batches: B, batchSize: n, dropped: plan.dropped, nonPositive };
}
