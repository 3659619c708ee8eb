// Facts about a model that are read from running (parts of) it once in ONNX Runtime on a tiny
// input: whether the attention mask is causal (evaluating the mask-building subgraph), and the
// layout of 3-D block outputs ([N, T, d] or [T, N, d]) from their shapes.
import * as ort from 'onnxruntime-node';
import { weightsByReference, type ModelBytes } from '../onnx/by-reference.js';
import { encodeModel } from '../onnx/codec.js';
import { externalFiles } from '../onnx/model-file.js';
import { makeValueInfo } from '../onnx/builder.js';
import { DataType, type GraphProto, type ModelProto } from '../onnx/types.js';
import type { SequenceLayout } from '../report/schema.js';
import { roleOf } from '../calibration/shapes.js';
import { GraphIndex } from './graph-index.js';
import { isIntegerTensor, Structure } from './structure.js';

export class LayoutError extends Error {}

export interface ProbeSettings {
  /** Folder of the model file (external data is read from there). */
  dir: string;
  threads?: number;
  /**
   * The file the model was read from: its inline weights go to ONNX Runtime by reference to it
   * (runtime/session.ts), so a probe never encodes a copy of the weights.
   */
  file?: ModelBytes;
}

async function openSession(model: ModelProto, settings: ProbeSettings): Promise<ort.InferenceSession> {
  const opts: ort.InferenceSession.SessionOptions = { graphOptimizationLevel: 'basic', executionProviders: ['cpu'], logSeverityLevel: 3 };
  if (settings.threads) opts.intraOpNumThreads = settings.threads;
  if (settings.file !== undefined) model = weightsByReference(model, settings.file);
  if (externalFiles(model).length > 0) opts.extra = { session: { model_external_initializers_file_folder_path: settings.dir } };
  return ort.InferenceSession.create(encodeModel(model), opts);
}

/** A copy of the model whose graph computes only what `outputs` need, returning them raw. */
export function subModel(model: ModelProto, index: GraphIndex, outputs: string[]): ModelProto {
  const g = model.graph!;
  const keep = new Set<number>();
  for (const o of outputs) for (const n of index.ancestorNodes(o)) keep.add(n);
  const nodes = [...keep].sort((a, b) => a - b).map((n) => g.node[n]!);
  const used = new Set<string>(outputs);
  for (const n of nodes) for (const i of n.input) if (i) used.add(i);
  // Subgraph bodies (If/Loop) read outer tensors by name: GraphIndex counts them as consumers.
  for (const [t, cons] of index.consumers) if (cons.some((c) => keep.has(c))) used.add(t);
  const graph: GraphProto = {
    ...g,
    node: nodes,
    input: g.input.filter((v) => used.has(v.name) && !index.initializers.has(v.name)),
    initializer: g.initializer.filter((t) => used.has(t.name ?? '')),
    output: outputs.map((t) => {
      const v = makeValueInfo(t, DataType.UNDEFINED);
      delete v.type;
      return v;
    }),
    valueInfo: [],
  };
  delete graph.$wire;
  const copy: ModelProto = { ...model, graph };
  delete copy.$wire;
  return copy;
}

const ORT_TYPE: Record<number, ort.Tensor.Type> = {
  1: 'float32', 2: 'uint8', 3: 'int8', 5: 'int16', 6: 'int32', 7: 'int64', 9: 'bool', 10: 'float16', 11: 'float64',
};

/**
 * Small synthetic feeds for every graph input of `model`: batch `n`, `t` for other symbolic
 * dims (16 for symbolic spatial dims of 4-D inputs), token ids all equal to `token`, masks all
 * ones, positions 0..t−1.
 */
export function tinyFeeds(model: ModelProto, index: GraphIndex, n: number, t: number, token: number): Record<string, ort.Tensor> {
  const feeds: Record<string, ort.Tensor> = {};
  for (const name of index.graphInputs) {
    const info = index.types.get(name);
    const type = info?.elemType !== undefined ? ORT_TYPE[info.elemType] : undefined;
    if (!type || !info?.dims) throw new Error(`input '${name}' has no known type or rank`);
    const rank = info.dims.length;
    const dims = info.dims.map((d, i) => (typeof d === 'number' && d > 0 ? d : i === 0 ? n : rank === 4 ? (i === 1 ? 3 : 16) : t));
    const size = dims.reduce((a, b) => a * b, 1);
    const role = roleOf(name);
    const value = (k: number): number => {
      if (role === 'mask') return 1;
      if (role === 'type') return 0;
      if (role === 'position') return k % dims[dims.length - 1]!;
      return token;
    };
    let data: ort.Tensor.DataType;
    if (type === 'int64') data = BigInt64Array.from({ length: size }, (_, k) => BigInt(value(k)));
    else if (type === 'bool') data = Uint8Array.from({ length: size }, () => 1);
    else if (type === 'float32' || type === 'float64') {
      const arr = type === 'float32' ? new Float32Array(size) : new Float64Array(size);
      for (let k = 0; k < size; k++) arr[k] = role === 'mask' ? 1 : Math.sin(k * 0.37 + token);
      data = arr;
    } else if (type === 'float16') data = new Uint16Array(size).fill(role === 'mask' ? 0x3c00 : 0);
    else {
      const vals = Array.from({ length: size }, (_, k) => value(k));
      data = type === 'int32' ? Int32Array.from(vals) : type === 'int16' ? Int16Array.from(vals) : type === 'int8' ? Int8Array.from(vals) : Uint8Array.from(vals);
    }
    feeds[name] = new ort.Tensor(type, data, dims);
  }
  return feeds;
}

// ---------------------------------------------------------------------------------------------
// Causal masks, by what they compute

export interface CausalCheck {
  causal: boolean;
  /** The mask tensor found causal. */
  tensor?: string;
  /** One line: what was evaluated and what it showed. */
  detail: string;
}

const MASK_PATH_OPS = new Set([
  'Add', 'Sub', 'Mul', 'Div', 'Where', 'Cast', 'Reshape', 'Expand', 'Slice', 'Unsqueeze', 'Squeeze', 'Transpose', 'Identity',
  'Max', 'Min', 'And', 'Or', 'Not', 'Concat', 'Tile',
]);

/**
 * Tensors combined into the attention scores before a Softmax that carry no weights (masks,
 * biases): walking back from each Softmax input through elementwise and reshaping ops, every
 * operand whose values do not come from a weighted op.
 */
export function maskCandidates(index: GraphIndex, st: Structure, limit = 8): { tensor: string; softmax: number }[] {
  const out: { tensor: string; softmax: number }[] = [];
  const seenT = new Set<string>();
  const sideMemo = new Map<string, boolean>();
  const isSide = (t: string): boolean => {
    let r = sideMemo.get(t);
    if (r === undefined) {
      r = ![...index.dataAncestorNodes(t)].some((n) => st.isWeightedNode(n) || isTableLookup(index, st, n));
      sideMemo.set(t, r);
    }
    return r;
  };
  index.nodes.forEach((node, s) => {
    if (out.length >= limit || node.opType !== 'Softmax' || !node.input[0]) return;
    const queue: [string, number][] = [[node.input[0], 0]];
    const visited = new Set<string>();
    while (queue.length && out.length < limit) {
      const [t, depth] = queue.shift()!;
      if (visited.has(t)) continue;
      visited.add(t);
      const p = index.producer.get(t);
      if (p === undefined || depth > 8) continue;
      const pn = index.nodes[p]!;
      if (!MASK_PATH_OPS.has(pn.opType)) continue;
      for (const inp of pn.input) {
        if (!inp || visited.has(inp)) continue;
        const scalarConst = st.isWeightLike(inp) && (index.dims(inp)?.length ?? 0) < 2;
        if (scalarConst) continue;
        if (isSide(inp)) {
          if (!seenT.has(inp)) {
            seenT.add(inp);
            out.push({ tensor: inp, softmax: s });
          }
        } else queue.push([inp, depth + 1]);
      }
    }
  });
  return out;
}

/** A Gather from a float table of rank ≥ 2 (an embedding lookup): its output is a representation. */
function isTableLookup(index: GraphIndex, st: Structure, n: number): boolean {
  const node = index.nodes[n]!;
  if (node.opType !== 'Gather' || !node.input[0]) return false;
  return st.isWeightLike(node.input[0]) && !isIntegerTensor(index, node.input[0]) && (index.dims(node.input[0])?.length ?? 0) >= 2;
}

/**
 * Evaluates the subgraph that builds each mask candidate, twice on a 6-token sequence with
 * different token ids and a full attention mask. Causal: the value does not change with the
 * ids and its last two axes are T×T with one value on and below the diagonal and another above.
 */
export async function evaluateCausalMask(model: ModelProto, index: GraphIndex, settings: ProbeSettings): Promise<CausalCheck> {
  const fused = fusedCausalAttention(index);
  if (fused) return { causal: true, detail: `fused attention: ${fused}` };
  const st = new Structure(index);
  const cands = maskCandidates(index, st);
  if (cands.length === 0) return { causal: false, detail: 'no mask is combined with the attention scores before a Softmax' };
  const T = 6;
  let results: [ort.InferenceSession.OnnxValueMapType, ort.InferenceSession.OnnxValueMapType];
  try {
    const sub = subModel(model, index, cands.map((c) => c.tensor));
    const subIndex = new GraphIndex(sub.graph!);
    const session = await openSession(sub, settings);
    try {
      results = [
        await session.run(tinyFeeds(sub, subIndex, 1, T, 1)),
        await session.run(tinyFeeds(sub, subIndex, 1, T, 2)),
      ];
    } finally {
      await session.release();
    }
  } catch (e) {
    return { causal: false, detail: `the attention mask could not be evaluated (${(e as Error).message.split('\n')[0]})` };
  }
  for (const c of cands) {
    const a = results[0][c.tensor];
    const b = results[1][c.tensor];
    if (!a || !b) continue;
    const va = numbers(a);
    const vb = numbers(b);
    if (va.length !== vb.length || va.some((x, i) => x !== vb[i])) continue; // depends on the tokens
    const dims = a.dims as readonly number[];
    const tri = triangular(va, dims);
    if (tri) {
      const sm = index.nodes[c.softmax]!;
      return {
        causal: true,
        tensor: c.tensor,
        detail: `evaluated the mask '${c.tensor}' combined with the scores of Softmax ${sm.name || `#${c.softmax}`} on a ${T}-token sequence: ${tri}, the same for other token ids`,
      };
    }
  }
  return { causal: false, detail: `evaluated ${cands.length} mask tensor(s) combined with attention scores on a ${T}-token sequence: none is triangular` };
}

function numbers(t: ort.Tensor): number[] {
  const d = t.data as ArrayLike<number | bigint>;
  const out = new Array<number>(d.length);
  for (let i = 0; i < d.length; i++) out[i] = Number(d[i]);
  return out;
}

/**
 * Describes the pattern when every trailing R×C slab (C ≥ R keys for R queries, the first C − R
 * being earlier context) is causal: one value where key j ≤ query i + (C − R), another elsewhere.
 * The transposed orientation (keys × queries) counts too.
 */
function triangular(v: number[], dims: readonly number[]): string | undefined {
  if (dims.length < 2) return undefined;
  const R = dims[dims.length - 2]!;
  const C = dims[dims.length - 1]!;
  if (Math.min(R, C) < 3) return undefined;
  const slabs = v.length / (R * C);
  for (const lowerOpen of [true, false]) {
    if (lowerOpen ? C < R : R < C) continue;
    const off = lowerOpen ? C - R : R - C;
    let allowed: number | undefined;
    let blocked: number | undefined;
    let ok = true;
    for (let s = 0; s < slabs && ok; s++) {
      for (let i = 0; i < R && ok; i++) {
        for (let j = 0; j < C && ok; j++) {
          const x = v[s * R * C + i * C + j]!;
          const open = lowerOpen ? j - i <= off : i - j <= off;
          if (open) {
            allowed ??= x;
            ok = x === allowed || (Number.isNaN(x) && Number.isNaN(allowed));
          } else {
            blocked ??= x;
            ok = x === blocked || (Number.isNaN(x) && Number.isNaN(blocked));
          }
        }
      }
    }
    if (ok && allowed !== undefined && blocked !== undefined && allowed !== blocked) {
      const ctx = off > 0 ? ` after ${off} context positions` : '';
      return `${lowerOpen ? 'lower' : 'upper'}-triangular${ctx} (${fmt(allowed)} on and ${lowerOpen ? 'below' : 'above'} the diagonal, ${fmt(blocked)} elsewhere)`;
    }
  }
  return undefined;
}

/** Fused attention ops whose semantics say causal: ONNX Attention(is_causal=1), ORT's contrib ops. */
export function fusedCausalAttention(index: GraphIndex): string | undefined {
  for (const node of index.nodes) {
    const a = (name: string) => Number(node.attribute.find((x) => x.name === name)?.i ?? 0);
    const what = `${node.domain ? node.domain + '.' : ''}${node.opType} ${node.name ?? ''}`.trim();
    if ((!node.domain || node.domain === 'ai.onnx') && node.opType === 'Attention' && a('is_causal') === 1) return `${what} has is_causal=1`;
    if (node.domain === 'com.microsoft') {
      if (node.opType === 'Attention' && a('unidirectional') === 1) return `${what} has unidirectional=1`;
      if (node.opType === 'GroupQueryAttention' || node.opType === 'DecoderMaskedMultiHeadAttention' || node.opType === 'DecoderMaskedSelfAttention') {
        return `${what} (causal by definition)`;
      }
    }
  }
  return undefined;
}

function fmt(x: number): string {
  return Number.isInteger(x) ? String(x) : x.toPrecision(3);
}

// ---------------------------------------------------------------------------------------------
// Shapes and the layout of 3-D block outputs

/** Runs the model once exposing `tensors` raw; returns their dims. */
export async function probeDims(model: ModelProto, index: GraphIndex, tensors: string[], feeds: Record<string, ort.Tensor>, settings: ProbeSettings): Promise<Map<string, number[]>> {
  const sub = subModel(model, index, tensors);
  const session = await openSession(sub, settings);
  try {
    const inputs = new Set(session.inputNames);
    const used: Record<string, ort.Tensor> = {};
    for (const [k, v] of Object.entries(feeds)) if (inputs.has(k)) used[k] = v;
    const out = await session.run(used);
    const dims = new Map<string, number[]>();
    for (const t of tensors) if (out[t]) dims.set(t, [...(out[t]!.dims as readonly number[])]);
    for (const v of Object.values(out)) v.dispose?.();
    return dims;
  } finally {
    await session.release();
  }
}

/**
 * Batch-first or sequence-first, from the dims of a 3-D block output seen with batch n and
 * sequence length t (n ≠ t): the axis that has size n is the batch.
 */
export function layoutFromDims(dims: number[], n: number): SequenceLayout | undefined {
  if (dims.length !== 3) return undefined;
  if (dims[0] === n && dims[1] !== n) return 'ntd';
  if (dims[1] === n && dims[0] !== n) return 'tnd';
  return undefined;
}

export const LAYOUT_HELP =
  'set the layout with --layout ntd (batch first, [N, T, d]) or --layout tnd (sequence first, [T, N, d])';
