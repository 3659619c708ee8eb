// Extension host ↔ analysis worker: one message union per direction, keyed by `type`.
import type { AnalysisReport } from '../engine/report/schema.js';
import type { AnalyzeRequest } from './analyze-request.js';

export interface StartMessage {
  type: 'start';
  request: AnalyzeRequest;
}
export interface CancelMessage {
  type: 'cancel';
}
export type ToWorkerMessage = StartMessage | CancelMessage;

export interface ProgressMessage {
  type: 'progress';
  phase: string;
  done?: number;
  total?: number;
  message?: string;
}
export interface ResultMessage {
  type: 'result';
  report: AnalysisReport;
}
export interface ErrorMessage {
  type: 'error';
  /** The file the problem concerns (model, data, output). */
  file?: string;
  message: string;
  /** 'AbortError' when cancelled. */
  name: string;
  stack?: string;
}
export type FromWorkerMessage = ProgressMessage | ResultMessage | ErrorMessage;
