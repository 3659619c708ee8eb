// Structural checks of a decoded graph that every consumer relies on (ONNX IR spec, "Graphs":
// names are single-assignment, nodes form a DAG, graph outputs are produced, operator domains are
// imported). Run when a model is loaded, so that a broken file is refused with one clear message
// naming the problem, not left to a detector's assumptions or a runtime's internal error text.
import { tensorByteLength, tensorElementCount } from './tensor-data.js';
import type { GraphProto, ModelProto, TensorProto } from './types.js';

/** What is wrong with an initializer's size or inline data, if anything. */
export function initializerProblem(t: TensorProto): string | undefined {
  const name = `initializer '${t.name ?? ''}'`;
  const dims = t.dims.length ? t.dims.join('×') : 'scalar';
  if (t.dims.some((d) => d < 0n)) return `${name} has a negative dimension (${dims})`;
  const count = tensorElementCount(t);
  if (!Number.isSafeInteger(count)) return `${name} declares ${dims} elements, more than any model can hold`;
  if (t.dataLocation === 1 || t.segment !== undefined) return undefined; // external: checked against its file
  const bytes = tensorByteLength(t);
  if (t.rawData !== undefined) {
    if (bytes !== undefined && t.rawData.length !== bytes) return `${name} holds ${t.rawData.length} bytes of data, but its type and dims (${dims}) need ${bytes}`;
    return undefined;
  }
  if (bytes === undefined || t.dataType === 8) return undefined; // strings: one entry per element, any length
  const stored = t.floatData.length + t.doubleData.length + t.int64Data.length + t.uint64Data.length + t.int32Data.length;
  // Complex values take two entries, 4-bit types pack two per entry: allow both.
  if (count > 0 && (stored === 0 || stored > 2 * count || 2 * stored < count)) return `${name} holds ${stored} values, but its dims (${dims}) need ${count}`;
  return undefined;
}

export interface GraphProblem {
  message: string;
}

const label = (g: GraphProto, i: number): string => {
  const n = g.node[i]!;
  return n.name ? `'${n.name}'` : `#${i} (${n.opType || 'no op type'})`;
};

/** The first structural problem of the model's main graph, or undefined when there is none. */
export function graphProblem(model: ModelProto): string | undefined {
  const g = model.graph;
  if (g === undefined) return undefined;
  const producer = new Map<string, number>();
  const external = new Set<string>();
  for (const v of g.input) external.add(v.name);
  const initNames = new Set<string>();
  for (const t of g.initializer) {
    if (!t.name) return 'an initializer has no name';
    if (initNames.has(t.name)) return `initializer '${t.name}' appears more than once`;
    initNames.add(t.name);
    external.add(t.name);
    const bad = initializerProblem(t);
    if (bad !== undefined) return bad;
  }

  const imported = new Set(model.opsetImport.map((o) => (o.domain === 'ai.onnx' ? '' : o.domain)));
  for (const o of model.opsetImport) {
    // ai.onnx opsets run 1..~25 (2025); anything far outside is corruption, not a newer ONNX.
    if ((o.domain === '' || o.domain === 'ai.onnx') && (o.version < 1n || o.version > 100n)) {
      return `the model imports ai.onnx opset ${o.version}, which does not exist`;
    }
  }
  for (let i = 0; i < g.node.length; i++) {
    const n = g.node[i]!;
    if (!n.opType) return `node ${label(g, i)} has no op type`;
    const domain = n.domain === 'ai.onnx' ? '' : (n.domain ?? '');
    if (!imported.has(domain)) {
      return `node ${label(g, i)} (${n.opType}) uses operator domain '${domain || 'ai.onnx'}', which the model does not import (opset_import)`;
    }
    for (const out of n.output) {
      if (!out) continue;
      const prev = producer.get(out);
      if (prev !== undefined) return `tensor '${out}' is produced by two nodes, ${label(g, prev)} and ${label(g, i)} (ONNX names are assigned once)`;
      if (external.has(out)) return `node ${label(g, i)} writes '${out}', which is already a graph input or initializer`;
      producer.set(out, i);
    }
  }

  // Cycles: Kahn's algorithm over the node → node edges of explicit inputs.
  const indegree = new Array<number>(g.node.length).fill(0);
  const consumers: number[][] = g.node.map(() => []);
  g.node.forEach((n, i) => {
    const seen = new Set<number>();
    for (const inp of n.input) {
      const p = inp ? producer.get(inp) : undefined;
      if (p === undefined || seen.has(p)) continue;
      seen.add(p);
      indegree[i]!++;
      consumers[p]!.push(i);
    }
  });
  const ready: number[] = [];
  indegree.forEach((d, i) => d === 0 && ready.push(i));
  let sorted = 0;
  while (ready.length) {
    const i = ready.pop()!;
    sorted++;
    for (const c of consumers[i]!) if (--indegree[c]! === 0) ready.push(c);
  }
  if (sorted < g.node.length) {
    const cycle = findCycle(g, producer, indegree).map((i) => label(g, i));
    const shown = cycle.length > 6 ? [...cycle.slice(0, 3), '…', ...cycle.slice(-2)] : cycle;
    return `the graph has a cycle: ${[...shown, cycle[0]].join(' → ')} (an ONNX graph must be acyclic)`;
  }

  for (const o of g.output) {
    if (!o.name) return 'a graph output has no name';
    if (!producer.has(o.name) && !external.has(o.name)) return `graph output '${o.name}' is not produced by any node, input or initializer`;
  }
  return undefined;
}

/** Node indices along one cycle among the nodes Kahn's algorithm could not sort. */
function findCycle(g: GraphProto, producer: Map<string, number>, indegree: number[]): number[] {
  // Walk backwards through unsorted producers: in a finite set, the walk must revisit a node.
  let i = indegree.findIndex((d) => d > 0);
  const seenAt = new Map<number, number>();
  const path: number[] = [];
  while (!seenAt.has(i)) {
    seenAt.set(i, path.length);
    path.push(i);
    const next = g.node[i]!.input.map((t) => (t ? producer.get(t) : undefined)).find((p) => p !== undefined && indegree[p]! > 0);
    if (next === undefined) break;
    i = next;
  }
  return path.slice(seenAt.get(i) ?? 0).reverse();
}
