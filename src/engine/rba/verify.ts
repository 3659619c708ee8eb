// Verification of an exported model (DESIGN §2, "Fidelity of an exported model"): both models
// run on the same held-out samples; the final outputs are compared.
import { open, mkdtemp, rm, type FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import type * as ort from 'onnxruntime-node';
import { openModelSession, type OpenSession } from '../runtime/session.js';
import { halfToFloat } from '../calibration/dtype.js';
import type { CalibrationBatch } from '../calibration/index.js';
import { throwIfAborted } from '../calibration/types.js';
import type { MatmulBackend } from '../linalg/matmul.js';
import { countParameters, type LoadedModel } from '../onnx/model-file.js';
import { modelInputs } from '../model/introspect.js';
import { DEFAULT_BATCH, DEFAULT_HELD_OUT, findMaskInput, loadChecked, openSource, selectSamples, toOrtFeeds, type RbaDataOptions } from './context.js';
import { isHeldOut } from './span-stats.js';

export interface ModelSide {
  path: string;
  parameters: number;
  sizeBytes: number;
  /** Median wall time of one run of the largest compared batch (LATENCY_RUNS runs, alternating), ms. */
  medianBatchMs: number;
  /** Fastest of those runs, ms (steadier than the median on a busy machine). */
  minBatchMs: number;
  /** Median process CPU time of those runs (all threads), ms: steadier than wall time when other work shares the machine. */
  medianCpuMs: number;
  /** Accuracy against the labels, when given and the output is class logits. */
  accuracy?: number;
}

export interface VerifyResult {
  output: string;
  /** Samples compared (and positions, for per-token outputs). */
  samples: number;
  positions: number;
  /** ‖y_new − y‖² / ‖y‖² over the final output. */
  relMse: number | null;
  /** Linear CKA (biased, full set) between the two final outputs, rows = samples/positions. */
  cka: number | null;
  /** Top-1 agreement of the argmax (per sample for [N, C] logits, per valid position for LMs). */
  agreement: number | null;
  agreementKind: 'top1' | 'next-token' | null;
  original: ModelSide;
  candidate: ModelSide;
  /** candidate median latency / original median latency. */
  latencyRatio: number | null;
  /** The same for the median CPU time. */
  cpuRatio: number | null;
  batchSize: number;
  heldOutOnly: boolean;
  notes: string[];
}

export interface VerifyOptions extends RbaDataOptions {
  candidate: string;
  /** Only the held-out split (by sample id) of the data; default true. */
  heldOutOnly?: boolean;
  /**
   * Never hold both sessions at once (the original runs first, its outputs wait in a temporary
   * file). Default: when both models' files together exceed VERIFY_BOTH_SESSIONS_MAX_BYTES.
   */
  oneModelAtATime?: boolean;
}

export const LATENCY_RUNS = 21;

function numbers(t: ort.Tensor): Float64Array {
  const d = t.data as ArrayLike<number | bigint>;
  const out = new Float64Array(d.length);
  if (t.type === 'float16') for (let k = 0; k < d.length; k++) out[k] = halfToFloat(d[k] as number);
  else for (let k = 0; k < d.length; k++) out[k] = Number(d[k]);
  return out;
}

function median(xs: number[]): number {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Linear CKA from feature-space sums (centred here). */
class CkaSums {
  n = 0;
  sxx: Float64Array;
  syy: Float64Array;
  sxy: Float64Array;
  sx: Float64Array;
  sy: Float64Array;
  constructor(readonly p: number) {
    this.sxx = new Float64Array(p * p);
    this.syy = new Float64Array(p * p);
    this.sxy = new Float64Array(p * p);
    this.sx = new Float64Array(p);
    this.sy = new Float64Array(p);
  }
  async add(x: Float64Array, y: Float64Array, rows: number, mm: MatmulBackend): Promise<void> {
    const p = this.p;
    const acc = (dst: Float64Array, src: Float64Array) => src.forEach((v, k) => (dst[k]! += v));
    acc(this.sxx, await mm.atb(x, rows, p, x, p));
    acc(this.syy, await mm.atb(y, rows, p, y, p));
    acc(this.sxy, await mm.atb(x, rows, p, y, p));
    for (let r = 0; r < rows; r++) {
      for (let c = 0; c < p; c++) {
        this.sx[c]! += x[r * p + c]!;
        this.sy[c]! += y[r * p + c]!;
      }
    }
    this.n += rows;
  }
  value(): number | null {
    const { p, n } = this;
    if (n < 2) return null;
    const fro = (s: Float64Array, a: Float64Array, b: Float64Array) => {
      let f = 0;
      for (let i = 0; i < p; i++) for (let j = 0; j < p; j++) f += (s[i * p + j]! - (a[i]! * b[j]!) / n) ** 2;
      return f;
    };
    const xy = fro(this.sxy, this.sx, this.sy);
    const xx = Math.sqrt(fro(this.sxx, this.sx, this.sx));
    const yy = Math.sqrt(fro(this.syy, this.sy, this.sy));
    return xx > 0 && yy > 0 ? xy / (xx * yy) : null;
  }
}

/**
 * Above this many bytes of weights (both models' files together), verification never holds the
 * two sessions at once: the original runs over the data first, its compared outputs go to a
 * temporary file, then the new model runs. Peak memory is then one model's weights, not two.
 */
export const VERIFY_BOTH_SESSIONS_MAX_BYTES = 2 ** 30;

/** The compared rows of one model's output for one batch (float64, row-major, `last` wide). */
interface OutputRows {
  dims: number[];
  last: number;
  rows: number;
  values: Float64Array;
}

/** Rows compared in one batch: per sample for [N, C]; per valid position for [N, T, V]. */
function comparedRows(t: ort.Tensor, batch: CalibrationBatch, rowsOf: number[], maskInput: string | undefined): OutputRows {
  const v = numbers(t);
  const dims = t.dims as number[];
  const last = dims[dims.length - 1]!;
  const rowsPerSample = v.length / batch.size / last;
  const mask = maskInput ? batch.feeds[maskInput] : undefined;
  const xs: number[] = [];
  for (const s of rowsOf) {
    for (let p = 0; p < rowsPerSample; p++) {
      if (dims.length === 3 && mask && Number(mask.data[s * rowsPerSample + p]) === 0) continue;
      xs.push(s * rowsPerSample + p);
    }
  }
  const values = new Float64Array(xs.length * last);
  xs.forEach((r, k) => values.set(v.subarray(r * last, (r + 1) * last), k * last));
  return { dims, last, rows: xs.length, values };
}

/** The original's compared rows, batch by batch, in a temporary file (one-model-at-a-time mode). */
class RowSpill {
  private dir?: string;
  private fh?: FileHandle;
  private pos = 0;
  private readonly records: { offset: number; dims: number[]; last: number; rows: number }[] = [];
  private next = 0;

  async push(r: OutputRows): Promise<void> {
    if (!this.fh) {
      this.dir = await mkdtemp(path.join(tmpdir(), 'blocklens-verify-'));
      this.fh = await open(path.join(this.dir, 'outputs.f64'), 'w+');
    }
    const bytes = new Uint8Array(r.values.buffer, r.values.byteOffset, r.values.byteLength);
    for (let done = 0; done < bytes.length; ) done += (await this.fh.write(bytes, done, bytes.length - done, this.pos + done)).bytesWritten;
    this.records.push({ offset: this.pos, dims: r.dims, last: r.last, rows: r.rows });
    this.pos += bytes.length;
  }

  async shift(): Promise<OutputRows> {
    const rec = this.records[this.next++];
    if (!rec || !this.fh) throw new Error('internal: the second pass of verification saw more batches than the first');
    const values = new Float64Array(rec.rows * rec.last);
    const bytes = new Uint8Array(values.buffer);
    for (let done = 0; done < bytes.length; ) {
      const { bytesRead } = await this.fh.read(bytes, done, bytes.length - done, rec.offset + done);
      if (bytesRead === 0) throw new Error('internal: verification outputs file is short');
      done += bytesRead;
    }
    return { dims: rec.dims, last: rec.last, rows: rec.rows, values };
  }

  async close(): Promise<void> {
    await this.fh?.close().catch(() => undefined);
    if (this.dir) await rm(this.dir, { recursive: true, force: true }).catch(() => undefined);
  }
}

/** Runs both models on the (held-out) data and compares their first outputs. */
export async function verifyModels(opts: VerifyOptions, matmul: MatmulBackend, original?: LoadedModel, candidateModel?: LoadedModel): Promise<VerifyResult> {
  const orig = original ?? (await loadChecked(opts.model));
  const cand = candidateModel ?? (await loadChecked(opts.candidate));
  const outName = orig.model.graph!.output[0]?.name;
  if (!outName) throw Object.assign(new Error('the model has no outputs'), { file: orig.path });
  const candOut = cand.model.graph!.output[0]?.name;
  if (candOut !== outName) throw Object.assign(new Error(`the new model's first output is '${candOut}', the original's is '${outName}': not a replacement of this model`), { file: opts.candidate });
  const origInputs = orig.model.graph!.input.map((v) => v.name).filter((n) => !orig.model.graph!.initializer.some((t) => t.name === n));
  const candInputs = new Set(cand.model.graph!.input.map((v) => v.name));
  const missing = origInputs.filter((n) => !candInputs.has(n));
  if (missing.length) throw Object.assign(new Error(`the new model lacks input '${missing[0]}' of the original`), { file: opts.candidate });

  const inputs = modelInputs(orig.model, orig.path);
  const baseCtx = { loaded: orig, inputs, maskInput: findMaskInput(inputs) };
  const source = await openSource(baseCtx, opts);
  const settings = { device: opts.device, threads: opts.threads, optimization: opts.optimization };
  // Only the first output; weights still inline in a file go to ONNX Runtime by reference to it.
  const openSide = (m: LoadedModel) => openModelSession({ ...m.model, graph: { ...m.model.graph!, output: [m.model.graph!.output[0]!] } }, m.dir, settings, m);
  const oneAtATime = opts.oneModelAtATime ?? orig.sizeBytes + cand.sizeBytes > VERIFY_BOTH_SESSIONS_MAX_BYTES;
  const heldOutOnly = opts.heldOutOnly ?? true;
  const frac = opts.heldOut ?? DEFAULT_HELD_OUT;
  const seed = opts.seed ?? 0;
  const batchSize = source.fixedBatchSize ?? opts.batch ?? DEFAULT_BATCH;
  const notes: string[] = [];
  let samples = 0;
  let positions = 0;
  let sse = 0;
  let ssq = 0;
  let agree = 0;
  let agreeCount = 0;
  let kind: VerifyResult['agreementKind'] = null;
  let hitsA = 0;
  let hitsB = 0;
  let labelled = 0;
  const tA: number[] = [];
  const tB: number[] = [];
  const cA: number[] = [];
  const cB: number[] = [];
  let cka: CkaSums | undefined;
  let latencyFeeds: Record<string, ort.Tensor> | undefined;
  let latencySize = 0;

  /** The held-out batches: the batch as run, which of its samples are compared. */
  async function* compared(): AsyncGenerator<{ full: CalibrationBatch; batch: CalibrationBatch; rowsOf: number[]; pick: number[]; feeds: Record<string, ort.Tensor> }> {
    for await (const full of source.batches(batchSize, opts.signal)) {
      const pick: number[] = [];
      for (let s = 0; s < full.size; s++) if (!heldOutOnly || isHeldOut(seed, full.first + s, frac)) pick.push(s);
      if (!pick.length) continue;
      // A fixed batch dimension cannot be narrowed: run the whole batch, compare the picked samples.
      const batch: CalibrationBatch = source.fixedBatchSize ? full : selectSamples(full, pick);
      const rowsOf = source.fixedBatchSize ? pick : pick.map((_, k) => k);
      const feeds = toOrtFeeds(batch);
      if (!latencyFeeds || batch.size > latencySize) {
        latencyFeeds = feeds;
        latencySize = batch.size;
      }
      yield { full, batch, rowsOf, pick, feeds };
      throwIfAborted(opts.signal);
    }
  }

  const compare = async (x: OutputRows, y: OutputRows, c: { full: CalibrationBatch; batch: CalibrationBatch; rowsOf: number[]; pick: number[] }) => {
    const { dims, last } = x;
    if (JSON.stringify(dims) !== JSON.stringify(y.dims)) {
      throw Object.assign(new Error(`output '${outName}' has shape [${dims.join(', ')}] in the original but [${y.dims.join(', ')}] in the new model`), { file: opts.candidate });
    }
    const X = x.values;
    const Y = y.values;
    for (let k = 0; k < X.length; k++) {
      sse += (X[k]! - Y[k]!) ** 2;
      ssq += X[k]! ** 2;
    }
    if (X.some((v) => !Number.isFinite(v)) || Y.some((v) => !Number.isFinite(v))) throw Object.assign(new Error('a model produced non-finite outputs'), { file: opts.candidate });
    cka ??= new CkaSums(last);
    await cka.add(X, Y, x.rows, matmul);
    const logits = last > 1 && (dims.length === 2 || dims.length === 3);
    if (logits) {
      kind = dims.length === 3 ? 'next-token' : 'top1';
      const argmax = (v: Float64Array, r: number) => {
        let best = 0;
        for (let k = 1; k < last; k++) if (v[r * last + k]! > v[r * last + best]!) best = k;
        return best;
      };
      for (let k = 0; k < x.rows; k++) {
        agree += argmax(X, k) === argmax(Y, k) ? 1 : 0;
        agreeCount++;
      }
      if (dims.length === 2 && c.full.labels) {
        c.rowsOf.forEach((s, k) => {
          const label = c.batch.labels ? c.batch.labels[source.fixedBatchSize ? s : k]! : -1;
          hitsA += argmax(X, k) === label ? 1 : 0;
          hitsB += argmax(Y, k) === label ? 1 : 0;
          labelled++;
        });
      }
    }
    samples += c.pick.length;
    positions += x.rows;
  };

  /** LATENCY_RUNS timed runs of each session on the largest compared batch, after two warm-ups; alternating when both are open. */
  const timeRuns = async (sides: [OpenSession, number[], number[]][]) => {
    if (!latencyFeeds) return;
    for (let k = 0; k < 2; k++) for (const [s] of sides) await s.session.run(latencyFeeds);
    for (let k = 0; k < LATENCY_RUNS; k++) {
      for (const [s, times, cpu] of k % 2 ? [...sides].reverse() : sides) {
        const c = process.cpuUsage();
        const t = performance.now();
        await s.session.run(latencyFeeds);
        times.push(performance.now() - t);
        const used = process.cpuUsage(c);
        cpu.push((used.user + used.system) / 1000);
      }
      throwIfAborted(opts.signal);
    }
  };

  const opened: OpenSession[] = [];
  const spill = new RowSpill();
  const release = async (s: OpenSession) => {
    opened.splice(opened.indexOf(s), 1);
    await s.dispose();
  };
  try {
    if (!oneAtATime) {
      const sA = await openSide(orig);
      opened.push(sA);
      const sB = await openSide(cand);
      opened.push(sB);
      for await (const c of compared()) {
        const a = (await sA.session.run(c.feeds))[outName]!;
        const b = (await sB.session.run(c.feeds))[outName]!;
        await compare(comparedRows(a, c.batch, c.rowsOf, baseCtx.maskInput), comparedRows(b, c.batch, c.rowsOf, baseCtx.maskInput), c);
      }
      // Latency: both models warmed up, then alternating runs.
      await timeRuns([[sA, tA, cA], [sB, tB, cB]]);
    } else {
      // One model at a time: the original's compared outputs wait in a temporary file.
      notes.push('the two models were run one after the other, never loaded together (their weights are large): latency was measured for each in turn, not alternating');
      const sA = await openSide(orig);
      opened.push(sA);
      for await (const c of compared()) await spill.push(comparedRows((await sA.session.run(c.feeds))[outName]!, c.batch, c.rowsOf, baseCtx.maskInput));
      await timeRuns([[sA, tA, cA]]);
      await release(sA);
      const sB = await openSide(cand);
      opened.push(sB);
      for await (const c of compared()) {
        const y = comparedRows((await sB.session.run(c.feeds))[outName]!, c.batch, c.rowsOf, baseCtx.maskInput);
        await compare(await spill.shift(), y, c);
      }
      await timeRuns([[sB, tB, cB]]);
    }
  } finally {
    for (const s of [...opened]) await s.dispose().catch(() => undefined);
    await spill.close();
    await source.close();
  }
  if (samples === 0) throw Object.assign(new Error(heldOutOnly ? 'no held-out samples: give more calibration samples (--samples)' : 'the data holds no samples'), { file: opts.data ?? opts.model });
  const side = (m: LoadedModel, times: number[], cpu: number[], hits: number): ModelSide => {
    const s: ModelSide = { path: m.path, parameters: countParameters(m.model), sizeBytes: m.sizeBytes, medianBatchMs: median(times), minBatchMs: Math.min(...times), medianCpuMs: median(cpu) };
    if (labelled) s.accuracy = hits / labelled;
    return s;
  };
  const original_ = side(orig, tA, cA, hitsA);
  const candidate = side(cand, tB, cB, hitsB);
  const spread = (t: number[]) => median(t) / Math.min(...t);
  if (spread(tA) > 1.5 || spread(tB) > 1.5) {
    notes.push(`latency is noisy (median ${spread(tA).toFixed(1)}× and ${spread(tB).toFixed(1)}× the fastest run): the machine is busy; compare medianCpuMs (cpuRatio) and minBatchMs, or rerun with --threads 1`);
  }
  return {
    output: outName,
    samples,
    positions,
    relMse: ssq > 0 ? sse / ssq : null,
    cka: cka?.value() ?? null,
    agreement: agreeCount ? agree / agreeCount : null,
    agreementKind: kind,
    original: original_,
    candidate,
    latencyRatio: original_.medianBatchMs > 0 ? candidate.medianBatchMs / original_.medianBatchMs : null,
    cpuRatio: original_.medianCpuMs > 0 ? candidate.medianCpuMs / original_.medianCpuMs : null,
    batchSize,
    heldOutOnly,
    notes,
  };
}
