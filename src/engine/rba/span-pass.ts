// The span statistics as a pass consumer (DESIGN §3: `onBatch`, `snapshot`, `merge`,
// `finalize`), and a driver that streams the calibration data once through a copy of the model
// exposing every block output, feeding every candidate span at once.
import * as ort from 'onnxruntime-node';
import { openModelSession } from '../analysis/session.js';
import { exposeTensors } from '../blocks/instrument.js';
import type { CalibrationBatch } from '../calibration/index.js';
import { throwIfAborted } from '../calibration/types.js';
import type { MatmulBackend } from '../linalg/matmul.js';
import { DEFAULT_BATCH, DEFAULT_HELD_OUT, openSource, toOrtFeeds, type ModelContext, type RbaDataOptions } from './context.js';
import { toRows, validPositions, widthOf, type RawTensor } from './rows.js';
import { DEFAULT_SPAN_BUDGET_BYTES, planSpanPairs, SpanStats, type SpanPair, type SpanSite, type SpanStatsSnapshot } from './span-stats.js';

export interface SpanConsumerOptions {
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

/**
 * Accumulates the normal equations of every candidate span. The first batch fixes the site
 * widths; `tensors` says what the consumer needs from the model (raw block outputs).
 */
export class SpanStatsConsumer {
  readonly name = 'rba-spans';
  stats?: SpanStats;
  shapes = new Map<number, SiteShape>();
  excluded: SpanPair[] = [];
  private sampleBase = 0;

  constructor(
    readonly ctx: ModelContext,
    readonly matmul: MatmulBackend,
    readonly opts: SpanConsumerOptions = {},
  ) {}

  /** Raw tensors (and the mask input) this consumer reads each batch. */
  get tensors(): string[] {
    return [...this.ctx.sites.values()];
  }

  private init(outputs: Record<string, RawTensor>): SpanStats {
    const sites: SpanSite[] = [];
    for (const [block, tensor] of [...this.ctx.sites].sort((a, b) => a[0] - b[0])) {
      const t = outputs[tensor];
      if (!t) throw new Error(`internal: block output '${tensor}' missing from the run`);
      const dims = [...t.dims];
      if (dims.length < 2 || dims.length > 4) {
        throw Object.assign(new Error(`block ${block} output '${tensor}' has rank ${dims.length}; RBA maps [N, d], [N, T, d] or [N, C, H, W] tensors`), { file: this.ctx.loaded.path });
      }
      this.shapes.set(block, { block, tensor, dims, width: widthOf(dims), type: t.type ?? 'float32' });
      sites.push({ block, tensor, width: widthOf(dims) });
    }
    let pairs = this.opts.pairs;
    if (pairs) {
      for (const [i, j] of pairs) {
        if (!this.shapes.has(i) || !this.shapes.has(j)) throw new Error(`internal: span ${i}→${j} names an unknown block`);
        const why = rowCompatible(this.shapes.get(i)!, this.shapes.get(j)!);
        if (why) throw Object.assign(new RbaSpanError(spanMismatchMessage(i, j, why, this.shapes)), { file: this.ctx.loaded.path });
      }
    } else {
      const planned = planSpanPairs(sites, this.opts.budgetBytes ?? DEFAULT_SPAN_BUDGET_BYTES);
      pairs = planned.pairs;
      this.excluded = planned.excluded;
    }
    // Rows of a pair must line up: same rank and the same token/spatial grid.
    pairs = pairs.filter(([i, j]) => rowCompatible(this.shapes.get(i)!, this.shapes.get(j)!) === null || (this.excluded.push([i, j]), false));
    return new SpanStats({ sites, pairs, heldOut: this.opts.heldOut ?? DEFAULT_HELD_OUT, seed: this.opts.seed ?? 0 });
  }

  /** One batch: the run's outputs by tensor name, the batch fed, and its global sample ids. */
  async onBatch(outputs: Record<string, RawTensor>, batch: CalibrationBatch, ids?: number[]): Promise<void> {
    this.stats ??= this.init(outputs);
    const sampleIds = ids ?? Array.from({ length: batch.size }, (_, k) => this.sampleBase + k);
    this.sampleBase += batch.size;
    const mask = this.ctx.maskInput ? batch.feeds[this.ctx.maskInput] : undefined;
    const rows = new Map<number, ReturnType<typeof toRows>>();
    const needed = new Set(this.stats.config.pairs.flat());
    for (const block of needed) {
      const shape = this.shapes.get(block)!;
      const t = outputs[shape.tensor]!;
      const keep = t.dims.length === 3 && mask ? validPositions(batch.size, t.dims[1]!, { data: mask.data as ArrayLike<number | bigint>, dims: mask.dims }) : undefined;
      rows.set(block, toRows(t, batch.size, keep));
    }
    if (this.shapes.get(this.stats.config.pairs[0]?.[0] ?? -2)?.dims.length === 2) this.stats.estimate = 'pooled';
    await this.stats.add(rows, sampleIds, this.matmul);
  }

  snapshot(): SpanStatsSnapshot {
    if (!this.stats) throw new Error('no batches seen');
    return this.stats.snapshot();
  }

  merge(other: SpanStatsSnapshot): void {
    if (!this.stats) this.stats = SpanStats.fromSnapshot(other);
    else this.stats.mergeSnapshot(other);
  }

  finalize(): SpanStats {
    if (!this.stats) throw Object.assign(new Error('the calibration data holds no samples'), { file: this.ctx.loaded.path });
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

export function fmtDims(d: readonly number[]): string {
  return `[${d.join(', ')}]`;
}

function rawOf(t: ort.Tensor): RawTensor {
  return { data: t.data as ArrayLike<number>, dims: t.dims as number[], type: t.type };
}

export interface SpanPassResult {
  consumer: SpanStatsConsumer;
  stats: SpanStats;
  samples: number;
  forwardMs: number;
  accumulateMs: number;
  batchSize: number;
}

/**
 * Phase-1 driver: one forward pass over the calibration data with every block output exposed,
 * feeding the span consumer. (The engine core's runPass takes this role when it lands.)
 */
export async function runSpanPass(ctx: ModelContext, opts: RbaDataOptions, matmul: MatmulBackend, consumerOpts: SpanConsumerOptions = {}): Promise<SpanPassResult> {
  const source = await openSource(ctx, opts);
  const consumer = new SpanStatsConsumer(ctx, matmul, { heldOut: opts.heldOut, seed: opts.seed, ...consumerOpts });
  const session = await openModelSession(exposeTensors(ctx.loaded.model, consumer.tensors), ctx.loaded.dir, opts);
  let forwardMs = 0;
  let accumulateMs = 0;
  const batchSize = source.fixedBatchSize ?? opts.batch ?? DEFAULT_BATCH;
  try {
    for await (const batch of source.batches(batchSize, opts.signal)) {
      const t0 = performance.now();
      const result = await session.session.run(toOrtFeeds(batch));
      const t1 = performance.now();
      const outputs: Record<string, RawTensor> = {};
      for (const name of consumer.tensors) outputs[name] = rawOf(result[name]!);
      await consumer.onBatch(outputs, batch);
      for (const t of Object.values(result)) t.dispose?.();
      accumulateMs += performance.now() - t1;
      forwardMs += t1 - t0;
      throwIfAborted(opts.signal);
    }
  } finally {
    await session.dispose();
    await source.close();
  }
  const stats = consumer.finalize();
  return { consumer, stats, samples: stats.samples, forwardMs, accumulateMs, batchSize };
}
