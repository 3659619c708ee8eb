// Calibration batches as ONNX Runtime feeds.
import * as ort from 'onnxruntime-node';
import type { CalibrationBatch } from '../calibration/types.js';

export function toOrtFeeds(batch: CalibrationBatch): Record<string, ort.Tensor> {
  const feeds: Record<string, ort.Tensor> = {};
  for (const [name, t] of Object.entries(batch.feeds)) {
    feeds[name] = new ort.Tensor(t.dtype as ort.Tensor.Type, t.data as ort.Tensor.DataType, t.dims);
  }
  return feeds;
}

/** The batch's first sample alone (enough to learn ranks, at 1/batch of the cost). */
export function firstSampleFeeds(batch: CalibrationBatch): Record<string, ort.Tensor> {
  return firstSamplesFeeds(batch, 1);
}

/** The batch's first `n` samples (n ≤ batch size). */
export function firstSamplesFeeds(batch: CalibrationBatch, n: number): Record<string, ort.Tensor> {
  const feeds: Record<string, ort.Tensor> = {};
  for (const [name, t] of Object.entries(batch.feeds)) {
    const per = t.data.length / batch.size;
    feeds[name] = new ort.Tensor(t.dtype as ort.Tensor.Type, t.data.subarray(0, n * per) as ort.Tensor.DataType, [n, ...t.dims.slice(1)]);
  }
  return feeds;
}
