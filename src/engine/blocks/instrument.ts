// Instrumentation: a copy of the model whose extra graph outputs are the block representations,
// already pooled inside the graph (DESIGN §2), so only [N, d] (or [N·T, d] for `tokens`) leaves
// ONNX Runtime. The user's model object is not modified.
import { attr, makeNode, makeTensor, makeValueInfo, opsetVersion } from '../onnx/builder.js';
import { DataType, type GraphProto, type ModelProto, type NodeProto, type TensorProto } from '../onnx/types.js';
import type { Pooling, PoolingRequest, SequenceLayout } from '../report/schema.js';
import type { GraphIndex } from './graph-index.js';
import type { CausalCheck } from './probe.js';

export const POOLED_PREFIX = 'blocklens::pooled::';

export interface PoolTarget {
  /** Key the caller uses to find the output again ('input' or a block index). */
  key: string;
  tensor: string;
  /** Rank of the tensor (batch included). */
  rank: number;
}

export interface InstrumentOptions {
  pooling: Pooling;
  /** Graph input holding an attention mask [N, T] (1 = real token), for mask-aware mean/last. */
  maskInput?: string;
  /** Keep the model's own outputs (for accuracy). */
  keepOutputs: boolean;
  /** Layout of 3-D block outputs; `tnd` ones are transposed to [N, T, d] before pooling. */
  layout?: SequenceLayout;
  /** Which 4-D targets are channels-last [N, H, W, C] (transposed to NCHW before pooling). */
  channelsLast?: (tensor: string) => boolean;
}

export interface Instrumented {
  model: ModelProto;
  /** key → graph output name carrying the pooled representation. */
  outputs: Map<string, string>;
}

/** Builds the instrumented model: pooled block outputs appended as float32 graph outputs. */
export function instrumentModel(model: ModelProto, targets: PoolTarget[], opts: InstrumentOptions): Instrumented {
  const graph = model.graph!;
  const opset = opsetVersion(model, '') ?? opsetVersion(model, 'ai.onnx') ?? 13;
  const b = new PoolBuilder(opset);
  const outputs = new Map<string, string>();
  const newOutputs = [];
  for (const t of targets) {
    const out = `${POOLED_PREFIX}${t.key}`;
    b.pool(t.tensor, t.rank, opts.pooling, out, opts.maskInput, opts.layout, t.rank === 4 && !!opts.channelsLast?.(t.tensor));
    outputs.set(t.key, out);
    newOutputs.push(makeValueInfo(out, DataType.FLOAT));
  }
  const newGraph: GraphProto = {
    ...graph,
    node: [...graph.node, ...b.nodes],
    initializer: [...graph.initializer, ...b.initializers],
    output: [...(opts.keepOutputs ? graph.output : []), ...newOutputs],
  };
  // `$wire` stays on both copies: the encoder writes the edited fields from the objects and keeps
  // the fields it does not know verbatim (model-local functions, training info, ...).
  const copy: ModelProto = { ...model, graph: newGraph };
  return { model: copy, outputs };
}

/** A copy that only exposes the given tensors raw (used to learn ranks when value_info lacks them). */
export function exposeTensors(model: ModelProto, tensors: string[]): ModelProto {
  const graph = model.graph!;
  const newGraph: GraphProto = { ...graph, output: tensors.map((t) => makeValueInfo(t, DataType.UNDEFINED)) };
  // An output ValueInfo with no type is accepted by ONNX Runtime.
  for (const o of newGraph.output) delete o.type;
  const copy: ModelProto = { ...model, graph: newGraph };
  return copy;
}

/** Emits pooling nodes in the form the model's opset expects. */
class PoolBuilder {
  readonly nodes: NodeProto[] = [];
  readonly initializers: TensorProto[] = [];
  private n = 0;
  constructor(private readonly opset: number) {}

  private name(hint: string): string {
    return `blocklens::${hint}_${this.n++}`;
  }

  private node(op: string, inputs: string[], attrs: NodeProto['attribute'] = [], outName?: string): string {
    const out = outName ?? this.name(op);
    this.nodes.push(makeNode(op, inputs, [out], attrs, `blocklens/${op}_${this.n++}`));
    return out;
  }

  private int64s(values: number[]): string {
    const name = this.name('const');
    this.initializers.push(makeTensor(name, DataType.INT64, [values.length], BigInt64Array.from(values.map(BigInt))));
    return name;
  }

  private scalarInt64(v: number): string {
    const name = this.name('const');
    this.initializers.push(makeTensor(name, DataType.INT64, [], BigInt64Array.from([BigInt(v)])));
    return name;
  }

  private reduce(op: 'ReduceMean' | 'ReduceSum', x: string, axes: number[], keepdims: boolean): string {
    // ReduceSum takes axes as an input from opset 13, the other reductions from opset 18.
    const asInput = op === 'ReduceSum' ? this.opset >= 13 : this.opset >= 18;
    const kd = attr.int('keepdims', keepdims ? 1 : 0);
    return asInput ? this.node(op, [x, this.int64s(axes)], [kd]) : this.node(op, [x], [attr.ints('axes', axes), kd]);
  }

  private unsqueeze(x: string, axes: number[]): string {
    return this.opset >= 13 ? this.node('Unsqueeze', [x, this.int64s(axes)]) : this.node('Unsqueeze', [x], [attr.ints('axes', axes)]);
  }

  private squeeze(x: string, axes: number[]): string {
    return this.opset >= 13 ? this.node('Squeeze', [x, this.int64s(axes)]) : this.node('Squeeze', [x], [attr.ints('axes', axes)]);
  }

  private castFloat(x: string, out?: string): string {
    return this.node('Cast', [x], [attr.int('to', DataType.FLOAT)], out);
  }

  pool(x0: string, rank: number, pooling: Pooling, out: string, mask?: string, layout?: SequenceLayout, channelsLast?: boolean): void {
    // Sequence-first [T, N, d] → [N, T, d], NHWC → NCHW: every pooling below reads the batch on
    // axis 0 and, for 4-D maps, the channels on axis 1.
    const x =
      rank === 3 && layout === 'tnd'
        ? this.node('Transpose', [x0], [attr.ints('perm', [1, 0, 2])])
        : rank === 4 && channelsLast
          ? this.node('Transpose', [x0], [attr.ints('perm', [0, 3, 1, 2])])
          : x0;
    if (rank <= 2) {
      // Already one vector per sample.
      this.castFloat(x, out);
      return;
    }
    if (rank === 4) {
      if (pooling === 'tokens') {
        // NCHW → N·H·W rows of C features.
        const t = this.node('Transpose', [x], [attr.ints('perm', [0, 2, 3, 1])]);
        this.castFloat(this.node('Flatten', [t], [attr.int('axis', 3)]), out);
      } else {
        this.castFloat(this.reduce('ReduceMean', x, [2, 3], false), out);
      }
      return;
    }
    // Rank 3 [N, T, d] (higher ranks: tokens are every axis between batch and features).
    const xf = rank === 3 ? x : this.node('Reshape', [x, this.int64s([0, -1, 0])]);
    switch (pooling) {
      case 'cls':
        this.castFloat(this.node('Gather', [xf, this.scalarInt64(0)], [attr.int('axis', 1)]), out);
        return;
      case 'last': {
        if (mask) {
          // Index of the last real token, whether padding is on the right or the left: where
          // cumsum(mask)·mask peaks (CumSum from opset 11), else sum(mask) − 1 (right padding).
          const m = this.node('Cast', [mask], [attr.int('to', DataType.INT64)]);
          const idx =
            this.opset >= 11
              ? this.node('ArgMax', [this.node('Mul', [this.node('CumSum', [m, this.scalarInt64(1)]), m])], [attr.int('axis', 1), attr.int('keepdims', 1)])
              : this.node('Sub', [this.reduce('ReduceSum', m, [1], true), this.int64s([1])]); // [N,1]
          const idx3 = this.unsqueeze(idx, [2]); // [N,1,1]
          const shape = this.node('Shape', [xf]);
          const d = this.node('Slice', [shape, this.int64s([2]), this.int64s([3])]);
          // Target shape [N, 1, d], from the index's own shape and the feature width.
          const nShape = this.node('Shape', [idx]); // [N,1]
          const full = this.node('Concat', [nShape, d], [attr.int('axis', 0)]);
          const idxFull = this.node('Expand', [idx3, full]);
          const g = this.node('GatherElements', [xf, idxFull], [attr.int('axis', 1)]);
          this.castFloat(this.squeeze(g, [1]), out);
          return;
        }
        if (this.opset >= 11) {
          this.castFloat(this.node('Gather', [xf, this.scalarInt64(-1)], [attr.int('axis', 1)]), out);
        } else {
          const s = this.node('Slice', [xf], [attr.ints('starts', [-1]), attr.ints('ends', [2 ** 31 - 1]), attr.ints('axes', [1])]);
          this.castFloat(this.squeeze(s, [1]), out);
        }
        return;
      }
      case 'tokens':
        this.castFloat(this.node('Flatten', [xf], [attr.int('axis', 2)]), out);
        return;
      case 'mean':
      case 'gap': {
        if (mask) {
          const xc = this.castFloat(xf);
          const m = this.unsqueeze(this.castFloat(mask), [2]); // [N,T,1]
          const num = this.reduce('ReduceSum', this.node('Mul', [xc, m]), [1], false);
          const den = this.reduce('ReduceSum', m, [1], false); // [N,1]
          this.node('Div', [num, den], [], out);
          return;
        }
        this.castFloat(this.reduce('ReduceMean', xf, [1], false), out);
        return;
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// `auto` pooling

export interface PoolingChoice {
  used: Pooling;
  reason: string;
  /** What `auto` looked at, one line each. */
  evidence: string[];
}

/**
 * Picks the pooling from the graph (DESIGN §2) and says why. `causal` is the result of
 * evaluating the attention mask (probe.ts); without it, only a Trilu op or a constant
 * triangular mask counts as causal.
 */
export function choosePooling(
  requested: PoolingRequest,
  index: GraphIndex,
  lastBlockOutput: string,
  rank: number,
  causal?: CausalCheck,
): PoolingChoice {
  const evidence: string[] = [`block outputs have rank ${rank}`];
  if (requested !== 'auto') {
    if (rank <= 2) return { used: requested, reason: `${requested} requested; block outputs are already vectors [N, d], nothing to pool`, evidence };
    if (rank === 4 && (requested === 'cls' || requested === 'last' || requested === 'mean')) {
      return { used: 'gap', reason: `${requested} requested but block outputs are 4-D feature maps; used gap (mean over H, W)`, evidence };
    }
    return { used: requested, reason: `${requested} requested`, evidence };
  }
  if (rank <= 2) return { used: 'mean', reason: 'auto: block outputs are already vectors [N, d]; used as they are', evidence };
  if (rank === 4) return { used: 'gap', reason: 'auto: block outputs are 4-D (NCHW) feature maps → gap, mean over H and W', evidence };
  const cls = findTokenZeroReadout(index, lastBlockOutput);
  evidence.push(cls ? `token 0 is read after the last block (${cls})` : 'no token-0 read-out after the last block');
  if (cls) return { used: 'cls', reason: `auto: the model reads token 0 after the last block (${cls}) → cls`, evidence };
  if (causal) {
    evidence.push(causal.detail);
    if (causal.causal) {
      const what = causal.tensor
        ? `the attention mask '${causal.tensor}' is causal (triangular, the same for any tokens, when evaluated)`
        : `the attention is causal (${causal.detail})`;
      return { used: 'last', reason: `auto: ${what} → last valid token`, evidence };
    }
  }
  const staticMask = findCausalMask(index);
  if (staticMask) {
    evidence.push(`causal mask in the graph: ${staticMask}`);
    return { used: 'last', reason: `auto: causal attention mask found (${staticMask}) → last valid token`, evidence };
  }
  if (!causal) evidence.push('no Trilu op and no constant triangular mask (the mask was not evaluated)');
  return { used: 'mean', reason: 'auto: no token-0 read-out and no causal mask → mean over tokens', evidence };
}

function constantInt(index: GraphIndex, name: string): number[] | undefined {
  const init = index.graph.initializer.find((t) => t.name === name);
  const p = index.producer.get(name);
  const tensor = init ?? (p !== undefined && index.nodes[p]!.opType === 'Constant' ? index.nodes[p]!.attribute.find((a) => a.name === 'value')?.t : undefined);
  if (!tensor) return undefined;
  if (tensor.int64Data.length) return tensor.int64Data.map(Number);
  if (tensor.int32Data.length) return tensor.int32Data;
  if (tensor.rawData && (tensor.dataType === DataType.INT64 || tensor.dataType === DataType.INT32)) {
    const view = new DataView(tensor.rawData.buffer, tensor.rawData.byteOffset, tensor.rawData.byteLength);
    const out: number[] = [];
    const step = tensor.dataType === DataType.INT64 ? 8 : 4;
    for (let o = 0; o + step <= tensor.rawData.byteLength; o += step) {
      out.push(step === 8 ? Number(view.getBigInt64(o, true)) : view.getInt32(o, true));
    }
    return out;
  }
  return undefined;
}

function attrInt(node: NodeProto, name: string): number | undefined {
  const a = node.attribute.find((x) => x.name === name);
  return a?.i !== undefined ? Number(a.i) : undefined;
}

/** A Gather(axis=1, index 0) or Slice [0:1] on axis 1 downstream of the last block. */
function findTokenZeroReadout(index: GraphIndex, start: string): string | undefined {
  const seen = new Set<string>();
  const queue = [start];
  let steps = 0;
  while (queue.length && steps++ < 400) {
    const t = queue.shift()!;
    if (seen.has(t)) continue;
    seen.add(t);
    for (const c of index.consumers.get(t) ?? []) {
      const node = index.nodes[c]!;
      if (node.opType === 'Gather' && node.input[0] === t && (attrInt(node, 'axis') ?? 0) === 1) {
        const idx = constantInt(index, node.input[1]!);
        if (idx && idx.length === 1 && idx[0] === 0) return node.name || node.opType;
      }
      if (node.opType === 'Slice' && node.input[0] === t) {
        const starts = node.input[1] ? constantInt(index, node.input[1]) : node.attribute.find((a) => a.name === 'starts')?.ints.map(Number);
        const ends = node.input[2] ? constantInt(index, node.input[2]) : node.attribute.find((a) => a.name === 'ends')?.ints.map(Number);
        const axes = node.input[3] ? constantInt(index, node.input[3]) : node.attribute.find((a) => a.name === 'axes')?.ints.map(Number);
        if (starts && ends && axes && axes.length === 1 && axes[0] === 1 && starts[0] === 0 && ends[0] === 1) {
          return node.name || node.opType;
        }
      }
      // Follow shape-preserving ops (final norm, dropout, casts).
      if (['LayerNormalization', 'Add', 'Mul', 'Sub', 'Div', 'Cast', 'Identity', 'Dropout', 'ReduceMean', 'Pow', 'Sqrt', 'SimplifiedLayerNormalization', 'Tanh', 'Relu', 'Gelu', 'Erf'].includes(node.opType)) {
        for (const o of node.output) if (o) queue.push(o);
      }
    }
  }
  return undefined;
}

/** A Trilu op, or a square lower/upper-triangular constant mask. */
function findCausalMask(index: GraphIndex): string | undefined {
  for (const node of index.nodes) {
    if (node.opType === 'Trilu') return `Trilu node ${node.name ?? ''}`.trim();
  }
  for (const t of index.graph.initializer) {
    const dims = t.dims.map(Number);
    if (dims.length < 2) continue;
    const n = dims[dims.length - 1]!;
    if (n < 2 || dims[dims.length - 2] !== n || n > 8192) continue;
    if (isTriangular(t, n)) return `triangular mask '${t.name}'`;
  }
  for (const node of index.nodes) {
    if (node.opType !== 'Constant') continue;
    const t = node.attribute.find((a) => a.name === 'value')?.t;
    if (!t) continue;
    const dims = t.dims.map(Number);
    const n = dims[dims.length - 1] ?? 0;
    if (dims.length >= 2 && n >= 2 && dims[dims.length - 2] === n && n <= 8192 && isTriangular(t, n)) {
      return `triangular mask '${node.output[0]}'`;
    }
  }
  return undefined;
}

/** True if the last n×n slab is lower-triangular ones (or its complement) and not all equal. */
function isTriangular(t: TensorProto, n: number): boolean {
  const raw = t.rawData;
  const values: number[] = [];
  if (raw && raw.byteLength > 0) {
    const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
    const count = n * n;
    const per = raw.byteLength / (t.dims.reduce((a, d) => a * Number(d), 1) || 1);
    if (![1, 4, 8].includes(per)) return false;
    for (let i = 0; i < count; i++) {
      const o = i * per;
      values.push(per === 1 ? view.getUint8(o) : per === 4 ? (t.dataType === DataType.FLOAT ? view.getFloat32(o, true) : view.getInt32(o, true)) : t.dataType === DataType.DOUBLE ? view.getFloat64(o, true) : Number(view.getBigInt64(o, true)));
    }
  } else if (t.int32Data.length >= n * n) {
    values.push(...t.int32Data.slice(0, n * n));
  } else if (t.floatData.length >= n * n) {
    values.push(...t.floatData.slice(0, n * n));
  } else return false;
  const at = (i: number, j: number) => values[i * n + j]!;
  const below = at(n - 1, 0);
  const above = at(0, n - 1);
  if (below === above) return false;
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      if (j < i && at(i, j) !== below) return false;
      if (j > i && at(i, j) !== above) return false;
    }
  }
  return true;
}
