// The extension's vscode-free modules, in plain Node: webview message validation, the webview
// page's content security policy, finding .onnx references in Python, span ranking, the cache.
import * as assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { findOnnxReferences } from '../../src/extension/onnx-references.js';
import { cacheKey, dataFingerprint, ReportCache } from '../../src/extension/report-cache.js';
import { rankedSpans } from '../../src/extension/spans.js';
import { allowedPath, validateEditorMessage, validateReportMessage } from '../../src/extension/webview-messages.js';
import { contentSecurityPolicy, webviewShell } from '../../src/extension/webview-html.js';
import { exampleReport } from './report-fixture.js';
import { REPO } from '../helpers/fixtures.js';

describe('webview message validation', () => {
  const bounds = { blocks: 6 };
  it('accepts every protocol message in range', () => {
    for (const m of [
      { type: 'ready' },
      { type: 'rerun' },
      { type: 'selectSpan', from: 1, to: 3 },
      { type: 'selectSpan', from: -1, to: 0 },
      { type: 'exportSpan', from: 2, to: 5, method: 'linear' },
      { type: 'reveal', path: '/x/model.onnx' },
      { type: 'analyzeNew' },
      { type: 'compare', path: 'a.onnx' },
      { type: 'saveFile', fileName: 'cka heatmap.svg', mime: 'image/svg+xml', encoding: 'utf8', data: '<svg/>' },
      { type: 'saveFile', fileName: 'cka.png', mime: 'image/png', encoding: 'base64', data: 'iVBORw0KGgo=' },
    ]) {
      const v = validateReportMessage(m, bounds);
      assert.ok(v.ok, `${JSON.stringify(m)}: ${!v.ok && v.reason}`);
    }
  });
  it('rejects malformed, out-of-range and unknown messages with a reason', () => {
    const cases: [unknown, RegExp][] = [
      [null, /not a message/],
      ['ready', /not a message/],
      [{ type: 'runShell', cmd: 'rm -rf /' }, /unknown message type/],
      [{ type: 'selectSpan', from: 0, to: 6 }, /outside blocks 0..5/],
      [{ type: 'selectSpan', from: 3, to: 1 }, /outside/],
      [{ type: 'selectSpan', from: -2, to: 1 }, /outside/],
      [{ type: 'selectSpan', from: 0.5, to: 1 }, /integers/],
      [{ type: 'selectSpan', from: '0', to: 1 }, /integers/],
      [{ type: 'exportSpan', from: 0, to: 1, method: 'magic' }, /unknown method/],
      [{ type: 'ready', extra: 1 }, /unexpected field/],
      [{ type: 'reveal', path: '' }, /non-empty/],
      [{ type: 'reveal', path: 'a\0b' }, /non-empty/],
      [{ type: 'saveFile', fileName: '../../.bashrc', mime: 'image/png', encoding: 'base64', data: '' }, /plain file name/],
      [{ type: 'saveFile', fileName: 'x.svg', mime: 'text/html', encoding: 'utf8', data: '' }, /unsupported mime/],
      [{ type: 'saveFile', fileName: 'x.png', mime: 'image/png', encoding: 'base64', data: 'not base64!' }, /not base64/],
    ];
    for (const [m, re] of cases) {
      const v = validateReportMessage(m, bounds);
      assert.equal(v.ok, false, JSON.stringify(m));
      assert.match(!v.ok ? v.reason : '', re, JSON.stringify(m));
    }
  });
  it('the model editor page may only ask to analyse', () => {
    assert.ok(validateEditorMessage({ type: 'analyze' }).ok);
    assert.equal(validateEditorMessage({ type: 'analyze', path: '/etc/passwd' }).ok, false);
    assert.equal(validateEditorMessage({ type: 'exportSpan' }).ok, false);
  });
  it('acts on a path only when the host handed it out', () => {
    const resolve = (p: string) => path.resolve('/work/models', p);
    assert.equal(allowedPath('a.onnx', ['/work/models/a.onnx'], resolve), '/work/models/a.onnx');
    assert.equal(allowedPath('../models/a.onnx', ['/work/models/a.onnx'], resolve), '/work/models/a.onnx');
    assert.equal(allowedPath('/etc/passwd', ['/work/models/a.onnx'], resolve), undefined);
    assert.equal(allowedPath('b.onnx', ['/work/models/a.onnx'], resolve), undefined);
  });
});

describe('webview page', () => {
  it('has a strict CSP: nothing remote, scripts only with the nonce', () => {
    const csp = contentSecurityPolicy('https://file+.vscode-resource.vscode-cdn.net', 'abc123');
    assert.match(csp, /default-src 'none'/);
    assert.match(csp, /script-src 'nonce-abc123'(;|$)/);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval|https?:\/\/\*|\*/);
    const html = webviewShell({ cspSource: 'vscode-resource:', nonce: 'abc123', title: '<t>', scripts: ['s.js'], styles: ['s.css'], body: '<div></div>', inlineScript: 'x()' });
    const scripts = html.match(/<script[^>]*>/g) ?? [];
    assert.equal(scripts.length, 2);
    for (const s of scripts) assert.match(s, /nonce="abc123"/);
    assert.match(html, /<title>&lt;t&gt;<\/title>/);
  });
});

describe('.onnx references in Python', () => {
  it('puts the lens on the torch.onnx.export line and on literal lines', () => {
    const src = [
      'import torch',
      'torch.onnx.export(model, x,',
      '    "out/model.onnx", opset_version=17)',
      'p = \'other.onnx\'  # comment "c.onnx"',
      '# "commented.onnx"',
      'f = f"{name}.onnx"',
      'torch.onnx.export(m, x, r"C:\\\\m.onnx")',
      'q = "not-a-model.onnxx"',
    ].join('\n');
    const refs = findOnnxReferences(src);
    assert.deepEqual(
      refs.map((r) => [r.path, r.line, r.export]),
      [
        ['out/model.onnx', 1, true],
        ['other.onnx', 3, false],
        ['C:\\\\m.onnx', 6, true],
      ],
    );
  });
  it('handles parentheses inside strings and nested calls of the export', () => {
    const refs = findOnnxReferences('torch.onnx.export(m, (x, y), f(")"), os.path.join("d", "a.onnx"))\nb = "b.onnx"');
    assert.deepEqual(refs.map((r) => [r.path, r.line, r.export]), [['a.onnx', 0, true], ['b.onnx', 1, false]]);
  });
});

describe('span ranking and the report cache', () => {
  it('ranks spans by CKA between span input and output when the report has no engine spans', () => {
    const report = exampleReport(6);
    const spans = rankedSpans(report);
    assert.ok(spans.length > 0);
    for (const s of spans) assert.ok(s.from >= 0 && s.from < s.to && s.to < report.blocks.length);
    for (let i = 1; i < spans.length; i++) assert.ok(spans[i - 1]!.score! >= spans[i]!.score! - 0.01);
    assert.equal(spans[0]!.score, report.metrics.cka[spans[0]!.from]![spans[0]!.to]);
  });
  it('prefers the engine\'s measured spans', () => {
    const report = { ...exampleReport(6), spans: [{ from: 2, to: 3, relErr: 0.01, paramsSaved: 1000 }, { from: -1, to: 0, relErr: 0.2, paramsSaved: 10 }] };
    const spans = rankedSpans(report as never);
    assert.deepEqual(spans.map((s) => [s.from, s.to]), [[2, 3], [-1, 0]]);
    assert.match(spans[0]!.basis, /relative error 0\.0100, saves 1,000 parameters/);
  });
  it('keys the cache by model, data and settings, and round-trips a validated report', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'blocklens-cache-'));
    try {
      const r = { model: '/a.onnx', samples: 64, pooling: 'auto' as const };
      const k = cacheKey('m1', r, 'synthetic');
      assert.equal(cacheKey('m1', { ...r, model: '/elsewhere.onnx' }, 'synthetic'), k, 'the model path is not part of the key, its hash is');
      assert.notEqual(cacheKey('m2', r, 'synthetic'), k);
      assert.notEqual(cacheKey('m1', { ...r, samples: 65 }, 'synthetic'), k);
      assert.notEqual(cacheKey('m1', r, 'data'), k);
      const cache = new ReportCache(dir, 2);
      assert.equal(await cache.get(k), undefined);
      const report = exampleReport(6);
      await cache.put(k, report);
      assert.deepEqual(await cache.get(k), report);
      await cache.put('k2', report);
      await cache.put('k3', report);
      assert.equal(readdirSync(dir).length, 2, 'pruned to maxEntries, no temp files');
      writeFileSync(path.join(dir, 'bad.json'), '{');
      assert.equal(await cache.get('bad'), undefined);
      const f = path.join(dir, 'data.npy');
      writeFileSync(f, 'x');
      const p1 = await dataFingerprint(f);
      writeFileSync(f, 'xy');
      assert.notEqual(await dataFingerprint(f), p1);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('boundaries', () => {
  it('only src/extension and test/vscode import vscode', () => {
    const offenders: string[] = [];
    const walk = (d: string) => {
      for (const e of readdirSync(d, { withFileTypes: true })) {
        const p = path.join(d, e.name);
        if (e.isDirectory()) walk(p);
        else if (/\.ts$/.test(e.name) && /from ['"]vscode['"]|require\(['"]vscode['"]\)/.test(readFileSync(p, 'utf8'))) offenders.push(path.relative(REPO, p));
      }
    };
    for (const d of ['src/engine', 'src/cli', 'src/worker', 'src/protocol', 'webview']) walk(path.join(REPO, d));
    assert.deepEqual(offenders, []);
  });
});

describe('extension manifest', () => {
  const pkg = JSON.parse(readFileSync(path.join(REPO, 'package.json'), 'utf8'));
  const c = pkg.contributes;
  it('every menu entry names a contributed command; every command has a title', () => {
    const ids = new Set(c.commands.map((x: { command: string; title: string }) => (assert.ok(x.title), x.command)));
    for (const [menu, entries] of Object.entries(c.menus) as [string, { command: string }[]][]) {
      for (const e of entries) assert.ok(ids.has(e.command), `${menu}: ${e.command}`);
    }
    assert.ok(c.menus['explorer/context'].some((e: { command: string; when: string }) => e.command === 'blocklens.analyze' && /resourceExtname == \.onnx/.test(e.when)));
  });
  it('documents every setting and restricts the path and provider settings in untrusted workspaces', () => {
    for (const [key, p] of Object.entries(c.configuration.properties) as [string, { markdownDescription?: string; description?: string }][]) {
      assert.ok((p.markdownDescription ?? p.description ?? '').length > 40, `${key} is undocumented`);
    }
    assert.deepEqual(Object.keys(c.configuration.properties).sort(), ['blocklens.batch', 'blocklens.defaultData', 'blocklens.executionProviders', 'blocklens.pooling', 'blocklens.samples']);
    assert.equal(pkg.capabilities.untrustedWorkspaces.supported, 'limited');
    assert.deepEqual(pkg.capabilities.untrustedWorkspaces.restrictedConfigurations.sort(), ['blocklens.defaultData', 'blocklens.executionProviders']);
    assert.equal(pkg.capabilities.virtualWorkspaces.supported, false);
  });
  it('the custom editor is opt-in and the walkthrough media exist', () => {
    assert.equal(c.customEditors[0].priority, 'option');
    const steps = c.walkthroughs[0].steps as { media: { markdown?: string } }[];
    assert.ok(steps.length >= 3);
    for (const s of steps) if (s.media.markdown) assert.ok(readdirSync(path.join(REPO, path.dirname(s.media.markdown))).includes(path.basename(s.media.markdown)), s.media.markdown);
  });
});
