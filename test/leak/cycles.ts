// Measures resident memory over repeated analyse/cancel cycles in one process (issue 10: ONNX
// Runtime is reported to leak on session create/release). Run with --expose-gc:
//   node --expose-gc --import tsx test/leak/cycles.ts [cycles] [model] [inprocess|child]
// Each cycle starts an analysis and cancels it once the forward pass has begun (after the
// sessions exist); then one full analysis for comparison. `inprocess` runs the engine in this
// process (what the CLI does); `child` runs each job in its own process through the job runner
// (dist/worker.js, what the extension does), so this process's RSS shows what stays in the host.
// Prints one JSON line.
import * as path from 'node:path';
import { analyzeModel } from '../../src/engine/analysis/analyze';
import { runJob } from '../../src/engine/jobs/run-job';

const cycles = Number(process.argv[2] ?? 20);
const model = process.argv[3] ?? path.resolve(__dirname, '..', 'fixtures', 'models', 'vit_tiny.onnx');
const mode = process.argv[4] ?? 'inprocess';
const workerScript = path.resolve(__dirname, '..', '..', 'dist', 'worker.js');
const gc = (globalThis as { gc?: () => void }).gc ?? (() => {});
const mb = () => process.memoryUsage().rss / 2 ** 20;

async function cycle(cancel: boolean): Promise<string> {
  const ac = new AbortController();
  const onProgress = (p: { phase: string; done?: number }) => {
    if (cancel && p.phase === 'forward' && (p.done ?? 0) > 0) ac.abort();
  };
  try {
    if (mode === 'child') {
      await runJob({ kind: 'analyze', request: { model, samples: 256, batch: 16 } }, { workerScript, signal: ac.signal, onProgress });
    } else {
      await analyzeModel({ model, samples: 256, batch: 16, signal: ac.signal, onProgress });
    }
    return 'done';
  } catch (e) {
    return (e as Error).name;
  }
}

async function settle(): Promise<number> {
  for (let i = 0; i < 3; i++) {
    gc();
    await new Promise((r) => setTimeout(r, 20));
  }
  return mb();
}

async function main(): Promise<void> {
  // Warm-up: code, ORT's own one-time allocations (thread pools, allocators).
  for (let i = 0; i < 2; i++) await cycle(true);
  const start = await settle();
  const rss: number[] = [];
  const outcomes: string[] = [];
  const t0 = performance.now();
  for (let i = 0; i < cycles; i++) {
    outcomes.push(await cycle(true));
    rss.push(Math.round((await settle()) * 10) / 10);
  }
  const ms = performance.now() - t0;
  const full = await cycle(false);
  const end = await settle();
  process.stdout.write(
    JSON.stringify({
      cycles,
      mode,
      model: path.basename(model),
      startMB: Math.round(start * 10) / 10,
      rssMB: rss,
      growthMB: Math.round((rss[rss.length - 1]! - start) * 10) / 10,
      perCycleMB: Math.round(((rss[rss.length - 1]! - start) / cycles) * 100) / 100,
      afterFullRunMB: Math.round(end * 10) / 10,
      fullRun: full,
      outcomes: [...new Set(outcomes)],
      msPerCycle: Math.round(ms / cycles),
    }) + '\n',
  );
}
void main();
