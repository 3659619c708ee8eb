import assert from 'node:assert/strict';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { analyzeInWorker, WorkerAnalysisError } from '../../src/engine/analysis/run-in-worker';
import { fixture, manifest, REPO } from '../helpers/fixtures';

const workerScript = path.join(REPO, 'dist', 'worker.js');

describe('analysis in a worker thread', () => {
  it('streams progress and returns the report', async () => {
    const phases = new Set<string>();
    const report = await analyzeInWorker({ model: fixture(manifest.models.linear_blocks!.file), samples: 64 }, { workerScript, onProgress: (p) => phases.add(p.phase) });
    assert.equal(report.blocks.length, 4);
    assert.ok(phases.has('forward') && phases.has('metrics'), [...phases].join(','));
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
});
