// The span statistics of RBA (DESIGN §2, "RBA fit"): for every candidate span (i, j), the
// normal equations of the least-squares map from h_i to h_j with all tokens as rows, accumulated
// batch by batch in float64, with a held-out split kept apart.
//
// One state serves every span at once (a block-Gram matrix). With X̃ = [X, 1]:
//   per X-site i and split s:   G_i = X̃ᵀX̃            ((d_i+1)², the ones column last)
//   per pair (i, j) and split:  C_ij = X̃ᵀY_j         ((d_i+1)×d_j)
//   per Y-site j and split:     tr(Y_jᵀY_j) and 1ᵀY_j (for R² and relative errors)
// Everything is a sum over rows, so `merge` is exact addition and shards combine into the
// single run up to float rounding. The products run in ONNX Runtime (float64 Gemm), in one of
// two forms with the same sums:
//   in the graph (`addProducts`, SpanStatsConsumer's default for the rba and plan jobs): the
//           instrumented model itself casts each split's rows to float64 and hands out, per
//           start block, X̃ᵀ[X̃ | Y_j…]; only these products leave ONNX Runtime;
//   from JavaScript (`add`): rows come out raw, are converted and gathered here, and each
//           product is one call to the matmul backend (token subsamples, layouts the graph form
//           does not take).
//
// Cost model (d = width, L+1 sites h₋₁…h_{L−1}, P admitted pairs):
//   memory  8·(d_i+1)·(d_i+1 + Σ_j d_j) bytes per start block and split, ≈ 16·d² per pair
//           (train + held-out); all pairs of a 12-block d=384 model: 213 MB. `planSpanPairs`
//           admits pairs shortest-first under a byte budget (default 512 MiB) and names the
//           spans it left out; `rba` accumulates only the spans asked for.
//   compute per row, in ONNX Runtime's float64 Gemm: Σ_i (d+1)(d+1 + Σ_j d) multiply-adds with
//           one product per start block (the in-graph form always; about the upper block
//           triangle of ZᵀZ, the least an exact Gemm can do), or D² with D = Σ d + 1 for one
//           block-Gram ZᵀZ per grid (JavaScript form, when D ≤ 512 or it costs ≤ 30% more).
//           All pairs of L blocks: ≈ L²d²/2 per row, against ≈ 12·L·d² (+ attention) float32
//           multiply-adds for a transformer's forward per token. ViT-small (L = 12, d = 384):
//           13.3 M float64 against 23.3 M float32 per token; float64 Gemm runs at about 40% of
//           the forward's float32 rate on AVX-512 CPUs, so the products alone cost ≈ 1.4 forward
//           passes. The analysis pass bounds it with a token subsample (16 rows per sample).
import type { MatmulBackend } from '../linalg/matmul.js';
import { isHeldOut as probeHeldOut } from '../stats/probe.js';
import { decodeF64, encodeArray, type EncodedArray } from '../pass/snapshot.js';

/** A site is h_b for b = −1 (block 0's input) … L−1. */
export interface SpanSite {
  block: number;
  tensor: string;
  /** Feature width d (channels for NCHW maps). */
  width: number;
}

export type SpanPair = [from: number, to: number];

export type SpanEstimate = 'tokens' | 'token-subsample' | 'pooled';

export interface SpanStatsConfig {
  sites: SpanSite[];
  pairs: SpanPair[];
  /** Fraction of samples held out (by sample id), default 0.2. */
  heldOut: number;
  seed: number;
}

/**
 * Which samples are held out: a function of (seed, sample id) only, so shards agree; the same
 * split as the analysis probe's (stats/probe.ts).
 */
export function isHeldOut(seed: number, id: number, fraction: number): boolean {
  return probeHeldOut(seed, id, fraction);
}

/** Fraction of samples held out for the fits' quality and for verification. */
export const DEFAULT_HELD_OUT = 0.2;

export const DEFAULT_SPAN_BUDGET_BYTES = 512 * 2 ** 20;

/** Bytes the state needs for these pairs (both splits). */
export function spanStatsBytes(sites: SpanSite[], pairs: SpanPair[]): number {
  const w = new Map(sites.map((s) => [s.block, s.width]));
  const byX = new Map<number, number>();
  for (const [i, j] of pairs) byX.set(i, (byX.get(i) ?? 0) + w.get(j)!);
  let bytes = 0;
  for (const [i, cols] of byX) {
    const d = w.get(i)! + 1;
    bytes += 2 * 8 * d * (d + cols);
  }
  return bytes;
}

/**
 * All spans −1 ≤ i < j ≤ L−1 (from −1 only when h₋₁ is known), admitted shortest first while
 * the state fits in `budgetBytes`. Returns the admitted pairs and the ones left out.
 */
export function planSpanPairs(sites: SpanSite[], budgetBytes = DEFAULT_SPAN_BUDGET_BYTES, candidates?: SpanPair[]): { pairs: SpanPair[]; excluded: SpanPair[] } {
  const blocks = sites.map((s) => s.block).sort((a, b) => a - b);
  const all: SpanPair[] = [];
  if (candidates) all.push(...candidates);
  else for (const i of blocks) for (const j of blocks) if (j > i) all.push([i, j]);
  all.sort((a, b) => a[1] - a[0] - (b[1] - b[0]) || a[0] - b[0]);
  const pairs: SpanPair[] = [];
  const excluded: SpanPair[] = [];
  for (const p of all) {
    if (spanStatsBytes(sites, [...pairs, p]) <= budgetBytes) pairs.push(p);
    else excluded.push(p);
  }
  pairs.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  return { pairs, excluded };
}

/** Sums of one split. */
export interface SplitSums {
  /** Rows per site (sites with different token/spatial grids have different row counts). */
  rows: Map<number, number>;
  /** X-site block → G (row-major (d+1)²). */
  gram: Map<number, Float64Array>;
  /** `${i}:${j}` → C ((d_i+1)×d_j). */
  cross: Map<string, Float64Array>;
  /** Y-site block → Σ‖y‖². */
  ysq: Map<number, number>;
  /** Y-site block → Σ y (d). */
  ysum: Map<number, Float64Array>;
}

/** JSON form of the state (partials files, worker messages). */
export interface SpanStatsSnapshot {
  kind: 'rba-span-stats';
  version: 1;
  config: SpanStatsConfig;
  estimate: SpanEstimate;
  /** Per start block, when they differ (see SpanStats.estimates). */
  estimates?: Record<string, SpanEstimate>;
  samples: number;
  splits: { train: SerializedSums; heldOut: SerializedSums };
}

interface SerializedSums {
  rows: Record<string, number>;
  gram: Record<string, EncodedArray | number[]>;
  cross: Record<string, EncodedArray | number[]>;
  ysq: Record<string, number>;
  ysum: Record<string, EncodedArray | number[]>;
}

/** Row block of one site for one batch: `rows` × width, float64, with each row's sample index. */
export interface SiteRows {
  data: Float64Array;
  rows: number;
  /** Sample index (within the batch) of each row. */
  sample: Int32Array;
}

export const pairKey = (i: number, j: number): string => `${i}:${j}`;

/**
 * One batch's products for one split, formed inside the ONNX graph (SpanStatsConsumer's
 * in-graph form), all float64 and mask-weighted.
 */
export interface SplitProducts {
  /**
   * Per start block i: X̃_iᵀ [X̃_i | Y_j1 | Y_j2 | …] for its partners j (ascending), row-major
   * [(d_i+1) × (d_i+1 + Σ d_j)], X̃_i = [X_i | 1] (so the last row holds column sums and
   * entry (d_i, d_i) the row count).
   */
  products: Map<number, Float64Array>;
  /** Per end block that starts no span: Y_jᵀY_j (d_j × d_j), for Σ‖y‖². */
  squares: Map<number, Float64Array>;
}

function sameSamples(a: SiteRows, b: SiteRows): boolean {
  if (a.rows !== b.rows) return false;
  for (let k = 0; k < a.rows; k++) if (a.sample[k] !== b.sample[k]) return false;
  return true;
}

export class SpanStats {
  readonly config: SpanStatsConfig;
  readonly train: SplitSums;
  readonly heldOut: SplitSums;
  estimate: SpanEstimate = 'tokens';
  /** Per site: its rows are pooled (one per sample), a token subsample, or every token. */
  readonly estimates = new Map<number, SpanEstimate>();
  samples = 0;
  /** Always one product per start block (tests compare it with the one-Gram path). */
  perSiteProducts = false;
  private readonly width: Map<number, number>;
  /** X-site → its partner Y-sites (ascending). */
  private readonly partners = new Map<number, number[]>();

  constructor(config: SpanStatsConfig) {
    this.config = config;
    this.width = new Map(config.sites.map((s) => [s.block, s.width]));
    for (const [i, j] of config.pairs) {
      if (!(j > i)) throw new RangeError(`span ${i}→${j}: the end must come after the start`);
      if (!this.width.has(i) || !this.width.has(j)) throw new RangeError(`span ${i}→${j}: unknown block`);
      const list = this.partners.get(i) ?? [];
      list.push(j);
      this.partners.set(i, list);
    }
    for (const l of this.partners.values()) l.sort((a, b) => a - b);
    this.train = this.emptySums();
    this.heldOut = this.emptySums();
  }

  private emptySums(): SplitSums {
    const s: SplitSums = { rows: new Map(), gram: new Map(), cross: new Map(), ysq: new Map(), ysum: new Map() };
    for (const [i, js] of this.partners) {
      const d = this.width.get(i)! + 1;
      s.rows.set(i, 0);
      for (const j of js) s.rows.set(j, 0);
      s.gram.set(i, new Float64Array(d * d));
      for (const j of js) {
        s.cross.set(pairKey(i, j), new Float64Array(d * this.width.get(j)!));
        if (!s.ysq.has(j)) {
          s.ysq.set(j, 0);
          s.ysum.set(j, new Float64Array(this.width.get(j)!));
        }
      }
    }
    return s;
  }

  widthOf(block: number): number {
    const w = this.width.get(block);
    if (w === undefined) throw new RangeError(`block ${block} is not a site of these statistics`);
    return w;
  }

  hasPair(i: number, j: number): boolean {
    return this.train.cross.has(pairKey(i, j));
  }

  /** Start blocks and their partner end blocks (ascending): the in-graph products' layout. */
  get starts(): ReadonlyMap<number, readonly number[]> {
    return this.partners;
  }

  /**
   * Adds one split's in-graph products of one batch (see SplitProducts); the same sums as
   * `add` over the same rows. Count the batch's samples with `countSamples`.
   */
  addProducts(heldOut: boolean, p: SplitProducts): void {
    const sums = heldOut ? this.heldOut : this.train;
    const rows = new Map<number, number>();
    // Where each end block's column sums are: the ones row of some product that holds it.
    const ysumAt = new Map<number, { prod: Float64Array; at: number }>();
    for (const [i, js] of this.partners) {
      const prod = p.products.get(i);
      const dx = this.width.get(i)! + 1;
      const cols = dx + js.reduce((a, j) => a + this.width.get(j)!, 0);
      if (!prod || prod.length !== dx * cols) throw new Error(`internal: in-graph product of block ${i} has ${prod?.length} values, expected ${dx}×${cols}`);
      const n = prod[(dx - 1) * cols + dx - 1]!;
      rows.set(i, n);
      const g = sums.gram.get(i)!;
      for (let a = 0; a < dx; a++) {
        const o = a * cols;
        for (let b = 0; b < dx; b++) g[a * dx + b]! += prod[o + b]!;
      }
      let off = dx;
      for (const j of js) {
        const dj = this.width.get(j)!;
        const c = sums.cross.get(pairKey(i, j))!;
        for (let a = 0; a < dx; a++) {
          const o = a * cols + off;
          for (let b = 0; b < dj; b++) c[a * dj + b]! += prod[o + b]!;
        }
        if (!rows.has(j)) rows.set(j, n);
        if (!ysumAt.has(j)) ysumAt.set(j, { prod, at: (dx - 1) * cols + off });
        off += dj;
      }
    }
    for (const b of sums.rows.keys()) sums.rows.set(b, sums.rows.get(b)! + rows.get(b)!);
    for (const j of sums.ysq.keys()) {
      const d = this.width.get(j)!;
      let sq = 0;
      const own = p.products.get(j);
      if (this.partners.has(j) && own) {
        const cols = d + 1 + this.partners.get(j)!.reduce((a, k) => a + this.width.get(k)!, 0);
        for (let c = 0; c < d; c++) sq += own[c * cols + c]!;
      } else {
        const yy = p.squares.get(j);
        if (!yy || yy.length !== d * d) throw new Error(`internal: no in-graph Σ‖y‖² for block ${j}`);
        for (let c = 0; c < d; c++) sq += yy[c * d + c]!;
      }
      sums.ysq.set(j, sums.ysq.get(j)! + sq);
      const sum = sums.ysum.get(j)!;
      const { prod, at } = ysumAt.get(j)!;
      for (let c = 0; c < d; c++) sum[c]! += prod[at + c]!;
    }
  }

  countSamples(n: number): void {
    this.samples += n;
  }

  /** Bytes held by the sums. */
  bytes(): number {
    return spanStatsBytes(this.config.sites, this.config.pairs);
  }

  /**
   * Adds one batch. `rows` maps each site to its rows (same row order for every site, one
   * sample index per row); `sampleIds` are the batch's global sample ids.
   */
  async add(rows: Map<number, SiteRows>, sampleIds: readonly number[], matmul: MatmulBackend): Promise<void> {
    for (const [i, js] of this.partners) {
      const x = rows.get(i);
      if (!x) throw new Error(`internal: no rows for block ${i}`);
      for (const j of js) {
        const y = rows.get(j);
        if (!y || y.rows !== x.rows) throw new Error(`internal: blocks ${i} and ${j} have ${x.rows} and ${y?.rows} rows; a span needs rows that pair up`);
      }
    }
    const held = sampleIds.map((id) => isHeldOut(this.config.seed, id, this.config.heldOut));
    await this.addSplit(this.train, rows, held, false, matmul);
    await this.addSplit(this.heldOut, rows, held, true, matmul);
    this.samples += sampleIds.length;
  }

  private async addSplit(sums: SplitSums, rows: Map<number, SiteRows>, held: boolean[], want: boolean, matmul: MatmulBackend): Promise<void> {
    // Rows of this split, per site (sites on the same grid get the same list).
    const picks = new Map<number, number[]>();
    const pickOf = (block: number): number[] => {
      let p = picks.get(block);
      if (!p) {
        const src = rows.get(block)!;
        p = [];
        for (let r = 0; r < src.rows; r++) if (held[src.sample[r]!] === want) p.push(r);
        picks.set(block, p);
      }
      return p;
    };
    for (const b of sums.rows.keys()) sums.rows.set(b, sums.rows.get(b)! + pickOf(b).length);
    // Y-site sums (cheap, O(rows·d)).
    for (const j of sums.ysq.keys()) {
      const src = rows.get(j)!;
      const d = this.width.get(j)!;
      const sum = sums.ysum.get(j)!;
      let sq = 0;
      for (const r of pickOf(j)) {
        const o = r * d;
        for (let c = 0; c < d; c++) {
          const v = src.data[o + c]!;
          sq += v * v;
          sum[c]! += v;
        }
      }
      sums.ysq.set(j, sums.ysq.get(j)! + sq);
    }
    // Sites on the same grid share their row picks. When a grid's spans are (nearly) all its
    // pairs, one product ZᵀZ with Z = [h_a | h_b | … | 1] serves them all (one gather, one ORT
    // call); otherwise one product per start block: X̃ᵀ [X̃, Y_j1, Y_j2, …].
    const groups = new Map<number[], number[]>();
    for (const b of this.involved) {
      const p = pickOf(b);
      const same = [...groups.keys()].find((q) => q.length === p.length && rows.get(groups.get(q)![0]!)!.rows === rows.get(b)!.rows && sameSamples(rows.get(groups.get(q)![0]!)!, rows.get(b)!));
      if (same) groups.get(same)!.push(b);
      else groups.set(p, [b]);
    }
    for (const [pick, members] of groups) {
      if (pick.length === 0) continue;
      const xs = members.filter((b) => this.partners.has(b));
      if (!xs.length) continue;
      const perSite = xs.reduce((acc, i) => {
        const dx = this.width.get(i)! + 1;
        return acc + dx * (dx + this.partners.get(i)!.reduce((a, j) => a + this.width.get(j)!, 0));
      }, 0);
      const D = members.reduce((a, b) => a + this.width.get(b)!, 0) + 1;
      // Small Grams: one call beats several (call overhead); large ones: the fewest flops.
      if (!this.perSiteProducts && (D <= 512 || D * D <= 1.3 * perSite)) await this.addFull(sums, rows, pick, members, matmul);
      else for (const i of xs) await this.addSite(sums, rows, pick, i, matmul);
    }
  }

  /** Blocks that appear in some pair. */
  private get involved(): number[] {
    return [...new Set(this.config.pairs.flat())].sort((a, b) => a - b);
  }

  private gather(rows: Map<number, SiteRows>, block: number, pick: number[], ones: boolean): Float64Array {
    const src = rows.get(block)!;
    const d = this.width.get(block)!;
    const w = d + (ones ? 1 : 0);
    const n = pick.length;
    const out = new Float64Array(n * w);
    const data = src.data;
    for (let k = 0; k < n; k++) {
      const o = pick[k]! * d;
      const t = k * w;
      for (let c = 0; c < d; c++) out[t + c] = data[o + c]!;
      if (ones) out[t + d] = 1;
    }
    return out;
  }

  /** Z = [h_m1 | h_m2 | … | 1] for the group's rows, ZᵀZ in ORT, scattered into G and C. */
  private async addFull(sums: SplitSums, rows: Map<number, SiteRows>, pick: number[], members: number[], matmul: MatmulBackend): Promise<void> {
    const n = pick.length;
    const offs = new Map<number, number>();
    let D = 0;
    for (const b of members) {
      offs.set(b, D);
      D += this.width.get(b)!;
    }
    const one = D;
    D += 1;
    const z = new Float64Array(n * D);
    for (const b of members) {
      const src = rows.get(b)!.data;
      const d = this.width.get(b)!;
      const o0 = offs.get(b)!;
      for (let k = 0; k < n; k++) {
        const so = pick[k]! * d;
        const t = k * D + o0;
        for (let c = 0; c < d; c++) z[t + c] = src[so + c]!;
      }
    }
    for (let k = 0; k < n; k++) z[k * D + one] = 1;
    const zz = await matmul.atb(z, n, D, z, D);
    // Index of row/column a of X̃_i in Z: the block's columns, then the ones column.
    const col = (b: number, a: number) => (a < this.width.get(b)! ? offs.get(b)! + a : one);
    for (const [i, js] of this.partners) {
      if (!offs.has(i)) continue;
      const dx = this.width.get(i)! + 1;
      const g = sums.gram.get(i)!;
      for (let a = 0; a < dx; a++) {
        const ra = col(i, a) * D;
        for (let b = 0; b < dx; b++) g[a * dx + b]! += zz[ra + col(i, b)]!;
      }
      for (const j of js) {
        const dj = this.width.get(j)!;
        const c = sums.cross.get(pairKey(i, j))!;
        const oj = offs.get(j)!;
        for (let a = 0; a < dx; a++) {
          const ra = col(i, a) * D + oj;
          for (let b = 0; b < dj; b++) c[a * dj + b]! += zz[ra + b]!;
        }
      }
    }
  }

  /** X̃ᵀ [X̃, Y_j1, Y_j2, …] for one start block. */
  private async addSite(sums: SplitSums, rows: Map<number, SiteRows>, pick: number[], i: number, matmul: MatmulBackend): Promise<void> {
    const js = this.partners.get(i)!;
    const n = pick.length;
    const xt = this.gather(rows, i, pick, true);
    const dx = this.width.get(i)! + 1;
    const cols = dx + js.reduce((a, j) => a + this.width.get(j)!, 0);
    const rhs = new Float64Array(n * cols);
    const ys = js.map((j) => ({ j, data: this.gather(rows, j, pick, false), d: this.width.get(j)! }));
    for (let k = 0; k < n; k++) {
      let o = k * cols;
      rhs.set(xt.subarray(k * dx, (k + 1) * dx), o);
      o += dx;
      for (const y of ys) {
        rhs.set(y.data.subarray(k * y.d, (k + 1) * y.d), o);
        o += y.d;
      }
    }
    const prod = await matmul.atb(xt, n, dx, rhs, cols);
    const g = sums.gram.get(i)!;
    for (let a = 0; a < dx; a++) for (let b = 0; b < dx; b++) g[a * dx + b]! += prod[a * cols + b]!;
    let off = dx;
    for (const y of ys) {
      const c = sums.cross.get(pairKey(i, y.j))!;
      for (let a = 0; a < dx; a++) for (let b = 0; b < y.d; b++) c[a * y.d + b]! += prod[a * cols + off + b]!;
      off += y.d;
    }
  }

  snapshot(): SpanStatsSnapshot {
    const ser = (s: SplitSums): SerializedSums => ({
      rows: Object.fromEntries([...s.rows].map(([k, v]) => [String(k), v])),
      gram: Object.fromEntries([...s.gram].map(([k, v]) => [String(k), encodeArray(v.slice())])),
      cross: Object.fromEntries([...s.cross].map(([k, v]) => [k, encodeArray(v.slice())])),
      ysq: Object.fromEntries([...s.ysq].map(([k, v]) => [String(k), v])),
      ysum: Object.fromEntries([...s.ysum].map(([k, v]) => [String(k), encodeArray(v.slice())])),
    });
    return {
      kind: 'rba-span-stats',
      version: 1,
      config: structuredClone(this.config),
      estimate: this.estimate,
      estimates: Object.fromEntries([...this.estimates].map(([k, v]) => [String(k), v])),
      samples: this.samples,
      splits: { train: ser(this.train), heldOut: ser(this.heldOut) },
    };
  }

  static fromSnapshot(snap: SpanStatsSnapshot): SpanStats {
    if (snap.kind !== 'rba-span-stats' || snap.version !== 1) throw new Error('not an RBA span-statistics snapshot (kind/version)');
    const s = new SpanStats(snap.config);
    s.mergeSnapshot(snap);
    s.samples = snap.samples;
    s.estimate = snap.estimate;
    return s;
  }

  /** Adds another state's sums (exact: every entry is a sum over rows). */
  merge(other: SpanStats): void {
    this.mergeSnapshot(other.snapshot());
  }

  mergeSnapshot(snap: SpanStatsSnapshot): void {
    const same = JSON.stringify({ ...snap.config }) === JSON.stringify({ ...this.config });
    if (!same) throw new Error('cannot merge RBA span statistics of different sites, spans, seed or held-out fraction');
    const add = (dst: SplitSums, src: SerializedSums) => {
      for (const k of [...dst.rows.keys()]) dst.rows.set(k, dst.rows.get(k)! + src.rows[String(k)]!);
      const addArr = (a: Float64Array, src: EncodedArray | number[] | undefined) => {
        const b = Array.isArray(src) ? src : decodeF64(src, 'RBA span statistics');
        if (a.length !== b.length) throw new Error('internal: span statistics of different sizes');
        for (let k = 0; k < a.length; k++) a[k]! += b[k]!;
      };
      for (const [k, v] of dst.gram) addArr(v, src.gram[String(k)]!);
      for (const [k, v] of dst.cross) addArr(v, src.cross[k]!);
      for (const [k, v] of dst.ysum) addArr(v, src.ysum[String(k)]!);
      for (const k of [...dst.ysq.keys()]) dst.ysq.set(k, dst.ysq.get(k)! + src.ysq[String(k)]!);
    };
    if (this.samples > 0 && snap.estimate !== this.estimate) this.estimate = 'token-subsample';
    else this.estimate = snap.estimate;
    // A site subsampled in any shard is a subsample in the merge.
    for (const [k, v] of Object.entries(snap.estimates ?? {})) {
      const b = Number(k);
      const cur = this.estimates.get(b);
      this.estimates.set(b, cur === undefined || cur === v ? v : 'token-subsample');
    }
    add(this.train, snap.splits.train);
    add(this.heldOut, snap.splits.heldOut);
    this.samples += snap.samples;
  }
}
