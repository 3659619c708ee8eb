// Running an analysis from the host: calibration choice → settings → cache lookup → the engine
// (off the host thread) under a cancellable withProgress notification → cached report. Errors
// become a notification with *Show Log*; cancelling leaves no file and no worker behind.
import { stat } from 'node:fs/promises';
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { AnalysisReport } from '../engine/report/schema.js';
import type { AnalyzeRequest } from '../protocol/analyze-request.js';
import type { CalibrationPicker } from './calibration-picker.js';
import { EngineError, type EngineClient, type EngineProgress } from './engine-client.js';
import { log, showError } from './log.js';
import { cacheKey, dataFingerprint, sha256File, type ReportCache } from './report-cache.js';
import { readSettings } from './settings.js';

export interface AnalyzeOptions {
  /** Calibration data: a path, 'synthetic', or undefined to ask (or use blocklens.defaultData). */
  data?: string;
  /** Skip the cache. */
  force?: boolean;
  /** Forwarded to the engine for tests and power users. */
  samples?: number;
}

export type AnalyzeOutcome =
  | { status: 'done'; report: AnalysisReport; fromCache: boolean; request: AnalyzeRequest; ms: number }
  | { status: 'cancelled' }
  | { status: 'failed'; message: string };

/** Share of the bar each engine phase ends at (the forward pass is most of the time). */
const PHASE_END: Record<string, number> = { load: 4, detect: 6, session: 10, forward: 85, metrics: 99, done: 100 };

export function progressPercent(p: EngineProgress): number {
  if (p.phase === 'forward' && p.total) return 10 + 75 * Math.min(1, (p.done ?? 0) / p.total);
  return PHASE_END[p.phase] ?? 0;
}

export class AnalysisService implements vscode.Disposable {
  private readonly running = new Map<string, AbortController>();
  private readonly progressEmitter = new vscode.EventEmitter<{ model: string } & EngineProgress>();
  /** Engine progress of every analysis (tests wait on it; a status item could show it). */
  readonly onDidProgress = this.progressEmitter.event;

  constructor(
    private readonly engine: EngineClient,
    private readonly cache: ReportCache,
    private readonly picker: CalibrationPicker,
  ) {}

  get busy(): boolean {
    return this.running.size > 0;
  }

  /** Cancels every running analysis (the *BlockLens: Cancel Analysis* command). */
  cancelAll(): number {
    const n = this.running.size;
    for (const c of this.running.values()) c.abort();
    return n;
  }

  dispose(): void {
    this.cancelAll();
    this.progressEmitter.dispose();
  }

  /** Resolves the calibration data: explicit, then blocklens.defaultData, then the quick pick. */
  private async chooseData(model: string, opts: AnalyzeOptions): Promise<{ data?: string } | undefined> {
    if (opts.data === 'synthetic') return {};
    if (opts.data) return { data: path.resolve(opts.data) };
    const settings = readSettings(vscode.Uri.file(model), log.warn);
    if (settings.defaultData === 'synthetic') return {};
    if (typeof settings.defaultData === 'object') return { data: settings.defaultData.path };
    return this.picker.pick(model);
  }

  async analyze(model: string, opts: AnalyzeOptions = {}): Promise<AnalyzeOutcome> {
    const name = path.basename(model);
    const existing = this.running.get(model);
    if (existing) {
      void vscode.window.showInformationMessage(`BlockLens is already analysing ${name}.`);
      return { status: 'cancelled' };
    }
    const choice = await this.chooseData(model, opts);
    if (!choice) return { status: 'cancelled' };
    const settings = readSettings(vscode.Uri.file(model), log.warn);
    const request: AnalyzeRequest = {
      model,
      ...(choice.data ? { data: choice.data } : {}),
      ...(opts.samples ?? settings.samples ? { samples: opts.samples ?? settings.samples } : {}),
      ...(settings.batch ? { batch: settings.batch } : {}),
      pooling: settings.pooling,
      device: settings.executionProviders.includes('cuda') ? 'cuda' : 'cpu',
    };
    const controller = new AbortController();
    this.running.set(model, controller);
    const started = performance.now();
    try {
      await statOrThrow(model, 'model');
      if (choice.data) await statOrThrow(choice.data, 'calibration data');
      const key = cacheKey(await sha256File(model), request, await dataFingerprint(choice.data));
      if (!opts.force) {
        const cached = await this.cache.get(key);
        if (cached) {
          log.info(`${name}: reusing the cached report (${key})`);
          return { status: 'done', report: cached, fromCache: true, request, ms: performance.now() - started };
        }
      }
      log.info(`${name}: analysing with ${choice.data ?? 'synthetic data'} (${JSON.stringify({ ...request, model: undefined })})`);
      const report = await vscode.window.withProgress(
        { location: vscode.ProgressLocation.Notification, title: `BlockLens: analysing ${name}`, cancellable: true },
        async (progress, token) => {
          token.onCancellationRequested(() => controller.abort());
          let shown = 0;
          return this.engine.analyze(request, {
            signal: controller.signal,
            onProgress: (p) => {
              this.progressEmitter.fire({ model, ...p });
              const pct = progressPercent(p);
              const counts = p.phase === 'forward' && p.total ? ` ${p.done ?? 0}/${p.total} samples` : '';
              progress.report({ increment: Math.max(0, pct - shown), message: `${p.phase}${counts} (${Math.round(pct)}%)` });
              shown = Math.max(shown, pct);
            },
          });
        },
      );
      await this.cache.put(key, report).catch((e: Error) => log.warn(`could not cache the report: ${e.message}`));
      const ms = performance.now() - started;
      log.info(`${name}: done in ${(ms / 1000).toFixed(1)} s (${report.blocks.length} blocks)`);
      return { status: 'done', report, fromCache: false, request, ms };
    } catch (e) {
      if (controller.signal.aborted || (e instanceof EngineError && e.cancelled)) {
        log.info(`${name}: cancelled after ${((performance.now() - started) / 1000).toFixed(1)} s`);
        return { status: 'cancelled' };
      }
      const err = e as EngineError;
      const message = `BlockLens: ${err.file ? `${path.basename(err.file)}: ` : ''}${err.message}`;
      log.error(`${name}: ${err.file ?? model}: ${err.message}`);
      void showError(message);
      return { status: 'failed', message };
    } finally {
      this.running.delete(model);
    }
  }
}

async function statOrThrow(p: string, what: string): Promise<void> {
  try {
    await stat(p);
  } catch {
    throw new EngineError(`${what} '${p}' does not exist`, p);
  }
}
