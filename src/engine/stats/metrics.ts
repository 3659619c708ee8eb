// computeMetrics: every similarity/redundancy number of the report's `metrics` section from a
// RepresentationStore. Definitions: DESIGN.md §1–2. Float64 throughout; large products via the
// MatmulBackend passed in.

import type { DrInfo, Matrix, Metrics } from '../report/schema.js';
import { biasedCkaMatrix, centerColumns, chooseCkaMethod, unbiasedCkaMatrix, type Centered, type CkaMethod } from './cka.js';
import { DEFAULT_DR_FRACTIONS, drCkaCurve, drPermutations, probeCurve } from './dr.js';
import type { MatmulBackend } from '../linalg/index.js';
import type { RepresentationStore } from './store.js';

export interface MetricsOptions {
  matmul: MatmulBackend;
  seed: number;
  /** MSRS sharpness β. Default 100. */
  beta?: number;
  /** MSRS threshold τ. Default 0.8. */
  tau?: number;
  /** Unbiased-CKA batch size (batches of min(this, N) rows). Default 256. */
  unbiasedBatch?: number;
  /** Block for DR. Default: last block. */
  drBlock?: number;
  /** DR fractions (sorted and de-duplicated; each in (0, 1]). Default DEFAULT_DR_FRACTIONS. */
  drFractions?: number[];
  /** Subsets per fraction. Default 5. */
  drSeeds?: number;
  /** DR threshold δ. Default 0.9. */
  delta?: number;
  /** Labels per sample id (= per row unless the store has sample ids). Default: the store's labels. */
  labels?: Int32Array;
  /** Number of classes. Default: store's, else max label + 1. */
  classes?: number;
  /** Held-out fraction for the probe. Default 0.2. */
  heldOut?: number;
  /** Biased-CKA path: 'auto' picks by flop estimate. Default 'auto'. */
  ckaMethod?: 'auto' | CkaMethod;
  /** DR-CKA path: 'auto' picks by flop estimate. Default 'auto'. */
  drMethod?: 'auto' | CkaMethod;
  /** Largest total size of the L n×n Gram matrices for the Gram path. Default 1 GiB. */
  gramMemoryBytes?: number;
}

export interface MetricsResult {
  metrics: Metrics;
  warnings: string[];
}

/** Numerically stable logistic σ(z). */
export function sigmoid(z: number): number {
  if (z >= 0) return 1 / (1 + Math.exp(-z));
  const e = Math.exp(z);
  return e / (1 + e);
}

/** MSRS = Σ_{i<j} σ(2β(CKA_ij − τ)) over non-null pairs. */
export function msrs(cka: Matrix, beta: number, tau: number): { value: number | null; normalized: number | null; skipped: number } {
  const L = cka.length;
  const pairs = (L * (L - 1)) / 2;
  let value = 0;
  let used = 0;
  let skipped = 0;
  for (let i = 0; i < L; i++) {
    for (let j = i + 1; j < L; j++) {
      const c = cka[i][j];
      if (c === null) {
        skipped++;
        continue;
      }
      value += sigmoid(2 * beta * (c - tau));
      used++;
    }
  }
  if (pairs === 0) return { value: 0, normalized: null, skipped };
  if (used === 0) return { value: null, normalized: null, skipped };
  return { value, normalized: value / pairs, skipped };
}

interface PairStats {
  /** Σ_x ‖a − b‖². */
  sse: number;
  /** Mean cosine over rows where both norms are > 0, null if there are none. */
  cos: number | null;
}

function rowNorms2(x: Float64Array, n: number, d: number): Float64Array {
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let k = 0; k < d; k++) s += x[i * d + k] * x[i * d + k];
    out[i] = s;
  }
  return out;
}

function pairStats(a: Float64Array, na2: Float64Array, b: Float64Array, nb2: Float64Array, n: number, d: number): PairStats {
  let sse = 0;
  let cosSum = 0;
  let count = 0;
  for (let i = 0; i < n; i++) {
    const o = i * d;
    let s = 0;
    let dt = 0;
    for (let k = 0; k < d; k++) {
      const u = a[o + k];
      const v = b[o + k];
      const diff = u - v;
      s += diff * diff;
      dt += u * v;
    }
    sse += s;
    if (na2[i] > 0 && nb2[i] > 0) {
      // sqrt(x·x) of the rounded square is x again, so identical rows give exactly 1.
      cosSum += dt / Math.sqrt(na2[i] * nb2[i]);
      count++;
    }
  }
  return { sse, cos: count > 0 ? cosSum / count : null };
}

/** −sse/count, with +0 (not −0) for an unchanged block. */
function negMean(sse: number, count: number): number {
  return sse === 0 ? 0 : -sse / count;
}

function nullMatrix(L: number): (number | null)[][] {
  return Array.from({ length: L }, () => new Array<number | null>(L).fill(null));
}

function allFinite(x: Float64Array): boolean {
  for (let i = 0; i < x.length; i++) if (!Number.isFinite(x[i])) return false;
  return true;
}

function normaliseFractions(fr: readonly number[]): number[] {
  for (const f of fr) if (!(f > 0 && f <= 1)) throw new Error(`DR fraction ${f} is not in (0, 1]`);
  return [...new Set(fr)].sort((a, b) => a - b);
}

/** Replace any non-finite number by null (never expected; guarantees JSON has no NaN). */
function sanitize(value: unknown, path: string, warnings: string[]): unknown {
  if (typeof value === 'number') {
    if (Number.isFinite(value)) return value;
    warnings.push(`internal: non-finite value at metrics${path} replaced by null`);
    return null;
  }
  if (Array.isArray(value)) return value.map((v, i) => sanitize(v, `${path}[${i}]`, warnings));
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = sanitize(v, `${path}.${k}`, warnings);
    return out;
  }
  return value;
}

export async function computeMetrics(store: RepresentationStore, opts: MetricsOptions): Promise<MetricsResult> {
  const warnings: string[] = [];
  const matmul = opts.matmul;
  const beta = opts.beta ?? 100;
  const tau = opts.tau ?? 0.8;
  const unbiasedBatch = opts.unbiasedBatch ?? 256;
  const drSeeds = opts.drSeeds ?? 5;
  const delta = opts.delta ?? 0.9;
  const heldOut = opts.heldOut ?? 0.2;
  const fractions = normaliseFractions(opts.drFractions ?? DEFAULT_DR_FRACTIONS);
  if (!Number.isInteger(drSeeds) || drSeeds < 1) throw new Error(`drSeeds must be a positive integer, got ${drSeeds}`);
  if (!(delta > 0 && delta <= 1)) throw new Error(`delta must be in (0, 1], got ${delta}`);
  if (!(heldOut > 0 && heldOut < 1)) throw new Error(`heldOut must be in (0, 1), got ${heldOut}`);
  if (!Number.isInteger(unbiasedBatch) || unbiasedBatch < 1) throw new Error(`unbiasedBatch must be a positive integer, got ${unbiasedBatch}`);

  const L = store.blocks;
  const N = store.n;
  if (L < 1) throw new Error('computeMetrics: the store has no blocks');
  if (N < 1) throw new Error('computeMetrics: the store has no rows');
  const dims = store.dims;
  for (let b = 0; b < L; b++) if (dims[b] === null) throw new Error(`computeMetrics: block ${b} has no rows`);
  const d = dims as number[];
  const drBlock = opts.drBlock ?? L - 1;
  if (!Number.isInteger(drBlock) || drBlock < 0 || drBlock >= L) throw new Error(`drBlock ${drBlock} out of range 0..${L - 1}`);

  const X: Float64Array[] = [];
  const valid: boolean[] = [];
  for (let b = 0; b < L; b++) {
    const x = store.matrix(b);
    X.push(x);
    const ok = allFinite(x);
    valid.push(ok);
    if (!ok) warnings.push(`block ${b}: representation contains NaN or Infinity; all its entries are null`);
  }
  let input: Float64Array | null = null;
  if (store.hasInput) {
    input = store.matrix('input');
    if (!allFinite(input)) {
      warnings.push('block input: contains NaN or Infinity; br[0], relativeMse[0] and blockInfluence[0] are null');
      input = null;
    }
  }

  // Centring and degeneracy (constant over samples → CKA-type entries are null).
  const centred: Centered[] = [];
  for (let b = 0; b < L; b++) {
    const c = valid[b] ? centerColumns(X[b], N, d[b]) : { data: new Float64Array(0), n: N, d: d[b], mean: new Float64Array(d[b]), degenerate: true };
    centred.push(c);
    if (valid[b] && c.degenerate) {
      warnings.push(
        N < 2
          ? `block ${b}: only ${N} row; CKA, unbiased CKA and DR entries involving it are null`
          : `block ${b}: representation is constant over samples (zero variance); CKA, unbiased CKA and DR entries involving it are null`,
      );
    }
  }

  // Pairwise BR and cosine.
  const norms2 = X.map((x, b) => (valid[b] ? rowNorms2(x, N, d[b]) : new Float64Array(N)));
  const totalNorm2 = norms2.map((r) => r.reduce((s, v) => s + v, 0));
  for (let b = 0; b < L; b++) {
    if (!valid[b]) continue;
    let zero = 0;
    for (let i = 0; i < N; i++) if (norms2[b][i] === 0) zero++;
    if (zero > 0) warnings.push(`block ${b}: ${zero} of ${N} rows are all-zero; cosine and block influence skip those rows${zero === N ? ' (none left: null)' : ''}`);
  }
  const brMatrix = nullMatrix(L);
  const cosine = nullMatrix(L);
  const sseMatrix = nullMatrix(L);
  for (let i = 0; i < L; i++) {
    if (!valid[i]) continue;
    brMatrix[i][i] = 0;
    cosine[i][i] = totalNorm2[i] > 0 ? 1 : null;
    for (let j = i + 1; j < L; j++) {
      if (!valid[j] || d[i] !== d[j]) continue;
      const s = pairStats(X[i], norms2[i], X[j], norms2[j], N, d[i]);
      sseMatrix[i][j] = sseMatrix[j][i] = s.sse;
      brMatrix[i][j] = brMatrix[j][i] = negMean(s.sse, N * d[i]);
      cosine[i][j] = cosine[j][i] = s.cos;
    }
  }

  // Per-block BR, relative MSE, block influence (b against b − 1; b = 0 against the block input).
  const br: (number | null)[] = [];
  const relativeMse: (number | null)[] = [];
  const blockInfluence: (number | null)[] = [];
  for (let b = 0; b < L; b++) {
    let sse: number | null = null;
    let prev2 = 0;
    let cos: number | null = null;
    if (b === 0) {
      if (!store.hasInput) warnings.push('block 0: no block input stored; br[0], relativeMse[0] and blockInfluence[0] are null');
      else if (input && store.inputDim !== d[0]) warnings.push(`block 0: input width ${store.inputDim} differs from block width ${d[0]}; br[0], relativeMse[0] and blockInfluence[0] are null`);
      else if (input && valid[0]) {
        const in2 = rowNorms2(input, N, d[0]);
        const s = pairStats(input, in2, X[0], norms2[0], N, d[0]);
        sse = s.sse;
        cos = s.cos;
        prev2 = in2.reduce((a, v) => a + v, 0);
      }
    } else if (d[b] !== d[b - 1]) {
      warnings.push(`block ${b}: width ${d[b]} differs from block ${b - 1} (${d[b - 1]}); br, relativeMse and blockInfluence are null`);
    } else if (valid[b] && valid[b - 1]) {
      sse = sseMatrix[b - 1][b];
      cos = cosine[b - 1][b];
      prev2 = totalNorm2[b - 1];
    }
    if (sse === null) {
      br.push(null);
      relativeMse.push(null);
      blockInfluence.push(null);
      continue;
    }
    br.push(negMean(sse, N * d[b]));
    if (prev2 > 0) relativeMse.push(sse / prev2);
    else {
      relativeMse.push(null);
      warnings.push(`block ${b}: the previous representation is all zeros; relativeMse is null`);
    }
    blockInfluence.push(cos === null ? null : 1 - cos);
  }

  // Raw copies are no longer needed except for the probe's block: release them (memory ~ L·N·d·8).
  const probeX = X[drBlock];
  X.length = 0;
  input = null;

  // Biased linear CKA.
  const method: CkaMethod = opts.ckaMethod && opts.ckaMethod !== 'auto' ? opts.ckaMethod : chooseCkaMethod(N, d, opts.gramMemoryBytes);
  const cka = await biasedCkaMatrix(centred, matmul, method);

  // Unbiased minibatch CKA.
  let ckaUnbiased: Matrix;
  if (Math.min(unbiasedBatch, N) < 4) {
    ckaUnbiased = nullMatrix(L);
    warnings.push(`unbiased CKA needs batches of at least 4 rows (N = ${N}, batch = ${unbiasedBatch}); ckaUnbiased is null`);
  } else {
    const u = await unbiasedCkaMatrix(centred, matmul, unbiasedBatch, opts.seed);
    ckaUnbiased = u.matrix;
    if (u.dropped > 0) warnings.push(`unbiased CKA: ${u.batches} batches of ${u.batchSize} rows; the last ${u.dropped} of ${N} rows (seeded order) were dropped`);
    for (const b of u.nonPositive) warnings.push(`block ${b}: unbiased HSIC(X,X) is not positive (no variation inside the batches used); its ckaUnbiased entries are null`);
  }

  // MSRS.
  const m = msrs(ckaUnbiased, beta, tau);
  if (m.skipped > 0) warnings.push(`MSRS: ${m.skipped} of ${(L * (L - 1)) / 2} block pairs have no unbiased CKA and were skipped`);

  // Diffused redundancy.
  const perms = drPermutations(d[drBlock], drSeeds, opts.seed);
  let dr: DrInfo | null = null;
  if (valid[drBlock]) {
    const r = await drCkaCurve(centred[drBlock], perms, { fractions, seeds: drSeeds, seed: opts.seed, delta, matmul, method: opts.drMethod });
    dr = { ...r.info, block: drBlock };
    if (r.emptySubsets > 0) warnings.push(`DR: ${r.emptySubsets} neuron subsets of block ${drBlock} contained only constant neurons and scored 0`);
  } else {
    dr = { block: drBlock, fractions, mean: fractions.map(() => null), std: fractions.map(() => null), delta, value: null, seeds: drSeeds };
  }

  // Linear probe DR.
  const labels = opts.labels ?? store.labels;
  if (labels && valid[drBlock]) {
    const probe = await runProbe(store, labels, opts.classes ?? store.classes ?? undefined, probeX, N, d[drBlock], {
      fractions, perms, delta, heldOut, seed: opts.seed, matmul,
    }, warnings);
    if (probe) dr.probe = probe;
  } else if (labels) {
    warnings.push(`probe skipped: block ${drBlock} is not usable`);
  }

  const metrics: Metrics = {
    br, relativeMse, blockInfluence, brMatrix, cosine, cka, ckaUnbiased,
    msrs: { value: m.value, normalized: m.normalized, beta, tau, layers: L },
    dr,
  };
  return { metrics: sanitize(metrics, '', warnings) as Metrics, warnings };
}

async function runProbe(
  store: RepresentationStore, labels: Int32Array, classesOpt: number | undefined, x: Float64Array, N: number, d: number,
  p: Parameters<typeof probeCurve>[5], warnings: string[],
) {
  const ids = store.sampleIds();
  const seen = new Set<number>();
  for (const id of ids) {
    if (seen.has(id)) {
      warnings.push('probe skipped: rows are tokens (several rows per sample; labels are per sample)');
      return null;
    }
    seen.add(id);
  }
  const rowLabels = new Int32Array(N);
  let max = -1;
  for (let i = 0; i < N; i++) {
    if (ids[i] >= labels.length) {
      warnings.push(`probe skipped: ${labels.length} labels for rows that reference sample ${ids[i]}`);
      return null;
    }
    const v = labels[ids[i]];
    if (v < 0) {
      warnings.push(`probe skipped: negative label ${v}`);
      return null;
    }
    rowLabels[i] = v;
    if (v > max) max = v;
  }
  const classes = classesOpt ?? max + 1;
  if (max >= classes) {
    warnings.push(`probe skipped: label ${max} out of range for ${classes} classes`);
    return null;
  }
  if (classes < 2) {
    warnings.push(`probe skipped: fewer than 2 classes (${classes})`);
    return null;
  }
  const r = await probeCurve(x, N, d, rowLabels, classes, p);
  warnings.push(...r.warnings);
  return r.info;
}
