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
import { EngineClient, verificationFigures, type EngineError } from './engine-client.js';
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
  lastExport?: VerificationFigures;
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
  /** The calibration data last used for a model ('synthetic' or a path), undefined when never chosen. */
  const dataOf = (model: string): string | undefined => {
    const r = picker.remembered(model);
    return r ? (r.data ?? 'synthetic') : undefined;
  };
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
    const o = await analysis.analyze(model, { data: dataOf(model), ...opts });
    return o.status === 'done' ? o.report : undefined;
  };
  const exporting = new Set<string>();
  const exportControllers = new Set<AbortController>();
  /** *Replace blocks from→to with linear map*: writes `<model>.rba-from-to.onnx` beside the model and verifies it. */
  const exportSpan = async (model: string, from: number, to: number, method: 'linear' | 'skip' | 'lowrank' = 'linear'): Promise<VerificationFigures | undefined> => {
    if (exporting.has(model)) {
      void vscode.window.showInformationMessage(`BlockLens is already writing an export of ${path.basename(model)}.`);
      return undefined;
    }
    const settings = readSettings(vscode.Uri.file(model), log.warn);
    const data = picker.remembered(model)?.data;
    const out = uniqueOutput(model, from, to);
    exporting.add(model);
    const controller = new AbortController();
    exportControllers.add(controller);
    try {
      log.info(`${path.basename(model)}: replacing blocks ${from}→${to} (${method}) → ${out}`);
      const result = await vscode.window.withProgress(
        { location: vscode.ProgressLocation.Notification, title: `BlockLens: replacing blocks ${from}→${to} of ${path.basename(model)}`, cancellable: true },
        (progress, token) => {
          token.onCancellationRequested(() => controller.abort());
          const steps: Record<string, number> = { pass: 5, fit: 55, surgery: 65, write: 70, verify: 75 };
          let shown = 0;
          return engine.exportSpan(
            { model, data, samples: settings.samples, batch: settings.batch, from, to, method, out },
            {
              signal: controller.signal,
              onProgress: (p) => {
                const pct = steps[p.phase] ?? shown;
                progress.report({ increment: Math.max(0, pct - shown), message: p.phase });
                shown = Math.max(shown, pct);
              },
            },
          );
        },
      );
      const figures = verificationFigures(result);
      api.lastExport = figures;
      log.info(`${path.basename(out)}: relative MSE ${figures.relMse}, CKA ${figures.cka}, parameters ${figures.parameters?.before} → ${figures.parameters?.after}`);
      return figures;
    } catch (e) {
      const err = e as EngineError;
      if (err.cancelled || controller.signal.aborted) {
        log.info(`${path.basename(model)}: export cancelled`);
        return undefined;
      }
      throw new Error(`${err.file ? `${path.basename(err.file)}: ` : ''}${err.message}`);
    } finally {
      exporting.delete(model);
      exportControllers.delete(controller);
    }
  };
  /** After an export from the command (no panel): the figures and the next steps. */
  const offerNextSteps = async (model: string, figures: VerificationFigures) => {
    const fmt = (x: number | null | undefined) => (x === null || x === undefined ? 'n/a' : x.toPrecision(3));
    const pick = await vscode.window.showInformationMessage(
      `BlockLens wrote ${path.basename(figures.output)}: relative MSE ${fmt(figures.relMse)}, CKA ${fmt(figures.cka)}, parameters ${figures.parameters?.before ?? '?'} → ${figures.parameters?.after ?? '?'}.`,
      'Reveal in Explorer',
      'Analyze New Model',
      'Compare',
    );
    if (pick === 'Reveal in Explorer') await vscode.commands.executeCommand('revealInExplorer', vscode.Uri.file(figures.output));
    else if (pick === 'Analyze New Model') await runAnalysis(figures.output, { viewColumn: 'beside', data: dataOf(model) });
    else if (pick === 'Compare') {
      const [a, b] = [await reportFor(model), await reportFor(figures.output, { data: dataOf(model) })];
      if (a && b) panels.show(model, a, vscode.ViewColumn.Beside).post({ type: 'compare', report: b, label: path.basename(figures.output) });
    }
  };

  const panels = new ReportPanels(context.extensionUri, {
    rerun: async (model) => {
      const o = await analysis.analyze(model, { force: true, data: dataOf(model) ?? 'synthetic' });
      api.lastOutcome = o;
      return o.status === 'done' ? o.report : undefined;
    },
    exportSpan: (model, from, to, method) => exportSpan(model, from, to, method),
    analyzeNew: async (model, column, like) => {
      const target = model ?? (await pickModel());
      // An exported model is analysed on the data its original was.
      if (target) await runAnalysis(target, { viewColumn: column === vscode.ViewColumn.Beside ? 'beside' : 'active', data: model && like ? dataOf(like) : undefined });
    },
    reportFor: (model, like) => reportFor(model, { data: dataOf(like ?? model) }),
    canExport: () => true,
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
  command('blocklens.cancelAnalysis', () => {
    for (const c of exportControllers) c.abort();
    return analysis.cancelAll() + exportControllers.size;
  });
  command('blocklens.openModelSummary', async (uri?: vscode.Uri) => {
    const target = uri instanceof vscode.Uri ? uri : await activeOrPickedModel().then((p) => (p ? vscode.Uri.file(p) : undefined));
    if (target) await vscode.commands.executeCommand('vscode.openWith', target, MODEL_EDITOR_VIEW_TYPE);
  });
  command('blocklens.replaceBlocks', async (uri?: vscode.Uri, span?: { from: number; to: number; method?: 'linear' | 'skip' | 'lowrank' }) => {
    const target = uri instanceof vscode.Uri ? uri.fsPath : await activeOrPickedModel();
    if (!target) return undefined;
    if (span && Number.isInteger(span.from) && Number.isInteger(span.to)) return exportSpan(target, span.from, span.to, span.method ?? 'linear');
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
    if (figures) void offerNextSteps(target, figures);
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

/** `<model>.rba-from-to.onnx` beside the model; `.rba-from-to.2.onnx` … when taken. Never the model. */
function uniqueOutput(model: string, from: number, to: number): string {
  const base = model.replace(/\.onnx$/i, '');
  for (let n = 1; ; n++) {
    const candidate = `${base}.rba-${from}-${to}${n > 1 ? `.${n}` : ''}.onnx`;
    if (!existsSync(candidate)) return candidate;
  }
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
