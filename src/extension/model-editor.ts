// The read-only .onnx editor (priority `option`: offered by *Open With…*, never the default):
// model summary, detected blocks with the detection route, and an *Analyze* button. The model is
// decoded in a worker thread, so even a 100 MB+ file leaves the editor responsive.
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { EngineClient } from './engine-client.js';
import { log } from './log.js';
import type { ModelSummary } from './model-summary.js';
import { validateEditorMessage } from './webview-messages.js';
import { escapeHtml, makeNonce, webviewShell } from './webview-html.js';

export const MODEL_EDITOR_VIEW_TYPE = 'blocklens.modelSummary';

class ModelDocument implements vscode.CustomDocument {
  constructor(readonly uri: vscode.Uri) {}
  dispose(): void {}
}

export class ModelEditorProvider implements vscode.CustomReadonlyEditorProvider<ModelDocument> {
  /** Summaries shown, by file path (tests read it). */
  readonly shown = new Map<string, ModelSummary | { error: string }>();

  static register(context: vscode.ExtensionContext, engine: EngineClient): ModelEditorProvider {
    const provider = new ModelEditorProvider(context.extensionUri, engine);
    context.subscriptions.push(
      vscode.window.registerCustomEditorProvider(MODEL_EDITOR_VIEW_TYPE, provider, { supportsMultipleEditorsPerDocument: true }),
    );
    return provider;
  }

  private constructor(
    private readonly extensionUri: vscode.Uri,
    private readonly engine: EngineClient,
  ) {}

  openCustomDocument(uri: vscode.Uri): ModelDocument {
    return new ModelDocument(uri);
  }

  async resolveCustomEditor(doc: ModelDocument, panel: vscode.WebviewPanel, token: vscode.CancellationToken): Promise<void> {
    const file = doc.uri.fsPath;
    panel.webview.options = { enableScripts: true, localResourceRoots: [vscode.Uri.joinPath(this.extensionUri, 'dist')] };
    const nonce = makeNonce();
    const page = (body: string) =>
      webviewShell({ cspSource: panel.webview.cspSource, nonce, title: path.basename(file), scripts: [], styles: [], body, inlineStyle: STYLE, inlineScript: SCRIPT });
    panel.webview.html = page(`<p class="muted">Reading ${escapeHtml(path.basename(file))}…</p>`);
    panel.webview.onDidReceiveMessage((raw) => {
      const v = validateEditorMessage(raw);
      if (!v.ok) {
        log.warn(`ignored a message from the model editor (${v.reason})`);
        return;
      }
      if (v.message.type === 'analyze') void vscode.commands.executeCommand('blocklens.analyze', doc.uri, { viewColumn: 'beside' });
    });
    const abort = new AbortController();
    token.onCancellationRequested(() => abort.abort());
    panel.onDidDispose(() => abort.abort());
    try {
      const summary = await this.engine.summarize(file, abort.signal);
      this.shown.set(file, summary);
      panel.webview.html = page(renderSummary(summary));
    } catch (e) {
      if (abort.signal.aborted) return;
      const message = (e as Error).message;
      this.shown.set(file, { error: message });
      log.error(`${file}: ${message}`);
      panel.webview.html = page(`<h1>${escapeHtml(path.basename(file))}</h1><p class="error" role="alert">${escapeHtml(message)}</p>`);
    }
  }
}

const fmt = (n: number) => n.toLocaleString('en-US');
function bytes(n: number): string {
  if (n >= 2 ** 30) return `${(n / 2 ** 30).toFixed(2)} GiB`;
  if (n >= 2 ** 20) return `${(n / 2 ** 20).toFixed(1)} MiB`;
  if (n >= 2 ** 10) return `${(n / 2 ** 10).toFixed(1)} KiB`;
  return `${n} bytes`;
}

function tensorRows(ts: ModelSummary['inputs']): string {
  return ts
    .map((t) => `<tr><td><code>${escapeHtml(t.name)}</code></td><td>${escapeHtml(t.dtype)}</td><td>${t.shape ? `[${t.shape.map((d) => escapeHtml(d)).join(', ')}]` : 'unknown'}</td></tr>`)
    .join('');
}

export function renderSummary(s: ModelSummary): string {
  const det =
    'error' in s.detection
      ? `<p class="error">No blocks found: ${escapeHtml(s.detection.error)}</p>`
      : `<p>Route: <strong>${escapeHtml(s.detection.method)}</strong>. ${escapeHtml(s.detection.explanation)}</p>
         <table aria-label="Detected blocks"><thead><tr><th>#</th><th>Block</th><th>Output tensor</th><th>Parameters</th></tr></thead><tbody>
         ${s.blocks.map((b) => `<tr><td>${b.index}</td><td>${escapeHtml(b.name)}</td><td><code>${escapeHtml(b.output)}</code></td><td>${fmt(b.parameters)}</td></tr>`).join('')}
         </tbody></table>`;
  return `<h1>${escapeHtml(path.basename(s.path))}</h1>
<p><button id="analyze" type="button">Analyze redundancy</button></p>
<dl>
  <dt>Size</dt><dd>${bytes(s.sizeBytes)}</dd>
  <dt>Parameters</dt><dd>${fmt(s.parameters)}</dd>
  <dt>Opset</dt><dd>${s.opset ?? 'unknown'}</dd>
  <dt>IR version</dt><dd>${s.irVersion}</dd>
  <dt>Nodes</dt><dd>${fmt(s.nodes)}</dd>
  ${s.producer ? `<dt>Producer</dt><dd>${escapeHtml(s.producer)}</dd>` : ''}
  <dt>SHA-256</dt><dd><code>${s.sha256}</code></dd>
</dl>
<h2>Inputs</h2><table aria-label="Inputs"><thead><tr><th>Name</th><th>Type</th><th>Shape</th></tr></thead><tbody>${tensorRows(s.inputs)}</tbody></table>
<h2>Outputs</h2><table aria-label="Outputs"><thead><tr><th>Name</th><th>Type</th><th>Shape</th></tr></thead><tbody>${tensorRows(s.outputs)}</tbody></table>
<h2>Blocks (${s.blocks.length})</h2>${det}`;
}

const STYLE = `
body { font-family: var(--vscode-font-family); color: var(--vscode-foreground); padding: 0 16px 24px; }
table { border-collapse: collapse; margin: 4px 0 12px; }
th, td { text-align: left; padding: 2px 12px 2px 0; border-bottom: 1px solid var(--vscode-panel-border, transparent); }
dl { display: grid; grid-template-columns: max-content auto; gap: 2px 16px; }
dt { color: var(--vscode-descriptionForeground); }
dd { margin: 0; }
code { font-family: var(--vscode-editor-font-family); }
.error { color: var(--vscode-errorForeground); }
.muted { color: var(--vscode-descriptionForeground); }
button { background: var(--vscode-button-background); color: var(--vscode-button-foreground); border: 0; padding: 4px 12px; cursor: pointer; }
button:hover { background: var(--vscode-button-hoverBackground); }
button:focus-visible { outline: 1px solid var(--vscode-focusBorder); outline-offset: 2px; }
`;

const SCRIPT = `
const vscode = acquireVsCodeApi();
document.getElementById('analyze')?.addEventListener('click', () => vscode.postMessage({ type: 'analyze' }));
`;
