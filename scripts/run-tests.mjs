// Runs every *.test.ts under the given folders (or the given files) with node's test runner (Node 20 has no glob
// support in `node --test`). Exit status is the test runner's.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, readdirSync, statSync } from 'node:fs';
import * as path from 'node:path';

const roots = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const flags = process.argv.slice(2).filter((a) => a.startsWith('--'));
const files = [];
const walk = (dir) => {
  for (const name of readdirSync(dir).sort()) {
    const p = path.join(dir, name);
    if (statSync(p).isDirectory()) walk(p);
    else if (name.endsWith('.test.ts')) files.push(p);
  }
};
for (const r of roots.length ? roots : ['test/unit', 'test/cli']) {
  if (statSync(r).isDirectory()) walk(r);
  else files.push(r);
}
if (files.length === 0) {
  console.error('run-tests: no test files found');
  process.exit(1);
}
// Spec output for people; a TAP copy to count from, for the one-line summary CI reads.
mkdirSync('.cache', { recursive: true });
const tap = path.join('.cache', 'test-results.tap');
const r = spawnSync(
  process.execPath,
  ['--import', 'tsx', '--test', '--test-reporter=spec', '--test-reporter-destination=stdout', '--test-reporter=tap', `--test-reporter-destination=${tap}`, ...flags, ...files],
  { stdio: 'inherit' },
);
let summary = 'tests: no results recorded';
try {
  const text = readFileSync(tap, 'utf8');
  const count = (key) => Number(text.match(new RegExp(`^# ${key} (\\d+)$`, 'm'))?.[1] ?? 0);
  summary = `tests: ${count('pass')} passed, ${count('fail') + count('cancelled')} failed, ${count('skipped')} skipped`;
} catch {
  // No TAP file: the runner did not start; its own error is above.
}
console.log(summary);
process.exit(r.status ?? 1);
