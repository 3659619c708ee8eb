// `blocklens rba`, `blocklens plan`, `blocklens verify`: replace redundant block spans by
// linear maps, choose the spans, and measure a replacement against its original.
//
// Exit codes: 0 success, 1 bad input (one line on stderr), 2 usage error, 3 plan: nothing met
// the budget, 130 interrupted.
import * as path from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { createOrtMatmul } from '../engine/linalg/index.js';
import type { RbaDataOptions } from '../engine/rba/context.js';
import { RbaUsageError, runRba, type RbaResult, type SpanRequest } from '../engine/rba/export.js';
import type { RbaMethod, Shrink } from '../engine/rba/fit.js';
import { runPlan, type Measurement, type PlanResult } from '../engine/rba/plan.js';
import { verifyModels, type VerifyResult } from '../engine/rba/verify.js';

export const RBA_COMMANDS = new Set(['rba', 'plan', 'verify']);

export const RBA_USAGE = `  blocklens rba    MODEL --from I --to J [--span I:J ...] [--method linear|skip|lowrank] [--rank R]
                   [--data PATH] [--samples N] [--labels PATH] [--out NEW.onnx] [--force] [--json]
  blocklens plan   MODEL [--data PATH] [--labels PATH] [--min-agreement A | --max-rel-err E | --remove K]
                   [--out NEW.onnx] [--force] [--write-best] [--dry-run] [--json]
  blocklens verify ORIGINAL NEW [--data PATH] [--labels PATH] [--held-out-only] [--json]`;

const USAGE = `Usage:
${RBA_USAGE}

Spans: I→J replaces blocks I+1..J by one linear map from block I's output to block J's output
(I = -1 is block 0's input). Several --span I:J go into one export; spans may not overlap.

Options:
  --method M           linear (default; ridge toward the identity when widths match),
                       skip (identity, equal widths), lowrank (reduced-rank, needs --rank)
  --shrink S           identity | zero: where the ridge term pulls a linear map
  --data PATH          calibration data (as for analyze; default synthetic)
  --labels PATH        integer .npy labels: accuracy of both models
  --samples N --batch N --seed N --held-out F (fraction held out, default 0.2)
  --blocks T,T,... --block-input T       override block detection
  --seq-len N --image-size N --tokenizer PATH --device cpu|cuda --threads N
  --out FILE           new model (default <model>.rba-I-J.onnx beside the input)
  --force              replace an existing output file (never the input)
  --no-verify          rba: skip the held-out comparison
  --min-agreement A    plan budget: top-1 / next-token agreement ≥ A (default 0.99)
  --max-rel-err E      plan budget: relative MSE of the final output ≤ E
  --remove K           plan: the best spans removing K blocks, measured
  --write-best         plan: write the best model found even when it misses the budget
  --dry-run            plan: report only, write nothing
  --budget-mb N        plan: memory for the span statistics (default 512)
  --held-out-only      verify: only the held-out split of --data (default: all of it)
  --json               print the full result as JSON
  --quiet              no progress
  --debug              stack traces on errors`;

class UsageError extends Error {}

const OPTIONS = {
  from: { type: 'string' },
  to: { type: 'string' },
  span: { type: 'string', multiple: true },
  method: { type: 'string' },
  rank: { type: 'string' },
  shrink: { type: 'string' },
  data: { type: 'string' },
  labels: { type: 'string' },
  samples: { type: 'string' },
  batch: { type: 'string' },
  seed: { type: 'string' },
  'held-out': { type: 'string' },
  blocks: { type: 'string' },
  'block-input': { type: 'string' },
  'seq-len': { type: 'string' },
  'image-size': { type: 'string' },
  tokenizer: { type: 'string' },
  device: { type: 'string' },
  threads: { type: 'string' },
  out: { type: 'string' },
  force: { type: 'boolean' },
  'no-verify': { type: 'boolean' },
  'min-agreement': { type: 'string' },
  'max-rel-err': { type: 'string' },
  remove: { type: 'string' },
  'write-best': { type: 'boolean' },
  'dry-run': { type: 'boolean' },
  'budget-mb': { type: 'string' },
  'held-out-only': { type: 'boolean' },
  json: { type: 'boolean' },
  quiet: { type: 'boolean' },
  debug: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} satisfies ParseArgsConfig['options'];

/** `--from -1` reads as an option to parseArgs: glue negative numbers to their option. */
function glueNegatives(argv: string[]): string[] {
  const out: string[] = [];
  for (let k = 0; k < argv.length; k++) {
    const a = argv[k]!;
    const next = argv[k + 1];
    if (/^--(from|to|span)$/.test(a) && next !== undefined && /^-\d/.test(next)) {
      out.push(`${a}=${next}`);
      k++;
    } else out.push(a);
  }
  return out;
}

function int(name: string, v: string | undefined, min = 0): number | undefined {
  if (v === undefined) return undefined;
  if (!/^-?\d+$/.test(v) || Number(v) < min) throw new UsageError(`--${name} expects an integer ≥ ${min}, got '${v}'`);
  return Number(v);
}

function frac(name: string, v: string | undefined, lo: number, hi: number): number | undefined {
  if (v === undefined) return undefined;
  const x = Number(v);
  if (!Number.isFinite(x) || x < lo || x > hi) throw new UsageError(`--${name} expects a number in [${lo}, ${hi}], got '${v}'`);
  return x;
}

function oneOf<T extends string>(name: string, v: string | undefined, allowed: readonly T[]): T | undefined {
  if (v === undefined) return undefined;
  if (!allowed.includes(v as T)) throw new UsageError(`--${name} must be one of ${allowed.join(', ')}; got '${v}'`);
  return v as T;
}

function errorLine(e: unknown, fallback: string): string {
  const err = e as Error & { file?: string };
  const file = err.file ?? fallback;
  let msg = err.message ?? String(e);
  for (const prefix of [`${file}: `, `${path.basename(file)}: `]) if (msg.startsWith(prefix)) msg = msg.slice(prefix.length);
  if (err.name === 'AbortError') msg = 'cancelled';
  return `${file}: ${msg.split('\n')[0]}`;
}

const pct = (x: number | null | undefined) => (x === null || x === undefined ? 'n/a' : `${(100 * x).toFixed(2)}%`);
const sci = (x: number | null | undefined) => (x === null || x === undefined ? 'n/a' : x === 0 ? '0' : Math.abs(x) < 1e-3 ? x.toExponential(2) : x.toPrecision(4));
const ms = (x: number) => `${x.toFixed(2)} ms`;

function verifyLines(v: VerifyResult): string[] {
  const lines = [
    `verified on ${v.samples} ${v.heldOutOnly ? 'held-out ' : ''}samples${v.positions !== v.samples ? ` (${v.positions} positions)` : ''}, output '${v.output}':`,
    `  ${v.agreementKind === 'next-token' ? 'next-token' : 'top-1'} agreement ${pct(v.agreement)}   relative MSE ${sci(v.relMse)}   CKA ${sci(v.cka)}`,
  ];
  if (v.original.accuracy !== undefined) lines.push(`  accuracy ${pct(v.original.accuracy)} → ${pct(v.candidate.accuracy)}`);
  lines.push(`  parameters ${v.original.parameters} → ${v.candidate.parameters}   file ${v.original.sizeBytes} → ${v.candidate.sizeBytes} bytes`);
  lines.push(`  median batch latency ${ms(v.original.medianBatchMs)} → ${ms(v.candidate.medianBatchMs)} (×${sci(v.latencyRatio)}, batch ${v.batchSize}; fastest ${ms(v.original.minBatchMs)} → ${ms(v.candidate.minBatchMs)}; CPU time ×${sci(v.cpuRatio)})`);
  for (const n of v.notes) lines.push(`note: ${n}`);
  return lines;
}

function rbaSummary(r: RbaResult): string {
  const lines = r.spans.map(
    (s) =>
      `span ${s.from}→${s.to} (${s.method}${s.shrink ? `, ridge toward ${s.shrink === 'identity' ? 'identity' : 'zero'}` : ''}): held-out relErr ${sci(s.heldOut.relErr)}, R² ${sci(s.heldOut.r2)}` +
      (s.skip ? `; skip relErr ${sci(s.skip.heldOut.relErr)}, R² ${sci(s.skip.heldOut.r2)}` : '') +
      `; ${s.paramsRemoved} block parameters → ${s.params}`,
  );
  if (r.verify) lines.push(...verifyLines(r.verify));
  lines.push(`wrote ${r.out}${r.externalData ? ` (+ ${r.externalData})` : ''}`);
  return lines.join('\n');
}

function measurementLine(m: Measurement): string {
  const spans = m.spans.map((s) => `${s.from}→${s.to}`).join(', ');
  const kind = m.measured.agreementKind === 'next-token' ? 'next-token' : 'top-1';
  const agree = m.measured.agreement !== null ? `${kind} predicted ${pct(m.predicted.agreement)} measured ${pct(m.measured.agreement)}; ` : '';
  return `  ${m.meetsBudget ? 'meets' : 'misses'}  ${spans.padEnd(14)} −${m.blocksRemoved} blocks: ${agree}rel. MSE predicted ${sci(m.predicted.relMse)} measured ${sci(m.measured.relMse)}; params ${m.params.before} → ${m.params.after}; latency ×${sci(m.measured.latencyRatio)} (CPU time ×${sci(m.measured.cpuRatio)})`;
}

function planSummary(r: PlanResult): string {
  const lines = ['spans (held-out, best first):', '  span     relErr      R²        skip relErr  params saved'];
  for (const s of r.spans.slice(0, 12)) {
    lines.push(`  ${`${s.from}→${s.to}`.padEnd(7)}  ${sci(s.relErr).padEnd(10)}  ${sci(s.r2).padEnd(8)}  ${sci(s.skipRelErr).padEnd(11)}  ${s.paramsSaved}`);
  }
  if (r.spans.length > 12) lines.push(`  … ${r.spans.length - 12} more (--json)`);
  if (r.excludedSpans.length) lines.push(`spans left out by the memory budget: ${r.excludedSpans.map(([i, j]) => `${i}→${j}`).join(', ')}`);
  lines.push('measured:');
  for (const m of r.measurements) lines.push(measurementLine(m));
  lines.push(r.message);
  if (r.out) lines.push(`wrote ${r.out}`);
  return lines.join('\n');
}

export async function runRbaCommand(command: string, argv: string[]): Promise<number> {
  let debug = argv.includes('--debug');
  let fileForErrors = '(arguments)';
  const controller = new AbortController();
  const onSigint = () => controller.abort();
  try {
    let parsed;
    try {
      parsed = parseArgs({ args: glueNegatives(argv), options: OPTIONS, allowPositionals: true, strict: true });
    } catch (e) {
      throw new UsageError((e as Error).message);
    }
    const { values: v, positionals } = parsed;
    debug = !!v.debug;
    if (v.help) {
      process.stdout.write(USAGE + '\n');
      return 0;
    }
    const [model, second, ...extra] = positionals;
    if (!model) throw new UsageError(`${command} needs a MODEL path`);
    if (command !== 'verify' && second !== undefined) throw new UsageError(`unexpected argument '${second}'`);
    if (command === 'verify' && second === undefined) throw new UsageError('verify needs ORIGINAL and NEW model paths');
    if (extra.length) throw new UsageError(`unexpected argument '${extra[0]}'`);
    fileForErrors = model;
    const data: RbaDataOptions = {
      model,
      data: v.data,
      labels: v.labels,
      samples: int('samples', v.samples, 1),
      batch: int('batch', v.batch, 1),
      seed: int('seed', v.seed),
      heldOut: frac('held-out', v['held-out'], 0.01, 0.99),
      blocks: v.blocks?.split(',').map((s) => s.trim()).filter(Boolean),
      blockInput: v['block-input'],
      seqLen: int('seq-len', v['seq-len'], 1),
      imageSize: int('image-size', v['image-size'], 1),
      tokenizer: v.tokenizer,
      device: oneOf('device', v.device, ['cpu', 'cuda'] as const),
      threads: int('threads', v.threads, 1),
      signal: controller.signal,
    };
    process.once('SIGINT', onSigint);
    const progress = !v.quiet && !v.json && process.stderr.isTTY ? (p: string) => process.stderr.write(`\r\x1b[K${p}…`) : undefined;
    const done = () => progress && process.stderr.write('\r\x1b[K');

    if (command === 'rba') {
      const spans: SpanRequest[] = [];
      if (v.from !== undefined || v.to !== undefined) {
        if (v.from === undefined || v.to === undefined) throw new UsageError('give both --from I and --to J');
        spans.push({ from: int('from', v.from, -1)!, to: int('to', v.to, -1)! });
      }
      for (const s of v.span ?? []) {
        const m = /^(-?\d+):(-?\d+)$/.exec(s);
        if (!m) throw new UsageError(`--span expects I:J (e.g. 2:4), got '${s}'`);
        spans.push({ from: Number(m[1]), to: Number(m[2]) });
      }
      if (!spans.length) throw new UsageError('rba needs a span: --from I --to J, or --span I:J');
      const method = oneOf<RbaMethod>('method', v.method, ['linear', 'skip', 'lowrank']);
      const rank = int('rank', v.rank, 1);
      if (method === 'lowrank' && rank === undefined) throw new UsageError('--method lowrank needs --rank R');
      if (rank !== undefined && method !== 'lowrank') throw new UsageError('--rank only applies to --method lowrank');
      const r = await runRba({
        ...data,
        spans,
        method,
        rank,
        shrink: oneOf<Shrink>('shrink', v.shrink, ['identity', 'zero']),
        out: v.out,
        force: !!v.force,
        verify: !v['no-verify'],
        onProgress: progress,
      });
      done();
      process.stdout.write((v.json ? JSON.stringify(r, null, 2) : rbaSummary(r)) + '\n');
      return 0;
    }

    if (command === 'plan') {
      const budgets = ['min-agreement', 'max-rel-err', 'remove'].filter((k) => v[k as keyof typeof v] !== undefined);
      if (budgets.length > 1) throw new UsageError(`give one of --min-agreement, --max-rel-err, --remove (got ${budgets.map((b) => `--${b}`).join(' and ')})`);
      const mb = int('budget-mb', v['budget-mb'], 1);
      const r = await runPlan({
        ...data,
        minAgreement: frac('min-agreement', v['min-agreement'], 0, 1),
        maxRelErr: frac('max-rel-err', v['max-rel-err'], 0, Infinity),
        remove: int('remove', v.remove, 1),
        out: v.out,
        force: !!v.force,
        writeBest: !!v['write-best'],
        dryRun: !!v['dry-run'],
        ...(mb ? { budgetBytes: mb * 2 ** 20 } : {}),
        onProgress: progress,
      });
      done();
      process.stdout.write((v.json ? JSON.stringify(r, null, 2) : planSummary(r)) + '\n');
      return r.chosen ? 0 : 3;
    }

    // verify
    const matmul = await createOrtMatmul();
    try {
      const r = await verifyModels({ ...data, candidate: second!, heldOutOnly: !!v['held-out-only'] }, matmul);
      process.stdout.write((v.json ? JSON.stringify(r, null, 2) : verifyLines(r).join('\n')) + '\n');
    } finally {
      await matmul.dispose();
    }
    return 0;
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`blocklens: usage error: ${e.message}\nRun 'blocklens ${command} --help' for usage.\n`);
      return 2;
    }
    if (e instanceof RbaUsageError && !(e as { file?: string }).file) Object.assign(e, { file: fileForErrors });
    process.stderr.write(`blocklens: error: ${errorLine(e, fileForErrors)}\n`);
    if (debug && e instanceof Error && e.stack) process.stderr.write(e.stack + '\n');
    return (e as Error).name === 'AbortError' ? 130 : 1;
  } finally {
    process.removeListener('SIGINT', onSigint);
  }
}
