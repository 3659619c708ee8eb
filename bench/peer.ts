// npm run bench:peer — BlockLens against the usual Python way of the same job (PyTorch forward
// hooks, torch CKA, torch.linalg.lstsq; Debian's python3-torch through /usr/bin/python3), on the
// same ViT-small weights, the same inputs and the same thread count. Out of CI (needs Python).
//   node --import tsx bench/peer.ts [--samples N] [--threads N] [--batch N] [--span I,J]
// Both sides run as fresh processes, timed end to end (process start to exit); the ratio is
// Python ÷ BlockLens (above 1: BlockLens is faster). BlockLens runs it in one pass (`analyze
// --fit-span`) and, for reference, in two (`analyze`, then `rba`, which also writes the model).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { encodeNpy } from '../src/engine/calibration/npy';
import { openCalibration } from '../src/engine/calibration/index';
import { calibrationHints, modelInputs } from '../src/engine/analysis/analyze';
import { saveModelFile } from '../src/engine/onnx/model-file';
import { inlineTensorToFloat64 } from '../src/engine/onnx/tensor-data';
import { DataType } from '../src/engine/onnx/types';
import { buildVit } from '../test/helpers/vit-builder';

const PYTHON = process.env.BLOCKLENS_PYTHON ?? '/usr/bin/python3';
const ROOT = path.join(__dirname, '..');

function timed(cmd: string, args: string[]): { ms: number; stdout: string } {
  const t = performance.now();
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 1 << 26, cwd: ROOT });
  const ms = performance.now() - t;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}):\n${r.stderr}`);
  return { ms, stdout: r.stdout };
}

/** The RBA command of the CLI, if this build has one (issue 7). */
function rbaArgs(model: string, data: string, samples: number, threads: number, batch: number, span: [number, number], dir: string): string[] | undefined {
  const help = spawnSync(process.execPath, [path.join(ROOT, 'dist', 'cli.js'), '--help'], { encoding: 'utf8' });
  if (!/blocklens rba/.test(`${help.stdout}${help.stderr}`)) return undefined;
  // Python's span [I, J] maps block I−1's output to block J's (blocks I..J replaced): --from I−1 --to J.
  // No held-out verification: the Python side does not verify either.
  return ['rba', model, '--data', data, '--samples', String(samples), '--threads', String(threads), '--batch', String(batch), '--from', String(span[0] - 1), '--to', String(span[1]), '--no-verify', '--out', path.join(dir, 'rba.onnx'), '--quiet'];
}

async function main() {
  const { values } = parseArgs({
    options: {
      samples: { type: 'string', default: '256' },
      threads: { type: 'string', default: '2' },
      batch: { type: 'string', default: '32' },
      span: { type: 'string', default: '4,5' },
    },
  });
  const samples = Number(values.samples);
  const threads = Number(values.threads);
  const batch = Number(values.batch);
  const span = values.span!.split(',').map(Number) as [number, number];
  if (!existsSync(PYTHON)) throw new Error(`${PYTHON} not found: install Debian's python3-torch (apt-get install python3-torch)`);
  const probe = spawnSync(PYTHON, ['-c', 'import torch, numpy; print(torch.__version__)'], { encoding: 'utf8' });
  if (probe.status !== 0) throw new Error(`${PYTHON} cannot import torch: apt-get install python3-torch\n${probe.stderr}`);
  if (!existsSync(path.join(ROOT, 'dist', 'cli.js'))) throw new Error('dist/cli.js missing: npm run build');

  const dir = mkdtempSync(path.join(tmpdir(), 'blocklens-peer-'));
  try {
    // The model, its weights as .npy (one per float initializer), and the inputs as one .npy.
    const model = buildVit();
    const file = path.join(dir, 'vit_small.onnx');
    await saveModelFile(file, model);
    const weights = path.join(dir, 'weights');
    const { mkdirSync } = await import('node:fs');
    mkdirSync(weights);
    for (const t of model.graph!.initializer) {
      if (t.dataType !== DataType.FLOAT) continue;
      writeFileSync(path.join(weights, `${t.name!.replace(/\//g, '_')}.npy`), encodeNpy('float32', t.dims.map(Number), Float32Array.from(inlineTensorToFloat64(t))));
    }
    const source = await openCalibration({ inputs: modelInputs(model), hints: calibrationHints(model), samples, seed: 0 });
    const parts: Float32Array[] = [];
    let shape: number[] = [];
    for await (const b of source.batches(batch)) {
      const f = Object.values(b.feeds)[0]!;
      parts.push(f.data as Float32Array);
      shape = f.dims.slice(1);
    }
    await source.close();
    const all = new Float32Array(parts.reduce((a, p) => a + p.length, 0));
    let at = 0;
    for (const p of parts) {
      all.set(p, at);
      at += p.length;
    }
    const inputs = path.join(dir, 'inputs.npy');
    writeFileSync(inputs, encodeNpy('float32', [samples, ...shape], all));

    console.log(`peer bench: ViT-small (12 blocks, width 384, 197 tokens), ${samples} samples, batch ${batch}, ${threads} threads, RBA span ${span.join('-')}`);
    const cli = path.join(ROOT, 'dist', 'cli.js');
    const common = ['--data', inputs, '--samples', String(samples), '--threads', String(threads), '--batch', String(batch), '--quiet'];
    // One pass: the analysis plus the span fitted on every token (`--fit-span`), as the Python
    // script does in its one forward pass. Python's span [I, J] maps block I−1's output to block J's.
    const onePass = timed(process.execPath, [cli, 'analyze', file, ...common, '--fit-span', `${span[0] - 1}:${span[1]}`, '--out', path.join(dir, 'report-fit.json')]);
    // Two passes, as a user exporting the model would: analyze, then `rba` (no verification).
    const ours = timed(process.execPath, [cli, 'analyze', file, ...common, '--out', path.join(dir, 'report.json')]);
    const rba = rbaArgs(file, inputs, samples, threads, batch, span, dir);
    const oursRba = rba ? timed(process.execPath, [cli, ...rba]) : undefined;
    const py = timed(PYTHON, [path.join(ROOT, 'bench', 'peer', 'vit_hooks.py'), weights, inputs, '--threads', String(threads), '--batch', String(batch), '--span', String(span[0]), String(span[1])]);
    const pyOut = JSON.parse(py.stdout.trim().split('\n').pop()!) as { times: Record<string, number> };
    const f = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
    console.log(`BlockLens  one pass: analyze --fit-span ${f(onePass.ms)}`);
    console.log(`BlockLens  two passes: analyze ${f(ours.ms)}${oursRba ? ` + rba ${f(oursRba.ms)} = ${f(ours.ms + oursRba.ms)}` : ' (no rba command in this build)'}`);
    console.log(`PyTorch    ${f(py.ms)}  (${Object.entries(pyOut.times).map(([k, v]) => `${k} ${v.toFixed(1)} s`).join(', ')})`);
    console.log(`ratio      PyTorch ÷ BlockLens = ${(py.ms / onePass.ms).toFixed(2)} (one pass)${oursRba ? `, ${(py.ms / (ours.ms + oursRba.ms)).toFixed(2)} (analyze + rba, which also writes the new model)` : ''}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
