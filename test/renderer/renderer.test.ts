// The report renderer alone, in headless Chromium: the CLI's standalone page and the VS Code
// panel's shell (with a fake acquireVsCodeApi), each under its real CSP. Screenshots go to
// test-results/renderer-*.png.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';

import type { FromWebviewMessage } from '../../src/protocol/webview';
import { SYNTHETIC_DATA_WARNING } from '../../src/engine/report/schema';
import { exampleReport, reportWithSpans } from './fixtures';
import { fixture, manifest, REPO } from '../helpers/fixtures';
import { allProblems, contrast, openStandalone, openWebview, RESULTS, startBrowser, stopBrowser, VSCODE_DARK_VARS, VSCODE_HC_VARS, type Opened } from './harness';

const ALL = { exportSpan: true, rerun: true, reveal: true, analyzeNew: true, compare: true, saveFile: true };

async function noProblems(o: Opened): Promise<void> {
  assert.deepEqual(await allProblems(o), [], 'no page errors, console errors or CSP violations');
}

/** Visible text of the page without the screen-reader-only tables. */
async function visibleText(o: Opened): Promise<string> {
  return o.page.evaluate(() => (document.querySelector('main') as HTMLElement).innerText);
}

describe('report renderer in headless Chromium', { timeout: 180_000 }, () => {
  before(async () => {
    await startBrowser();
  });
  after(async () => {
    await stopBrowser();
  });

  it('standalone page: draws every section from the inlined report, requests nothing from the network, breaks no CSP rule', async () => {
    const requests: string[] = [];
    const o = await openStandalone(exampleReport(12));
    o.page.on('request', (r) => requests.push(r.url()));
    try {
      // No helper functions inside evaluate callbacks: tsx would wrap them in a __name() the page lacks.
      const facts = await o.page.evaluate(() => {
        const hm = document.querySelector('svg[data-heatmap]')!;
        return {
          heatmap: hm.getAttribute('data-heatmap'),
          cells: hm.querySelectorAll('rect.c').length,
          yLabels: [...hm.querySelectorAll('.y-axis .tick text')].map((t) => t.textContent),
          xLabels: hm.querySelectorAll('.x-axis .tick text').length,
          legendTicks: hm.querySelectorAll('.legend-axis .tick').length,
          bars: document.querySelectorAll('svg[data-bars] rect.bar').length,
          barCharts: [...document.querySelectorAll('svg[data-bars]')].map((s) => s.getAttribute('data-bars')),
          curves: [...document.querySelectorAll('svg[data-curve]')].map((s) => s.getAttribute('data-curve')),
          errbars: document.querySelectorAll('svg[data-curve="dr"] path.errbar').length,
          perClass: document.querySelectorAll('[data-per-class] svg rect.sc').length,
          blockRows: document.querySelectorAll('#blocks tbody tr').length,
          radios: [...document.querySelectorAll('vscode-radio')].map((r) => (r as HTMLElement & { value: string }).value),
          buttonsDefined: !!customElements.get('vscode-button') && !!customElements.get('vscode-radio-group'),
          hiddenTables: document.querySelectorAll('.sr-only table').length,
          title: document.title,
          h1: document.querySelector('h1')!.textContent,
          spansSection: document.querySelectorAll('#spans').length,
        };
      });
      assert.equal(facts.heatmap, 'cka');
      assert.equal(facts.cells, 144);
      assert.deepEqual(facts.yLabels, Array.from({ length: 12 }, (_, i) => `${i} layer.${i}`), 'block names on the rows');
      assert.equal(facts.xLabels, 12);
      assert.ok(facts.legendTicks >= 3);
      assert.deepEqual(facts.barCharts, ['br', 'relativeMse', 'blockInfluence'], 'BR beside the scale-free measures');
      assert.equal(facts.bars, 36);
      assert.deepEqual(facts.curves, ['dr', 'probe', 'gini']);
      assert.ok(facts.errbars >= 10, 'error bars on the DR curve');
      assert.equal(facts.perClass, 13 * 10);
      assert.equal(facts.blockRows, 12);
      assert.deepEqual(facts.radios, ['cka', 'ckaUnbiased', 'cosine', 'brMatrix']);
      assert.ok(facts.buttonsDefined, '@vscode-elements registered from the inlined bundle');
      assert.ok(facts.hiddenTables >= 7, 'each chart has a table as its text alternative');
      assert.equal(facts.title, 'BlockLens · vit_tiny.onnx');
      assert.equal(facts.h1, 'vit_tiny.onnx');
      assert.equal(facts.spansSection, 0, 'no span table without spans');
      const text = await visibleText(o);
      for (const bad of ['NaN', 'undefined', '[object Object]', 'Infinity']) assert.ok(!text.includes(bad), `page shows ${bad}`);
      assert.match(text, /synthetic data shows structure, not task behaviour/);
      assert.match(text, /2025-11-23 10:15:00 UTC/);
      // A vscode-button rendered by Lit under the CSP has a shadow root with its label slot.
      assert.ok(await o.page.evaluate(() => !!document.querySelector('vscode-button')?.shadowRoot?.querySelector('slot')));
      await noProblems(o);
      assert.deepEqual(requests.filter((u) => !/^(file|data|blob):/.test(u)), []);
      await o.page.screenshot({ path: path.join(RESULTS, 'renderer-standalone-light.png'), fullPage: true });
    } finally {
      await o.close();
    }
  });

  it('synthetic data: the note says it once, the warnings box keeps only the other warnings', async () => {
    const o = await openStandalone(exampleReport(6, { source: 'synthetic', warnings: [SYNTHETIC_DATA_WARNING, 'probe: classes without held-out samples are left out of perClass: 8'] }));
    try {
      assert.equal(await o.page.locator('[data-synthetic]').count(), 1);
      const box = await o.page.locator('[data-warnings]').innerText();
      assert.match(box, /^!\s*1 warning\n/);
      assert.match(box, /classes without held-out samples/);
      assert.ok(!(await visibleText(o)).includes(SYNTHETIC_DATA_WARNING), 'the synthetic-data warning is not repeated');
      await noProblems(o);
    } finally {
      await o.close();
    }
  });

  it('the CLI writes a page for a real fixture model that draws in Chromium (bundle found beside dist/cli.js)', async () => {
    const m = manifest.models.vit_tiny!;
    const dir = mkdtempSync(path.join(tmpdir(), 'blocklens-cli-html-'));
    try {
      const html = path.join(dir, 'report.html');
      const json = path.join(dir, 'report.json');
      const r = spawnSync(process.execPath, [path.join(REPO, 'dist/cli.js'), 'analyze', fixture(m.file), '--data', fixture('data/digits_x.npy'), '--labels', fixture('data/digits_labels.npy'), '--samples', '128', '--out', json, '--html', html, '--quiet'], { encoding: 'utf8', cwd: dir });
      assert.equal(r.status, 0, r.stderr);
      const report = JSON.parse(readFileSync(json, 'utf8'));
      const b = await startBrowser();
      const context = await b.newContext({ viewport: { width: 1400, height: 1000 } });
      const page = await context.newPage();
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(e.message));
      page.on('console', (msg) => msg.type() === 'error' && errors.push(msg.text()));
      try {
        await page.goto(pathToFileURL(html).href);
        await page.waitForSelector('svg[data-heatmap] rect.c');
        const L = report.blocks.length;
        assert.equal(await page.locator('svg[data-heatmap] rect.c').count(), L * L);
        assert.equal(await page.locator('#blocks tbody tr').count(), L);
        assert.equal(await page.locator('svg[data-curve="probe"]').count(), 1, 'labels give the probe curve');
        assert.ok(report.spans?.length > 0, 'analyze ranks spans');
        assert.equal(await page.locator('#spans tbody tr').count(), report.spans.length, 'one table row per ranked span');
        await page.locator('#spans tbody tr').first().click();
        assert.match(await page.locator('#selection h3').innerText(), new RegExp(`^Span ${report.spans[0].from}→${report.spans[0].to}$`));
        assert.deepEqual(errors, []);
        await page.screenshot({ path: path.join(RESULTS, 'renderer-cli-vit_tiny.png'), fullPage: true });
      } finally {
        await context.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('shows a value tooltip on hover and on keyboard focus', async () => {
    const r = exampleReport(12);
    const o = await openStandalone(r);
    try {
      await o.page.hover('svg[data-heatmap] rect.c[data-i="3"][data-j="5"]');
      const tip = o.page.locator('#blocklens-tooltip');
      await tip.waitFor({ state: 'visible' });
      const text = await tip.innerText();
      assert.match(text, /3 · \/encoder\/layer\.3\s+×\s+5 · \/encoder\/layer\.5/);
      assert.ok(text.includes(`CKA ${String(r.metrics.cka[3]![5]).slice(0, 6)}`), text);
      await o.page.mouse.move(2, 2);
      await tip.waitFor({ state: 'hidden' });
      await o.page.focus('svg[data-heatmap] rect.c[tabindex="0"]');
      await tip.waitFor({ state: 'visible' });
      assert.match(await tip.innerText(), /0 · \/encoder\/layer\.0\s+×\s+0 · \/encoder\/layer\.0/);
      await o.page.hover('svg[data-bars="br"] rect.bar[data-block="7"]');
      assert.match(await tip.innerText(), /7 · \/encoder\/layer\.7[\s\S]*−BR/);
      await noProblems(o);
    } finally {
      await o.close();
    }
  });

  it('selects a span by clicking a cell, with the keyboard, from a bar and from a table row', async () => {
    const o = await openStandalone(reportWithSpans(12));
    try {
      const sent = () => o.page.evaluate(() => (window as unknown as { __blocklensSent: FromWebviewMessage[] }).__blocklensSent);
      await o.page.click('svg[data-heatmap] rect.c[data-i="6"][data-j="2"]');
      assert.match(await o.page.locator('#selection h3').innerText(), /^Span 2→6$/);
      assert.match(await o.page.locator('#selection').innerText(), /blocks 3–6 \(4\)/);
      assert.equal(await o.page.getAttribute('svg[data-heatmap] rect.selection', 'visibility'), 'visible');
      assert.deepEqual((await sent()).at(-1), { type: 'selectSpan', from: 2, to: 6 });
      // Standalone: nothing can run the export, so the button is disabled and the CLI line is shown.
      assert.equal(await o.page.getAttribute('[data-action="export-span"]', 'disabled'), '');
      assert.match(await o.page.locator('#selection').innerText(), /blocklens rba \/home\/ada\/models\/vit_tiny\.onnx --from 2 --to 6/);

      // Keyboard: the focused cell moves with the arrows; Enter selects.
      await o.page.focus('svg[data-heatmap] rect.c[data-i="6"][data-j="2"]');
      for (const k of ['ArrowRight', 'ArrowRight', 'ArrowUp', 'ArrowUp', 'ArrowUp']) await o.page.keyboard.press(k);
      assert.deepEqual(await o.page.evaluate(() => [(document.activeElement as SVGElement).dataset.i, (document.activeElement as SVGElement).dataset.j]), ['3', '4']);
      assert.equal(await o.page.locator('svg[data-heatmap] rect.c[tabindex="0"]').count(), 1, 'roving tabindex');
      await o.page.keyboard.press('Enter');
      assert.deepEqual((await sent()).at(-1), { type: 'selectSpan', from: 3, to: 4 });
      await o.page.keyboard.press('End');
      await o.page.keyboard.press('Space');
      assert.deepEqual((await sent()).at(-1), { type: 'selectSpan', from: 3, to: 11 });

      // A bar selects that one block (from its input).
      await o.page.click('svg[data-bars="br"] rect.bar[data-block="0"]');
      assert.deepEqual((await sent()).at(-1), { type: 'selectSpan', from: -1, to: 0 });
      assert.match(await o.page.locator('#selection').innerText(), /the input of block 0/);

      // The ranked span table: rows in rank order, Enter on a row selects it and marks it.
      const rows = o.page.locator('#spans tbody tr');
      assert.equal(await rows.count(), 10);
      const second = rows.nth(1);
      const spanAttr = (await second.getAttribute('data-span'))!;
      const [from, to] = spanAttr.split(':').map(Number);
      await second.focus();
      await o.page.keyboard.press('Enter');
      assert.deepEqual((await sent()).at(-1), { type: 'selectSpan', from, to });
      assert.equal(await second.getAttribute('aria-selected'), 'true');
      assert.match(await o.page.locator('#selection').innerText(), /linear map\s+rel\. err/);
      assert.match(await o.page.locator('#selection').innerText(), /at last block\s+rel\. err/);
      assert.match(await o.page.locator('#spans thead').innerText(), /AT LAST BLOCK/i);
      assert.match(await o.page.locator('#spans').innerText(), /pooled rows[\s\S]*800 train \/ 200 held-out[\s\S]*1 span was left out/);
      await o.page.keyboard.press('ArrowDown');
      assert.equal(await o.page.evaluate(() => (document.activeElement as HTMLElement).dataset.span), await rows.nth(2).getAttribute('data-span'));
      await noProblems(o);
    } finally {
      await o.close();
    }
  });

  it('switches the metric: the heatmap, its values and the tooltip follow', async () => {
    const r = exampleReport(12);
    const o = await openStandalone(r);
    try {
      await o.page.click('vscode-radio[data-metric="cosine"]');
      await o.page.waitForSelector('svg[data-heatmap="cosine"]');
      assert.equal(await o.page.locator('svg[data-heatmap]').count(), 1);
      const label = await o.page.getAttribute('svg[data-heatmap] rect.c[data-i="1"][data-j="4"]', 'aria-label');
      assert.match(label!, new RegExp(`Cosine ${String(r.metrics.cosine[1]![4])}`));
      await o.page.click('vscode-radio[data-metric="brMatrix"]');
      await o.page.waitForSelector('svg[data-heatmap="brMatrix"]');
      assert.match(await o.page.locator('[data-metric="brMatrix"] .chart-note').innerText(), /log \|value\|/);
      // Keyboard: arrow keys move through the radio group.
      await o.page.focus('vscode-radio[data-metric="brMatrix"]');
      await o.page.keyboard.press('ArrowLeft');
      await o.page.waitForSelector('svg[data-heatmap="cosine"]');
      await noProblems(o);
    } finally {
      await o.close();
    }
  });

  it('follows the theme: light and dark in the standalone page, readable text in both', async () => {
    const colours: Record<string, { bg: string; fg: string; card: string }> = {};
    for (const scheme of ['light', 'dark'] as const) {
      const o = await openStandalone(reportWithSpans(12), { colorScheme: scheme });
      try {
        await o.page.click('svg[data-heatmap] rect.c[data-i="7"][data-j="4"]');
        colours[scheme] = await o.page.evaluate(() => ({
          bg: getComputedStyle(document.body).backgroundColor,
          fg: getComputedStyle(document.body).color,
          card: getComputedStyle(document.querySelector('.card')!).backgroundColor,
        }));
        const c = colours[scheme]!;
        assert.ok(contrast(c.fg, c.bg) >= 7, `${scheme}: body text contrast ${contrast(c.fg, c.bg).toFixed(1)}`);
        assert.ok(contrast(c.fg, c.card) >= 7, `${scheme}: card text contrast`);
        await noProblems(o);
        await o.page.screenshot({ path: path.join(RESULTS, `renderer-standalone-${scheme}-top.png`), clip: { x: 0, y: 0, width: 1400, height: 1000 } });
        await o.page.locator('#similarity').screenshot({ path: path.join(RESULTS, `renderer-heatmap-${scheme}.png`) });
      } finally {
        await o.close();
      }
    }
    assert.notEqual(colours.light!.bg, colours.dark!.bg);
    assert.notEqual(colours.light!.fg, colours.dark!.fg);
  });

  it('VS Code panel: ready → init handshake, theme variables, intents posted back, progress, verification, error', async () => {
    const r = reportWithSpans(12);
    const o = await openWebview({ bodyClass: 'vscode-dark', vars: VSCODE_DARK_VARS, colorScheme: 'dark' });
    try {
      assert.deepEqual(await o.posted(), [{ type: 'ready' }]);
      await o.send({ type: 'init', report: r, capabilities: ALL });
      await o.page.waitForSelector('svg[data-heatmap]');
      const bg = await o.page.evaluate(() => getComputedStyle(document.body).backgroundColor);
      assert.equal(bg, 'rgb(31, 31, 31)', 'editor background from the VS Code variable');
      await o.send({ type: 'progress', phase: 'analyze: inference', done: 3, total: 10 });
      assert.match(await o.page.locator('.status').innerText(), /analyze: inference\s+3 \/ 10/);

      await o.page.click('svg[data-heatmap] rect.c[data-i="5"][data-j="8"]');
      const exportBtn = o.page.locator('[data-action="export-span"]');
      assert.equal(await exportBtn.innerText(), 'Replace blocks 5→8 with linear map');
      assert.equal(await exportBtn.getAttribute('disabled'), null);
      await exportBtn.click();
      assert.deepEqual((await o.posted()).slice(-2), [
        { type: 'selectSpan', from: 5, to: 8 },
        { type: 'exportSpan', from: 5, to: 8, method: 'linear' },
      ]);
      assert.equal(await o.page.locator('[data-action="export-span"]').innerText(), 'Exporting…');

      await o.send({
        type: 'verification',
        figures: {
          spans: [{ from: 5, to: 8 }],
          method: 'linear',
          output: '/home/ada/models/vit_tiny.rba-5-8.onnx',
          relMse: 0.0123,
          cka: 0.9912,
          top1Agreement: 0.985,
          accuracy: { before: 0.8812, after: 0.874 },
          parameters: { before: 86_300_000, after: 65_100_000 },
          sizeBytes: { before: 345_000_000, after: 260_000_000 },
          latencyMs: { before: 41.2, after: 31.0 },
          samples: 200,
        },
      });
      const ver = o.page.locator('[data-verification]');
      await ver.waitFor();
      const vt = await ver.innerText();
      for (const want of [/output rel\. MSE\s+0\.0123/, /output CKA\s+0\.9912/, /top-1 agreement\s+98\.5%/, /accuracy\s+88\.1%\s+87\.4%/, /parameters\s+86\.3 M\s+65\.1 M/, /median latency\s+41\.2 ms\s+31 ms/, /vit_tiny\.rba-5-8\.onnx/]) assert.match(vt, want);
      await o.page.click('[data-action="reveal"]');
      await o.page.click('[data-action="compare"]');
      await o.page.click('[data-action="analyze-exported"]');
      await o.page.click('[data-action="rerun"]');
      assert.deepEqual((await o.posted()).slice(-4), [
        { type: 'reveal', path: '/home/ada/models/vit_tiny.rba-5-8.onnx' },
        { type: 'compare', path: '/home/ada/models/vit_tiny.rba-5-8.onnx' },
        { type: 'analyzeNew', path: '/home/ada/models/vit_tiny.rba-5-8.onnx' },
        { type: 'rerun' },
      ]);
      const exported = exampleReport(9);
      exported.model.path = '/home/ada/models/vit_tiny.rba-5-8.onnx';
      await o.send({ type: 'compare', report: exported, label: 'after RBA 5→8' });
      assert.match(await o.page.locator('[data-compare]').innerText(), /blocks\s+12\s+9/);
      assert.deepEqual(
        await o.page.evaluate(() => [...document.querySelectorAll('#compare svg[data-bars]')].map((b) => b.querySelectorAll('rect.bar').length)),
        [12, 9],
        'per-block change of both models side by side',
      );
      await o.page.locator('#compare').screenshot({ path: path.join(RESULTS, 'renderer-compare-dark.png') });
      await o.page.locator('#selection').screenshot({ path: path.join(RESULTS, 'renderer-verification-dark.png') });

      await o.send({ type: 'error', file: '/home/ada/models/vit_tiny.onnx', message: 'export failed: widths differ' });
      assert.match(await o.page.locator('[role="alert"]').innerText(), /vit_tiny\.onnx:\s*export failed: widths differ/);
      // Unknown message types are ignored (the protocol only grows).
      await o.send({ type: 'somethingNew' } as never);
      await noProblems(o);
      await o.page.screenshot({ path: path.join(RESULTS, 'renderer-vscode-dark.png'), fullPage: false });
    } finally {
      await o.close();
    }
  });

  it('VS Code panel: UI state survives hide and show (getState/setState)', async () => {
    const r = reportWithSpans(12);
    const first = await openWebview();
    let saved: unknown;
    try {
      await first.send({ type: 'init', report: r, capabilities: ALL });
      await first.page.waitForSelector('svg[data-heatmap]');
      await first.page.click('vscode-radio[data-metric="ckaUnbiased"]');
      await first.page.waitForSelector('svg[data-heatmap="ckaUnbiased"]');
      await first.page.click('svg[data-heatmap] rect.c[data-i="2"][data-j="9"]');
      saved = await first.state();
      assert.deepEqual((saved as { metric: string }).metric, 'ckaUnbiased');
      assert.deepEqual((saved as { selection: unknown }).selection, { from: 2, to: 9 });
    } finally {
      await first.close();
    }
    // VS Code recreates the page and hands back the state; the host sends init again.
    const second = await openWebview({ state: saved });
    try {
      // Progress can come before the report (a re-run); the report then replaces it.
      await second.send({ type: 'progress', phase: 'analyze: statistics', done: 1, total: 4 });
      assert.match(await second.page.locator('.status').innerText(), /analyze: statistics\s+1 \/ 4/);
      await second.send({ type: 'init', report: r, capabilities: ALL });
      await second.page.locator('.status').waitFor({ state: 'hidden' });
      await second.page.waitForSelector('svg[data-heatmap="ckaUnbiased"]');
      assert.match(await second.page.locator('#selection h3').innerText(), /^Span 2→9$/);
      assert.equal(await second.page.evaluate(() => (document.querySelector('vscode-radio[data-metric="ckaUnbiased"]') as HTMLElement & { checked: boolean }).checked), true);
      assert.equal(await second.page.locator('svg[data-heatmap] rect.c[tabindex="0"]').getAttribute('data-i'), '2');
      await noProblems(second);
    } finally {
      await second.close();
    }
  });

  it('exports the heatmap to SVG and PNG: through the host in VS Code, as downloads in the page', async () => {
    const o = await openWebview({ bodyClass: 'vscode-dark', vars: VSCODE_DARK_VARS });
    try {
      await o.send({ type: 'init', report: exampleReport(8), capabilities: ALL });
      await o.page.waitForSelector('svg[data-heatmap]');
      // Buttons work from the keyboard too.
      await o.page.focus('[data-action="export-svg"]');
      await o.page.keyboard.press('Enter');
      await o.page.focus('[data-action="export-png"]');
      await o.page.keyboard.press('Space');
      await o.page.waitForFunction(() => (window as unknown as { __posted: { type: string }[] }).__posted.filter((m) => m.type === 'saveFile').length === 2);
      const saves = (await o.posted()).filter((m): m is Extract<FromWebviewMessage, { type: 'saveFile' }> => m.type === 'saveFile');
      assert.equal(saves[0]!.fileName, 'vit_tiny-cka.svg');
      assert.equal(saves[0]!.mime, 'image/svg+xml');
      assert.match(saves[0]!.data, /^<\?xml[^>]*>\n<svg[^>]*xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
      assert.equal((saves[0]!.data.match(/<rect[^>]*data-i=/g) ?? []).length, 64, 'every cell in the SVG');
      assert.doesNotMatch(saves[0]!.data, /var\(--|class="/, 'colours resolved, no page CSS needed');
      assert.equal(saves[1]!.fileName, 'vit_tiny-cka.png');
      const png = Buffer.from(saves[1]!.data, 'base64');
      assert.equal(png.subarray(1, 4).toString('latin1'), 'PNG');
      assert.ok(png.readUInt32BE(16) > 600, `PNG width ${png.readUInt32BE(16)} (2× the SVG)`);
      await noProblems(o);
    } finally {
      await o.close();
    }
    const s = await openStandalone(exampleReport(8));
    try {
      const [download] = await Promise.all([s.page.waitForEvent('download'), s.page.click('[data-action="export-svg"]')]);
      assert.equal(download.suggestedFilename(), 'vit_tiny-cka.svg');
      const file = await download.path();
      assert.match(readFileSync(file!, 'utf8'), /<svg/);
      const [pngDl] = await Promise.all([s.page.waitForEvent('download'), s.page.click('[data-action="export-png"]')]);
      assert.equal(pngDl.suggestedFilename(), 'vit_tiny-cka.png');
      assert.equal(readFileSync((await pngDl.path())!).subarray(1, 4).toString('latin1'), 'PNG');
      await noProblems(s);
    } finally {
      await s.close();
    }
  });

  it('VS Code panel: follows a live theme change (body class and variables) without a redraw', async () => {
    const o = await openWebview({ bodyClass: 'vscode-light', vars: { '--vscode-editor-background': '#ffffff', '--vscode-editor-foreground': '#3b3b3b', '--vscode-charts-blue': '#1a85ff' } });
    try {
      await o.send({ type: 'init', report: exampleReport(8), capabilities: ALL });
      await o.page.waitForSelector('svg[data-heatmap]');
      await o.page.evaluate(() => document.querySelector('svg[data-heatmap]')!.setAttribute('data-marker', '1'));
      const read = () =>
        o.page.evaluate(() => ({
          bg: getComputedStyle(document.body).backgroundColor,
          bar: getComputedStyle(document.querySelector('svg[data-bars] rect.bar:not(.hl)')!).fill,
        }));
      const before = await read();
      assert.equal(before.bg, 'rgb(255, 255, 255)');
      assert.equal(before.bar, 'rgb(26, 133, 255)');
      await o.page.evaluate((vars) => {
        document.body.classList.replace('vscode-light', 'vscode-dark');
        for (const [k, v] of Object.entries(vars)) document.documentElement.style.setProperty(k, v);
      }, VSCODE_DARK_VARS);
      const after = await read();
      assert.equal(after.bg, 'rgb(31, 31, 31)');
      assert.equal(after.bar, 'rgb(55, 148, 255)');
      assert.equal(await o.page.locator('svg[data-heatmap][data-marker="1"]').count(), 1, 'same elements, restyled by CSS only');
      await noProblems(o);
    } finally {
      await o.close();
    }
  });

  it('high contrast: VS Code HC variables give strong borders and readable text', async () => {
    const o = await openWebview({ bodyClass: 'vscode-high-contrast', vars: VSCODE_HC_VARS, colorScheme: 'dark' });
    try {
      await o.send({ type: 'init', report: reportWithSpans(12), capabilities: ALL });
      await o.page.waitForSelector('svg[data-heatmap]');
      await o.page.click('svg[data-heatmap] rect.c[data-i="4"][data-j="7"]');
      const s = await o.page.evaluate(() => {
        const card = getComputedStyle(document.querySelector('.card')!);
        const body = getComputedStyle(document.body);
        const muted = getComputedStyle(document.querySelector('.muted')!);
        return { border: card.borderTopColor, width: card.borderTopWidth, bg: body.backgroundColor, fg: body.color, muted: muted.color, cellStroke: getComputedStyle(document.querySelector('svg rect.c')!).stroke };
      });
      assert.equal(s.border, 'rgb(111, 195, 223)');
      assert.equal(s.width, '2px');
      assert.equal(s.cellStroke, 'rgb(111, 195, 223)');
      assert.ok(contrast(s.fg, s.bg) >= 15);
      assert.ok(contrast(s.muted, s.bg) >= 7);
      await noProblems(o);
      await o.page.screenshot({ path: path.join(RESULTS, 'renderer-vscode-high-contrast.png') });
    } finally {
      await o.close();
    }
  });

  it('renders L = 1, L = 48 (labels thin out, no values in cells), null cells as n/a, reports without DR/probe/extras', async () => {
    const cases = [
      { name: 'L1', r: exampleReport(1), cells: 1, rows: 1 },
      { name: 'L48', r: exampleReport(48), cells: 48 * 48, rows: 48 },
      { name: 'nulls', r: exampleReport(8, { nullPairs: [[1, 4]] }), cells: 64, rows: 8 },
      { name: 'noDr', r: exampleReport(12, { dr: false }), cells: 144, rows: 12 },
      { name: 'noProbe', r: exampleReport(12, { probe: false }), cells: 144, rows: 12 },
      { name: 'bare', r: exampleReport(5, { extras: false, modelAccuracy: false, timings: false, warnings: [], source: 'npz' }), cells: 25, rows: 5 },
    ];
    const skewed = exampleReport(6);
    skewed.metrics.relativeMse = skewed.metrics.relativeMse!.map((v, i) => (i === 0 ? 150 : v));
    cases.push({ name: 'skewed', r: skewed, cells: 36, rows: 6 });
    for (const c of cases) {
      const o = await openStandalone(c.r);
      try {
        const f = await o.page.evaluate(() => ({
          cells: document.querySelectorAll('svg[data-heatmap] rect.c').length,
          na: document.querySelectorAll('svg[data-heatmap] rect.c.na').length,
          naLabel: document.querySelector('svg[data-heatmap] rect.c.na')?.getAttribute('aria-label') ?? null,
          values: document.querySelectorAll('svg[data-heatmap] text.cell-value').length,
          yLabels: document.querySelectorAll('svg[data-heatmap] .y-axis .tick text').length,
          curves: [...document.querySelectorAll('svg[data-curve]')].map((s) => s.getAttribute('data-curve')),
          barCharts: document.querySelectorAll('svg[data-bars]').length,
          perClass: document.querySelectorAll('[data-per-class]').length,
          diffused: (document.querySelector('#diffused') as HTMLElement).innerText,
          warnings: document.querySelectorAll('[data-warnings], [data-synthetic], [data-timings], [data-model-accuracy]').length,
        }));
        assert.equal(f.cells, c.cells, `${c.name}: one cell per pair`);
        const text = await visibleText(o);
        for (const bad of ['NaN', 'undefined', '[object Object]', 'Infinity']) assert.ok(!text.includes(bad), `${c.name}: page shows ${bad}`);
        if (c.name === 'L48') {
          assert.ok(f.yLabels < 30 && f.yLabels >= 10, `L48: ${f.yLabels} row labels`);
          assert.equal(f.values, 0, 'no values printed in small cells');
          await o.page.locator('#similarity').screenshot({ path: path.join(RESULTS, 'renderer-heatmap-L48.png') });
        }
        if (c.name === 'nulls') {
          assert.equal(f.na, 2);
          assert.match(f.naLabel!, /CKA n\/a$/);
          assert.match(await o.page.locator('[data-metric] .chart-note').innerText(), /2 n\/a/);
        }
        if (c.name === 'noDr') {
          assert.deepEqual(f.curves, []);
          assert.match(f.diffused, /Not computed for this run/);
        }
        if (c.name === 'noProbe') {
          assert.deepEqual(f.curves, ['dr']);
          assert.equal(f.perClass, 0);
        }
        if (c.name === 'skewed') {
          // 150 next to ~0.05: a log axis keeps every bar visible; the other charts stay linear.
          assert.equal(await o.page.getAttribute('svg[data-bars="relativeMse"]', 'data-scale'), 'log');
          assert.equal(await o.page.getAttribute('svg[data-bars="br"]', 'data-scale'), 'linear');
          const heights = await o.page.evaluate(() => [...document.querySelectorAll('svg[data-bars="relativeMse"] rect.bar')].map((b) => Number(b.getAttribute('height'))));
          assert.equal(heights.length, 6);
          assert.ok(Math.min(...heights) > 10, `smallest bar ${Math.min(...heights)} px`);
        }
        if (c.name === 'bare') {
          assert.equal(f.barCharts, 1);
          assert.equal(f.warnings, 0);
        }
        await noProblems(o);
      } finally {
        await o.close();
      }
    }
  });

  it('fits a narrow panel beside the code (700 and 480 px): no sideways scrolling, charts scale down', async () => {
    for (const width of [700, 480]) {
      const o = await openStandalone(reportWithSpans(48), { width });
      try {
        const f = await o.page.evaluate(() => ({
          overflow: document.documentElement.scrollWidth - document.documentElement.clientWidth,
          heatmap: document.querySelector('svg[data-heatmap]')!.getBoundingClientRect().width,
          card: document.querySelector('.heatmap-card')!.getBoundingClientRect().width,
        }));
        assert.equal(f.overflow, 0, `${width}px: page scrolls sideways by ${f.overflow}px`);
        assert.ok(f.heatmap < f.card, `${width}px: heatmap ${f.heatmap} fits its card ${f.card}`);
        await noProblems(o);
      } finally {
        await o.close();
      }
    }
  });

  it('a report it cannot draw gives one clear error on the page, not a blank page', async () => {
    const r = exampleReport(4) as unknown as { metrics: Record<string, unknown> };
    delete r.metrics.cka;
    const o = await openStandalone(r as never, { waitFor: '[role="alert"]' });
    try {
      assert.match(await o.page.locator('[role="alert"]').innerText(), /This report could not be drawn \(schema v1\)/);
      assert.deepEqual(o.problems, []);
    } finally {
      await o.close();
    }
  });

  it('shows hostile strings from the model as text, never as markup', async () => {
    const evil = '</script><img src=x id=pwned1><script>window.__pwned=1</script>';
    const r = exampleReport(6, { blockName: (i) => (i === 3 ? evil : `/blocks.${i}`), warnings: ['<b id="pwned2">bold</b>'] });
    r.model.path = '/tmp/<img src=x id=pwned3>.onnx';
    r.detection.explanation = '<h1 id="pwned4">pwned</h1>';
    const o = await openStandalone(r);
    try {
      const f = await o.page.evaluate(() => ({
        injected: document.querySelectorAll('#pwned1, #pwned2, #pwned3, #pwned4, img').length,
        ran: (window as unknown as { __pwned?: number }).__pwned ?? 0,
        text: document.body.innerText,
      }));
      assert.equal(f.injected, 0);
      assert.equal(f.ran, 0);
      assert.ok(f.text.includes('<b id="pwned2">bold</b>'));
      assert.ok(f.text.includes('<h1 id="pwned4">pwned</h1>'));
      await o.page.hover('svg[data-heatmap] rect.c[data-i="3"][data-j="3"]');
      assert.ok((await o.page.locator('#blocklens-tooltip').innerText()).includes(evil));
      await noProblems(o);
    } finally {
      await o.close();
    }
  });
});
