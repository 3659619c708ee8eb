// Closed-form RBA fits from the accumulated sums (DESIGN §2), and their held-out quality
// computed from held-out sums without revisiting any row:
//   ‖Y − X̃W‖² = tr(YᵀY) − 2·tr(WᵀX̃ᵀY) + tr(WᵀX̃ᵀX̃W)
//
// linear   (G + λI) W = C + λĨ when the widths match (ridge toward the identity, i.e. the skip
//          connection: directions the data does not pin down stay skip), (G + λI) W = C
//          otherwise; λ = 1e−6·tr(G)/(d+1); Cholesky in float64.
// skip     W = Ĩ (identity, zero bias), equal widths only.
// lowrank  reduced-rank regression: with the ridge solution W₀, the fitted values' second
//          moment M = W₀ᵀ G W₀ gives the top-R eigenvectors V, and W = W₀VVᵀ. When the widths
//          match the low-rank part models the residual Y − X (W = Ĩ + W₀'VVᵀ), so a rank-R map
//          is "skip plus a rank-R correction".
// G·W products run in ONNX Runtime; ml-matrix does the small factorizations.
import { EigenvalueDecomposition, Matrix } from 'ml-matrix';
import type { MatmulBackend } from '../linalg/matmul.js';
import { pairKey, type SpanStats, type SplitSums } from './span-stats.js';

export type RbaMethod = 'linear' | 'skip' | 'lowrank';
/** Where the ridge term pulls the map: toward the identity (skip) or toward zero (plain ridge). */
export type Shrink = 'identity' | 'zero';

export const DEFAULT_RIDGE = 1e-6;

export interface FitOptions {
  method: RbaMethod;
  rank?: number;
  /** Default: 'identity' when the widths match, else 'zero'. */
  shrink?: Shrink;
  /** λ = ridge · tr(G)/(d+1). Default 1e−6. */
  ridge?: number;
  /** Skip the training-split quality (only its row count is reported); the analysis ranks by held-out error. */
  heldOutOnly?: boolean;
}

export interface SpanMap {
  from: number;
  to: number;
  method: RbaMethod;
  dIn: number;
  dOut: number;
  /** (dIn+1)×dOut row-major; the last row is the bias. For lowrank: the effective product. */
  weight: Float64Array;
  /** Low-rank factors: y = [x,1]·A·B (+ x when residual). A: (dIn+1)×r, B: r×dOut. */
  lowrank?: { rank: number; a: Float64Array; b: Float64Array; residual: boolean };
  /** Parameters the replacement holds. */
  params: number;
}

export interface FitQuality {
  rows: number;
  /** ‖Y − Ŷ‖² / ‖Y‖². */
  relErr: number | null;
  /** 1 − ‖Y − Ŷ‖² / ‖Y − Ȳ‖². */
  r2: number | null;
}

export interface SpanFit {
  map: SpanMap;
  train: FitQuality;
  heldOut: FitQuality;
  /** The identity baseline on the same rows (equal widths only). */
  skip?: { train: FitQuality; heldOut: FitQuality };
  shrink: Shrink | null;
  lambda: number;
}

export class SpanFitError extends Error {}

/** Ĩ: the (d+1)×d identity with a zero bias row. */
export function augmentedIdentity(d: number): Float64Array {
  const w = new Float64Array((d + 1) * d);
  for (let k = 0; k < d; k++) w[k * d + k] = 1;
  return w;
}

function toMatrix(a: Float64Array, r: number, c: number): Matrix {
  const m = new Matrix(r, c);
  for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) m.set(i, j, a[i * c + j]!);
  return m;
}

/** Σ_ab A_ab B_ab. */
function dot(a: Float64Array, b: Float64Array): number {
  let s = 0;
  for (let k = 0; k < a.length; k++) s += a[k]! * b[k]!;
  return s;
}

/**
 * Quality of W on one split's sums. `w: 'identity'` is Ĩ (skip), whose terms are traces of C
 * and G. `keep.gw` receives G·W when given.
 */
export async function quality(sums: SplitSums, i: number, j: number, w: Float64Array | 'identity', dIn: number, dOut: number, matmul: MatmulBackend, keep?: { gw?: Float64Array }): Promise<FitQuality> {
  const rows = sums.rows.get(j) ?? 0;
  if (rows === 0) return { rows, relErr: null, r2: null };
  const g = sums.gram.get(i)!;
  const c = sums.cross.get(pairKey(i, j))!;
  const ysq = sums.ysq.get(j)!;
  const ysum = sums.ysum.get(j)!;
  const dx = dIn + 1;
  let wc = 0;
  let wgw = 0;
  if (w === 'identity') {
    for (let k = 0; k < dIn; k++) {
      wc += c[k * dOut + k]!;
      wgw += g[k * dx + k]!;
    }
  } else {
    const gw = await matmul.atb(g, dx, dx, w, dOut); // G symmetric: GᵀW = GW
    if (keep) keep.gw = gw;
    wc = dot(w, c);
    wgw = dot(w, gw);
  }
  const sse = Math.max(0, ysq - 2 * wc + wgw);
  let mean2 = 0;
  for (let k = 0; k < dOut; k++) mean2 += ysum[k]! * ysum[k]!;
  const sst = ysq - mean2 / rows;
  return {
    rows,
    relErr: ysq > 0 ? sse / ysq : null,
    r2: sst > 0 ? 1 - sse / sst : null,
  };
}

/**
 * (A)⁻¹ of a symmetric positive-definite n×n matrix (row-major), or null when A is not positive
 * definite: Cholesky A = LLᵀ and M = L⁻¹ in typed arrays (n³/3 + n³/6 multiply-adds), then
 * A⁻¹ = MᵀM in ONNX Runtime. (ml-matrix's Matrix-object Cholesky and solve took ~10× longer at
 * n = 385.)
 */
export async function spdInverse(a: Float64Array, n: number, matmul: MatmulBackend): Promise<Float64Array | null> {
  const l = Float64Array.from(a);
  for (let j = 0; j < n; j++) {
    const rj = j * n;
    let d = l[rj + j]!;
    for (let k = 0; k < j; k++) d -= l[rj + k]! * l[rj + k]!;
    if (!(d > 0) || !Number.isFinite(d)) return null;
    d = Math.sqrt(d);
    l[rj + j] = d;
    for (let i = j + 1; i < n; i++) {
      const ri = i * n;
      let s = l[ri + j]!;
      for (let k = 0; k < j; k++) s -= l[ri + k]! * l[rj + k]!;
      l[ri + j] = s / d;
    }
  }
  // M = L⁻¹ (lower triangular), column by column, kept transposed (mt[j·n + i] = M_ij) so the
  // inner loops run over contiguous memory.
  const mt = new Float64Array(n * n);
  for (let j = 0; j < n; j++) {
    const cj = j * n;
    mt[cj + j] = 1 / l[j * n + j]!;
    for (let i = j + 1; i < n; i++) {
      const ri = i * n;
      let s = 0;
      for (let k = j; k < i; k++) s -= l[ri + k]! * mt[cj + k]!;
      mt[cj + i] = s / l[ri + i]!;
    }
  }
  // A⁻¹ = MᵀM = (mt)(mt)ᵀ: with mt's rows as columns of M, atb over M gives MᵀM.
  const m = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) m[i * n + j] = mt[j * n + i]!;
  const inv = await matmul.atb(m, n, n, m, n);
  for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) inv[i * n + j] = inv[j * n + i] = 0.5 * (inv[i * n + j]! + inv[j * n + i]!);
  return inv;
}

/** What a span's error needs from the span h_j → h_last to be carried to the last block. */
export interface TailInfo {
  /** P = AAᵀ (d_j × d_j) for the linear part A (d_j × d_last) of the fitted map h_j → h_last. */
  p: Float64Array;
  /** Held-out X̃ᵀX̃ of h_j ((d_j+1)², ones last). */
  heldGramTo: Float64Array;
  /** Held-out Σ‖h_last‖². */
  ysqLast: number;
}

/**
 * The span's held-out error carried to the last block's output: with the linear part A of the
 * fitted map h_j → h_last and the held-out residual second moment R of the span,
 * ‖E·A‖² = tr(AᵀRA), relative to ‖h_last‖² on the same rows. Errors made early pass through
 * more blocks; this weighs them by how the later blocks (to first order) amplify or damp them.
 * With P = AAᵀ, Q = W·P and R = YᵀY − WᵀC − CᵀW + WᵀGW (C = X̃ᵀY, G = X̃ᵀX̃, held-out sums):
 *   tr(AᵀRA) = tr(RP) = ⟨YᵀY, P⟩ − 2⟨C, Q⟩ + ⟨GW, Q⟩
 * — one (d+1)×d×d product per span.
 */
export async function carriedRelErr(fit: SpanFit, held: SplitSums, tail: TailInfo, matmul: MatmulBackend, heldGw?: Float64Array): Promise<number | null> {
  const { from: i, to: j, dIn, dOut } = fit.map;
  const gi = held.gram.get(i);
  const c = held.cross.get(pairKey(i, j));
  if (!gi || !c || !(tail.ysqLast > 0)) return null;
  const dx = dIn + 1;
  const dj = dOut + 1;
  const w = fit.map.weight;
  const gj = tail.heldGramTo;
  const gw = heldGw ?? (await matmul.atb(gi, dx, dx, w, dOut));
  const q = await matmul.abt(w, dx, tail.p, dOut, dOut); // W·Pᵀ = W·P
  let yy = 0;
  for (let a = 0; a < dOut; a++) for (let b = 0; b < dOut; b++) yy += gj[a * dj + b]! * tail.p[a * dOut + b]!;
  return Math.max(0, yy - 2 * dot(c, q) + dot(gw, q)) / tail.ysqLast;
}

/** The tail facts of a fitted span h_j → h_last (see carriedRelErr). */
export async function tailInfo(tail: SpanFit, held: SplitSums, matmul: MatmulBackend): Promise<TailInfo | null> {
  const { from: j, to: last, dIn, dOut } = tail.map;
  const g = held.gram.get(j);
  const ysq = held.ysq.get(last);
  if (!g || ysq === undefined) return null;
  const a = tail.map.weight.subarray(0, dIn * dOut);
  return { p: await matmul.abt(a, dIn, a, dIn, dOut), heldGramTo: g, ysqLast: ysq };
}

/** Cholesky factors of G_i + λI, cached per site (shared by every span starting there). */
export class SpanSolver {
  private readonly inverse = new Map<number, { inv: Float64Array; lambda: number }>();

  constructor(readonly stats: SpanStats, readonly matmul: MatmulBackend, readonly ridge = DEFAULT_RIDGE) {}

  /**
   * (G_i + λI)⁻¹ by Cholesky (ml-matrix, O(d³) once per start block); every span from block i
   * then costs one product in ONNX Runtime.
   */
  private async factor(i: number): Promise<{ inv: Float64Array; lambda: number }> {
    let f = this.inverse.get(i);
    if (f) return f;
    const d = this.stats.widthOf(i);
    const dx = d + 1;
    const g = this.stats.train.gram.get(i);
    if (!g) throw new SpanFitError(`no statistics for spans starting at block ${i}`);
    if ((this.stats.train.rows.get(i) ?? 0) === 0) throw new SpanFitError('no training rows: the calibration data is too small for a held-out split');
    let tr = 0;
    for (let k = 0; k < dx; k++) tr += g[k * dx + k]!;
    const lambda = this.ridge * (tr / dx || 1);
    const m = Float64Array.from(g);
    for (let k = 0; k < dx; k++) m[k * dx + k]! += lambda;
    const inv = await spdInverse(m, dx, this.matmul);
    if (!inv) throw new SpanFitError(`the normal equations of block ${i} are not positive definite (non-finite activations?)`);
    f = { inv, lambda };
    this.inverse.set(i, f);
    return f;
  }

  /** Ridge solution for span (i, j): (G + λI)W = C [− G·Ĩ when residual] [+ λĨ when shrinking to identity]. */
  private async solve(i: number, j: number, shrink: Shrink, residual: boolean): Promise<{ w: Float64Array; lambda: number }> {
    const dIn = this.stats.widthOf(i);
    const dOut = this.stats.widthOf(j);
    const dx = dIn + 1;
    const { inv, lambda } = await this.factor(i);
    const c = this.stats.train.cross.get(pairKey(i, j));
    if (!c) throw new SpanFitError(`span ${i}→${j} was not accumulated (left out by the memory budget?)`);
    const rhs = Float64Array.from(c);
    if (residual) {
      // X̃ᵀ(Y − X) = C − G[:, :d].
      const g = this.stats.train.gram.get(i)!;
      for (let a = 0; a < dx; a++) for (let b = 0; b < dOut; b++) rhs[a * dOut + b]! -= g[a * dx + b]!;
    } else if (shrink === 'identity') {
      for (let k = 0; k < dOut; k++) rhs[k * dOut + k]! += lambda;
    }
    return { w: await this.matmul.atb(inv, dx, dx, rhs, dOut), lambda };
  }

  private readonly tails = new Map<number, SpanFit | null>();

  /**
   * The span's held-out error carried to the last block's output: with the linear part A of
   * the fitted map h_j → h_last and the held-out residual second moment R of the span,
   * ‖E·A‖² = tr(AᵀRA), relative to ‖h_last‖² on the same rows. Errors made early pass through
   * more blocks; this weighs them by how the later blocks (to first order) amplify or damp
   * them, from the same sums. Null when the span h_j → h_last was not accumulated.
   */
  async relErrAtLast(fit: SpanFit, last: number): Promise<number | null> {
    const j = fit.map.to;
    if (j === last) return fit.heldOut.relErr;
    let tail = this.tails.get(j);
    if (tail === undefined) {
      tail = this.stats.hasPair(j, last) ? await this.fit(j, last, { method: 'linear' }) : null;
      this.tails.set(j, tail);
    }
    const info = tail ? await tailInfo(tail, this.stats.heldOut, this.matmul) : null;
    return info ? carriedRelErr(fit, this.stats.heldOut, info, this.matmul, this.heldGw.get(fit)) : null;
  }

  /** G·W on the held-out split of each fit (reused by relErrAtLast). */
  readonly heldGw = new WeakMap<SpanFit, Float64Array>();

  async fit(i: number, j: number, opts: FitOptions): Promise<SpanFit> {
    const dIn = this.stats.widthOf(i);
    const dOut = this.stats.widthOf(j);
    const dx = dIn + 1;
    const same = dIn === dOut;
    let map: SpanMap;
    let shrink: Shrink | null = null;
    let lambda = 0;
    switch (opts.method) {
      case 'skip': {
        if (!same) throw new SpanFitError(`--method skip needs equal widths, but block ${i} has width ${dIn} and block ${j} has ${dOut}; use --method linear`);
        map = { from: i, to: j, method: 'skip', dIn, dOut, weight: augmentedIdentity(dIn), params: 0 };
        break;
      }
      case 'linear': {
        shrink = opts.shrink ?? (same ? 'identity' : 'zero');
        if (shrink === 'identity' && !same) throw new SpanFitError(`shrinking toward the identity needs equal widths (${dIn} ≠ ${dOut})`);
        const s = await this.solve(i, j, shrink, false);
        lambda = s.lambda;
        map = { from: i, to: j, method: 'linear', dIn, dOut, weight: s.w, params: dx * dOut };
        break;
      }
      case 'lowrank': {
        const rank = opts.rank;
        if (rank === undefined || !Number.isInteger(rank) || rank < 1) throw new SpanFitError('--method lowrank needs --rank R (a positive integer)');
        if (rank >= Math.min(dx, dOut)) throw new SpanFitError(`--rank ${rank} is not below the map's full rank ${Math.min(dx, dOut)}; use --method linear`);
        const residual = same;
        shrink = residual ? 'identity' : 'zero';
        const s = await this.solve(i, j, 'zero', residual);
        lambda = s.lambda;
        const g = this.stats.train.gram.get(i)!;
        // M = W₀ᵀ G W₀ (dOut×dOut): second moment of the fitted (residual) values.
        const gw = await this.matmul.atb(g, dx, dx, s.w, dOut);
        const m = await this.matmul.atb(s.w, dx, dOut, gw, dOut);
        const evd = new EigenvalueDecomposition(toMatrix(m, dOut, dOut), { assumeSymmetric: true });
        const values = evd.realEigenvalues;
        const vecs = evd.eigenvectorMatrix;
        const order = values.map((v, k) => [v, k] as const).sort((p, q) => q[0] - p[0]).slice(0, rank).map((p) => p[1]);
        const b = new Float64Array(rank * dOut);
        order.forEach((col, r) => {
          for (let k = 0; k < dOut; k++) b[r * dOut + k] = vecs.get(k, col);
        });
        // A = W₀ Vᵣ  ((dIn+1)×r).
        const a = new Float64Array(dx * rank);
        for (let p = 0; p < dx; p++) {
          for (let r = 0; r < rank; r++) {
            let acc = 0;
            for (let k = 0; k < dOut; k++) acc += s.w[p * dOut + k]! * b[r * dOut + k]!;
            a[p * rank + r] = acc;
          }
        }
        const weight = residual ? augmentedIdentity(dIn) : new Float64Array(dx * dOut);
        for (let p = 0; p < dx; p++) {
          for (let k = 0; k < dOut; k++) {
            let acc = 0;
            for (let r = 0; r < rank; r++) acc += a[p * rank + r]! * b[r * dOut + k]!;
            weight[p * dOut + k]! += acc;
          }
        }
        map = { from: i, to: j, method: 'lowrank', dIn, dOut, weight, lowrank: { rank, a, b, residual }, params: dx * rank + rank * dOut };
        break;
      }
    }
    const trainQuality = (w: Float64Array | 'identity'): Promise<FitQuality> =>
      opts.heldOutOnly ? Promise.resolve({ rows: this.stats.train.rows.get(j) ?? 0, relErr: null, r2: null }) : quality(this.stats.train, i, j, w, dIn, dOut, this.matmul);
    const keep: { gw?: Float64Array } = {};
    const fit: SpanFit = {
      map,
      train: await trainQuality(map.weight),
      heldOut: await quality(this.stats.heldOut, i, j, map.weight, dIn, dOut, this.matmul, keep),
      shrink,
      lambda,
    };
    if (same) {
      fit.skip = {
        train: await trainQuality('identity'),
        heldOut: await quality(this.stats.heldOut, i, j, 'identity', dIn, dOut, this.matmul),
      };
    }
    if (keep.gw) this.heldGw.set(fit, keep.gw);
    return fit;
  }
}
