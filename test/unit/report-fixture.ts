// Test-only: builds a plausible AnalysisReport of any size for report tests and screenshots.
// The numbers imitate a ViT-like encoder: similarity decays with block distance, middle-late
// blocks change little (redundant), the last block changes a lot. Deterministic per seed.

import { SCHEMA_VERSION, type AnalysisReport, type Matrix, type ProbeDrInfo } from '../../src/engine/report/schema';

export interface ExampleReportOptions {
  /** Seed for the pseudo-random jitter (default 7). */
  seed?: number;
  /** Include a DR curve (default true). */
  dr?: boolean;
  /** Include a linear-probe DR (default true; needs dr). */
  probe?: boolean;
  /** Number of classes for probe and model accuracy (default 10). */
  classes?: number;
  /** Calibration source (default 'synthetic'). */
  source?: string;
  /** Block name per index (default `/encoder/layer.${i}`). */
  blockName?: (i: number) => string;
  /** Pairs (i, j) to make null in every matrix (both (i,j) and (j,i)). */
  nullPairs?: [number, number][];
  /** Warnings to include (default: one for synthetic data, none otherwise). */
  warnings?: string[];
  /** Include relativeMse and blockInfluence (default true). */
  extras?: boolean;
  /** Include modelAccuracy (default true). */
  modelAccuracy?: boolean;
  /** Include timings (default true). */
  timings?: boolean;
}

/** Small deterministic generator (xorshift32) — enough for plausible jitter. */
function rng(seed: number): () => number {
  let s = (seed >>> 0) || 0x9e3779b9;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 0x100000000;
  };
}

const r4 = (x: number) => Math.round(x * 1e4) / 1e4;
const r6 = (x: number) => Number(x.toPrecision(6));

function symmetric(L: number, f: (i: number, j: number) => number, diag: number): Matrix {
  const m: Matrix = Array.from({ length: L }, () => new Array<number | null>(L).fill(0));
  for (let i = 0; i < L; i++) {
    m[i]![i] = diag;
    for (let j = i + 1; j < L; j++) {
      const v = f(i, j);
      m[i]![j] = v;
      m[j]![i] = v;
    }
  }
  return m;
}

export function exampleReport(L: number, opts: ExampleReportOptions = {}): AnalysisReport {
  if (!Number.isInteger(L) || L < 1) throw new Error(`exampleReport: L must be a positive integer, got ${L}`);
  const rand = rng(opts.seed ?? 7);
  const source = opts.source ?? 'synthetic';
  const classes = opts.classes ?? 10;
  const name = opts.blockName ?? ((i: number) => `/encoder/layer.${i}`);

  // Mean squared change per block: large early, a redundant valley in the middle-late
  // blocks, a large jump in the last one. Residual norm grows with depth.
  const change = Array.from({ length: L }, (_, b) => {
    const t = L === 1 ? 0 : b / (L - 1);
    const valley = 0.25 + 0.75 * Math.abs(t - 0.62) * 1.6;
    const last = b === L - 1 && L > 2 ? 3 : 1;
    return 0.04 * (1 + 2 * t) * valley * last * (0.85 + 0.3 * rand());
  });
  const norm = Array.from({ length: L }, (_, b) => 0.5 * (1 + b * 0.35));
  const br = change.map((c) => r6(-c));
  const relativeMse = change.map((c, b) => r6(c / norm[b]!));
  const blockInfluence = change.map((c, b) => r4(Math.min(0.9, Math.sqrt(c / norm[b]!) * 0.6)));

  // Cumulative change: distance between blocks i < j is the sum of the steps in between.
  const cum = [0];
  for (let b = 1; b < L; b++) cum.push(cum[b - 1]! + change[b]!);
  const total = cum[L - 1]! || 1;
  const scale = L / 3;
  const dist = (i: number, j: number) => (cum[j]! - cum[i]!) / total;

  const cka = symmetric(L, (i, j) => r4(Math.exp((-dist(i, j) * L) / scale / 1.8) * (0.96 + 0.04 * rand())), 1);
  const ckaUnbiased = symmetric(L, (i, j) => r4(Math.exp((-dist(i, j) * L) / scale / 1.2) * (0.93 + 0.05 * rand()) - 0.02), 1);
  const cosine = symmetric(L, (i, j) => r4(0.35 + 0.65 * Math.exp((-dist(i, j) * L) / scale / 2.5)), 1);
  const brMatrix = symmetric(L, (i, j) => r6(-(cum[j]! - cum[i]!) * (1 + 0.1 * (j - i))), 0);

  for (const [i, j] of opts.nullPairs ?? []) {
    for (const m of [cka, ckaUnbiased, cosine, brMatrix]) {
      m[i]![j] = null;
      m[j]![i] = null;
    }
  }

  const tau = 0.8;
  const beta = 100;
  let msrs = 0;
  for (let i = 0; i < L; i++) {
    for (let j = i + 1; j < L; j++) {
      const v = ckaUnbiased[i]![j];
      if (typeof v === 'number') msrs += 1 / (1 + Math.exp(-2 * beta * (v - tau)));
    }
  }
  const pairs = (L * (L - 1)) / 2;

  const fractions = [0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0];
  const delta = 0.9;
  const curve = (f: number, k: number) => 1 - Math.exp(-f * k);
  const drMean = fractions.map((f) => r4(f === 1 ? 1 : curve(f, 22) / curve(1, 22)));
  const drStd = fractions.map((f) => r4(f === 1 ? 0 : 0.06 * Math.exp(-f * 8) + 0.004));
  const firstAbove = (mean: number[], full: number, d: number) => {
    const k = mean.findIndex((m) => m / full >= d);
    return k < 0 ? null : r4(1 - fractions[k]!);
  };

  let probe: ProbeDrInfo | undefined;
  if ((opts.dr ?? true) && (opts.probe ?? true)) {
    const full = 0.874;
    const mean = fractions.map((f) => r4(0.1 + (full - 0.1) * (f === 1 ? 1 : curve(f, 9) / curve(1, 9))));
    const perClass = mean.map((m) =>
      Array.from({ length: classes }, (_, c) => r4(Math.min(1, Math.max(0, m * (0.75 + 0.5 * ((c * 37) % 11) / 10) + 0.04 * (rand() - 0.5))))),
    );
    const gini = perClass.map((row) => {
      const s = [...row].sort((a, b) => a - b);
      const n = s.length;
      const sum = s.reduce((a, b) => a + b, 0) || 1;
      let g = 0;
      s.forEach((x, i) => (g += (2 * (i + 1) - n - 1) * x));
      return r4(g / (n * sum));
    });
    const cv = perClass.map((row) => {
      const mu = row.reduce((a, b) => a + b, 0) / row.length;
      const sd = Math.sqrt(row.reduce((a, b) => a + (b - mu) ** 2, 0) / row.length);
      return r4(mu === 0 ? 0 : sd / mu);
    });
    probe = {
      fractions,
      mean,
      std: fractions.map((f) => r4(f === 1 ? 0.002 : 0.05 * Math.exp(-f * 6) + 0.003)),
      fullAccuracy: full,
      value: firstAbove(mean, full, delta),
      delta,
      perClass,
      gini,
      cv,
      classes,
      trainSamples: 800,
      testSamples: 200,
    };
  }

  const paramsPerBlock = 7_087_872;
  const report: AnalysisReport = {
    schemaVersion: SCHEMA_VERSION,
    tool: { name: 'blocklens', version: '0.1.0' },
    createdAt: '2025-11-23T10:15:00.000Z',
    model: {
      path: '/home/ada/models/vit_tiny.onnx',
      sha256: '3f5a9c2e7d1b4a8f0e6c2d9b7a5f3e1c8d6b4a2f0e9c7d5b3a1f8e6d4c2b0a97',
      irVersion: 8,
      opsetVersion: 17,
      parameters: paramsPerBlock * L + 1_234_560,
      producer: 'pytorch 2.3.1',
      sizeBytes: (paramsPerBlock * L + 1_234_560) * 4 + 81_920,
    },
    blocks: Array.from({ length: L }, (_, i) => ({
      index: i,
      name: name(i),
      output: `${name(i)}/Add_1_output_0`,
      parameters: paramsPerBlock,
    })),
    detection: {
      method: 'scoped-names',
      blockInput: '/embeddings/Add_output_0',
      explanation: `Found ${L} block${L === 1 ? '' : 's'} from repeated node scopes /encoder/layer.N/…; each block's output is the tensor handed to the next block.`,
    },
    calibration: {
      source,
      ...(source === 'synthetic' ? {} : { path: '/home/ada/data/imagenet-val-1k' }),
      samples: 1000,
      seed: 0,
      batchSize: 32,
      checksum: 'b1946ac92492d2347c6235b4d2611184b1946ac92492d2347c6235b4d261118',
      preprocessing: source === 'synthetic' ? { fill: 'normal(0, 1)' } : { resize: 256, crop: 224, scale: 1 / 255, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] },
      inputs: [{ name: 'pixel_values', dtype: 'float32', shape: [32, 3, 224, 224], ...(source === 'synthetic' ? { fill: 'normal(0, 1)' } : {}) }],
      ...(probe ? { labels: { source: 'folder names', classes } } : {}),
      heldOut: 0.2,
    },
    pooling: {
      requested: 'auto',
      used: 'cls',
      reason: 'the graph gathers token 0 after the last block (classification head on the CLS token)',
    },
    warnings:
      opts.warnings ??
      (source === 'synthetic'
        ? ['Calibration data is synthetic (normal noise): similarities describe the network’s structure, not its behaviour on real inputs.']
        : []),
    metrics: {
      br,
      ...(opts.extras ?? true ? { relativeMse, blockInfluence } : {}),
      brMatrix,
      cosine,
      cka,
      ckaUnbiased,
      msrs: {
        value: L > 1 ? r4(msrs) : 0,
        normalized: L > 1 ? r4(msrs / pairs) : null,
        beta,
        tau,
        layers: L,
      },
      dr:
        opts.dr ?? true
          ? {
              block: Math.max(0, L - 2),
              fractions,
              mean: drMean,
              std: drStd,
              delta,
              value: firstAbove(drMean, 1, delta),
              seeds: 5,
              ...(probe ? { probe } : {}),
            }
          : null,
    },
  };
  if (opts.modelAccuracy ?? true) {
    report.modelAccuracy = {
      accuracy: 0.8812,
      samples: 200,
      perClass: Array.from({ length: classes }, (_, c) => r4(0.7 + 0.28 * (((c * 53) % 13) / 12))),
    };
  }
  if (opts.timings ?? true) {
    report.timings = { load: 412.5, detect: 38.2, instrument: 121.9, inference: 18_342.7, statistics: 2_915.4, dr: 6_120.3 };
  }
  return report;
}
