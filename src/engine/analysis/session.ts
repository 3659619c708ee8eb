// ONNX Runtime sessions for (possibly instrumented) models, including models whose weights live
// in external data files: those are written to a private temp folder beside links to the
// original weight files, so nothing is written next to the user's model.
import { mkdtemp, mkdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { encodeModel } from '../onnx/codec.js';
import { externalFiles, resolveExternalPath } from '../onnx/model-file.js';
import type { ModelProto } from '../onnx/types.js';

export type ExecutionDevice = 'cpu' | 'cuda';

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

/** Opens a session for an in-memory model whose external data (if any) lives in `modelDir`. */
export async function openModelSession(model: ModelProto, modelDir: string, settings: SessionSettings = {}): Promise<OpenSession> {
  const files = externalFiles(model);
  const bytes = encodeModel(model);
  if (files.length === 0) {
    const session = await ort.InferenceSession.create(bytes, sessionOptions(settings));
    return { session, dispose: () => session.release() };
  }
  const dir = await mkdtemp(path.join(tmpdir(), 'blocklens-'));
  try {
    for (const loc of files) {
      const target = resolveExternalPath(modelDir, loc);
      const link = path.join(dir, loc);
      await mkdir(path.dirname(link), { recursive: true });
      await symlink(target, link);
    }
    const file = path.join(dir, 'model.onnx');
    await writeFile(file, bytes);
    const session = await ort.InferenceSession.create(file, sessionOptions(settings));
    return {
      session,
      dispose: async () => {
        await session.release();
        await rm(dir, { recursive: true, force: true });
      },
    };
  } catch (e) {
    await rm(dir, { recursive: true, force: true });
    throw e;
  }
}
