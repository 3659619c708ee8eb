import { describe, it } from 'node:test';
import assert from 'node:assert/strict';

import { escapeHtml, formatNumber, renderReportHtml } from '../../src/engine/report/html';
import { validateReport } from '../../src/engine/report/validate';
import { exampleReport } from './report-fixture';

const MATRICES = ['cka', 'ckaUnbiased', 'cosine', 'brMatrix'] as const;

function count(haystack: string, needle: string | RegExp): number {
  if (typeof needle === 'string') return haystack.split(needle).length - 1;
  return (haystack.match(new RegExp(needle.source, needle.flags.includes('g') ? needle.flags : needle.flags + 'g')) ?? []).length;
}

/** The markup of one heatmap figure. */
function heatmapOf(html: string, key: string): string {
  const start = html.indexOf(`data-heatmap="${key}"`);
  assert.ok(start >= 0, `heatmap ${key} missing`);
  const end = html.indexOf('</figure>', start);
  return html.slice(start, end);
}

function assertWellFormedish(html: string): void {
  assert.ok(html.startsWith('<!doctype html>'));
  assert.ok(html.trimEnd().endsWith('</html>'));
  for (const tag of ['svg', 'section', 'figure', 'table', 'main', 'dl', 'aside']) {
    assert.equal(count(html, `<${tag}`), count(html, `</${tag}>`), `unbalanced <${tag}>`);
  }
  for (const bad of [/\bNaN\b/, /\bundefined\b/, /\[object Object\]/, /\bInfinity\b/]) {
    const m = bad.exec(html);
    assert.equal(m, null, m ? `found ${m[0]} near: ${html.slice(Math.max(0, m.index - 80), m.index + 40)}` : '');
  }
}

describe('renderReportHtml', () => {
  it('is self-contained: no network references, scripts, external styles or fonts', () => {
    const html = renderReportHtml(exampleReport(12));
    assert.doesNotMatch(html, /(?:src|href)\s*=\s*["']?\s*(?:https?:)?\/\//i);
    assert.doesNotMatch(html, /url\(\s*["']?\s*(?:https?:)?\/\//i);
    assert.ok(!html.includes('http://') && !html.includes('https://'));
    assert.doesNotMatch(html, /<script|<link|@import|<iframe|<img/i);
    for (const m of html.matchAll(/\b(?:src|href)\s*=\s*"([^"]*)"/g)) assert.match(m[1]!, /^(#|data:)/, `unexpected reference ${m[1]}`);
    for (const m of html.matchAll(/url\(([^)]*)\)/g)) assert.match(m[1]!, /^#[\w-]+$/, `unexpected url(${m[1]})`);
    assert.match(html, /Content-Security-Policy" content="default-src 'none'/);
  });

  it('escapes strings from the model, data and paths', () => {
    const evil = '<script>alert(1)</script>';
    const r = exampleReport(6, { blockName: (i) => (i === 3 ? evil : `/blocks.${i}`), warnings: ['width <b>mismatch</b> & "quotes"'] });
    r.model.path = `/tmp/a&b/"quoted" <model>.onnx`;
    r.model.producer = `"><img src=x onerror=alert(2)>`;
    r.pooling.reason = `token 0 <gather> & 'quotes'`;
    r.detection.explanation = '</section><h1>pwned</h1>';
    r.calibration.inputs[0]!.name = 'input<ids>';
    r.timings = { '<phase>': 12 };
    validateReport(r);
    const html = renderReportHtml(r);
    assert.ok(!html.includes(evil), 'raw script tag must not appear');
    assert.ok(html.includes('&lt;script&gt;alert(1)&lt;/script&gt;'));
    assert.doesNotMatch(html, /<script|<img|<h1>pwned|<model>|<gather>|<phase>|<ids>/i);
    assert.ok(html.includes('&quot;&gt;&lt;img src=x onerror=alert(2)&gt;'));
    assert.ok(html.includes('width &lt;b&gt;mismatch&lt;/b&gt; &amp; &quot;quotes&quot;'));
    assert.ok(html.includes('&quot;quoted&quot; &lt;model&gt;.onnx'));
    assertWellFormedish(html);
  });

  it('has exactly one heatmap per matrix', () => {
    const html = renderReportHtml(exampleReport(12));
    assert.equal(count(html, 'data-heatmap="'), 4);
    for (const k of MATRICES) assert.equal(count(html, `data-heatmap="${k}"`), 1, k);
  });

  it('renders null cells as hatched n/a cells', () => {
    const html = renderReportHtml(exampleReport(8, { nullPairs: [[1, 4]] }));
    for (const k of MATRICES) {
      const hm = heatmapOf(html, k);
      assert.equal(count(hm, 'class="c na"'), 2, `${k}: two null cells`);
      assert.match(hm, /<title>1 × 4: n\/a\n/);
      assert.match(hm, /<title>4 × 1: n\/a\n/);
      assert.match(hm, /fill="url\(#hm-[A-Za-z]+-hatch\)"/);
      assert.match(hm, /2 n\/a/);
    }
  });

  for (const L of [1, 12, 48]) {
    it(`renders L = ${L}`, () => {
      const r = exampleReport(L);
      const html = renderReportHtml(r);
      assertWellFormedish(html);
      for (const k of MATRICES) {
        const hm = heatmapOf(html, k);
        assert.equal(count(hm, /<rect class="c( na)?"/), L * L, `${k}: one cell per pair`);
        const ticks = count(hm, /<text class="tick" x="[\d.]+" y="[\d.]+" text-anchor="end" dominant-baseline="central"><title>/);
        assert.ok(ticks >= 1 && ticks <= L, `${k}: ${ticks} row labels`);
        if (L <= 12) assert.equal(count(hm, /<text class="(ink-light|ink-dark|na-text)"/), L * L, `${k}: values in cells`);
        else assert.equal(count(hm, 'cell-values'), 0, `${k}: no values in cells at L = ${L}`);
      }
      if (L === 48) {
        const rowLabels = count(heatmapOf(html, 'cka'), /text-anchor="end" dominant-baseline="central"><title>/);
        assert.ok(rowLabels < 20, `labels thin out at L = 48 (got ${rowLabels})`);
      }
      assert.match(html, /data-bars="br"/);
      assert.equal(count(html, /<rect class="bar( hl)?"/g), 3 * L, 'BR, relative MSE and BI bars');
      assert.match(html, /data-curve="dr"/);
      assert.match(html, /data-curve="probe"/);
      assert.match(html, /data-per-class/);
      assert.equal(count(html, /<tr( class="hl")?><td class="num">\d+<\/td>/g), L, 'one table row per block');
    });
  }

  it('renders without DR', () => {
    const html = renderReportHtml(exampleReport(12, { dr: false }));
    assertWellFormedish(html);
    assert.doesNotMatch(html, /data-curve=/);
    assert.doesNotMatch(html, /data-per-class/);
    assert.match(html, /id="diffused"[\s\S]*Not computed for this run/);
  });

  it('renders DR without a probe', () => {
    const html = renderReportHtml(exampleReport(12, { probe: false }));
    assertWellFormedish(html);
    assert.match(html, /data-curve="dr"/);
    assert.doesNotMatch(html, /data-curve="probe"/);
    assert.doesNotMatch(html, /data-per-class/);
  });

  it('renders without optional metrics, accuracy, timings and warnings', () => {
    const html = renderReportHtml(exampleReport(5, { extras: false, modelAccuracy: false, timings: false, warnings: [], source: 'npz' }));
    assertWellFormedish(html);
    assert.equal(count(html, 'data-bars="'), 1);
    assert.doesNotMatch(html, /data-warnings|data-synthetic|data-timings|data-model-accuracy/);
  });

  it('shows the header facts, the synthetic banner and the warnings', () => {
    const r = exampleReport(12);
    const html = renderReportHtml(r);
    assert.match(html, /<h1>vit_tiny\.onnx<\/h1>/);
    assert.ok(html.includes(r.model.sha256.slice(0, 12)));
    assert.match(html, /opset<\/dt><dd[^>]*>17</);
    assert.ok(html.includes(escapeHtml(r.pooling.reason)));
    assert.ok(html.includes(escapeHtml(r.detection.explanation)));
    assert.match(html, /data-synthetic[\s\S]*synthetic data shows structure, not task behaviour/);
    assert.match(html, /data-warnings[\s\S]*1 warning/);
    assert.match(html, /data-kpi="msrs"[\s\S]*L = 12 blocks · 66 pairs[\s\S]*normalised/);
    assert.match(html, /schema v1/);
    assert.ok(html.includes('2025-11-23 10:15:00 UTC'));
    const real = renderReportHtml(exampleReport(12, { source: 'images' }));
    assert.doesNotMatch(real, /data-synthetic/);
  });

  it('highlights the most redundant blocks (highest BR)', () => {
    const r = exampleReport(12);
    r.metrics.br = r.metrics.br.map((_, i) => (i === 4 ? -0.0001 : -0.5 - i * 0.01));
    const html = renderReportHtml(r);
    assert.match(html, /data-kpi="most-redundant"[\s\S]*?#4/);
    assert.match(html, /<tr class="hl"><td class="num">4<\/td>/);
  });
});

describe('formatNumber', () => {
  it('uses 3–4 significant digits, a real minus sign and short exponents', () => {
    assert.equal(formatNumber(0.123456), '0.123');
    assert.equal(formatNumber(0.123456, 4), '0.1235');
    assert.equal(formatNumber(1), '1');
    assert.equal(formatNumber(0), '0');
    assert.equal(formatNumber(-0.5), '\u22120.5');
    assert.equal(formatNumber(-0.0000123), '\u22121.23e\u22125');
    assert.equal(formatNumber(1234567), '1.23e6');
    assert.equal(formatNumber(1234.5, 4), '1235');
    assert.equal(formatNumber(null), 'n/a');
    assert.equal(formatNumber(NaN), 'n/a');
  });
  it('escapeHtml escapes the five special characters', () => {
    assert.equal(escapeHtml(`<a href="x">'&'</a>`), '&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;');
  });
});
