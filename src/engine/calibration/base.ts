// What every source shares: batch-size checks, cancellation, the running checksum.

import { createHash } from 'node:crypto';
import type { CalibrationInfo } from '../report/schema';
import { bytesOf } from './dtype';
import { CalibrationError, throwIfAborted, type CalibrationBatch, type CalibrationSource, type SampleRange } from './types';

/**
 * The data checksum, defined per sample so that shards combine into the single run's value:
 * h_i = sha256(id_i as 8 bytes LE ‖ the sample's bytes of each input, in input order), the
 * running state is Σ h_i mod 2^256 (h_i read as a big-endian number) plus the sample count,
 * and the checksum is sha256 over each input's name, dtype and per-sample shape, the count and
 * the sum. The sum does not depend on batching or on the order samples arrive in, the id in each
 * h_i ties every sample to its place, and two states merge by adding (`SampleHasher.merge`).
 */
export class SampleHasher {
  private sum = 0n;
  count = 0;

  constructor(private readonly inputs: CalibrationInfo['inputs']) {}

  update(batch: CalibrationBatch, first: number): void {
    const parts = this.inputs.map((inp) => {
      const t = batch.feeds[inp.name];
      if (!t) throw new Error(`internal: batch lacks input '${inp.name}'`);
      const bytes = bytesOf(t.data);
      return { bytes, per: bytes.length / batch.size };
    });
    const id = Buffer.alloc(8);
    for (let s = 0; s < batch.size; s++) {
      const h = createHash('sha256');
      id.writeBigUInt64LE(BigInt(first + s));
      h.update(id);
      for (const p of parts) h.update(p.bytes.subarray(s * p.per, (s + 1) * p.per));
      this.sum = (this.sum + BigInt('0x' + h.digest('hex'))) & MASK_256;
    }
    this.count += batch.size;
  }

  /** State for a snapshot: the sum as 64 hex digits and the count. */
  state(): { sum: string; count: number } {
    return { sum: this.sum.toString(16).padStart(64, '0'), count: this.count };
  }

  merge(other: { sum: string; count: number }): void {
    if (!/^[0-9a-f]{64}$/.test(other.sum) || !Number.isInteger(other.count) || other.count < 0) throw new Error('checksum state is malformed');
    this.sum = (this.sum + BigInt('0x' + other.sum)) & MASK_256;
    this.count += other.count;
  }

  digest(): string {
    const h = createHash('sha256');
    for (const inp of this.inputs) h.update(`${inp.name}\0${inp.dtype}\0${inp.shape.slice(1).join(',')}\0`);
    h.update(`${this.count}\0${this.state().sum}`);
    return h.digest('hex');
  }
}

const MASK_256 = (1n << 256n) - 1n;

export abstract class BaseSource implements CalibrationSource {
  abstract readonly info: CalibrationInfo;
  abstract readonly samples: number;
  fixedBatchSize?: number;
  protected closed = false;

  /**
   * Yield the batches of the samples `range.start … range.end − 1`, in order; each has exactly
   * `batchSize` samples except possibly the last. (`first` is filled in by `batches()`.)
   */
  protected abstract produce(batchSize: number, range: SampleRange, signal?: AbortSignal): AsyncGenerator<CalibrationBatch>;

  batches(batchSize: number, signal?: AbortSignal, range?: SampleRange): AsyncIterable<CalibrationBatch> {
    return this.iterate(batchSize, signal, range ?? { start: 0, end: this.samples });
  }

  private async *iterate(batchSize: number, signal: AbortSignal | undefined, range: SampleRange): AsyncGenerator<CalibrationBatch> {
    if (!Number.isInteger(batchSize) || batchSize < 1) {
      throw new CalibrationError(this.info.path, `batch size must be a positive integer, got ${batchSize}`);
    }
    if (this.fixedBatchSize !== undefined && batchSize !== this.fixedBatchSize) {
      throw new CalibrationError(
        this.info.path,
        `the model fixes its batch dimension to ${this.fixedBatchSize}; use batch size ${this.fixedBatchSize}, not ${batchSize}`,
      );
    }
    if (!Number.isInteger(range.start) || !Number.isInteger(range.end) || range.start < 0 || range.end > this.samples || range.start > range.end) {
      throw new CalibrationError(this.info.path, `sample range ${range.start}..${range.end} is not inside 0..${this.samples}`);
    }
    if (this.closed) throw new CalibrationError(this.info.path, 'the calibration source is closed');
    throwIfAborted(signal);
    this.info.batchSize = batchSize;
    this.info.checksum = undefined;
    const hasher = new SampleHasher(this.info.inputs);
    let next = range.start;
    for await (const batch of this.produce(batchSize, range, signal)) {
      throwIfAborted(signal);
      batch.first = next;
      hasher.update(batch, next);
      next += batch.size;
      this.info.checksum = hasher.digest();
      yield batch;
      throwIfAborted(signal);
    }
    if (next !== range.end) {
      throw new CalibrationError(this.info.path, `internal: yielded samples ${range.start}..${next}, expected ..${range.end}`);
    }
    if (range.start === range.end) this.info.checksum = hasher.digest();
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}

/** Split `n` items into consecutive [start, end) ranges of `size`. */
export function* chunks(n: number, size: number): Generator<[number, number]> {
  for (let s = 0; s < n; s += size) yield [s, Math.min(n, s + size)];
}
