import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as vm from 'node:vm';

import { escapeHtml, escapeInlineScript, escapeInlineStyle, inlineJson, loadWebviewAssets, renderReportHtml, renderWebviewShell } from '../../src/engine/report/html';
import { validateReport } from '../../src/engine/report/validate';
import { exampleReport } from './report-fixture';

const FAKE = { js: 'window.__ran = 1;', css: 'body{color:red}' };

/** The JSON the page carries, parsed back the way the renderer does. */
function reportJsonOf(html: string): unknown {
  const m = /<script type="application\/json" id="blocklens-report">([\s\S]*?)<\/script>/.exec(html);
  assert.ok(m, 'report JSON element missing');
  return JSON.parse(m[1]!);
}

describe('renderReportHtml', () => {
  it('is one self-contained file: the bundle and CSS inline, no references out, a nonce CSP without unsafe-inline', () => {
    const html = renderReportHtml(exampleReport(12));
    const assets = loadWebviewAssets();
    assert.ok(html.startsWith('<!doctype html>'));
    assert.ok(html.trimEnd().endsWith('</html>'));
    assert.ok(assets.js.length > 10_000, 'the real renderer bundle is inlined');
    assert.ok(html.includes(escapeInlineScript(assets.js)));
    assert.ok(html.includes(escapeInlineStyle(assets.css)));
    const markup = html.replace(/<script nonce[^>]*>[\s\S]*?<\/script>/, '').replace(/<style nonce[^>]*>[\s\S]*?<\/style>/, '');
    assert.doesNotMatch(markup, /<link|<iframe|<img|@import|\bsrc\s*=|\bhref\s*=/i);
    assert.doesNotMatch(assets.css, /@import|url\(\s*["']?(?!data:|#)/i, 'the stylesheet loads nothing');
    assert.doesNotMatch(html, /sourceMappingURL/);
    assert.doesNotMatch(markup, /https?:\/\//, 'no URLs in the markup (the browser test checks that the page requests nothing)');
    const csp = /<meta http-equiv="Content-Security-Policy" content="([^"]+)">/.exec(html)?.[1];
    assert.ok(csp, 'CSP meta');
    assert.match(csp!, /^default-src 'none'/);
    assert.doesNotMatch(csp!, /unsafe-inline|unsafe-eval|https?:/);
    const nonce = /script-src 'nonce-([A-Za-z0-9+/=]+)'/.exec(csp!)?.[1];
    assert.ok(nonce && nonce.length >= 16);
    assert.match(csp!, new RegExp(`style-src 'nonce-${nonce!.replace(/[+/=]/g, '\\$&')}'`));
    // Exactly one executable script, carrying the nonce; the data block is not executable.
    const scripts = [...html.matchAll(/<script([^>]*)>/g)].map((m) => m[1]!);
    assert.deepEqual(scripts.sort(), [` nonce="${nonce}"`, ' type="application/json" id="blocklens-report"'].sort());
    assert.equal([...html.matchAll(/<style nonce="([^"]+)">/g)].length, 1);
    assert.notEqual(renderReportHtml(exampleReport(2)).match(/nonce-([^']+)'/)![1], nonce, 'a fresh nonce per page');
  });

  it('carries the report as JSON that parses back to the same report, even with hostile strings', () => {
    const evil = '</script><script>alert(1)</script><!--';
    const r = exampleReport(6, { blockName: (i) => (i === 3 ? evil : `/blocks.${i}`), warnings: ['width <b>mismatch</b> & "quotes" \u2028 line'] });
    r.model.path = `/tmp/a&b/"quoted" </script> <model>.onnx`;
    r.model.producer = `"><img src=x onerror=alert(2)>`;
    r.detection.explanation = '</section><h1>pwned</h1>';
    validateReport(r);
    const html = renderReportHtml(r, FAKE);
    assert.deepEqual(reportJsonOf(html), JSON.parse(JSON.stringify(r)));
    const body = html.slice(html.indexOf('<body>'));
    assert.equal(body.split('</script>').length - 1, 2, 'only the two real closing tags');
    assert.doesNotMatch(body, /<img|<h1>|<model>|<!--/);
    assert.match(html, /<title>BlockLens · script&gt; &lt;model&gt;\.onnx<\/title>/);
  });

  it('inlines script text that contains </script> and <!-- without changing what it computes', () => {
    const js = `window.__v = ["</script>", '<!-- x -->', \`<\/SCRIPT\`, String(/<script>/.test("<script>")), "<scripts"].join("|");`;
    const html = renderReportHtml(exampleReport(2), { js, css: 'a::after{content:"</style>"}' });
    const inline = /<script nonce="[^"]+">([\s\S]*?)<\/script>/.exec(html)![1]!;
    assert.doesNotMatch(inline, /<\/?script|<!--/i);
    const sandbox: { window: { __v?: string } } = { window: {} };
    vm.runInNewContext(inline, sandbox);
    const expected: { window: { __v?: string } } = { window: {} };
    vm.runInNewContext(js, expected);
    assert.equal(sandbox.window.__v, expected.window.__v);
    assert.doesNotMatch(/<style nonce="[^"]+">([\s\S]*?)<\/style>/.exec(html)![1]!, /<\/style/i);
  });

  it('inlineJson escapes the characters that could end or confuse the script element', () => {
    const v = { s: '</script><!-- & \u2028\u2029 >' };
    const out = inlineJson(v);
    assert.doesNotMatch(out, /[<>&\u2028\u2029]/);
    assert.deepEqual(JSON.parse(out), v);
  });
});

describe('renderWebviewShell', () => {
  it('loads the bundle from the given URIs under a nonce CSP that allows only the extension as a style source', () => {
    const html = renderWebviewShell({ scriptUri: 'vscode-resource://x/dist/webview.js', styleUri: 'vscode-resource://x/dist/webview.css', cspSource: 'vscode-webview://abc', nonce: 'N0nce123' });
    assert.match(html, /script-src 'nonce-N0nce123'/);
    assert.match(html, /style-src vscode-webview:\/\/abc 'nonce-N0nce123'/);
    assert.doesNotMatch(html, /unsafe-inline|unsafe-eval/);
    assert.match(html, /<script nonce="N0nce123" src="vscode-resource:\/\/x\/dist\/webview\.js"><\/script>/);
    assert.match(html, /<link rel="stylesheet" nonce="N0nce123" href="vscode-resource:\/\/x\/dist\/webview\.css">/);
    assert.match(html, /<div id="blocklens-root"><\/div>/);
  });
});

describe('escapeHtml', () => {
  it('escapes the five special characters', () => {
    assert.equal(escapeHtml(`<a href="x">'&'</a>`), '&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;');
  });
});
