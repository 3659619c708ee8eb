// One request/result union for every job the engine runs, whoever asks (CLI in process, the
// extension through the job process). Plain data: it crosses process borders as JSON.
import type { AnalysisPartial } from '../engine/jobs/partial.js';
import type { AnalysisReport } from '../engine/report/schema.js';
import type { AnalyzeRequest } from './analyze-request.js';

export interface AnalyzeJob {
  kind: 'analyze';
  request: AnalyzeRequest;
  /** Run only shard `index` (0-based) of `count`: the result is a partial, not a report. */
  shard?: { index: number; count: number };
}

export interface MergeJob {
  kind: 'merge';
  /** Partial files written by sharded analyze jobs. */
  partials: string[];
}

export type JobRequest = AnalyzeJob | MergeJob;

export interface ReportResult {
  kind: 'report';
  report: AnalysisReport;
}

export interface PartialResult {
  kind: 'partial';
  partial: AnalysisPartial;
}

export type JobResult = ReportResult | PartialResult;

export interface JobProgress {
  phase: string;
  done?: number;
  total?: number;
  message?: string;
}
