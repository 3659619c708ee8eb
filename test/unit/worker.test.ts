import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, describe, it } from 'node:test';
import { analyzeInWorker, WorkerAnalysisError } from '../../src/engine/analysis/run-in-worker';
import { analyzeModel } from '../../src/engine/jobs/analyze';
import { JobError, runJob } from '../../src/engine/jobs/run-job';
import { fixture, manifest, REPO } from '../helpers/fixtures';

const workerScript = path.join(REPO, 'dist', 'worker.js');
const dir = mkdtempSync(path.join(tmpdir(), 'blocklens-jobs-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** A stand-in job process that does `body` when it receives 'start'. */
function fakeWorker(name: string, body: string): string {
  const file = path.join(dir, name);
  writeFileSync(file, `process.on('message', (m) => { if (m.type === 'start') { ${body} } });\n`);
  return file;
}

describe('jobs in a child process', () => {
  it('streams progress and returns the report', async () => {
    const phases = new Set<string>();
    const report = await analyzeInWorker({ model: fixture(manifest.models.linear_blocks!.file), samples: 64 }, { workerScript, onProgress: (p) => phases.add(p.phase) });
    assert.equal(report.blocks.length, 4);
    assert.ok(phases.has('forward') && phases.has('metrics'), [...phases].join(','));
  });

  it('image preprocessing options travel through the request', async () => {
    const m = manifest.models.vit_tiny!;
    const request = { model: fixture(m.file), data: fixture(m.calibration.images!), samples: 20, image: { scale: '0-255' as const } };
    const scaled = await runJob({ kind: 'analyze', request }, { workerScript });
    const plain = await runJob({ kind: 'analyze', request: { ...request, image: undefined } }, { workerScript });
    assert.ok(scaled.kind === 'report' && plain.kind === 'report');
    assert.equal(scaled.report.calibration.preprocessing?.scale, '0-255');
    assert.notEqual(scaled.report.calibration.checksum, plain.report.calibration.checksum);
  });

  it('errors come back as messages naming the file', async () => {
    const bad = fixture('broken/truncated.onnx');
    await assert.rejects(analyzeInWorker({ model: bad }, { workerScript }), (e: Error) => e instanceof WorkerAnalysisError && /truncated/.test(e.message) && (e as WorkerAnalysisError).file === bad);
  });

  it('cancel stops a run mid-way with an AbortError', async () => {
    const ac = new AbortController();
    const run = analyzeInWorker({ model: fixture(manifest.models.vit_tiny!.file), samples: 4096, batch: 8 }, {
      workerScript,
      signal: ac.signal,
      onProgress: (p) => {
        if (p.phase === 'forward' && (p.done ?? 0) >= 64) ac.abort();
      },
    });
    await assert.rejects(run, (e: Error) => e.name === 'AbortError');
  });

  it('a child that dies (native crash) rejects with a clear error, the caller lives on', async () => {
    const crash = fakeWorker('crash.js', "process.kill(process.pid, 'SIGSEGV');");
    await assert.rejects(runJob({ kind: 'merge', partials: [] }, { workerScript: crash }), (e: Error) => e instanceof JobError && /killed by signal SIGSEGV/.test(e.message));
    const exit = fakeWorker('exit.js', "process.stderr.write('out of memory\\\\n'); process.exit(3);");
    await assert.rejects(runJob({ kind: 'merge', partials: [] }, { workerScript: exit }), (e: Error) => /exited with code 3/.test(e.message) && /out of memory/.test(e.message));
  });

  it('a child that ignores cancel is killed after the grace period', async () => {
    const stuck = fakeWorker('stuck.js', 'setInterval(() => {}, 1000);');
    const ac = new AbortController();
    const run = runJob({ kind: 'merge', partials: [] }, { workerScript: stuck, signal: ac.signal, cancelGraceMs: 200 });
    setTimeout(() => ac.abort(), 100);
    await assert.rejects(run, (e: Error) => e.name === 'AbortError');
  });
});

describe('cancellation in every phase', () => {
  for (const phase of ['session', 'metrics'] as const) {
    it(`an abort during ${phase} stops the run with an AbortError`, async () => {
      const ac = new AbortController();
      let seen = false;
      const m = manifest.models.vit_tiny!;
      await assert.rejects(
        analyzeModel({ model: fixture(m.file), data: fixture(m.calibration.npy!), labels: fixture(m.calibration.labels!), samples: 64, signal: ac.signal, onProgress: (p) => {
          if (p.phase === phase) {
            seen = true;
            ac.abort();
          }
        } }),
        (e: Error) => e.name === 'AbortError',
      );
      assert.ok(seen);
    });
  }
});
