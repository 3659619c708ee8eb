// Every similarity/redundancy number of the report's `metrics` section, from mergeable
// accumulators (pairwise sums, the block Gram, minibatch HSIC sums, probe sums and held-out
// rows). `assembleMetrics` is what the analysis pass finalizes with; `computeMetrics` feeds a
// RepresentationStore's rows through the same accumulators. Definitions: DESIGN.md §1–2.
// Float64 throughout; large products via the MatmulBackend passed in.

import type { DrInfo, Matrix, Metrics } from '../report/schema.js';
import type { CkaMethod } from './cka.js';
import { DEFAULT_DR_FRACTIONS, drCkaCurveFromCovariance, drPermutations } from './dr.js';
import type { MatmulBackend } from '../linalg/index.js';
import type { RepresentationStore } from './store.js';
import { PairwiseAccumulator, nullMatrix, type PairwiseResult } from './pairwise.js';
import { CovarianceAccumulator } from './covariance.js';
import { HsicAccumulator } from './hsic.js';
import { ProbeAccumulator } from './probe.js';

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
  /** Accepted for compatibility: the block Gram (feature space) serves every path now. */
  ckaMethod?: 'auto' | CkaMethod;
  /** Accepted for compatibility: DR is computed from the block's covariance. */
  drMethod?: 'auto' | CkaMethod;
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

export interface MetricParts {
  pairwise: PairwiseResult;
  covariance: CovarianceAccumulator;
  hsic: HsicAccumulator;
  /** Absent without labels; `probeSkip` then says why when labels were given but cannot be used. */
  probe?: ProbeAccumulator;
  probeSkip?: string;
}

export interface AssembleOptions {
  matmul: MatmulBackend;
  seed: number;
  beta?: number;
  tau?: number;
  drBlock?: number;
  drFractions?: number[];
  drSeeds?: number;
  delta?: number;
  signal?: AbortSignal;
}

/** The report's metrics from finalized accumulators. Honours `signal` between steps. */
export async function assembleMetrics(parts: MetricParts, opts: AssembleOptions): Promise<MetricsResult> {
  const warnings: string[] = [];
  const warn = (m: string) => warnings.push(m);
  const signal = opts.signal;
  const beta = opts.beta ?? 100;
  const tau = opts.tau ?? 0.8;
  const drSeeds = opts.drSeeds ?? 5;
  const delta = opts.delta ?? 0.9;
  const fractions = normaliseFractions(opts.drFractions ?? DEFAULT_DR_FRACTIONS);
  if (!Number.isInteger(drSeeds) || drSeeds < 1) throw new Error(`drSeeds must be a positive integer, got ${drSeeds}`);
  if (!(delta > 0 && delta <= 1)) throw new Error(`delta must be in (0, 1], got ${delta}`);
  const { pairwise, covariance: cov, hsic } = parts;
  const L = cov.blocks;
  const N = pairwise.rows;
  if (L < 1) throw new Error('computeMetrics: no blocks');
  if (N < 1) throw new Error('computeMetrics: no rows');
  const d = pairwise.widths;
  for (let b = 0; b < L; b++) if (d[b] === null) throw new Error(`computeMetrics: block ${b} has no rows`);
  const drBlock = opts.drBlock ?? L - 1;
  if (!Number.isInteger(drBlock) || drBlock < 0 || drBlock >= L) throw new Error(`drBlock ${drBlock} out of range 0..${L - 1}`);

  const state = cov.blockState();
  const valid = pairwise.nonFinite.map((bad, b) => !bad && !state.nonFinite[b]);
  for (let b = 0; b < L; b++) {
    if (valid[b] && state.degenerate[b]) {
      warn(
        N < 2
          ? `block ${b}: only ${N} row; CKA, unbiased CKA and DR entries involving it are null`
          : `block ${b}: representation is constant over samples (zero variance); CKA, unbiased CKA and DR entries involving it are null`,
      );
    }
  }
  const live = valid.map((v, b) => v && !state.degenerate[b]);

  // Biased linear CKA from the block Gram.
  signal?.throwIfAborted();
  const cka = cov.ckaMatrix(signal);
  for (let b = 0; b < L; b++) {
    if (live[b]) continue;
    for (let j = 0; j < L; j++) cka[b]![j] = cka[j]![b] = null;
  }

  // Unbiased minibatch CKA.
  signal?.throwIfAborted();
  const u = await hsic.finalize(opts.matmul, live, signal);
  let ckaUnbiased: Matrix;
  if (u.tooSmall) {
    ckaUnbiased = nullMatrix(L);
    warn(`unbiased CKA needs batches of at least 4 rows (N = ${hsic.totalSamples}, batch = ${hsic.batch}); ckaUnbiased is null`);
  } else {
    ckaUnbiased = u.matrix;
    if (u.dropped > 0) warn(`unbiased CKA: ${u.runs} batches of ${u.runSamples} samples (fixed runs of sample ids); the last ${u.dropped} of ${hsic.totalSamples} samples were dropped`);
    for (const b of u.nonPositive) warn(`block ${b}: unbiased HSIC(X,X) is not positive (no variation inside the batches used); its ckaUnbiased entries are null`);
  }

  const m = msrs(ckaUnbiased, beta, tau);
  if (m.skipped > 0) warn(`MSRS: ${m.skipped} of ${(L * (L - 1)) / 2} block pairs have no unbiased CKA and were skipped`);

  // Diffused redundancy, from the block's centred covariance.
  signal?.throwIfAborted();
  const dBlock = d[drBlock]!;
  const perms = drPermutations(dBlock, drSeeds, opts.seed);
  let dr: DrInfo;
  if (live[drBlock]) {
    const r = await drCkaCurveFromCovariance(cov.centred(drBlock, drBlock), dBlock, perms, { fractions, seeds: drSeeds, delta, signal });
    dr = { ...r.info, block: drBlock };
    if (r.emptySubsets > 0) warn(`DR: ${r.emptySubsets} neuron subsets of block ${drBlock} contained only constant neurons and scored 0`);
  } else {
    dr = { block: drBlock, fractions, mean: fractions.map(() => null), std: fractions.map(() => null), delta, value: null, seeds: drSeeds };
  }

  // Linear probe DR.
  if (parts.probeSkip) warn(parts.probeSkip);
  else if (parts.probe && valid[drBlock]) {
    signal?.throwIfAborted();
    const probe = parts.probe.finalize({ fractions, perms, delta, signal }, warn);
    if (probe) dr.probe = probe;
  } else if (parts.probe) {
    warn(`probe skipped: block ${drBlock} is not usable`);
  }

  const metrics: Metrics = {
    br: pairwise.br, relativeMse: pairwise.relativeMse, blockInfluence: pairwise.blockInfluence,
    brMatrix: pairwise.brMatrix, cosine: pairwise.cosine, cka, ckaUnbiased,
    msrs: { value: m.value, normalized: m.normalized, beta, tau, layers: L },
    dr,
  };
  return { metrics: sanitize(metrics, '', warnings) as Metrics, warnings };
}

/**
 * Metrics of the rows in a RepresentationStore (row i of every block from the same sample or
 * token), through the same accumulators as the analysis pass, as one batch.
 */
export async function computeMetrics(store: RepresentationStore, opts: MetricsOptions): Promise<MetricsResult> {
  const unbiasedBatch = opts.unbiasedBatch ?? 256;
  const heldOut = opts.heldOut ?? 0.2;
  if (!(heldOut > 0 && heldOut < 1)) throw new Error(`heldOut must be in (0, 1), got ${heldOut}`);
  if (!Number.isInteger(unbiasedBatch) || unbiasedBatch < 1) throw new Error(`unbiasedBatch must be a positive integer, got ${unbiasedBatch}`);
  const L = store.blocks;
  const N = store.n;
  if (L < 1) throw new Error('computeMetrics: the store has no blocks');
  if (N < 1) throw new Error('computeMetrics: the store has no rows');
  const dims = store.dims;
  for (let b = 0; b < L; b++) if (dims[b] === null) throw new Error(`computeMetrics: block ${b} has no rows`);
  const d = dims as number[];
  const X = d.map((_, b) => store.matrix(b));
  const rows = X.map((data, b) => ({ data, width: d[b]! }));
  const pairwise = new PairwiseAccumulator(L);
  pairwise.add(rows, N, store.hasInput ? { data: store.matrix('input'), width: store.inputDim! } : undefined);
  const cov = new CovarianceAccumulator(L);
  await cov.addRows(rows, N, opts.matmul);

  // Sample ids and positions (several rows per sample under tokens).
  const ids = store.sampleIds();
  const positions = new Int32Array(N);
  const seen = new Map<number, number>();
  let perSample = 1;
  for (let i = 0; i < N; i++) {
    const c = seen.get(ids[i]!) ?? 0;
    positions[i] = c;
    seen.set(ids[i]!, c + 1);
    if (c + 1 > perSample) perSample = c + 1;
  }
  let total = 0;
  for (const id of seen.keys()) total = Math.max(total, id + 1);
  const hsic = new HsicAccumulator(L, total, unbiasedBatch);
  hsic.setPositions(perSample);
  await hsic.add(rows, ids, positions, opts.matmul);

  const pairWarnings: string[] = [];
  const parts: MetricParts = { pairwise: pairwise.finalize((m) => pairWarnings.push(m)), covariance: cov, hsic };
  const labels = opts.labels ?? store.labels;
  const drBlock = opts.drBlock ?? L - 1;
  if (labels) {
    if (perSample > 1) parts.probeSkip = 'probe skipped: rows are tokens (several rows per sample; labels are per sample)';
    else {
      const rowLabels = new Int32Array(N);
      let bad: string | undefined;
      for (let i = 0; i < N && !bad; i++) {
        if (ids[i]! >= labels.length) bad = `probe skipped: ${labels.length} labels for rows that reference sample ${ids[i]}`;
        else if (labels[ids[i]!]! < 0) bad = `probe skipped: negative label ${labels[ids[i]!]}`;
        else rowLabels[i] = labels[ids[i]!]!;
      }
      const classes = opts.classes ?? store.classes ?? undefined;
      if (!bad && classes !== undefined && rowLabels.some((v) => v >= classes)) bad = `probe skipped: label out of range for ${classes} classes`;
      if (bad) parts.probeSkip = bad;
      else if (drBlock >= 0 && drBlock < L && !parts.pairwise.nonFinite[drBlock]) {
        const probe = new ProbeAccumulator({ seed: opts.seed, heldOut });
        await probe.add(X[drBlock]!, N, d[drBlock]!, ids, rowLabels, opts.matmul);
        parts.probe = probe;
      } else parts.probe = new ProbeAccumulator({ seed: opts.seed, heldOut });
    }
  }
  const r = await assembleMetrics(parts, {
    matmul: opts.matmul, seed: opts.seed, beta: opts.beta, tau: opts.tau, drBlock: opts.drBlock,
    drFractions: opts.drFractions, drSeeds: opts.drSeeds, delta: opts.delta,
  });
  return { metrics: r.metrics, warnings: [...pairWarnings, ...r.warnings] };
}
