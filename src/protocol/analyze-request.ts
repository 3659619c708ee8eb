// What a client asks the engine to analyse: plain data, so it crosses thread and process borders.
import type { PoolingRequest } from '../engine/report/schema.js';

export interface AnalyzeRequest {
  model: string;
  data?: string;
  labels?: string;
  samples?: number;
  batch?: number;
  seed?: number;
  pooling?: PoolingRequest;
  blocks?: string[];
  blockInput?: string;
  drBlock?: number;
  delta?: number;
  seqLen?: number;
  imageSize?: number;
  tokenizer?: string;
  device?: 'cpu' | 'cuda';
  threads?: number;
}
