// npm run bench:large — the over-2 GB path. Generates a GPT-style decoder (24 layers, width 1408:
// 574M float32 weights, 2.30 GB) as an .onnx graph + external data, written tensor by tensor, then
// analyses it with 64 samples in a child process and reports peak RSS (VmHWM) against the
// weights' size (target ≤ 1.5×). With an `rba` command in the CLI it also exports a model with a
// span replaced and checks that the output keeps external data and that ONNX Runtime loads it.
//   node --import tsx bench/large-model.ts [--dir DIR (kept, reused)] [--samples 64] [--batch 8]
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { GPT_2GB, writeGpt } from '../test/helpers/gpt-builder';
import { measure } from './memory';

const ROOT = path.join(__dirname, '..');
const GiB = 2 ** 30;
/** The 1-minute load average: wall times on a shared machine mean little without it. */
const loadNow = () => `load ${loadavg()[0]!.toFixed(1)}`;

export interface LargeRun {
  weightsBytes: number;
  buildMs?: number;
  analyzeMs: number;
  peakMiB: number;
  ratio: number;
  blocks: number;
  export?: { ms: number; peakMiB: number; dataBytes: number; graphBytes: number; loadPeakMiB: number };
}

/** Builds (unless present) and analyses the >2 GB decoder; returns the figures. */
export async function runLarge(dir: string, samples = 64, batch = 8, log = console.log): Promise<LargeRun> {
  const model = path.join(dir, 'gpt.onnx');
  let buildMs: number | undefined;
  if (!existsSync(model) || !existsSync(`${model}.data`)) {
    const t = performance.now();
    await writeGpt(dir, GPT_2GB);
    buildMs = performance.now() - t;
  }
  const weightsBytes = statSync(`${model}.data`).size;
  log(`model            gpt.onnx ${(statSync(model).size / 1024).toFixed(0)} KiB + gpt.onnx.data ${(weightsBytes / GiB).toFixed(2)} GiB (${GPT_2GB.layers} layers, width ${GPT_2GB.width})${buildMs ? `, written in ${(buildMs / 1000).toFixed(1)} s` : ''}`);
  log(`machine          ${loadNow()} before analyze`);
  const t = performance.now();
  const marks = measure('analyze', model, samples, batch, {}, path.join(__dirname, 'memory.ts'));
  const analyzeMs = performance.now() - t;
  const peakMiB = marks.end!.hwm;
  const ratio = (peakMiB * 2 ** 20) / weightsBytes;
  const report = path.join(dir, 'report.json');
  const cli = spawnSync(process.execPath, [path.join(ROOT, 'dist', 'cli.js'), 'blocks', model, '--json'], { encoding: 'utf8', maxBuffer: 1 << 26 });
  const blocks = cli.status === 0 ? (JSON.parse(cli.stdout) as { blocks: unknown[] }).blocks.length : -1;
  log(`analyze          ${samples} samples, batch ${batch}: ${(analyzeMs / 1000).toFixed(1)} s, ${blocks} blocks (${loadNow()} after)`);
  log(`peak RSS         ${peakMiB.toFixed(0)} MiB = ${ratio.toFixed(2)}× the weights (target ≤ 1.5×)`);
  void report;
  const run: LargeRun = { weightsBytes, buildMs, analyzeMs, peakMiB, ratio, blocks };

  // RBA export (issue 7): replace blocks 11..12 by one linear map, keep external data, load in ORT.
  const help = spawnSync(process.execPath, [path.join(ROOT, 'dist', 'cli.js'), '--help'], { encoding: 'utf8' });
  if (!/blocklens rba/.test(`${help.stdout}${help.stderr}`)) {
    log('rba export       not measured: this build has no `rba` command');
    return run;
  }
  const out = path.join(dir, 'gpt.rba.onnx');
  rmSync(out, { force: true });
  rmSync(`${out}.data`, { force: true });
  const te = performance.now();
  const rba = measure('cli', model, samples, batch, {}, path.join(__dirname, 'memory.ts'), [
    'rba', model, '--from', '10', '--to', '12', '--samples', String(samples), '--batch', String(batch), '--out', out, '--quiet',
  ]);
  const exportMs = performance.now() - te;
  const files = readdirSync(dir).filter((f) => f.startsWith('gpt.rba.onnx'));
  const dataBytes = existsSync(`${out}.data`) ? statSync(`${out}.data`).size : 0;
  log(`rba export       blocks 11-12 → one linear map, held-out verification included: ${(exportMs / 1000).toFixed(1)} s (${loadNow()} after), peak RSS ${rba.end!.hwm.toFixed(0)} MiB = ${((rba.end!.hwm * 2 ** 20) / weightsBytes).toFixed(2)}× the weights`);
  log(`                 wrote ${files.join(' + ')}: graph ${(statSync(out).size / 1024).toFixed(0)} KiB, external data ${(dataBytes / GiB).toFixed(2)} GiB`);
  const load = measure('ort-load', out, batch, batch, {}, path.join(__dirname, 'memory.ts'));
  log(`ORT load         the exported model by path, one batch: ${((load.end!.ms ?? 0) / 1000).toFixed(1)} s, peak RSS ${load.end!.hwm.toFixed(0)} MiB`);
  run.export = { ms: exportMs, peakMiB: rba.end!.hwm, dataBytes, graphBytes: statSync(out).size, loadPeakMiB: load.end!.hwm };
  return run;
}

async function main() {
  const { values } = parseArgs({ options: { dir: { type: 'string' }, samples: { type: 'string', default: '64' }, batch: { type: 'string', default: '8' } } });
  const keep = values.dir !== undefined;
  const dir = values.dir ?? mkdtempSync(path.join(tmpdir(), 'blocklens-large-'));
  mkdirSync(dir, { recursive: true });
  try {
    await runLarge(dir, Number(values.samples), Number(values.batch));
  } finally {
    if (!keep) rmSync(dir, { recursive: true, force: true });
  }
}

if (require.main === module) {
  main().catch((e) => {
    console.error(e);
    process.exit(1);
  });
}
