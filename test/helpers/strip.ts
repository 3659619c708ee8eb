// Strips a model of every name a detector could lean on: node names and metadata emptied, every
// tensor (graph inputs and outputs, initializers, intermediates) renamed to an opaque name in a
// shuffled order. Returns the renaming so expectations can be mapped onto the new names.
import type { GraphProto, ModelProto } from '../../src/engine/onnx/types';
import { Rng } from '../../src/engine/random';

export function stripNames(model: ModelProto, seed = 7): { model: ModelProto; rename: (t: string) => string } {
  const g = model.graph!;
  const names: string[] = [];
  const add = (n: string | undefined) => {
    if (n && !names.includes(n)) names.push(n);
  };
  for (const v of g.input) add(v.name);
  for (const t of g.initializer) add(t.name);
  for (const n of g.node) for (const o of n.output) add(o);
  for (const v of g.output) add(v.name);
  const rng = new Rng(seed);
  const order = names.map((_, i) => i);
  for (let i = order.length - 1; i > 0; i--) {
    const j = Math.floor(rng.next() * (i + 1));
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  const map = new Map<string, string>();
  names.forEach((n, i) => map.set(n, `v${order[i]}`));
  const r = (t: string) => (t ? (map.get(t) ?? t) : t);
  renameGraph(g, r);
  delete model.$wire;
  model.metadataProps = [];
  model.docString = undefined;
  return { model, rename: (t: string) => map.get(t) ?? t };
}

function renameGraph(g: GraphProto, r: (t: string) => string): void {
  delete g.$wire;
  g.name = 'g';
  for (const v of [...g.input, ...g.output, ...g.valueInfo]) {
    delete v.$wire;
    v.name = r(v.name);
    v.docString = undefined;
  }
  for (const t of g.initializer) {
    delete t.$wire;
    t.name = r(t.name ?? '');
  }
  for (const n of g.node) {
    delete n.$wire;
    n.name = '';
    n.docString = undefined;
    n.metadataProps = [];
    n.input = n.input.map(r);
    n.output = n.output.map(r);
    for (const a of n.attribute) for (const sub of [a.g, ...a.graphs]) if (sub) renameGraph(sub, r);
  }
}
