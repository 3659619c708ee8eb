// The CLI as a user runs it: the bundled dist/cli.js (built by `npm test`'s pretest step).
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, describe, it } from 'node:test';
import type { AnalysisReport } from '../../src/engine/report/schema';
import { validateReport } from '../../src/engine/report/validate';
import { brokenExpected, fixture, manifest, REPO } from '../helpers/fixtures';
import { assertCliError } from '../helpers/cli-error';
import { makeGraph, makeModel, makeNode, makeTensor, makeValueInfo } from '../../src/engine/onnx/builder';
import { encodeModel } from '../../src/engine/onnx/codec';

const CLI = path.join(REPO, 'dist', 'cli.js');
const tmp = mkdtempSync(path.join(tmpdir(), 'blocklens-cli-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

function run(...args: string[]) {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', cwd: tmp });
  return { code: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
}

/** Like `run`, in another working directory. */
function runIn(cwd: string, ...args: string[]) {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', cwd });
  return { code: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
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
        // Given as an absolute path, and as a path relative to the working folder.
        for (const [cwd, given] of [[tmp, target], [fixture('broken'), file]] as const) {
          const r = runIn(cwd, 'analyze', given, '--samples', '8', '--out', path.join(tmp, 'never.json'));
          assertCliError(r, cwd, given, [expected]);
        }
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

  it('--device cuda runs on the GPU where it can; elsewhere it says so and falls back to the CPU (never silently)', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'blocklens-cuda-'));
    try {
      const model = fixture(manifest.models.linear_blocks!.file);
      // Whether this machine can run the CUDA provider is decided here, independently of BlockLens:
      // onnxruntime-node's CUDA provider library and a visible NVIDIA GPU.
      const binDir = path.join(REPO, 'node_modules', 'onnxruntime-node', 'bin');
      const cudaLib = spawnSync('find', [binDir, '-name', 'libonnxruntime_providers_cuda.so'], { encoding: 'utf8' }).stdout.trim() !== '';
      const canCuda = cudaLib && spawnSync('nvidia-smi', ['-L'], { encoding: 'utf8' }).status === 0;
      const gpu = run('analyze', model, '--device', 'cuda', '--samples', '8', '--quiet', '--out', path.join(dir, 'cuda.json'));
      assert.equal(gpu.code, 0, gpu.stderr);
      const report = JSON.parse(readFileSync(path.join(dir, 'cuda.json'), 'utf8')) as AnalysisReport;
      const fallback = report.warnings.find((w) => w.startsWith('the CUDA execution provider is not available'));
      if (canCuda) {
        assert.equal(fallback, undefined, 'CUDA is available here: no fallback');
        assert.equal(gpu.stderr, '');
        return;
      }
      // No CUDA here: the fallback must be said, in the report and on stderr.
      assert.ok(fallback, `no CUDA on this machine, yet no fallback warning: ${JSON.stringify(report.warnings)}`);
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

  it('usage errors exit 2 with one line saying what is wrong, then where to look', () => {
    // Commands are added by several features: the list is checked by shape, every other text exactly.
    const unknown = run('frobnicate', 'x.onnx');
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /^blocklens: usage error: unknown command 'frobnicate' \(expected blocks, analyze(, [a-z]+)* or [a-z]+\)\nRun 'blocklens --help' for usage\.\n$/);
    const cases: [string[], string][] = [
      [['analyze'], 'analyze needs a MODEL path'],
      [['blocks'], 'blocks needs a MODEL path'],
      [['analyze', 'm.onnx', 'extra.onnx'], "unexpected argument 'extra.onnx'"],
      [['analyze', 'm.onnx', '--pooling', 'max'], "--pooling must be one of auto, cls, mean, last, gap, tokens; got 'max'"],
      [['analyze', 'm.onnx', '--samples', 'many'], "--samples expects an integer ≥ 1, got 'many'"],
      [['analyze', 'm.onnx', '--samples', '0'], "--samples expects an integer ≥ 1, got '0'"],
      [['analyze', 'm.onnx', '--mean', '0.5,x'], "--mean expects comma-separated numbers, got '0.5,x'"],
    ];
    for (const [args, text] of cases) {
      const r = run(...args);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.equal(r.stderr, `blocklens: usage error: ${text}\nRun 'blocklens --help' for usage.\n`, args.join(' '));
      assert.equal(r.stdout, '');
    }
    const flag = run('analyze', 'm.onnx', '--no-such-flag');
    assert.equal(flag.code, 2);
    assert.match(flag.stderr, /^blocklens: usage error: .*'--no-such-flag'.*\nRun 'blocklens --help' for usage\.\n$/);
    const bare = run();
    assert.equal(bare.code, 2);
    assert.match(bare.stderr, /^Usage:\n {2}blocklens blocks {2}MODEL/);
    const help = run('--help');
    assert.equal(help.code, 0);
    assert.match(help.stdout, /blocklens analyze MODEL/);
    assert.equal(help.stderr, '');
  });

  it('--delta outside (0, 1] is a usage error; 1 is accepted', () => {
    for (const d of ['0', '-0.5', '1.5', '2']) {
      const r = run('analyze', fixture(manifest.models.linear_blocks!.file), `--delta=${d}`, '--quiet');
      assert.equal(r.code, 2, `--delta ${d}: ${r.stderr}`);
      assert.equal(r.stderr, "blocklens: usage error: --delta must be in (0, 1]\nRun 'blocklens --help' for usage.\n");
    }
    // A negative number as a separate argument reads like an option: still one line, with the fix.
    const dash = run('analyze', 'm.onnx', '--delta', '-0.5');
    assert.equal(dash.code, 2);
    assert.match(dash.stderr, /^blocklens: usage error: Option '--delta' argument is ambiguous\..* use '--delta=-XYZ'\.\nRun 'blocklens --help' for usage\.\n$/);
    const nan = run('analyze', 'm.onnx', '--delta', 'abc');
    assert.equal(nan.stderr, "blocklens: usage error: --delta expects a number, got 'abc'\nRun 'blocklens --help' for usage.\n");
    const out = path.join(tmp, 'delta1.json');
    const ok = run('analyze', fixture(manifest.models.linear_blocks!.file), '--delta', '1', '--samples', '16', '--out', out, '--quiet');
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(JSON.parse(readFileSync(out, 'utf8')).metrics.dr.delta, 1);
  });

  it('--version prints the package version', () => {
    const r = run('--version');
    assert.equal(r.code, 0, r.stderr);
    const pkg = JSON.parse(readFileSync(path.join(REPO, 'package.json'), 'utf8'));
    assert.equal(r.stdout, `blocklens ${pkg.version}\n`);
    assert.equal(r.stderr, '');
  });

  it('blocks without --json: the route, then one line per block (index, name, output, parameters)', () => {
    const m = manifest.models.linear_blocks!;
    const r = run('blocks', fixture(m.file));
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trimEnd().split('\n');
    assert.match(lines[0]!, /^scoped names: 4 blocks matching '\/blocks\.#'/);
    // (then the reasons: block input, granularity, pooling, routes not taken)
    assert.match(lines[1 + m.blocks.count] ?? '', /^block input h-1: x — /, r.stdout);
    m.blocks.outputs.forEach((out, i) => {
      assert.equal(lines[1 + i], `  ${String(i).padStart(3)}  ${m.blocks.scopes[i]}  →  ${out}  (272 params)`);
    });
  });

  it('blocks on a broken model: exit 1, one line naming the file and the problem', () => {
    const cases: [string, string][] = [
      ['truncated.onnx', 'truncated at byte'],
      ['random_bytes.onnx', 'not an ONNX model'],
      ['unknown_input.onnx', "reads tensor 'does_not_exist'"],
      ['empty.onnx', 'is empty'],
    ];
    for (const [file, says] of cases) {
      const r = runIn(fixture('broken'), 'blocks', file);
      assertCliError(r, fixture('broken'), file, [says]);
      assert.equal(r.stdout, '');
    }
    const json = runIn(fixture('broken'), 'blocks', 'truncated.onnx', '--json');
    assertCliError(json, fixture('broken'), 'truncated.onnx', ['truncated at byte']);
    // A valid graph with nothing that repeats: detection itself fails, and still names the file.
    const flat = path.join(tmp, 'flat.onnx');
    const graph = makeGraph({
      nodes: [makeNode('MatMul', ['x', 'w'], ['y'], [], 'only_matmul')],
      inputs: [makeValueInfo('x', 1, ['batch', 4])],
      outputs: [makeValueInfo('y', 1, ['batch', 4])],
      initializers: [makeTensor('w', 1, [4, 4], new Float32Array(16).fill(0.5))],
    });
    writeFileSync(flat, encodeModel(makeModel({ graph, opset: 17 })));
    for (const extra of [[], ['--json']]) {
      const r = runIn(tmp, 'blocks', 'flat.onnx', ...extra);
      assertCliError(r, tmp, 'flat.onnx', ['no repeated blocks found', '--blocks TENSOR']);
    }
  });

  it('Ctrl-C (SIGINT) cancels: exit 130, one line saying cancelled, no output file left', async () => {
    const dir = path.join(tmp, 'sigint');
    mkdirSync(dir);
    const model = fixture(manifest.models.vit_tiny!.file);
    // Far more synthetic samples than can be analysed before the signal arrives.
    const args = [CLI, 'analyze', model, '--samples', '500000', '--batch', '64', '--out', path.join(dir, 'r.json'), '--html', path.join(dir, 'r.html'), '--quiet'];
    const attempt = (delayMs: number) =>
      new Promise<{ code: number | null; signal: string | null; stderr: string }>((resolve) => {
        const p = spawn(process.execPath, args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
        let stderr = '';
        p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
        const t = setTimeout(() => p.kill('SIGINT'), delayMs);
        const hard = setTimeout(() => p.kill('SIGKILL'), delayMs + 60000);
        p.on('exit', (code, signal) => {
          clearTimeout(t);
          clearTimeout(hard);
          resolve({ code, signal, stderr });
        });
      });
    let r = await attempt(3000);
    // A signal that arrives before the CLI has installed its handler ends node itself: try later.
    if (r.signal === 'SIGINT') r = await attempt(8000);
    assert.equal(r.signal, null, 'the CLI handled SIGINT itself');
    assert.equal(r.code, 130, r.stderr);
    assert.equal(r.stderr, `blocklens: error: ${model}: cancelled\n`);
    assert.deepEqual(readdirSync(dir), [], 'no report, no temporary file');
  });

  it('an unwritable --out fails cleanly and leaves nothing behind', () => {
    const dir = path.join(tmp, 'no-such-dir');
    const before = readdirSync(tmp).sort();
    const out = path.join(dir, 'r.json');
    const r = run('analyze', fixture(manifest.models.linear_blocks!.file), '--samples', '8', '--out', out, '--quiet');
    assertCliError(r, tmp, out, [`folder '${dir}' does not exist`]);
    assert.equal(existsSync(dir), false);
    assert.deepEqual(readdirSync(tmp).sort(), before, 'nothing new in the working folder');
  });

  it('--html failing after --out would succeed: neither is written, an existing report.json stays byte-identical', () => {
    const dir = path.join(tmp, 'html-fails');
    mkdirSync(dir);
    const json = path.join(dir, 'report.json');
    writeFileSync(json, '{"old": true}\n');
    const html = path.join(dir, 'missing', 'report.html');
    const r = run('analyze', fixture(manifest.models.linear_blocks!.file), '--samples', '8', '--out', json, '--html', html, '--quiet');
    assertCliError(r, tmp, html, ['does not exist: cannot write']);
    assert.equal(readFileSync(json, 'utf8'), '{"old": true}\n');
    assert.deepEqual(readdirSync(dir), ['report.json'], 'no temporary file');
    // And with no earlier report.json: none appears.
    rmSync(json);
    const again = run('analyze', fixture(manifest.models.linear_blocks!.file), '--samples', '8', '--out', json, '--html', html, '--quiet');
    assert.equal(again.code, 1);
    assert.deepEqual(readdirSync(dir), []);
  });
});
