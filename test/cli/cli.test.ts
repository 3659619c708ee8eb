// The CLI as a user runs it: the bundled dist/cli.js (built by `npm test`'s pretest step).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, describe, it } from 'node:test';
import type { AnalysisReport } from '../../src/engine/report/schema';
import { validateReport } from '../../src/engine/report/validate';
import { brokenExpected, fixture, manifest, REPO } from '../helpers/fixtures';

const CLI = path.join(REPO, 'dist', 'cli.js');
const tmp = mkdtempSync(path.join(tmpdir(), 'blocklens-cli-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

function run(...args: string[]) {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', cwd: tmp });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('blocklens CLI', () => {
  it('the CLI bundle exists (npm run build)', () => {
    assert.ok(existsSync(CLI), `${CLI} missing: run npm run build`);
  });

  it('blocks --json prints method and blocks with index, name, output, parameters', () => {
    const m = manifest.models.bert_tiny!;
    const r = run('blocks', fixture(m.file), '--json');
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.equal(out.method, 'scoped-names');
    assert.equal(out.blocks.length, m.blocks.count);
    for (const [i, b] of out.blocks.entries()) {
      assert.deepEqual(Object.keys(b).sort(), ['index', 'name', 'output', 'parameters']);
      assert.equal(b.index, i);
      assert.equal(b.output, m.blocks.outputs[i]);
    }
  });

  it('analyze writes a valid report.json and a self-contained report.html', () => {
    const m = manifest.models.vit_tiny!;
    const json = path.join(tmp, 'report.json');
    const html = path.join(tmp, 'report.html');
    const r = run('analyze', fixture(m.file), '--data', fixture('data/digits_x.npy'), '--labels', fixture('data/digits_labels.npy'), '--samples', '128', '--batch', '20', '--seed', '3', '--out', json, '--html', html);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, '', 'no progress bar when stderr is not a terminal');
    const report = validateReport(JSON.parse(readFileSync(json, 'utf8')));
    for (const key of ['schemaVersion', 'model', 'blocks', 'detection', 'calibration', 'pooling', 'warnings', 'metrics']) assert.ok(key in report, key);
    for (const key of ['path', 'sha256', 'irVersion', 'opsetVersion', 'parameters']) assert.ok(key in report.model, key);
    for (const key of ['br', 'brMatrix', 'cosine', 'cka', 'ckaUnbiased', 'msrs', 'dr']) assert.ok(key in report.metrics, key);
    assert.deepEqual(Object.keys(report.metrics.msrs).filter((k) => ['value', 'normalized', 'beta', 'tau'].includes(k)).sort(), ['beta', 'normalized', 'tau', 'value']);
    assert.equal(report.calibration.samples, 128);
    assert.equal(report.calibration.seed, 3);
    assert.equal(report.calibration.source, 'npy');
    assert.equal(report.pooling.used, 'cls');
    assert.equal(report.metrics.dr!.block, m.blocks.count - 1);
    assert.ok(report.metrics.dr!.probe, 'labels give a probe DR');
    assert.ok(report.modelAccuracy!.accuracy > 0.9, `digits accuracy ${report.modelAccuracy!.accuracy}`);
    const page = readFileSync(html, 'utf8');
    // The page is the renderer bundle beside the report JSON (test/renderer draws it in Chromium).
    const inlined = /<script type="application\/json" id="blocklens-report">([\s\S]*?)<\/script>/.exec(page);
    assert.ok(inlined, 'report JSON inlined');
    assert.deepEqual(JSON.parse(inlined[1]!), report);
    assert.match(page, /<script nonce="[^"]+">/);
    assert.doesNotMatch(page, /(src|href)=["']https?:/);
    assert.match(r.stdout, /MSRS/);
    assert.deepEqual(readdirSync(tmp).filter((f) => f.endsWith('.tmp')), [], 'no temp files left');
  });

  it('analyze with --blocks overrides detection', () => {
    const m = manifest.models.linear_blocks!;
    const out = path.join(tmp, 'user.json');
    const r = run('analyze', fixture(m.file), '--blocks', m.blocks.outputs.slice(0, 2).join(','), '--block-input', 'x', '--samples', '32', '--out', out, '--quiet');
    assert.equal(r.code, 0, r.stderr);
    const report = JSON.parse(readFileSync(out, 'utf8'));
    assert.equal(report.detection.method, 'user');
    assert.equal(report.blocks.length, 2);
    assert.equal(r.stdout, '');
  });

  describe('broken inputs: exit 1 and one line naming the file and the problem', () => {
    for (const [file, expected] of Object.entries(brokenExpected)) {
      it(file, () => {
        const target = fixture(path.join('broken', file));
        const before = statSync(target).mtimeMs;
        const r = run('analyze', target, '--samples', '8', '--out', path.join(tmp, 'never.json'));
        assert.equal(r.code, 1, r.stderr);
        const lines = r.stderr.trimEnd().split('\n');
        assert.equal(lines.length, 1, r.stderr);
        assert.match(lines[0]!, /^blocklens: error: /);
        assert.ok(lines[0]!.includes(path.basename(file)) || lines[0]!.includes(path.dirname(file)), `names the file: ${lines[0]}`);
        assert.ok(lines[0]!.toLowerCase().includes(expected.toLowerCase()), `'${expected}' in: ${lines[0]}`);
        assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
        assert.equal(existsSync(path.join(tmp, 'never.json')), false);
        assert.equal(statSync(target).mtimeMs, before, 'input untouched');
      });
    }
  });

  it('a missing model file, bad data and --debug', () => {
    let r = run('analyze', path.join(tmp, 'nope.onnx'));
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^blocklens: error: .*nope\.onnx: .*(not found|does not exist|no such)/i);
    r = run('analyze', fixture(manifest.models.vit_tiny!.file), '--data', fixture('data/bad_shape.npy'));
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^blocklens: error: .*bad_shape\.npy: .*pixel_values/);
    r = run('analyze', path.join(tmp, 'nope.onnx'), '--debug');
    assert.match(r.stderr, /\n\s+at /, '--debug shows the stack');
  });

  describe('calibration data errors: exit 1, one line naming the file', () => {
    const vit = () => fixture(manifest.models.vit_tiny!.file);
    const cases: [string, string[], RegExp][] = [
      ['NaN values', ['--data', fixture('data/has_nan.npy')], /has_nan\.npy: .*NaN/],
      ['labels count mismatch', ['--data', fixture('data/digits_x.npy'), '--labels', fixture('data/labels_wrong_count.npy')], /labels_wrong_count\.npy|digits_x\.npy/],
      ['fewer samples than asked', ['--data', fixture('data/digits_x.npy'), '--samples', '1000'], /digits_x\.npy: .*256.*1000/],
      ['unreadable images', ['--data', fixture('data/digits_images_broken')], /digits_images_broken: .*bad1\.png/],
      ['missing data file', ['--data', fixture('data/nope.npy')], /nope\.npy/],
    ];
    for (const [what, args, pattern] of cases) {
      it(what, () => {
        const r = run('analyze', vit(), ...args, '--quiet');
        assert.equal(r.code, 1, r.stderr);
        assert.equal(r.stderr.trimEnd().split('\n').length, 1, r.stderr);
        assert.match(r.stderr, /^blocklens: error: /);
        assert.match(r.stderr, pattern);
      });
    }
    it('input missing from npz names the input and what the archive has', () => {
      const r = run('analyze', fixture(manifest.models.bert_tiny!.file), '--data', fixture('data/digits.npz'), '--quiet');
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, /digits\.npz: .*input_ids.*pixel_values/);
    });
    it('--skip-bad-images skips them and the report says how many', () => {
      const out = path.join(tmp, 'skip.json');
      const r = run('analyze', vit(), '--data', fixture('data/digits_images_broken'), '--skip-bad-images', '--out', out, '--quiet');
      assert.equal(r.code, 0, r.stderr);
      const report = JSON.parse(readFileSync(out, 'utf8'));
      assert.match(report.calibration.note, /Skipped 2 unreadable images/);
      assert.equal(report.calibration.source, 'images');
      assert.ok(report.calibration.labels.classes === 10);
    });
  });

  it('tokens pooling across blocks of different resolution is refused with advice', () => {
    const r = run('analyze', fixture(manifest.models.resnet_tiny!.file), '--pooling', 'tokens', '--samples', '8', '--quiet');
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /resnet_tiny\.onnx: tokens pooling needs the same number of positions .* use --pooling gap/);
  });

  it('--device cuda runs on the GPU, or says the provider is missing and falls back to the CPU', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'blocklens-cuda-'));
    try {
      const model = fixture(manifest.models.linear_blocks!.file);
      const gpu = run('analyze', model, '--device', 'cuda', '--samples', '8', '--quiet', '--out', path.join(dir, 'cuda.json'));
      assert.equal(gpu.code, 0, gpu.stderr);
      const report = JSON.parse(readFileSync(path.join(dir, 'cuda.json'), 'utf8')) as AnalysisReport;
      const fallback = report.warnings.find((w) => w.startsWith('the CUDA execution provider is not available'));
      if (fallback === undefined) {
        // A machine with CUDA and onnxruntime-node's GPU binaries: it ran there, silently.
        assert.equal(gpu.stderr, '');
        return;
      }
      assert.match(fallback, /ran on the CPU instead\. To use the GPU, .*ONNXRUNTIME_NODE_INSTALL=cuda12/);
      assert.deepEqual(gpu.stderr.trimEnd().split('\n'), [`blocklens: warning: ${fallback}`], 'one clear line, no ORT log noise');
      // The fallback is a real CPU run: the same numbers as asking for the CPU.
      const cpu = run('analyze', model, '--device', 'cpu', '--samples', '8', '--quiet', '--out', path.join(dir, 'cpu.json'));
      assert.equal(cpu.code, 0, cpu.stderr);
      const ref = JSON.parse(readFileSync(path.join(dir, 'cpu.json'), 'utf8')) as AnalysisReport;
      assert.deepEqual(report.metrics, ref.metrics);
      assert.ok(!ref.warnings.some((w) => w.includes('CUDA')));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('usage errors exit 2', () => {
    assert.equal(run().code, 2);
    assert.equal(run('frobnicate', 'x.onnx').code, 2);
    assert.equal(run('analyze').code, 2);
    assert.equal(run('analyze', 'm.onnx', '--pooling', 'max').code, 2);
    assert.equal(run('analyze', 'm.onnx', '--samples', 'many').code, 2);
    assert.equal(run('analyze', 'm.onnx', '--no-such-flag').code, 2);
    const help = run('--help');
    assert.equal(help.code, 0);
    assert.match(help.stdout, /blocklens analyze MODEL/);
  });

  it('an unwritable --out fails cleanly and leaves nothing behind', () => {
    const dir = path.join(tmp, 'no-such-dir');
    const r = run('analyze', fixture(manifest.models.linear_blocks!.file), '--samples', '8', '--out', path.join(dir, 'r.json'), '--quiet');
    assert.equal(r.code, 1);
    assert.match(r.stderr, /r\.json/);
    writeFileSync(path.join(tmp, 'marker'), '');
  });
});
