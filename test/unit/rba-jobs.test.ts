// The RBA jobs through the one JobRequest union (what the extension's job process runs).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, describe, it } from 'node:test';
import { runJobHere } from '../../src/engine/jobs/run';
import { fixture, manifest } from '../helpers/fixtures';

const tmp = mkdtempSync(path.join(tmpdir(), 'blocklens-rba-jobs-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

describe('rba, plan and verify jobs', () => {
  const model = fixture(manifest.models.vit_tiny!.file);
  const data = fixture('data/digits_x.npy');
  it('rba then verify, and plan, all as JobRequests with progress', async () => {
    const phases: string[] = [];
    const out = path.join(tmp, 'v.onnx');
    const r = await runJobHere({ kind: 'rba', request: { model, data, samples: 64, spans: [{ from: 3, to: 4 }], out } }, { onProgress: (p) => phases.push(p.phase) });
    assert.equal(r.kind, 'rba');
    assert.equal(r.kind === 'rba' && r.result.out, out);
    assert.deepEqual(phases, ['pass', 'fit', 'surgery', 'write', 'verify']);
    const v = await runJobHere({ kind: 'verify', request: { model, candidate: out, data, samples: 64, heldOutOnly: false } });
    assert.ok(v.kind === 'verify' && v.result.samples === 64 && v.result.agreement! > 0.9);
    const p = await runJobHere({ kind: 'plan', request: { model, data, samples: 64, remove: 1, dryRun: true } });
    assert.ok(p.kind === 'plan' && p.result.chosen?.blocksRemoved === 1);
    // Plain data: the requests and results cross process borders as JSON.
    assert.deepEqual(JSON.parse(JSON.stringify(r)).result.spans[0].from, 3);
  });
  it('cancellation stops the job with an AbortError', async () => {
    const c = new AbortController();
    c.abort();
    await assert.rejects(runJobHere({ kind: 'plan', request: { model, data, remove: 1, dryRun: true } }, { signal: c.signal }), (e: Error) => e.name === 'AbortError');
  });
});
