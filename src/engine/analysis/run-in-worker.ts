// Runs an analysis in a worker thread (one per analysis, ended after): the caller's thread stays
// free, progress streams back, and `signal` cancels.
import { Worker } from 'node:worker_threads';
import type { AnalyzeRequest } from '../../protocol/analyze-request.js';
import type { FromWorkerMessage, ToWorkerMessage } from '../../protocol/worker.js';
import type { AnalysisReport } from '../report/schema.js';

export interface WorkerRunOptions {
  /** Path of the bundled worker script (dist/worker.js). */
  workerScript: string;
  signal?: AbortSignal;
  onProgress?: (p: Extract<FromWorkerMessage, { type: 'progress' }>) => void;
}

export class WorkerAnalysisError extends Error {
  constructor(message: string, name: string, readonly file?: string) {
    super(message);
    this.name = name;
  }
}

export function analyzeInWorker(request: AnalyzeRequest, opts: WorkerRunOptions): Promise<AnalysisReport> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(opts.workerScript);
    let settled = false;
    const finish = (fn: () => void) => {
      if (settled) return;
      settled = true;
      opts.signal?.removeEventListener('abort', onAbort);
      void worker.terminate();
      fn();
    };
    const post = (m: ToWorkerMessage) => worker.postMessage(m);
    const onAbort = () => post({ type: 'cancel' });
    worker.on('message', (m: FromWorkerMessage) => {
      switch (m.type) {
        case 'progress':
          opts.onProgress?.(m);
          return;
        case 'result':
          finish(() => resolve(m.report));
          return;
        case 'error':
          finish(() => reject(new WorkerAnalysisError(m.message, m.name, m.file)));
          return;
      }
    });
    worker.on('error', (e) => finish(() => reject(e)));
    worker.on('exit', (code) => finish(() => reject(new Error(`analysis worker exited with code ${code}`))));
    if (opts.signal?.aborted) {
      finish(() => reject(new WorkerAnalysisError('cancelled', 'AbortError')));
      return;
    }
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    post({ type: 'start', request });
  });
}
