// Execution providers: `--device cuda` (setting blocklens.executionProviders) runs on ONNX
// Runtime's CUDA provider when onnxruntime-node's GPU binaries are installed. Without them the
// session falls back to the CPU, and the caller gets a warning that says so and how to install.
import * as ort from 'onnxruntime-node';

export const CUDA_INSTALL_HINT =
  'install onnxruntime-node\'s GPU binaries (Linux x64, CUDA 12 and cuDNN 9 present): ' +
  'ONNXRUNTIME_NODE_INSTALL=cuda12 node node_modules/onnxruntime-node/script/install';

export interface CreatedSession {
  session: ort.InferenceSession;
  /** The providers the session was created with. */
  providers: string[];
  /** Set when the requested provider was not available and the CPU was used instead. */
  fallback?: string;
}

/** True when an ORT error is about a provider that is not there (not about the model). */
export function isMissingProvider(e: unknown): boolean {
  return /cuda|execution provider|shared library|providers?\b|libonnxruntime_providers/i.test((e as Error)?.message ?? '');
}

/**
 * Creates a session on the requested providers; if the GPU provider is missing, retries on the CPU
 * and reports the fallback. Other errors (a bad model) are thrown as they are.
 */
export async function createSession(
  model: Uint8Array | string,
  opts: ort.InferenceSession.SessionOptions,
  device: 'cpu' | 'cuda' = 'cpu',
): Promise<CreatedSession> {
  if (device !== 'cuda') {
    const providers = ['cpu'];
    return { session: await create(model, { ...opts, executionProviders: providers }), providers };
  }
  const providers = ['cuda', 'cpu'];
  try {
    return { session: await create(model, { ...opts, executionProviders: providers }), providers };
  } catch (e) {
    if (!isMissingProvider(e)) throw e;
    const reason = ((e as Error).message.split('\n')[0] ?? '').trim();
    const session = await create(model, { ...opts, executionProviders: ['cpu'] });
    return {
      session,
      providers: ['cpu'],
      fallback: `the CUDA execution provider is not available (${reason}); ran on the CPU instead. To use the GPU, ${CUDA_INSTALL_HINT}`,
    };
  }
}

function create(model: Uint8Array | string, opts: ort.InferenceSession.SessionOptions): Promise<ort.InferenceSession> {
  return typeof model === 'string' ? ort.InferenceSession.create(model, opts) : ort.InferenceSession.create(model, opts);
}
