// Diffused redundancy (Nanda et al., arXiv 2306.00183), DESIGN.md §1–2.
//
// Subsets: for seed s (0..seeds−1) one permutation π_s = seededPermutation(d, seed, 'dr', s);
// the subset for fraction f is π_s[:k], k = max(1, floor(f·d + 1e-9)) (the epsilon keeps
// floor(0.29·100) = 29 instead of 28). The same π_s serves every fraction, so a seed's subsets are
// nested (smoother curves), and the CKA curve and the probe curve use identical subsets.
// Std over seeds is the population std (ddof = 0, numpy's default).

import type { DrInfo, ProbeDrInfo } from '../report/schema.js';
import type { Centered } from './cka.js';
import type { MatmulBackend } from '../linalg/index.js';
import { CholeskyDecomposition, Matrix } from 'ml-matrix';
import { seededPermutation } from '../random.js';

export const DEFAULT_DR_FRACTIONS: readonly number[] = [0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0];

export function subsetSize(f: number, d: number): number {
  return Math.min(d, Math.max(1, Math.floor(f * d + 1e-9)));
}

export function drPermutations(d: number, seeds: number, seed: number): Int32Array[] {
  const out: Int32Array[] = [];
  for (let s = 0; s < seeds; s++) out.push(seededPermutation(d, seed, 'dr', s));
  return out;
}

export function meanStd(values: number[]): { mean: number; std: number } {
  const n = values.length;
  // Equal values: exact mean and zero spread (no rounding residue).
  if (n > 0 && values.every((v) => v === values[0])) return { mean: values[0], std: 0 };
  let m = 0;
  for (const v of values) m += v;
  m /= n;
  let s = 0;
  for (const v of values) s += (v - m) * (v - m);
  return { mean: m, std: Math.sqrt(s / n) };
}

/** DR(δ) = 1 − min f such that score(f)/full ≥ δ (fractions ascending). Null if none qualifies. */
export function drValue(fractions: number[], mean: (number | null)[], full: number, delta: number): number | null {
  if (!(full > 0)) return null;
  for (let i = 0; i < fractions.length; i++) {
    const m = mean[i];
    if (m !== null && m / full >= delta) return 1 - fractions[i];
  }
  return null;
}

export interface DrCurveOptions {
  fractions: number[];
  seeds: number;
  seed: number;
  delta: number;
  matmul: MatmulBackend;
  method?: 'auto' | 'gram' | 'feature';
  signal?: AbortSignal;
}

/** 'feature' (d×d covariance, subsets are sub-blocks) vs 'gram' (n×n Gram per subset), by flops. */
export function chooseDrMethod(n: number, d: number, fractions: number[], seeds: number): 'gram' | 'feature' {
  let feature = n * d * d;
  let gram = n * n * d;
  for (const f of fractions) {
    const k = subsetSize(f, d);
    feature += seeds * (k * k + k);
    gram += seeds * (n * n * k + 2 * n * n);
  }
  return gram < feature ? 'gram' : 'feature';
}

/**
 * CKA-based DR curve of one centred block. Scores are biased linear CKA(X_S, X); the full set
 * scores exactly 1. A subset made only of constant neurons has no centred variance; it is scored 0
 * (it carries nothing of X) and counted in `emptySubsets`.
 */
export async function drCkaCurve(x: Centered, perms: Int32Array[], opts: DrCurveOptions): Promise<{ info: DrInfo; emptySubsets: number }> {
  const { n, d, data } = x;
  const fractions = opts.fractions;
  const info: DrInfo = {
    block: -1, fractions: [...fractions], mean: [], std: [], delta: opts.delta, value: null, seeds: opts.seeds,
  };
  if (x.degenerate) {
    info.mean = fractions.map(() => null);
    info.std = fractions.map(() => null);
    return { info, emptySubsets: 0 };
  }
  const method = opts.method === undefined || opts.method === 'auto' ? chooseDrMethod(n, d, fractions, opts.seeds) : opts.method;
  let emptySubsets = 0;
  let score: (subset: Int32Array) => Promise<number | null>;
  if (method === 'feature') {
    score = covarianceScorer(await opts.matmul.atb(data, n, d, data, d), d);
  } else {
    const kFull = await opts.matmul.abt(data, n, data, n, d);
    let full2 = 0;
    for (let i = 0; i < kFull.length; i++) full2 += kFull[i] * kFull[i];
    score = async (sub) => {
      const k = sub.length;
      const xs = new Float64Array(n * k);
      for (let r = 0; r < n; r++) for (let a = 0; a < k; a++) xs[r * k + a] = data[r * d + sub[a]];
      const ks = await opts.matmul.abt(xs, n, xs, n, k);
      let num = 0;
      let den2 = 0;
      for (let i = 0; i < ks.length; i++) {
        num += ks[i] * kFull[i];
        den2 += ks[i] * ks[i];
      }
      if (den2 === 0) return null;
      return num / (Math.sqrt(den2) * Math.sqrt(full2));
    };
  }
  emptySubsets = await fillCurve(info, d, perms, score, opts.signal);
  info.value = drValue(fractions, info.mean, 1, opts.delta);
  return { info, emptySubsets };
}

async function fillCurve(info: DrInfo, d: number, perms: Int32Array[], score: (subset: Int32Array) => Promise<number | null>, signal?: AbortSignal): Promise<number> {
  let emptySubsets = 0;
  for (const f of info.fractions) {
    signal?.throwIfAborted();
    const k = subsetSize(f, d);
    if (k === d) {
      info.mean.push(1);
      info.std.push(0);
      continue;
    }
    const vals: number[] = [];
    for (const p of perms) {
      const v = await score(p.subarray(0, k));
      if (v === null) emptySubsets++;
      vals.push(v ?? 0);
    }
    const ms = meanStd(vals);
    info.mean.push(ms.mean);
    info.std.push(ms.std);
  }
  return emptySubsets;
}

/** Scores subsets from the centred covariance C = X̃ᵀX̃ (d×d): CKA(X_S, X) = Σ_{a∈S} ‖C_a‖² / (‖C_SS‖_F ‖C‖_F). */
function covarianceScorer(c: Float64Array, d: number): (subset: Int32Array) => Promise<number | null> {
  const rowN2 = new Float64Array(d);
  let full2 = 0;
  for (let i = 0; i < d; i++) {
    let s = 0;
    for (let j = 0; j < d; j++) s += c[i * d + j] * c[i * d + j];
    rowN2[i] = s;
    full2 += s;
  }
  return async (sub) => {
    let num = 0;
    let den2 = 0;
    for (let a = 0; a < sub.length; a++) {
      const ra = sub[a] * d;
      num += rowN2[sub[a]];
      for (let b = 0; b < sub.length; b++) den2 += c[ra + sub[b]] * c[ra + sub[b]];
    }
    if (den2 === 0) return null;
    return num / (Math.sqrt(den2) * Math.sqrt(full2));
  };
}

/**
 * The CKA-based DR curve from a block's centred covariance (the block-Gram accumulator's
 * diagonal block), for a non-degenerate block. Same subsets and scores as `drCkaCurve`'s
 * feature path.
 */
export async function drCkaCurveFromCovariance(
  c: Float64Array, d: number, perms: Int32Array[], opts: { fractions: number[]; seeds: number; delta: number; signal?: AbortSignal },
): Promise<{ info: DrInfo; emptySubsets: number }> {
  const info: DrInfo = { block: -1, fractions: [...opts.fractions], mean: [], std: [], delta: opts.delta, value: null, seeds: opts.seeds };
  const emptySubsets = await fillCurve(info, d, perms, covarianceScorer(c, d), opts.signal);
  info.value = drValue(opts.fractions, info.mean, 1, opts.delta);
  return { info, emptySubsets };
}

// ---------------------------------------------------------------------------------------------
// Linear probe

/**
 * Solves A X = B for a symmetric positive-definite s×s A and s×m B (row-major) by Cholesky
 * (ml-matrix: these systems are small, k+1 ≤ d+1). Returns null when A is not positive definite.
 */
export function solveSpd(a: Float64Array, s: number, b: Float64Array, m: number): Float64Array | null {
  const chol = new CholeskyDecomposition(rowsOf(a, s, s));
  if (!chol.isPositiveDefinite()) return null;
  const x = chol.solve(rowsOf(b, s, m));
  return Float64Array.from(x.to1DArray());
}

function rowsOf(a: Float64Array, r: number, c: number): Matrix {
  const m = new Matrix(r, c);
  for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) m.set(i, j, a[i * c + j]);
  return m;
}

/** Gini coefficient Σ_i Σ_j |a_i − a_j| / (2 C² mean a); 0 when all values are 0 (all equal). */
export function gini(a: number[]): number {
  const C = a.length;
  if (C === 0) return 0;
  let mean = 0;
  for (const v of a) mean += v;
  mean /= C;
  if (mean === 0) return 0;
  let s = 0;
  for (let i = 0; i < C; i++) for (let j = 0; j < C; j++) s += Math.abs(a[i] - a[j]);
  return s / (2 * C * C * mean);
}

/** Coefficient of variation std/mean (population std); 0 when the mean is 0 (all values 0). */
export function coefficientOfVariation(a: number[]): number {
  if (a.length === 0) return 0;
  const { mean, std } = meanStd(a);
  return mean === 0 ? 0 : std / mean;
}

export { probeCurve, type ProbeOptions } from './probe.js';
