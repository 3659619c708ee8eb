// The HTML report: one self-contained page with the webview renderer's bundle (dist/webview.js +
// dist/webview.css, built by esbuild.mjs from webview/) inlined beside the report JSON. The same
// bundle draws the VS Code panel, so the page has the panel's charts and interactivity.
// No network: a strict CSP with a per-page nonce; no inline handlers, no eval.

import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import * as path from 'node:path';

import type { AnalysisReport } from './schema';

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Escape text for HTML element content and attribute values. */
export function escapeHtml(value: unknown): string {
  return String(value).replace(/[&<>"']/g, (c) => ESCAPES[c]!);
}

/** Escape for a double-quoted attribute value; single quotes stay readable (CSP source lists). */
function attr(value: string): string {
  return value.replace(/[&"<>]/g, (c) => ESCAPES[c]!);
}

/** The renderer bundle to inline. */
export interface WebviewAssets {
  js: string;
  css: string;
}

const ROOT_ID = 'blocklens-root';
const REPORT_ID = 'blocklens-report';

/** Folders that may hold webview.js: next to the running bundle (dist/), or dist/ from the source tree. */
function assetDirs(): string[] {
  const here = typeof __dirname === 'string' ? __dirname : process.cwd();
  return [here, path.resolve(here, '../../../dist'), path.resolve(process.cwd(), 'dist')];
}

let cached: WebviewAssets | undefined;

/** Read dist/webview.js and dist/webview.css (built by `npm run build`). */
export function loadWebviewAssets(): WebviewAssets {
  if (cached) return cached;
  for (const dir of assetDirs()) {
    const js = path.join(dir, 'webview.js');
    const css = path.join(dir, 'webview.css');
    if (existsSync(js) && existsSync(css)) {
      cached = { js: readFileSync(js, 'utf8'), css: readFileSync(css, 'utf8') };
      return cached;
    }
  }
  throw new Error(`HTML report: the renderer bundle webview.js was not found (looked in ${assetDirs().join(', ')}); run \`npm run build\` first.`);
}

/**
 * Make script text safe inside `<script>…</script>`: the HTML tokenizer ends or changes state at
 * `</script`, `<script` and `<!--`. Replacing their `<` by `\x3C` keeps every string, template
 * and regular-expression literal the same value (only `RegExp#source` and `String.raw` would see
 * the escape), and minified code outside literals never contains those sequences.
 */
export function escapeInlineScript(js: string): string {
  return js.replace(/<(?=\/?script|!--)/gi, '\\x3C');
}

/** Make CSS safe inside `<style>…</style>` (`\3C` is `<` in CSS strings and identifiers). */
export function escapeInlineStyle(css: string): string {
  return css.replace(/<(?=\/?style|!--)/gi, '\\3C ');
}

/** JSON that is safe as the text of `<script type="application/json">` and parses back to the same value. */
export function inlineJson(value: unknown): string {
  return JSON.stringify(value)
    .replace(/</g, '\\u003c')
    .replace(/>/g, '\\u003e')
    .replace(/&/g, '\\u0026')
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029');
}

function baseName(p: string): string {
  const parts = p.split(/[\\/]/).filter((s) => s.length > 0);
  return parts.length ? parts[parts.length - 1]! : p;
}

/** Render the report as a single self-contained HTML page: the renderer bundle, its CSS and the report JSON inline. */
export function renderReportHtml(report: AnalysisReport, assets: WebviewAssets = loadWebviewAssets()): string {
  const nonce = randomBytes(18).toString('base64');
  const csp = [
    "default-src 'none'",
    `script-src 'nonce-${nonce}'`,
    `style-src 'nonce-${nonce}'`,
    // PNG export draws the SVG through an <img> (data:); downloads use blob: links.
    'img-src data: blob:',
    "base-uri 'none'",
    "form-action 'none'",
  ].join('; ');
  return (
    `<!doctype html>\n<html lang="en" data-host="standalone"><head><meta charset="utf-8">\n` +
    `<meta http-equiv="Content-Security-Policy" content="${attr(csp)}">\n` +
    `<meta name="viewport" content="width=device-width, initial-scale=1">\n` +
    `<meta name="color-scheme" content="light dark">\n` +
    `<meta name="generator" content="${escapeHtml(report.tool.name)} ${escapeHtml(report.tool.version)}">\n` +
    `<title>BlockLens · ${escapeHtml(baseName(report.model.path))}</title>\n` +
    `<style nonce="${nonce}">${escapeInlineStyle(assets.css)}</style>\n` +
    `</head>\n<body>\n` +
    `<div id="${ROOT_ID}"><noscript>This report is drawn by a script; open it in a browser with JavaScript enabled. The data is in the JSON below.</noscript></div>\n` +
    `<script type="application/json" id="${REPORT_ID}">${inlineJson(report)}</script>\n` +
    `<script nonce="${nonce}">${escapeInlineScript(assets.js)}</script>\n` +
    `</body></html>\n`
  );
}

/** What a host page needs to load the renderer from files (the VS Code webview). */
export interface WebviewShellOptions {
  /** URI of dist/webview.js as the webview may load it (`webview.asWebviewUri`). */
  scriptUri: string;
  /** URI of dist/webview.css. */
  styleUri: string;
  /** `webview.cspSource`. */
  cspSource: string;
  /** A fresh random nonce per page. */
  nonce: string;
  title?: string;
}

/**
 * The HTML of the VS Code panel: the same root element, the bundle from files, and a CSP that allows
 * only this nonce's script and the extension's own stylesheet. The renderer then posts `ready` and
 * waits for `init` (src/protocol/webview.ts).
 */
export function renderWebviewShell(o: WebviewShellOptions): string {
  const csp = [
    "default-src 'none'",
    `script-src 'nonce-${o.nonce}'`,
    `style-src ${o.cspSource} 'nonce-${o.nonce}'`,
    `img-src ${o.cspSource} data: blob:`,
    `font-src ${o.cspSource}`,
  ].join('; ');
  return (
    `<!doctype html>\n<html lang="en"><head><meta charset="utf-8">\n` +
    `<meta http-equiv="Content-Security-Policy" content="${attr(csp)}">\n` +
    `<meta name="viewport" content="width=device-width, initial-scale=1">\n` +
    `<title>${escapeHtml(o.title ?? 'BlockLens')}</title>\n` +
    `<link rel="stylesheet" nonce="${escapeHtml(o.nonce)}" href="${escapeHtml(o.styleUri)}">\n` +
    `</head>\n<body>\n<div id="${ROOT_ID}"></div>\n` +
    `<script nonce="${escapeHtml(o.nonce)}" src="${escapeHtml(o.scriptUri)}"></script>\n` +
    `</body></html>\n`
  );
}
