// What a client asks the engine to analyse: plain data, so it crosses thread and process borders.
import type { ImageOptions } from '../engine/calibration/types.js';
import type { Granularity, PoolingRequest, SequenceLayout } from '../engine/report/schema.js';

export interface AnalyzeRequest {
  /** The .onnx file. */
  model: string;
  data?: string;
  labels?: string;
  samples?: number;
  batch?: number;
  seed?: number;
  pooling?: PoolingRequest;
  /** Block output tensors, overriding detection. */
  blocks?: string[];
  blockInput?: string;
  /** `layer` (default) or `sublayer` (each residual sub-block: attention, MLP). */
  granularity?: Granularity;
  /** Layout of 3-D block outputs when the graph cannot tell: `ntd` or `tnd` (sequence first). */
  layout?: SequenceLayout;
  /** Block for the DR curve (default: last). */
  drBlock?: number;
  delta?: number;
  /** RBA spans I→J also fitted on every token in the same pass (exact normal equations). */
  fitSpans?: { from: number; to: number }[];
  seqLen?: number;
  imageSize?: number;
  tokenizer?: string;
  /** Image preprocessing for image-folder data. */
  image?: ImageOptions;
  device?: 'cpu' | 'cuda';
  threads?: number;
}
