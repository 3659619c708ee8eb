// Read-only lookups over a GraphProto: who produces and who consumes each tensor, scopes,
// ancestry. Built once per analysis; node positions are the graph's (topological) order.
import type { GraphProto, NodeProto, TypeProto } from '../onnx/types.js';

export interface TensorTypeInfo {
  elemType?: number;
  /** Declared dims: number, symbolic name, or null when unknown. Undefined when rank is unknown. */
  dims?: (number | string | null)[];
}

/** Ops that read only their input's shape, never its values. */
export const SHAPE_ONLY_OPS = new Set(['Shape', 'Size']);

export class GraphIndex {
  readonly nodes: NodeProto[];
  /** tensor name → index of the node that produces it */
  readonly producer = new Map<string, number>();
  /** tensor name → indices of consumer nodes (in node order, may repeat-free) */
  readonly consumers = new Map<string, number[]>();
  readonly initializers = new Set<string>();
  readonly graphInputs: string[];
  readonly graphOutputs: string[];
  readonly types = new Map<string, TensorTypeInfo>();

  constructor(readonly graph: GraphProto) {
    this.nodes = graph.node;
    for (const t of graph.initializer) if (t.name) this.initializers.add(t.name);
    this.graphInputs = graph.input.map((v) => v.name).filter((n) => !this.initializers.has(n));
    this.graphOutputs = graph.output.map((v) => v.name);
    for (const vi of [...graph.input, ...graph.output, ...graph.valueInfo]) {
      const info = typeInfo(vi.type);
      if (info) this.types.set(vi.name, info);
    }
    for (const t of graph.initializer) {
      if (t.name) this.types.set(t.name, { elemType: t.dataType, dims: t.dims.map(Number) });
    }
    this.nodes.forEach((node, i) => {
      for (const out of node.output) if (out) this.producer.set(out, i);
      const seen = new Set<string>();
      for (const inp of node.input) {
        if (!inp || seen.has(inp)) continue;
        seen.add(inp);
        let list = this.consumers.get(inp);
        if (!list) this.consumers.set(inp, (list = []));
        list.push(i);
      }
      // Subgraphs (If/Loop/Scan bodies) may read outer-scope tensors by name.
      for (const attr of node.attribute) {
        for (const g of [attr.g, ...attr.graphs]) {
          if (!g) continue;
          for (const name of outerReferences(g)) {
            if (seen.has(name)) continue;
            seen.add(name);
            let list = this.consumers.get(name);
            if (!list) this.consumers.set(name, (list = []));
            list.push(i);
          }
        }
      }
    });
  }

  /** Node inputs that nothing provides: no node output, graph input or initializer. */
  danglingInputs(): { node: string; tensor: string }[] {
    const provided = new Set<string>([...this.initializers, ...this.graph.input.map((v) => v.name), ...this.producer.keys()]);
    const out: { node: string; tensor: string }[] = [];
    this.nodes.forEach((n, i) => {
      for (const inp of n.input) if (inp && !provided.has(inp)) out.push({ node: n.name || `#${i} (${n.opType})`, tensor: inp });
    });
    return out;
  }

  /** True if the tensor is a weight or a constant: an initializer or produced by a Constant node. */
  isConstant(name: string): boolean {
    if (this.initializers.has(name)) return true;
    const p = this.producer.get(name);
    return p !== undefined && this.nodes[p]!.opType === 'Constant' && !this.nodes[p]!.domain;
  }

  /** Whether the tensor exists in the graph (input, initializer or node output). */
  has(name: string): boolean {
    return this.producer.has(name) || this.initializers.has(name) || this.graphInputs.includes(name);
  }

  /** Position in topological order at which the tensor becomes available (−1 for inputs/weights). */
  position(name: string): number {
    return this.producer.get(name) ?? -1;
  }

  /** Set of node indices that (transitively) feed `tensor`, bounded by `limit` visits. */
  ancestorNodes(tensor: string, limit = Infinity): Set<number> {
    const seen = new Set<number>();
    const stack: string[] = [tensor];
    while (stack.length && seen.size < limit) {
      const t = stack.pop()!;
      const p = this.producer.get(t);
      if (p === undefined || seen.has(p)) continue;
      seen.add(p);
      for (const inp of this.nodes[p]!.input) if (inp) stack.push(inp);
    }
    return seen;
  }

  /** True if `ancestor` is (transitively) an input of `tensor`. */
  dependsOn(tensor: string, ancestor: string): boolean {
    return this.reaches(tensor, ancestor, false);
  }

  /**
   * Like dependsOn, but only through values: a path through `Shape`/`Size` (which read only a
   * tensor's shape) does not count. Masks and position tables built from a tensor's shape do not
   * depend on it.
   */
  dataDependsOn(tensor: string, ancestor: string): boolean {
    return this.reaches(tensor, ancestor, true);
  }

  private reaches(tensor: string, ancestor: string, valuesOnly: boolean): boolean {
    if (tensor === ancestor) return true;
    const stop = this.position(ancestor);
    const seen = new Set<string>();
    const stack = [tensor];
    while (stack.length) {
      const t = stack.pop()!;
      if (t === ancestor) return true;
      if (seen.has(t)) continue;
      seen.add(t);
      const p = this.producer.get(t);
      // Nodes are topologically ordered: nothing before the ancestor's producer can depend on it.
      if (p === undefined || p < stop) continue;
      const node = this.nodes[p]!;
      if (valuesOnly && SHAPE_ONLY_OPS.has(node.opType)) continue;
      for (const inp of node.input) if (inp) stack.push(inp);
    }
    return false;
  }

  /** Nodes that read `tensor`'s values, transitively (not through Shape/Size), up to node `maxPos`. */
  dataDescendantNodes(tensor: string, maxPos = Infinity): Set<number> {
    const seen = new Set<number>();
    const stack = [tensor];
    const visited = new Set<string>();
    while (stack.length) {
      const t = stack.pop()!;
      if (visited.has(t)) continue;
      visited.add(t);
      for (const c of this.consumers.get(t) ?? []) {
        if (c > maxPos || seen.has(c)) continue;
        const node = this.nodes[c]!;
        if (SHAPE_ONLY_OPS.has(node.opType)) continue;
        seen.add(c);
        for (const o of node.output) if (o) stack.push(o);
      }
    }
    return seen;
  }

  /** Ancestor nodes of `tensor` through values only (Shape/Size nodes are kept but not crossed). */
  dataAncestorNodes(tensor: string, minPos = -1): Set<number> {
    const seen = new Set<number>();
    const stack: string[] = [tensor];
    while (stack.length) {
      const t = stack.pop()!;
      const p = this.producer.get(t);
      if (p === undefined || p <= minPos || seen.has(p)) continue;
      seen.add(p);
      const node = this.nodes[p]!;
      if (SHAPE_ONLY_OPS.has(node.opType)) continue;
      for (const inp of node.input) if (inp) stack.push(inp);
    }
    return seen;
  }

  /** Static dims of a tensor from value_info / graph inputs / initializers, if declared. */
  dims(name: string): (number | string | null)[] | undefined {
    return this.types.get(name)?.dims;
  }

  rank(name: string): number | undefined {
    return this.types.get(name)?.dims?.length;
  }
}

function typeInfo(type: TypeProto | undefined): TensorTypeInfo | undefined {
  const tt = type?.tensorType;
  if (!tt) return undefined;
  const info: TensorTypeInfo = { elemType: tt.elemType };
  if (tt.shape) {
    info.dims = tt.shape.dim.map((d) =>
      d.dimValue !== undefined ? Number(d.dimValue) : d.dimParam ? d.dimParam : null,
    );
  }
  return info;
}

/** Names a subgraph reads that it does not define itself (outer-scope references). */
function outerReferences(g: GraphProto): string[] {
  const defined = new Set<string>();
  for (const v of g.input) defined.add(v.name);
  for (const t of g.initializer) if (t.name) defined.add(t.name);
  const refs: string[] = [];
  for (const n of g.node) {
    for (const inp of n.input) if (inp && !defined.has(inp)) refs.push(inp);
    for (const out of n.output) defined.add(out);
    for (const a of n.attribute) for (const sub of [a.g, ...a.graphs]) if (sub) refs.push(...outerReferences(sub));
  }
  return refs;
}
