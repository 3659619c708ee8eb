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
import { Rng, randperm, seededPermutation } from '../random.js';

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
    const c = await opts.matmul.atb(data, n, d, data, d);
    const rowN2 = new Float64Array(d);
    let full2 = 0;
    for (let i = 0; i < d; i++) {
      let s = 0;
      for (let j = 0; j < d; j++) s += c[i * d + j] * c[i * d + j];
      rowN2[i] = s;
      full2 += s;
    }
    score = async (sub) => {
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
  for (const f of fractions) {
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
  info.value = drValue(fractions, info.mean, 1, opts.delta);
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

export interface ProbeOptions {
  fractions: number[];
  perms: Int32Array[];
  delta: number;
  heldOut: number;
  seed: number;
  matmul: MatmulBackend;
  /** Ridge strength relative to the mean diagonal: λ = ridge · tr(X̃ᵀX̃)/(k+1). Default 1e−3. */
  ridge?: number;
}

/**
 * Linear-probe DR on one block. `x` is the raw n×d representation (rows = samples), `labels` one
 * class id per row in [0, classes).
 *
 * - Classes with fewer than 2 samples are left out (warned); the remaining classes are
 *   renumbered in increasing label order, `classes` is their count and perClass follows that order.
 * - Split: per class (stratified), seeded shuffle, max(1, round(heldOut·m)) held out (≤ m−1).
 * - Features centred with the training means, plus a ones column (bias). Closed-form ridge on
 *   one-hot targets: (X̃ᵀX̃ + λ·diag(1,…,1,0)) W = X̃ᵀY (the bias is not penalised),
 *   λ = 1e−3 · tr(X̃ᵀX̃)/(k+1), solved by Cholesky in float64. X̃ᵀX̃ and X̃ᵀY are formed once for
 *   all d neurons (matmul.atb); each subset uses their sub-blocks.
 * - Prediction: argmax of the k+1 linear scores (ties → lowest class).
 */
export async function probeCurve(
  x: Float64Array, n: number, d: number, labels: Int32Array, classes: number, opts: ProbeOptions,
): Promise<{ info: ProbeDrInfo | null; warnings: string[] }> {
  const warnings: string[] = [];
  const counts = new Array<number>(classes).fill(0);
  for (let i = 0; i < n; i++) counts[labels[i]]++;
  const kept: number[] = [];
  const dropped: number[] = [];
  for (let c = 0; c < classes; c++) {
    if (counts[c] >= 2) kept.push(c);
    else if (counts[c] === 1) dropped.push(c);
  }
  if (dropped.length > 0) {
    warnings.push(`probe: classes with a single sample left out: ${dropped.join(', ')}`);
  }
  if (kept.length < 2) {
    warnings.push(`probe skipped: fewer than 2 classes with at least 2 samples (${kept.length})`);
    return { info: null, warnings };
  }
  const C = kept.length;
  const remap = new Int32Array(classes).fill(-1);
  kept.forEach((c, i) => (remap[c] = i));
  if (kept.length !== classes) {
    warnings.push(`probe: ${classes - kept.length} of ${classes} classes have no usable samples; perClass covers labels [${kept.join(', ')}] in that order`);
  }

  // Stratified seeded split.
  const rng = new Rng(opts.seed, 'probe-split');
  const byClass: number[][] = kept.map(() => []);
  for (let i = 0; i < n; i++) {
    const c = remap[labels[i]];
    if (c >= 0) byClass[c].push(i);
  }
  const train: number[] = [];
  const test: number[] = [];
  for (const rows of byClass) {
    const p = randperm(rows.length, rng);
    const m = rows.length;
    const nTest = Math.min(m - 1, Math.max(1, Math.round(opts.heldOut * m)));
    for (let a = 0; a < m; a++) (a < nTest ? test : train).push(rows[p[a]]);
  }
  train.sort((a, b) => a - b);
  test.sort((a, b) => a - b);
  const ntr = train.length;
  const nte = test.length;

  // Train means, centred augmented train matrix, one-hot targets.
  const mu = new Float64Array(d);
  for (const r of train) for (let k = 0; k < d; k++) mu[k] += x[r * d + k];
  for (let k = 0; k < d; k++) mu[k] /= ntr;
  const D = d + 1;
  const xa = new Float64Array(ntr * D);
  const y = new Float64Array(ntr * C);
  train.forEach((r, i) => {
    for (let k = 0; k < d; k++) xa[i * D + k] = x[r * d + k] - mu[k];
    xa[i * D + d] = 1;
    y[i * C + remap[labels[r]]] = 1;
  });
  const xt = new Float64Array(nte * d);
  const yt = new Int32Array(nte);
  const testCount = new Array<number>(C).fill(0);
  test.forEach((r, i) => {
    for (let k = 0; k < d; k++) xt[i * d + k] = x[r * d + k] - mu[k];
    yt[i] = remap[labels[r]];
    testCount[yt[i]]++;
  });
  const g = await opts.matmul.atb(xa, ntr, D, xa, D);
  const xty = await opts.matmul.atb(xa, ntr, D, y, C);
  const ridge = opts.ridge ?? 1e-3;

  const evaluate = (sub: ArrayLike<number>): { acc: number; perClass: number[] } => {
    const k = sub.length;
    const s = k + 1;
    const idx = new Int32Array(s);
    for (let a = 0; a < k; a++) idx[a] = sub[a];
    idx[k] = d;
    const a = new Float64Array(s * s);
    let tr = 0;
    for (let i = 0; i < s; i++) {
      for (let j = 0; j < s; j++) a[i * s + j] = g[idx[i] * D + idx[j]];
      tr += a[i * s + i];
    }
    const lambda = (ridge * tr) / s;
    for (let i = 0; i < k; i++) a[i * s + i] += lambda;
    const w = new Float64Array(s * C);
    for (let i = 0; i < s; i++) for (let c = 0; c < C; c++) w[i * C + c] = xty[idx[i] * C + c];
    let jitter = lambda;
    const a0 = Float64Array.from(a);
    let solved = solveSpd(a, s, w, C);
    while (!solved) {
      // Only reachable through rounding on a nearly singular system: add more ridge.
      jitter = jitter * 10 || 1e-12;
      a.set(a0);
      for (let i = 0; i < s; i++) a[i * s + i] += jitter;
      if (jitter > 1e300) throw new Error('probe: ridge system is not positive definite');
      solved = solveSpd(a, s, w, C);
    }
    w.set(solved);
    const correct = new Array<number>(C).fill(0);
    let total = 0;
    const scores = new Float64Array(C);
    for (let i = 0; i < nte; i++) {
      for (let c = 0; c < C; c++) scores[c] = w[k * C + c];
      const row = i * d;
      for (let a2 = 0; a2 < k; a2++) {
        const v = xt[row + idx[a2]];
        if (v === 0) continue;
        const wr = a2 * C;
        for (let c = 0; c < C; c++) scores[c] += v * w[wr + c];
      }
      let best = 0;
      for (let c = 1; c < C; c++) if (scores[c] > scores[best]) best = c;
      if (best === yt[i]) {
        correct[yt[i]]++;
        total++;
      }
    }
    return { acc: total / nte, perClass: correct.map((v, c) => v / testCount[c]) };
  };

  const all = new Int32Array(d);
  for (let k = 0; k < d; k++) all[k] = k;
  const full = evaluate(all);
  const info: ProbeDrInfo = {
    fractions: [...opts.fractions], mean: [], std: [], fullAccuracy: full.acc, value: null, delta: opts.delta,
    perClass: [], gini: [], cv: [], classes: C, trainSamples: ntr, testSamples: nte,
  };
  for (const f of opts.fractions) {
    const k = subsetSize(f, d);
    let accs: number[];
    let perClass: number[];
    if (k === d) {
      accs = opts.perms.map(() => full.acc);
      perClass = [...full.perClass];
    } else {
      accs = [];
      perClass = new Array<number>(C).fill(0);
      for (const p of opts.perms) {
        const r = evaluate(p.subarray(0, k));
        accs.push(r.acc);
        for (let c = 0; c < C; c++) perClass[c] += r.perClass[c];
      }
      for (let c = 0; c < C; c++) perClass[c] /= opts.perms.length;
    }
    const ms = k === d ? { mean: full.acc, std: 0 } : meanStd(accs);
    info.mean.push(ms.mean);
    info.std.push(ms.std);
    info.perClass.push(perClass);
    info.gini.push(gini(perClass));
    info.cv.push(coefficientOfVariation(perClass));
  }
  if (!(full.acc > 0)) warnings.push('probe: full-layer held-out accuracy is 0; probe DR value is null');
  info.value = drValue(opts.fractions, info.mean, full.acc, opts.delta);
  return { info, warnings };
}
