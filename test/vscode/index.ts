// Extension-host test entry (VS Code's `extensionTestsPath` contract: export `run()`). Runs the
// mocha suites bundled with it, writes one result per test to the workspace
// (.blocklens-test-results.json, read by scripts/vscode-harness/run.mjs) and prints
// `N passed, N failed`.
import { writeFileSync } from 'node:fs';
import * as path from 'node:path';
import Mocha from 'mocha';
import * as vscode from 'vscode';

interface TestResult {
  title: string;
  state: 'passed' | 'failed';
  error?: string;
  ms?: number;
}

export async function run(): Promise<void> {
  const mocha = new Mocha({ ui: 'bdd', timeout: 180_000, color: false, reporter: 'spec' });
  mocha.suite.emit('pre-require', globalThis, 'vscode-tests', mocha);
  // An untrusted workspace runs the limited-mode suite only (run.mjs starts one with trust on).
  if (vscode.workspace.isTrusted) await import('./extension.test.js');
  else await import('./untrusted.test.js');
  const results: TestResult[] = [];
  const failures = await new Promise<number>((resolve) => {
    const runner = mocha.run((f) => resolve(f));
    runner.on('pass', (t) => results.push({ title: t.fullTitle(), state: 'passed', ms: t.duration }));
    runner.on('fail', (t, err: Error) => results.push({ title: t.fullTitle(), state: 'failed', error: err?.stack ?? String(err) }));
  });
  const passed = results.filter((r) => r.state === 'passed').length;
  const failed = results.length - passed;
  console.log(`[blocklens-test] ${passed} passed, ${failed} failed`);
  const ws = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
  if (ws) writeFileSync(path.join(ws, '.blocklens-test-results.json'), JSON.stringify({ tests: results, figures: (globalThis as any).__blocklensFigures ?? {} }, null, 2));
  if (failures > 0) throw new Error(`${failures} extension-host test(s) failed`);
}
