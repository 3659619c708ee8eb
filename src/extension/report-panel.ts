// The report panel: one webview per analysed model, fed with protocol messages
// (src/protocol/webview.ts) and drawn by the shared renderer (dist/webview.js). The host treats
// every message from the page as untrusted: validated, paths checked against what it handed out.
import { existsSync } from 'node:fs';
import { writeFile, rename } from 'node:fs/promises';
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { AnalysisReport } from '../engine/report/schema.js';
import type { FromWebviewMessage, ToWebviewMessage, VerificationFigures, WebviewCapabilities } from '../protocol/webview.js';
import { WEBVIEW_ROOT_ID } from '../protocol/webview.js';
import { log, showError } from './log.js';
import { allowedPath, validateReportMessage } from './webview-messages.js';
import { escapeHtml, makeNonce, webviewShell } from './webview-html.js';

export const REPORT_VIEW_TYPE = 'blocklens.report';

/** What a panel asks of the rest of the extension. */
export interface PanelActions {
  rerun(model: string): Promise<AnalysisReport | undefined>;
  exportSpan(model: string, from: number, to: number, method: 'linear' | 'skip' | 'lowrank'): Promise<VerificationFigures | undefined>;
  /** `like`: the model whose calibration data to reuse (the panel's own, for its exports). */
  analyzeNew(model: string | undefined, column: vscode.ViewColumn, like?: string): Promise<void>;
  reportFor(model: string, like?: string): Promise<AnalysisReport | undefined>;
  canExport(): boolean;
}

export class ReportPanel implements vscode.Disposable {
  private report: AnalysisReport;
  private readonly disposables: vscode.Disposable[] = [];
  /** Files this panel may name back to the host (the model, exports it wrote). */
  private readonly handedOut = new Set<string>();
  private lastExport?: string;
  selection?: { from: number; to: number };
  /** Messages posted to the page, for tests and the log. */
  readonly sent: ToWebviewMessage['type'][] = [];
  readonly rejected: string[] = [];
  ready = false;
  private watcherTimer?: NodeJS.Timeout;
  private onDisposed?: () => void;

  constructor(
    readonly model: string,
    report: AnalysisReport,
    readonly panel: vscode.WebviewPanel,
    private readonly extensionUri: vscode.Uri,
    private readonly actions: PanelActions,
  ) {
    this.report = report;
    this.handedOut.add(model);
    panel.webview.options = { enableScripts: true, localResourceRoots: [vscode.Uri.joinPath(extensionUri, 'dist')] };
    panel.webview.html = this.html();
    panel.iconPath = vscode.Uri.joinPath(extensionUri, 'media', 'blocklens.svg');
    this.disposables.push(
      panel.webview.onDidReceiveMessage((m) => void this.receive(m)),
      panel.onDidDispose(() => this.dispose()),
    );
    this.watch();
  }

  setOnDisposed(fn: () => void): void {
    this.onDisposed = fn;
  }

  show(report: AnalysisReport, column?: vscode.ViewColumn): void {
    this.report = report;
    if (this.ready) this.post({ type: 'init', report, capabilities: this.capabilities() });
    this.panel.reveal(column, true);
  }

  private capabilities(): WebviewCapabilities {
    return { exportSpan: this.actions.canExport(), rerun: true, reveal: true, analyzeNew: true, compare: this.actions.canExport(), saveFile: true };
  }

  post(m: ToWebviewMessage): void {
    this.sent.push(m.type);
    void this.panel.webview.postMessage(m);
  }

  private html(): string {
    const webview = this.panel.webview;
    const dist = vscode.Uri.joinPath(this.extensionUri, 'dist');
    const asUri = (f: string) => webview.asWebviewUri(vscode.Uri.joinPath(dist, f)).toString();
    const styles = existsSync(path.join(dist.fsPath, 'webview.css')) ? [asUri('webview.css')] : [];
    return webviewShell({
      cspSource: webview.cspSource,
      nonce: makeNonce(),
      title: `BlockLens: ${path.basename(this.model)}`,
      scripts: [asUri('webview.js')],
      styles,
      body: `<div id="${WEBVIEW_ROOT_ID}" data-model="${escapeHtml(path.basename(this.model))}"></div>`,
    });
  }

  private async receive(raw: unknown): Promise<void> {
    const v = validateReportMessage(raw, { blocks: this.report.blocks.length });
    if (!v.ok) {
      this.rejected.push(v.reason);
      log.warn(`ignored a message from the report webview (${v.reason})`);
      return;
    }
    try {
      await this.handle(v.message);
    } catch (e) {
      const msg = (e as Error).message;
      this.post({ type: 'error', message: msg });
      void showError(`BlockLens: ${msg}`);
    }
  }

  private async handle(m: FromWebviewMessage): Promise<void> {
    switch (m.type) {
      case 'ready':
        this.ready = true;
        this.post({ type: 'init', report: this.report, capabilities: this.capabilities() });
        return;
      case 'selectSpan':
        this.selection = { from: m.from, to: m.to };
        return;
      case 'exportSpan': {
        this.selection = { from: m.from, to: m.to };
        const figures = await this.actions.exportSpan(this.model, m.from, m.to, m.method);
        if (!figures) return;
        this.lastExport = figures.output;
        this.handedOut.add(figures.output);
        this.post({ type: 'verification', figures });
        return;
      }
      case 'rerun': {
        const report = await this.actions.rerun(this.model);
        if (report) this.show(report);
        return;
      }
      case 'reveal': {
        const p = allowedPath(m.path, this.handedOut, (x) => path.resolve(path.dirname(this.model), x));
        if (!p) throw new Error(`refused to reveal '${m.path}': not a file this panel produced`);
        await revealFile(p);
        return;
      }
      case 'analyzeNew': {
        const p = m.path === undefined ? undefined : allowedPath(m.path, this.handedOut, (x) => path.resolve(path.dirname(this.model), x));
        if (m.path !== undefined && !p) throw new Error(`refused to analyse '${m.path}': not a file this panel produced`);
        await this.actions.analyzeNew(p, vscode.ViewColumn.Beside, this.model);
        return;
      }
      case 'compare': {
        const target = m.path ?? this.lastExport;
        const p = target === undefined ? undefined : allowedPath(target, this.handedOut, (x) => path.resolve(path.dirname(this.model), x));
        if (!p) throw new Error('nothing to compare yet: export a span first');
        const report = await this.actions.reportFor(p, this.model);
        if (report) this.post({ type: 'compare', report, label: path.basename(p) });
        return;
      }
      case 'saveFile': {
        const target = await vscode.window.showSaveDialog({
          defaultUri: vscode.Uri.file(path.join(path.dirname(this.model), m.fileName)),
          filters: m.mime === 'image/png' ? { PNG: ['png'] } : { SVG: ['svg'] },
        });
        if (!target) return;
        const tmp = `${target.fsPath}.${process.pid}.tmp`;
        await writeFile(tmp, m.encoding === 'base64' ? Buffer.from(m.data, 'base64') : m.data);
        await rename(tmp, target.fsPath);
        log.info(`saved ${target.fsPath}`);
        return;
      }
      default: {
        const never: never = m;
        throw new Error(`unhandled message ${JSON.stringify(never)}`);
      }
    }
  }

  /** When the training script re-exports the model, offer to re-analyse. */
  private watch(): void {
    const w = vscode.workspace.createFileSystemWatcher(new vscode.RelativePattern(vscode.Uri.file(path.dirname(this.model)), path.basename(this.model)));
    const changed = () => {
      clearTimeout(this.watcherTimer);
      this.watcherTimer = setTimeout(() => void this.offerRerun(), 800);
    };
    this.disposables.push(w, w.onDidChange(changed), w.onDidCreate(changed));
  }

  /** Shown when the model file changes on disk; exported for tests. */
  rerunOffers = 0;
  async offerRerun(): Promise<void> {
    this.rerunOffers++;
    log.info(`${this.model} changed on disk`);
    const pick = await vscode.window.showInformationMessage(`${path.basename(this.model)} changed on disk. Re-analyse it?`, 'Re-analyse');
    if (pick === 'Re-analyse') await this.handle({ type: 'rerun' });
  }

  dispose(): void {
    clearTimeout(this.watcherTimer);
    for (const d of this.disposables.splice(0)) d.dispose();
    this.onDisposed?.();
  }
}

export class ReportPanels implements vscode.Disposable {
  readonly panels = new Map<string, ReportPanel>();

  constructor(
    private readonly extensionUri: vscode.Uri,
    private readonly actions: PanelActions,
  ) {}

  show(model: string, report: AnalysisReport, column: vscode.ViewColumn = vscode.ViewColumn.Active): ReportPanel {
    const existing = this.panels.get(model);
    if (existing) {
      existing.show(report, column);
      return existing;
    }
    const panel = vscode.window.createWebviewPanel(REPORT_VIEW_TYPE, `BlockLens: ${path.basename(model)}`, { viewColumn: column, preserveFocus: false }, {
      enableScripts: true,
      localResourceRoots: [vscode.Uri.joinPath(this.extensionUri, 'dist')],
      retainContextWhenHidden: false,
    });
    const rp = new ReportPanel(model, report, panel, this.extensionUri, this.actions);
    rp.setOnDisposed(() => this.panels.delete(model));
    this.panels.set(model, rp);
    return rp;
  }

  dispose(): void {
    for (const p of [...this.panels.values()]) p.panel.dispose();
  }
}

async function revealFile(p: string): Promise<void> {
  const uri = vscode.Uri.file(p);
  if (vscode.workspace.getWorkspaceFolder(uri)) await vscode.commands.executeCommand('revealInExplorer', uri);
  else await vscode.commands.executeCommand('revealFileInOS', uri);
}
