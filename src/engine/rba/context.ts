// What every RBA job opens first: the model, its blocks, the calibration data, and the span
// sites (h₋₁ … h_{L−1}) with their tensors.
import * as path from 'node:path';
import { DEFAULT_MAX_SAMPLES } from '../jobs/analyze.js';
import { calibrationHints, findMaskInput, modelInputs } from '../model/introspect.js';
import type { SessionSettings } from '../runtime/session.js';
import { detectBlocks, type BlockDetection } from '../blocks/detect.js';
import { GraphIndex } from '../blocks/graph-index.js';
import { openCalibration, type CalibrationBatch, type CalibrationSource, type InputSpec, type OpenOptions } from '../calibration/index.js';
export { toOrtFeeds } from '../runtime/feeds.js';
export { findMaskInput };
import { checkExternalData, loadModelFile, type LoadedModel } from '../onnx/model-file.js';

export interface RbaDataOptions extends SessionSettings {
  model: string;
  data?: string;
  labels?: string;
  samples?: number;
  batch?: number;
  seed?: number;
  blocks?: string[];
  blockInput?: string;
  seqLen?: number;
  imageSize?: number;
  tokenizer?: string;
  image?: OpenOptions['image'];
  /** Fraction of samples held out for the fit's quality and for verification (default 0.2). */
  heldOut?: number;
  signal?: AbortSignal;
}

export { DEFAULT_HELD_OUT } from './span-stats.js';
export const DEFAULT_BATCH = 32;

export interface ModelContext {
  loaded: LoadedModel;
  detection: BlockDetection;
  index: GraphIndex;
  inputs: InputSpec[];
  maskInput?: string;
  /** Block index (−1 … L−1) → tensor; −1 only when h₋₁ is known. */
  sites: Map<number, string>;
}

/** Loads a model and checks its external data (an unsafe location is the model file's fault). */
export async function loadChecked(file: string): Promise<LoadedModel> {
  const loaded = await loadModelFile(file);
  await checkExternalData(loaded).catch((e: Error & { file?: string }) => {
    if (e.file !== undefined && !path.isAbsolute(e.file)) e.file = file;
    throw e;
  });
  return loaded;
}

export async function openModelContext(opts: Pick<RbaDataOptions, 'model' | 'blocks' | 'blockInput'>): Promise<ModelContext> {
  const loaded = await loadChecked(opts.model);
  let detection: BlockDetection;
  try {
    detection = detectBlocks(loaded.model, { blocks: opts.blocks, blockInput: opts.blockInput });
  } catch (e) {
    throw Object.assign(e as Error, { file: opts.model });
  }
  const index = new GraphIndex(loaded.model.graph!);
  const inputs = modelInputs(loaded.model, opts.model);
  const sites = new Map<number, string>();
  if (detection.blockInput) sites.set(-1, detection.blockInput);
  for (const b of detection.blocks) sites.set(b.index, b.output);
  return { loaded, detection, index, inputs, maskInput: findMaskInput(inputs), sites };
}

export async function openSource(ctx: Pick<ModelContext, 'loaded' | 'inputs'>, opts: RbaDataOptions): Promise<CalibrationSource> {
  const hints = calibrationHints(ctx.loaded.model);
  if (opts.seqLen) hints.seqLen = opts.seqLen;
  if (opts.imageSize) hints.imageSize = opts.imageSize;
  return openCalibration({
    inputs: ctx.inputs,
    hints,
    data: opts.data,
    labels: opts.labels,
    samples: opts.samples,
    maxSamples: DEFAULT_MAX_SAMPLES,
    seed: opts.seed ?? 0,
    modelPath: ctx.loaded.path,
    tokenizer: opts.tokenizer,
    image: opts.image,
  });
}

/** The batch restricted to the given sample positions (every feed's dimension 0). */
export function selectSamples(batch: CalibrationBatch, keep: number[]): CalibrationBatch {
  if (keep.length === batch.size) return batch;
  const feeds: CalibrationBatch['feeds'] = {};
  for (const [name, t] of Object.entries(batch.feeds)) {
    const per = t.data.length / batch.size;
    const Ctor = t.data.constructor as new (n: number) => typeof t.data;
    const data = new Ctor(keep.length * per);
    keep.forEach((s, k) => (data as unknown as { set(a: ArrayLike<unknown>, o: number): void }).set(t.data.subarray(s * per, (s + 1) * per) as ArrayLike<unknown>, k * per));
    feeds[name] = { dtype: t.dtype, dims: [keep.length, ...t.dims.slice(1)], data };
  }
  // `first` keeps the batch's first id: the picked ids are not consecutive, callers track them.
  const out: CalibrationBatch = { feeds, first: batch.first, size: keep.length };
  if (batch.labels) out.labels = Int32Array.from(keep.map((s) => batch.labels![s]!));
  return out;
}
