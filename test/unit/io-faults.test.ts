// Faults while writing (issue 10): an unwritable destination, a full disk, a cancel and a kill in
// the middle of the write, a failed rename, an existing target. After each: no partial or temporary
// file in the folder, and the file that was there before is byte-identical (SHA-256).
// Real faults where the system allows them: a read-only or 256 KiB tmpfs when mounting works
// (root), `ulimit -f` in a child process otherwise, a chmod 555 folder for non-root users.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { createInterface } from 'node:readline';
import { after, describe, it } from 'node:test';
import { removeStaleTemps, writeFileAtomic, writeFilesAtomic, WRITE_CHUNK } from '../../src/engine/io/atomic-write';
import { ModelFileError } from '../../src/engine/onnx/errors';
import { makeGraph, makeModel, makeNode, makeTensor, makeValueInfo } from '../../src/engine/onnx/builder';
import { saveModelFile } from '../../src/engine/onnx/model-file';

const root = mkdtempSync(path.join(tmpdir(), 'blocklens-io-faults-'));
const mounts: string[] = [];
after(() => {
  for (const m of mounts) spawnSync('umount', ['-l', m]);
  spawnSync('chmod', ['-R', 'u+w', root]);
  rmSync(root, { recursive: true, force: true });
});
const CHILD = path.join(__dirname, '..', 'helpers', 'write-child.ts');
const isRoot = process.getuid?.() === 0;

let n = 0;
function folder(name: string): string {
  const d = path.join(root, `${n++}-${name}`);
  mkdirSync(d, { recursive: true });
  return d;
}
const sha = (f: string) => createHash('sha256').update(readFileSync(f)).digest('hex');
/** What a folder holds, hidden files included: the check that nothing was left behind. */
const listing = (d: string) => readdirSync(d).sort();

/** Mounts a tmpfs (options `opts`) on a new folder; undefined when this machine does not allow it. */
function tmpfs(name: string, opts: string): string | undefined {
  const d = folder(name);
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', opts, 'tmpfs', d], { encoding: 'utf8' });
  if (r.status !== 0) return undefined;
  mounts.push(d);
  return d;
}

function smallModel(values: number) {
  const w = makeTensor('w', 1, [values], new Float32Array(values).fill(0.25));
  const graph = makeGraph({ nodes: [makeNode('Identity', ['w'], ['y'])], inputs: [], outputs: [makeValueInfo('y', 1, [values])], initializers: [w] });
  return makeModel({ graph, opset: 17 });
}

interface ChildRun extends Promise<{ code: number | null; signal: string | null; lines: string[] }> {
  /** SIGKILL to this child, by its pid (bash `exec`s node, so the pid is node's). */
  kill(): void;
}

function child(args: string[], shellPrefix?: string): ChildRun {
  const cmd = [process.execPath, '--import', 'tsx', CHILD, ...args].map((a) => `'${a}'`).join(' ');
  const p = spawn('bash', ['-c', `${shellPrefix ?? ''} exec ${cmd}`], { stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  createInterface({ input: p.stdout }).on('line', (l) => lines.push(l));
  const done = new Promise<{ code: number | null; signal: string | null; lines: string[] }>((resolve) => {
    p.on('exit', (code, signal) => resolve({ code, signal, lines }));
  });
  return Object.assign(done, { kill: () => void p.kill('SIGKILL') });
}

describe('writeFileAtomic', () => {
  it('writes a new file and replaces an existing one whole; no temporary file remains', async () => {
    const d = folder('basic');
    const f = path.join(d, 'r.json');
    await writeFileAtomic(f, 'first');
    assert.equal(readFileSync(f, 'utf8'), 'first');
    const big = new Uint8Array(3 * WRITE_CHUNK + 17).fill(7);
    await writeFileAtomic(f, big);
    assert.deepEqual(readFileSync(f), Buffer.from(big));
    assert.deepEqual(listing(d), ['r.json']);
  });

  it('a failed rename (a folder holds the target name) removes the temporary file and names the target', async () => {
    const d = folder('rename');
    const f = path.join(d, 'out.json');
    mkdirSync(f);
    writeFileSync(path.join(f, 'inside.txt'), 'keep');
    await assert.rejects(writeFileAtomic(f, 'data'), (e: unknown) => {
      assert.ok(e instanceof ModelFileError);
      assert.equal(e.file, f);
      assert.match(e.message, /a folder with that name exists/);
      return true;
    });
    assert.deepEqual(listing(d), ['out.json']);
    assert.equal(readFileSync(path.join(f, 'inside.txt'), 'utf8'), 'keep');
  });

  it('a missing folder: a clear error, nothing created', async () => {
    const d = folder('missing');
    await assert.rejects(writeFileAtomic(path.join(d, 'nope', 'r.json'), 'x'), /folder '.*nope' does not exist: cannot write .*r\.json/);
    assert.deepEqual(listing(d), []);
  });

  it('an unwritable destination: permission denied or read-only, nothing created', async () => {
    let d: string;
    if (!isRoot) {
      d = folder('readonly');
      chmodSync(d, 0o555);
    } else {
      // Root ignores permission bits: a read-only tmpfs, else sysfs (read-only to root as well).
      d = tmpfs('ro-tmpfs', 'ro,size=64k') ?? '/sys';
    }
    const before = listing(d);
    await assert.rejects(writeFileAtomic(path.join(d, 'r.json'), 'x'), (e: unknown) => {
      assert.ok(e instanceof ModelFileError, String(e));
      assert.match(e.message, /(permission denied|read-only file system).*r\.json/);
      return true;
    });
    await assert.rejects(saveModelFile(path.join(d, 'm.onnx'), smallModel(8)), /(permission denied|read-only file system).*m\.onnx/);
    assert.deepEqual(listing(d), before);
  });

  it('disk full: ENOSPC on a 256 KiB tmpfs (EFBIG under ulimit -f where mounting is not allowed); the old file is byte-identical', async () => {
    const d = tmpfs('full', 'size=256k');
    if (d) {
      const f = path.join(d, 'r.json');
      await writeFileAtomic(f, 'old report');
      const m = path.join(d, 'm.onnx');
      await saveModelFile(m, smallModel(16));
      const [hf, hm] = [sha(f), sha(m)];
      await assert.rejects(writeFileAtomic(f, new Uint8Array(1 << 20)), /disk full writing .*r\.json/);
      await assert.rejects(saveModelFile(m, smallModel(1 << 18)), /disk full writing .*m\.onnx/);
      assert.equal(sha(f), hf);
      assert.equal(sha(m), hm);
      assert.deepEqual(listing(d), ['m.onnx', 'r.json']);
    }
    // Always also the ulimit route (works unprivileged): writes past 64 blocks fail with EFBIG.
    for (const mode of ['atomic', 'model']) {
      const d2 = folder(`ulimit-${mode}`);
      const f = path.join(d2, mode === 'atomic' ? 'r.json' : 'm.onnx');
      writeFileSync(f, 'previous content');
      const h = sha(f);
      const r = await child([mode, f, String(4 << 20)], 'ulimit -f 64;');
      assert.equal(r.code, 0, r.lines.join('\n'));
      const out = JSON.parse(r.lines.at(-1)!);
      assert.equal(out.code, 'EFBIG', JSON.stringify(out));
      assert.match(out.message, /file size limit exceeded writing/);
      assert.equal(sha(f), h);
      assert.deepEqual(listing(d2), [path.basename(f)]);
    }
  });

  it('cancel during the write: AbortError, the temporary file (which existed) is gone, the target unchanged', async () => {
    const d = folder('cancel');
    const f = path.join(d, 'r.json');
    writeFileSync(f, 'before');
    const ac = new AbortController();
    let sawTemp = false;
    await assert.rejects(
      writeFileAtomic(f, new Uint8Array(8 * WRITE_CHUNK), {
        signal: ac.signal,
        onChunk: (written) => {
          if (written >= WRITE_CHUNK && !ac.signal.aborted) {
            sawTemp = listing(d).some((x) => x.endsWith('.tmp'));
            ac.abort();
          }
        },
      }),
      { name: 'AbortError' },
    );
    assert.ok(sawTemp, 'the cancel came mid-write');
    assert.equal(readFileSync(f, 'utf8'), 'before');
    assert.deepEqual(listing(d), ['r.json']);

    // saveModelFile, cancelled after its first 4 MB chunk.
    const m = path.join(d, 'm.onnx');
    await saveModelFile(m, smallModel(4));
    const h = sha(m);
    const ac2 = new AbortController();
    await assert.rejects(saveModelFile(m, smallModel(6 << 20), { signal: ac2.signal, onChunk: () => ac2.abort() }), { name: 'AbortError' });
    assert.equal(sha(m), h);
    assert.deepEqual(listing(d), ['m.onnx', 'r.json']);
  });

  it('all or nothing across files: a failing second file leaves the first target untouched', async () => {
    const d = folder('pair');
    const a = path.join(d, 'report.json');
    writeFileSync(a, 'old json');
    await assert.rejects(writeFilesAtomic([{ file: a, data: 'new json' }, { file: path.join(d, 'gone', 'report.html'), data: '<html>' }]), /report\.html/);
    assert.equal(readFileSync(a, 'utf8'), 'old json');
    assert.deepEqual(listing(d), ['report.json']);
  });

  for (const mode of ['atomic', 'model'] as const) {
    it(`${mode === 'atomic' ? 'writeFileAtomic' : 'saveModelFile'}: a process killed mid-write leaves the target byte-identical; the next write removes its temporary file`, async () => {
      const d = folder(`kill-${mode}`);
      const f = path.join(d, mode === 'atomic' ? 'r.json' : 'm.onnx');
      if (mode === 'atomic') writeFileSync(f, 'the original');
      else await saveModelFile(f, smallModel(4));
      const h = sha(f);
      const run = child([mode, f, String(16 << 20), 'hold']);
      // Wait for the child to say it is mid-write, then kill it.
      const deadline = Date.now() + 60000;
      let stale: string[] = [];
      while (Date.now() < deadline) {
        stale = listing(d).filter((x) => x.endsWith('.tmp'));
        if (stale.length && statSync(path.join(d, stale[0]!)).size > 0) break;
        await new Promise((r) => setTimeout(r, 20));
      }
      assert.equal(stale.length, 1, 'the child got as far as its temporary file');
      run.kill();
      const r = await run;
      assert.equal(r.signal, 'SIGKILL');
      assert.equal(sha(f), h, 'the original is byte-identical');
      assert.deepEqual(listing(d), [path.basename(f), ...stale].sort(), 'only the hidden temporary file of the dead writer');
      // The next write to the same target clears it.
      if (mode === 'atomic') await writeFileAtomic(f, 'next');
      else await saveModelFile(f, smallModel(2));
      assert.deepEqual(listing(d), [path.basename(f)]);
    });
  }

  it('stale temporary files of live processes and of other targets are left alone', async () => {
    const d = folder('stale');
    const f = path.join(d, 'r.json');
    const mine = `.r.json.${process.pid}.0badc0de.tmp`;
    const other = `.other.json.999999999.0badc0de.tmp`;
    const dead = `.r.json.999999999.0badc0de.tmp`;
    for (const x of [mine, other, dead]) writeFileSync(path.join(d, x), 'x');
    assert.deepEqual(await removeStaleTemps(f), [path.join(d, dead)]);
    assert.deepEqual(listing(d), [mine, other].sort());
    assert.ok(!existsSync(path.join(d, dead)));
  });
});
