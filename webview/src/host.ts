// Where the renderer runs: inside a VS Code webview (acquireVsCodeApi exists) or in the CLI's
// standalone HTML page (no host; the report is inlined as JSON). The rest of the renderer talks
// only to this interface.
import type { FromWebviewMessage, SaveFileMessage, WebviewCapabilities } from '../../src/protocol/webview.js';
import type { MetricKey } from './state.js';

interface VsCodeApi {
  postMessage(message: unknown): void;
  getState(): unknown;
  setState(state: unknown): void;
}
declare global {
  // Injected by VS Code into webviews; absent in a browser.
  // eslint-disable-next-line no-var
  var acquireVsCodeApi: (() => VsCodeApi) | undefined;
}

export interface UiState {
  metric?: MetricKey;
  selection?: { from: number; to: number } | null;
  focus?: { i: number; j: number };
  scrollY?: number;
}

export interface Host {
  readonly kind: 'vscode' | 'standalone';
  capabilities: WebviewCapabilities;
  post(message: FromWebviewMessage): void;
  getState(): UiState;
  setState(state: UiState): void;
  /** Save an exported chart: through the host when it can, else as a browser download. */
  save(file: Omit<SaveFileMessage, 'type'>): void;
}

function download(file: Omit<SaveFileMessage, 'type'>): void {
  const bytes =
    file.encoding === 'base64' ? Uint8Array.from(atob(file.data), (ch) => ch.charCodeAt(0)) : new TextEncoder().encode(file.data);
  const url = URL.createObjectURL(new Blob([bytes], { type: file.mime }));
  const a = document.createElement('a');
  a.href = url;
  a.download = file.fileName;
  a.hidden = true;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

export function connectHost(): Host {
  const api = typeof globalThis.acquireVsCodeApi === 'function' ? globalThis.acquireVsCodeApi() : undefined;
  if (api) {
    const host: Host = {
      kind: 'vscode',
      capabilities: {},
      post: (m) => api.postMessage(m),
      getState: () => (api.getState() as UiState | undefined) ?? {},
      setState: (s) => api.setState(s),
      save: (file) => (host.capabilities.saveFile ? api.postMessage({ type: 'saveFile', ...file }) : download(file)),
    };
    return host;
  }
  // Standalone page: no host to talk to. State lives for the page's life; intents are only
  // recorded (tests read them) since nothing can act on them.
  let state: UiState = {};
  const sent: FromWebviewMessage[] = [];
  (globalThis as { __blocklensSent?: FromWebviewMessage[] }).__blocklensSent = sent;
  return {
    kind: 'standalone',
    capabilities: {},
    post: (m) => void sent.push(m),
    getState: () => state,
    setState: (s) => void (state = s),
    save: download,
  };
}
