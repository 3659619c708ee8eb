// Extension host ↔ job process: one message union per direction, keyed by `type`.
import type { JobProgress, JobRequest, JobResult } from './jobs.js';

export interface StartMessage {
  type: 'start';
  request: JobRequest;
}
export interface CancelMessage {
  type: 'cancel';
}
export type ToWorkerMessage = StartMessage | CancelMessage;

export interface ProgressMessage extends JobProgress {
  type: 'progress';
}
export interface ResultMessage {
  type: 'result';
  result: JobResult;
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
