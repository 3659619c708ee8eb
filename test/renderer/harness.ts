// Headless-Chromium harness for the report renderer (webview/ → dist/webview.js). Two ways in:
// - `openStandalone`: the CLI's HTML page from renderReportHtml, loaded from a file;
// - `openWebview`: the VS Code panel's shell (renderWebviewShell) with a fake acquireVsCodeApi
//   that records what the webview posts and keeps its state, like VS Code does.
// Both pages run under their real CSP; any CSP violation or page error is collected.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';

import { renderReportHtml, renderWebviewShell } from '../../src/engine/report/html';
import type { AnalysisReport } from '../../src/engine/report/schema';
import type { FromWebviewMessage, ToWebviewMessage } from '../../src/protocol/webview';

const REPO = path.resolve(__dirname, '../..');
export const RESULTS = path.join(REPO, 'test-results');

let browser: Browser | undefined;
let tmp: string | undefined;

function chromiumPath(): string {
  const r = spawnSync(process.execPath, [path.join(REPO, 'scripts/ensure-chromium.mjs')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  if (r.status !== 0) throw new Error('chromium is not available (scripts/ensure-chromium.mjs failed)');
  return r.stdout.trim().split('\n').pop()!;
}

export async function startBrowser(): Promise<Browser> {
  if (browser) return browser;
  const executablePath = chromiumPath();
  browser = await chromium.launch({
    executablePath,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'],
  });
  tmp = mkdtempSync(path.join(tmpdir(), 'blocklens-renderer-'));
  mkdirSync(RESULTS, { recursive: true });
  return browser;
}

export async function stopBrowser(): Promise<void> {
  await browser?.close();
  browser = undefined;
  if (tmp) rmSync(tmp, { recursive: true, force: true });
  tmp = undefined;
}

export interface Opened {
  page: Page;
  context: BrowserContext;
  /** CSP violations and uncaught page errors seen so far. */
  problems: string[];
  close(): Promise<void>;
}

async function newPage(opts: { colorScheme?: 'light' | 'dark'; init?: string; width?: number }): Promise<Opened> {
  const b = await startBrowser();
  const context = await b.newContext({ viewport: { width: opts.width ?? 1400, height: 1000 }, colorScheme: opts.colorScheme ?? 'light', acceptDownloads: true });
  await context.addInitScript(() => {
    const w = window as unknown as { __csp: string[] };
    w.__csp = [];
    document.addEventListener('securitypolicyviolation', (e) => w.__csp.push(`${e.violatedDirective} blocked ${e.blockedURI || 'inline'} (${e.sourceFile}:${e.lineNumber})`));
  });
  if (opts.init) await context.addInitScript(opts.init);
  const page = await context.newPage();
  const problems: string[] = [];
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`console error: ${m.text()}`);
  });
  return {
    page,
    context,
    problems,
    async close() {
      await context.close();
    },
  };
}

/** Problems including CSP violations recorded inside the page. */
export async function allProblems(o: Opened): Promise<string[]> {
  const csp = await o.page.evaluate(() => (window as unknown as { __csp: string[] }).__csp);
  return [...o.problems, ...csp.map((c) => `CSP: ${c}`)];
}

let counter = 0;

/** The CLI's standalone HTML page for `report`, opened from a file. */
export async function openStandalone(report: AnalysisReport, opts: { colorScheme?: 'light' | 'dark'; width?: number; waitFor?: string } = {}): Promise<Opened & { html: string }> {
  await startBrowser();
  const html = renderReportHtml(report);
  const file = path.join(tmp!, `report-${++counter}.html`);
  writeFileSync(file, html);
  const o = await newPage(opts);
  await o.page.goto(pathToFileURL(file).href);
  await o.page.waitForSelector(opts.waitFor ?? 'main svg[data-heatmap]');
  return { ...o, html };
}

export interface WebviewPage extends Opened {
  /** What the webview posted, in order. */
  posted(): Promise<FromWebviewMessage[]>;
  /** The state the webview last stored with setState. */
  state(): Promise<unknown>;
  send(msg: ToWebviewMessage): Promise<void>;
}

/**
 * The VS Code panel: renderWebviewShell with file URIs, a fake acquireVsCodeApi, and optionally
 * `state` as if VS Code restored it after the panel was hidden and shown again.
 */
export async function openWebview(opts: { state?: unknown; bodyClass?: string; vars?: Record<string, string>; colorScheme?: 'light' | 'dark' } = {}): Promise<WebviewPage> {
  await startBrowser();
  const nonce = `n${++counter}x${Math.random().toString(36).slice(2)}`;
  const dist = path.join(REPO, 'dist');
  const shell = renderWebviewShell({
    scriptUri: pathToFileURL(path.join(dist, 'webview.js')).href,
    styleUri: pathToFileURL(path.join(dist, 'webview.css')).href,
    cspSource: 'file:',
    nonce,
    title: 'BlockLens test panel',
  });
  const file = path.join(tmp!, `panel-${counter}.html`);
  writeFileSync(file, shell);
  const init = `(() => {
    const posted = []; let state = ${JSON.stringify(opts.state ?? null)};
    window.__posted = posted; window.__getState = () => state;
    let acquired = false;
    window.acquireVsCodeApi = () => {
      if (acquired) throw new Error('acquireVsCodeApi called twice');
      acquired = true;
      return { postMessage: (m) => posted.push(JSON.parse(JSON.stringify(m))), getState: () => state, setState: (s) => { state = JSON.parse(JSON.stringify(s)); } };
    };
    const cls = ${JSON.stringify(opts.bodyClass ?? 'vscode-light')};
    const vars = ${JSON.stringify(opts.vars ?? {})};
    document.addEventListener('DOMContentLoaded', () => {
      document.body.classList.add(...cls.split(' ').filter(Boolean));
      for (const [k, v] of Object.entries(vars)) document.documentElement.style.setProperty(k, v);
    }, { once: true });
  })();`;
  const o = await newPage({ init, colorScheme: opts.colorScheme });
  await o.page.goto(pathToFileURL(file).href);
  await o.page.waitForFunction(() => (window as unknown as { __posted: { type: string }[] }).__posted.some((m) => m.type === 'ready'));
  return {
    ...o,
    posted: () => o.page.evaluate(() => (window as unknown as { __posted: FromWebviewMessage[] }).__posted),
    state: () => o.page.evaluate(() => (window as unknown as { __getState: () => unknown }).__getState()),
    send: (msg) => o.page.evaluate((m) => window.postMessage(m, '*'), msg as unknown as Record<string, unknown>),
  };
}

/** Theme variables as VS Code's Dark Modern sets them (a subset the renderer and controls read). */
export const VSCODE_DARK_VARS: Record<string, string> = {
  '--vscode-editor-background': '#1f1f1f',
  '--vscode-editor-foreground': '#cccccc',
  '--vscode-foreground': '#cccccc',
  '--vscode-descriptionForeground': '#9d9d9d',
  '--vscode-editorWidget-background': '#202020',
  '--vscode-widget-border': '#313131',
  '--vscode-focusBorder': '#0078d4',
  '--vscode-button-background': '#0078d4',
  '--vscode-button-foreground': '#ffffff',
  '--vscode-button-secondaryBackground': '#313131',
  '--vscode-button-secondaryForeground': '#cccccc',
  '--vscode-charts-blue': '#3794ff',
  '--vscode-charts-orange': '#d18616',
  '--vscode-charts-green': '#89d185',
  '--vscode-charts-red': '#f14c4c',
  '--vscode-font-family': 'system-ui, sans-serif',
  '--vscode-font-size': '13px',
};

/** VS Code's Dark High Contrast theme (subset). */
export const VSCODE_HC_VARS: Record<string, string> = {
  '--vscode-editor-background': '#000000',
  '--vscode-editor-foreground': '#ffffff',
  '--vscode-foreground': '#ffffff',
  '--vscode-descriptionForeground': '#ffffff',
  '--vscode-editorWidget-background': '#0c141f',
  '--vscode-contrastBorder': '#6fc3df',
  '--vscode-contrastActiveBorder': '#f38518',
  '--vscode-focusBorder': '#f38518',
  '--vscode-button-background': '#000000',
  '--vscode-button-foreground': '#ffffff',
  '--vscode-button-border': '#6fc3df',
  '--vscode-charts-blue': '#3794ff',
  '--vscode-charts-orange': '#d18616',
  '--vscode-charts-green': '#89d185',
  '--vscode-charts-red': '#f14c4c',
};

/** WCAG contrast ratio of two CSS colours as getComputedStyle reports them (`rgb(…)`). */
export function contrast(a: string, b: string): number {
  const lum = (c: string) => {
    const [r, g, bl] = (c.match(/[\d.]+/g) ?? ['0', '0', '0']).slice(0, 3).map((v) => {
      const x = Number(v) / 255;
      return x <= 0.03928 ? x / 12.92 : ((x + 0.055) / 1.055) ** 2.4;
    }) as [number, number, number];
    return 0.2126 * r + 0.7152 * g + 0.0722 * bl;
  };
  const [l1, l2] = [lum(a), lum(b)].sort((x, y) => y - x) as [number, number];
  return (l1 + 0.05) / (l2 + 0.05);
}
