// The pass: one stream of calibration batches through one instrumented ONNX Runtime session,
// feeding many consumers (DESIGN §3). A consumer says which tensors it needs from the
// instrumented graph, sees every batch once, and keeps state that it can snapshot (JSON),
// merge with another shard's snapshot (exactly: sums add, id-keyed row sets unite), and
// finalize into its result.
//
// Sample identity: every sample has a global id 0..total−1 over the whole calibration set.
// Shard K of N reads the id range K·total/N … (K+1)·total/N; a batch always holds consecutive
// ids [first, first + size). Everything random that concerns a sample (synthetic data, held-out
// split, minibatch membership, subsampling) is a function of (seed, id), never of the order in
// which a process happens to see samples. So the merge of all shards' snapshots equals the state
// a single run over all ids would reach, up to the order of floating-point additions.
//
// Life cycle (runPass and the jobs drive it):
//   const c = new SomeConsumer(settings);           // fresh state = the identity of `merge`
//   runPass(source, model, [c, ...])                 // calls c.requests(ctx) once, c.onBatch(...) per batch
//   c.snapshot()                                     // → JSON (a shard's partial file)
//   fresh.merge(snapshotA); fresh.merge(snapshotB)   // merge = fold snapshots into a fresh consumer
//   await c.finalize(ctx)                            // → the consumer's result (metrics, accuracy, ...)

import type { MatmulBackend } from '../linalg/matmul.js';
import type { FeedTensor } from '../calibration/types.js';
import type { Pooling } from '../report/schema.js';
import type { RowLayout } from '../model/row-samples.js';

/** A block output by its index, or 'input' for h_{-1} (block 0's input). */
export type BlockKey = number | 'input';

/** Half-open range of global sample ids [start, end). */
export interface IdRange {
  start: number;
  end: number;
}

/**
 * A tensor a consumer needs, per batch, from the instrumented graph.
 *
 * - `pooled`: the pooled representation r_b of a block (DESIGN §2), float32 rows [rows, d].
 *   Rows are samples, or tokens for `tokens` pooling (padding positions removed).
 * - `raw`: a graph tensor exactly as the model computes it (e.g. a block output [N, T, d]).
 * - `gram`: a float64 cross-product computed inside the graph: Z = [Z_1 | Z_2 | … | 1] with
 *   Z_k the rows of `tensors[k]` (`rows: 'pooled'`: the pooled rows of those tensors;
 *   `rows: 'tokens'`: every token position, [N·T, d] from [N, T, d] or NCHW → [N·H·W, C], each
 *   row multiplied by the attention mask when the model has one, so padding rows are zero),
 *   with a trailing ones column (masked too) when `ones` is set. The batch then carries
 *   ZᵀZ, (D × D) row-major float64 with D = Σ d_k (+1). With `ones`, the last row holds the
 *   column sums and the corner the row count, so centred cross-products and the normal
 *   equations X̃ᵀX̃, X̃ᵀY of every pair of parts are sub-blocks of one matrix.
 *   `left` (optional): only Lᵀ[L | rest], L = the first `left` parts plus the ones column
 *   ([D_L × D]; cross-products.ts). `select` (optional): per batch, the positions (0 … size−1)
 *   of the samples whose rows enter (a graph input fed each batch; e.g. a train/held-out split).
 * - `output`: one of the model's own graph outputs (e.g. logits), by name.
 * - `rows`: a few token rows of several tensors, gathered inside the graph (model/row-samples.ts):
 *   per batch `draws` names k (sample, u) draws; tensor t gives row (sample, floor(u·T_t)) of
 *   its [N·T_t, d] rows, so the activations never leave ONNX Runtime whole.
 */
export type TensorRequest =
  | { kind: 'pooled'; key: BlockKey }
  | { kind: 'raw'; tensor: string }
  | { kind: 'gram'; id: string; tensors: string[]; rows: 'pooled' | 'tokens'; ones: boolean; left?: number; select?: GramSelect }
  | { kind: 'output'; name: string }
  | { kind: 'rows'; id: string; tensors: string[]; draws: (first: number, size: number) => RowDraws };

/** k draws of one batch: the sample's index in the batch (0 … size−1) and u in [0, 1). */
export interface RowDraws {
  sample: Int32Array;
  u: Float32Array;
}

/** Rows gathered for one tensor of a `rows` request (ONNX Runtime's data, valid during `onBatch`). */
export interface SampledRows {
  tensor: string;
  /** Row-major float32 [k × width]. */
  data: Float32Array;
  width: number;
  /** Position of each row within its sample (absent for [N, d] tensors: one row per sample). */
  positions?: BigInt64Array;
  /** The tensor's runtime shape in this batch. */
  dims: number[];
  /** How its rows were read: [N, d], [N, T, d], [T, N, d], [N, C, H, W] or [N, H, W, C]. */
  layout: RowLayout;
}

/** Samples of a batch that enter a `gram` (requests with the same `input` share the feed). */
export interface GramSelect {
  /** Graph input name (int64 [k]). */
  input: string;
  /** Positions in the batch, at least one (an int64 feed cannot be empty in every runtime). */
  positions: (first: number, size: number) => Int32Array;
}

/** Rows of a pooled representation for one batch. */
export interface PooledRows {
  /** Row-major float32 [rows × width]. */
  data: Float32Array;
  rows: number;
  width: number;
  /** Global sample id of each row (several rows share an id under `tokens` pooling). */
  ids: Int32Array;
  /** Token position of each row under `tokens` pooling (NCHW: h·W + w); absent otherwise. */
  positions?: Int32Array;
  /** Positions per sample before padding rows were removed (1 unless `tokens` pooling). */
  perSample: number;
}

/** A tensor handed to consumers (ONNX Runtime's data, not copied). */
export interface HostTensor {
  type: string;
  dims: readonly number[];
  data: Float32Array | Float64Array | Int32Array | BigInt64Array | Uint8Array | Uint16Array | ArrayLike<number | bigint>;
}

/** One batch as every consumer sees it. Data is valid only during `onBatch`. */
export interface PassBatch {
  /** Global id of the first sample; the batch holds ids first … first + size − 1. */
  first: number;
  size: number;
  /** Class label per sample of the batch, when the source has labels. */
  labels?: Int32Array;
  /** The tensors fed to the model (for checksums and shard writers). */
  feeds: Record<string, FeedTensor>;
  /** Pooled rows of a requested block. */
  pooled(key: BlockKey): PooledRows;
  /** A requested raw tensor or model output. */
  tensor(name: string): HostTensor;
  /** A requested in-graph cross-product (ZᵀZ, D×D float64). */
  gram(id: string): { data: Float64Array; dim: number };
  /** Rows of a `rows` request, per tensor in request order. */
  rows(id: string): SampledRows[];
}

/** What a consumer knows about the run (fixed before the first batch is handed out). */
export interface PassContext {
  /** Blocks in order: their output tensor names. */
  blocks: { index: number; name: string; output: string }[];
  /** Block 0's input h_{-1} (tensor name), when known. */
  blockInput: string | null;
  /** Pooling actually used for `pooled` requests (resolved from `auto` on the first batch). */
  pooling: Pooling;
  /** Width d_b of each block's pooled rows when the graph declares it (null: known from the first batch). */
  widths?: (number | null)[];
  /**
   * Shapes of the block outputs (and block input) where known before the first batch: from the
   * rank probe (dimension 0 is the probe's batch) or the graph's declared shapes (null: symbolic).
   */
  shapes?: Record<string, { dims: (number | null)[]; type?: string }>;
  /** Total number of samples of the whole calibration set (all shards). */
  totalSamples: number;
  /** The ids this process reads. A single run reads [0, totalSamples). */
  range: IdRange;
  seed: number;
  /** Graph input that carries an attention mask [N, T], if any. */
  maskInput?: string;
  /** The model's first graph output (logits for classifiers). */
  logitsOutput?: string;
}

/** What `finalize` may use besides the state. */
export interface FinalizeContext {
  matmul: MatmulBackend;
  /** Checked between heavy steps: finalize must stop with an AbortError when it fires. */
  signal?: AbortSignal;
  /** Collects warnings for the report. */
  warn(message: string): void;
}

/** JSON-serialisable state. Typed arrays inside are encoded with `encodeArray` (snapshot.ts). */
export type Snapshot = { [key: string]: unknown };

export interface PassConsumer<Result = unknown> {
  /** Unique within a pass; the key of its snapshot in a partial file. */
  readonly name: string;
  /** Tensors needed per batch. Called once, before the session is built. */
  requests(ctx: PassContext): TensorRequest[];
  onBatch(batch: PassBatch, ctx: PassContext): void | Promise<void>;
  /** State as JSON. Must not depend on how the ids were batched. */
  snapshot(): Snapshot;
  /**
   * Fold another shard's snapshot (of a consumer built with the same settings) into this state.
   * A fresh consumer is the identity, so merging every shard's snapshot into a fresh one gives
   * the single-run state. Must throw when the snapshot is incompatible (different widths, …).
   */
  merge(other: Snapshot): void | Promise<void>;
  finalize(ctx: FinalizeContext, pass: PassContext): Promise<Result>;
}

export interface PassProgress {
  phase: 'session' | 'forward';
  done: number;
  total: number;
}

export interface PassOptions {
  batchSize: number;
  /** The ids to read; default all. */
  range?: IdRange;
  signal?: AbortSignal;
  onProgress?: (p: PassProgress) => void;
}
