// Write faults for the RBA export (`blocklens rba`, which writes through saveModelFile): a full
// disk and an unwritable destination, replacing an existing output with --force. After each: one
// clear error naming the output, the previous file byte-identical, nothing else in the folder.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, describe, it } from 'node:test';
import { assertCliError } from '../helpers/cli-error';
import { fixture, manifest, REPO } from '../helpers/fixtures';

const CLI = path.join(REPO, 'dist', 'cli.js');
const root = mkdtempSync(path.join(tmpdir(), 'blocklens-rba-faults-'));
const mounts: string[] = [];
after(() => {
  for (const m of mounts) spawnSync('umount', ['-l', m]);
  spawnSync('chmod', ['-R', 'u+w', root]);
  rmSync(root, { recursive: true, force: true });
});
const sha = (f: string) => createHash('sha256').update(readFileSync(f)).digest('hex');
const model = fixture(manifest.models.linear_blocks!.file);
const rbaArgs = (out: string) => [CLI, 'rba', model, '--from', '0', '--to', '2', '--samples', '32', '--out', out, '--force', '--quiet'];

function tmpfs(name: string, opts: string): string | undefined {
  const d = path.join(root, name);
  mkdirSync(d);
  if (spawnSync('mount', ['-t', 'tmpfs', '-o', opts, 'tmpfs', d]).status !== 0) return undefined;
  mounts.push(d);
  return d;
}

describe('rba export under write faults', () => {
  it('disk full (4 KiB tmpfs, else ulimit -f): "disk full" / "file size limit", the old output byte-identical', () => {
    const full = tmpfs('full', 'size=4k');
    const dir = full ?? path.join(root, 'ulimit');
    mkdirSync(dir, { recursive: true });
    const out = path.join(dir, 'small.onnx');
    writeFileSync(out, 'previous export');
    const h = sha(out);
    const cmd = [process.execPath, ...rbaArgs(out)].map((a) => `'${a}'`).join(' ');
    const r = spawnSync('bash', ['-c', `${full ? '' : 'ulimit -f 4;'} exec ${cmd}`], { encoding: 'utf8' });
    assertCliError({ code: r.status, signal: r.signal, stderr: r.stderr }, dir, out, [full ? 'disk full writing' : 'file size limit exceeded writing']);
    assert.equal(sha(out), h);
    assert.deepEqual(readdirSync(dir), ['small.onnx']);
  });

  it('an unwritable destination: one error naming the output, nothing created', () => {
    let dir: string;
    if (process.getuid?.() !== 0) {
      dir = path.join(root, 'ro');
      mkdirSync(dir);
      chmodSync(dir, 0o555);
    } else {
      dir = tmpfs('ro-tmpfs', 'ro,size=64k') ?? '/sys';
    }
    const before = readdirSync(dir);
    const out = path.join(dir, 'small.onnx');
    const r = spawnSync(process.execPath, rbaArgs(out), { encoding: 'utf8' });
    assertCliError({ code: r.status, signal: r.signal, stderr: r.stderr }, dir, out, []);
    assert.match(r.stderr, /(permission denied|read-only file system)/);
    assert.deepEqual(readdirSync(dir), before);
  });
});
