// Extension entry: registers commands, the report panel, the .onnx editor, CodeLens and code
// actions. Everything heavy goes through EngineClient (off the host's thread).
import { copyFile, mkdir } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { AnalysisReport } from '../engine/report/schema.js';
import type { VerificationFigures } from '../protocol/webview.js';
import { AnalysisService, type AnalyzeOptions, type AnalyzeOutcome } from './analysis.js';
import { CalibrationPicker } from './calibration-picker.js';
import { EngineClient } from './engine-client.js';
import { initLog, log, showError } from './log.js';
import { ModelEditorProvider, MODEL_EDITOR_VIEW_TYPE } from './model-editor.js';
import { OnnxCodeActionProvider, OnnxCodeLensProvider, PYTHON_SELECTOR } from './python-lens.js';
import { ReportCache } from './report-cache.js';
import { ReportPanels, type ReportPanel } from './report-panel.js';
import { readSettings, type AnalysisSettings } from './settings.js';
import { rankedSpans } from './spans.js';

/** Options the analyze command accepts from CodeLens, the editor, the walkthrough and tests. */
export interface AnalyzeCommandOptions extends AnalyzeOptions {
  viewColumn?: 'beside' | 'active';
  /** Do not open the panel (tests). */
  noPanel?: boolean;
}

/** What activate() returns: used by the extension-host tests. */
export interface BlockLensApi {
  analysis: AnalysisService;
  panels: ReportPanels;
  editor: ModelEditorProvider;
  lastOutcome?: AnalyzeOutcome;
  lastPanel?: ReportPanel;
  /** The effective settings for a file (after the workspace-trust rules). */
  settings(scope?: vscode.Uri): AnalysisSettings;
}

export function activate(context: vscode.ExtensionContext): BlockLensApi {
  const channel = initLog(context);
  channel.info(`BlockLens ${context.extension.packageJSON.version} activated (workspace ${vscode.workspace.isTrusted ? 'trusted' : 'untrusted: limited mode'})`);
  const engine = new EngineClient(vscode.Uri.joinPath(context.extensionUri, 'dist').fsPath);
  const cache = new ReportCache(vscode.Uri.joinPath(context.globalStorageUri, 'reports').fsPath);
  const picker = new CalibrationPicker(context);
  const analysis = new AnalysisService(engine, cache, picker);
  context.subscriptions.push(analysis);

  const api = {} as BlockLensApi;
  const runAnalysis = async (model: string, opts: AnalyzeCommandOptions = {}): Promise<AnalyzeOutcome> => {
    const outcome = await analysis.analyze(model, opts);
    api.lastOutcome = outcome;
    if (outcome.status === 'done' && !opts.noPanel) {
      const column = opts.viewColumn === 'beside' ? vscode.ViewColumn.Beside : vscode.ViewColumn.Active;
      api.lastPanel = panels.show(model, outcome.report, column);
    }
    return outcome;
  };
  const reportFor = async (model: string, opts: AnalyzeOptions = {}): Promise<AnalysisReport | undefined> => {
    const o = await analysis.analyze(model, { data: picker.remembered(model)?.data ?? (opts.data ? opts.data : undefined), ...opts });
    return o.status === 'done' ? o.report : undefined;
  };
  const exportSpan = async (model: string, from: number, to: number): Promise<VerificationFigures | undefined> => {
    void model;
    throw new Error(`replacing blocks ${from}→${to} needs the RBA export engine, which is not in this build yet`);
  };

  const panels = new ReportPanels(context.extensionUri, {
    rerun: async (model) => {
      const o = await analysis.analyze(model, { force: true, data: picker.remembered(model)?.data ?? 'synthetic' });
      api.lastOutcome = o;
      return o.status === 'done' ? o.report : undefined;
    },
    exportSpan: (model, from, to) => exportSpan(model, from, to),
    analyzeNew: async (model, column) => {
      const target = model ?? (await pickModel());
      if (target) await runAnalysis(target, { viewColumn: column === vscode.ViewColumn.Beside ? 'beside' : 'active' });
    },
    reportFor: (model) => reportFor(model),
    canExport: () => false,
  });
  context.subscriptions.push(
    panels,
    // An open panel shows the progress of its model's (re-)analysis.
    analysis.onDidProgress((p) => panels.panels.get(p.model)?.post({ type: 'progress', phase: p.phase, done: p.done, total: p.total })),
  );
  const editor = ModelEditorProvider.register(context, engine);
  Object.assign(api, { analysis, panels, editor, settings: (scope?: vscode.Uri) => readSettings(scope, log.warn) });

  const lens = new OnnxCodeLensProvider();
  context.subscriptions.push(
    vscode.languages.registerCodeLensProvider(PYTHON_SELECTOR, lens),
    vscode.languages.registerCodeActionsProvider(PYTHON_SELECTOR, new OnnxCodeActionProvider(), {
      providedCodeActionKinds: OnnxCodeActionProvider.kinds,
    }),
    // Lenses depend on which files exist: refresh when an .onnx appears or goes.
    (() => {
      const w = vscode.workspace.createFileSystemWatcher('**/*.onnx', false, true, false);
      w.onDidCreate(() => lens.refresh());
      w.onDidDelete(() => lens.refresh());
      return w;
    })(),
  );

  const command = (id: string, fn: (...args: any[]) => unknown) =>
    context.subscriptions.push(
      vscode.commands.registerCommand(id, async (...args: any[]) => {
        try {
          return await fn(...args);
        } catch (e) {
          void showError(`BlockLens: ${(e as Error).message}`);
          return undefined;
        }
      }),
    );

  command('blocklens.analyze', async (uri?: vscode.Uri, opts?: AnalyzeCommandOptions) => {
    const target = uri instanceof vscode.Uri ? uri.fsPath : await activeOrPickedModel();
    if (!target) return undefined;
    if (!existsSync(target)) {
      void vscode.window.showWarningMessage(`BlockLens: ${path.basename(target)} does not exist yet; run the export first.`);
      return undefined;
    }
    return runAnalysis(target, isOptions(opts) ? opts : {});
  });
  command('blocklens.cancelAnalysis', () => analysis.cancelAll());
  command('blocklens.openModelSummary', async (uri?: vscode.Uri) => {
    const target = uri instanceof vscode.Uri ? uri : await activeOrPickedModel().then((p) => (p ? vscode.Uri.file(p) : undefined));
    if (target) await vscode.commands.executeCommand('vscode.openWith', target, MODEL_EDITOR_VIEW_TYPE);
  });
  command('blocklens.replaceBlocks', async (uri?: vscode.Uri) => {
    const target = uri instanceof vscode.Uri ? uri.fsPath : await activeOrPickedModel();
    if (!target) return undefined;
    const report = await reportFor(target);
    if (!report) return undefined;
    const spans = rankedSpans(report);
    if (spans.length === 0) {
      void vscode.window.showInformationMessage(`BlockLens: ${path.basename(target)} has no replaceable spans (it needs at least two blocks).`);
      return undefined;
    }
    const pick = await vscode.window.showQuickPick(
      spans.map((s) => ({ label: `Replace blocks ${s.from}→${s.to} with linear map`, description: s.basis, span: s })),
      { title: `Ranked spans of ${path.basename(target)}`, placeHolder: 'The best candidates first' },
    );
    if (!pick) return undefined;
    const figures = await exportSpan(target, pick.span.from, pick.span.to);
    return figures;
  });
  command('blocklens.openExample', async () => openExample(context));
  command('blocklens.showLog', () => log.show());
  command('blocklens.clearCache', async () => {
    await vscode.workspace.fs.delete(vscode.Uri.joinPath(context.globalStorageUri, 'reports'), { recursive: true, useTrash: false }).then(undefined, () => {});
    void vscode.window.showInformationMessage('BlockLens: cached reports cleared.');
  });

  return api;
}

export function deactivate(): void {}

function isOptions(v: unknown): v is AnalyzeCommandOptions {
  return typeof v === 'object' && v !== null && !(v instanceof vscode.Uri) && !Array.isArray(v);
}

/** The .onnx of the active editor (text or custom), else a file picker. */
async function activeOrPickedModel(): Promise<string | undefined> {
  const tab = vscode.window.tabGroups.activeTabGroup.activeTab?.input;
  const uri =
    tab instanceof vscode.TabInputCustom || tab instanceof vscode.TabInputText ? tab.uri : vscode.window.activeTextEditor?.document.uri;
  if (uri?.scheme === 'file' && uri.fsPath.toLowerCase().endsWith('.onnx')) return uri.fsPath;
  return pickModel();
}

async function pickModel(): Promise<string | undefined> {
  const uris = await vscode.window.showOpenDialog({
    canSelectMany: false,
    filters: { 'ONNX models': ['onnx'] },
    openLabel: 'Analyze redundancy',
    defaultUri: vscode.workspace.workspaceFolders?.[0]?.uri,
  });
  return uris?.[0]?.fsPath;
}

/** Copies the bundled example model into the workspace (or global storage) and opens its summary. */
async function openExample(context: vscode.ExtensionContext): Promise<string> {
  const source = vscode.Uri.joinPath(context.extensionUri, 'test', 'fixtures', 'models', 'vit_tiny.onnx').fsPath;
  const folder = vscode.workspace.workspaceFolders?.[0];
  const dir = folder?.uri.scheme === 'file' ? path.join(folder.uri.fsPath, 'blocklens-example') : path.join(context.globalStorageUri.fsPath, 'example');
  await mkdir(dir, { recursive: true });
  const target = path.join(dir, 'vit_tiny.onnx');
  if (!existsSync(target)) await copyFile(source, target);
  await vscode.commands.executeCommand('vscode.openWith', vscode.Uri.file(target), MODEL_EDITOR_VIEW_TYPE);
  if (folder) await vscode.commands.executeCommand('revealInExplorer', vscode.Uri.file(target));
  return target;
}
