// Validation of what a webview posts to the host. The webview is untrusted input (its page runs
// a report's strings and could be compromised): every message is checked against the protocol
// before the host acts on it, and anything else is dropped with a log line. No `vscode` import,
// so this is tested in plain Node.
import type { FromWebviewMessage } from '../protocol/webview.js';

export type Validated<T> = { ok: true; message: T } | { ok: false; reason: string };

export interface SpanBounds {
  /** Number of blocks in the report the panel shows. */
  blocks: number;
}

/** Largest chart export accepted from a webview (base64 PNG or SVG text). */
export const MAX_SAVE_BYTES = 32 * 1024 * 1024;
const METHODS = new Set(['linear', 'skip', 'lowrank']);
const MIMES = new Set(['image/svg+xml', 'image/png']);

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isInt = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v);
const isPathString = (v: unknown): v is string => typeof v === 'string' && v.length > 0 && v.length < 4096 && !v.includes('\0');

function onlyKeys(m: Record<string, unknown>, keys: string[]): string | undefined {
  const extra = Object.keys(m).filter((k) => !keys.includes(k));
  return extra.length ? `unexpected field(s) ${extra.join(', ')}` : undefined;
}

function span(m: Record<string, unknown>, bounds: SpanBounds): string | undefined {
  const { from, to } = m;
  if (!isInt(from) || !isInt(to)) return 'from and to must be integers';
  // from may be −1: block 0's input (h_{−1}).
  if (from < -1 || to < 0 || from > to || to >= bounds.blocks) return `span ${from}→${to} is outside blocks 0..${bounds.blocks - 1}`;
  return undefined;
}

/** Checks one message from the report webview; `bounds` are the report's. */
export function validateReportMessage(raw: unknown, bounds: SpanBounds): Validated<FromWebviewMessage> {
  if (!isRecord(raw) || typeof raw.type !== 'string') return { ok: false, reason: 'not a message object with a type' };
  const m = raw;
  const fail = (reason: string): Validated<FromWebviewMessage> => ({ ok: false, reason: `${String(m.type)}: ${reason}` });
  const pass = (keys: string[], check?: () => string | undefined): Validated<FromWebviewMessage> => {
    const problem = onlyKeys(m, ['type', ...keys]) ?? check?.();
    return problem ? fail(problem) : { ok: true, message: m as unknown as FromWebviewMessage };
  };
  switch (m.type) {
    case 'ready':
    case 'rerun':
      return pass([]);
    case 'selectSpan':
      return pass(['from', 'to'], () => span(m, bounds));
    case 'exportSpan':
      return pass(['from', 'to', 'method'], () => span(m, bounds) ?? (METHODS.has(m.method as string) ? undefined : `unknown method ${JSON.stringify(m.method)}`));
    case 'reveal':
      return pass(['path'], () => (isPathString(m.path) ? undefined : 'path must be a non-empty string'));
    case 'analyzeNew':
    case 'compare':
      return pass(['path'], () => (m.path === undefined || isPathString(m.path) ? undefined : 'path must be a non-empty string'));
    case 'saveFile':
      return pass(['fileName', 'mime', 'encoding', 'data'], () => {
        if (typeof m.fileName !== 'string' || !/^[\w.\- ]{1,128}$/.test(m.fileName)) return 'fileName must be a plain file name';
        if (!MIMES.has(m.mime as string)) return `unsupported mime ${JSON.stringify(m.mime)}`;
        if (m.encoding !== 'utf8' && m.encoding !== 'base64') return 'encoding must be utf8 or base64';
        if (typeof m.data !== 'string' || m.data.length > MAX_SAVE_BYTES) return 'data must be a string under 32 MiB';
        if (m.encoding === 'base64' && !/^[A-Za-z0-9+/]*={0,2}$/.test(m.data)) return 'data is not base64';
        return undefined;
      });
    default:
      return fail('unknown message type');
  }
}

/** The .onnx editor's page only ever asks to analyse the model it shows. */
export type EditorMessage = { type: 'ready' } | { type: 'analyze' };
export function validateEditorMessage(raw: unknown): Validated<EditorMessage> {
  if (!isRecord(raw) || (raw.type !== 'analyze' && raw.type !== 'ready')) return { ok: false, reason: 'not an editor message' };
  const extra = onlyKeys(raw, ['type']);
  return extra ? { ok: false, reason: extra } : { ok: true, message: raw as EditorMessage };
}

/**
 * A path a webview names is only acted on when it is one the host itself handed out (the
 * analysed model, an export it wrote): resolved and compared, never opened as given.
 */
export function allowedPath(requested: string, allowed: Iterable<string>, resolve: (p: string) => string): string | undefined {
  const r = resolve(requested);
  for (const a of allowed) if (resolve(a) === r) return r;
  return undefined;
}
