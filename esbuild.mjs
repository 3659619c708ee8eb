// One build script, one entry per runtime. Type-checking is `npm run typecheck` (tsc --noEmit).
import * as esbuild from 'esbuild';

const watch = process.argv.includes('--watch');
const common = {
  bundle: true,
  sourcemap: true,
  logLevel: 'warning',
  // Native and heavy packages stay outside the bundle and are loaded from node_modules.
  external: ['onnxruntime-node', 'sharp', 'vscode'],
};

const entries = [
  { entryPoints: { cli: 'src/cli/main.ts' }, platform: 'node', format: 'cjs', target: 'node20', banner: { js: '#!/usr/bin/env node' } },
  { entryPoints: { worker: 'src/worker/analysis-worker.ts' }, platform: 'node', format: 'cjs', target: 'node20' },
  // The report renderer: one browser bundle (webview.js + webview.css) for the VS Code webview and
  // the CLI's standalone HTML page, which inlines both. No source map: the page must stay one file.
  { entryPoints: { webview: 'webview/src/main.ts' }, platform: 'browser', format: 'iife', target: 'es2022', minify: true, sourcemap: false, legalComments: 'none' },
  // The VS Code extension host side (the only code importing `vscode`), its summary worker and its export job process.
  { entryPoints: { extension: 'src/extension/extension.ts', 'summary-worker': 'src/extension/summary-worker.ts', 'rba-job': 'src/extension/rba-job.ts' }, platform: 'node', format: 'cjs', target: 'node20' },
  // Extension-host tests (mocha inside VS Code's extension host).
  { entryPoints: { 'vscode-tests': 'test/vscode/index.ts' }, platform: 'node', format: 'cjs', target: 'node20', external: ['vscode', 'mocha', 'onnxruntime-node', 'sharp'], outdir: 'dist/test' },
];

for (const e of entries) {
  const opts = { ...common, outdir: 'dist', ...e };
  if (watch) await (await esbuild.context(opts)).watch();
  else await esbuild.build(opts);
}
