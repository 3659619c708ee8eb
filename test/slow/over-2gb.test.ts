// Slow (npm run test:slow; out of CI until the engine core forms statistics as rows for wide models): a GPT-style decoder with 24 layers and 2.30 GB of weights
// in external data, generated here tensor by tensor, analysed by the CLI with 64 samples.
// Needs ~2.5 GB of free disk and ~3 GB of memory; about 2–4 minutes on 2 cores.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, describe, it } from 'node:test';
import { GPT_2GB, writeGpt } from '../helpers/gpt-builder';
import { REPO } from '../helpers/fixtures';
import { validateReport } from '../../src/engine/report/validate';

describe('over 2 GB: GPT-style decoder with external data', { timeout: 30 * 60_000 }, () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'blocklens-2gb-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('is generated without a protobuf over 2 GiB and analysed with 64 samples', async () => {
    const built = await writeGpt(dir, GPT_2GB);
    assert.ok(built.weightBytes > 2 ** 31, `weights ${built.weightBytes} bytes`);
    assert.equal(statSync(built.data).size, built.weightBytes);
    assert.ok(statSync(built.model).size < 1 << 20, 'the graph file holds no weights');

    const out = path.join(dir, 'report.json');
    const r = spawnSync(process.execPath, [path.join(REPO, 'dist', 'cli.js'), 'analyze', built.model, '--samples', '64', '--batch', '8', '--out', out, '--quiet'], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const report = validateReport(JSON.parse(readFileSync(out, 'utf8')));
    assert.equal(report.blocks.length, GPT_2GB.layers);
    assert.equal(report.detection.method, 'scoped-names');
    assert.equal(report.calibration.samples, 64);
    assert.ok(report.model.parameters >= built.parameters);
    assert.ok((report.model.sizeBytes ?? 0) > 2 ** 31);
    // Real numbers from a real run: defined for every block, and not all the same.
    assert.equal(report.metrics.br.length, GPT_2GB.layers);
    for (const v of report.metrics.br) assert.ok(v !== null && Number.isFinite(v), `br ${v}`);
    assert.ok(new Set(report.metrics.br).size > 1);
  });
});
