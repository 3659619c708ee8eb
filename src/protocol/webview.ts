// Extension host ↔ report webview. The webview compiles against this file and the report
// schema only (webview/tsconfig.json), so host code cannot leak into the browser bundle.
//
// Handshake: the webview posts `ready` once its script runs; the host answers with `init`.
// Later host messages (`progress`, `error`, `verification`, `compare`) may come at any time.
// Every message is additive: a webview ignores types it does not know, and so should the host.
//
// The same renderer (dist/webview.js + dist/webview.css) also runs in the CLI's standalone HTML
// page, where there is no host: there it reads the report from
// `<script type="application/json" id="blocklens-report">` and handles intents itself (exports
// download as files, the other intents are shown as disabled).
import type { AnalysisReport } from '../engine/report/schema.js';

// ───────────────────────────── host → webview ─────────────────────────────

export interface InitMessage {
  type: 'init';
  report: AnalysisReport;
  /** What the panel can do; a missing flag means the action is not offered. */
  capabilities?: WebviewCapabilities;
}
export interface WebviewCapabilities {
  /** Replace a span by a linear map (the `exportSpan` intent). */
  exportSpan?: boolean;
  rerun?: boolean;
  reveal?: boolean;
  analyzeNew?: boolean;
  compare?: boolean;
  /** The host saves files for the webview (`saveFile`); otherwise the webview downloads them itself. */
  saveFile?: boolean;
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
/** Before/after pair of one verification figure; `null` where it could not be measured. */
export interface BeforeAfter {
  before: number | null;
  after: number | null;
}
/** Result of `blocklens rba … --verify` for one export, as the host received it from the worker. */
export interface VerificationFigures {
  /** Spans replaced, inclusive block indices (`from` may be −1: block 0's input). */
  spans: { from: number; to: number }[];
  method?: 'linear' | 'skip' | 'lowrank';
  /** Path of the written model. */
  output: string;
  /** Relative MSE of the final output, new vs original, on held-out data. */
  relMse: number | null;
  /** Linear CKA of the final output, new vs original. */
  cka: number | null;
  /** Top-1 (or next-token) agreement, when the output is logits. */
  top1Agreement?: number | null;
  /** Accuracy with labels. */
  accuracy?: BeforeAfter;
  parameters?: BeforeAfter;
  sizeBytes?: BeforeAfter;
  /** Median latency per batch, milliseconds. */
  latencyMs?: BeforeAfter;
  samples?: number;
}
export interface VerificationMessage {
  type: 'verification';
  figures: VerificationFigures;
}
/** A second report shown beside the first (e.g. the exported model's). */
export interface CompareMessage {
  type: 'compare';
  report: AnalysisReport;
  label?: string;
}
export type ToWebviewMessage = InitMessage | ProgressMessage | ErrorMessage | VerificationMessage | CompareMessage;

// ───────────────────────────── webview → host ─────────────────────────────

export interface ReadyMessage {
  type: 'ready';
}
/** The user selected span i→j (inclusive block indices, from ≤ to) in a heatmap or the span table. */
export interface SelectSpanMessage {
  type: 'selectSpan';
  from: number;
  to: number;
}
/** *Replace blocks i→j with linear map*: run the RBA export in the worker, then send `verification`. */
export interface ExportSpanMessage {
  type: 'exportSpan';
  from: number;
  to: number;
  method: 'linear' | 'skip' | 'lowrank';
}
export interface RerunMessage {
  type: 'rerun';
}
/** Reveal a file (the exported model, or the analysed one) in the OS file manager / explorer. */
export interface RevealMessage {
  type: 'reveal';
  path: string;
}
/** Analyze another model (e.g. the exported one). Without `path` the host asks the user. */
export interface AnalyzeNewMessage {
  type: 'analyzeNew';
  path?: string;
}
/** Show the report of `path` (default: the last export) beside this one. */
export interface CompareRequestMessage {
  type: 'compare';
  path?: string;
}
/** Save a chart export; `data` is UTF-8 text for SVG and base64 for PNG. */
export interface SaveFileMessage {
  type: 'saveFile';
  fileName: string;
  mime: 'image/svg+xml' | 'image/png';
  encoding: 'utf8' | 'base64';
  data: string;
}
export type FromWebviewMessage =
  | ReadyMessage
  | SelectSpanMessage
  | ExportSpanMessage
  | RerunMessage
  | RevealMessage
  | AnalyzeNewMessage
  | CompareRequestMessage
  | SaveFileMessage;

/** Element ids the page shell and the renderer agree on. */
export const WEBVIEW_ROOT_ID = 'blocklens-root';
export const WEBVIEW_REPORT_ID = 'blocklens-report';
