// The analysis statistics as pass consumers: pooled pair statistics with the block Gram, and
// the minibatch HSIC terms. Their finalize hands the accumulators to `assembleMetrics`.
import type { MatmulBackend } from '../../linalg/matmul.js';
import { CovarianceAccumulator } from '../../stats/covariance.js';
import { HsicAccumulator } from '../../stats/hsic.js';
import { PairwiseAccumulator, type PairwiseResult } from '../../stats/pairwise.js';
import { ProbeAccumulator } from '../../stats/probe.js';
import type { BlockKey, FinalizeContext, PassBatch, PassConsumer, PassContext, Snapshot, TensorRequest } from '../types.js';

const blockKeys = (ctx: PassContext): number[] => ctx.blocks.map((b) => b.index);

/**
 * BR, relative MSE, cosine, block influence (pair sums over rows) and the block Gram ZᵀZ of the
 * pooled rows (biased CKA, DR covariance), computed inside the graph in float64.
 */
export class PooledStatisticsConsumer implements PassConsumer<{ pairwise: PairwiseResult; covariance: CovarianceAccumulator; pairWarnings: string[] }> {
  readonly name = 'pooled-statistics';
  readonly pairwise: PairwiseAccumulator;
  readonly covariance: CovarianceAccumulator;
  private inGraph = true;

  constructor(readonly blocks: number, private readonly opts: { inGraphGram?: boolean; matmul?: MatmulBackend } = {}) {
    this.pairwise = new PairwiseAccumulator(blocks);
    this.covariance = new CovarianceAccumulator(blocks);
  }

  requests(ctx: PassContext): TensorRequest[] {
    const r: TensorRequest[] = blockKeys(ctx).map((key) => ({ kind: 'pooled', key }));
    if (ctx.blockInput) r.push({ kind: 'pooled', key: 'input' });
    // Token rows can differ between blocks (refused by the pass) and drop padding: their Gram is formed from the rows.
    this.inGraph = this.opts.inGraphGram !== false && ctx.pooling !== 'tokens';
    if (this.inGraph) r.push({ kind: 'gram', id: this.name, tensors: ctx.blocks.map((b) => b.output), rows: 'pooled', ones: true });
    return r;
  }

  async onBatch(batch: PassBatch, ctx: PassContext): Promise<void> {
    const rows = blockKeys(ctx).map((k) => batch.pooled(k));
    const n = rows[0]!.rows;
    const input = ctx.blockInput ? batch.pooled('input') : undefined;
    this.pairwise.add(rows, n, input && input.rows === n ? input : undefined);
    if (this.inGraph) {
      const g = batch.gram(this.name);
      this.covariance.addGram(g.data, rows.map((r) => r.width));
      rows.forEach((r, b) => this.covariance.observeRows(b, r.data, r.rows, r.width));
    } else {
      if (!this.opts.matmul) throw new Error('internal: the block Gram needs a matmul backend');
      await this.covariance.addRows(rows, n, this.opts.matmul);
    }
  }

  snapshot(): Snapshot {
    return { pairwise: this.pairwise.snapshot(), covariance: this.covariance.snapshot() };
  }

  merge(other: Snapshot): void {
    this.pairwise.merge(other.pairwise as Snapshot);
    this.covariance.merge(other.covariance as Snapshot);
  }

  async finalize() {
    const pairWarnings: string[] = [];
    return { pairwise: this.pairwise.finalize((m) => pairWarnings.push(m)), covariance: this.covariance, pairWarnings };
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
