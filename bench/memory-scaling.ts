// Peak memory of an analysis at 1× and 4× the samples (issue 6: within 10%). Each run is a
// fresh process (peak RSS is per process): node --import tsx bench/memory-scaling.ts [MODEL] [--samples N]
// Without MODEL: the bundled vit_tiny with synthetic data at 512 and 2048 samples.
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { analyzeModel } from '../src/engine/jobs/analyze';

async function child(model: string, samples: number) {
  const t = performance.now();
  const report = await analyzeModel({ model, samples, seed: 0 });
  const ms = performance.now() - t;
  // maxRSS is in KiB.
  console.log(JSON.stringify({ samples, peakRssMiB: process.resourceUsage().maxRSS / 1024, ms, blocks: report.blocks.length }));
}

function main() {
  const { values, positionals } = parseArgs({ options: { samples: { type: 'string' }, child: { type: 'string' } }, allowPositionals: true });
  const model = positionals[0] ?? path.join(__dirname, '..', 'test', 'fixtures', 'models', 'vit_tiny.onnx');
  if (values.child) return child(model, Number(values.child));
  const base = Number(values.samples ?? 512);
  const rows = [base, 4 * base].map((n) => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', __filename, model, '--child', String(n)], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(r.stderr);
    return JSON.parse(r.stdout.trim().split('\n').pop()!) as { samples: number; peakRssMiB: number; ms: number };
  });
  for (const r of rows) console.log(`${path.basename(model)}  ${String(r.samples).padStart(6)} samples  peak RSS ${r.peakRssMiB.toFixed(0)} MiB  ${r.ms.toFixed(0)} ms`);
  console.log(`peak RSS 4× / 1× = ${(rows[1]!.peakRssMiB / rows[0]!.peakRssMiB).toFixed(3)}`);
}

void Promise.resolve(main()).catch((e) => {
  console.error(e);
  process.exit(1);
});
