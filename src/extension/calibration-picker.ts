// Choosing calibration data: synthetic, a file, a folder, or a recent choice. The choice is
// remembered per model (workspace state) and the recent list across workspaces (global state).
import { stat } from 'node:fs/promises';
import * as path from 'node:path';
import * as vscode from 'vscode';

/** `undefined` data means synthetic inputs. */
export interface CalibrationChoice {
  data?: string;
}

const RECENT_KEY = 'blocklens.recentData';
const perModelKey = (model: string) => `blocklens.data:${model}`;
const MAX_RECENT = 6;

type Item = vscode.QuickPickItem & { pick: () => Promise<CalibrationChoice | undefined> };

export class CalibrationPicker {
  constructor(private readonly context: vscode.ExtensionContext) {}

  remembered(model: string): CalibrationChoice | undefined {
    return this.context.workspaceState.get<CalibrationChoice>(perModelKey(model));
  }

  async remember(model: string, choice: CalibrationChoice): Promise<void> {
    await this.context.workspaceState.update(perModelKey(model), choice);
    if (choice.data) {
      const recent = this.context.globalState.get<string[]>(RECENT_KEY, []).filter((p) => p !== choice.data);
      await this.context.globalState.update(RECENT_KEY, [choice.data, ...recent].slice(0, MAX_RECENT));
    }
  }

  /** Shows the quick pick; resolves undefined when the user dismisses it. */
  async pick(model: string): Promise<CalibrationChoice | undefined> {
    const last = this.remembered(model);
    const recent = this.context.globalState.get<string[]>(RECENT_KEY, []);
    const base = vscode.Uri.file(path.dirname(model));
    const items: Item[] = [];
    if (last?.data) {
      items.push({
        label: `$(history) ${path.basename(last.data)}`,
        description: 'last used for this model',
        detail: last.data,
        pick: async () => last,
      });
    }
    items.push(
      {
        label: '$(beaker) Synthetic data',
        description: last && !last.data ? 'last used for this model' : 'seeded inputs from the model signature',
        detail: "Shows the model's structure, not its behaviour on a task.",
        pick: async () => ({}),
      },
      {
        label: '$(file) Data file…',
        description: '.npy, .npz, .jsonl or .txt',
        pick: async () => {
          const uris = await vscode.window.showOpenDialog({
            defaultUri: base,
            canSelectFiles: true,
            canSelectFolders: false,
            filters: { 'Calibration data': ['npy', 'npz', 'jsonl', 'txt'] },
            openLabel: 'Use as calibration data',
          });
          return uris?.[0] ? { data: uris[0].fsPath } : undefined;
        },
      },
      {
        label: '$(folder) Folder…',
        description: 'images (class subfolders give labels) or <input>.npy files',
        pick: async () => {
          const uris = await vscode.window.showOpenDialog({ defaultUri: base, canSelectFiles: false, canSelectFolders: true, openLabel: 'Use as calibration data' });
          return uris?.[0] ? { data: uris[0].fsPath } : undefined;
        },
      },
    );
    const recentItems = recent.filter((p) => p !== last?.data);
    if (recentItems.length) {
      items.push({ label: 'Recent', kind: vscode.QuickPickItemKind.Separator, pick: async () => undefined });
      for (const p of recentItems) items.push({ label: `$(history) ${path.basename(p)}`, description: path.dirname(p), pick: async () => ({ data: p }) });
    }
    const chosen = await vscode.window.showQuickPick(items, {
      title: `Calibration data for ${path.basename(model)}`,
      placeHolder: 'Data the model runs on while BlockLens records its blocks',
      ignoreFocusOut: true,
    });
    const choice = await chosen?.pick();
    if (!choice) return undefined;
    if (choice.data && !(await exists(choice.data))) {
      void vscode.window.showErrorMessage(`BlockLens: calibration data '${choice.data}' does not exist.`);
      return undefined;
    }
    await this.remember(model, choice);
    return choice;
  }
}

async function exists(p: string): Promise<boolean> {
  try {
    await stat(p);
    return true;
  } catch {
    return false;
  }
}
