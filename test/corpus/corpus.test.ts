// The hostile-input corpus (issue 10) through the CLI as a user runs it: each file's outcome is in
// expected.json. An error must be one line that names the right file (the model, the data or the
// labels, as given) and says the problem in its own words (the file's name does not count); no
// output is written and no corpus file changes. Cases that cannot be committed are made here.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, existsSync, ftruncateSync, lstatSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { spawnSync } from 'node:child_process';
import { REPO } from '../helpers/fixtures';
import { assertCliError } from '../helpers/cli-error';
import { encodeModel, decodeModel } from '../../src/engine/onnx/codec';

const CLI = path.join(REPO, 'dist', 'cli.js');
const CORPUS = __dirname;
const tmp = mkdtempSync(path.join(tmpdir(), 'blocklens-corpus-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

interface Case {
  model: string;
  data?: string;
  labels?: string;
  /** Sample count; null: leave --samples out. Default 8. */
  samples?: number | null;
  expect: 'ok' | { file: 'model' | 'data' | 'labels'; says: string[]; never?: string[] };
}

const { cases } = JSON.parse(readFileSync(path.join(CORPUS, 'expected.json'), 'utf8')) as { cases: Case[] };

interface Run {
  code: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
  ms: number;
}

function cli(args: string[], cwd: string, timeoutMs = 60000): Promise<Run> {
  const t0 = Date.now();
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { cwd, timeout: timeoutMs, killSignal: 'SIGKILL', encoding: 'utf8' }, (err, stdout, stderr) => {
      const e = err as (Error & { code?: number | string; signal?: string }) | null;
      resolve({ code: e ? (typeof e.code === 'number' ? e.code : null) : 0, signal: e?.signal ?? null, stdout, stderr, ms: Date.now() - t0 });
    });
  });
}

function hashTree(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (d: string) => {
    for (const name of readdirSync(d).sort()) {
      const p = path.join(d, name);
      const st = lstatSync(p);
      if (st.isSymbolicLink()) out.set(p, 'link');
      else if (st.isDirectory()) walk(p);
      else out.set(p, createHash('sha256').update(readFileSync(p)).digest('hex'));
    }
  };
  walk(dir);
  return out;
}

describe('corpus: every file ends in its expected outcome', { concurrency: 2 }, () => {
  let hashes: Map<string, string>;
  before(() => {
    assert.ok(existsSync(CLI), 'npm run build first');
    hashes = hashTree(CORPUS);
  });
  after(() => {
    assert.deepEqual(hashTree(CORPUS), hashes, 'no corpus file changed, none appeared');
  });

  for (const c of cases) {
    const label = [c.model, c.data && `--data ${c.data}`, c.labels && `--labels ${c.labels}`].filter(Boolean).join(' ');
    it(label, async () => {
      // Each case writes into its own folder, so that the check for leftovers sees only its own.
      const outDir = path.join(tmp, 'cases', label.replace(/[^a-z0-9]+/gi, '_'));
      mkdirSync(outDir, { recursive: true });
      const out = path.join(outDir, 'report.json');
      const args = ['analyze', c.model, '--out', out, '--quiet'];
      if (c.data) args.push('--data', c.data);
      if (c.labels) args.push('--labels', c.labels);
      if (c.samples !== null) args.push('--samples', String(c.samples ?? 8), '--batch', '4');
      const r = await cli(args, CORPUS);
      if (c.expect === 'ok') {
        assert.equal(r.code, 0, r.stderr);
        assert.ok(existsSync(out), 'report written');
        return;
      }
      const file = c.expect.file === 'model' ? c.model : c.expect.file === 'data' ? c.data! : c.labels!;
      assertCliError(r, CORPUS, file, c.expect.says, c.expect.never);
      assert.equal(existsSync(out), false, 'no report after an error');
      assert.deepEqual(readdirSync(outDir), [], 'nothing left in the output folder');
    });
  }

  it('every corpus file has an expected outcome', () => {
    const named = new Set(cases.flatMap((c) => [c.model, c.data, c.labels].filter((x): x is string => !!x && !x.startsWith('..'))));
    const models = readdirSync(path.join(CORPUS, 'models')).map((f) => `models/${f}`);
    const external = readdirSync(path.join(CORPUS, 'external')).filter((d) => d !== 'target').map((d) => `external/${d}/model.onnx`);
    const data = readdirSync(path.join(CORPUS, 'data')).map((f) => `data/${f}`);
    for (const f of [...models, ...external, ...data]) assert.ok(named.has(f), `${f} has no expected outcome in expected.json`);
  });
});

describe('corpus: cases made at test time', { concurrency: 2 }, () => {
  const base = () => decodeModel(new Uint8Array(readFileSync(path.join(REPO, 'test', 'fixtures', 'models', 'linear_blocks.onnx'))));
  // A FIFO outside the model's folder: whoever opens it for reading blocks until the 60 s kill.
  const outside = path.join(tmp, 'outside');
  const fifo = path.join(outside, 'fifo');
  before(() => {
    mkdirSync(outside, { recursive: true });
    const r = spawnSync('mkfifo', [fifo]);
    assert.equal(r.status, 0, 'mkfifo');
  });
  const externalTo = (name: string, location: string, link?: [string, string]) => {
    const dir = path.join(tmp, name);
    mkdirSync(dir, { recursive: true });
    const m = base();
    const w = m.graph!.initializer[0]!;
    w.externalData = [{ key: 'location', value: location }, { key: 'offset', value: '0' }, { key: 'length', value: '1024' }];
    w.dataLocation = 1;
    delete w.rawData;
    writeFileSync(path.join(dir, 'model.onnx'), encodeModel(m));
    if (link) symlinkSync(link[1], path.join(dir, link[0]));
    return dir;
  };
  const refusals: [string, () => string, string][] = [
    ['absolute location of a FIFO', () => externalTo('abs', fifo), 'absolute external data location'],
    ["'..' location of a FIFO", () => externalTo('dotdot', '../outside/fifo'), "'..' that leads outside"],
    ['symlink to a FIFO outside', () => externalTo('link', 'w.bin', ['w.bin', fifo]), 'symbolic link that leads outside'],
    ['symlinked folder outside', () => externalTo('linkdir', 'sub/fifo', ['sub', outside]), 'symbolic link that leads outside'],
  ];
  for (const [what, make, says] of refusals) {
    it(`external data: ${what} is refused before anything is opened (no hang), naming the model`, async () => {
      const dir = make();
      const r = await cli(['analyze', 'model.onnx', '--samples', '8', '--quiet'], dir, 60000);
      assertCliError(r, dir, 'model.onnx', [says, 'nothing was read'], [fifo, outside]);
      const b = await cli(['blocks', 'model.onnx'], dir, 60000);
      assert.equal(b.signal, null, 'blocks does not open external data');
    });
  }

  it('an empty folder as --data', async () => {
    const dir = path.join(tmp, 'empty');
    mkdirSync(dir);
    const r = await cli(['analyze', path.join(REPO, 'test/fixtures/models/vit_tiny.onnx'), '--data', dir, '--quiet'], tmp);
    assertCliError(r, tmp, dir, ['has neither <input>.npy files nor images']);
  });

  it('a 3 GiB (sparse) .onnx file is refused from its size, without reading it', async () => {
    const file = path.join(tmp, 'huge.onnx');
    const fd = openSync(file, 'w');
    writeSync(fd, Buffer.from([0x08, 0x07])); // starts like a ModelProto
    ftruncateSync(fd, 3 * 2 ** 30);
    closeSync(fd);
    const r = await cli(['analyze', file, '--quiet'], tmp);
    assertCliError(r, tmp, file, ['over the 2 GiB limit']);
    assert.ok(statSync(file).blocks * 512 < 1 << 20, 'still sparse');
  });

  it('a 3 GiB (sparse) .npy is read by offset: a seeded subset of 8 rows, exit 0', async () => {
    const file = path.join(tmp, 'huge.npy');
    const rows = Math.floor((3 * 2 ** 30) / 64);
    let header = `{'descr': '<f4', 'fortran_order': False, 'shape': (${rows}, 16), }`;
    header += ' '.repeat((64 - ((10 + header.length + 1) % 64)) % 64) + '\n';
    const fd = openSync(file, 'w');
    writeSync(fd, Buffer.concat([Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0, header.length & 0xff, header.length >> 8]), Buffer.from(header)]));
    ftruncateSync(fd, 10 + header.length + rows * 64);
    closeSync(fd);
    const out = path.join(tmp, 'huge.json');
    const r = await cli(['analyze', path.join(REPO, 'test/fixtures/models/linear_blocks.onnx'), '--data', file, '--samples', '8', '--out', out, '--quiet'], tmp);
    assert.equal(r.code, 0, r.stderr);
    const report = JSON.parse(readFileSync(out, 'utf8'));
    assert.equal(report.calibration.samples, 8);
    assert.ok(statSync(file).blocks * 512 < 1 << 20, 'only a few pages were read');
  });
});
