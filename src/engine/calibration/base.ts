// What every source shares: batch-size checks, cancellation, the running checksum.

import { createHash, type Hash } from 'node:crypto';
import type { CalibrationInfo } from '../report/schema';
import { bytesOf } from './dtype';
import { CalibrationError, throwIfAborted, type CalibrationBatch, type CalibrationSource } from './types';

/**
 * sha256 over the fed tensors. One running hash per input over its element bytes
 * (little-endian) in sample order, combined at the end with each input's name, dtype and
 * per-sample shape. Because each input is hashed on its own, the checksum does not depend on
 * the batch size: the same samples fed in any batching give the same checksum.
 */
export class FeedHasher {
  private readonly hashes: Hash[];

  constructor(private readonly inputs: CalibrationInfo['inputs']) {
    this.hashes = inputs.map(() => createHash('sha256'));
  }

  update(batch: CalibrationBatch): void {
    this.inputs.forEach((inp, i) => {
      const t = batch.feeds[inp.name];
      if (!t) throw new Error(`internal: batch lacks input '${inp.name}'`);
      this.hashes[i].update(bytesOf(t.data));
    });
  }

  digest(): string {
    const h = createHash('sha256');
    this.inputs.forEach((inp, i) => {
      h.update(`${inp.name}\0${inp.dtype}\0${inp.shape.slice(1).join(',')}\0`);
      h.update(this.hashes[i].copy().digest());
    });
    return h.digest('hex');
  }
}

export abstract class BaseSource implements CalibrationSource {
  abstract readonly info: CalibrationInfo;
  abstract readonly samples: number;
  fixedBatchSize?: number;
  protected closed = false;

  /** Yield the batches; each has exactly `batchSize` samples except possibly the last. */
  protected abstract produce(batchSize: number, signal?: AbortSignal): AsyncGenerator<CalibrationBatch>;

  batches(batchSize: number, signal?: AbortSignal): AsyncIterable<CalibrationBatch> {
    return this.iterate(batchSize, signal);
  }

  private async *iterate(batchSize: number, signal?: AbortSignal): AsyncGenerator<CalibrationBatch> {
    if (!Number.isInteger(batchSize) || batchSize < 1) {
      throw new CalibrationError(this.info.path, `batch size must be a positive integer, got ${batchSize}`);
    }
    if (this.fixedBatchSize !== undefined && batchSize !== this.fixedBatchSize) {
      throw new CalibrationError(
        this.info.path,
        `the model fixes its batch dimension to ${this.fixedBatchSize}; use batch size ${this.fixedBatchSize}, not ${batchSize}`,
      );
    }
    if (this.closed) throw new CalibrationError(this.info.path, 'the calibration source is closed');
    throwIfAborted(signal);
    this.info.batchSize = batchSize;
    this.info.checksum = undefined;
    const hasher = new FeedHasher(this.info.inputs);
    let count = 0;
    for await (const batch of this.produce(batchSize, signal)) {
      throwIfAborted(signal);
      hasher.update(batch);
      count += batch.size;
      this.info.checksum = hasher.digest();
      yield batch;
      throwIfAborted(signal);
    }
    if (count !== this.samples) {
      throw new CalibrationError(this.info.path, `internal: yielded ${count} samples, expected ${this.samples}`);
    }
    if (this.samples === 0) this.info.checksum = hasher.digest();
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}

/** Split `n` items into consecutive [start, end) ranges of `size`. */
export function* chunks(n: number, size: number): Generator<[number, number]> {
  for (let s = 0; s < n; s += size) yield [s, Math.min(n, s + size)];
}
