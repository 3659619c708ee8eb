// The model's own top-1 accuracy on labelled calibration data, as mergeable counts.
import type { ModelAccuracy } from '../../report/schema.js';
import type { PassBatch, PassConsumer, PassContext, Snapshot, TensorRequest } from '../types.js';

export class AccuracyConsumer implements PassConsumer<ModelAccuracy | undefined> {
  readonly name = 'model-accuracy';
  /** label → [hits, count] */
  private perClass = new Map<number, [number, number]>();

  requests(ctx: PassContext): TensorRequest[] {
    return ctx.logitsOutput ? [{ kind: 'output', name: ctx.logitsOutput }] : [];
  }

  onBatch(batch: PassBatch, ctx: PassContext): void {
    if (!batch.labels || !ctx.logitsOutput) return;
    const logits = batch.tensor(ctx.logitsOutput);
    // Scored only when the output is one row of class scores per sample.
    if (logits.dims.length !== 2 || logits.dims[0] !== batch.size) return;
    const c = logits.dims[1]!;
    const v = logits.data as ArrayLike<number>;
    for (let i = 0; i < batch.size; i++) {
      let best = 0;
      for (let k = 1; k < c; k++) if (v[i * c + k]! > v[i * c + best]!) best = k;
      const y = batch.labels[i]!;
      const pc = this.perClass.get(y) ?? [0, 0];
      pc[0] += best === y ? 1 : 0;
      pc[1] += 1;
      this.perClass.set(y, pc);
    }
  }

  snapshot(): Snapshot {
    return { perClass: [...this.perClass.entries()].sort((a, b) => a[0] - b[0]) };
  }

  merge(other: Snapshot): void {
    for (const [y, [h, n]] of other.perClass as [number, [number, number]][]) {
      const pc = this.perClass.get(y) ?? [0, 0];
      pc[0] += h;
      pc[1] += n;
      this.perClass.set(y, pc);
    }
  }

  async finalize(): Promise<ModelAccuracy | undefined> {
    if (this.perClass.size === 0) return undefined;
    let correct = 0;
    let counted = 0;
    for (const [h, n] of this.perClass.values()) {
      correct += h;
      counted += n;
    }
    const classes = Math.max(...this.perClass.keys()) + 1;
    const perClass = Array.from({ length: classes }, (_, k) => {
      const pc = this.perClass.get(k);
      return pc ? pc[0] / pc[1] : 0;
    });
    return { accuracy: correct / counted, samples: counted, perClass };
  }
}
