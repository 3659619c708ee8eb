// The analysis job: model → blocks → instrumented session → calibration batches → pooled
// representations → metrics → AnalysisReport. Pure Node; the CLI, the worker and tests call it.
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { detectBlocks, type BlockDetection } from '../blocks/detect.js';
import { GraphIndex } from '../blocks/graph-index.js';
import { exposeTensors, instrumentModel, type PoolingChoice, type PoolTarget } from '../blocks/instrument.js';
import { planRepresentations } from '../blocks/plan.js';
import type { SequenceLayout } from '../report/schema.js';
import { openCalibration, type CalibrationBatch, type CalibrationHints, type InputSpec, type OpenOptions, type OrtDtype } from '../calibration/index.js';
import { createOrtMatmul, jsMatmul, type MatmulBackend } from '../linalg/index.js';
import { checkExternalData, countParameters, loadModelFile, type LoadedModel } from '../onnx/model-file.js';
import { opsetVersion } from '../onnx/builder.js';
import type { ModelProto } from '../onnx/types.js';
import { SCHEMA_VERSION, type AnalysisReport, type ModelAccuracy } from '../report/schema.js';
import { validateReport } from '../report/validate.js';
import { computeMetrics, RepresentationStore } from '../stats/index.js';
import { openModelSession, type SessionSettings } from './session.js';
import { TOOL_VERSION } from '../version.js';
import type { AnalyzeRequest } from '../../protocol/analyze-request.js';

/** What to analyse (the protocol's request) plus what only an in-process caller can pass. */
export interface AnalyzeOptions extends AnalyzeRequest, Pick<SessionSettings, 'optimization'> {
  image?: OpenOptions['image'];
  /** Largest number of representation rows kept per block (tokens pooling subsamples beyond it). */
  maxRows?: number;
  /** Use the plain-JS matrix products instead of ONNX Runtime's (slow; for checks). */
  jsLinalg?: boolean;
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
/** Rows kept per block (only `tokens` pooling reaches it): bounds memory at ~2·L·rows·d·8 bytes. */
const DEFAULT_MAX_ROWS = 16384;

const ELEM_TO_ORT: Record<number, OrtDtype> = {
  1: 'float32', 2: 'uint8', 3: 'int8', 4: 'uint16', 5: 'int16', 6: 'int32', 7: 'int64', 9: 'bool',
  10: 'float16', 11: 'float64', 12: 'uint32', 13: 'uint64',
};

/** Graph inputs as the calibration layer sees them. */
export function modelInputs(model: ModelProto, modelPath?: string): InputSpec[] {
  const index = new GraphIndex(model.graph!);
  return index.graphInputs.map((name) => {
    const info = index.types.get(name);
    const dtype = info?.elemType !== undefined ? ELEM_TO_ORT[info.elemType] : undefined;
    if (!dtype) {
      throw Object.assign(new Error(`input '${name}' has a type BlockLens cannot feed (element type ${info?.elemType ?? 'unknown'})`), { file: modelPath });
    }
    return { name, dtype, shape: info?.dims ?? [] };
  });
}

/** Embedding-table sizes and sequence-length hints for synthetic token ids. */
export function calibrationHints(model: ModelProto): CalibrationHints {
  const index = new GraphIndex(model.graph!);
  const hints: CalibrationHints = {};
  const vocab: Record<string, number> = {};
  const initDims = new Map(model.graph!.initializer.map((t) => [t.name ?? '', t.dims.map(Number)]));
  for (const input of index.graphInputs) {
    // Follow casts/reshapes from the input to a Gather on a 2-D weight table.
    const queue = [input];
    const seen = new Set<string>();
    while (queue.length) {
      const t = queue.shift()!;
      if (seen.has(t) || seen.size > 16) continue;
      seen.add(t);
      for (const c of index.consumers.get(t) ?? []) {
        const node = index.nodes[c]!;
        if (node.opType === 'Gather' && node.input[1] === t) {
          const dims = initDims.get(node.input[0]!);
          if (dims && dims.length === 2) vocab[input] = Math.min(vocab[input] ?? Infinity, dims[0]!);
        } else if (['Cast', 'Reshape', 'Unsqueeze', 'Squeeze', 'Flatten', 'Identity'].includes(node.opType)) {
          queue.push(node.output[0]!);
        }
      }
    }
  }
  if (Object.keys(vocab).length) hints.vocabSize = vocab;
  // Position tables bound the sequence length.
  for (const t of model.graph!.initializer) {
    const name = (t.name ?? '').toLowerCase();
    if ((name.includes('position') || name.includes('wpe') || name.includes('pos_emb')) && t.dims.length === 2) {
      hints.seqLen = Math.min(hints.seqLen ?? 128, Number(t.dims[0]));
    }
  }
  return hints;
}

function findMaskInput(inputs: InputSpec[]): string | undefined {
  return inputs.find((i) => /mask/i.test(i.name) && i.shape.length === 2 && i.dtype !== 'float32' && i.dtype !== 'float64')?.name;
}

function toOrtFeeds(batch: CalibrationBatch): Record<string, ort.Tensor> {
  const feeds: Record<string, ort.Tensor> = {};
  for (const [name, t] of Object.entries(batch.feeds)) {
    feeds[name] = new ort.Tensor(t.dtype as ort.Tensor.Type, t.data as ort.Tensor.DataType, t.dims);
  }
  return feeds;
}

export async function analyzeModel(opts: AnalyzeOptions): Promise<AnalysisReport> {
  const started = performance.now();
  const timings: Record<string, number> = {};
  const mark = (phase: string, since: number) => (timings[phase] = Math.round(performance.now() - since));
  const progress = opts.onProgress ?? (() => {});
  const seed = opts.seed ?? 0;
  const warnings: string[] = [];

  progress({ phase: 'load', message: opts.model });
  let t0 = performance.now();
  const loaded = await loadModelFile(opts.model);
  await checkExternalData(loaded).catch((e: Error & { file?: string }) => {
    // An unsafe location is not a file on disk: the model that names it is the file at fault.
    if (e.file !== undefined && !path.isAbsolute(e.file)) e.file = opts.model;
    throw e;
  });
  const graph = loaded.model.graph;
  if (!graph || graph.node.length === 0) throw Object.assign(new Error('the model graph has no nodes'), { file: opts.model });
  mark('load', t0);

  progress({ phase: 'detect' });
  t0 = performance.now();
  let detection: BlockDetection;
  try {
    detection = detectBlocks(loaded.model, { blocks: opts.blocks, blockInput: opts.blockInput, granularity: opts.granularity });
  } catch (e) {
    throw Object.assign(e as Error, { file: opts.model });
  }
  warnings.push(...detection.warnings);
  const index = new GraphIndex(graph);
  mark('detect', t0);

  const inputs = modelInputs(loaded.model, opts.model);
  const hints = calibrationHints(loaded.model);
  if (opts.seqLen) hints.seqLen = opts.seqLen;
  if (opts.imageSize) hints.imageSize = opts.imageSize;
  const source = await openCalibration({
    inputs,
    hints,
    data: opts.data,
    labels: opts.labels,
    samples: opts.samples,
    maxSamples: DEFAULT_MAX_SAMPLES,
    seed,
    modelPath: loaded.path,
    tokenizer: opts.tokenizer,
    image: opts.image,
  });
  const matmul: MatmulBackend = opts.jsLinalg ? jsMatmul : await createOrtMatmul();
  const disposers: (() => Promise<void>)[] = [() => source.close(), () => matmul.dispose()];
  try {
    const batchSize = source.fixedBatchSize ?? opts.batch ?? DEFAULT_BATCH;
    const L = detection.blocks.length;
    const targets: PoolTarget[] = detection.blocks.map((b) => ({ key: String(b.index), tensor: b.output, rank: index.rank(b.output) ?? -1 }));
    if (detection.blockInput) targets.push({ key: 'input', tensor: detection.blockInput, rank: index.rank(detection.blockInput) ?? -1 });
    const maskInput = findMaskInput(inputs);

    let session: Awaited<ReturnType<typeof openModelSession>> | undefined;
    disposers.push(async () => session?.dispose());
    let pooling: PoolingChoice | undefined;
    let layout: SequenceLayout | undefined;
    const store = new RepresentationStore({ blocks: L, maxRows: opts.maxRows ?? DEFAULT_MAX_ROWS, seed });
    const labels: number[] = [];
    let correct = 0;
    let counted = 0;
    const perClassHits = new Map<number, [number, number]>();
    let logitsName: string | undefined;
    let sampleBase = 0;
    let forwardMs = 0;

    t0 = performance.now();
    progress({ phase: 'forward', done: 0, total: source.samples });
    for await (const batch of source.batches(batchSize, opts.signal)) {
      const feeds = toOrtFeeds(batch);
      if (!session) {
        // Ranks from value_info, else from one probe run on this batch, which also shows the
        // layout of 3-D block outputs; `auto` pooling evaluates the attention mask.
        const plan = await planRepresentations({
          model: loaded.model, index, dir: loaded.dir, threads: opts.threads, targets, lastKey: String(L - 1),
          requested: opts.pooling ?? 'auto', layout: opts.layout, feeds, batchSize: batch.size,
        }).catch((e: Error) => {
          throw Object.assign(e, { file: opts.model });
        });
        pooling = plan.pooling;
        layout = plan.layout;
        // The model's own outputs are only fetched when labels let us score them.
        const keepOutputs = batch.labels !== undefined;
        const inst = instrumentModel(loaded.model, targets, { pooling: pooling.used, maskInput, keepOutputs, layout });
        progress({ phase: 'session' });
        const ts = performance.now();
        session = await openModelSession(inst.model, loaded.dir, opts);
        timings.session = Math.round(performance.now() - ts);
        logitsName = graph.output[0]?.name;
      }
      const tf = performance.now();
      const result = await session.session.run(feeds);
      forwardMs += performance.now() - tf;
      const mask = maskInput && pooling!.used === 'tokens' ? batch.feeds[maskInput] : undefined;
      let ids: number[] | undefined;
      if (pooling!.used === 'tokens') {
        const perSample = targets.map((t) => (result[`blocklens::pooled::${t.key}`]!.dims[0] as number) / batch.size);
        if (new Set(perSample).size > 1) {
          throw Object.assign(
            new Error(`tokens pooling needs the same number of positions in every block, but the blocks have ${[...new Set(perSample)].join(', ')} per sample; use --pooling gap or mean`),
            { file: opts.model },
          );
        }
      }
      for (const t of targets) {
        const out = result[`blocklens::pooled::${t.key}`]!;
        const dims = out.dims as readonly number[];
        let rows = dims[0]!;
        let data = out.data as Float32Array;
        if (pooling!.used === 'tokens' && rows !== batch.size) {
          const perSample = rows / batch.size;
          const keep: number[] = [];
          for (let r = 0; r < rows; r++) {
            // Padding positions (mask 0) are not tokens of the sample.
            if (mask && Number(mask.data[r]) === 0) continue;
            keep.push(r);
          }
          if (keep.length !== rows) {
            const d = dims[1]!;
            const filtered = new Float32Array(keep.length * d);
            keep.forEach((r, i) => filtered.set(data.subarray(r * d, (r + 1) * d), i * d));
            data = filtered;
          }
          ids ??= keep.map((r) => sampleBase + Math.floor(r / perSample));
          rows = keep.length;
        }
        store.append(t.key === 'input' ? 'input' : Number(t.key), data, rows);
      }
      if (ids) store.appendSampleIds(ids);
      if (batch.labels) {
        labels.push(...batch.labels);
        const logits = logitsName ? result[logitsName] : undefined;
        if (logits && logits.dims.length === 2 && logits.dims[0] === batch.size) {
          const c = logits.dims[1] as number;
          const v = logits.data as Float32Array;
          for (let i = 0; i < batch.size; i++) {
            let best = 0;
            for (let k = 1; k < c; k++) if (v[i * c + k]! > v[i * c + best]!) best = k;
            const y = batch.labels[i]!;
            const hit = best === y ? 1 : 0;
            correct += hit;
            counted++;
            const pc = perClassHits.get(y) ?? [0, 0];
            pc[0] += hit;
            pc[1] += 1;
            perClassHits.set(y, pc);
          }
        }
      }
      for (const t of Object.values(result)) t.dispose?.();
      sampleBase += batch.size;
      progress({ phase: 'forward', done: sampleBase, total: source.samples });
    }
    mark('forward', t0);
    timings.inference = Math.round(forwardMs);
    if (!session || !pooling) throw Object.assign(new Error('the calibration data holds no samples'), { file: opts.data ?? opts.model });

    progress({ phase: 'metrics' });
    t0 = performance.now();
    if (store.subsampled) warnings.push(`representation rows were subsampled to ${opts.maxRows ?? DEFAULT_MAX_ROWS} per block (seeded) to bound memory`);
    if (labels.length) store.setLabels(Int32Array.from(labels));
    const { metrics, warnings: statWarnings } = await computeMetrics(store, {
      matmul,
      seed,
      drBlock: opts.drBlock,
      delta: opts.delta,
    });
    warnings.push(...statWarnings);
    mark('metrics', t0);

    let modelAccuracy: ModelAccuracy | undefined;
    if (counted > 0) {
      const classes = Math.max(...perClassHits.keys()) + 1;
      const perClass = Array.from({ length: classes }, (_, k) => {
        const pc = perClassHits.get(k);
        return pc ? pc[0] / pc[1] : 0;
      });
      modelAccuracy = { accuracy: correct / counted, samples: counted, perClass };
    }

    const info = source.info;
    if (info.source === 'synthetic') {
      warnings.unshift('synthetic calibration data: these numbers show the model\'s structure, not its behaviour on a task; pass --data for real inputs');
    }
    timings.total = Math.round(performance.now() - started);
    progress({ phase: 'done' });
    // The report is the contract with the CLI, the webview and saved files: check it here.
    return validateReport({
      schemaVersion: SCHEMA_VERSION,
      tool: { name: 'blocklens', version: TOOL_VERSION },
      createdAt: new Date().toISOString(),
      model: {
        path: loaded.path,
        sha256: loaded.sha256,
        irVersion: Number(loaded.model.irVersion ?? 0),
        opsetVersion: opsetVersion(loaded.model, '') ?? opsetVersion(loaded.model, 'ai.onnx') ?? 0,
        parameters: countParameters(loaded.model),
        producer: [loaded.model.producerName, loaded.model.producerVersion].filter(Boolean).join(' ') || undefined,
        sizeBytes: loaded.sizeBytes,
      },
      blocks: detection.blocks.map((b) => ({ index: b.index, name: b.name, output: b.output, parameters: b.parameters })),
      detection: {
        method: detection.method, blockInput: detection.blockInput, explanation: detection.explanation,
        blockInputReason: detection.blockInputReason, granularity: detection.granularity, rejected: detection.rejected,
        ...(layout ? { layout } : {}),
      },
      calibration: { ...info },
      pooling: { requested: opts.pooling ?? 'auto', used: pooling.used, reason: pooling.reason, evidence: pooling.evidence },
      warnings,
      metrics,
      ...(modelAccuracy ? { modelAccuracy } : {}),
      timings,
    } satisfies AnalysisReport);
  } finally {
    for (const d of disposers.reverse()) await d().catch(() => {});
  }
}

/** The batch's first sample alone: enough to learn ranks, at 1/batch of the cost. */
function firstSample(batch: CalibrationBatch): Record<string, ort.Tensor> {
  const feeds: Record<string, ort.Tensor> = {};
  for (const [name, t] of Object.entries(batch.feeds)) {
    const per = t.data.length / batch.size;
    feeds[name] = new ort.Tensor(t.dtype as ort.Tensor.Type, t.data.subarray(0, per) as ort.Tensor.DataType, [1, ...t.dims.slice(1)]);
  }
  return feeds;
}

/** Learns the rank of each target from one run of a model exposing the raw tensors. */
async function probeRanks(loaded: LoadedModel, targets: PoolTarget[], feeds: Record<string, ort.Tensor>, settings: SessionSettings): Promise<void> {
  const probe = await openModelSession(exposeTensors(loaded.model, targets.map((t) => t.tensor)), loaded.dir, { ...settings, optimization: 'basic' });
  try {
    const out = await probe.session.run(feeds);
    for (const t of targets) t.rank = out[t.tensor]!.dims.length;
  } finally {
    await probe.dispose();
  }
}

export function reportFileName(model: string): string {
  return path.basename(model).replace(/\.onnx$/i, '');
}
