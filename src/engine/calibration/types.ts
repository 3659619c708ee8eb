// Calibration sources: the data BlockLens feeds the model to measure its blocks.
// Everything here is plain Node (no vscode). See DESIGN.md §3.

import type { CalibrationInfo } from '../report/schema';

export type OrtDtype =
  | 'float32' | 'float64' | 'float16'
  | 'int64' | 'int32' | 'int16' | 'int8'
  | 'uint8' | 'uint16' | 'uint32' | 'uint64'
  | 'bool';

export interface InputSpec {
  name: string;
  dtype: OrtDtype;
  /** The model's declared shape; strings/null are symbolic. Dimension 0 is the batch dimension. */
  shape: (number | string | null)[];
}

export type FeedData =
  | Float32Array | Float64Array | Uint16Array | BigInt64Array | Int32Array | Int16Array
  | Int8Array | Uint8Array | Uint32Array | BigUint64Array;

/**
 * One input tensor of a batch. float16 data is IEEE half bits in a Uint16Array; bool data is a
 * Uint8Array of 0/1. Construct an onnxruntime `Tensor(dtype, data, dims)` from it directly.
 */
export interface FeedTensor {
  dtype: OrtDtype;
  dims: number[];
  data: FeedData;
}

export interface CalibrationBatch {
  feeds: Record<string, FeedTensor>;
  /** Global id of the batch's first sample: the batch holds ids first … first + size − 1. */
  first: number;
  /** Number of samples in this batch (the batch dimension of every feed). */
  size: number;
  /** Integer class labels for the samples of this batch, when the source has labels. */
  labels?: Int32Array;
}

export interface CalibrationSource {
  /**
   * What the source is. `checksum` is updated as batches stream (sha256 over the exact tensors
   * fed, see SampleHasher) and is final once an iteration of `batches()` has ended; `batchSize` is set by
   * `batches()`.
   */
  readonly info: CalibrationInfo;
  /** Number of samples one full iteration of `batches()` yields. */
  readonly samples: number;
  /**
   * Set when a model input declares a fixed (numeric, > 0) batch dimension: `batches()` then
   * only accepts that batch size, and `samples` was rounded down to a multiple of it.
   */
  readonly fixedBatchSize?: number;
  /**
   * Streams the data in batches of `batchSize` (the last one may be smaller). May be called
   * more than once; every iteration yields the same tensors in the same order. Aborting
   * `signal` stops the iteration with an `AbortError`. With `range`, only the samples with ids
   * range.start … range.end − 1 are read (sample k of the full stream has id k, whatever the
   * range), so shards of a calibration set read disjoint ranges. `info.checksum` then covers
   * that range (see SampleHasher: shard states combine into the full one).
   */
  batches(batchSize: number, signal?: AbortSignal, range?: SampleRange): AsyncIterable<CalibrationBatch>;
  close(): Promise<void>;
}

/** Half-open range of sample ids [start, end). */
export interface SampleRange {
  start: number;
  end: number;
}

export interface CalibrationHints {
  /** Input name → embedding table rows (token ids are drawn in [0, vocab)). */
  vocabSize?: Record<string, number>;
  /** Default for symbolic sequence dims (default 128, or the model's max position embeddings if known). */
  seqLen?: number;
  /** Default for symbolic H/W (224). */
  imageSize?: number;
}

export interface ImageOptions {
  /** Target [height, width]; only needed when the model's H/W are symbolic. */
  size?: [number, number];
  /** Shorter side is resized to this before the crop (default: the crop size, i.e. no margin). */
  resize?: number;
  /** 'center' (default): resize shorter side then center-crop; 'none': resize straight to H×W. */
  crop?: 'center' | 'none';
  /** '0-1' (default) divides by 255. */
  scale?: '0-1' | '0-255';
  mean?: number[];
  std?: number[];
  /** 'imagenet': mean [0.485,0.456,0.406], std [0.229,0.224,0.225] (in 0-1 units). Default 'none'. */
  preset?: 'imagenet' | 'none';
  color?: 'rgb' | 'grayscale' | 'auto';
  layout?: 'nchw' | 'nhwc' | 'auto';
  /** Resampling kernel; default 'bilinear' (torchvision's default). */
  interpolation?: 'nearest' | 'bilinear' | 'bicubic' | 'lanczos';
  /** Skip unreadable images (and say how many) instead of failing. */
  skipBad?: boolean;
  /** Images decoded at once (default 4). */
  concurrency?: number;
}

export interface OpenOptions {
  inputs: InputSpec[];
  hints?: CalibrationHints;
  /** .npy | .npz | folder of <input>.npy | image folder | .jsonl | .txt (tokenizer.json needed). */
  data?: string;
  /** .npy integer labels, one per sample of `data`. */
  labels?: string;
  /** Default: all available for files (up to `maxSamples`); 512 for synthetic. */
  samples?: number;
  /** When `samples` is not given, use at most this many (a seeded subset), without error. */
  maxSamples?: number;
  /** Default 0. */
  seed?: number;
  /** To find tokenizer.json beside the model. */
  modelPath?: string;
  /** Explicit tokenizer.json. */
  tokenizer?: string;
  image?: ImageOptions;
}

/** A problem with the calibration data; `file` is the file or folder it concerns, when there is one. */
export class CalibrationError extends Error {
  constructor(public file: string | undefined, message: string) {
    super(message);
    this.name = 'CalibrationError';
  }
}

/** The error `batches()` throws when its signal is aborted (name 'AbortError'). */
export function abortError(): Error {
  return new DOMException('Calibration was cancelled', 'AbortError');
}

export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw abortError();
}
