// Renderer entry, bundled once (dist/webview.js + dist/webview.css) and used twice:
// - in the VS Code webview: posts `ready`, draws on `init`, follows later host messages;
// - in the CLI's standalone HTML page: reads the inlined report JSON and draws at once.
import '@vscode-elements/elements/dist/vscode-button/index.js';
import '@vscode-elements/elements/dist/vscode-radio/index.js';
import '@vscode-elements/elements/dist/vscode-radio-group/index.js';
import './styles.css';
import type { AnalysisReport } from '../../src/engine/report/schema.js';
import { WEBVIEW_REPORT_ID, WEBVIEW_ROOT_ID, type ToWebviewMessage } from '../../src/protocol/webview.js';
import { ReportView } from './app.js';
import { connectHost } from './host.js';

function start(): void {
  const host = connectHost();
  let root = document.getElementById(WEBVIEW_ROOT_ID);
  if (!root) {
    root = document.createElement('div');
    root.id = WEBVIEW_ROOT_ID;
    document.body.append(root);
  }
  document.documentElement.dataset.host = host.kind;
  const view = new ReportView(root, host);
  (globalThis as { __blocklens?: ReportView }).__blocklens = view;
  if (host.kind === 'vscode') {
    window.addEventListener('message', (event: MessageEvent<ToWebviewMessage>) => {
      const msg = event.data;
      if (msg && typeof msg === 'object' && typeof msg.type === 'string') view.handle(msg);
    });
    host.post({ type: 'ready' });
    return;
  }
  const data = document.getElementById(WEBVIEW_REPORT_ID);
  if (!data?.textContent) {
    view.handle({ type: 'error', message: 'This page has no report data.' });
    return;
  }
  let report: AnalysisReport;
  try {
    report = JSON.parse(data.textContent) as AnalysisReport;
  } catch (e) {
    view.handle({ type: 'error', message: `The report data does not parse: ${(e as Error).message}` });
    return;
  }
  view.handle({ type: 'init', report });
}

if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start, { once: true });
else start();
