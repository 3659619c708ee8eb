// ONNX Runtime sessions for (possibly instrumented) models, including models whose weights live
// in external data files.
import * as ort from 'onnxruntime-node';
import { encodeModel } from '../onnx/codec.js';
import { externalFiles } from '../onnx/model-file.js';
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
}

export interface OpenSession {
  session: ort.InferenceSession;
  dispose(): Promise<void>;
}

export function sessionOptions(s: SessionSettings = {}): ort.InferenceSession.SessionOptions {
  const opts: ort.InferenceSession.SessionOptions = {
    graphOptimizationLevel: s.optimization ?? 'all',
    executionProviders: s.device === 'cuda' ? ['cuda', 'cpu'] : ['cpu'],
    logSeverityLevel: 3,
  };
  if (s.threads) opts.intraOpNumThreads = s.threads;
  return opts;
}

/**
 * Opens a session for an in-memory model whose external data (if any) lives in `modelDir`.
 * ONNX Runtime reads external weights from that folder directly (by offset), so nothing is
 * copied or written beside the user's model. Locations were checked by `checkExternalData`.
 */
export async function openModelSession(model: ModelProto, modelDir: string, settings: SessionSettings = {}): Promise<OpenSession> {
  const opts = sessionOptions(settings);
  if (externalFiles(model).length > 0) {
    opts.extra = { session: { model_external_initializers_file_folder_path: modelDir } };
  }
  let session: ort.InferenceSession;
  try {
    session = await ort.InferenceSession.create(encodeModel(model), opts);
  } catch (e) {
    if (settings.device === 'cuda' && /cuda|shared library|providers/i.test((e as Error).message)) {
      throw new Error(
        'the CUDA execution provider is not available: install onnxruntime-node with its GPU binaries ' +
          '(ONNXRUNTIME_NODE_INSTALL=cuda12 node node_modules/onnxruntime-node/script/install, with CUDA 12 and cuDNN 9 present) or use --device cpu',
      );
    }
    throw e;
  }
  return { session, dispose: () => session.release() };
}

/**
 * Ranks of `tensors` from one run of a copy of the model that exposes them raw (used when the
 * graph's value_info does not give them). `feeds` may be a single sample.
 */
export async function probeRanks(model: ModelProto, modelDir: string, tensors: string[], feeds: Record<string, ort.Tensor>, settings: SessionSettings = {}): Promise<Map<string, number>> {
  const probe = await openModelSession(exposeTensors(model, tensors), modelDir, { ...settings, optimization: 'basic' });
  try {
    const out = await probe.session.run(feeds);
    const ranks = new Map<string, number>();
    for (const t of tensors) ranks.set(t, out[t]!.dims.length);
    return ranks;
  } finally {
    await probe.dispose();
  }
}
