// `blocklens`: the engine from a terminal (CI, remote GPU boxes, batch jobs).
//
//   blocklens blocks  MODEL [--json]
//   blocklens analyze MODEL [--data PATH] [--samples N] [--batch N] [--seed N] [--pooling P]
//                     [--blocks T,T,...] [--out report.json] [--html report.html]
//
// Exit codes: 0 success, 1 bad input (one line on stderr), 2 usage error, 130 interrupted.
import { parseArgs, type ParseArgsConfig } from 'node:util';
import * as path from 'node:path';
import { analyzeModel, type AnalyzeOptions, type Progress } from '../engine/analysis/analyze.js';
import { explainBlocks, formatBlocks } from './blocks-command.js';
import { loadModelFile } from '../engine/onnx/model-file.js';
import { writeFileAtomic } from '../engine/io/atomic-write.js';
import { renderReportHtml } from '../engine/report/html.js';
import type { AnalysisReport, PoolingRequest } from '../engine/report/schema.js';
import { TOOL_VERSION } from '../engine/version.js';

const USAGE = `Usage:
  blocklens blocks  MODEL [--json] [--blocks T,T,...] [--block-input T] [--granularity G] [--pooling P]
  blocklens analyze MODEL [options]

Analyze options:
  --data PATH          calibration data: .npy, .npz, folder of <input>.npy, image folder,
                       .jsonl token ids, or .txt lines (with tokenizer.json). Default: synthetic
  --labels PATH        integer .npy labels (image folders give labels from subfolders)
  --samples N          number of samples (default 512: a seeded subset of --data when it
                       holds more, or 512 synthetic samples)
  --batch N            batch size (default 32)
  --seed N             seed for synthetic data, subsets and splits (default 0)
  --pooling P          auto | cls | mean | last | gap | tokens (default auto)
  --blocks T,T,...     block output tensors, overriding detection
  --block-input T      tensor taken as block 0's input
  --granularity G      layer (default) | sublayer: each residual sub-block (attention, MLP)
  --layout ntd|tnd     3-D block outputs batch-first [N,T,d] or sequence-first [T,N,d],
                       when the graph cannot tell (also nchw|nhwc for images, below)
  --dr-block N         block for the diffused-redundancy curve (default: last)
  --delta X            DR threshold δ (default 0.9)
  --seq-len N          sequence length for symbolic dims (synthetic / padding)
  --image-size N       H and W for symbolic image dims
  --tokenizer PATH     tokenizer.json for .txt data (default: beside the model)
  --resize N --crop center|none --scale 0-1|0-255 --mean a,b,c --std a,b,c
  --preset imagenet|none --color rgb|grayscale --layout nchw|nhwc --skip-bad-images
                       image preprocessing overrides
  --device cpu|cuda    execution provider (cuda needs onnxruntime-node's GPU binaries)
  --threads N          ONNX Runtime intra-op threads
  --out FILE           write the JSON report
  --html FILE          write the self-contained HTML report
  --quiet              no progress or summary
  --debug              stack traces on errors

Exit status: 0 ok, 1 bad input, 2 usage error.`;

class UsageError extends Error {}

const OPTIONS = {
  json: { type: 'boolean' },
  data: { type: 'string' },
  labels: { type: 'string' },
  samples: { type: 'string' },
  batch: { type: 'string' },
  seed: { type: 'string' },
  pooling: { type: 'string' },
  blocks: { type: 'string' },
  'block-input': { type: 'string' },
  granularity: { type: 'string' },
  'dr-block': { type: 'string' },
  delta: { type: 'string' },
  'seq-len': { type: 'string' },
  'image-size': { type: 'string' },
  tokenizer: { type: 'string' },
  resize: { type: 'string' },
  crop: { type: 'string' },
  scale: { type: 'string' },
  mean: { type: 'string' },
  std: { type: 'string' },
  preset: { type: 'string' },
  color: { type: 'string' },
  layout: { type: 'string' },
  'skip-bad-images': { type: 'boolean' },
  device: { type: 'string' },
  threads: { type: 'string' },
  out: { type: 'string' },
  html: { type: 'string' },
  quiet: { type: 'boolean' },
  debug: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean' },
} satisfies ParseArgsConfig['options'];

function int(name: string, v: string | undefined, min = 0): number | undefined {
  if (v === undefined) return undefined;
  if (!/^-?\d+$/.test(v) || Number(v) < min) throw new UsageError(`--${name} expects an integer ≥ ${min}, got '${v}'`);
  return Number(v);
}

function num(name: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const x = Number(v);
  if (!Number.isFinite(x)) throw new UsageError(`--${name} expects a number, got '${v}'`);
  return x;
}

function list(name: string, v: string | undefined): number[] | undefined {
  if (v === undefined) return undefined;
  const xs = v.split(',').map(Number);
  if (xs.some((x) => !Number.isFinite(x))) throw new UsageError(`--${name} expects comma-separated numbers, got '${v}'`);
  return xs;
}

function oneOf<T extends string>(name: string, v: string | undefined, allowed: readonly T[]): T | undefined {
  if (v === undefined) return undefined;
  if (!allowed.includes(v as T)) throw new UsageError(`--${name} must be one of ${allowed.join(', ')}; got '${v}'`);
  return v as T;
}

/** The file an error concerns, and its message without a repeated file prefix. */
export function describeError(e: unknown, fallbackFile: string): string {
  const err = e as Error & { file?: string };
  const file = err.file ?? fallbackFile;
  let msg = err.message ?? String(e);
  for (const prefix of [`${file}: `, `${path.basename(file)}: `]) {
    if (msg.startsWith(prefix)) msg = msg.slice(prefix.length);
  }
  if (err.name === 'AbortError') msg = 'cancelled';
  return `${file}: ${msg.split('\n')[0]}`;
}

function progressBar(enabled: boolean): (p: Progress) => void {
  if (!enabled) return () => {};
  let lastDraw = 0;
  return (p) => {
    const now = Date.now();
    if (p.phase === 'done') {
      process.stderr.write('\r\x1b[K');
      return;
    }
    if (p.phase === 'forward' && p.total) {
      if (now - lastDraw < 80 && p.done !== p.total) return;
      lastDraw = now;
      const width = 30;
      const frac = Math.min(1, (p.done ?? 0) / p.total);
      const bar = '█'.repeat(Math.round(frac * width)).padEnd(width, '░');
      process.stderr.write(`\r\x1b[Kforward ${bar} ${p.done}/${p.total} samples`);
    } else {
      process.stderr.write(`\r\x1b[K${p.phase}${p.message ? ` ${p.message}` : ''}…`);
    }
  };
}

function fmt(x: number | null | undefined, digits = 4): string {
  if (x === null || x === undefined) return 'n/a';
  if (x !== 0 && Math.abs(x) < 1e-3) return x.toExponential(2);
  return x.toPrecision(digits);
}

function summary(r: AnalysisReport, outPaths: string[]): string {
  const lines: string[] = [];
  lines.push(`${path.basename(r.model.path)}: ${r.blocks.length} blocks (${r.detection.method}), pooling ${r.pooling.used}, ${r.calibration.samples} samples (${r.calibration.source})`);
  lines.push('');
  lines.push('  block  BR          BI        CKA→next  name');
  r.blocks.forEach((b, i) => {
    const next = i + 1 < r.blocks.length ? r.metrics.cka[i]![i + 1] : undefined;
    lines.push(
      `  ${String(i).padStart(5)}  ${fmt(r.metrics.br[i]).padEnd(10)}  ${fmt(r.metrics.blockInfluence?.[i]).padEnd(8)}  ${(next === undefined ? '' : fmt(next)).padEnd(8)}  ${b.name}`,
    );
  });
  lines.push('');
  const m = r.metrics.msrs;
  lines.push(`MSRS ${fmt(m.value)} over L=${m.layers} blocks (normalised ${fmt(m.normalized)}; β=${m.beta}, τ=${m.tau})`);
  if (r.metrics.dr) lines.push(`DR(δ=${r.metrics.dr.delta}) of block ${r.metrics.dr.block}: ${fmt(r.metrics.dr.value)}${r.metrics.dr.probe ? `; probe DR ${fmt(r.metrics.dr.probe.value)}, full-width probe accuracy ${fmt(r.metrics.dr.probe.fullAccuracy)}` : ''}`);
  if (r.modelAccuracy) lines.push(`model accuracy ${fmt(r.modelAccuracy.accuracy)} on ${r.modelAccuracy.samples} samples`);
  for (const w of r.warnings) lines.push(`warning: ${w}`);
  for (const p of outPaths) lines.push(`wrote ${p}`);
  return lines.join('\n');
}

export async function main(argv: string[]): Promise<number> {
  let debug = argv.includes('--debug');
  let fileForErrors = '(arguments)';
  try {
    let parsed;
    try {
      parsed = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true });
    } catch (e) {
      throw new UsageError((e as Error).message);
    }
    const { values: v, positionals } = parsed;
    debug = !!v.debug;
    if (v.version) {
      process.stdout.write(`blocklens ${TOOL_VERSION}\n`);
      return 0;
    }
    if (v.help || positionals.length === 0) {
      (v.help ? process.stdout : process.stderr).write(USAGE + '\n');
      return v.help ? 0 : 2;
    }
    const [command, model, ...extra] = positionals;
    if (command !== 'blocks' && command !== 'analyze') throw new UsageError(`unknown command '${command}' (expected blocks or analyze)`);
    if (!model) throw new UsageError(`${command} needs a MODEL path`);
    if (extra.length) throw new UsageError(`unexpected argument '${extra[0]}'`);
    fileForErrors = model;
    const blocks = v.blocks?.split(',').map((s) => s.trim()).filter(Boolean);

    const granularity = oneOf('granularity', v.granularity, ['layer', 'sublayer'] as const);
    const seqLayout = v.layout === 'ntd' || v.layout === 'tnd' ? v.layout : undefined;

    if (command === 'blocks') {
      const out = await explainBlocks(model, {
        blocks, blockInput: v['block-input'], granularity, layout: seqLayout,
        pooling: oneOf<PoolingRequest>('pooling', v.pooling, ['auto', 'cls', 'mean', 'last', 'gap', 'tokens']),
      });
      process.stdout.write(v.json ? JSON.stringify(out, null, 2) + '\n' : formatBlocks(out));
      return 0;
    }

    const opts: AnalyzeOptions = {
      model,
      data: v.data,
      labels: v.labels,
      samples: int('samples', v.samples, 1),
      batch: int('batch', v.batch, 1),
      seed: int('seed', v.seed),
      pooling: oneOf<PoolingRequest>('pooling', v.pooling, ['auto', 'cls', 'mean', 'last', 'gap', 'tokens']),
      blocks,
      blockInput: v['block-input'],
      granularity,
      layout: seqLayout,
      drBlock: int('dr-block', v['dr-block']),
      delta: num('delta', v.delta),
      seqLen: int('seq-len', v['seq-len'], 1),
      imageSize: int('image-size', v['image-size'], 1),
      tokenizer: v.tokenizer,
      device: oneOf('device', v.device, ['cpu', 'cuda'] as const),
      threads: int('threads', v.threads, 1),
    };
    const image: NonNullable<AnalyzeOptions['image']> = {};
    if (v.resize) image.resize = int('resize', v.resize, 1);
    if (v.crop) image.crop = oneOf('crop', v.crop, ['center', 'none'] as const);
    if (v.scale) image.scale = oneOf('scale', v.scale, ['0-1', '0-255'] as const);
    if (v.mean) image.mean = list('mean', v.mean);
    if (v.std) image.std = list('std', v.std);
    if (v.preset) image.preset = oneOf('preset', v.preset, ['imagenet', 'none'] as const);
    if (v.color) image.color = oneOf('color', v.color, ['rgb', 'grayscale'] as const);
    if (v.layout && !seqLayout) image.layout = oneOf('layout', v.layout, ['nchw', 'nhwc', 'ntd', 'tnd'] as const) as 'nchw' | 'nhwc';
    if (v['skip-bad-images']) image.skipBad = true;
    if (Object.keys(image).length) opts.image = image;
    if (opts.delta !== undefined && !(opts.delta > 0 && opts.delta <= 1)) throw new UsageError('--delta must be in (0, 1]');

    const controller = new AbortController();
    const onSigint = () => controller.abort();
    process.once('SIGINT', onSigint);
    opts.signal = controller.signal;
    opts.onProgress = progressBar(!v.quiet && process.stderr.isTTY === true);
    let report: AnalysisReport;
    try {
      report = await analyzeModel(opts);
    } finally {
      process.removeListener('SIGINT', onSigint);
    }
    const written: string[] = [];
    if (v.out) {
      fileForErrors = v.out;
      await writeFileAtomic(v.out, JSON.stringify(report, null, 2) + '\n');
      written.push(v.out);
    }
    if (v.html) {
      fileForErrors = v.html;
      await writeFileAtomic(v.html, renderReportHtml(report));
      written.push(v.html);
    }
    if (!v.quiet) process.stdout.write(summary(report, written) + '\n');
    return 0;
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`blocklens: usage error: ${e.message}\nRun 'blocklens --help' for usage.\n`);
      return 2;
    }
    process.stderr.write(`blocklens: error: ${describeError(e, fileForErrors)}\n`);
    if (debug && e instanceof Error && e.stack) process.stderr.write(e.stack + '\n');
    return (e as Error).name === 'AbortError' ? 130 : 1;
  }
}

// Run when executed as the CLI (bundled to dist/cli.js), not when imported by tests.
const entry = process.argv[1] ? path.basename(process.argv[1]) : '';
if (entry === 'cli.js' || entry === 'blocklens' || entry === 'main.ts') {
  // `blocklens blocks m.onnx | head` closes the pipe early: that is not an error.
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(0);
  });
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (e) => {
      process.stderr.write(`blocklens: error: ${String(e)}\n`);
      process.exit(1);
    },
  );
}
