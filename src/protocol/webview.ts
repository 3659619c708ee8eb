// Extension host ↔ report webview. The webview compiles against this file and the report
// schema only (webview/tsconfig.json), so host code cannot leak into the browser bundle.
import type { AnalysisReport } from '../engine/report/schema.js';

export interface InitMessage {
  type: 'init';
  report: AnalysisReport;
}
export interface ProgressMessage {
  type: 'progress';
  phase: string;
  done?: number;
  total?: number;
}
export interface ErrorMessage {
  type: 'error';
  file?: string;
  message: string;
}
export type ToWebviewMessage = InitMessage | ProgressMessage | ErrorMessage;

export interface ReadyMessage {
  type: 'ready';
}
export interface SelectSpanMessage {
  type: 'selectSpan';
  from: number;
  to: number;
}
export interface RerunMessage {
  type: 'rerun';
}
export type FromWebviewMessage = ReadyMessage | SelectSpanMessage | RerunMessage;
