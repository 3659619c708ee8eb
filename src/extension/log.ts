// The `BlockLens` output channel: one log for the whole extension, shown from error
// notifications (*Show Log*).
import * as vscode from 'vscode';

let channel: vscode.LogOutputChannel | undefined;

export function initLog(context: vscode.ExtensionContext): vscode.LogOutputChannel {
  channel = vscode.window.createOutputChannel('BlockLens', { log: true });
  context.subscriptions.push(channel);
  return channel;
}

export const log = {
  info: (msg: string) => channel?.info(msg),
  warn: (msg: string) => channel?.warn(msg),
  error: (msg: string) => channel?.error(msg),
  show: () => channel?.show(true),
};

/** An error notification with *Show Log*; resolves when dismissed. */
export async function showError(message: string): Promise<void> {
  log.error(message);
  const choice = await vscode.window.showErrorMessage(message, 'Show Log');
  if (choice === 'Show Log') log.show();
}
