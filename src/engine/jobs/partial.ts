// Partial analysis files: one shard's pass state, merged by `blocklens merge`.
//
// {
//   format: 'blocklens-partial', version: 1, tool,
//   modelIdentity: sha256 over the .onnx bytes and every external data file,
//   settings: the request fields that change numbers (numericSettings),
//   shard: { index, count }, range: { start, end } (sample ids), totalSamples, labels,
//   meta: everything of the report that does not come from the data (model, blocks, pooling, ...),
//   consumers: { [consumer name]: snapshot }   // typed arrays as base64 of their LE bytes
// }
import type { AnalysisReport, CalibrationInfo } from '../report/schema.js';
import type { IdRange, Snapshot } from '../pass/types.js';

export const PARTIAL_FORMAT = 'blocklens-partial';
export const PARTIAL_VERSION = 1;

export interface PartialMeta {
  model: AnalysisReport['model'];
  blocks: AnalysisReport['blocks'];
  detection: AnalysisReport['detection'];
  calibration: CalibrationInfo;
  pooling: AnalysisReport['pooling'];
  warnings: string[];
  seed: number;
  drBlock?: number;
  delta?: number;
}

export interface AnalysisPartial {
  format: typeof PARTIAL_FORMAT;
  version: number;
  tool: string;
  modelIdentity: string;
  settings: Record<string, unknown>;
  shard: { index: number; count: number };
  range: IdRange;
  totalSamples: number;
  labels: boolean;
  meta: PartialMeta;
  timings: Record<string, number>;
  consumers: Record<string, Snapshot>;
}

/** Shard k of n (0-based) of ids 0..total−1: contiguous, sizes differ by at most one. */
export function shardRange(total: number, index: number, count: number): IdRange {
  return { start: Math.floor((index * total) / count), end: Math.floor(((index + 1) * total) / count) };
}

/** Parses "K/N" (1-based K) into a 0-based shard. */
export function parseShard(text: string): { index: number; count: number } {
  const m = /^(\d+)\/(\d+)$/.exec(text.trim());
  if (!m) throw new Error(`--shard expects K/N (e.g. 2/4), got '${text}'`);
  const k = Number(m[1]);
  const n = Number(m[2]);
  if (n < 1 || k < 1 || k > n) throw new Error(`--shard ${text}: K must be in 1..N`);
  return { index: k - 1, count: n };
}
