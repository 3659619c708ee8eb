// The analysis statistics as pass consumers: pooled pair statistics with the block Gram, and
// the minibatch HSIC terms. Their finalize hands the accumulators to `assembleMetrics`.
import type { MatmulBackend } from '../../linalg/matmul.js';
import { CovarianceAccumulator } from '../../stats/covariance.js';
import { HsicAccumulator } from '../../stats/hsic.js';
import { PairwiseAccumulator, type PairwiseResult } from '../../stats/pairwise.js';
import { ProbeAccumulator } from '../../stats/probe.js';
import { RowSampleAccumulator } from '../../stats/row-sample.js';
import type { BlockKey, FinalizeContext, PassBatch, PassConsumer, PassContext, Snapshot, TensorRequest } from '../types.js';

const blockKeys = (ctx: PassContext): number[] => ctx.blocks.map((b) => b.index);

/**
 * Cost model of the pooled statistics (state bytes; none grows with the number of samples beyond
 * the stated bounds). D = Σ_b d_b over the L blocks, n = rows (samples, or tokens).
 *
 * - Pair sums (BR, relative MSE, cosine, block influence): 24·L² + 40·L bytes, always.
 * - Block Gram ("gram" form; biased CKA and DR from centred cross-products): 8·(D+1)² + 16·D bytes,
 *   i.e. 16·d_i·d_j per pair of blocks and 8·d_b² + 16·d_b per block, whatever n. Its per-batch
 *   ZᵀZ is computed in float64 inside the ONNX graph when the widths are declared, else from the
 *   pooled rows through ONNX Runtime's float64 Gemm (same numbers up to rounding).
 * - Row sample ("rows" form; biased CKA and DR from rows, Gram or feature path by flops):
 *   (4·D + 12) bytes per row, at most `rowCap` rows (seeded by sample id, merged exactly).
 * - Minibatch HSIC (HsicConsumer): 8·(L² + L) bytes + the pending run(s): ≤ 2 × 256 rows × 8·D.
 * - Probe (ProbeConsumer): 8·(d² + d·(C+1)) bytes + ≤ 8192 held-out rows × (4·d + 40).
 *
 * Which form: with N total rows (all shards: the choice is the same in every shard),
 *   rows  when N ≤ rowCap and (4D+12)·N ≤ 8(D+1)² — every row kept, exact, and cheaper
 *         (few samples, wide blocks: e.g. a ViT-small, D = 12·384, at 512 samples: 9 MB vs 170 MB);
 *   gram  otherwise, when 8(D+1)² + 16D ≤ memoryBudget — exact for any N (narrow blocks, many samples);
 *   rows  otherwise, sampled to min(rowCap, budget / (4D+12)) rows (wide blocks, many samples).
 */
export interface StatisticsFormOptions {
  form?: 'auto' | 'gram' | 'rows';
  /** Bytes the similarity state may take (default 512 MiB). */
  memoryBudget?: number;
  /** Most rows the row form keeps (default 16384). */
  rowCap?: number;
}

export const DEFAULT_STATS_BUDGET = 512 * 2 ** 20;
export const DEFAULT_ROW_CAP = 16384;

export function chooseStatisticsForm(widths: number[], rows: number, opts: StatisticsFormOptions = {}): { form: 'gram' | 'rows'; cap: number } {
  const D = widths.reduce((a, b) => a + b, 0);
  const budget = opts.memoryBudget ?? DEFAULT_STATS_BUDGET;
  const rowCap = opts.rowCap ?? DEFAULT_ROW_CAP;
  const perRow = 4 * D + 12;
  const sampledCap = Math.max(1, Math.min(rowCap, Math.floor(budget / perRow)));
  if (opts.form === 'gram') return { form: 'gram', cap: 0 };
  if (opts.form === 'rows') return { form: 'rows', cap: rowCap };
  const gramBytes = CovarianceAccumulator.bytes(widths);
  if (rows <= rowCap && perRow * rows <= gramBytes) return { form: 'rows', cap: rowCap };
  if (gramBytes <= budget) return { form: 'gram', cap: 0 };
  return { form: 'rows', cap: sampledCap };
}

/**
 * BR, relative MSE, cosine, block influence (pair sums over rows), and biased CKA / DR from the
 * block Gram or a bounded row sample (see the cost model above).
 */
export class PooledStatisticsConsumer implements PassConsumer<{ pairwise: PairwiseResult; covariance: CovarianceAccumulator | RowSampleAccumulator; pairWarnings: string[] }> {
  readonly name = 'pooled-statistics';
  readonly pairwise: PairwiseAccumulator;
  private covariance: CovarianceAccumulator | null = null;
  private rowSample: RowSampleAccumulator | null = null;
  private inGraph = false;

  constructor(
    readonly blocks: number,
    private readonly opts: StatisticsFormOptions & { matmul?: MatmulBackend; seed?: number; totalSamples?: number } = {},
  ) {
    this.pairwise = new PairwiseAccumulator(blocks);
  }

  get form(): 'gram' | 'rows' | null {
    return this.covariance ? 'gram' : this.rowSample ? 'rows' : null;
  }

  private decide(widths: number[], rows: number): void {
    if (this.covariance || this.rowSample) return;
    const c = chooseStatisticsForm(widths, rows, this.opts);
    if (c.form === 'gram') this.covariance = new CovarianceAccumulator(this.blocks);
    else this.rowSample = new RowSampleAccumulator(this.blocks, c.cap, this.opts.seed ?? 0);
  }

  requests(ctx: PassContext): TensorRequest[] {
    const r: TensorRequest[] = blockKeys(ctx).map((key) => ({ kind: 'pooled', key }));
    if (ctx.blockInput) r.push({ kind: 'pooled', key: 'input' });
    // With declared widths (and one row per sample) the form is known now: the Gram can then be
    // formed inside the graph. Token rows can differ between blocks and drop padding: decided on
    // the first batch, from the rows.
    if (ctx.pooling !== 'tokens' && ctx.widths && ctx.widths.every((w) => w !== null)) {
      this.decide(ctx.widths as number[], ctx.totalSamples);
      if (this.covariance) {
        this.inGraph = true;
        r.push({ kind: 'gram', id: this.name, tensors: ctx.blocks.map((b) => b.output), rows: 'pooled', ones: true });
      }
    }
    return r;
  }

  async onBatch(batch: PassBatch, ctx: PassContext): Promise<void> {
    const rows = blockKeys(ctx).map((k) => batch.pooled(k));
    const n = rows[0]!.rows;
    this.decide(rows.map((r) => r.width), ctx.totalSamples * rows[0]!.perSample);
    const input = ctx.blockInput ? batch.pooled('input') : undefined;
    this.pairwise.add(rows, n, input && input.rows === n ? input : undefined);
    if (this.rowSample) this.rowSample.add(rows, n, rows[0]!.ids, rows[0]!.positions);
    else if (this.inGraph) {
      const g = batch.gram(this.name);
      this.covariance!.addGram(g.data, rows.map((r) => r.width));
      rows.forEach((r, b) => this.covariance!.observeRows(b, r.data, r.rows, r.width));
    } else {
      if (!this.opts.matmul) throw new Error('internal: the block Gram needs a matmul backend');
      await this.covariance!.addRows(rows, n, this.opts.matmul);
    }
  }

  snapshot(): Snapshot {
    return {
      pairwise: this.pairwise.snapshot(),
      form: this.form,
      covariance: this.covariance?.snapshot() ?? null,
      rows: this.rowSample?.snapshot() ?? null,
    };
  }

  merge(other: Snapshot): void {
    this.pairwise.merge(other.pairwise as Snapshot);
    if (other.form === null) return;
    if (this.form !== null && this.form !== other.form) throw new Error(`statistics form ${String(other.form)} differs from ${this.form}`);
    if (other.form === 'gram') {
      this.covariance ??= new CovarianceAccumulator(this.blocks);
      this.covariance.merge(other.covariance as Snapshot);
    } else {
      const s = other.rows as Snapshot;
      this.rowSample ??= new RowSampleAccumulator(this.blocks, s.cap as number, this.opts.seed ?? 0);
      this.rowSample.merge(s);
    }
  }

  async finalize(ctx?: FinalizeContext) {
    const pairWarnings: string[] = [];
    const matmul = ctx?.matmul ?? this.opts.matmul;
    if (this.covariance && matmul) await this.covariance.settle(matmul);
    const covariance = this.covariance ?? this.rowSample ?? new CovarianceAccumulator(this.blocks);
    return { pairwise: this.pairwise.finalize((m) => pairWarnings.push(m)), covariance, pairWarnings };
  }
}

/** Σ over fixed runs of ids of the unbiased HSIC₁ of every block pair. */
export class HsicConsumer implements PassConsumer<HsicAccumulator> {
  readonly name = 'minibatch-hsic';
  readonly acc: HsicAccumulator;

  constructor(blocks: number, totalSamples: number, private readonly matmul: MatmulBackend, batch?: number) {
    this.acc = new HsicAccumulator(blocks, totalSamples, batch);
  }

  requests(ctx: PassContext): TensorRequest[] {
    return blockKeys(ctx).map((key) => ({ kind: 'pooled', key }));
  }

  async onBatch(batch: PassBatch, ctx: PassContext): Promise<void> {
    const rows = blockKeys(ctx).map((k) => batch.pooled(k));
    const first = rows[0]!;
    if (this.acc.m === null) this.acc.setPositions(first.perSample);
    await this.acc.add(rows, first.ids, first.positions, this.matmul);
  }

  snapshot(): Snapshot {
    return this.acc.snapshot();
  }

  merge(other: Snapshot): void {
    this.acc.merge(other);
  }

  async finalize(): Promise<HsicAccumulator> {
    return this.acc;
  }
}

/** Linear-probe sums and held-out rows of one block (labels needed). */
export class ProbeConsumer implements PassConsumer<{ probe?: ProbeAccumulator; skip?: string }> {
  readonly name = 'probe';
  readonly acc: ProbeAccumulator;
  private skip?: string;

  constructor(private readonly block: BlockKey, seed: number, private readonly matmul: MatmulBackend, heldOut?: number) {
    this.acc = new ProbeAccumulator({ seed, heldOut });
  }

  requests(): TensorRequest[] {
    return [{ kind: 'pooled', key: this.block }];
  }

  async onBatch(batch: PassBatch, ctx: PassContext): Promise<void> {
    if (this.skip) return;
    if (ctx.pooling === 'tokens') {
      this.skip = 'probe skipped: rows are tokens (several rows per sample; labels are per sample)';
      return;
    }
    if (!batch.labels) {
      this.skip = 'probe skipped: the calibration data has no labels for some samples';
      return;
    }
    const r = batch.pooled(this.block);
    await this.acc.add(r.data, r.rows, r.width, r.ids, batch.labels, this.matmul);
  }

  snapshot(): Snapshot {
    return { skip: this.skip ?? null, acc: this.acc.snapshot() };
  }

  merge(other: Snapshot): void {
    if (typeof other.skip === 'string') this.skip ??= other.skip;
    this.acc.merge(other.acc as Snapshot);
  }

  async finalize(_ctx: FinalizeContext) {
    return this.skip ? { skip: this.skip } : { probe: this.acc };
  }
}
