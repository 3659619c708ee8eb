// The AnalysisReport: the contract between engine, CLI, webview and HTML page.
// One schema, versioned. Bump SCHEMA_VERSION on any incompatible change.

export const SCHEMA_VERSION = 1;

/** The warning of a report on synthetic calibration data (the panel shows it as its own note). */
export const SYNTHETIC_DATA_WARNING = "synthetic calibration data: these numbers show the model's structure, not its behaviour on a task; pass --data for real inputs";

export type Pooling = 'cls' | 'mean' | 'last' | 'gap' | 'tokens';
export type PoolingRequest = Pooling | 'auto';
export type DetectionMethod = 'scoped-names' | 'residual-adds' | 'repeated-units' | 'user';
/** A block is a whole layer, or one residual sub-block (attention or MLP). */
export type Granularity = 'layer' | 'sublayer';
/** Layout of 3-D block outputs: batch-first [N, T, d] or sequence-first [T, N, d]. */
export type SequenceLayout = 'ntd' | 'tnd';

/** A detection route that was tried or checked and not used, with the reason. */
export interface RejectedRoute {
  route: string;
  reason: string;
}

/** L×L matrix in block order; `null` where a value is undefined (widths differ, degenerate input). */
export type Matrix = (number | null)[][];

export interface BlockInfo {
  /** 0-based position in the block order. */
  index: number;
  /** Human name, e.g. the module scope `/encoder/layer.3`. */
  name: string;
  /** Name of the tensor the block hands onward (its output h_b). */
  output: string;
  /** Parameter count of the initializers used only by this block's nodes. */
  parameters: number;
}

export interface ModelInfo {
  path: string;
  sha256: string;
  irVersion: number;
  opsetVersion: number;
  parameters: number;
  producer?: string;
  /** Total file size including external data, in bytes. */
  sizeBytes?: number;
}

export interface DetectionInfo {
  method: DetectionMethod;
  /** Tensor taken as block 0's input h_{-1} (null when unknown). */
  blockInput: string | null;
  /** One line on how the blocks were found. */
  explanation: string;
  /** Why blockInput is h_{-1} (its role: the residual stream block 0 adds to, or the main path). */
  blockInputReason?: string;
  granularity?: Granularity;
  /** Routes tried before the one taken, or checked beside it, and why they were not used. */
  rejected?: RejectedRoute[];
  /** Layout of 3-D block outputs, when they are 3-D. */
  layout?: SequenceLayout;
}

export interface PreprocessingInfo {
  [key: string]: unknown;
}

export interface CalibrationInfo {
  /** 'synthetic' | 'npy' | 'npz' | 'npy-folder' | 'images' | 'jsonl' | 'text' */
  source: string;
  /** File or folder path, absent for synthetic. */
  path?: string;
  samples: number;
  seed: number;
  batchSize: number;
  /** sha256 over the exact input tensors fed to the model, in order. */
  checksum?: string;
  /** What was actually done to the data (resize, crop, scale, mean/std, padding...). */
  preprocessing?: PreprocessingInfo;
  /** Per input: name, dtype, shape used. */
  inputs: { name: string; dtype: string; shape: number[]; fill?: string }[];
  labels?: { source: string; classes: number };
  /** Fraction held out for probes and fits. */
  heldOut?: number;
  note?: string;
}

export interface PoolingInfo {
  requested: PoolingRequest;
  used: Pooling;
  reason: string;
  /** What `auto` looked at, one line each (token-0 read-out, causal mask evaluation, rank). */
  evidence?: string[];
}

export interface MsrsInfo {
  value: number | null;
  normalized: number | null;
  beta: number;
  tau: number;
  /** Number of blocks L the sum runs over (MSRS is not normalised). */
  layers: number;
}

export interface DrInfo {
  block: number;
  fractions: number[];
  mean: (number | null)[];
  std: (number | null)[];
  delta: number;
  value: number | null;
  seeds: number;
  /** Linear-probe DR, present when labels are given. */
  probe?: ProbeDrInfo;
}

export interface ProbeDrInfo {
  fractions: number[];
  /** Held-out accuracy per fraction (mean and std over seeds). */
  mean: number[];
  std: number[];
  fullAccuracy: number;
  value: number | null;
  delta: number;
  /** Per-class held-out accuracy per fraction (mean over seeds): [fraction][class]. */
  perClass: number[][];
  gini: number[];
  cv: number[];
  classes: number;
  trainSamples: number;
  testSamples: number;
}

export interface Metrics {
  br: (number | null)[];
  /** Scale-free BR: ‖Δ‖² / ‖h_{b−1}‖² per block. */
  relativeMse?: (number | null)[];
  /** ShortGPT block influence 1 − E[cos(h_{b−1}, h_b)]. */
  blockInfluence?: (number | null)[];
  brMatrix: Matrix;
  cosine: Matrix;
  cka: Matrix;
  ckaUnbiased: Matrix;
  msrs: MsrsInfo;
  dr: DrInfo | null;
}

export interface ModelAccuracy {
  accuracy: number;
  samples: number;
  perClass?: number[];
}

/**
 * One candidate RBA span (DESIGN §2, "RBA fit"): blocks from+1..to replaced by a linear map
 * from h_from to h_to (from = −1 is block 0's input). Errors are on held-out rows.
 */
export interface SpanEntry {
  from: number;
  to: number;
  blocksRemoved: number;
  /** Held-out ‖Y − Ŷ‖² / ‖Y‖² of the linear map (null without held-out rows). */
  relErr: number | null;
  /** Held-out R² of the linear map. */
  r2: number | null;
  /**
   * The map's held-out error carried (linearly, by the fitted map h_to → h_last) to the last
   * block's output, relative to ‖h_last‖²: what the planner ranks by. Absent when that map was
   * not accumulated.
   */
  relErrAtLast?: number | null;
  /** The same two for `skip` (identity), null when the widths differ. */
  skipRelErr: number | null;
  skipR2: number | null;
  /** Parameters of the removed blocks minus those of the map. */
  paramsSaved: number;
  /** Rows are all tokens, a token subsample, or pooled rows (one per sample). */
  estimate: 'tokens' | 'token-subsample' | 'pooled';
  rows: { train: number; heldOut: number };
}

export interface AnalysisReport {
  schemaVersion: number;
  tool: { name: 'blocklens'; version: string };
  createdAt: string;
  model: ModelInfo;
  blocks: BlockInfo[];
  detection: DetectionInfo;
  calibration: CalibrationInfo;
  pooling: PoolingInfo;
  warnings: string[];
  metrics: Metrics;
  modelAccuracy?: ModelAccuracy;
  /** Candidate RBA spans, best (lowest held-out relErr) first. Additive: older reports lack it. */
  spans?: SpanEntry[];
  /** Spans left out of `spans` by the memory budget, as [from, to]. */
  spansExcluded?: [number, number][];
  timings?: { [phase: string]: number };
}
