// Linear-probe DR (Nanda et al.) from mergeable state.
//
// Held-out split: sample `id` is held out iff u(id) < heldOut with
// u(id) = hashUniform(deriveSeed(seed, 'held-out'), id) — a function of (seed, id) only, so a
// shard knows its own split. Training rows enter as sums (n, Σx, Σxxᵀ, per class Σx and n_c);
// held-out rows are kept as an id-keyed set of at most `maxTestRows` rows (those with the
// smallest u, so the bound is the same whatever the shards: the merge keeps the smallest u of
// the union). Bytes: 8·(d² + d·(C+1)) for the sums, (4·d + 16) per held-out row.
//
// Fit: features centred with the training mean, plus a ones column (bias). Closed-form ridge on
// one-hot targets over classes 0..C−1 (C = max label + 1): (X̃ᵀX̃ + λ·diag(1,…,1,0)) W = X̃ᵀY,
// λ = 1e−3 · tr(X̃ᵀX̃)/(k+1), Cholesky in float64, for every subset from the same sums.
// Prediction: argmax of the C scores (ties → lowest class). perClass covers the classes that
// have held-out rows, in label order.

import type { MatmulBackend } from '../linalg/matmul.js';
import { decodeF32, decodeF64, encodeArray } from '../pass/snapshot.js';
import { deriveSeed, hashUniform } from '../random.js';
import type { ProbeDrInfo } from '../report/schema.js';
import { coefficientOfVariation, drValue, gini, meanStd, solveSpd, subsetSize } from './dr.js';

export const DEFAULT_HELD_OUT = 0.2;
export const DEFAULT_MAX_TEST_ROWS = 8192;

/** u(id) ∈ [0, 1): the sample's place in the held-out order. */
export function heldOutKey(seed: number, id: number): number {
  return hashUniform(deriveSeed(seed, 'held-out'), id);
}

export function isHeldOut(seed: number, id: number, fraction: number): boolean {
  return heldOutKey(seed, id) < fraction;
}

interface TestRow {
  id: number;
  u: number;
  label: number;
  x: Float32Array;
}

export interface ProbeSettings {
  seed: number;
  heldOut?: number;
  maxTestRows?: number;
}

export class ProbeAccumulator {
  readonly heldOut: number;
  readonly maxTestRows: number;
  d: number | null = null;
  private n = 0;
  private S: Float64Array | null = null;
  private s: Float64Array | null = null;
  private classSum = new Map<number, Float64Array>();
  private classCount = new Map<number, number>();
  private test: TestRow[] = [];
  /** Held-out rows seen (before the bound). */
  private testSeen = 0;
  private readonly key: number;

  constructor(readonly settings: ProbeSettings) {
    this.heldOut = settings.heldOut ?? DEFAULT_HELD_OUT;
    this.maxTestRows = settings.maxTestRows ?? DEFAULT_MAX_TEST_ROWS;
    if (!(this.heldOut > 0 && this.heldOut < 1)) throw new Error(`heldOut must be in (0, 1), got ${this.heldOut}`);
    this.key = deriveSeed(settings.seed, 'held-out');
  }

  private init(d: number): void {
    if (this.d === null) {
      this.d = d;
      this.S = new Float64Array(d * d);
      this.s = new Float64Array(d);
    } else if (this.d !== d) throw new Error(`probe: width ${d} differs from ${this.d}`);
  }

  /** One batch: rows (one per sample) with their ids and labels. */
  async add(data: ArrayLike<number>, rows: number, d: number, ids: ArrayLike<number>, labels: ArrayLike<number>, matmul: MatmulBackend): Promise<void> {
    this.init(d);
    const train: number[] = [];
    for (let r = 0; r < rows; r++) {
      const id = ids[r]!;
      const label = labels[r]!;
      if (!Number.isInteger(label) || label < 0) throw new Error(`probe: label ${label} of sample ${id} is not a class index`);
      const u = hashUniform(this.key, id);
      if (u < this.heldOut) {
        this.testSeen++;
        this.test.push({ id, u, label, x: Float32Array.from({ length: d }, (_, k) => data[r * d + k]!) });
      } else train.push(r);
    }
    this.bound();
    if (train.length === 0) return;
    const x = new Float64Array(train.length * d);
    train.forEach((r, i) => {
      const label = labels[r]!;
      let cs = this.classSum.get(label);
      if (!cs) this.classSum.set(label, (cs = new Float64Array(d)));
      this.classCount.set(label, (this.classCount.get(label) ?? 0) + 1);
      for (let k = 0; k < d; k++) {
        const v = data[r * d + k]!;
        x[i * d + k] = v;
        this.s![k] += v;
        cs[k] += v;
      }
    });
    const xx = await matmul.atb(x, train.length, d, x, d);
    for (let i = 0; i < xx.length; i++) this.S![i] += xx[i]!;
    this.n += train.length;
  }

  private bound(): void {
    if (this.test.length <= this.maxTestRows) return;
    this.test.sort((a, b) => a.u - b.u || a.id - b.id);
    this.test.length = this.maxTestRows;
  }

  snapshot(): Record<string, unknown> {
    const classes = [...this.classCount.keys()].sort((a, b) => a - b);
    return {
      heldOut: this.heldOut, maxTestRows: this.maxTestRows, seed: this.settings.seed, d: this.d, n: this.n, testSeen: this.testSeen,
      S: this.S ? encodeArray(this.S) : null, s: this.s ? encodeArray(this.s) : null,
      classes: classes.map((c) => ({ label: c, count: this.classCount.get(c), sum: encodeArray(this.classSum.get(c)!) })),
      test: this.test.map((t) => ({ id: t.id, label: t.label, x: encodeArray(t.x) })),
    };
  }

  merge(o: Record<string, unknown>): void {
    if (o.heldOut !== this.heldOut || o.maxTestRows !== this.maxTestRows || o.seed !== this.settings.seed) throw new Error('probe: settings differ');
    if (o.d === null) return;
    this.init(o.d as number);
    const S = decodeF64(o.S, 'probe S');
    const s = decodeF64(o.s, 'probe s');
    for (let i = 0; i < S.length; i++) this.S![i] += S[i]!;
    for (let i = 0; i < s.length; i++) this.s![i] += s[i]!;
    for (const c of o.classes as { label: number; count: number; sum: unknown }[]) {
      let cs = this.classSum.get(c.label);
      if (!cs) this.classSum.set(c.label, (cs = new Float64Array(this.d!)));
      const add = decodeF64(c.sum, 'probe class sum');
      for (let k = 0; k < add.length; k++) cs[k] += add[k]!;
      this.classCount.set(c.label, (this.classCount.get(c.label) ?? 0) + c.count);
    }
    const have = new Set(this.test.map((t) => t.id));
    for (const t of o.test as { id: number; label: number; x: unknown }[]) {
      if (have.has(t.id)) throw new Error(`probe: held-out sample ${t.id} appears in two partials`);
      this.test.push({ id: t.id, label: t.label, u: hashUniform(this.key, t.id), x: decodeF32(t.x, 'probe row') });
    }
    this.testSeen += o.testSeen as number;
    this.n += o.n as number;
    this.bound();
  }

  /** The probe curve over `fractions` with the subsets `perms` (the DR curve's). Null (with a warning) when it cannot run. */
  finalize(p: { fractions: number[]; perms: Int32Array[]; delta: number; ridge?: number; signal?: AbortSignal }, warn: (m: string) => void): ProbeDrInfo | null {
    const d = this.d;
    if (d === null) {
      warn('probe skipped: no labelled rows');
      return null;
    }
    const test = [...this.test].sort((a, b) => a.id - b.id);
    const labelsSeen = new Set<number>([...this.classCount.keys(), ...test.map((t) => t.label)]);
    const C = Math.max(...labelsSeen) + 1;
    if (labelsSeen.size < 2) {
      warn(`probe skipped: fewer than 2 classes (${labelsSeen.size})`);
      return null;
    }
    if (this.n < 2 || test.length === 0) {
      warn(`probe skipped: ${this.n} training and ${test.length} held-out samples (need at least 2 and 1)`);
      return null;
    }
    if (this.testSeen > test.length) warn(`probe: held-out rows were bounded to ${test.length} of ${this.testSeen} (smallest hash keys)`);
    const testCount = new Array<number>(C).fill(0);
    for (const t of test) testCount[t.label]++;
    const kept = testCount.map((c, k) => (c > 0 ? k : -1)).filter((k) => k >= 0);
    const noTrain = [...labelsSeen].filter((c) => !this.classCount.has(c)).sort((a, b) => a - b);
    if (noTrain.length) warn(`probe: classes without training samples: ${noTrain.join(', ')}`);
    const noTest = [...labelsSeen].filter((c) => testCount[c] === 0).sort((a, b) => a - b);
    if (noTest.length) warn(`probe: classes without held-out samples are left out of perClass: ${noTest.join(', ')}`);

    // Centred, augmented normal equations: G = [[S − n μμᵀ, 0], [0, n]], B = [Σ_c x − n_c μ; n_c].
    const n = this.n;
    const mu = Float64Array.from(this.s!, (v) => v / n);
    const D = d + 1;
    const g = new Float64Array(D * D);
    // Upper triangle, mirrored: exactly symmetric whatever the rounding of the sums.
    for (let i = 0; i < d; i++) {
      for (let j = i; j < d; j++) g[i * D + j] = g[j * D + i] = this.S![i * d + j]! - n * mu[i]! * mu[j]!;
    }
    g[d * D + d] = n;
    const xty = new Float64Array(D * C);
    for (const [c, sum] of this.classSum) {
      const nc = this.classCount.get(c)!;
      for (let k = 0; k < d; k++) xty[k * C + c] = sum[k]! - nc * mu[k]!;
      xty[d * C + c] = nc;
    }
    const nte = test.length;
    const xt = new Float64Array(nte * d);
    const yt = new Int32Array(nte);
    test.forEach((t, i) => {
      for (let k = 0; k < d; k++) xt[i * d + k] = t.x[k]! - mu[k]!;
      yt[i] = t.label;
    });
    const ridge = p.ridge ?? 1e-3;

    const evaluate = (sub: ArrayLike<number>): { acc: number; perClass: number[] } => {
      const k = sub.length;
      const s = k + 1;
      const idx = new Int32Array(s);
      for (let a = 0; a < k; a++) idx[a] = sub[a]!;
      idx[k] = d;
      const a = new Float64Array(s * s);
      let tr = 0;
      for (let i = 0; i < s; i++) {
        for (let j = 0; j < s; j++) a[i * s + j] = g[idx[i]! * D + idx[j]!]!;
        tr += a[i * s + i]!;
      }
      const lambda = (ridge * tr) / s;
      for (let i = 0; i < k; i++) a[i * s + i] += lambda;
      const w = new Float64Array(s * C);
      for (let i = 0; i < s; i++) for (let c = 0; c < C; c++) w[i * C + c] = xty[idx[i]! * C + c]!;
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
        for (let c = 0; c < C; c++) scores[c] = w[k * C + c]!;
        const row = i * d;
        for (let a2 = 0; a2 < k; a2++) {
          const v = xt[row + idx[a2]!]!;
          if (v === 0) continue;
          const wr = a2 * C;
          for (let c = 0; c < C; c++) scores[c] += v * w[wr + c]!;
        }
        let best = 0;
        for (let c = 1; c < C; c++) if (scores[c]! > scores[best]!) best = c;
        if (best === yt[i]) {
          correct[yt[i]!]++;
          total++;
        }
      }
      return { acc: total / nte, perClass: kept.map((c) => correct[c]! / testCount[c]!) };
    };

    const all = new Int32Array(d);
    for (let k = 0; k < d; k++) all[k] = k;
    const full = evaluate(all);
    const info: ProbeDrInfo = {
      fractions: [...p.fractions], mean: [], std: [], fullAccuracy: full.acc, value: null, delta: p.delta,
      perClass: [], gini: [], cv: [], classes: kept.length, trainSamples: n, testSamples: nte,
    };
    for (const f of p.fractions) {
      p.signal?.throwIfAborted();
      const k = subsetSize(f, d);
      let perClass: number[];
      let ms: { mean: number; std: number };
      if (k === d) {
        perClass = [...full.perClass];
        ms = { mean: full.acc, std: 0 };
      } else {
        const accs: number[] = [];
        perClass = new Array<number>(kept.length).fill(0);
        for (const perm of p.perms) {
          const r = evaluate(perm.subarray(0, k));
          accs.push(r.acc);
          for (let c = 0; c < kept.length; c++) perClass[c] += r.perClass[c]!;
        }
        for (let c = 0; c < kept.length; c++) perClass[c] /= p.perms.length;
        ms = meanStd(accs);
      }
      info.mean.push(ms.mean);
      info.std.push(ms.std);
      info.perClass.push(perClass);
      info.gini.push(gini(perClass));
      info.cv.push(coefficientOfVariation(perClass));
    }
    if (!(full.acc > 0)) warn('probe: full-layer held-out accuracy is 0; probe DR value is null');
    info.value = drValue(p.fractions, info.mean, full.acc, p.delta);
    return info;
  }
}

export interface ProbeOptions {
  fractions: number[];
  perms: Int32Array[];
  delta: number;
  heldOut: number;
  seed: number;
  matmul: MatmulBackend;
  /** Ridge strength relative to the mean diagonal. Default 1e−3. */
  ridge?: number;
  /** Sample id of each row (default: the row index). */
  ids?: ArrayLike<number>;
}

/** Linear-probe DR on rows `x` (n×d, one sample per row) with one label per row in [0, classes). */
export async function probeCurve(
  x: Float64Array, n: number, d: number, labels: Int32Array, classes: number, opts: ProbeOptions,
): Promise<{ info: ProbeDrInfo | null; warnings: string[] }> {
  const warnings: string[] = [];
  for (let i = 0; i < n; i++) if (labels[i]! >= classes) throw new Error(`label ${labels[i]} is out of range for ${classes} classes`);
  const acc = new ProbeAccumulator({ seed: opts.seed, heldOut: opts.heldOut });
  const ids = opts.ids ?? Int32Array.from({ length: n }, (_, i) => i);
  await acc.add(x, n, d, ids, labels, opts.matmul);
  const info = acc.finalize({ fractions: opts.fractions, perms: opts.perms, delta: opts.delta, ridge: opts.ridge }, (m) => warnings.push(m));
  return { info, warnings };
}
