// `blocklens analyze --shard K/N --partial FILE` and `blocklens merge`, as a user (or a Slurm
// array job) runs them: the merged report equals the single run's, and bad sets are refused.
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { readPartial } from '../../src/engine/jobs/merge';
import { PARTIAL_VERSION } from '../../src/engine/jobs/partial';
import { validateReport } from '../../src/engine/report/validate';
import { cliInTemp } from '../helpers/cli-run';
import { fixture, manifest } from '../helpers/fixtures';

const { tmp, run } = cliInTemp('blocklens-shards-');

describe('blocklens analyze --shard / merge', () => {
  const m = manifest.models.vit_tiny!;
  const common = [fixture(m.file), '--data', fixture(m.calibration.npy!), '--labels', fixture(m.calibration.labels!), '--samples', '200', '--quiet'];

  it('two shards merged give the single run\'s report; the partials carry model hash, settings and id range', async () => {
    assert.equal(run('analyze', ...common, '--out', 'single.json').code, 0);
    for (const k of [1, 2]) {
      const r = run('analyze', ...common, '--shard', `${k}/2`, '--partial', `part${k}.json`);
      assert.equal(r.code, 0, r.stderr);
    }
    const p1 = await readPartial(path.join(tmp, 'part1.json'));
    assert.equal(p1.format, 'blocklens-partial');
    assert.equal(p1.version, PARTIAL_VERSION);
    assert.match(p1.modelIdentity, /^[0-9a-f]{64}$/);
    assert.deepEqual(p1.range, { start: 0, end: 100 });
    assert.equal(p1.settings.samples, 200);
    const r = run('merge', 'part2.json', 'part1.json', '--out', 'merged.json', '--html', 'merged.html');
    assert.equal(r.code, 0, r.stderr);
    const single = validateReport(JSON.parse(readFileSync(path.join(tmp, 'single.json'), 'utf8')));
    const merged = validateReport(JSON.parse(readFileSync(path.join(tmp, 'merged.json'), 'utf8')));
    assert.equal(merged.calibration.checksum, single.calibration.checksum);
    const flat = (x: unknown): number[] => (Array.isArray(x) ? x.flatMap(flat) : x && typeof x === 'object' ? Object.values(x).flatMap(flat) : typeof x === 'number' ? [x] : []);
    const a = flat(merged.metrics);
    const b = flat(single.metrics);
    assert.equal(a.length, b.length);
    a.forEach((v, i) => assert.ok(Math.abs(v - b[i]!) <= 1e-9 * Math.max(1, Math.abs(b[i]!)), `metric #${i}: ${v} vs ${b[i]}`));
    assert.deepEqual(merged.modelAccuracy, single.modelAccuracy);
    assert.ok(readFileSync(path.join(tmp, 'merged.html'), 'utf8').length > 1000);
  });

  it('merge refuses a missing shard, an overlap and other settings, naming the file', () => {
    let r = run('merge', 'part1.json', '--out', 'x.json');
    assert.equal(r.code, 1);
    assert.match(r.stderr, /missing shards 2\/2: no partial covers ids 100\.\.199 of 200 samples/);
    r = run('merge', 'part1.json', 'part1.json', 'part2.json');
    assert.equal(r.code, 1);
    assert.match(r.stderr, /part1\.json: overlaps part1\.json/);
    assert.equal(run('analyze', ...common, '--seed', '3', '--shard', '2/2', '--partial', 'seed3.json').code, 0);
    r = run('merge', 'part1.json', 'seed3.json');
    assert.equal(r.code, 1);
    assert.match(r.stderr, /seed3\.json: made with different settings than part1\.json: seed is 3 here and 0 there/);
    writeFileSync(path.join(tmp, 'junk.json'), '{"hello": 1}');
    r = run('merge', 'part1.json', 'junk.json');
    assert.match(r.stderr, /junk\.json: not a BlockLens partial/);
  });

  it('usage errors: --shard without --partial, a bad K/N, --out on a shard', () => {
    assert.match(run('analyze', ...common, '--shard', '1/2').stderr, /--shard needs --partial FILE/);
    assert.match(run('analyze', ...common, '--shard', '3/2', '--partial', 'p.json').stderr, /K must be in 1\.\.N/);
    assert.equal(run('analyze', ...common, '--shard', '1/2', '--partial', 'p.json', '--out', 'r.json').code, 2);
    assert.equal(run('merge').code, 2);
  });
});
