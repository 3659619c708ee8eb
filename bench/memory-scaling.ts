// Peak memory of an analysis at 1× and 4× the samples (issue 6: within 10%), beside the floor of
// plain forward passes. Each run is a fresh process (peak RSS is per process):
//   node --import tsx bench/memory-scaling.ts [MODEL] [--samples N] [--job-flags]
// Without MODEL: the bundled vit_tiny with synthetic data at 512 and 2048 samples.
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { analyzeModel } from '../src/engine/jobs/analyze';
import { JOB_PROCESS_FLAGS } from '../src/engine/jobs/run-job';
import { openCalibration } from '../src/engine/calibration/index';
import { calibrationHints, modelInputs } from '../src/engine/model/introspect';
import { loadModelFile } from '../src/engine/onnx/model-file';
import { toOrtFeeds } from '../src/engine/runtime/feeds';
import { openModelSession } from '../src/engine/runtime/session';

async function child(model: string, samples: number, forwardOnly: boolean) {
  const t = performance.now();
  if (forwardOnly) {
    // The floor: the same batches through the plain model, nothing kept.
    const loaded = await loadModelFile(model);
    const src = await openCalibration({ inputs: modelInputs(loaded.model), hints: calibrationHints(loaded.model), samples, seed: 0 });
    const s = await openModelSession(loaded.model, loaded.dir);
    for await (const b of src.batches(32)) await s.session.run(toOrtFeeds(b));
    await s.dispose();
  } else await analyzeModel({ model, samples, seed: 0 });
  const ms = performance.now() - t;
  // maxRSS is in KiB.
  console.log(JSON.stringify({ samples, peakRssMiB: process.resourceUsage().maxRSS / 1024, ms }));
}

function main() {
  const { values, positionals } = parseArgs({ options: { samples: { type: 'string' }, child: { type: 'string' }, forward: { type: 'boolean' }, 'job-flags': { type: 'boolean' } }, allowPositionals: true });
  const model = positionals[0] ?? path.join(__dirname, '..', 'test', 'fixtures', 'models', 'vit_tiny.onnx');
  if (values.child) return child(model, Number(values.child), !!values.forward);
  const base = Number(values.samples ?? 512);
  const measure = (n: number, forward: boolean) => {
    // --job-flags: the node flags of the job process the extension runs analyses in.
    const flags = values['job-flags'] ? JOB_PROCESS_FLAGS : [];
    const r = spawnSync(process.execPath, [...flags, '--import', 'tsx', __filename, model, '--child', String(n), ...(forward ? ['--forward'] : [])], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(r.stderr);
    return JSON.parse(r.stdout.trim().split('\n').pop()!) as { samples: number; peakRssMiB: number; ms: number };
  };
  const rows = [base, 4 * base].map((n) => ({ analyze: measure(n, false), forward: measure(n, true) }));
  for (const r of rows) {
    console.log(`${path.basename(model)}  ${String(r.analyze.samples).padStart(6)} samples  peak RSS: analyze ${r.analyze.peakRssMiB.toFixed(0)} MiB, forward only ${r.forward.peakRssMiB.toFixed(0)} MiB (analysis adds ${(r.analyze.peakRssMiB - r.forward.peakRssMiB).toFixed(0)} MiB)`);
  }
  console.log(`peak RSS 4× / 1× = ${(rows[1]!.analyze.peakRssMiB / rows[0]!.analyze.peakRssMiB).toFixed(3)} (forward only: ${(rows[1]!.forward.peakRssMiB / rows[0]!.forward.peakRssMiB).toFixed(3)})`);
}

void Promise.resolve(main()).catch((e) => {
  console.error(e);
  process.exit(1);
});
