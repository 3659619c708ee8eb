// The one module through which the extension host reaches the engine. Everything that runs ONNX
// Runtime runs in a child process (the engine's job runner: one process per job, killed on cancel
// after a 1 s grace), so a native crash or leak never reaches the extension host; decoding a model
// for the editor's summary runs in a worker thread (pure JS).
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { JobError, runJob } from '../engine/jobs/run-job.js';
import type { AnalysisReport } from '../engine/report/schema.js';
import type { AnalyzeRequest } from '../protocol/analyze-request.js';
import type { ModelSummary, SummaryReply } from './model-summary.js';

export interface EngineProgress {
  phase: string;
  done?: number;
  total?: number;
  message?: string;
}

export interface EngineRunOptions {
  signal?: AbortSignal;
  onProgress?: (p: EngineProgress) => void;
}

/** An engine failure: the message names the file when the engine knows it. */
export class EngineError extends Error {
  constructor(
    message: string,
    readonly file?: string,
    readonly cancelled = false,
  ) {
    super(message);
    this.name = cancelled ? 'AbortError' : 'EngineError';
  }
}

export class EngineClient {
  constructor(private readonly distDir: string) {}

  /** Runs one analysis job in its own process, ended after (also on cancel). */
  async analyze(request: AnalyzeRequest, opts: EngineRunOptions = {}): Promise<AnalysisReport> {
    try {
      const result = await runJob({ kind: 'analyze', request }, { workerScript: path.join(this.distDir, 'worker.js'), signal: opts.signal, onProgress: opts.onProgress });
      if (result.kind !== 'report') throw new EngineError(`the analysis returned a ${result.kind}, not a report`, request.model);
      return result.report;
    } catch (e) {
      throw toEngineError(e, opts.signal);
    }
  }

  /** Decodes a model's header facts (inputs, outputs, opset, parameters, blocks) off the host thread. */
  summarize(model: string, signal?: AbortSignal): Promise<ModelSummary> {
    return new Promise((resolve, reject) => {
      const worker = new Worker(path.join(this.distDir, 'summary-worker.js'), { workerData: { model } });
      let settled = false;
      const finish = (fn: () => void) => {
        if (settled) return;
        settled = true;
        signal?.removeEventListener('abort', onAbort);
        void worker.terminate();
        fn();
      };
      const onAbort = () => finish(() => reject(new EngineError('cancelled', model, true)));
      worker.on('message', (m: SummaryReply) =>
        finish(() => (m.ok ? resolve(m.summary) : reject(new EngineError(m.message, m.file ?? model)))),
      );
      worker.on('error', (e) => finish(() => reject(new EngineError(e.message, model))));
      worker.on('exit', (code) => finish(() => reject(new EngineError(`summary worker exited with code ${code}`, model))));
      if (signal?.aborted) onAbort();
      else signal?.addEventListener('abort', onAbort, { once: true });
    });
  }
}

function toEngineError(e: unknown, signal?: AbortSignal): EngineError {
  if (e instanceof EngineError) return e;
  const err = e as Error & { file?: string };
  const cancelled = signal?.aborted === true || err?.name === 'AbortError';
  if (err instanceof JobError) return new EngineError(err.message, err.file, cancelled);
  return new EngineError(err?.message ?? String(e), err?.file, cancelled);
}
