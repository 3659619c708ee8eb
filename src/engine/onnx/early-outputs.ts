// Appended outputs that run early. ONNX Runtime's default execution order does not run a node
// as soon as its inputs are ready: nodes appended to a model that only feed new graph outputs
// (the pooling and row gathers of an instrumented model) run after the model's own nodes, so
// every block output they read stays alive until the end. For a ViT-small at batch 32 that is all
// 13 block outputs at once (~130 MB, ~+200 MB of arena), and reordering the node list does not
// change ONNX Runtime's order. A data dependency does: the last original consumer of such a
// tensor h reads it through
//   h' = Reshape(h, Shape(h) + 0·Σ Size(output))
// a Reshape that aliases h (no copy) and whose shape is exactly h's, but which cannot run before
// the outputs computed from h exist. Integer arithmetic only, so h' is bit-identical to h for any
// values (NaN and Inf included).
import { makeNode, makeTensor } from './builder.js';
import { DataType, type GraphProto, type NodeProto } from './types.js';

const PREFIX = 'blocklens::early::';

/**
 * `graph` with its appended nodes (those from index `originalNodes` on) tied to run before the
 * last original consumer of the one original tensor they read. Appended outputs that read
 * several original tensors (in-graph Gram matrices across blocks) are left as they are: tying
 * them in could create a cycle. `tie` picks the outputs to consider (default all). Returns the
 * graph unchanged when there is nothing to tie.
 */
export function runAppendedEarly(graph: GraphProto, originalNodes: number, tie: (output: string) => boolean = () => true): GraphProto {
  const orig = graph.node.slice(0, originalNodes);
  const added = graph.node.slice(originalNodes);
  if (!added.length) return graph;
  const origProduced = new Set<string>();
  for (const n of orig) for (const o of n.output) if (o) origProduced.add(o);
  const addedBy = new Map<string, NodeProto>();
  for (const n of added) for (const o of n.output) if (o) addedBy.set(o, n);
  // Original tensors each appended tensor is computed from (graph inputs and initializers are
  // always available and do not count).
  const sources = new Map<string, Set<string>>();
  const sourcesOf = (t: string, depth = 0): Set<string> => {
    const hit = sources.get(t);
    if (hit) return hit;
    const s = new Set<string>();
    const n = addedBy.get(t);
    if (n && depth < 10_000) {
      for (const i of n.input) {
        if (!i) continue;
        if (addedBy.has(i)) for (const x of sourcesOf(i, depth + 1)) s.add(x);
        else if (origProduced.has(i)) s.add(i);
      }
    }
    sources.set(t, s);
    return s;
  };
  const leaves = new Map<string, string[]>();
  for (const o of graph.output) {
    if (!addedBy.has(o.name) || !tie(o.name)) continue;
    const s = sourcesOf(o.name);
    if (s.size !== 1) continue;
    const h = [...s][0]!;
    leaves.set(h, [...(leaves.get(h) ?? []), o.name]);
  }
  if (!leaves.size) return graph;
  const nodes = orig.map((n) => ({ ...n, input: [...n.input] }));
  const extra: NodeProto[] = [];
  const zero = `${PREFIX}zero`;
  let k = 0;
  for (const [h, outs] of leaves) {
    let last = -1;
    nodes.forEach((n, i) => {
      if (n.input.includes(h)) last = i;
    });
    if (last < 0) continue;
    const id = k++;
    const name = (s: string) => `${PREFIX}${id}_${s}`;
    let acc: string | undefined;
    outs.forEach((o, j) => {
      const size = name(`size${j}`);
      extra.push(makeNode('Size', [o], [size], [], name(`Size${j}`)));
      if (acc === undefined) acc = size;
      else {
        const sum = name(`sum${j}`);
        extra.push(makeNode('Add', [acc, size], [sum], [], name(`Add${j}`)));
        acc = sum;
      }
    });
    const z = name('zero');
    const shape = name('shape');
    const tied = name('shape_tied');
    const alias = name('h');
    extra.push(
      makeNode('Mul', [acc!, zero], [z], [], name('Mul')),
      makeNode('Shape', [h], [shape], [], name('Shape')),
      makeNode('Add', [shape, z], [tied], [], name('AddShape')),
      makeNode('Reshape', [h, tied], [alias], [], name('Reshape')),
    );
    const consumer = nodes[last]!;
    consumer.input = consumer.input.map((x) => (x === h ? alias : x));
  }
  if (!extra.length) return graph;
  return {
    ...graph,
    node: [...nodes, ...added, ...extra],
    initializer: [...graph.initializer, makeTensor(zero, DataType.INT64, [], BigInt64Array.of(0n))],
  };
}
