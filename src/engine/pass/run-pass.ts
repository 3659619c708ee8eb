// runPass: one stream of calibration batches through one instrumented session, feeding every
// consumer (types.ts). The session is built on the first batch, from what the consumers ask
// for: pooled block rows, raw tensors, in-graph float64 cross-products, model outputs.
import type * as ort from 'onnxruntime-node';
import { Tensor as OrtTensor } from 'onnxruntime-node';
import { GraphIndex } from '../blocks/graph-index.js';
import { instrumentModel, POOLED_PREFIX, type PoolTarget } from '../blocks/instrument.js';
import { decidePooling } from '../blocks/plan.js';
import type { CalibrationBatch, CalibrationSource } from '../calibration/types.js';
import { appendGrams, type GramSpec } from '../model/cross-products.js';
import { appendRowSamples, ROWS_PREFIX, type RowLayout, type RowSampleOutputs } from '../model/row-samples.js';
import { makeValueInfo, opsetVersion } from '../onnx/builder.js';
import { runAppendedEarly } from '../onnx/early-outputs.js';
import type { LoadedModel } from '../onnx/model-file.js';
import { DataType, type ModelProto } from '../onnx/types.js';
import type { PoolingRequest, SequenceLayout } from '../report/schema.js';
import { firstSamplesFeeds, toOrtFeeds } from '../runtime/feeds.js';
import { openModelSession, probeRanks, type OpenSession, type SessionSettings } from '../runtime/session.js';
import * as ortRuntime from 'onnxruntime-node';
import type { BlockKey, HostTensor, PassBatch, PassConsumer, PassContext, PassOptions, PooledRows, RowDraws, SampledRows, TensorRequest } from './types.js';

/** The model side of a pass: the loaded model, its blocks and how to run it. */
export interface PassModel {
  loaded: LoadedModel;
  blocks: { index: number; name: string; output: string }[];
  blockInput: string | null;
  pooling: PoolingRequest;
  /** Layout of 3-D block outputs when the user gives it (else found on the first batch). */
  layout?: SequenceLayout;
  maskInput?: string;
  logitsOutput?: string;
  session: SessionSettings;
  /** Total samples of the whole calibration set (all shards). */
  totalSamples: number;
  seed: number;
  /** Where errors about the model point. */
  file: string;
}

export interface PassResult {
  ctx: PassContext;
  /** Samples read by this pass. */
  samples: number;
  /** Milliseconds: building the session, and inside `session.run`. */
  sessionMs: number;
  inferenceMs: number;
  /** The pooling choice and its reason. */
  poolingReason: string;
  /** What `auto` looked at, and the layout of 3-D block outputs. */
  poolingEvidence: string[];
  layout?: SequenceLayout;
  /** What the session had to say (a missing GPU provider: the pass ran on the CPU). */
  warnings: string[];
}

const keyName = (k: BlockKey) => String(k);

export async function runPass(source: CalibrationSource, model: PassModel, consumers: PassConsumer[], opts: PassOptions): Promise<PassResult> {
  const names = new Set<string>();
  for (const c of consumers) {
    if (names.has(c.name)) throw new Error(`internal: two pass consumers are named '${c.name}'`);
    names.add(c.name);
  }
  const range = opts.range ?? { start: 0, end: source.samples };
  const graph = model.loaded.model.graph!;
  const index = new GraphIndex(graph);
  let ctx: PassContext | undefined;
  let runner: OpenSession | undefined;
  let plan: SessionPlan | undefined;
  let poolingReason = '';
  let poolingEvidence: string[] = [];
  let layout: SequenceLayout | undefined;
  const sessionWarnings: string[] = [];
  let sessionMs = 0;
  let inferenceMs = 0;
  let done = 0;
  const total = range.end - range.start;
  try {
    opts.onProgress?.({ phase: 'forward', done: 0, total });
    for await (const batch of source.batches(opts.batchSize, opts.signal, range)) {
      if (!ctx || !plan) {
        const t = performance.now();
        opts.onProgress?.({ phase: 'session', done: 0, total });
        const built = await buildSession(model, index, consumers, batch, source.fixedBatchSize !== undefined, range);
        ctx = built.ctx;
        plan = built.plan;
        runner = built.runner;
        sessionWarnings.push(...built.runner.warnings);
        poolingReason = built.reason;
        poolingEvidence = built.evidence;
        layout = built.layout;
        sessionMs = performance.now() - t;
      }
      const feeds = toOrtFeeds(batch);
      for (const r of plan.rows.values()) {
        const d: RowDraws = r.draws(batch.first, batch.size);
        if (d.sample.length === 0) throw new Error('internal: a rows request drew no rows');
        feeds[r.out.sampleInput] = new ortRuntime.Tensor('int64', BigInt64Array.from(d.sample, (v) => BigInt(v)), [d.sample.length]);
        feeds[r.out.uInput] = new ortRuntime.Tensor('float32', d.u, [d.u.length]);
      }
      const tf = performance.now();
      for (const [input, positions] of plan.selects) feeds[input] = selectFeed(positions(batch.first, batch.size));
      const result = await runner!.session.run(feeds);
      inferenceMs += performance.now() - tf;
      try {
        const view = makeBatchView(batch, result, plan, ctx, model.file);
        for (const c of consumers) await c.onBatch(view, ctx);
      } finally {
        for (const t of Object.values(result)) t.dispose?.();
      }
      done += batch.size;
      opts.onProgress?.({ phase: 'forward', done, total });
    }
  } finally {
    await runner?.dispose().catch(() => undefined);
  }
  if (!ctx) throw Object.assign(new Error('the calibration data holds no samples'), { file: model.file });
  return { ctx, samples: done, sessionMs, inferenceMs, poolingReason, poolingEvidence, layout, warnings: sessionWarnings };
}

interface SessionPlan {
  pooledKeys: Map<string, { key: BlockKey; output: string }>;
  /** Sample selections of `gram` requests: graph input → positions per batch. */
  selects: Map<string, (first: number, size: number) => Int32Array>;
  tokens: boolean;
  grams: Map<string, string>;
  rows: Map<string, { out: RowSampleOutputs; draws: (first: number, size: number) => RowDraws }>;
}

async function buildSession(
  model: PassModel, index: GraphIndex, consumers: PassConsumer[], batch: CalibrationBatch, fixedBatch: boolean, range: { start: number; end: number },
): Promise<{ ctx: PassContext; plan: SessionPlan; runner: OpenSession; reason: string; evidence: string[]; layout?: SequenceLayout }> {
  const L = model.blocks.length;
  const tensorOf = (k: BlockKey): string => {
    if (k === 'input') {
      if (!model.blockInput) throw new Error('internal: block input requested but unknown');
      return model.blockInput;
    }
    const b = model.blocks[k];
    if (!b) throw new Error(`internal: block ${k} requested, the model has ${L}`);
    return b.output;
  };
  // The context first (pooling needs the last block's rank), then the requests.
  const ranks = new Map<string, number>();
  const probed = new Map<string, { dims: number[]; type: string }>();
  const rankOf = (t: string) => ranks.get(t) ?? index.rank(t);
  const lastOut = model.blocks[L - 1]!.output;
  // Probes run on two samples (a batch size that differs from the sequence length tells the
  // layout of 3-D outputs), or on the whole batch when the model fixes its batch size.
  const probeFeeds = fixedBatch || batch.size <= 2 ? { feeds: toOrtFeeds(batch), size: batch.size } : { feeds: firstSamplesFeeds(batch, 2), size: 2 };
  const learnRanks = async (tensors: Iterable<string>) => {
    const unknown = [...new Set(tensors)].filter((t) => rankOf(t) === undefined);
    if (!unknown.length) return;
    const probedRanks = await probeRanks(model.loaded.model, model.loaded.dir, unknown, probeFeeds.feeds, model.session, model.loaded, probed);
    for (const [t, r] of probedRanks) ranks.set(t, r);
  };
  await learnRanks([...model.blocks.map((b) => b.output), ...(model.blockInput ? [model.blockInput] : [])]);
  // Layout of 3-D block outputs from the same two samples (the rank probe's run, when there was
  // one, already saw their dims); `auto` evaluates the attention mask (plan.ts).
  const choice = await decidePooling({
    model: model.loaded.model, index, dir: model.loaded.dir, threads: model.session.threads, lastTensor: lastOut,
    rank: rankOf(lastOut) ?? -1, requested: model.pooling, layout: model.layout, feeds: probeFeeds.feeds, batchSize: probeFeeds.size,
    file: model.loaded, seen: new Map([...probed].map(([t, p]) => [t, p.dims])),
  }).catch((e: Error) => {
    throw Object.assign(e, { file: model.file });
  });
  // Pooled width from the declared shape: channels of NCHW, else the last axis.
  const widthOf = (t: string): number | null => {
    const dims = index.types.get(t)?.dims;
    const rank = rankOf(t);
    if (!dims || rank === undefined || dims.length !== rank || rank < 2) return null;
    const w = rank === 4 ? dims[1] : dims[rank - 1];
    return typeof w === 'number' && w > 0 ? w : null;
  };
  const ctx: PassContext = {
    blocks: model.blocks.map((b) => ({ index: b.index, name: b.name, output: b.output })),
    blockInput: model.blockInput,
    pooling: choice.used,
    widths: model.blocks.map((b) => widthOf(b.output)),
    totalSamples: model.totalSamples,
    range,
    seed: model.seed,
    maskInput: model.maskInput,
    logitsOutput: model.logitsOutput,
    shapes: siteShapes(model, index, probed),
  };
  const requests: TensorRequest[] = consumers.flatMap((c) => c.requests(ctx));
  await learnRanks(requests.flatMap((r) => (r.kind === 'pooled' ? [tensorOf(r.key)] : r.kind === 'gram' || r.kind === 'rows' ? r.tensors : [])));

  // Pooled targets: every block key some request names (pooled rows, or pooled gram parts).
  const pooledKeys = new Map<string, { key: BlockKey; output: string }>();
  const targets: PoolTarget[] = [];
  const addPooled = (k: BlockKey) => {
    const name = keyName(k);
    if (pooledKeys.has(name)) return;
    const tensor = tensorOf(k);
    targets.push({ key: name, tensor, rank: rankOf(tensor) ?? -1 });
    pooledKeys.set(name, { key: k, output: '' });
  };
  const keyOfTensor = (t: string): BlockKey => {
    if (t === model.blockInput) return 'input';
    const b = model.blocks.find((x) => x.output === t);
    if (!b) throw new Error(`internal: pooled gram part '${t}' is not a block output`);
    return b.index;
  };
  for (const r of requests) {
    if (r.kind === 'pooled') addPooled(r.key);
    if (r.kind === 'gram' && r.rows === 'pooled') for (const t of r.tensors) addPooled(keyOfTensor(t));
  }
  const outputsWanted = requests.some((r) => r.kind === 'output');
  const inst = instrumentModel(model.loaded.model, targets, { pooling: choice.used, maskInput: model.maskInput, keepOutputs: outputsWanted, layout: choice.layout, channelsLast: choice.channelsLast });
  for (const [name, out] of inst.outputs) pooledKeys.get(name)!.output = out;
  const instModel: ModelProto = { ...inst.model, graph: { ...inst.model.graph! } };
  const have = new Set(instModel.graph!.output.map((o) => o.name));
  for (const r of requests) {
    if (r.kind === 'raw' && !have.has(r.tensor)) {
      const vi = makeValueInfo(r.tensor, DataType.UNDEFINED);
      delete vi.type;
      instModel.graph!.output = [...instModel.graph!.output, vi];
      have.add(r.tensor);
    }
  }
  const tokens = choice.used === 'tokens';
  const gramSpecs = new Map<string, GramSpec>();
  const selects: SessionPlan['selects'] = new Map();
  for (const r of requests) {
    if (r.kind !== 'gram' || gramSpecs.has(r.id)) continue;
    if (r.rows === 'pooled') {
      const parts = r.tensors.map((t) => ({ tensor: pooledKeys.get(keyName(keyOfTensor(t)))!.output, rank: 2 }));
      // Under tokens pooling the pooled rows of [N, T, d] blocks are N·T rows: weight them by the mask.
      const rank3 = r.tensors.every((t) => (rankOf(t) ?? 0) === 3);
      gramSpecs.set(r.id, { id: r.id, parts, mode: 'rows', ones: r.ones, mask: tokens && rank3 ? model.maskInput : undefined });
    } else {
      if (choice.layout === 'tnd' || choice.channelsLast) {
        throw Object.assign(new Error('block outputs are sequence-first [T, N, d] or channels-last: token-level cross-products need batch-first, channels-first blocks; name such block outputs with --blocks'), { file: model.file });
      }
      const parts = r.tensors.map((t) => ({ tensor: t, rank: rankOf(t) ?? 3 }));
      const rank3 = parts.every((p) => p.rank === 3);
      gramSpecs.set(r.id, { id: r.id, parts, mode: 'tokens', ones: r.ones, mask: rank3 ? model.maskInput : undefined });
    }
    if (r.left !== undefined) gramSpecs.get(r.id)!.left = r.left;
    if (r.select) {
      gramSpecs.get(r.id)!.select = r.select.input;
      selects.set(r.select.input, r.select.positions);
    }
  }
  const grams = gramSpecs.size ? appendGrams(instModel, [...gramSpecs.values()]) : new Map<string, string>();
  // Sampled token rows: gathered in the graph; tensors of a rank they cannot take are left out.
  // (Cast with an integer `to`, Floor and integer Mul/Add as used there need opset ≥ 7.)
  const opset = opsetVersion(model.loaded.model, '') ?? opsetVersion(model.loaded.model, 'ai.onnx') ?? 13;
  const rowPlans: SessionPlan['rows'] = new Map();
  for (const r of requests) {
    if (r.kind !== 'rows' || rowPlans.has(r.id) || opset < 7) continue;
    const tensors: { tensor: string; layout: RowLayout }[] = [];
    for (const t of r.tensors) {
      const rank = rankOf(t);
      if (rank === 2) tensors.push({ tensor: t, layout: 'vector' });
      else if (rank === 3) tensors.push({ tensor: t, layout: choice.layout === 'tnd' ? 'tnd' : 'ntd' });
      else if (rank === 4) tensors.push({ tensor: t, layout: choice.channelsLast?.(t) ? 'nhwc' : 'nchw' });
    }
    if (tensors.length) rowPlans.set(r.id, { out: appendRowSamples(instModel, { id: r.id, tensors }), draws: r.draws });
  }
  // Weights by reference to the model file: no second copy of them through JavaScript.
  // Pooling and row gathers run right after the block they read, not after the whole model.
  // (Only those: a tie can change which kernels ORT fuses around the block, so float32 results
  // move by rounding, and the RBA products must equal the JavaScript form's.)
  // (Reshape with a shape input and integer Add/Mul need opset ≥ 7.)
  if (opset >= 7) instModel.graph = runAppendedEarly(instModel.graph!, model.loaded.model.graph!.node.length, (o) => o.startsWith(POOLED_PREFIX) || o.startsWith(ROWS_PREFIX));
  const runner = await openModelSession(instModel, model.loaded.dir, model.session, model.loaded);
  return { ctx, plan: { pooledKeys, tokens, grams, selects, rows: rowPlans }, runner, reason: choice.reason, evidence: choice.evidence, layout: choice.layout };
}

function makeBatchView(batch: CalibrationBatch, result: ort.InferenceSession.OnnxValueMapType, plan: SessionPlan, ctx: PassContext, file: string): PassBatch {
  const cache = new Map<string, PooledRows>();
  const maskTensor = ctx.maskInput ? batch.feeds[ctx.maskInput] : undefined;
  if (plan.tokens) {
    // Every block must give the same number of positions per sample.
    const per = new Set<number>();
    for (const { output } of plan.pooledKeys.values()) per.add((result[output]!.dims[0] as number) / batch.size);
    if (per.size > 1) {
      throw Object.assign(
        new Error(`tokens pooling needs the same number of positions in every block, but the blocks have ${[...per].join(', ')} per sample; use --pooling gap or mean`),
        { file },
      );
    }
  }
  return {
    first: batch.first,
    size: batch.size,
    labels: batch.labels,
    feeds: batch.feeds,
    pooled(key: BlockKey): PooledRows {
      const name = keyName(key);
      const hit = cache.get(name);
      if (hit) return hit;
      const entry = plan.pooledKeys.get(name);
      if (!entry) throw new Error(`internal: pooled rows of ${name} were not requested`);
      const out = result[entry.output]!;
      const dims = out.dims as readonly number[];
      let rows = dims[0]!;
      const width = dims.length > 1 ? dims[1]! : 1;
      let data = out.data as Float32Array;
      let ids: Int32Array;
      let positions: Int32Array | undefined;
      let perSample = 1;
      if (plan.tokens && rows !== batch.size) {
        const per = rows / batch.size;
        perSample = per;
        const keep: number[] = [];
        const mask = maskTensor && maskTensor.data.length === rows ? maskTensor : undefined;
        for (let r = 0; r < rows; r++) {
          // Padding positions (mask 0) are not tokens of the sample.
          if (mask && Number(mask.data[r]) === 0) continue;
          keep.push(r);
        }
        ids = new Int32Array(keep.length);
        positions = new Int32Array(keep.length);
        keep.forEach((r, i) => {
          ids[i] = batch.first + Math.floor(r / per);
          positions![i] = r % per;
        });
        if (keep.length !== rows) {
          const filtered = new Float32Array(keep.length * width);
          keep.forEach((r, i) => filtered.set(data.subarray(r * width, (r + 1) * width), i * width));
          data = filtered;
        }
        rows = keep.length;
      } else {
        ids = new Int32Array(rows);
        for (let i = 0; i < rows; i++) ids[i] = batch.first + i;
      }
      const v: PooledRows = { data, rows, width, ids, perSample, ...(positions ? { positions } : {}) };
      cache.set(name, v);
      return v;
    },
    tensor(name: string): HostTensor {
      const t = result[name];
      if (!t) throw new Error(`internal: tensor '${name}' was not requested`);
      return { type: t.type, dims: t.dims, data: t.data as HostTensor['data'] };
    },
    rows(id: string): SampledRows[] {
      const p = plan.rows.get(id);
      if (!p) return [];
      return p.out.tensors.map((t) => {
        const rows = result[t.rows]!;
        const dims = rows.dims as readonly number[];
        return {
          tensor: t.tensor,
          layout: t.layout,
          data: rows.data as Float32Array,
          width: dims[1] ?? 1,
          ...(t.position ? { positions: result[t.position]!.data as BigInt64Array } : {}),
          dims: Array.from(result[t.shape]!.data as BigInt64Array, Number),
        };
      });
    },
    gram(id: string) {
      const out = plan.grams.get(id);
      if (!out) throw new Error(`internal: gram '${id}' was not requested`);
      const t = result[out]!;
      return { data: t.data as Float64Array, dim: t.dims[0] as number };
    },
  };
}

function selectFeed(positions: Int32Array): OrtTensor {
  if (positions.length === 0) throw new Error('internal: a gram selection names no samples');
  return new OrtTensor('int64', BigInt64Array.from(positions, (v) => BigInt(v)), [positions.length]);
}

const ORT_TYPES: Record<number, string> = { [DataType.FLOAT]: 'float32', [DataType.FLOAT16]: 'float16', [DataType.DOUBLE]: 'float64' };

/** Shapes of the sites (block outputs, block input): probed, else declared. */
function siteShapes(model: PassModel, index: GraphIndex, probed: Map<string, { dims: number[]; type: string }>): PassContext['shapes'] {
  const out: NonNullable<PassContext['shapes']> = {};
  for (const t of [...model.blocks.map((b) => b.output), ...(model.blockInput ? [model.blockInput] : [])]) {
    const p = probed.get(t);
    const declared = index.types.get(t);
    if (p) out[t] = { dims: [...p.dims], type: p.type };
    else if (declared?.dims) out[t] = { dims: declared.dims.map((d) => (typeof d === 'number' && d > 0 ? d : null)), type: declared.elemType === undefined ? undefined : ORT_TYPES[declared.elemType] };
  }
  return out;
}
