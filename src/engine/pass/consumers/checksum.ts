// The data checksum as a consumer: per-sample hashes summed mod 2^256 (SampleHasher), so the
// shards of a calibration set combine into the single run's checksum.
import { SampleHasher } from '../../calibration/base.js';
import type { CalibrationInfo } from '../../report/schema.js';
import type { PassBatch, PassConsumer, Snapshot, TensorRequest } from '../types.js';

export class ChecksumConsumer implements PassConsumer<string> {
  readonly name = 'checksum';
  private readonly hasher: SampleHasher;

  constructor(inputs: CalibrationInfo['inputs']) {
    this.hasher = new SampleHasher(inputs);
  }

  requests(): TensorRequest[] {
    return [];
  }

  onBatch(batch: PassBatch): void {
    this.hasher.update({ feeds: batch.feeds, size: batch.size, first: batch.first }, batch.first);
  }

  snapshot(): Snapshot {
    return this.hasher.state();
  }

  merge(other: Snapshot): void {
    this.hasher.merge(other as { sum: string; count: number });
  }

  get samples(): number {
    return this.hasher.count;
  }

  async finalize(): Promise<string> {
    return this.hasher.digest();
  }
}
