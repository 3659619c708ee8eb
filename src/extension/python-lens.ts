// Beside training code: a CodeLens *Analyze redundancy* above `torch.onnx.export(…, "x.onnx")`
// and `.onnx` path literals (Python files and notebook cells), opening the panel beside the
// code, and a code action *Replace blocks i→j with linear map…* on those lines.
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { findOnnxReferences, type OnnxReference } from './onnx-references.js';

export const PYTHON_SELECTOR: vscode.DocumentSelector = [
  { language: 'python', scheme: 'file' },
  { language: 'python', scheme: 'untitled' },
  { language: 'python', scheme: 'vscode-notebook-cell' },
];

/** Resolves a literal against the script's folder, then the workspace folder (Python's usual cwd). */
export function resolveModelPath(doc: vscode.TextDocument, literal: string): string | undefined {
  if (path.isAbsolute(literal)) return literal;
  const candidates: string[] = [];
  if (doc.uri.scheme === 'file' || doc.uri.scheme === 'vscode-notebook-cell') candidates.push(path.resolve(path.dirname(doc.uri.fsPath), literal));
  const folder = vscode.workspace.getWorkspaceFolder(doc.uri) ?? vscode.workspace.workspaceFolders?.[0];
  if (folder?.uri.scheme === 'file') candidates.push(path.resolve(folder.uri.fsPath, literal));
  return candidates.find((c) => existsSync(c)) ?? candidates[0];
}

export class OnnxCodeLensProvider implements vscode.CodeLensProvider {
  private readonly changed = new vscode.EventEmitter<void>();
  readonly onDidChangeCodeLenses = this.changed.event;

  refresh(): void {
    this.changed.fire();
  }

  provideCodeLenses(doc: vscode.TextDocument): vscode.CodeLens[] {
    return findOnnxReferences(doc.getText()).flatMap((ref) => {
      const model = resolveModelPath(doc, ref.path);
      if (!model) return [];
      const range = new vscode.Range(ref.line, 0, ref.line, 0);
      return [
        new vscode.CodeLens(range, {
          title: 'Analyze redundancy',
          tooltip: `BlockLens: analyse ${ref.path}${existsSync(model) ? '' : ' (not exported yet)'}`,
          command: 'blocklens.analyze',
          arguments: [vscode.Uri.file(model), { viewColumn: 'beside' }],
        }),
      ];
    });
  }
}

export class OnnxCodeActionProvider implements vscode.CodeActionProvider {
  static readonly kinds = [vscode.CodeActionKind.RefactorRewrite.append('blocklens')];

  provideCodeActions(doc: vscode.TextDocument, range: vscode.Range | vscode.Selection): vscode.CodeAction[] {
    const refs: OnnxReference[] = findOnnxReferences(doc.getText()).filter(
      (r) => (r.line >= range.start.line && r.line <= range.end.line) || (r.literalLine >= range.start.line && r.literalLine <= range.end.line),
    );
    return refs.flatMap((ref) => {
      const model = resolveModelPath(doc, ref.path);
      if (!model) return [];
      const action = new vscode.CodeAction(`Replace blocks i→j with linear map… (${path.basename(model)})`, OnnxCodeActionProvider.kinds[0]);
      action.command = { title: 'Replace blocks i→j with linear map…', command: 'blocklens.replaceBlocks', arguments: [vscode.Uri.file(model)] };
      return [action];
    });
  }
}
