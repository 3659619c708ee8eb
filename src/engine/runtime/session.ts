// ONNX Runtime sessions for (possibly instrumented) models, including models whose weights live
// in external data files.
import * as ort from 'onnxruntime-node';
import { encodeModel } from '../onnx/codec.js';
import { weightsByReference, type ModelBytes } from '../onnx/by-reference.js';
import { externalFiles } from '../onnx/model-file.js';
import { createSession } from './providers.js';
import type { ModelProto } from '../onnx/types.js';
import { exposeTensors } from '../blocks/instrument.js';

export type ExecutionDevice = 'cpu' | 'cuda';

// Errors reach the caller as exceptions; ORT's own console logging would only repeat them.
ort.env.logLevel = 'fatal';

export interface SessionSettings {
  device?: ExecutionDevice;
  /** ORT graph optimisation. Extra graph outputs always survive optimisation. Default 'all'. */
  optimization?: 'disabled' | 'basic' | 'extended' | 'all';
  threads?: number;
  /**
   * ONNX Runtime's CPU arena (default on). Off, freed activations go back to the system
   * allocator instead of an arena that only grows: lower peak RSS, a little slower.
   */
  arena?: boolean;
  /** Pre-pack MatMul weights at load (default on). Off, MatMuls read weights where they are. */
  prepack?: boolean;
  /**
   * ONNX Runtime's memory pattern (default off here, on in ONNX Runtime): one block planned from
   * the first run's shapes for every intermediate tensor. On a ViT-small at batch 32 it raised the
   * peak RSS of a plain forward from ~420 to ~575 MiB and ran no faster (npm run bench:memory).
   */
  memPattern?: boolean;
}

export interface OpenSession {
  session: ort.InferenceSession;
  /** Things the user should know (a GPU provider that was missing, so the CPU ran it). */
  warnings: string[];
  dispose(): Promise<void>;
}

export function sessionOptions(s: SessionSettings = {}): ort.InferenceSession.SessionOptions {
  const opts: ort.InferenceSession.SessionOptions = {
    graphOptimizationLevel: s.optimization ?? 'all',
    executionProviders: s.device === 'cuda' ? ['cuda', 'cpu'] : ['cpu'],
    logSeverityLevel: 3,
  };
  if (s.threads) opts.intraOpNumThreads = s.threads;
  if (s.arena === false) opts.enableCpuMemArena = false;
  opts.enableMemPattern = s.memPattern ?? false;
  if (s.prepack === false) opts.extra = { session: { disable_prepacking: '1' } };
  return opts;
}

/**
 * Opens a session for an in-memory model whose external data (if any) lives in `modelDir`.
 * ONNX Runtime reads external weights from that folder directly (by offset), so nothing is
 * copied or written beside the user's model. Locations were checked by `checkExternalData`.
 */
export async function openModelSession(model: ModelProto, modelDir: string, settings: SessionSettings = {}, file?: ModelBytes): Promise<OpenSession> {
  const opts = sessionOptions(settings);
  // Weights still inline in the file they came from are passed by reference to that file: the
  // encoded model stays small and ONNX Runtime reads (maps) the weights from disk itself.
  if (file !== undefined) model = weightsByReference(model, file);
  if (externalFiles(model).length > 0) {
    opts.extra = { session: { ...(opts.extra as { session?: object } | undefined)?.session, model_external_initializers_file_folder_path: modelDir } };
  }
  const { session, fallback } = await createSession(encodeModel(model), opts, settings.device);
  return { session, warnings: fallback ? [fallback] : [], dispose: () => session.release() };
}

/**
 * Ranks of `tensors` from one run of a copy of the model that exposes them raw (used when the
 * graph's value_info does not give them). `feeds` may be a single sample.
 */
export async function probeRanks(
  model: ModelProto, modelDir: string, tensors: string[], feeds: Record<string, ort.Tensor>, settings: SessionSettings = {}, file?: ModelBytes,
  /** Filled with each tensor's dims and element type from the same run, when given. */
  shapes?: Map<string, { dims: number[]; type: string }>,
): Promise<Map<string, number>> {
  const probed = await probeShapes(model, modelDir, tensors, feeds, settings, file);
  for (const [t, s] of probed) shapes?.set(t, s);
  return new Map([...probed].map(([t, s]) => [t, s.dims.length]));
}

/** Shapes and element types of `tensors` from the same one run (`probeRanks`). */
export async function probeShapes(model: ModelProto, modelDir: string, tensors: string[], feeds: Record<string, ort.Tensor>, settings: SessionSettings = {}, file?: ModelBytes): Promise<Map<string, { dims: number[]; type: string }>> {
  const probe = await openModelSession(exposeTensors(model, tensors), modelDir, { ...settings, optimization: 'basic' }, file);
  try {
    const out = await probe.session.run(feeds);
    const shapes = new Map<string, { dims: number[]; type: string }>();
    for (const t of tensors) shapes.set(t, { dims: (out[t]!.dims as readonly number[]).map(Number), type: out[t]!.type });
    for (const v of Object.values(out)) v.dispose?.();
    return shapes;
  } finally {
    await probe.dispose();
  }
}
