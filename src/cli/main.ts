// `blocklens`: the engine from a terminal (CI, remote GPU boxes, batch jobs).
//
//   blocklens blocks  MODEL [--json]
//   blocklens analyze MODEL [options] [--out report.json] [--html report.html]
//   blocklens analyze MODEL [options] --shard K/N --partial FILE
//   blocklens merge   FILE... [--out report.json] [--html report.html]
//
// Options, their help text and the request they build come from one table (protocol/options.ts).
// Exit codes: 0 success, 1 bad input (one line on stderr), 2 usage error, 130 interrupted.
import { parseArgs, type ParseArgsConfig } from 'node:util';
import * as path from 'node:path';
import type { Progress } from '../engine/jobs/analyze.js';
import { parseShard } from '../engine/jobs/partial.js';
import { writePartialFile } from '../engine/jobs/partial-file.js';
import { runJobHere } from '../engine/jobs/run.js';
import { explainBlocks, formatBlocks } from './blocks-command.js';
import { writeFilesAtomic } from '../engine/io/atomic-write.js';
import { renderReportHtml } from '../engine/report/html.js';
import type { AnalysisReport } from '../engine/report/schema.js';
import { TOOL_VERSION } from '../engine/version.js';
import { OPTIONS, OptionError, requestFromOptions, usageText, type CommandName } from '../protocol/options.js';
import type { JobRequest } from '../protocol/jobs.js';
import { RBA_COMMANDS, RBA_USAGE, runRbaCommand } from './rba-commands.js';

const USAGE = `${usageText()}\n\nReplacing blocks by linear maps (each has its own --help):\n${RBA_USAGE}`;

class UsageError extends Error {}

const PARSE_OPTIONS: ParseArgsConfig['options'] = Object.fromEntries(
  OPTIONS.map((o) => [o.name, o.short ? { type: o.type, short: o.short } : { type: o.type }]),
);

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

type Values = Record<string, string | boolean | undefined>;

async function runWithSignals(job: JobRequest, showProgress: boolean) {
  const controller = new AbortController();
  const onSigint = () => controller.abort();
  process.once('SIGINT', onSigint);
  try {
    return await runJobHere(job, { signal: controller.signal, onProgress: progressBar(showProgress && process.stderr.isTTY === true) as (p: { phase: string }) => void });
  } finally {
    process.removeListener('SIGINT', onSigint);
  }
}

async function writeReport(report: AnalysisReport, v: Values): Promise<number> {
  // A device fallback is said on stderr even with --quiet: the user asked for the GPU.
  for (const w of report.warnings) if (w.startsWith('the CUDA execution provider')) process.stderr.write(`blocklens: warning: ${w}\n`);
  // Both outputs or neither: temporary files first, renamed once all are written (an --html that
  // cannot be written leaves report.json as it was); Ctrl-C during the writes cancels them too.
  const outputs: { file: string; data: string }[] = [];
  if (v.out) outputs.push({ file: v.out as string, data: JSON.stringify(report, null, 2) + '\n' });
  if (v.html) outputs.push({ file: v.html as string, data: renderReportHtml(report) });
  if (outputs.length) {
    const controller = new AbortController();
    const onSigint = () => controller.abort();
    process.once('SIGINT', onSigint);
    try {
      await writeFilesAtomic(outputs, { signal: controller.signal });
    } finally {
      process.removeListener('SIGINT', onSigint);
    }
  }
  const written = outputs.map((o) => o.file);
  if (!v.quiet) process.stdout.write(summary(report, written) + '\n');
  return 0;
}

async function mergeCommand(files: string[], v: Values): Promise<number> {
  if (files.length === 0) throw new UsageError('merge needs the partial FILEs written by analyze --shard');
  const report = await runWithSignals({ kind: 'merge', partials: files }, !v.quiet);
  if (report.kind !== 'report') throw new Error('internal: merge returned a partial');
  return writeReport(report.report, v);
}

export async function main(argv: string[]): Promise<number> {
  if (argv[0] !== undefined && RBA_COMMANDS.has(argv[0])) return runRbaCommand(argv[0], argv.slice(1));
  let debug = argv.includes('--debug');
  let fileForErrors = '(arguments)';
  try {
    let parsed;
    try {
      parsed = parseArgs({ args: argv, options: PARSE_OPTIONS, allowPositionals: true, strict: true });
    } catch (e) {
      // node's messages can span lines ('--delta -0.5'): usage errors are one line.
      throw new UsageError((e as Error).message.split('\n').join(' '));
    }
    const positionals = parsed.positionals;
    const v = parsed.values as Values;
    debug = !!v.debug;
    if (v.version) {
      process.stdout.write(`blocklens ${TOOL_VERSION}\n`);
      return 0;
    }
    if (v.help || positionals.length === 0) {
      (v.help ? process.stdout : process.stderr).write(USAGE + '\n');
      return v.help ? 0 : 2;
    }
    const [command, ...args] = positionals;
    if (command !== 'blocks' && command !== 'analyze' && command !== 'merge') throw new UsageError(`unknown command '${command}' (expected blocks, analyze, merge, rba, plan or verify)`);
    for (const o of OPTIONS) {
      if (v[o.name] !== undefined && !o.commands.includes(command as CommandName)) throw new UsageError(`--${o.name} does not apply to ${command}`);
    }
    if (command === 'merge') return await mergeCommand(args, v);
    const [model, ...extra] = args;
    if (!model) throw new UsageError(`${command} needs a MODEL path`);
    if (extra.length) throw new UsageError(`unexpected argument '${extra[0]}'`);
    fileForErrors = model;
    let request;
    try {
      request = requestFromOptions(model, v);
    } catch (e) {
      if (e instanceof OptionError) throw new UsageError(e.message);
      throw e;
    }

    if (command === 'blocks') {
      const out = await explainBlocks(model, {
        blocks: request.blocks, blockInput: request.blockInput, granularity: request.granularity,
        layout: request.layout, pooling: request.pooling,
      });
      process.stdout.write(v.json ? JSON.stringify(out, null, 2) + '\n' : formatBlocks(out));
      return 0;
    }

    let shard: { index: number; count: number } | undefined;
    if (v.shard !== undefined) {
      try {
        shard = parseShard(v.shard as string);
      } catch (e) {
        throw new UsageError((e as Error).message);
      }
      if (!v.partial) throw new UsageError('--shard needs --partial FILE (where the shard\'s state goes)');
      if (v.out || v.html) throw new UsageError('a shard writes a partial, not a report: merge the partials with \'blocklens merge\'');
    } else if (v.partial) throw new UsageError('--partial needs --shard K/N');
    const job: JobRequest = { kind: 'analyze', request, ...(shard ? { shard } : {}) };
    const result = await runWithSignals(job, !v.quiet);
    if (result.kind === 'partial') {
      fileForErrors = v.partial as string;
      await writePartialFile(v.partial as string, result.partial);
      if (!v.quiet) process.stdout.write(`shard ${shard!.index + 1}/${shard!.count}: samples ${result.partial.range.start}..${result.partial.range.end - 1} of ${result.partial.totalSamples}\nwrote ${v.partial}\n`);
      return 0;
    }
    if (result.kind !== 'report') throw new Error(`internal: an analyze job returned a ${result.kind} result`);
    return await writeReport(result.report, v);
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
