// npm run bench:memory — where analyze's memory goes, stage by stage, on the bench's ViT-small.
// Each measurement runs in its own child process and reports VmHWM (peak RSS) and VmRSS from
// /proc/self/status, so no measurement inherits another's heap or ORT arenas.
//   node --import tsx bench/memory.ts [MODEL] [--samples N] [--batch N] [--only a,b]
// Without MODEL: the generated ViT-small (88 MB of float32 weights, inline).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';

export interface MemStatus {
  hwm: number;
  rss: number;
}

/** VmHWM and VmRSS of this process, in MiB (Linux). */
export function memStatus(): MemStatus {
  const text = readFileSync('/proc/self/status', 'utf8');
  const kb = (key: string) => Number(text.match(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm'))?.[1] ?? NaN);
  return { hwm: kb('VmHWM') / 1024, rss: kb('VmRSS') / 1024 };
}

/** What each child measures: a description and the code it runs. */
const STAGES: Record<string, string> = {
  baseline: 'node + onnxruntime-node loaded, nothing else',
  'js-load': 'loadModelFile: file buffer + decoded model (views into it)',
  'js-load+encode': 'js-load, then the instrumented copy encoded to a buffer',
  'fwd-path': 'plain ORT forward, session created from the file path',
  'fwd-buffer': 'plain ORT forward, session from the JS buffer (today\'s bench baseline)',
  'fwd-path-noarena': 'fwd-path with enableCpuMemArena=false',
  'fwd-path-nopattern': 'fwd-path with enableMemPattern=false',
  'fwd-path-noprepack': 'fwd-path with session.disable_prepacking=1',
  'fwd-path-lean': 'fwd-path with arena off, mem pattern off',
  'fwd-instrumented-buffer': 'instrumented model (pooled block outputs) from a buffer, forward',
  'fwd-instrumented-external': 'instrumented model from a small buffer, weights by reference to the .onnx file',
  'fwd-instrumented-tied': 'fwd-instrumented-external with the pooling tied to run right after each block (onnx/early-outputs.ts)',
  'fwd-plain-ref': 'plain model (not instrumented) from a small buffer, weights by reference',
  'fwd-instrumented-lean': 'fwd-instrumented-external with arena off, mem pattern off',
  'fwd-instrumented-noarena': 'fwd-instrumented-external with arena off',
  'plain-forward': 'plain ORT forward as the bench compares it: the engine\'s session options, model by path, batches streamed',
  matmul: 'the float64 Gemm sessions of the algebra (ORT matmul backend) only',
  probe: 'the rank probe: model with raw block outputs exposed, one sample',
  analyze: 'analyzeModel end to end',
};

async function child(stage: string, model: string, samples: number, batch: number): Promise<Record<string, unknown>> {
  const ort = await import('onnxruntime-node');
  const { loadModelFile } = await import('../src/engine/onnx/model-file');
  const { encodeModel } = await import('../src/engine/onnx/codec');
  const { openCalibration } = await import('../src/engine/calibration/index');
  const { modelInputs, calibrationHints } = await import('../src/engine/analysis/analyze');
  const marks: Record<string, MemStatus> = {};
  const mark = (k: string) => (marks[k] = memStatus());
  mark('start');
  const opts = (extra: Partial<import('onnxruntime-node').InferenceSession.SessionOptions> = {}) => ({
    graphOptimizationLevel: 'all' as const,
    executionProviders: ['cpu'],
    logSeverityLevel: 3 as const,
    ...extra,
  });
  const feedsFor = async (m: import('../src/engine/onnx/types').ModelProto) => {
    (globalThis as { gc?: () => void }).gc?.();
    const source = await openCalibration({ inputs: modelInputs(m), hints: calibrationHints(m), samples, seed: 0 });
    return { source, toFeeds: (b: { feeds: Record<string, { dtype: string; data: unknown; dims: number[] }> }) => {
      const f: Record<string, import('onnxruntime-node').Tensor> = {};
      for (const [k, t] of Object.entries(b.feeds)) f[k] = new ort.Tensor(t.dtype as 'float32', t.data as Float32Array, t.dims);
      return f;
    } };
  };
  const forward = async (session: import('onnxruntime-node').InferenceSession, m: import('../src/engine/onnx/types').ModelProto) => {
    const { source, toFeeds } = await feedsFor(m);
    const t0 = performance.now();
    const c0 = process.cpuUsage();
    for await (const b of source.batches(batch)) {
      const out = await session.run(toFeeds(b));
      for (const t of Object.values(out)) t.dispose?.();
    }
    await source.close();
    mark('forward');
    const c = process.cpuUsage(c0);
    Object.assign(marks.forward!, { ms: Math.round(performance.now() - t0), cpuMs: Math.round((c.user + c.system) / 1000) });
  };
  const { decodeModel } = await import('../src/engine/onnx/codec');
  // The inputs only: a decoded copy without initializers, so the file's bytes are not kept.
  const graphOnly = () => {
    const m = decodeModel(new Uint8Array(readFileSync(model)));
    return decodeModel(encodeModel({ ...m, graph: { ...m.graph!, initializer: m.graph!.initializer.filter((t) => (t.rawData?.byteLength ?? 0) < 4096) } }));
  };
  switch (stage) {
    case 'baseline':
      break;
    case 'js-load':
      (globalThis as { keep?: unknown }).keep = await loadModelFile(model);
      mark('loaded');
      break;
    case 'js-load+encode': {
      const loaded = await loadModelFile(model);
      mark('loaded');
      const { instrumented } = await instrumentedModel(loaded.model);
      (globalThis as { keep?: unknown }).keep = [loaded, encodeModel(instrumented)];
      mark('encoded');
      break;
    }
    case 'fwd-path':
    case 'fwd-path-noarena':
    case 'fwd-path-nopattern':
    case 'fwd-path-noprepack':
    case 'fwd-path-lean': {
      const m = graphOnly();
      const extra =
        stage === 'fwd-path-noarena' ? { enableCpuMemArena: false }
        : stage === 'fwd-path-nopattern' ? { enableMemPattern: false }
        : stage === 'fwd-path-noprepack' ? { extra: { session: { disable_prepacking: '1' } } }
        : stage === 'fwd-path-lean' ? { enableCpuMemArena: false, enableMemPattern: false }
        : {};
      const s = await ort.InferenceSession.create(model, opts(extra));
      mark('session');
      await forward(s, m);
      break;
    }
    case 'fwd-buffer': {
      const loaded = await loadModelFile(model);
      mark('loaded');
      const s = await ort.InferenceSession.create(encodeModel(loaded.model), opts());
      mark('session');
      await forward(s, loaded.model);
      break;
    }
    case 'fwd-instrumented-buffer': {
      const loaded = await loadModelFile(model);
      mark('loaded');
      const { instrumented } = await instrumentedModel(loaded.model);
      const s = await ort.InferenceSession.create(encodeModel(instrumented), opts());
      mark('session');
      await forward(s, loaded.model);
      break;
    }
    case 'fwd-instrumented-external':
    case 'fwd-plain-ref':
    case 'fwd-instrumented-tied':
    case 'fwd-instrumented-lean':
    case 'fwd-instrumented-noarena': {
      const { bytes, dir } = await instrumentedBytes(model, stage === 'fwd-instrumented-tied', stage === 'fwd-plain-ref');
      (globalThis as { gc?: () => void }).gc?.();
      mark('loaded');
      const lean = stage === 'fwd-instrumented-lean' ? { enableCpuMemArena: false, enableMemPattern: false } : stage === 'fwd-instrumented-noarena' ? { enableCpuMemArena: false } : {};
      const s = await ort.InferenceSession.create(bytes, opts({ ...lean, extra: { session: { model_external_initializers_file_folder_path: dir } } }));
      mark('session');
      await forward(s, graphOnly());
      break;
    }
    case 'plain-forward': {
      // Exactly the options analyze's session gets (BLOCKLENS_BENCH_SESSION), the file by path.
      const { sessionOptions } = await import('../src/engine/analysis/session');
      const settings = JSON.parse(process.env.BLOCKLENS_BENCH_SESSION ?? '{}') as Record<string, unknown>;
      const m = graphOnly();
      const t0 = performance.now();
      const c0 = process.cpuUsage();
      const s = await ort.InferenceSession.create(model, sessionOptions(settings));
      mark('session');
      await forward(s, m);
      const c = process.cpuUsage(c0);
      Object.assign(marks.forward!, { ms: Math.round(performance.now() - t0), cpuMs: Math.round((c.user + c.system) / 1000) });
      break;
    }
    case 'rba-fit': {
      // Issue 7's one-pass fit of every candidate span over all tokens (normal equations in one
      // forward pass), then the solve of every span. Module paths are strings: this bench also
      // builds where RBA is not there yet.
      const dir = '../src/engine/rba/';
      const { openModelContext } = await import(`${dir}context`);
      const { runSpanPass } = await import(`${dir}one-pass`);
      const { fitAllSpans } = await import(`${dir}ranking`);
      const { createOrtMatmul } = await import('../src/engine/linalg/index');
      const session = JSON.parse(process.env.BLOCKLENS_BENCH_SESSION ?? '{}') as Record<string, unknown>;
      const t0 = performance.now();
      const c0 = process.cpuUsage();
      const mm = await createOrtMatmul();
      const ctx = await openModelContext({ model });
      const r = await runSpanPass(ctx, { model, samples, batch, seed: 0, ...session }, mm);
      const fits = (await fitAllSpans(r.stats, mm)) as unknown[];
      await mm.dispose();
      mark('end');
      const c = process.cpuUsage(c0);
      Object.assign(marks.end!, { ms: Math.round(performance.now() - t0), cpuMs: Math.round((c.user + c.system) / 1000), spans: fits.length, fitForwardMs: Math.round(r.forwardMs), accumulateMs: Math.round(r.accumulateMs) });
      break;
    }
    case 'cli': {
      // The CLI in this process: BLOCKLENS_BENCH_ARGS (JSON array) are its arguments.
      const { main } = await import('../src/cli/main');
      const t0 = performance.now();
      const code = await main(JSON.parse(process.env.BLOCKLENS_BENCH_ARGS ?? '[]') as string[]);
      if (code !== 0) throw new Error(`blocklens exited with ${code}`);
      mark('end');
      Object.assign(marks.end!, { ms: Math.round(performance.now() - t0) });
      break;
    }
    case 'ort-load': {
      // ONNX Runtime loads the model by path (external data beside it) and runs one batch.
      const t0 = performance.now();
      const s = await ort.InferenceSession.create(model, opts());
      mark('session');
      const m = graphOnly();
      const { source, toFeeds } = await feedsFor(m);
      for await (const b of source.batches(batch)) {
        const out = await s.run(toFeeds(b));
        for (const t of Object.values(out)) if (!(t.data as Float32Array).every(Number.isFinite)) throw new Error('non-finite output');
        break;
      }
      await source.close();
      mark('end');
      Object.assign(marks.end!, { ms: Math.round(performance.now() - t0) });
      break;
    }
    case 'matmul': {
      const { createOrtMatmul } = await import('../src/engine/linalg/ort-matmul');
      const mm = await createOrtMatmul();
      const a = new Float64Array(512 * 384).fill(1);
      await mm.abt(a, 512, a, 512, 384);
      mark('matmul');
      break;
    }
    case 'probe': {
      const loaded = await loadModelFile(model);
      const { exposeTensors } = await import('../src/engine/blocks/instrument');
      const { detectBlocks } = await import('../src/engine/blocks/detect');
      const det = detectBlocks(loaded.model, {});
      const s = await ort.InferenceSession.create(encodeModel(exposeTensors(loaded.model, det.blocks.map((b) => b.output))), opts({ graphOptimizationLevel: 'basic' }));
      mark('session');
      break;
    }
    case 'analyze': {
      const { analyzeModel } = await import('../src/engine/analysis/analyze');
      const session = JSON.parse(process.env.BLOCKLENS_BENCH_SESSION ?? '{}') as { arena?: boolean; prepack?: boolean };
      const t0 = performance.now();
      const c0 = process.cpuUsage();
      await analyzeModel({ model, samples, batch, seed: 0, ...session, onProgress: (p) => { if (!marks[p.phase]) mark(p.phase); } });
      mark('end');
      const c = process.cpuUsage(c0);
      Object.assign(marks.end!, { ms: Math.round(performance.now() - t0), cpuMs: Math.round((c.user + c.system) / 1000) });
      break;
    }
    default:
      throw new Error(`unknown stage ${stage}`);
  }
  if (!marks.end) mark('end');
  return marks;
}

/** The instrumented model encoded with weights by reference; nothing else survives the call. */
async function instrumentedBytes(model: string, tied: boolean, plain = false): Promise<{ bytes: Uint8Array; dir: string }> {
  const { loadModelFile } = await import('../src/engine/onnx/model-file');
  const { encodeModel } = await import('../src/engine/onnx/codec');
  const { weightsByReference } = await import('../src/engine/onnx/by-reference');
  const { runAppendedEarly } = await import('../src/engine/onnx/early-outputs');
  const loaded = await loadModelFile(model);
  const { instrumented } = plain ? { instrumented: loaded.model } : await instrumentedModel(loaded.model);
  const byRef = weightsByReference(instrumented, loaded);
  return { bytes: encodeModel(tied ? { ...byRef, graph: runAppendedEarly(byRef.graph!, loaded.model.graph!.node.length) } : byRef), dir: loaded.dir };
}

async function instrumentedModel(model: import('../src/engine/onnx/types').ModelProto) {
  const { detectBlocks } = await import('../src/engine/blocks/detect');
  const { instrumentModel } = await import('../src/engine/blocks/instrument');
  const { GraphIndex } = await import('../src/engine/blocks/graph-index');
  const det = detectBlocks(model, {});
  const index = new GraphIndex(model.graph!);
  const targets = det.blocks.map((b) => ({ key: String(b.index), tensor: b.output, rank: index.rank(b.output) ?? 3 }));
  return { instrumented: instrumentModel(model, targets, { pooling: 'cls', keepOutputs: false }).model };
}

/** Runs `stage` in a fresh node process; returns its marks. */
export function measure(stage: string, model: string, samples: number, batch: number, session: object = {}, script = __filename, cliArgs: string[] = []): Record<string, MemStatus & { ms?: number; cpuMs?: number }> {
  const r = spawnSync(process.execPath, ['--expose-gc', '--import', 'tsx', script, '--child', stage, model, '--samples', String(samples), '--batch', String(batch)], {
    encoding: 'utf8',
    env: { ...process.env, BLOCKLENS_BENCH_SESSION: JSON.stringify(session), BLOCKLENS_BENCH_ARGS: JSON.stringify(cliArgs) },
    maxBuffer: 1 << 24,
  });
  if (r.status !== 0) throw new Error(`memory stage ${stage} failed:\n${r.stderr}`);
  const line = r.stdout.trim().split('\n').pop()!;
  return JSON.parse(line) as Record<string, MemStatus>;
}

async function main() {
  const { values, positionals } = parseArgs({
    options: { child: { type: 'string' }, samples: { type: 'string', default: '128' }, batch: { type: 'string', default: '32' }, only: { type: 'string' } },
    allowPositionals: true,
  });
  const samples = Number(values.samples);
  const batch = Number(values.batch);
  if (values.child) {
    const marks = await child(values.child, positionals[0]!, samples, batch);
    console.log(JSON.stringify(marks));
    return;
  }
  let dir: string | undefined;
  let model = positionals[0];
  if (!model) {
    const { saveModelFile } = await import('../src/engine/onnx/model-file');
    const { buildVit } = await import('../test/helpers/vit-builder');
    dir = mkdtempSync(path.join(tmpdir(), 'blocklens-mem-'));
    model = path.join(dir, 'vit_small.onnx');
    await saveModelFile(model, buildVit());
  }
  try {
    const only = values.only?.split(',');
    console.log(`peak RSS (VmHWM) per child process, MiB; ${path.basename(model)}, ${samples} samples, batch ${batch}`);
    for (const [stage, what] of Object.entries(STAGES)) {
      if (only && !only.includes(stage)) continue;
      const marks = measure(stage, model, samples, batch);
      const steps = Object.entries(marks).map(([k, v]) => `${k} ${v.rss.toFixed(0)}`).join(' → ');
      const f = marks.forward as { ms?: number; cpuMs?: number } | undefined;
      console.log(`${stage.padEnd(26)} peak ${marks.end!.hwm.toFixed(0).padStart(5)}${f?.ms ? ` fwd ${f.ms} ms wall, ${f.cpuMs} ms cpu` : ''}   rss: ${steps}   (${what})`);
    }
  } finally {
    if (dir) rmSync(dir, { recursive: true, force: true });
  }
}

if (require.main === module) {
  main().catch((e) => {
    console.error(e);
    process.exit(1);
  });
}
