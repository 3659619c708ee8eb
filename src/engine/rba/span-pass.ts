// The span statistics as a pass consumer (DESIGN §3: `onBatch`, `snapshot`, `merge`,
// `finalize`), and a driver that streams the calibration data once through a copy of the model
// exposing every block output, feeding every candidate span at once.
import type { CalibrationBatch } from '../calibration/index.js';
import type { MatmulBackend } from '../linalg/matmul.js';
import type { PassBatch, PassConsumer, PassContext, Snapshot, TensorRequest } from '../pass/types.js';
import { deriveSeed, hashUniform } from '../random.js';
import { toRows, validPositions, widthOf, type RawTensor } from './rows.js';
import { DEFAULT_HELD_OUT, DEFAULT_SPAN_BUDGET_BYTES, planSpanPairs, SpanStats, type SpanPair, type SpanSite, type SpanStatsSnapshot } from './span-stats.js';

/** Rows per sample in the analysis pass's span statistics (a token subsample bounds its cost). */
export const ANALYSIS_SPAN_ROWS_PER_SAMPLE = 16;

export interface SpanConsumerOptions {
  /** Say why in `disabled` instead of throwing when the block outputs cannot be mapped (analysis). */
  lenient?: boolean;
  /**
   * Token subsample: at most about this many rows per sample (positions kept by a hash of
   * (seed, sample id, position), so shards agree). Default: every row.
   */
  maxRowsPerSample?: number;
  /** Spans to accumulate; default: every span admitted by the memory budget. */
  pairs?: SpanPair[];
  budgetBytes?: number;
  heldOut?: number;
  seed?: number;
}

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
  /** Why spans are not estimated (lenient mode), e.g. block outputs of an unsupported rank. */
  disabled?: string;
  private sites = new Map<number, string>();

  constructor(
    readonly matmul: MatmulBackend,
    readonly opts: SpanConsumerOptions & { file?: string } = {},
  ) {}

  requests(ctx: SpanPassContext | PassContext): TensorRequest[] {
    this.sites = sitesOf(ctx);
    return [...this.sites.values()].map((tensor) => ({ kind: 'raw' as const, tensor }));
  }

  private init(batch: SpanPassBatch): SpanStats {
    const sites: SpanSite[] = [];
    for (const [block, tensor] of [...this.sites].sort((a, b) => a[0] - b[0])) {
      const t = batch.tensor(tensor);
      const dims = [...t.dims];
      if (dims.length < 2 || dims.length > 4) {
        throw Object.assign(new Error(`block ${block} output '${tensor}' has rank ${dims.length}; RBA maps [N, d], [N, T, d] or [N, C, H, W] tensors`), { file: this.opts.file });
      }
      this.shapes.set(block, { block, tensor, dims, width: widthOf(dims), type: t.type ?? 'float32' });
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
    if (this.disabled) return;
    if (!this.sites.size) this.sites = sitesOf(ctx);
    const b = batch as SpanPassBatch;
    if (!this.stats) {
      try {
        this.stats = this.init(b);
      } catch (e) {
        if (!this.opts.lenient) throw e;
        this.disabled = (e as Error).message;
        return;
      }
    }
    const ids = Array.from({ length: b.size }, (_, k) => b.first + k);
    const mask = ctx.maskInput ? b.feeds[ctx.maskInput] : undefined;
    const rows = new Map<number, ReturnType<typeof toRows>>();
    const cap = this.opts.maxRowsPerSample;
    const seed = deriveSeed(this.opts.seed ?? 0, 'rba-rows');
    for (const block of new Set(this.stats.config.pairs.flat())) {
      const t = b.tensor(this.sites.get(block)!);
      const rank = t.dims.length;
      const perSample = rank === 3 ? t.dims[1]! : rank === 4 ? t.dims[2]! * t.dims[3]! : 1;
      let keep = rank === 3 && mask ? validPositions(b.size, perSample, { data: mask.data as ArrayLike<number | bigint>, dims: mask.dims }) : undefined;
      if (cap !== undefined && perSample > cap) {
        keep ??= new Uint8Array(b.size * perSample).fill(1);
        const frac = cap / perSample;
        for (let k = 0; k < keep.length; k++) {
          const id = ids[Math.floor(k / perSample)]!;
          if (keep[k] && hashUniform(seed, id * 65536 + (k % perSample)) >= frac) keep[k] = 0;
        }
        this.stats.estimate = 'token-subsample';
        this.stats.estimates.set(block, 'token-subsample');
      } else if (!this.stats.estimates.has(block)) this.stats.estimates.set(block, rank === 2 ? 'pooled' : 'tokens');
      rows.set(block, toRows(t, b.size, keep));
    }
    await this.stats.add(rows, ids, this.matmul);
  }

  snapshot(): Snapshot {
    if (this.disabled) return { disabled: this.disabled };
    if (!this.stats) return { empty: true };
    return { ...this.stats.snapshot(), shapes: [...this.shapes.values()], excluded: this.excluded } as unknown as Snapshot;
  }

  merge(snap: Snapshot): void {
    if ((snap as { empty?: boolean }).empty) return;
    const why = (snap as { disabled?: string }).disabled;
    if (why) {
      this.disabled = why;
      return;
    }
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

