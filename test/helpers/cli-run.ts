// A CLI test file's setup: a temporary working folder (removed after the file's tests) and
// `run(...args)`, the built CLI (dist/cli.js) run there synchronously.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after } from 'node:test';
import { REPO } from './fixtures';

export const CLI = path.join(REPO, 'dist', 'cli.js');

export function cliInTemp(prefix: string): { tmp: string; run: (...args: string[]) => { code: number | null; stdout: string; stderr: string } } {
  const tmp = mkdtempSync(path.join(tmpdir(), prefix));
  after(() => rmSync(tmp, { recursive: true, force: true }));
  const run = (...args: string[]) => {
    const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', cwd: tmp });
    return { code: r.status, stdout: r.stdout, stderr: r.stderr };
  };
  return { tmp, run };
}
