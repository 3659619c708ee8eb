// The span statistics as a pass consumer (DESIGN §3: `onBatch`, `snapshot`, `merge`,
// `finalize`), fed by one stream of the calibration data through an instrumented copy of the
// model, every candidate span at once. Where the site shapes are known before the first batch
// (the pass's rank probe) and every row is used, the normal equations are formed inside that
// copy: per train/held-out split (a per-batch feed of sample positions, Gather on the batch
// axis) and start block i, X̃_iᵀ[X̃_i | Y_j…] in float64 (`gram` requests with `left: 1`).
// Otherwise (layouts the graph form does not take: sequence-first, channels-last) every
// block output comes out raw and the products are formed from JavaScript.
import type { CalibrationBatch } from '../calibration/index.js';
import type { MatmulBackend } from '../linalg/matmul.js';
import type { PassBatch, PassConsumer, PassContext, Snapshot, TensorRequest } from '../pass/types.js';
import { toRows, validPositions, widthOf, type RawTensor } from './rows.js';
import { DEFAULT_HELD_OUT, DEFAULT_SPAN_BUDGET_BYTES, isHeldOut, planSpanPairs, SpanStats, type SpanPair, type SpanSite, type SpanStatsSnapshot, type SplitProducts } from './span-stats.js';

export interface SpanConsumerOptions {
  /** Spans to accumulate; default: every span admitted by the memory budget. */
  pairs?: SpanPair[];
  budgetBytes?: number;
  heldOut?: number;
  seed?: number;
  /**
   * Form the products inside the instrumented graph (float64, per split) so that only they
   * leave ONNX Runtime (default, where it applies: every row, site shapes known before the first
   * batch). false: the rows come out raw and the products are formed from JavaScript.
   */
  inGraph?: boolean;
}

/** Graph inputs of the in-graph split: sample positions of the batch in each split. */
const SPLIT_INPUT = { train: 'blocklens::rba_train_samples', heldOut: 'blocklens::rba_heldout_samples' } as const;
const productId = (split: 'train' | 'heldOut', i: number) => `rba:${split}:${i}`;
const squaresId = (split: 'train' | 'heldOut', j: number) => `rba:${split}:yy:${j}`;

/** Shape facts about each site learned from the first batch. */
export interface SiteShape {
  block: number;
  tensor: string;
  dims: number[];
  width: number;
  /** ORT element type name ('float32', 'float16', 'float64'). */
  type: string;
}

/** What the consumer needs to know about the run (the engine core's PassContext has these). */
export interface SpanPassContext {
  blocks: { index: number; output: string }[];
  blockInput: string | null;
  maskInput?: string;
}

/** One batch as the consumer sees it (a subset of the engine core's PassBatch). */
export interface SpanPassBatch {
  /** Global id of the first sample; the batch holds ids first … first + size − 1. */
  first: number;
  size: number;
  feeds: CalibrationBatch['feeds'];
  tensor(name: string): RawTensor;
}

/** Sites h₋₁ … h_{L−1} of a pass context. */
export function sitesOf(ctx: SpanPassContext): Map<number, string> {
  const sites = new Map<number, string>();
  if (ctx.blockInput) sites.set(-1, ctx.blockInput);
  for (const b of ctx.blocks) sites.set(b.index, b.output);
  return sites;
}

/**
 * A pass consumer (DESIGN §3: requests, onBatch, snapshot, merge, finalize) accumulating the
 * normal equations of every candidate span from the raw block outputs. The first batch fixes
 * the site widths and the admitted spans; a fresh consumer merged with snapshots takes them
 * from the first snapshot.
 */
export class SpanStatsConsumer implements PassConsumer<SpanStats> {
  readonly name = 'rba-spans';
  stats?: SpanStats;
  shapes = new Map<number, SiteShape>();
  excluded: SpanPair[] = [];
  private sites = new Map<number, string>();
  /** The in-graph form's statistics, before the first batch (undefined: the JS form). */
  private graphStats?: SpanStats;

  constructor(
    readonly matmul: MatmulBackend,
    readonly opts: SpanConsumerOptions & { file?: string } = {},
  ) {}

  /** Whether the products are formed inside the graph (decided in `requests`). */
  get inGraph(): boolean {
    return this.graphMode;
  }
  private graphMode = false;

  requests(ctx: SpanPassContext | PassContext): TensorRequest[] {
    this.sites = sitesOf(ctx);
    const graph = this.graphRequests(ctx as PassContext);
    if (graph) return graph;
    return [...this.sites.values()].map((tensor) => ({ kind: 'raw' as const, tensor }));
  }

  /**
   * The in-graph form: per split (train/held-out, by sample id) and start block i, one
   * product X̃_iᵀ[X̃_i | Y_j…] over the split's rows (a `gram` request with `left: 1` and a
   * per-batch sample selection), and Y_jᵀY_j for end blocks that start no span (their Σ‖y‖²).
   * Applies when every row is used and the shapes of all sites are known before the first batch.
   */
  private graphRequests(ctx: PassContext): TensorRequest[] | undefined {
    if (this.opts.inGraph === false || !ctx.shapes) return undefined;
    const shapes: { block: number; tensor: string; dims: number[]; type: string }[] = [];
    for (const [block, tensor] of this.sites) {
      const s = ctx.shapes[tensor];
      if (!s || s.dims.length < 2 || s.dims.length > 4 || s.dims.slice(1).some((d) => d === null)) return undefined;
      if (s.type !== 'float32' && s.type !== 'float16' && s.type !== 'float64') return undefined;
      shapes.push({ block, tensor, dims: [s.dims[0] ?? 1, ...(s.dims.slice(1) as number[])], type: s.type });
    }
    const stats = this.plan(shapes);
    const seed = stats.config.seed;
    const frac = stats.config.heldOut;
    const positions = (held: boolean) => (first: number, size: number): Int32Array => {
      const p: number[] = [];
      for (let k = 0; k < size; k++) if (isHeldOut(seed, first + k, frac) === held) p.push(k);
      // An empty split still runs (on sample 0) and its products are ignored.
      return p.length ? Int32Array.from(p) : Int32Array.of(0);
    };
    const reqs: TensorRequest[] = [];
    for (const split of ['train', 'heldOut'] as const) {
      const select = { input: SPLIT_INPUT[split], positions: positions(split === 'heldOut') };
      for (const [i, js] of stats.starts) {
        reqs.push({ kind: 'gram', id: productId(split, i), tensors: [this.sites.get(i)!, ...js.map((j) => this.sites.get(j)!)], rows: 'tokens', ones: true, left: 1, select });
      }
      for (const j of new Set(stats.config.pairs.map((p) => p[1]))) {
        if (!stats.starts.has(j)) reqs.push({ kind: 'gram', id: squaresId(split, j), tensors: [this.sites.get(j)!], rows: 'tokens', ones: false, select });
      }
    }
    this.graphStats = stats;
    this.graphMode = true;
    for (const b of new Set(stats.config.pairs.flat())) if (!stats.estimates.has(b)) stats.estimates.set(b, this.shapes.get(b)!.dims.length === 2 ? 'pooled' : 'tokens');
    return reqs;
  }

  private init(batch: SpanPassBatch): SpanStats {
    const shapes: { block: number; tensor: string; dims: number[]; type: string }[] = [];
    for (const [block, tensor] of [...this.sites].sort((a, b) => a[0] - b[0])) {
      const t = batch.tensor(tensor);
      shapes.push({ block, tensor, dims: [...t.dims], type: t.type ?? 'float32' });
    }
    return this.plan(shapes);
  }

  /** Site shapes → the admitted spans and fresh statistics. */
  private plan(shapeList: { block: number; tensor: string; dims: number[]; type: string }[]): SpanStats {
    const sites: SpanSite[] = [];
    for (const { block, tensor, dims, type } of [...shapeList].sort((a, b) => a.block - b.block)) {
      if (dims.length < 2 || dims.length > 4) {
        throw Object.assign(new Error(`block ${block} output '${tensor}' has rank ${dims.length}; RBA maps [N, d], [N, T, d] or [N, C, H, W] tensors`), { file: this.opts.file });
      }
      this.shapes.set(block, { block, tensor, dims, width: widthOf(dims), type });
      sites.push({ block, tensor, width: widthOf(dims) });
    }
    let pairs = this.opts.pairs;
    if (pairs) {
      for (const [i, j] of pairs) {
        if (!this.shapes.has(i) || !this.shapes.has(j)) throw new Error(`internal: span ${i}→${j} names an unknown block`);
        const why = rowCompatible(this.shapes.get(i)!, this.shapes.get(j)!);
        if (why) throw Object.assign(new RbaSpanError(spanMismatchMessage(i, j, why, this.shapes)), { file: this.opts.file });
      }
    } else {
      // Rows of a pair must line up (same rank and token/spatial grid); then the memory budget.
      const ok = sites.filter((s) => s).map((s) => s.block);
      const compatible: SpanPair[] = [];
      for (const i of ok) for (const j of ok) if (j > i && rowCompatible(this.shapes.get(i)!, this.shapes.get(j)!) === null) compatible.push([i, j]);
      const planned = planSpanPairs(sites, this.opts.budgetBytes ?? DEFAULT_SPAN_BUDGET_BYTES, compatible);
      pairs = planned.pairs;
      this.excluded = planned.excluded;
    }
    const stats = new SpanStats({ sites, pairs, heldOut: this.opts.heldOut ?? DEFAULT_HELD_OUT, seed: this.opts.seed ?? 0 });
    for (const s of sites) if (this.shapes.get(s.block)!.dims.length === 2) stats.estimates.set(s.block, 'pooled');
    if (sites.some((s) => this.shapes.get(s.block)!.dims.length === 2)) stats.estimate = 'pooled';
    return stats;
  }

  async onBatch(batch: SpanPassBatch | PassBatch, ctx: SpanPassContext | PassContext): Promise<void> {
    if (!this.sites.size) this.sites = sitesOf(ctx);
    const b = batch as SpanPassBatch;
    if (this.graphMode) {
      this.stats ??= this.graphStats!;
      this.graphStats = undefined;
      this.addGraphBatch(batch as PassBatch);
      return;
    }
    this.stats ??= this.init(b);
    const ids = Array.from({ length: b.size }, (_, k) => b.first + k);
    const mask = ctx.maskInput ? b.feeds[ctx.maskInput] : undefined;
    const rows = new Map<number, ReturnType<typeof toRows>>();
    for (const block of new Set(this.stats.config.pairs.flat())) {
      const t = b.tensor(this.sites.get(block)!);
      const rank = t.dims.length;
      const perSample = rank === 3 ? t.dims[1]! : rank === 4 ? t.dims[2]! * t.dims[3]! : 1;
      const keep = rank === 3 && mask ? validPositions(b.size, perSample, { data: mask.data as ArrayLike<number | bigint>, dims: mask.dims }) : undefined;
      if (!this.stats.estimates.has(block)) this.stats.estimates.set(block, rank === 2 ? 'pooled' : 'tokens');
      rows.set(block, toRows(t, b.size, keep));
    }
    await this.stats.add(rows, ids, this.matmul);
  }

  /** One batch of the in-graph form: the splits' products into the sums. */
  private addGraphBatch(b: PassBatch): void {
    const stats = this.stats!;
    const { seed, heldOut } = stats.config;
    const held = Array.from({ length: b.size }, (_, k) => isHeldOut(seed, b.first + k, heldOut));
    for (const split of ['train', 'heldOut'] as const) {
      // An empty split ran on a stand-in sample: nothing to add.
      if (!held.some((h) => h === (split === 'heldOut'))) continue;
      const p: SplitProducts = { products: new Map(), squares: new Map() };
      for (const i of stats.starts.keys()) p.products.set(i, b.gram(productId(split, i)).data);
      for (const j of new Set(stats.config.pairs.map((q) => q[1]))) if (!stats.starts.has(j)) p.squares.set(j, b.gram(squaresId(split, j)).data);
      stats.addProducts(split === 'heldOut', p);
    }
    stats.countSamples(b.size);
  }

  snapshot(): Snapshot {
    if (!this.stats) return { empty: true };
    return { ...this.stats.snapshot(), shapes: [...this.shapes.values()], excluded: this.excluded } as unknown as Snapshot;
  }

  merge(snap: Snapshot): void {
    if ((snap as { empty?: boolean }).empty) return;
    const other = snap as unknown as SpanStatsSnapshot & { shapes?: SiteShape[]; excluded?: SpanPair[] };
    if (!this.stats) {
      this.stats = SpanStats.fromSnapshot(other);
      for (const s of other.shapes ?? []) this.shapes.set(s.block, s);
      this.excluded = other.excluded ?? [];
    } else this.stats.mergeSnapshot(other);
  }

  async finalize(..._args: unknown[]): Promise<SpanStats> {
    if (!this.stats) throw Object.assign(new Error('the calibration data holds no samples'), { file: this.opts.file });
    return this.stats;
  }
}

/** Why rows of h_i and h_j do not pair up one to one, or null when they do. */
export function rowCompatible(a: SiteShape, b: SiteShape): string | null {
  if (a.dims.length !== b.dims.length) return `rank ${a.dims.length} (${fmtDims(a.dims)}) vs rank ${b.dims.length} (${fmtDims(b.dims)})`;
  if (a.dims.length === 3 && a.dims[1] !== b.dims[1]) return `${a.dims[1]} vs ${b.dims[1]} tokens`;
  if (a.dims.length === 4 && (a.dims[2] !== b.dims[2] || a.dims[3] !== b.dims[3])) {
    return `spatial size ${a.dims[2]}×${a.dims[3]} vs ${b.dims[2]}×${b.dims[3]}`;
  }
  return null;
}

export class RbaSpanError extends Error {}

/** Why span i→j cannot be mapped, and what the user can do instead. */
export function spanMismatchMessage(i: number, j: number, why: string, shapes: Map<number, SiteShape>): string {
  const a = shapes.get(i)!;
  // Runs of consecutive blocks with one layout: spans must start and end inside one run.
  const runs: number[][] = [];
  for (const s of [...shapes.values()].sort((x, y) => x.block - y.block)) {
    const last = runs[runs.length - 1];
    if (last && rowCompatible(shapes.get(last[last.length - 1]!)!, s) === null) last.push(s.block);
    else runs.push([s.block]);
  }
  const groups = runs.filter((r) => r.length > 1).map((r) => `${r[0]}..${r[r.length - 1]}`);
  const kind = a.dims.length === 4 ? 'a 1×1 convolution maps the channels at each position, so both ends need the same spatial size' : 'a map shared across tokens needs the same positions at both ends';
  const options = groups.length
    ? `pick I and J inside one group of blocks with the same layout (${groups.join(', ')}), keeping the resampling block; or replace the spans on either side of it with two --span options`
    : 'no two blocks share a layout here, so keep these blocks';
  return `span ${i}→${j} cannot be replaced by a linear map: block ${i} output ${fmtDims(a.dims)} and block ${j} output ${fmtDims(shapes.get(j)!.dims)} differ in ${why}; ${kind}. Options: ${options}`;
}

/** Shape with the batch dimension shown as N (it is the calibration batch, not the model's). */
export function fmtDims(d: readonly number[]): string {
  return `[${['N', ...d.slice(1)].join(', ')}]`;
}

