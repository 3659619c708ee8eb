// The rba job: fit the maps of the requested spans from one pass, cut the blocks out of the
// graph, write the new model atomically, and verify it against the original.
import { access } from 'node:fs/promises';
import * as path from 'node:path';
import { createOrtMatmul, type MatmulBackend } from '../linalg/index.js';
import { saveModelFile, externalFiles, type SaveResult } from '../onnx/model-file.js';
import { DataType } from '../onnx/types.js';
import { openModelContext, type ModelContext, type RbaDataOptions } from './context.js';
import { SpanSolver, type FitOptions, type RbaMethod, type Shrink, type SpanFit } from './fit.js';
import { runSpanPass } from './one-pass.js';
import type { SiteShape } from './span-pass.js';
import type { SpanStats } from './span-stats.js';
import { replaceSpans, type SpanReplacement } from './surgery.js';
import { verifyModels, type VerifyResult } from './verify.js';

export class RbaUsageError extends Error {}

export interface SpanRequest {
  from: number;
  to: number;
}

export interface RbaOptions extends RbaDataOptions {
  spans: SpanRequest[];
  method?: RbaMethod;
  rank?: number;
  shrink?: Shrink;
  out?: string;
  force?: boolean;
  /** Run the held-out verification (default true). */
  verify?: boolean;
  onProgress?: (phase: string) => void;
}

export interface RbaSpanResult {
  from: number;
  to: number;
  method: RbaMethod;
  params: number;
  paramsRemoved: number;
  heldOut: SpanFit['heldOut'];
  train: SpanFit['train'];
  skip?: SpanFit['skip'];
  shrink: Shrink | null;
}

export interface RbaResult {
  model: string;
  out: string;
  externalData?: string;
  spans: RbaSpanResult[];
  samples: number;
  timings: { passMs: number; forwardMs: number; accumulateMs: number; fitMs: number; surgeryMs: number; writeMs: number; verifyMs?: number };
  nodes: { removed: number; added: number };
  verify?: VerifyResult;
}

/** `<model>.rba-I-J.onnx` beside the input (several spans: `.rba-I-J_K-L`). */
export function defaultOutputPath(model: string, spans: SpanRequest[]): string {
  const base = model.replace(/\.onnx$/i, '');
  return `${base}.rba-${spans.map((s) => `${s.from}-${s.to}`).join('_')}.onnx`;
}

/** Checks span bounds against the model's blocks: clear errors for I ≥ J, out of range, overlaps. */
export function checkSpans(spans: SpanRequest[], ctx: ModelContext): SpanRequest[] {
  const L = ctx.detection.blocks.length;
  if (!spans.length) throw new RbaUsageError('give a span: --from I --to J, or --span I:J');
  for (const s of spans) {
    if (!Number.isInteger(s.from) || !Number.isInteger(s.to)) throw new RbaUsageError(`span ${s.from}→${s.to}: block indices must be integers`);
    if (s.from >= s.to) throw new RbaUsageError(`span ${s.from}→${s.to}: the start must be before the end (I < J); the map replaces blocks I+1..J`);
    if (s.from < -1 || s.from > L - 1) throw new RbaUsageError(`span ${s.from}→${s.to}: block ${s.from} is out of range (the model has blocks 0..${L - 1}; −1 is block 0's input)`);
    if (s.to > L - 1) throw new RbaUsageError(`span ${s.from}→${s.to}: block ${s.to} is out of range (the model has blocks 0..${L - 1})`);
    if (s.from === -1 && !ctx.sites.has(-1)) throw new RbaUsageError('span from −1: block 0\'s input is unknown for this model; name it with --block-input');
  }
  const sorted = [...spans].sort((a, b) => a.from - b.from);
  for (let k = 1; k < sorted.length; k++) {
    if (sorted[k]!.from < sorted[k - 1]!.to) throw new RbaUsageError(`spans ${sorted[k - 1]!.from}→${sorted[k - 1]!.to} and ${sorted[k]!.from}→${sorted[k]!.to} overlap`);
  }
  return sorted;
}

export async function checkOutputPath(out: string, model: string, force: boolean): Promise<void> {
  if (path.resolve(out) === path.resolve(model)) throw Object.assign(new RbaUsageError(`refusing to overwrite the input model ${model}; choose another --out`), { file: out });
  const exists = await access(out).then(() => true, () => false);
  if (exists && !force) throw Object.assign(new RbaUsageError(`${out} already exists; pass --force to replace it`), { file: out });
}

export function elemTypeOf(shape: SiteShape): number {
  switch (shape.type) {
    case 'float16':
      return DataType.FLOAT16;
    case 'float64':
      return DataType.DOUBLE;
    default:
      return DataType.FLOAT;
  }
}

export function replacementFor(ctx: ModelContext, shapes: Map<number, SiteShape>, fit: SpanFit): SpanReplacement {
  const a = shapes.get(fit.map.from)!;
  return { map: fit.map, input: ctx.sites.get(fit.map.from)!, output: ctx.sites.get(fit.map.to)!, rank: a.dims.length, elemType: elemTypeOf(a) };
}

/** Parameters of the blocks a span removes (from + 1 … to). */
export function blockParams(ctx: ModelContext, from: number, to: number): number {
  return ctx.detection.blocks.filter((b) => b.index > from && b.index <= to).reduce((s, b) => s + b.parameters, 0);
}

/**
 * Writes a model derived from `ctx`'s model, with external data beside it when the source had
 * some. `signal` cancels the write between chunks (gigabytes of external data take seconds).
 */
export async function writeDerived(ctx: ModelContext, model: Parameters<typeof saveModelFile>[1], out: string, signal?: AbortSignal): Promise<SaveResult> {
  const external = externalFiles(ctx.loaded.model).length > 0;
  return saveModelFile(out, model, {
    sourcePath: ctx.loaded.path,
    ...(signal ? { signal } : {}),
    ...(external ? { externalData: { location: `${path.basename(out)}.data` } } : {}),
  });
}

export async function runRba(opts: RbaOptions, matmulIn?: MatmulBackend): Promise<RbaResult> {
  const progress = opts.onProgress ?? (() => {});
  const ctx = await openModelContext(opts);
  const spans = checkSpans(opts.spans, ctx);
  const out = opts.out ?? defaultOutputPath(ctx.loaded.path, spans);
  await checkOutputPath(out, ctx.loaded.path, !!opts.force);
  const matmul = matmulIn ?? (await createOrtMatmul());
  try {
    progress('pass');
    const t0 = performance.now();
    const pass = await runSpanPass(ctx, opts, matmul, { pairs: spans.map((s) => [s.from, s.to]) });
    const passMs = performance.now() - t0;
    progress('fit');
    const t1 = performance.now();
    const fits = await fitSpans(pass.stats, spans, { method: opts.method ?? 'linear', rank: opts.rank, shrink: opts.shrink }, matmul);
    const fitMs = performance.now() - t1;
    opts.signal?.throwIfAborted();
    progress('surgery');
    const t2 = performance.now();
    const reps = fits.map((f) => replacementFor(ctx, pass.consumer.shapes, f));
    const surgery = replaceSpans(ctx.loaded.model, reps);
    const surgeryMs = performance.now() - t2;
    progress('write');
    const t3 = performance.now();
    const saved = await writeDerived(ctx, surgery.model, out, opts.signal);
    const writeMs = performance.now() - t3;
    opts.signal?.throwIfAborted();
    const result: RbaResult = {
      model: ctx.loaded.path,
      out: saved.path,
      ...(saved.externalDataPath ? { externalData: saved.externalDataPath } : {}),
      spans: fits.map((f) => ({
        from: f.map.from,
        to: f.map.to,
        method: f.map.method,
        params: f.map.params,
        paramsRemoved: blockParams(ctx, f.map.from, f.map.to),
        heldOut: f.heldOut,
        train: f.train,
        ...(f.skip ? { skip: f.skip } : {}),
        shrink: f.shrink,
      })),
      samples: pass.samples,
      timings: { passMs, forwardMs: pass.forwardMs, accumulateMs: pass.accumulateMs, fitMs, surgeryMs, writeMs },
      nodes: { removed: surgery.removedNodes, added: surgery.addedNodes },
    };
    if (opts.verify !== false) {
      progress('verify');
      const t4 = performance.now();
      result.verify = await verifyModels({ ...opts, candidate: saved.path }, matmul, ctx.loaded);
      result.timings.verifyMs = performance.now() - t4;
    }
    return result;
  } finally {
    if (!matmulIn) await matmul.dispose();
  }
}

export async function fitSpans(stats: SpanStats, spans: SpanRequest[], fitOpts: FitOptions, matmul: MatmulBackend): Promise<SpanFit[]> {
  const solver = new SpanSolver(stats, matmul);
  const fits: SpanFit[] = [];
  for (const s of spans) fits.push(await solver.fit(s.from, s.to, fitOpts));
  return fits;
}
