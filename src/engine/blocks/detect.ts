// Block detection (DESIGN §2): which tensors are the residual-stream outputs h_0..h_{L−1} of
// the model's repeated units, and which tensor is block 0's input h_{−1}.
//
// Routes, in order:
//  1. scoped names: module scopes that repeat with an index (`/encoder/layer.3/…`, `/h.3/…`,
//     `/layer1.0/…`, `model/layer_3/…`, or torch's `pkg.torch.onnx.name_scopes` metadata);
//  2. the chain of residual `Add` nodes;
//  3. the user's list of tensors (always wins when given).
import type { ModelProto, NodeProto } from '../onnx/types.js';
import type { DetectionMethod } from '../report/schema.js';
import { GraphIndex } from './graph-index.js';

export interface DetectedBlock {
  index: number;
  name: string;
  output: string;
  /** Node indices that belong to the block (empty for user-named blocks). */
  nodes: number[];
  parameters: number;
}

export interface BlockDetection {
  method: DetectionMethod;
  blocks: DetectedBlock[];
  /** h_{−1}: the tensor block 0 reads as its main input; null when it cannot be told. */
  blockInput: string | null;
  explanation: string;
  warnings: string[];
}

export class BlockDetectionError extends Error {}

export interface DetectOptions {
  /** User override: block output tensor names, in order. */
  blocks?: string[];
  /** User override for h_{−1}. */
  blockInput?: string;
}

/** Ops whose outputs are shapes, indices or constants, never a representation. */
const NON_REPRESENTATION_OPS = new Set([
  'Shape', 'Size', 'Constant', 'ConstantOfShape', 'Range', 'NonZero', 'ArgMax', 'ArgMin',
  'Equal', 'Less', 'Greater', 'LessOrEqual', 'GreaterOrEqual', 'Not', 'And', 'Or', 'Xor',
  'Trilu', 'EyeLike',
]);

export function detectBlocks(model: ModelProto, opts: DetectOptions = {}): BlockDetection {
  const graph = model.graph;
  if (!graph) throw new BlockDetectionError('the model has no graph');
  if (graph.node.length === 0) throw new BlockDetectionError('the model graph has no nodes');
  const index = new GraphIndex(graph);
  const dangling = index.danglingInputs();
  if (dangling.length) {
    const d = dangling[0]!;
    throw new BlockDetectionError(
      `invalid graph: node '${d.node}' reads tensor '${d.tensor}', which no node, graph input or initializer provides` +
        (dangling.length > 1 ? ` (and ${dangling.length - 1} more)` : ''),
    );
  }
  if (opts.blocks && opts.blocks.length > 0) return fromUser(index, opts.blocks, opts.blockInput);

  const scoped = fromScopedNames(index);
  const routeWarnings: string[] = [];
  if (scoped.result) return withInputOverride(index, scoped.result, opts.blockInput);
  if (scoped.why) routeWarnings.push(scoped.why);

  const residual = fromResidualAdds(index);
  if (residual) {
    residual.warnings.unshift(...routeWarnings);
    return withInputOverride(index, residual, opts.blockInput);
  }
  throw new BlockDetectionError(
    'no repeated blocks found: node names carry no indexed module scopes and there is no chain of ' +
      'residual Add nodes. Name the block outputs yourself with --blocks TENSOR,TENSOR,... ' +
      '(`blocklens blocks MODEL --json` lists nothing yet; tools like Netron show tensor names).',
  );
}

function withInputOverride(index: GraphIndex, d: BlockDetection, blockInput?: string): BlockDetection {
  if (blockInput === undefined) return d;
  if (!index.has(blockInput)) throw new BlockDetectionError(`--block-input: no tensor named '${blockInput}' in the graph`);
  return { ...d, blockInput };
}

// ---------------------------------------------------------------------------------------------
// Route 1: scoped names

interface ScopeToken {
  text: string;
  /** Template with the index replaced by '#'. */
  template: string;
  index?: number;
}

/** Splits a node's scope into tokens; the op-name part is dropped. */
export function nodeScope(node: NodeProto): string[] {
  const meta = node.metadataProps.find((p) => p.key === 'pkg.torch.onnx.name_scopes');
  if (meta) {
    // A Python list literal of dotted module paths, the deepest last.
    const names = [...meta.value.matchAll(/'([^']*)'/g)].map((m) => m[1]!);
    const deepest = names[names.length - 1];
    if (deepest) return deepest.split('.').filter(Boolean);
  }
  const name = node.name ?? '';
  if (!name.includes('/')) return [];
  const parts = name.split('/').filter(Boolean);
  parts.pop(); // the op's own name, e.g. `MatMul_1`
  const tokens: string[] = [];
  for (const p of parts) tokens.push(...p.split('.').filter(Boolean));
  return tokens;
}

function tokenize(text: string, siblings: Set<string>): ScopeToken {
  if (/^\d+$/.test(text)) return { text, template: '#', index: Number(text) };
  const m = /^(.*?[A-Za-z_])(\d+)$/.exec(text);
  if (m) return { text, template: `${m[1]}#`, index: Number(m[2]) };
  // Keras names the first of a kind without a suffix: `block`, `block_1`, `block_2`, …
  if (siblings.has(`${text}_1`)) return { text, template: `${text}_#`, index: 0 };
  return { text, template: text };
}

interface Family {
  template: string;
  members: Map<string, { key: string; indices: number[]; nodes: number[] }>;
}

function fromScopedNames(index: GraphIndex): { result?: BlockDetection; why?: string } {
  const families = new Map<string, Family>();
  const rawScopes = index.nodes.map(nodeScope);
  const segments = new Set(rawScopes.flat());
  const scopes: ScopeToken[][] = rawScopes.map((tokens) => tokens.map((t) => tokenize(t, segments)));
  const nonConst = index.nodes.filter((n) => n.opType !== 'Constant').length || 1;

  scopes.forEach((tokens, nodeIdx) => {
    const node = index.nodes[nodeIdx]!;
    if (node.opType === 'Constant') return;
    const keyParts: string[] = [];
    const tmplParts: string[] = [];
    const indices: number[] = [];
    for (const tok of tokens) {
      keyParts.push(tok.text);
      tmplParts.push(tok.template);
      if (tok.index === undefined) continue;
      indices.push(tok.index);
      const template = tmplParts.join('/');
      const key = keyParts.join('/');
      let fam = families.get(template);
      if (!fam) families.set(template, (fam = { template, members: new Map() }));
      let member = fam.members.get(key);
      if (!member) fam.members.set(key, (member = { key, indices: [...indices], nodes: [] }));
      member.nodes.push(nodeIdx);
    }
  });

  const candidates = [...families.values()]
    .filter((f) => f.members.size >= 2)
    .map((f) => ({
      family: f,
      coverage: [...f.members.values()].reduce((s, m) => s + m.nodes.length, 0) / nonConst,
    }))
    .sort((a, b) => b.coverage - a.coverage);
  if (candidates.length === 0) return { why: 'node names carry no repeated indexed module scopes' };

  // The repeated unit covers most of the graph. Among families that cover nearly as much as the
  // best one, the finest granularity wins (ResNet: `layer1.0` basic blocks, not `layer1` stages).
  const best = candidates[0]!.coverage;
  const eligible = candidates
    .filter((c) => c.coverage >= 0.9 * best && c.coverage >= 0.2)
    .sort((a, b) => b.family.members.size - a.family.members.size || b.coverage - a.coverage);
  let lastWhy = '';
  for (const c of eligible) {
    const built = buildFromFamily(index, c.family);
    if (typeof built === 'string') {
      lastWhy = built;
      continue;
    }
    const pct = Math.round(c.coverage * 100);
    built.explanation =
      `scoped names: ${built.blocks.length} blocks matching '${displayTemplate(c.family.template)}' ` +
      `cover ${pct}% of the nodes` + (built.blockInput ? `; block 0 reads '${built.blockInput}'` : '');
    return { result: built };
  }
  return {
    why: candidates.length
      ? `indexed module scopes found but none forms a chain of blocks (${lastWhy || 'coverage too small'})`
      : 'no indexed module scopes',
  };
}

function displayTemplate(t: string): string {
  return '/' + t.replace(/\/#/g, '.#');
}

function compareIndices(a: number[], b: number[]): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.length - b.length;
}

function buildFromFamily(index: GraphIndex, family: Family): BlockDetection | string {
  const members = [...family.members.values()].sort((a, b) => compareIndices(a.indices, b.indices));
  const memberOf = new Map<number, number>();
  members.forEach((m, k) => m.nodes.forEach((n) => memberOf.set(n, k)));
  const outputs: string[] = [];
  const warnings: string[] = [];

  for (let k = 0; k < members.length; k++) {
    const member = members[k]!;
    const candidates: { tensor: string; pos: number; toNext: boolean }[] = [];
    for (const n of member.nodes) {
      const node = index.nodes[n]!;
      if (NON_REPRESENTATION_OPS.has(node.opType)) continue;
      for (const out of node.output) {
        if (!out || isIntegerTensor(index, out)) continue;
        const cons = index.consumers.get(out) ?? [];
        const external = cons.filter((c) => memberOf.get(c) !== k);
        const isGraphOut = index.graphOutputs.includes(out);
        if (external.length === 0 && !isGraphOut) continue;
        const toNext = external.some((c) => memberOf.get(c) === k + 1);
        candidates.push({ tensor: out, pos: n, toNext });
      }
    }
    const last = k === members.length - 1;
    // What the block hands onward: for inner blocks, to the next block; for the last one, to
    // whatever follows. The residual stream is produced last (position biases, masks and
    // key/value caches come earlier).
    const pool = last ? candidates : candidates.filter((c) => c.toNext);
    if (pool.length === 0) return `block '${member.key}' hands no tensor to the next block`;
    pool.sort((a, b) => b.pos - a.pos);
    outputs.push(pool[0]!.tensor);
  }

  // The chain must run through the blocks: each output feeds the next block.
  for (let k = 0; k + 1 < outputs.length; k++) {
    if (!index.dependsOn(outputs[k + 1]!, outputs[k]!)) return `block ${k + 1} does not depend on block ${k}`;
  }

  const blockInput = findBlockInput(index, members[0]!.nodes, members.slice(1).flatMap((m) => m.nodes));
  if (!blockInput) warnings.push('block 0 input could not be identified; br[0] is not available (use --block-input)');
  const params = blockParameters(index, members.map((m) => m.nodes));
  return {
    method: 'scoped-names',
    blocks: members.map((m, k) => ({
      index: k,
      name: '/' + m.key.replace(/\/(\d+)(?=\/|$)/g, '.$1'),
      output: outputs[k]!,
      nodes: m.nodes,
      parameters: params[k]!,
    })),
    blockInput,
    explanation: '',
    warnings,
  };
}

function isIntegerTensor(index: GraphIndex, name: string): boolean {
  const t = index.types.get(name)?.elemType;
  // FLOAT, FLOAT16, DOUBLE, BFLOAT16 are representations; everything else is not.
  return t !== undefined && t !== 0 && t !== 1 && t !== 10 && t !== 11 && t !== 16;
}

/**
 * h_{−1}: among tensors block 0 reads from outside itself, drop weights, constants and anything
 * later blocks read too (masks, position tables, rotary caches fed to every block); of what
 * remains, the one produced last is the residual stream.
 */
function findBlockInput(index: GraphIndex, firstNodes: number[], laterNodes: number[]): string | null {
  const inside = new Set(firstNodes);
  const later = new Set(laterNodes);
  const external = new Map<string, number>();
  for (const n of firstNodes) {
    for (const inp of index.nodes[n]!.input) {
      if (!inp || index.isConstant(inp) || isIntegerTensor(index, inp)) continue;
      const p = index.producer.get(inp);
      if (p !== undefined && inside.has(p)) continue;
      if (p !== undefined && NON_REPRESENTATION_OPS.has(index.nodes[p]!.opType)) continue;
      external.set(inp, index.position(inp));
    }
  }
  if (external.size === 0) return null;
  const own = [...external.entries()].filter(([t]) => !(index.consumers.get(t) ?? []).some((c) => later.has(c)));
  const pool = own.length ? own : [...external.entries()];
  pool.sort((a, b) => b[1] - a[1]);
  return pool[0]![0];
}

/** Elements of initializers used only by one block's nodes. */
function blockParameters(index: GraphIndex, blockNodes: number[][]): number[] {
  const owner = new Map<number, number>();
  blockNodes.forEach((nodes, b) => nodes.forEach((n) => owner.set(n, b)));
  const sizes = new Map<string, number>();
  for (const t of index.graph.initializer) {
    if (t.name) sizes.set(t.name, t.dims.reduce((a, d) => a * Number(d), 1));
  }
  const counts = blockNodes.map(() => 0);
  for (const [name, size] of sizes) {
    const cons = index.consumers.get(name) ?? [];
    if (cons.length === 0) continue;
    const owners = new Set(cons.map((c) => owner.get(c)));
    if (owners.size === 1) {
      const b = [...owners][0];
      if (b !== undefined) counts[b]! += size;
    }
  }
  return counts;
}

// ---------------------------------------------------------------------------------------------
// Route 2: residual Add chain

function fromResidualAdds(index: GraphIndex): BlockDetection | null {
  // A residual Add sums a tensor x with f(x): one input is an ancestor of the other.
  const residual: { node: number; skip: string; out: string }[] = [];
  index.nodes.forEach((node, i) => {
    if (node.opType !== 'Add' || node.domain) return;
    const [a, b] = node.input;
    if (!a || !b || index.isConstant(a) || index.isConstant(b)) return;
    if (isIntegerTensor(index, a) || isIntegerTensor(index, b)) return;
    let skip: string | undefined;
    if (index.dependsOn(b, a)) skip = a;
    else if (index.dependsOn(a, b)) skip = b;
    if (!skip) return;
    // f(x) must be real computation: at least a few nodes between x and the sum.
    const other = skip === a ? b : a;
    const between = countNodesBetween(index, other, skip);
    if (between < 2) return;
    residual.push({ node: i, skip, out: node.output[0]! });
  });
  if (residual.length < 2) return null;

  // Keep the longest chain where each Add's skip input descends from the previous Add's output.
  const n = residual.length;
  const best = new Array<number>(n).fill(1);
  const prev = new Array<number>(n).fill(-1);
  for (let j = 0; j < n; j++) {
    for (let i = 0; i < j; i++) {
      if (best[i]! + 1 > best[j]! && index.dependsOn(residual[j]!.skip, residual[i]!.out)) {
        best[j] = best[i]! + 1;
        prev[j] = i;
      }
    }
  }
  let end = 0;
  for (let j = 1; j < n; j++) if (best[j]! >= best[end]!) end = j;
  const chain: number[] = [];
  for (let j = end; j >= 0; j = prev[j]!) chain.unshift(j);
  if (chain.length < 2) return null;

  const adds = chain.map((j) => residual[j]!);
  // The block output is what the next block takes as its skip (post-norm and ReLU included);
  // the last block's is its Add's output.
  const outputs = adds.map((r, k) => {
    const next = adds[k + 1];
    return next && index.dependsOn(next.skip, r.out) ? next.skip : r.out;
  });
  const blockInput = adds[0]!.skip;
  const nodeSets = adds.map((r, k) => {
    const lo = k === 0 ? index.position(blockInput) : index.position(outputs[k - 1]!);
    const hi = index.position(outputs[k]!);
    const set: number[] = [];
    for (const a of index.ancestorNodes(outputs[k]!)) if (a > lo && a <= hi) set.push(a);
    return set.sort((x, y) => x - y);
  });
  const params = blockParameters(index, nodeSets);
  return {
    method: 'residual-adds',
    blocks: outputs.map((out, k) => ({
      index: k,
      name: adds[k]!.out === out ? `residual ${k} (${index.nodes[adds[k]!.node]!.name || out})` : `residual ${k} (${out})`,
      output: out,
      nodes: nodeSets[k]!,
      parameters: params[k]!,
    })),
    blockInput,
    explanation: `residual adds: no indexed module scopes in node names, so ${outputs.length} blocks were taken from the chain of residual Add nodes; block 0 reads '${blockInput}'`,
    warnings: [],
  };
}

function countNodesBetween(index: GraphIndex, tensor: string, ancestor: string, cap = 4): number {
  const stop = index.position(ancestor);
  const seen = new Set<number>();
  const stack = [tensor];
  while (stack.length && seen.size < cap) {
    const t = stack.pop()!;
    const p = index.producer.get(t);
    if (p === undefined || p <= stop || seen.has(p)) continue;
    seen.add(p);
    for (const inp of index.nodes[p]!.input) if (inp && !index.isConstant(inp)) stack.push(inp);
  }
  return seen.size;
}

// ---------------------------------------------------------------------------------------------
// Route 3: user-named block outputs

function fromUser(index: GraphIndex, names: string[], blockInput?: string): BlockDetection {
  for (const n of names) {
    if (!index.has(n)) throw new BlockDetectionError(`--blocks: no tensor named '${n}' in the graph`);
  }
  if (new Set(names).size !== names.length) throw new BlockDetectionError('--blocks: a tensor is named twice');
  const warnings: string[] = [];
  let input: string | null = blockInput ?? null;
  if (blockInput !== undefined && !index.has(blockInput)) {
    throw new BlockDetectionError(`--block-input: no tensor named '${blockInput}' in the graph`);
  }
  if (input === null) {
    // If block 0's output is a residual sum, its skip input is h_{−1}.
    const p = index.producer.get(names[0]!);
    const node = p !== undefined ? index.nodes[p] : undefined;
    if (node?.opType === 'Add' && node.input.length === 2) {
      const [a, b] = node.input as [string, string];
      if (!index.isConstant(a) && !index.isConstant(b)) {
        if (index.dependsOn(b, a)) input = a;
        else if (index.dependsOn(a, b)) input = b;
      }
    }
    if (input === null) warnings.push('block 0 input is unknown for user-named blocks; br[0] is not available (use --block-input)');
  }
  const nodeSets = names.map((out, k) => {
    const lo = k === 0 ? (input ? index.position(input) : -1) : index.position(names[k - 1]!);
    const hi = index.position(out);
    return [...index.ancestorNodes(out)].filter((a) => a > lo && a <= hi).sort((x, y) => x - y);
  });
  const params = blockParameters(index, nodeSets);
  return {
    method: 'user',
    blocks: names.map((out, k) => ({ index: k, name: out, output: out, nodes: nodeSets[k]!, parameters: params[k]! })),
    blockInput: input,
    explanation: `user: ${names.length} block outputs named on the command line`,
    warnings,
  };
}

