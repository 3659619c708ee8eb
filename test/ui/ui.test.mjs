// UI tests: Playwright + Debian chromium against the code-server workbench with BlockLens loaded
// from this checkout. Called by scripts/vscode-harness/run.mjs; returns one result per test and
// saves screenshots under test-results/.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { remoteUri, startServer, withTimeout, workbenchUrl } from '../../scripts/vscode-harness/server.mjs';

const SHOTS = 'test-results';


/** Retries `fn` until it stops throwing (menus appear ~10 s after the workbench loads). */
async function retry(what, fn, ms = 60_000, every = 1000) {
  const t0 = Date.now();
  let last;
  for (;;) {
    try {
      return await fn();
    } catch (e) {
      last = e;
    }
    if (Date.now() - t0 > ms) throw new Error(`${what}: ${last?.message ?? last}`);
    await new Promise((r) => setTimeout(r, every));
  }
}

/** The report webview's document: VS Code nests the page in two iframes. */
function webviewFrame(page, title) {
  return page.frameLocator(`iframe.webview.ready[title="${title}"], iframe.webview.ready`).last().frameLocator('#active-frame');
}

async function explorerRow(page, name) {
  const exact = new RegExp(`^\\s*${name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\s*$`);
  return page.locator('.explorer-folders-view .monaco-list-row').filter({ hasText: exact }).first();
}

/** Installs a VSIX into a fresh extensions folder with code-server's own CLI. */
function installVsix(paths, vsix, extensionsDir) {
  const r = spawnSync(paths.node24, [paths.codeServerEntry, '--extensions-dir', extensionsDir, '--install-extension', vsix], {
    encoding: 'utf8',
    timeout: 180_000,
    env: { ...process.env, XDG_CONFIG_HOME: path.join(extensionsDir, '..', 'xdg-config'), XDG_DATA_HOME: path.join(extensionsDir, '..', 'xdg-data') },
  });
  if (r.status !== 0) throw new Error(`installing ${vsix} failed: ${r.stderr || r.stdout || r.error?.message}`);
}

export async function runUiTests({ paths, root, makeWorkspace, log, vsix }) {
  const results = [];
  mkdirSync(path.join(root, SHOTS), { recursive: true });
  const ws = makeWorkspace();
  let extensionsDir;
  if (vsix) {
    extensionsDir = mkdtempSync(path.join(tmpdir(), 'blocklens-ext-'));
    extensionsDir = path.join(extensionsDir, 'extensions');
    mkdirSync(extensionsDir);
    installVsix(paths, vsix, extensionsDir);
    log(`installed ${path.basename(vsix)}`);
  }
  const s = await startServer({
    paths,
    extensionsDir,
    smokeDriver: true,
    log,
    userSettings: { 'blocklens.samples': 64, 'workbench.colorTheme': 'Default Dark Modern', 'window.commandCenter': false },
  });
  let page;
  const test = async (title, fn, ms = 240_000) => {
    const t0 = Date.now();
    try {
      const skipped = await withTimeout(fn(), ms, title);
      if (typeof skipped === 'string') {
        results.push({ title, state: 'skipped', error: skipped });
        log(`- ${title}: skipped (${skipped})`);
        return;
      }
      results.push({ title, state: 'passed', ms: Date.now() - t0 });
      log(`✔ ${title} (${Date.now() - t0} ms)`);
    } catch (e) {
      results.push({ title, state: 'failed', error: e.message });
      log(`✗ ${title}: ${e.message}`);
      await page?.screenshot({ path: path.join(root, SHOTS, `failed-${results.length}.png`) }).catch(() => {});
    }
  };
  const figures = {};
  try {
    page = await s.browser.newPage({ viewport: { width: 1500, height: 950 } });
    // Content-security-policy violations anywhere (the webviews included) are reported here.
    const cspViolations = [];
    page.on('console', (m) => {
      if (/Content Security Policy|Refused to (load|execute|apply)/i.test(m.text()) && /vscode-cdn|vscode-resource|webview|blocklens/i.test(`${m.text()} ${m.location()?.url ?? ''}`)) cspViolations.push(m.text());
    });
    figures.cspViolations = cspViolations;
    // The extension is loaded from this checkout (development path), as a user would after install.
    const payload = vsix ? [['skipWelcome', 'true']] : [['extensionDevelopmentPath', remoteUri(s.port, root)], ['skipWelcome', 'true']];
    await page.goto(workbenchUrl(s.port, ws, payload), { timeout: 60_000 });
    await page.locator('.explorer-folders-view').waitFor({ timeout: 90_000 });

    await test('right-click a fixture .onnx → Analyze Redundancy → heatmap in the webview', async () => {
      const folder = await explorerRow(page, 'models');
      await folder.click();
      const file = await explorerRow(page, 'vit_tiny.onnx');
      await file.waitFor({ timeout: 20_000 });
      let clickedAt = 0;
      await retry('the explorer menu entry', async () => {
        await file.click({ button: 'right' });
        const item = page.locator('.context-view .monaco-menu .action-label', { hasText: 'Analyze Redundancy' }).first();
        try {
          await item.waitFor({ timeout: 1500 });
        } catch (e) {
          await page.keyboard.press('Escape');
          throw e;
        }
        await page.screenshot({ path: path.join(root, SHOTS, 'ui-explorer-menu.png') });
        clickedAt = Date.now();
        await item.click();
      });
      // Calibration quick pick: take synthetic data.
      const pick = page.locator('.quick-input-widget');
      await pick.waitFor({ state: 'visible', timeout: 20_000 });
      await page.locator('.quick-input-list .monaco-list-row', { hasText: 'Synthetic data' }).first().click();
      const frame = webviewFrame(page);
      await frame.locator('svg[data-heatmap]').first().waitFor({ state: 'visible', timeout: 180_000 });
      figures.rightClickToHeatmapMs = Date.now() - clickedAt;
      log(`right-click → first heatmap: ${figures.rightClickToHeatmapMs} ms`);
      await page.screenshot({ path: path.join(root, SHOTS, 'ui-heatmap.png') });
      // The page runs under the strict policy without tripping it.
      if (figures.cspViolations.length) throw new Error(`CSP violations: ${figures.cspViolations.slice(0, 3).join(' | ')}`);
    });

    await test('select a span and export it, then see the verification figures', async () => {
      const frame = webviewFrame(page);
      const row = frame.locator('tr[data-span]').first();
      await row.waitFor({ timeout: 30_000 });
      await row.click();
      const exportButton = frame.locator('[data-action="export-span"]').first();
      await exportButton.waitFor({ timeout: 10_000 });
      await exportButton.click();
      await frame.locator('[data-verification]').first().waitFor({ state: 'visible', timeout: 180_000 });
      await page.screenshot({ path: path.join(root, SHOTS, 'ui-export-verification.png') });
    });

    await test('Compare shows the exported model\'s report beside the original', async () => {
      const frame = webviewFrame(page);
      await frame.locator('[data-action="compare"]').first().click();
      // The host analyses the exported model (same data) and sends it as `compare`.
      await frame.locator('[data-compare]').first().waitFor({ state: 'visible', timeout: 180_000 });
      await frame.locator('[data-compare]').first().scrollIntoViewIfNeeded();
      await page.screenshot({ path: path.join(root, SHOTS, 'ui-compare.png') });
    });

    await test('CodeLens in a Python file opens the panel beside it', async () => {
      // Close the panel from the first test, then open train.py.
      await page.keyboard.press('Escape');
      await retry('close editors', async () => {
        await page.keyboard.press('Control+K');
        await page.keyboard.press('W');
        await page.locator('.editor-group-container .tab').first().waitFor({ state: 'detached', timeout: 2000 });
      }, 15_000);
      await (await explorerRow(page, 'train.py')).click();
      const lens = page.locator('.contentWidgets .codelens-decoration a', { hasText: 'Analyze redundancy' }).first();
      await lens.waitFor({ timeout: 60_000 });
      await page.screenshot({ path: path.join(root, SHOTS, 'ui-codelens.png') });
      await lens.click();
      // The calibration quick pick offers this model's last choice first.
      await page.locator('.quick-input-widget').waitFor({ state: 'visible', timeout: 20_000 });
      await page.keyboard.press('Enter');
      // Two editor groups side by side: train.py on the left, the report on the right.
      await retry('two editor groups', async () => {
        const n = await page.locator('.editor-group-container').count();
        if (n < 2) throw new Error(`${n} editor group(s)`);
      }, 30_000, 500);
      const groups = page.locator('.editor-group-container');
      await groups.nth(0).locator('.tab', { hasText: 'train.py' }).waitFor({ timeout: 10_000 });
      await groups.nth(1).locator('.tab', { hasText: 'BlockLens: vit_tiny.onnx' }).waitFor({ timeout: 120_000 });
      await webviewFrame(page).locator('svg[data-heatmap]').first().waitFor({ state: 'visible', timeout: 120_000 });
      await page.screenshot({ path: path.join(root, SHOTS, 'ui-codelens-beside.png') });
    });
  } finally {
    await s.stop();
    rmSync(ws, { recursive: true, force: true });
    if (extensionsDir) rmSync(path.dirname(extensionsDir), { recursive: true, force: true });
  }
  if (figures.rightClickToHeatmapMs !== undefined) console.log(`UI figures: ${JSON.stringify({ ...figures, cspViolations: figures.cspViolations?.length })}`);
  return results;
}
