// The one module through which the extension host reaches the engine. Everything that runs ONNX
// Runtime runs in a child process (the engine's job runner: one process per job, killed on cancel
// after a 1 s grace), so a native crash or leak never reaches the extension host; decoding a model
// for the editor's summary runs in a worker thread (pure JS).
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { JobError, runJob } from '../engine/jobs/run-job.js';
import type { AnalysisReport } from '../engine/report/schema.js';
import type { AnalyzeRequest } from '../protocol/analyze-request.js';
import { fork } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { readdir, unlink } from 'node:fs/promises';
import type { RbaResult } from '../engine/rba/export.js';
import type { VerificationFigures } from '../protocol/webview.js';
import type { ModelSummary, SummaryReply } from './model-summary.js';
import type { FromRbaJob, RbaJobRequest, ToRbaJob } from './rba-job.js';

/** *Replace blocks from→to with a linear map* (the engine's span semantics: h_from → h_to). */
export interface ExportRequest {
  model: string;
  data?: string;
  samples?: number;
  batch?: number;
  from: number;
  to: number;
  method: 'linear' | 'skip' | 'lowrank';
  /** Where to write; never the model itself. */
  out: string;
}

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

  /**
   * Fits, writes and verifies the export in its own process (the engine's `blocklens rba`).
   * Cancel asks the job to stop, kills the process after 1 s if it has not, and removes any
   * half-written temp file of the output.
   */
  exportSpan(req: ExportRequest, opts: EngineRunOptions = {}): Promise<RbaResult> {
    return new Promise((resolve, reject) => {
      // A cancelled export is not an export: whatever it wrote beside the model goes, even when
      // the cancel arrives after the rename (during verification). Files there before stay.
      const before = outputsOf(req.out);
      const child = fork(path.join(this.distDir, 'rba-job.js'), [], {
        env: { ...process.env, ELECTRON_RUN_AS_NODE: '1' },
        stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
        serialization: 'json',
      });
      let stderr = '';
      child.stderr?.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-2000)));
      let settled = false;
      let killTimer: NodeJS.Timeout | undefined;
      const finish = (fn: () => void) => {
        if (settled) return;
        settled = true;
        clearTimeout(killTimer);
        opts.signal?.removeEventListener('abort', onAbort);
        const done = async () => {
          if (!opts.signal?.aborted) return fn();
          await removeTempFiles(req.out);
          for (const f of outputsOf(req.out)) if (!before.has(f)) await unlink(path.join(path.dirname(req.out), f)).catch(() => {});
          cancelled();
        };
        if (child.exitCode === null && child.signalCode === null) {
          child.once('exit', () => void done());
          child.kill('SIGKILL');
        } else void done();
      };
      const cancelled = () => reject(new EngineError('cancelled', req.model, true));
      const onAbort = () => {
        if (child.connected) child.send({ type: 'cancel' } satisfies ToRbaJob);
        killTimer = setTimeout(() => finish(cancelled), 1000);
      };
      child.on('message', (m: FromRbaJob) => {
        if (m.type === 'progress') opts.onProgress?.({ phase: m.phase });
        else if (m.type === 'result') finish(() => resolve(m.result));
        else finish(() => (opts.signal?.aborted ? cancelled() : reject(new EngineError(m.message, m.file))));
      });
      child.on('error', (e) => finish(() => reject(new EngineError(`cannot run the export process: ${e.message}`, req.model))));
      child.on('exit', (code, signal) =>
        finish(() => reject(new EngineError(`the export process ${signal ? `crashed (${signal})` : `exited with code ${code}`}${stderr ? `: ${stderr.trim().split('\n').pop()}` : ''}`, req.model))),
      );
      const request: RbaJobRequest = { model: req.model, data: req.data, samples: req.samples, batch: req.batch, spans: [{ from: req.from, to: req.to }], method: req.method, out: req.out, verify: true };
      child.send({ type: 'start', request } satisfies ToRbaJob);
      if (opts.signal?.aborted) onAbort();
      else opts.signal?.addEventListener('abort', onAbort, { once: true });
    });
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
/** Names in the output's folder that belong to it: the file and its external-data sidecars. */
function outputsOf(out: string): Set<string> {
  const base = path.basename(out);
  try {
    return new Set(readdirSync(path.dirname(out)).filter((n) => n === base || n.startsWith(`${base}.`)));
  } catch {
    return new Set();
  }
}
/** Temp files the engine's atomic writer leaves while writing `out` (`.<name>.<pid>.<rand>.tmp`). */
async function removeTempFiles(out: string): Promise<void> {
  const dir = path.dirname(out);
  const prefix = `.${path.basename(out)}.`;
  const names = await readdir(dir).catch(() => [] as string[]);
  for (const n of names) if (n.startsWith(prefix) && n.endsWith('.tmp')) await unlink(path.join(dir, n)).catch(() => {});
}

/** The verification figures the webview shows, from the engine's RBA result. */
export function verificationFigures(r: RbaResult): VerificationFigures {
  const v = r.verify;
  const span = r.spans[0];
  return {
    spans: r.spans.map((s) => ({ from: s.from, to: s.to })),
    ...(span ? { method: span.method } : {}),
    output: r.out,
    relMse: v?.relMse ?? null,
    cka: v?.cka ?? null,
    ...(v ? { top1Agreement: v.agreement } : {}),
    ...(v && (v.original.accuracy !== undefined || v.candidate.accuracy !== undefined)
      ? { accuracy: { before: v.original.accuracy ?? null, after: v.candidate.accuracy ?? null } }
      : {}),
    ...(v
      ? {
          parameters: { before: v.original.parameters, after: v.candidate.parameters },
          sizeBytes: { before: v.original.sizeBytes, after: v.candidate.sizeBytes },
          latencyMs: { before: v.original.medianBatchMs, after: v.candidate.medianBatchMs },
          samples: v.samples,
        }
      : {}),
  };
}
