// One request/result union for every job the engine runs, whoever asks (CLI in process, the
// extension through the job process). Plain data: it crosses process borders as JSON.
import type { AnalysisPartial } from '../engine/jobs/partial.js';
import type { AnalysisReport } from '../engine/report/schema.js';
import type { AnalyzeRequest } from './analyze-request.js';
import type { PlanRequest, PlanResult, RbaRequest, RbaResult, VerifyRequest, VerifyResult } from './rba-request.js';

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

/** RBA (issue 7): replace spans, choose spans for a budget, compare two models. */
export interface RbaJob {
  kind: 'rba';
  request: RbaRequest;
}

export interface PlanJob {
  kind: 'plan';
  request: PlanRequest;
}

export interface VerifyJob {
  kind: 'verify';
  request: VerifyRequest;
}

export type JobRequest = AnalyzeJob | MergeJob | RbaJob | PlanJob | VerifyJob;

export interface ReportResult {
  kind: 'report';
  report: AnalysisReport;
}

export interface PartialResult {
  kind: 'partial';
  partial: AnalysisPartial;
}

export interface RbaJobResult {
  kind: 'rba';
  result: RbaResult;
}

export interface PlanJobResult {
  kind: 'plan';
  result: PlanResult;
}

export interface VerifyJobResult {
  kind: 'verify';
  result: VerifyResult;
}

export type JobResult = ReportResult | PartialResult | RbaJobResult | PlanJobResult | VerifyJobResult;

export interface JobProgress {
  phase: string;
  done?: number;
  total?: number;
  message?: string;
}
