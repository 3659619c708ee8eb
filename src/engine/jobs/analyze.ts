// The analyze job: model → blocks → one pass over the calibration data feeding the statistics
// consumers → metrics → AnalysisReport. A shard runs the same pass over its id range and
// returns a partial (consumer snapshots) instead; `mergePartials` (merge.ts) finalizes those
// through the same `finishReport`.
import * as path from 'node:path';
import { detectBlocks, type BlockDetection } from '../blocks/detect.js';
import { openCalibration, type CalibrationSource } from '../calibration/index.js';
import { createOrtMatmul, jsMatmul, type MatmulBackend } from '../linalg/index.js';
import { calibrationHints, findMaskInput, logitsOutput, modelInputs } from '../model/introspect.js';
import { modelIdentity } from '../model/identity.js';
import { checkExternalData, countParameters, loadModelFile, type LoadedModel } from '../onnx/model-file.js';
import { opsetVersion } from '../onnx/builder.js';
import { detachWeights } from '../onnx/by-reference.js';
import { AccuracyConsumer } from '../pass/consumers/accuracy.js';
import { ChecksumConsumer } from '../pass/consumers/checksum.js';
import { HsicConsumer, PooledStatisticsConsumer, ProbeConsumer, type StatisticsFormOptions } from '../pass/consumers/statistics.js';
import { runPass, type PassModel, type PassResult } from '../pass/run-pass.js';
import type { PassConsumer, PassContext, Snapshot } from '../pass/types.js';
import { SCHEMA_VERSION, SYNTHETIC_DATA_WARNING, type AnalysisReport, type CalibrationInfo, type ModelInfo, type PoolingInfo, type SpanEntry } from '../report/schema.js';
import { validateReport } from '../report/validate.js';
import type { SessionSettings } from '../runtime/session.js';
import { assembleMetrics } from '../stats/metrics.js';
import { spanEntries } from '../rba/ranking.js';
import { SpanRowsConsumer } from '../rba/span-rows.js';
import { SpanStatsConsumer } from '../rba/span-pass.js';
import { SpanSolver } from '../rba/fit.js';
import { TOOL_VERSION } from '../version.js';
import type { AnalyzeRequest } from '../../protocol/analyze-request.js';
import { PARTIAL_FORMAT, PARTIAL_VERSION, shardRange, type AnalysisPartial, type PartialMeta } from './partial.js';

/** What to analyse (the protocol's request) plus what only an in-process caller can pass. */
export interface AnalyzeOptions extends AnalyzeRequest, Pick<SessionSettings, 'optimization' | 'arena' | 'prepack'> {
  /** Use the plain-JS matrix products instead of ONNX Runtime's (slow; for checks). */
  jsLinalg?: boolean;
  /** Form of the similarity statistics (block Gram or row sample) and their memory bound; default: by the cost model. */
  statistics?: StatisticsFormOptions;
  signal?: AbortSignal;
  onProgress?: (p: Progress) => void;
}

export interface Progress {
  phase: 'load' | 'detect' | 'session' | 'forward' | 'metrics' | 'done';
  done?: number;
  total?: number;
  message?: string;
}

const DEFAULT_BATCH = 32;
/**
 * Without --samples, files are read up to this many samples (a seeded subset), the same as the
 * synthetic default. A ViT-small (22M parameters, 224²) forwards at ~80 ms/sample on a 2-core
 * machine here (npm run bench), so 512 samples take ~40 s there and well under a minute on a
 * laptop CPU; it gives two unbiased-CKA minibatches of 256 and ~100 held-out samples for probes.
 */
export const DEFAULT_MAX_SAMPLES = 512;

/** The request fields that change numbers: shards must agree on all of them. */
export function numericSettings(opts: AnalyzeOptions): Record<string, unknown> {
  const abs = (p?: string) => (p === undefined ? null : path.resolve(p));
  return {
    data: abs(opts.data), labels: abs(opts.labels), samples: opts.samples ?? null, seed: opts.seed ?? 0,
    pooling: opts.pooling ?? 'auto', blocks: opts.blocks ?? null, blockInput: opts.blockInput ?? null,
    granularity: opts.granularity ?? 'layer', layout: opts.layout ?? null,
    drBlock: opts.drBlock ?? null, delta: opts.delta ?? null, seqLen: opts.seqLen ?? null, imageSize: opts.imageSize ?? null,
    tokenizer: abs(opts.tokenizer), image: opts.image ?? null, statistics: opts.statistics ?? null,
    fitSpans: opts.fitSpans ?? null,
  };
}

interface Prepared {
  loaded: LoadedModel;
  detection: BlockDetection;
  source: CalibrationSource;
  passModel: PassModel;
  warnings: string[];
  timings: Record<string, number>;
  maskInput?: string;
}

async function prepare(opts: AnalyzeOptions): Promise<Prepared> {
  const progress = opts.onProgress ?? (() => {});
  const seed = opts.seed ?? 0;
  const timings: Record<string, number> = {};
  const warnings: string[] = [];
  progress({ phase: 'load', message: opts.model });
  let t0 = performance.now();
  let loaded = await loadModelFile(opts.model);
  await checkExternalData(loaded).catch((e: Error & { file?: string }) => {
    // An unsafe location is not a file on disk: the model that names it is the file at fault.
    if (e.file !== undefined && !path.isAbsolute(e.file)) e.file = opts.model;
    throw e;
  });
  const graph = loaded.model.graph;
  if (!graph || graph.node.length === 0) throw Object.assign(new Error('the model graph has no nodes'), { file: opts.model });
  timings.load = Math.round(performance.now() - t0);
  opts.signal?.throwIfAborted();

  progress({ phase: 'detect' });
  t0 = performance.now();
  let detection: BlockDetection;
  try {
    detection = detectBlocks(loaded.model, { blocks: opts.blocks, blockInput: opts.blockInput, granularity: opts.granularity });
  } catch (e) {
    throw Object.assign(e as Error, { file: opts.model });
  }
  warnings.push(...detection.warnings);
  timings.detect = Math.round(performance.now() - t0);

  const inputs = modelInputs(loaded.model, opts.model);
  const hints = calibrationHints(loaded.model);
  if (opts.seqLen) hints.seqLen = opts.seqLen;
  if (opts.imageSize) hints.imageSize = opts.imageSize;
  const source = await openCalibration({
    inputs, hints, data: opts.data, labels: opts.labels, samples: opts.samples, maxSamples: DEFAULT_MAX_SAMPLES,
    seed, modelPath: loaded.path, tokenizer: opts.tokenizer, image: opts.image,
  });
  const maskInput = findMaskInput(inputs);
  // From here on ONNX Runtime reads the weights from the file: the JavaScript copy is dropped.
  loaded = detachWeights(loaded);
  const passModel: PassModel = {
    loaded,
    blocks: detection.blocks.map((b) => ({ index: b.index, name: b.name, output: b.output })),
    blockInput: detection.blockInput,
    pooling: opts.pooling ?? 'auto',
    layout: opts.layout,
    maskInput,
    logitsOutput: logitsOutput(loaded.model),
    session: { device: opts.device, threads: opts.threads, optimization: opts.optimization, arena: opts.arena, prepack: opts.prepack },
    totalSamples: source.samples,
    seed,
    file: opts.model,
  };
  return { loaded, detection, source, passModel, warnings, timings, maskInput };
}

/** `fitSpans` against the detected blocks: −1 ≤ I < J ≤ L−1, −1 only with a known block input, no overlaps needed. */
function checkFitSpans(spans: AnalyzeOptions['fitSpans'], detection: BlockDetection, file: string): AnalyzeOptions['fitSpans'] {
  if (!spans?.length) return undefined;
  const L = detection.blocks.length;
  for (const s of spans) {
    const fail = (why: string) => {
      throw Object.assign(new Error(`--fit-span ${s.from}:${s.to}: ${why}`), { file });
    };
    if (!Number.isInteger(s.from) || !Number.isInteger(s.to) || s.from >= s.to) fail('needs integers I < J (the map replaces blocks I+1..J)');
    if (s.from < -1 || s.to > L - 1) fail(`out of range: the model has blocks 0..${L - 1} (−1 is block 0's input)`);
    if (s.from === -1 && !detection.blockInput) fail("block 0's input is unknown for this model; name it with --block-input");
  }
  return spans;
}

/** The consumers of an analysis pass, by role. */
export interface AnalysisConsumers {
  stats: PooledStatisticsConsumer;
  hsic: HsicConsumer;
  probe?: ProbeConsumer;
  /** Only with labels: the model's outputs are fetched only then. */
  accuracy?: AccuracyConsumer;
  checksum: ChecksumConsumer;
  /** RBA span estimates (issue 7): a bounded sample of token rows of every block, same pass. */
  spans: SpanRowsConsumer;
  /** Spans the user asked to fit on every token (`fitSpans`), same pass. */
  exact?: SpanStatsConsumer;
  all: PassConsumer[];
}

export function analysisConsumers(
  p: { blocks: number; totalSamples: number; seed: number; drBlock?: number; labels: boolean; inputs: CalibrationInfo['inputs']; form?: StatisticsFormOptions; fitSpans?: { from: number; to: number }[] | null; file?: string },
  matmul: MatmulBackend,
): AnalysisConsumers {
  const stats = new PooledStatisticsConsumer(p.blocks, { matmul, seed: p.seed, totalSamples: p.totalSamples, ...p.form });
  const hsic = new HsicConsumer(p.blocks, p.totalSamples, matmul);
  const drBlock = p.drBlock ?? p.blocks - 1;
  const probe = p.labels && drBlock >= 0 && drBlock < p.blocks ? new ProbeConsumer(drBlock, p.seed, matmul) : undefined;
  const accuracy = p.labels ? new AccuracyConsumer() : undefined;
  const checksum = new ChecksumConsumer(p.inputs);
  const spans = new SpanRowsConsumer(matmul, { seed: p.seed });
  const exact = p.fitSpans?.length ? new SpanStatsConsumer(matmul, { seed: p.seed, pairs: p.fitSpans.map((s) => [s.from, s.to]), file: p.file }) : undefined;
  const all: PassConsumer[] = [stats, hsic, ...(probe ? [probe] : []), ...(accuracy ? [accuracy] : []), checksum, spans, ...(exact ? [exact] : [])];
  return { stats, hsic, probe, accuracy, checksum, spans, ...(exact ? { exact } : {}), all };
}

function modelInfo(loaded: LoadedModel): ModelInfo {
  return {
    path: loaded.path,
    sha256: loaded.sha256,
    irVersion: Number(loaded.model.irVersion ?? 0),
    opsetVersion: opsetVersion(loaded.model, '') ?? opsetVersion(loaded.model, 'ai.onnx') ?? 0,
    parameters: countParameters(loaded.model),
    producer: [loaded.model.producerName, loaded.model.producerVersion].filter(Boolean).join(' ') || undefined,
    sizeBytes: loaded.sizeBytes,
  };
}

function metaOf(prep: Prepared, ctx: PassContext, pass: Pick<PassResult, 'poolingReason' | 'poolingEvidence' | 'layout'>, opts: AnalyzeOptions): PartialMeta {
  const info = prep.source.info;
  const calibration: CalibrationInfo = { ...info, samples: prep.source.samples };
  delete calibration.checksum;
  const warnings = [...prep.warnings];
  if (info.source === 'synthetic') {
    warnings.unshift(SYNTHETIC_DATA_WARNING);
  }
  const pooling: PoolingInfo = { requested: opts.pooling ?? 'auto', used: ctx.pooling, reason: pass.poolingReason, evidence: pass.poolingEvidence };
  return {
    model: modelInfo(prep.loaded),
    blocks: prep.detection.blocks.map((b) => ({ index: b.index, name: b.name, output: b.output, parameters: b.parameters })),
    detection: {
      method: prep.detection.method, blockInput: prep.detection.blockInput, explanation: prep.detection.explanation,
      blockInputReason: prep.detection.blockInputReason, granularity: prep.detection.granularity, rejected: prep.detection.rejected,
      ...(pass.layout ? { layout: pass.layout } : {}),
    },
    calibration,
    pooling,
    warnings,
    seed: opts.seed ?? 0,
    drBlock: opts.drBlock,
    delta: opts.delta,
  };
}

/** Finalizes the consumers of a (single or merged) pass into the report. Honours `signal`. */
export async function finishReport(
  meta: PartialMeta, c: AnalysisConsumers, matmul: MatmulBackend, timings: Record<string, number>,
  opts: { signal?: AbortSignal; onProgress?: (p: Progress) => void; started: number },
): Promise<AnalysisReport> {
  opts.onProgress?.({ phase: 'metrics' });
  const t0 = performance.now();
  const warnings = [...meta.warnings];
  const finalizeCtx = { matmul, signal: opts.signal, warn: (m: string) => warnings.push(m) };
  const stats = await c.stats.finalize(finalizeCtx);
  const hsic = await c.hsic.finalize();
  const probe = c.probe ? await c.probe.finalize(finalizeCtx) : undefined;
  opts.signal?.throwIfAborted();
  const { metrics, warnings: statWarnings } = await assembleMetrics(
    { pairwise: stats.pairwise, covariance: stats.covariance, hsic, probe: probe?.probe, probeSkip: probe?.skip },
    { matmul, seed: meta.seed, drBlock: meta.drBlock, delta: meta.delta, signal: opts.signal },
  );
  warnings.push(...stats.pairWarnings, ...statWarnings);
  const modelAccuracy = c.accuracy ? await c.accuracy.finalize() : undefined;
  const checksum = await c.checksum.finalize();
  // Candidate RBA spans, ranked by held-out error, from the same pass.
  let spans: AnalysisReport['spans'];
  let spansExcluded: AnalysisReport['spansExcluded'];
  if (c.spans.disabled) warnings.push(`RBA spans not estimated: ${c.spans.disabled}`);
  else {
    const t1 = performance.now();
    const r = await c.spans.finalize(finalizeCtx);
    timings.spans = Math.round(performance.now() - t1);
    warnings.push(...r.warnings);
    if (r.fits.length) {
      spans = spanEntries(meta.blocks, (from) => r.estimates.get(from) ?? 'token-subsample', r.fits);
      spansExcluded = []; // every row-compatible span is estimated (no memory budget leaves one out)
    }
  }
  if (c.exact) spans = await withExactFits(spans ?? [], meta.blocks, c.exact, matmul);
  opts.signal?.throwIfAborted();
  timings.metrics = Math.round(performance.now() - t0);
  timings.total = Math.round(performance.now() - opts.started);
  opts.onProgress?.({ phase: 'done' });
  // The report is the contract with the CLI, the webview and saved files: check it here.
  return validateReport({
    schemaVersion: SCHEMA_VERSION,
    tool: { name: 'blocklens', version: TOOL_VERSION },
    createdAt: new Date().toISOString(),
    model: meta.model,
    blocks: meta.blocks,
    detection: meta.detection,
    calibration: { ...meta.calibration, checksum },
    pooling: meta.pooling,
    warnings,
    metrics,
    ...(modelAccuracy ? { modelAccuracy } : {}),
    ...(spans ? { spans, spansExcluded } : {}),
    timings,
  } satisfies AnalysisReport);
}

/**
 * The spans fitted on every token (`fitSpans`) replace their estimates in the ranked list: the
 * fit's held-out error, R², skip baseline, rows and estimate ('tokens'); the estimate's error
 * carried to the last block stays (it ranks the list, and needs the estimates' tail maps).
 */
async function withExactFits(spans: SpanEntry[], blocks: PartialMeta['blocks'], exact: SpanStatsConsumer, matmul: MatmulBackend): Promise<SpanEntry[]> {
  const stats = await exact.finalize();
  const solver = new SpanSolver(stats, matmul);
  const fits = [];
  for (const [i, j] of stats.config.pairs) fits.push(await solver.fit(i, j, { method: 'linear' }));
  const out = [...spans];
  for (const e of spanEntries(blocks, stats, fits)) {
    const k = out.findIndex((s) => s.from === e.from && s.to === e.to);
    if (k < 0) out.push(e);
    else out[k] = { ...e, ...(out[k]!.relErrAtLast !== undefined ? { relErrAtLast: out[k]!.relErrAtLast } : {}) };
  }
  const key = (e: SpanEntry) => e.relErrAtLast ?? e.relErr ?? Infinity;
  return out.sort((a, b) => key(a) - key(b) || b.blocksRemoved - a.blocksRemoved);
}

/** Runs the pass over `range` (default all) and returns what a report or a partial needs. */
async function runAnalysisPass(opts: AnalyzeOptions, shard?: { index: number; count: number }) {
  const started = performance.now();
  const prep = await prepare(opts);
  const matmul: MatmulBackend = opts.jsLinalg ? jsMatmul : await createOrtMatmul();
  const disposers: (() => Promise<void>)[] = [() => prep.source.close(), () => matmul.dispose()];
  try {
    const L = prep.detection.blocks.length;
    const consumers = analysisConsumers(
      { blocks: L, totalSamples: prep.source.samples, seed: opts.seed ?? 0, drBlock: opts.drBlock, labels: !!prep.source.info.labels, inputs: prep.source.info.inputs, form: opts.statistics, fitSpans: checkFitSpans(opts.fitSpans, prep.detection, opts.model), file: opts.model },
      matmul,
    );
    const range = shard ? shardRange(prep.source.samples, shard.index, shard.count) : { start: 0, end: prep.source.samples };
    const batchSize = prep.source.fixedBatchSize ?? opts.batch ?? DEFAULT_BATCH;
    const t0 = performance.now();
    const progress = opts.onProgress ?? (() => {});
    const pass = await runPass(prep.source, prep.passModel, consumers.all, {
      batchSize, range, signal: opts.signal,
      onProgress: (p) => progress(p.phase === 'session' ? { phase: 'session' } : { phase: 'forward', done: p.done, total: p.total }),
    });
    prep.timings.forward = Math.round(performance.now() - t0);
    prep.timings.session = Math.round(pass.sessionMs);
    prep.timings.inference = Math.round(pass.inferenceMs);
    const meta = metaOf(prep, pass.ctx, pass, opts);
    meta.warnings.push(...pass.warnings);
    meta.calibration.batchSize = batchSize;
    return { prep, matmul, consumers, meta, range, started, disposers };
  } catch (e) {
    for (const d of disposers.reverse()) await d().catch(() => {});
    throw e;
  }
}

export async function analyzeModel(opts: AnalyzeOptions): Promise<AnalysisReport> {
  const r = await runAnalysisPass(opts);
  try {
    return await finishReport(r.meta, r.consumers, r.matmul, r.prep.timings, { signal: opts.signal, onProgress: opts.onProgress, started: r.started });
  } finally {
    for (const d of r.disposers.reverse()) await d().catch(() => {});
  }
}

/** Shard `index` (0-based) of `count`: the pass over its id range, as a partial. */
export async function analyzeShard(opts: AnalyzeOptions, shard: { index: number; count: number }): Promise<AnalysisPartial> {
  if (!Number.isInteger(shard.count) || shard.count < 1 || !Number.isInteger(shard.index) || shard.index < 0 || shard.index >= shard.count) {
    throw new Error(`shard ${shard.index + 1}/${shard.count} is not one of 1..${shard.count}`);
  }
  const r = await runAnalysisPass(opts, shard);
  try {
    const snapshots: Record<string, Snapshot> = {};
    for (const c of r.consumers.all) snapshots[c.name] = c.snapshot();
    opts.onProgress?.({ phase: 'done' });
    return {
      format: PARTIAL_FORMAT,
      version: PARTIAL_VERSION,
      tool: TOOL_VERSION,
      modelIdentity: await modelIdentity(r.prep.loaded),
      settings: numericSettings(opts),
      shard: { index: shard.index, count: shard.count },
      range: r.range,
      totalSamples: r.prep.source.samples,
      labels: !!r.prep.source.info.labels,
      meta: r.meta,
      timings: r.prep.timings,
      consumers: snapshots,
    };
  } finally {
    for (const d of r.disposers.reverse()) await d().catch(() => {});
  }
}

export function reportFileName(model: string): string {
  return path.basename(model).replace(/\.onnx$/i, '');
}
