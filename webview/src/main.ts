// Report webview entry. The extension host sends `init` with the report after the webview says
// `ready`; the page is drawn by the extension's renderer (issue: VS Code extension).
import type { FromWebviewMessage, ToWebviewMessage } from '../../src/protocol/webview.js';

declare function acquireVsCodeApi(): { postMessage(m: FromWebviewMessage): void };

const vscode = acquireVsCodeApi();
window.addEventListener('message', (event: MessageEvent<ToWebviewMessage>) => {
  const msg = event.data;
  const status = document.getElementById('status');
  switch (msg.type) {
    case 'init':
      if (status) status.textContent = `${msg.report.blocks.length} blocks`;
      return;
    case 'progress':
      if (status) status.textContent = `${msg.phase} ${msg.done ?? ''}/${msg.total ?? ''}`;
      return;
    case 'error':
      if (status) status.textContent = `${msg.file ?? ''}: ${msg.message}`;
      return;
  }
});
vscode.postMessage({ type: 'ready' });
