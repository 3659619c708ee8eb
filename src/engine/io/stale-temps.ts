// Temporary files of atomic writes (`.<name>.<pid>.<8 hex>.tmp` beside the target) whose writer
// was killed before it could remove them. Shared by writeFileAtomic and saveModelFile.
import { readdir, unlink } from 'node:fs/promises';
import * as path from 'node:path';

function pidAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM'; // exists, owned by someone else
  }
}

/**
 * Removes temporary files that writes to `target` by processes that no longer exist left behind
 * (killed mid-write). Best effort: never throws.
 */
export async function removeStaleTemps(target: string): Promise<string[]> {
  const dir = path.dirname(target);
  const prefix = `.${path.basename(target)}.`;
  const removed: string[] = [];
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return removed;
  }
  for (const name of names) {
    if (!name.startsWith(prefix) || !name.endsWith('.tmp')) continue;
    const m = /^(\d+)\.[0-9a-f]{8}\.tmp$/.exec(name.slice(prefix.length));
    if (!m || pidAlive(Number(m[1]))) continue;
    const p = path.join(dir, name);
    await unlink(p).then(
      () => removed.push(p),
      () => undefined,
    );
  }
  return removed;
}

