// npm run bench: how much an analysis costs relative to just running the model.
// Prints, from one run on this machine: plain ONNX Runtime forward passes over N inputs, then
// `analyzeModel` over the same N inputs (same seed, same batches), and their ratio.
//   node --import tsx bench/analyze-vs-forward.ts [MODEL] [--samples N] [--batch N] [--repeat N]
//   node --import tsx bench/analyze-vs-forward.ts --vit-small [--samples N]
// Without MODEL: the bundled ViT-style vit_tiny at 1024 samples, then a generated ViT-small
// (22M parameters, 224×224) at 128 samples.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { parseArgs } from 'node:util';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { analyzeModel, calibrationHints, modelInputs } from '../src/engine/analysis/analyze';
import { openModelSession } from '../src/engine/analysis/session';
import { openCalibration } from '../src/engine/calibration/index';
import { loadModelFile, saveModelFile } from '../src/engine/onnx/model-file';
import { buildVit } from '../test/helpers/vit-builder';

async function main() {
  const { values, positionals } = parseArgs({
    options: { samples: { type: 'string' }, batch: { type: 'string', default: '32' }, repeat: { type: 'string' }, 'vit-small': { type: 'boolean' } },
    allowPositionals: true,
  });
  const batch = Number(values.batch);
  if (positionals[0]) return bench(positionals[0], Number(values.samples ?? 1024), batch, Number(values.repeat ?? 3));
  if (!values['vit-small']) await bench(path.join(__dirname, '..', 'test', 'fixtures', 'models', 'vit_tiny.onnx'), Number(values.samples ?? 1024), batch, Number(values.repeat ?? 3));
  const dir = mkdtempSync(path.join(tmpdir(), 'blocklens-bench-'));
  try {
    const file = path.join(dir, 'vit_small.onnx');
    await saveModelFile(file, buildVit());
    await bench(file, Number(values['vit-small'] && values.samples ? values.samples : 128), batch, Number(values.repeat ?? 1));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function bench(model: string, samples: number, batch: number, repeat: number) {

  const loaded = await loadModelFile(model);
  const source = await openCalibration({ inputs: modelInputs(loaded.model), hints: calibrationHints(loaded.model), samples, seed: 0 });
  const batches: Record<string, ort.Tensor>[] = [];
  for await (const b of source.batches(batch)) {
    const feeds: Record<string, ort.Tensor> = {};
    for (const [k, t] of Object.entries(b.feeds)) feeds[k] = new ort.Tensor(t.dtype as ort.Tensor.Type, t.data as ort.Tensor.DataType, t.dims);
    batches.push(feeds);
  }
  await source.close();

  const forward: number[] = [];
  const analyze: number[] = [];
  let phases: Record<string, number> = {};
  // Interleave the two so that machine noise hits both alike; report medians.
  for (let r = 0; r < repeat; r++) {
    let t = performance.now();
    const s = await openModelSession(loaded.model, loaded.dir, { optimization: 'all' });
    for (const feeds of batches) await s.session.run(feeds);
    forward.push(performance.now() - t);
    await s.dispose();

    t = performance.now();
    const report = await analyzeModel({ model, samples, batch, seed: 0 });
    analyze.push(performance.now() - t);
    phases = report.timings ?? {};
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const f = median(forward);
  const a = median(analyze);
  const rss = process.memoryUsage().rss / 2 ** 20;
  console.log('');
  console.log(`model            ${path.basename(model)}, ${(loaded.bytes.length / 2 ** 20).toFixed(1)} MiB (${samples} samples, batch ${batch}, median of ${repeat})`);
  console.log(`forward only     ${f.toFixed(0)} ms  (session create + ${batches.length} runs)`);
  console.log(`analyze          ${a.toFixed(0)} ms  (phases: ${Object.entries(phases).map(([k, v]) => `${k} ${v}`).join(', ')})`);
  console.log(`ratio            analyze / forward = ${(a / f).toFixed(2)}`);
  console.log(`per sample       analyze ${(a / samples).toFixed(2)} ms, forward ${(f / samples).toFixed(2)} ms`);
  console.log(`peak rss         ${rss.toFixed(0)} MiB`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
