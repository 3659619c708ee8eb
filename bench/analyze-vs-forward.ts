// npm run bench: the performance targets of issue 9, each as a ratio taken in one run on this
// machine. Every measurement runs in its own child process (bench/memory.ts) and reports its wall
// time, CPU time (user+sys; steadier than wall on a shared machine) and peak RSS (VmHWM).
//   1. analysis overhead   analyze ÷ plain ORT forward, same inputs and session options   ≤ 1.10
//   2. RBA fit overhead    one-pass fit of every span ÷ forward (when the CLI has `rba`)   ≤ 1.5
//   3a. lean memory        peak RSS analyze ÷ peak RSS plain forward                       ≤ 1.2
//   3b. flat memory        peak RSS analyze at 4× the samples ÷ at 1×                      ≤ 1.1
//   4. over 2 GB           peak RSS ÷ weights, 24-layer decoder, 64 samples (--large)     ≤ 1.5
//
//   node --import tsx bench/analyze-vs-forward.ts [MODEL] [--samples 1000] [--batch 32]
//        [--flat 250] [--large] [--quick]
// Without MODEL: the generated ViT-small (12 blocks, width 384, 197 tokens, 22M parameters).
// --quick: 128 samples, flat 32 (a smoke run; the ratios are noisier).
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { parseArgs } from 'node:util';
import * as path from 'node:path';
import { saveModelFile } from '../src/engine/onnx/model-file';
import { buildVit } from '../test/helpers/vit-builder';
import { measure, type MemStatus } from './memory';

type Marks = Record<string, MemStatus & { ms?: number; cpuMs?: number }>;

interface Row {
  target: string;
  ratio: number;
  limit: number;
  detail: string;
}

const MEMORY_SCRIPT = path.join(__dirname, 'memory.ts');

function run(stage: string, model: string, samples: number, batch: number): { ms: number; cpuMs: number; peak: number } {
  const m: Marks = measure(stage, model, samples, batch, {}, MEMORY_SCRIPT);
  const timed = stage === 'analyze' ? m.end! : m.forward!;
  return { ms: timed.ms ?? NaN, cpuMs: timed.cpuMs ?? NaN, peak: m.end!.hwm };
}

async function main() {
  const { values, positionals } = parseArgs({
    options: {
      samples: { type: 'string' },
      batch: { type: 'string', default: '32' },
      flat: { type: 'string' },
      large: { type: 'boolean' },
      quick: { type: 'boolean' },
    },
    allowPositionals: true,
  });
  const quick = values.quick === true;
  const samples = Number(values.samples ?? (quick ? 128 : 1000));
  const flat = Number(values.flat ?? (quick ? 32 : Math.round(samples / 4)));
  const batch = Number(values.batch);
  const dir = mkdtempSync(path.join(tmpdir(), 'blocklens-bench-'));
  const rows: Row[] = [];
  try {
    let model = positionals[0];
    if (!model) {
      model = path.join(dir, 'vit_small.onnx');
      await saveModelFile(model, buildVit());
    }
    console.log(`machine: ${cpus().length} × ${cpus()[0]?.model ?? 'CPU'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, node ${process.version}`);
    console.log(`model: ${path.basename(model)}; ${samples} samples, batch ${batch}; each measurement in a fresh process`);

    // Forward and analyze alternate, so that load from other processes hits both alike.
    const fwd = run('plain-forward', model, samples, batch);
    console.log(`plain forward    ${(fwd.ms / 1000).toFixed(1)} s wall, ${(fwd.cpuMs / 1000).toFixed(1)} s cpu, peak ${fwd.peak.toFixed(0)} MiB`);
    const ana = run('analyze', model, samples, batch);
    console.log(`analyze          ${(ana.ms / 1000).toFixed(1)} s wall, ${(ana.cpuMs / 1000).toFixed(1)} s cpu, peak ${ana.peak.toFixed(0)} MiB`);
    const small = run('analyze', model, flat, batch);
    console.log(`analyze (${flat})   ${(small.ms / 1000).toFixed(1)} s wall, peak ${small.peak.toFixed(0)} MiB`);

    rows.push({
      target: '1. analyze ÷ plain forward, wall',
      ratio: ana.ms / fwd.ms,
      limit: 1.1,
      detail: `${(ana.ms / 1000).toFixed(1)} s / ${(fwd.ms / 1000).toFixed(1)} s; cpu ${(ana.cpuMs / fwd.cpuMs).toFixed(2)}`,
    });
    const rba = await rbaFit(model, samples, batch);
    if (rba) rows.push({ target: '2. RBA fit ÷ plain forward, wall', ratio: rba.ms / fwd.ms, limit: 1.5, detail: `${rba.detail.split(';')[0]} / ${(fwd.ms / 1000).toFixed(1)} s; cpu ${(rba.cpuMs / fwd.cpuMs).toFixed(2)}` });
    else rows.push({ target: '2. RBA fit ÷ plain forward', ratio: NaN, limit: 1.5, detail: 'no RBA fit in this build' });
    rows.push({ target: '3a. peak RSS analyze ÷ forward', ratio: ana.peak / fwd.peak, limit: 1.2, detail: `${ana.peak.toFixed(0)} / ${fwd.peak.toFixed(0)} MiB` });
    rows.push({ target: `3b. peak RSS ${samples} ÷ ${flat} samples`, ratio: ana.peak / small.peak, limit: 1.1, detail: `${ana.peak.toFixed(0)} / ${small.peak.toFixed(0)} MiB` });

    if (values.large) {
      const { runLarge } = await import('./large-model');
      const big = await runLarge(dir, 64, 8, (l) => console.log(l));
      rows.push({ target: '4. peak RSS ÷ weights, 2.3 GB decoder', ratio: big.ratio, limit: 1.5, detail: `${big.peakMiB.toFixed(0)} MiB / ${(big.weightsBytes / 2 ** 20).toFixed(0)} MiB, ${(big.analyzeMs / 1000).toFixed(0)} s` });
      if (big.export) {
        const e = big.export;
        rows.push({ target: '4. peak RSS ÷ weights, rba export', ratio: (e.peakMiB * 2 ** 20) / big.weightsBytes, limit: 1.5, detail: `${e.peakMiB.toFixed(0)} MiB, ${(e.ms / 1000).toFixed(0)} s; graph ${(e.graphBytes / 1024).toFixed(0)} KiB + ${(e.dataBytes / 2 ** 30).toFixed(2)} GiB external data` });
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  console.log('');
  console.log('target                                   ratio   limit   met   detail');
  for (const r of rows) {
    const met = Number.isNaN(r.ratio) ? '—' : r.ratio <= r.limit ? 'yes' : 'no';
    console.log(`${r.target.padEnd(40)} ${Number.isNaN(r.ratio) ? '   —' : r.ratio.toFixed(2).padStart(5)}   ≤ ${r.limit.toFixed(2)}  ${met.padEnd(4)}  ${r.detail}`);
  }
}

/** The one-pass RBA fit of every span, timed, if the engine has it (issue 7). */
async function rbaFit(model: string, samples: number, batch: number): Promise<{ ms: number; cpuMs: number; detail: string } | undefined> {
  if (!existsSync(path.join(__dirname, '..', 'src', 'engine', 'rba', 'one-pass.ts'))) return undefined;
  const m = measure('rba-fit', model, samples, batch, {}, MEMORY_SCRIPT).end as MemStatus & Record<string, number>;
  console.log(`rba fit          ${(m.ms! / 1000).toFixed(1)} s wall, ${(m.cpuMs! / 1000).toFixed(1)} s cpu, peak ${m.hwm.toFixed(0)} MiB (${m.spans} spans; forward ${(m.fitForwardMs! / 1000).toFixed(1)} s, accumulate ${(m.accumulateMs! / 1000).toFixed(1)} s)`);
  return { ms: m.ms!, cpuMs: m.cpuMs!, detail: `${m.spans} spans, ${(m.ms! / 1000).toFixed(1)} s; cpu ratio see above; peak ${m.hwm.toFixed(0)} MiB` };
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
