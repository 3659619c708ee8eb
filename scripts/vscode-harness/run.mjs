// Runs BlockLens's tests in a real VS Code:
//   1. extension-host tests (mocha, test/vscode → dist/test/vscode-tests.js) inside the Node
//      extension host of code-server, loaded through the smoke-test driver's payload;
//   2. UI tests (test/ui/ui.test.mjs): Playwright + Debian chromium against the workbench.
// Installs its harness first (idempotent, .cache/vscode-harness). Prints `N passed, N failed`.
//
// Flags: --only host|ui     run one phase
//        --vsix FILE        UI tests against an installed VSIX instead of this checkout
//        --launcher electron  run the extension-host suite with @vscode/test-electron instead
//                             (where VS Code can be downloaded; VSCODE_EXECUTABLE picks a local one)
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { format } from 'node:util';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureHarness } from './setup.mjs';
import { remoteUri, startServer, withTimeout, workbenchUrl } from './server.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const argv = process.argv.slice(2);
const only = argv.includes('--only') ? argv[argv.indexOf('--only') + 1] : undefined;
const vsix = argv.includes('--vsix') ? path.resolve(argv[argv.indexOf('--vsix') + 1]) : undefined;
const launcher = argv.includes('--launcher') ? argv[argv.indexOf('--launcher') + 1] : 'code-server';
const HOST_TIMEOUT_MS = Number(process.env.BLOCKLENS_HOST_TEST_TIMEOUT_MS ?? 15 * 60_000);
const log = (s) => process.stderr.write(`vscode-tests: ${s}\n`);

/** A throwaway workspace with fixture models, broken files and a training script. */
export function makeWorkspace() {
  const ws = mkdtempSync(path.join(tmpdir(), 'blocklens-ws-'));
  const fx = path.join(root, 'test', 'fixtures');
  mkdirSync(path.join(ws, 'models'));
  for (const m of ['vit_tiny.onnx', 'linear_blocks.onnx', 'bert_tiny.onnx']) cpSync(path.join(fx, 'models', m), path.join(ws, 'models', m));
  cpSync(path.join(fx, 'broken'), path.join(ws, 'broken'), { recursive: true });
  writeFileSync(
    path.join(ws, 'train.py'),
    [
      'import torch',
      '',
      'model = build_model()',
      'dummy = torch.randn(1, 3, 32, 32)',
      'torch.onnx.export(',
      '    model,',
      '    dummy,',
      '    "models/vit_tiny.onnx",',
      '    opset_version=17,',
      ')',
      '',
      '# a path literal outside an export call',
      'REFERENCE = "models/linear_blocks.onnx"',
      '',
    ].join('\n'),
  );
  writeFileSync(
    path.join(ws, 'export.ipynb'),
    JSON.stringify({
      cells: [
        { cell_type: 'markdown', metadata: {}, source: ['# Export'] },
        { cell_type: 'code', execution_count: null, metadata: {}, outputs: [], source: ['import torch\n', 'torch.onnx.export(model, x, "models/vit_tiny.onnx")\n'] },
      ],
      metadata: { kernelspec: { name: 'python3', display_name: 'Python 3', language: 'python' }, language_info: { name: 'python' } },
      nbformat: 4,
      nbformat_minor: 5,
    }),
  );
  return ws;
}

function summarize(results) {
  const passed = results.filter((r) => r.state === 'passed').length;
  const skipped = results.filter((r) => r.state === 'skipped').length;
  const failed = results.length - passed - skipped;
  return { passed, failed, skipped };
}
const line = (c) => `${c.passed} passed, ${c.failed} failed${c.skipped ? `, ${c.skipped} skipped` : ''}`;

async function runHostSuiteInCodeServer(paths, { untrusted = false } = {}) {
  const ws = makeWorkspace();
  if (untrusted) {
    // Workspace settings that limited mode must not follow.
    mkdirSync(path.join(ws, '.vscode'));
    writeFileSync(
      path.join(ws, '.vscode', 'settings.json'),
      JSON.stringify({ 'blocklens.defaultData': 'data/evil.npy', 'blocklens.executionProviders': ['cuda'], 'blocklens.samples': 48 }, null, 2),
    );
  }
  const resultsFile = path.join(ws, '.blocklens-test-results.json');
  const s = await startServer({ paths, smokeDriver: true, log, workspaceTrust: untrusted });
  try {
    const payload = [
      ['extensionDevelopmentPath', remoteUri(s.port, root)],
      ['extensionTestsPath', remoteUri(s.port, path.join(root, 'dist', 'test', 'vscode-tests.js'))],
      ['skipWelcome', 'true'],
    ];
    const page = await s.browser.newPage({ viewport: { width: 1400, height: 900 } });
    const exit = new Promise((resolve) => {
      void page.exposeFunction('codeAutomationExit', (code) => resolve(code));
    });
    await page.exposeFunction('codeAutomationLog', (type, args) => {
      const text = Array.isArray(args) ? format(...args) : String(args);
      if (/^\s*(✔|✓|\d+\)|passing|failing|pending|\[blocklens-test\])/.test(text) || type === 'error') process.stdout.write(`  ${text}\n`);
    });
    await page.goto(workbenchUrl(s.port, ws, payload), { timeout: 60_000 });
    const code = await withTimeout(exit, HOST_TIMEOUT_MS, 'the extension-host tests to finish');
    log(`extension host exited with ${code}`);
    let results = [];
    if (existsSync(resultsFile)) {
      const parsed = JSON.parse(readFileSync(resultsFile, 'utf8'));
      results = parsed.tests;
      if (parsed.figures && Object.keys(parsed.figures).length) console.log(`extension-host figures: ${JSON.stringify(parsed.figures)}`);
    }
    else results = [{ title: 'extension-host suite wrote results', state: 'failed', error: `no results file (exit ${code})` }];
    if (code !== 0 && !results.some((r) => r.state !== 'passed')) results.push({ title: 'extension host exit status', state: 'failed', error: `exit ${code}` });
    return results;
  } finally {
    await s.stop();
    rmSync(ws, { recursive: true, force: true });
  }
}

async function runHostSuiteInElectron() {
  const { runTests } = await import('@vscode/test-electron');
  const ws = makeWorkspace();
  try {
    const code = await runTests({
      extensionDevelopmentPath: root,
      extensionTestsPath: path.join(root, 'dist', 'test', 'vscode-tests.js'),
      launchArgs: [ws, '--disable-extensions', '--disable-workspace-trust'],
      ...(process.env.VSCODE_EXECUTABLE ? { vscodeExecutablePath: process.env.VSCODE_EXECUTABLE } : {}),
    }).catch((e) => {
      log(`test-electron: ${e.message}`);
      return 1;
    });
    const f = path.join(ws, '.blocklens-test-results.json');
    return existsSync(f) ? JSON.parse(readFileSync(f, 'utf8')).tests : [{ title: 'electron run', state: 'failed', error: `exit ${code}` }];
  } finally {
    rmSync(ws, { recursive: true, force: true });
  }
}

async function main() {
  if (!existsSync(path.join(root, 'dist', 'extension.js')) || !existsSync(path.join(root, 'dist', 'test', 'vscode-tests.js'))) {
    throw new Error('dist/extension.js or dist/test/vscode-tests.js is missing: run `npm run build` first');
  }
  const all = [];
  if (launcher === 'electron') {
    all.push(...(await runHostSuiteInElectron()));
  } else {
    const t0 = Date.now();
    const paths = ensureHarness();
    log(`harness ready (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
    if (!only || only === 'host') {
      for (const untrusted of [false, true]) {
        const r = await runHostSuiteInCodeServer(paths, { untrusted });
        const c = summarize(r);
        console.log(`extension-host tests${untrusted ? ' (untrusted workspace)' : ''}: ${line(c)}`);
        for (const t of r) if (t.state !== 'passed') console.log(`  ${t.state === 'skipped' ? '-' : '✗'} ${t.title}: ${t.error}`);
        all.push(...r);
      }
    }
    if (!only || only === 'ui') {
      const { runUiTests } = await import('../../test/ui/ui.test.mjs');
      const r = await runUiTests({ paths, root, makeWorkspace, log, vsix });
      const c = summarize(r);
      console.log(`UI tests: ${line(c)}`);
      for (const t of r) if (t.state !== 'passed') console.log(`  ${t.state === 'skipped' ? '-' : '✗'} ${t.title}: ${t.error}`);
      all.push(...r);
    }
  }
  const c = summarize(all);
  console.log(`vscode-tests: ${line(c)}`);
  return c.failed === 0 && c.passed > 0 ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (e) => {
    console.error(`vscode-tests: error: ${e.message}`);
    console.log('vscode-tests: 0 passed, 1 failed');
    process.exit(1);
  },
);
