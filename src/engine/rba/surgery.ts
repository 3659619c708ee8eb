// RBA surgery: replace blocks i+1..j by a linear map from h_i to h_j.
//
// Three moves (STYLE: graph-surgeon), keeping every field not touched:
//  1. rewire: the map's last node produces h_j under its own name, and the old producer's
//     output is renamed to a dead name, so every consumer of h_j (in the next block's scope,
//     graph outputs, subgraphs reading it from the outer scope) reads the map's result;
//  2. clean up: nodes that no graph output depends on any more are removed, walking back from
//     the outputs, never by name prefix (exporters leave tensors later blocks need, such as
//     position tables, masks or CSE'd subexpressions, inside an earlier block's scope); then
//     unused initializers and value_info go;
//  3. re-sort topologically, keeping the original order where it is free.
// The model's `$wire` (unknown fields: model-local functions, training info, …) is kept.
import { attr, makeNode, makeTensor, opsetVersion } from '../onnx/builder.js';
import { DataType, type GraphProto, type ModelProto, type NodeProto, type TensorProto } from '../onnx/types.js';
import type { SpanMap } from './fit.js';

export class RbaSurgeryError extends Error {}

export interface SpanReplacement {
  map: SpanMap;
  /** Tensor h_i. */
  input: string;
  /** Tensor h_j. */
  output: string;
  /** Rank of h_i / h_j (2, 3 or 4). */
  rank: number;
  /** ONNX element type of h_i (FLOAT, FLOAT16, DOUBLE, BFLOAT16): the weights use it too. */
  elemType: number;
}

const WEIGHT_TYPES = new Set<number>([DataType.FLOAT, DataType.FLOAT16, DataType.DOUBLE]);

/** Names a subgraph reads that it does not define itself. */
function outerReferences(g: GraphProto): string[] {
  const defined = new Set<string>();
  for (const v of g.input) defined.add(v.name);
  for (const t of g.initializer) if (t.name) defined.add(t.name);
  const refs: string[] = [];
  for (const n of g.node) {
    for (const out of n.output) defined.add(out);
  }
  for (const n of g.node) {
    for (const inp of n.input) if (inp && !defined.has(inp)) refs.push(inp);
    for (const a of n.attribute) for (const sub of [a.g, ...a.graphs]) if (sub) refs.push(...outerReferences(sub).filter((r) => !defined.has(r)));
  }
  return refs;
}

/** Every tensor a node reads, including outer-scope names its subgraphs read. */
function nodeReads(n: NodeProto): string[] {
  const reads = n.input.filter(Boolean);
  for (const a of n.attribute) for (const g of [a.g, ...a.graphs]) if (g) reads.push(...outerReferences(g));
  return reads;
}

/** Nodes the graph outputs depend on (indices), walking back from the outputs. */
export function liveNodes(graph: GraphProto): Set<number> {
  const producer = new Map<string, number>();
  graph.node.forEach((n, k) => n.output.forEach((o) => o && producer.set(o, k)));
  const live = new Set<number>();
  const stack = graph.output.map((o) => o.name);
  const seen = new Set<string>();
  while (stack.length) {
    const t = stack.pop()!;
    if (seen.has(t)) continue;
    seen.add(t);
    const p = producer.get(t);
    if (p === undefined || live.has(p)) continue;
    live.add(p);
    stack.push(...nodeReads(graph.node[p]!));
  }
  return live;
}

/**
 * Topological order, stable: among ready nodes the one with the smallest key goes first
 * (original positions; new nodes carry fractional keys right after their input's producer).
 */
export function topoSort(nodes: NodeProto[], keys: number[], available: Set<string>): NodeProto[] {
  const producer = new Map<string, number>();
  nodes.forEach((n, k) => n.output.forEach((o) => o && producer.set(o, k)));
  const waiting = new Array<number>(nodes.length).fill(0);
  const dependents: number[][] = nodes.map(() => []);
  nodes.forEach((n, k) => {
    const deps = new Set<number>();
    for (const t of nodeReads(n)) {
      const p = producer.get(t);
      if (p !== undefined && p !== k && !available.has(t)) deps.add(p);
    }
    waiting[k] = deps.size;
    for (const p of deps) dependents[p]!.push(k);
  });
  // A small binary heap on keys.
  const heap: number[] = [];
  const less = (a: number, b: number) => keys[a]! < keys[b]! || (keys[a] === keys[b] && a < b);
  const push = (k: number) => {
    heap.push(k);
    let c = heap.length - 1;
    while (c > 0) {
      const p = (c - 1) >> 1;
      if (!less(heap[c]!, heap[p]!)) break;
      [heap[c], heap[p]] = [heap[p]!, heap[c]!];
      c = p;
    }
  };
  const pop = (): number => {
    const top = heap[0]!;
    const last = heap.pop()!;
    if (heap.length) {
      heap[0] = last;
      let p = 0;
      for (;;) {
        const l = 2 * p + 1;
        const r = l + 1;
        let m = p;
        if (l < heap.length && less(heap[l]!, heap[m]!)) m = l;
        if (r < heap.length && less(heap[r]!, heap[m]!)) m = r;
        if (m === p) break;
        [heap[m], heap[p]] = [heap[p]!, heap[m]!];
        p = m;
      }
    }
    return top;
  };
  waiting.forEach((w, k) => w === 0 && push(k));
  const out: NodeProto[] = [];
  while (heap.length) {
    const k = pop();
    out.push(nodes[k]!);
    for (const d of dependents[k]!) if (--waiting[d]! === 0) push(d);
  }
  if (out.length !== nodes.length) throw new RbaSurgeryError('the edited graph has a cycle (does the span end depend on its start?)');
  return out;
}

function weightTensor(name: string, elemType: number, dims: number[], data: Float64Array): TensorProto {
  return makeTensor(name, elemType as DataType, dims, data);
}

/** The nodes and weights of one replacement; the last node writes `rep.output`. */
function replacementNodes(rep: SpanReplacement, tag: string, opset: number): { nodes: NodeProto[]; inits: TensorProto[] } {
  const { map, input, output, rank, elemType } = rep;
  const { dIn, dOut } = map;
  const nodes: NodeProto[] = [];
  const inits: TensorProto[] = [];
  const t = (s: string) => `${tag}/${s}`;
  if (map.method === 'skip') {
    nodes.push(makeNode('Identity', [input], [output], [], t('Identity')));
    return { nodes, inits };
  }
  // Weight rows 0..dIn−1 and the bias row of a (dIn+1)×cols matrix.
  const split = (w: Float64Array, cols: number) => ({ m: w.subarray(0, dIn * cols), b: w.subarray(dIn * cols, (dIn + 1) * cols) });
  const affine = (x: string, w: Float64Array, cols: number, out: string, name: string): void => {
    const { m, b } = split(w, cols);
    if (rank === 4) {
      // 1×1 convolution: weight [cols, dIn, 1, 1] = mᵀ.
      const k = new Float64Array(cols * dIn);
      for (let a = 0; a < dIn; a++) for (let c = 0; c < cols; c++) k[c * dIn + a] = m[a * cols + c]!;
      inits.push(weightTensor(t(`${name}.weight`), elemType, [cols, dIn, 1, 1], k), weightTensor(t(`${name}.bias`), elemType, [cols], b));
      nodes.push(makeNode('Conv', [x, t(`${name}.weight`), t(`${name}.bias`)], [out], [attr.ints('kernel_shape', [1, 1])], t(`${name}/Conv`)));
      return;
    }
    inits.push(weightTensor(t(`${name}.weight`), elemType, [dIn, cols], m), weightTensor(t(`${name}.bias`), elemType, [cols], b));
    const mm = t(`${name}/MatMul_output_0`);
    nodes.push(makeNode('MatMul', [x, t(`${name}.weight`)], [mm], [], t(`${name}/MatMul`)));
    // Before opset 7, Add broadcasts only with broadcast=1.
    nodes.push(makeNode('Add', [mm, t(`${name}.bias`)], [out], opset > 0 && opset < 7 ? [attr.int('broadcast', 1)] : [], t(`${name}/Add`)));
  };
  if (map.method === 'linear' || !map.lowrank) {
    affine(input, map.weight, dOut, output, 'map');
    return { nodes, inits };
  }
  // Low rank: z = [x,1]·A (affine, r columns), then z·B (no bias), plus x when residual.
  const { rank: r, a, b, residual } = map.lowrank;
  const z = t('down_output_0');
  affine(input, a, r, z, 'down');
  const up = residual ? t('up_output_0') : output;
  if (rank === 4) {
    const k = new Float64Array(dOut * r);
    for (let p = 0; p < r; p++) for (let c = 0; c < dOut; c++) k[c * r + p] = b[p * dOut + c]!;
    inits.push(weightTensor(t('up.weight'), elemType, [dOut, r, 1, 1], k));
    nodes.push(makeNode('Conv', [z, t('up.weight')], [up], [attr.ints('kernel_shape', [1, 1])], t('up/Conv')));
  } else {
    inits.push(weightTensor(t('up.weight'), elemType, [r, dOut], b));
    nodes.push(makeNode('MatMul', [z, t('up.weight')], [up], [], t('up/MatMul')));
  }
  if (residual) nodes.push(makeNode('Add', [input, up], [output], [], t('residual/Add')));
  return { nodes, inits };
}

export interface SurgeryResult {
  model: ModelProto;
  removedNodes: number;
  addedNodes: number;
  removedInitializers: number;
}

/**
 * Returns a new model with each span replaced. Spans must not overlap. The input model is not
 * modified.
 */
export function replaceSpans(model: ModelProto, reps: SpanReplacement[]): SurgeryResult {
  const graph = model.graph;
  if (!graph) throw new RbaSurgeryError('the model has no graph');
  const opset = opsetVersion(model, '') ?? 0;
  const sorted = [...reps].sort((a, b) => a.map.from - b.map.from);
  for (let k = 1; k < sorted.length; k++) {
    const p = sorted[k - 1]!.map;
    const c = sorted[k]!.map;
    if (c.from < p.to) throw new RbaSurgeryError(`spans ${p.from}→${p.to} and ${c.from}→${c.to} overlap`);
  }
  for (const r of reps) {
    if (!WEIGHT_TYPES.has(r.elemType)) throw new RbaSurgeryError(`block output '${r.input}' has element type ${r.elemType}; RBA maps float, float16 or double tensors`);
  }
  const liveBefore = liveNodes(graph);
  const producer = new Map<string, number>();
  graph.node.forEach((n, k) => n.output.forEach((o) => o && producer.set(o, k)));
  const inputs = new Set([...graph.input.map((v) => v.name), ...graph.initializer.map((t) => t.name ?? '')]);
  const taken = new Set<string>([...producer.keys(), ...inputs]);
  const fresh = (base: string): string => {
    let name = base;
    for (let k = 1; taken.has(name); k++) name = `${base}_${k}`;
    taken.add(name);
    return name;
  };

  // 1. Rewire: old producers of h_j write a dead name; new nodes write h_j.
  const nodes: NodeProto[] = graph.node.map((n) => n);
  const keys: number[] = graph.node.map((_, k) => k);
  const newInits: TensorProto[] = [];
  let added = 0;
  for (const rep of sorted) {
    const p = producer.get(rep.output);
    if (p === undefined) {
      throw new RbaSurgeryError(`block output '${rep.output}' is a graph input or weight, not computed by the blocks; it cannot be replaced`);
    }
    const old = nodes[p]!;
    nodes[p] = { ...old, output: old.output.map((o) => (o === rep.output ? fresh(`${o}::blocklens_replaced`) : o)) };
    const tag = fresh(`/blocklens_rba/span_${rep.map.from < 0 ? 'in' : rep.map.from}_${rep.map.to}`);
    const { nodes: ns, inits } = replacementNodes(rep, tag, opset);
    const replacementOutputs = ns.map((n) => n.output[0]);
    // New names must not clash with the model's; nodes follow any renaming.
    const renamed = new Map<string, string>();
    for (const init of inits) {
      const name = fresh(init.name!);
      if (name !== init.name) renamed.set(init.name!, name);
      init.name = name;
    }
    for (const n of ns) {
      n.input = n.input.map((i) => renamed.get(i) ?? i);
      n.output = n.output.map((o) => (o === rep.output ? o : fresh(o)));
    }
    for (let k = 0; k < ns.length; k++) {
      // Intermediate outputs may have been renamed: rewire the later nodes of this replacement.
      const orig = replacementOutputs[k];
      if (orig && orig !== ns[k]!.output[0]) for (const m of ns) m.input = m.input.map((i) => (i === orig ? ns[k]!.output[0]! : i));
    }
    const at = producer.get(rep.input);
    const base = at === undefined ? -1 : at;
    ns.forEach((n, k) => {
      nodes.push(n);
      keys.push(base + (k + 1) / (ns.length + 1));
    });
    newInits.push(...inits);
    added += ns.length;
  }

  // 2. Clean up from the outputs. Nodes that were already dead stay unless they read a removed tensor.
  const edited: GraphProto = { ...graph, node: nodes };
  const liveAfter = liveNodes(edited);
  const keep: number[] = [];
  const removedOutputs = new Set<string>();
  nodes.forEach((n, k) => {
    const wasLive = k < graph.node.length ? liveBefore.has(k) : true;
    if (liveAfter.has(k) || !wasLive) keep.push(k);
    else n.output.forEach((o) => o && removedOutputs.add(o));
  });
  // Previously dead nodes that now read a removed tensor go too (repeat until stable).
  let kept = keep;
  for (let changed = true; changed; ) {
    changed = false;
    const next: number[] = [];
    for (const k of kept) {
      const n = nodes[k]!;
      if (!liveAfter.has(k) && nodeReads(n).some((t) => removedOutputs.has(t))) {
        n.output.forEach((o) => o && removedOutputs.add(o));
        changed = true;
      } else next.push(k);
    }
    kept = next;
  }
  const finalNodes = kept.map((k) => nodes[k]!);
  const finalKeys = kept.map((k) => keys[k]!);
  const read = new Set<string>();
  for (const n of finalNodes) for (const t of nodeReads(n)) read.add(t);
  for (const o of graph.output) read.add(o.name);
  const initializer = [...graph.initializer, ...newInits].filter((t) => read.has(t.name ?? ''));
  const removedInitializers = graph.initializer.length + newInits.length - initializer.length;
  const initNames = new Set(initializer.map((t) => t.name ?? ''));
  const allInitNames = new Set(graph.initializer.map((t) => t.name ?? ''));
  // Graph inputs stay (the feeding contract), except initializer-backed inputs (IR < 4) whose initializer went.
  const input = graph.input.filter((v) => !allInitNames.has(v.name) || initNames.has(v.name));
  const produced = new Set<string>();
  for (const n of finalNodes) for (const o of n.output) if (o) produced.add(o);
  const valueInfo = graph.valueInfo.filter((v) => produced.has(v.name) || initNames.has(v.name) || input.some((i) => i.name === v.name));
  const sparseInitializer = graph.sparseInitializer.filter((s) => read.has(s.values?.name ?? ''));

  // 3. Re-sort.
  const available = new Set([...input.map((v) => v.name), ...initNames]);
  const ordered = topoSort(finalNodes, finalKeys, available);

  const newGraph: GraphProto = { ...graph, node: ordered, initializer, input, valueInfo, sparseInitializer };
  const out: ModelProto = { ...model, graph: newGraph };
  return {
    model: out,
    removedNodes: graph.node.length + added - finalNodes.length,
    addedNodes: added,
    removedInitializers,
  };
}
