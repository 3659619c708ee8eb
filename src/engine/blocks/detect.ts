// Block detection (DESIGN §2): which tensors are the residual-stream outputs h_0..h_{L−1} of
// the model's repeated units, and which tensor is block 0's input h_{−1}.
//
// Routes, in order:
//  1. scoped names: module scopes that repeat with an index (`/encoder/layer.3/…`, `/h.3/…`,
//     `/layer1.0/…`, `model/layer_3/…`, or torch's `pkg.torch.onnx.name_scopes` metadata);
//  2. the chain of residual `Add` nodes (identity or projection shortcut), grouped into layers
//     by the period of their sub-block signatures;
//  3. the repeated unit along the main path of a network without residuals;
//  4. the user's list of tensors (always wins when given).
// Names are only a shortcut: block outputs and h_{−1} are chosen by their role in the graph (the
// residual stream), so the structural routes find the same tensors on a graph without names.
import type { ModelProto, NodeProto } from '../onnx/types.js';
import type { DetectionMethod, Granularity, RejectedRoute } from '../report/schema.js';
import { GraphIndex } from './graph-index.js';
import { bestTandemRepeat, isIntegerTensor, periodOf, Structure, type ResidualAdd } from './structure.js';

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
  /** Why that tensor is h_{−1}. */
  blockInputReason: string;
  explanation: string;
  /** Whether a block is a whole layer or one residual sub-block (attention or MLP). */
  granularity: Granularity;
  /** Routes tried before (or checked beside) the one taken, and why they were not used. */
  rejected: RejectedRoute[];
  warnings: string[];
}

export class BlockDetectionError extends Error {}

export interface DetectOptions {
  /** User override: block output tensor names, in order. */
  blocks?: string[];
  /** User override for h_{−1}. */
  blockInput?: string;
  /** `layer` (default) groups attention + MLP residual adds into layers; `sublayer` keeps each. */
  granularity?: Granularity;
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
  const granularity = opts.granularity ?? 'layer';
  if (granularity !== 'layer' && granularity !== 'sublayer') {
    throw new BlockDetectionError(`--granularity must be layer or sublayer, not '${String(granularity)}'`);
  }
  const st = new Structure(index);
  if (opts.blocks && opts.blocks.length > 0) return fromUser(index, st, opts.blocks, opts.blockInput);

  const rejected: RejectedRoute[] = [];
  if (granularity === 'layer') {
    const scoped = fromScopedNames(index, st);
    if (scoped.result) {
      // The structure must agree; when it finds other blocks, say so.
      const structural = fromResidualAdds(index, st, 'layer') ?? fromRepeatedUnits(index, st);
      if (structural && !sameOutputs(structural, scoped.result)) {
        scoped.result.warnings.push(
          `the ${structural.method} route finds ${structural.blocks.length} blocks ending at other tensors; the indexed module scopes were used (check with --blocks if they look wrong)`,
        );
        rejected.push({ route: structural.method, reason: `found ${structural.blocks.length} blocks (${structural.blocks.map((b) => b.output).slice(0, 3).join(', ')}${structural.blocks.length > 3 ? ', …' : ''}) that differ from the named scopes` });
      } else if (structural) {
        rejected.push({ route: structural.method, reason: 'finds the same blocks; the named scopes were used for their names' });
      }
      return withInputOverride(index, { ...scoped.result, rejected: [...rejected, ...scoped.result.rejected] }, opts.blockInput);
    }
    if (scoped.why) rejected.push({ route: 'scoped-names', reason: scoped.why });
  } else {
    rejected.push({ route: 'scoped-names', reason: 'granularity sublayer: blocks are the residual sub-blocks, not the named layers' });
  }

  const residual = fromResidualAdds(index, st, granularity);
  if (residual) return withInputOverride(index, { ...residual, rejected: [...rejected, ...residual.rejected] }, opts.blockInput);
  rejected.push({ route: 'residual-adds', reason: 'fewer than two chained residual Add nodes (x + f(x), or x + P(x) with a projection shortcut)' });
  if (granularity === 'sublayer') {
    throw new BlockDetectionError('--granularity sublayer needs residual Add nodes (attention and MLP sub-blocks); this graph has no chain of them. Use --granularity layer.');
  }

  const units = fromRepeatedUnits(index, st);
  if (units) return withInputOverride(index, { ...units, rejected: [...rejected, ...units.rejected] }, opts.blockInput);
  throw new BlockDetectionError(
    'no repeated blocks found: node names carry no indexed module scopes, there is no chain of ' +
      'residual Add nodes and no operator pattern repeats along the main path. Name the block outputs yourself with --blocks TENSOR,TENSOR,... ' +
      '(tools like Netron show tensor names).',
  );
}

function sameOutputs(a: BlockDetection, b: BlockDetection): boolean {
  return a.blocks.length === b.blocks.length && a.blocks.every((x, i) => x.output === b.blocks[i]!.output);
}

function withInputOverride(index: GraphIndex, d: BlockDetection, blockInput?: string): BlockDetection {
  if (blockInput === undefined) return d;
  if (!index.has(blockInput)) throw new BlockDetectionError(`--block-input: no tensor named '${blockInput}' in the graph`);
  return { ...d, blockInput, blockInputReason: 'given with --block-input' };
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

function fromScopedNames(index: GraphIndex, st: Structure): { result?: BlockDetection; why?: string } {
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
    // A unit is more than one op: `features.0` = Conv, `features.1` = ReLU (torchvision VGG) are layers, not blocks.
    .filter((f) => median([...f.members.values()].map((m) => m.nodes.length)) >= 2)
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
    const built = buildFromFamily(index, st, c.family);
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

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.floor(s.length / 2)]! : 0;
}

function displayTemplate(t: string): string {
  return '/' + t.replace(/\/#/g, '.#');
}

function compareIndices(a: number[], b: number[]): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.length - b.length;
}

function buildFromFamily(index: GraphIndex, st: Structure, family: Family): BlockDetection | string {
  const members = [...family.members.values()].sort((a, b) => compareIndices(a.indices, b.indices));
  const memberOf = new Map<number, number>();
  members.forEach((m, k) => m.nodes.forEach((n) => memberOf.set(n, k)));
  const outputs: string[] = [];
  const warnings: string[] = [];
  const entering = members.map((m) => streamEntering(index, st, new Set(m.nodes)));

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
    // By role: the residual stream the next block adds its own output to (seen through a Cast or
    // Identity at the start of the next block), when that tensor comes from this block.
    const next = last ? undefined : entering[k + 1];
    if (next) {
      const p = index.producer.get(next.tensor);
      if (p !== undefined && memberOf.get(p) === k) {
        outputs.push(next.tensor);
        continue;
      }
    }
    // Otherwise what the block hands onward: for inner blocks, to the next block; for the last
    // one, to whatever follows. The stream is produced last (position biases, masks and
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

  const first = entering[0];
  const fallback = first ? undefined : findBlockInput(index, st, members[0]!.nodes, members.slice(1).flatMap((m) => m.nodes), outputs[0]!);
  const blockInput = first?.tensor ?? fallback?.tensor ?? null;
  const blockInputReason = first?.reason ?? fallback?.reason ?? 'not identified';
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
    blockInputReason,
    granularity: 'layer',
    rejected: [],
    explanation: '',
    warnings,
  };
}

/**
 * The residual stream entering a block: the skip operand (before any Cast/Identity) of the
 * block's first residual Add whose stream comes from outside the block.
 */
function streamEntering(index: GraphIndex, st: Structure, nodes: Set<number>): { tensor: string; reason: string } | undefined {
  for (const add of st.residualAdds()) {
    if (!nodes.has(add.node)) continue;
    const t = st.beforePassThrough(add.skip);
    const p = index.producer.get(t);
    if (p !== undefined && nodes.has(p)) continue;
    return { tensor: t, reason: residualReason(index, add) };
  }
  return undefined;
}

function residualReason(index: GraphIndex, add: ResidualAdd): string {
  const node = index.nodes[add.node]!;
  const addName = node.name || `${node.opType} → '${add.out}'`;
  return add.projection
    ? `residual stream: block 0 adds its own output to a projection of it (${addName})`
    : `residual stream: block 0 adds its own output to it (${addName})`;
}

/**
 * h_{−1} without a residual inside block 0: among the tensors block 0 reads from outside, the
 * main-path one (its shape matches block 0's output, or block 0 applies weights to it); side
 * tensors (masks, position and rotary tables) and anything later blocks read too come last.
 */
function findBlockInput(index: GraphIndex, st: Structure, firstNodes: number[], laterNodes: number[], firstOutput: string): { tensor: string; reason: string } | undefined {
  const inside = new Set(firstNodes);
  const later = new Set(laterNodes);
  const external = new Map<string, number>();
  for (const n of firstNodes) {
    for (const inp of index.nodes[n]!.input) {
      if (!inp || st.isWeightLike(inp) || isIntegerTensor(index, inp)) continue;
      const p = index.producer.get(inp);
      if (p !== undefined && inside.has(p)) continue;
      if (p !== undefined && NON_REPRESENTATION_OPS.has(index.nodes[p]!.opType)) continue;
      external.set(inp, index.position(inp));
    }
  }
  if (external.size === 0) return undefined;
  const outDims = index.dims(firstOutput);
  const weightedInside = firstNodes.filter((n) => st.isWeightedNode(n));
  const score = (t: string): number => {
    let s = 0;
    const d = index.dims(t);
    if (outDims && d && d.length === outDims.length && d.every((x, i) => x === outDims[i])) s += 4;
    if (weightedInside.some((n) => index.nodes[n]!.input.some((i) => !!i && !st.isWeightLike(i) && index.dataDependsOn(i, t)))) s += 2;
    if (!(index.consumers.get(t) ?? []).some((c) => later.has(c))) s += 1;
    return s;
  };
  const ranked = [...external.entries()].map(([t, pos]) => ({ t, pos, s: score(t) })).sort((a, b) => b.s - a.s || b.pos - a.pos);
  const top = ranked[0]!;
  const why = top.s >= 4 ? "its shape matches block 0's output" : top.s >= 2 ? 'block 0 applies its weights to it' : 'the last tensor block 0 reads from outside';
  return { tensor: top.t, reason: `main path (no residual Add in block 0): ${why}` };
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

function nodeSetsBetween(index: GraphIndex, start: string | null, outputs: string[]): number[][] {
  return outputs.map((out, k) => {
    const lo = k === 0 ? (start ? index.position(start) : -1) : index.position(outputs[k - 1]!);
    const hi = index.position(out);
    const set: number[] = [];
    for (const a of index.ancestorNodes(out)) if (a > lo && a <= hi) set.push(a);
    return set.sort((x, y) => x - y);
  });
}

function fromResidualAdds(index: GraphIndex, st: Structure, granularity: Granularity): BlockDetection | null {
  const chain = st.residualChain();
  if (chain.length < 2) return null;
  const streams = st.streamOutputs(chain);
  const warnings: string[] = [];
  const rejected: RejectedRoute[] = [];

  // Layers: the period of the sub-block signatures (attention, MLP, attention, MLP, … → 2).
  let period = 1;
  let groupingWhy = '';
  if (granularity === 'layer') {
    const exact = periodOf(chain.map((a) => st.subBlockSignature(a)));
    const coarse = periodOf(chain.map((a) => st.coarseSignature(a)));
    // A layer holds one attention sub-block: alternating window/shifted-window attention (Swin)
    // repeats exactly only every 4 adds, but attention/MLP every 2.
    if (exact !== undefined && (coarse === undefined || exact <= coarse)) {
      period = exact;
      groupingWhy = exact > 1 ? `the ${chain.length} residual sub-blocks repeat with period ${exact} (same operators every ${exact} adds)` : '';
    } else if (coarse !== undefined) {
      period = coarse;
      groupingWhy = coarse > 1 ? `the ${chain.length} residual sub-blocks alternate with period ${coarse} (attention / feed-forward, weighted-op counts)` : '';
    } else if (chain.some((a) => st.coarseSignature(a).startsWith('attention'))) {
      // Convolutional stages (ResNet: plain and projection blocks) are one block per add anyway.
      warnings.push(`the ${chain.length} residual sub-blocks do not repeat with a common period; each residual Add is one block (use --blocks to group them)`);
    }
    if (period > 1) {
      rejected.push({ route: 'residual-adds (sublayer)', reason: `${chain.length} sub-blocks, grouped into ${chain.length / period} layers of ${period}; --granularity sublayer keeps them` });
    }
  }
  const L = chain.length / period;
  const groups = Array.from({ length: L }, (_, k) => chain.slice(k * period, (k + 1) * period));
  const outputs = groups.map((_, k) => streams[(k + 1) * period - 1]!);
  const first = chain[0]!;
  const blockInput = st.beforePassThrough(first.skip);
  const nodeSets = nodeSetsBetween(index, blockInput, outputs);
  const params = blockParameters(index, nodeSets);
  const kinds = (g: ResidualAdd[]) => g.map((a) => (st.coarseSignature(a).startsWith('attention') ? 'attention' : a.projection ? 'projection' : 'residual')).join('+');
  const named = (g: ResidualAdd[], k: number) => {
    const add = index.nodes[g[g.length - 1]!.node]!;
    const scope = add.name && add.name.includes('/') ? add.name.slice(0, add.name.lastIndexOf('/')) : '';
    const what = period > 1 ? `layer ${k}` : granularity === 'sublayer' ? `sublayer ${k} (${kinds(g)})` : `residual ${k}`;
    return scope ? `${what} (${scope})` : `${what} (${add.name || g[g.length - 1]!.out})`;
  };
  const proj = chain.filter((a) => a.projection).length;
  const gran: Granularity = granularity === 'sublayer' ? 'sublayer' : 'layer';
  return {
    method: 'residual-adds',
    blocks: groups.map((g, k) => ({ index: k, name: named(g, k), output: outputs[k]!, nodes: nodeSets[k]!, parameters: params[k]! })),
    blockInput,
    blockInputReason: residualReason(index, first),
    granularity: gran,
    rejected,
    explanation:
      `residual adds: ${chain.length} chained residual Add nodes` +
      (proj ? ` (${proj} with a projection shortcut)` : '') +
      (period > 1 ? `, grouped into ${L} layers: ${groupingWhy}` : granularity === 'sublayer' ? ', one block per sub-block (granularity sublayer)' : '') +
      `; block 0 reads '${blockInput}'`,
    warnings,
  };
}

// ---------------------------------------------------------------------------------------------
// Route 3: a repeated unit along the main path (no residuals)

function fromRepeatedUnits(index: GraphIndex, st: Structure): BlockDetection | null {
  const cuts = st.mainPathCuts();
  if (cuts.length < 4) return null;
  // One token per segment between cut points: its operators in order.
  const tokens = cuts.map((c) => c.nodes.map((n) => st.nodeToken(n)).join('>'));
  // Prefix counts of segments with a weighted op: a unit must apply weights.
  const wsum = [0];
  for (const c of cuts) wsum.push(wsum[wsum.length - 1]! + (c.nodes.some((n) => st.isWeightedNode(n)) ? 1 : 0));
  const rep = bestTandemRepeat(tokens, (s, u) => wsum[s + u]! - wsum[s]! > 0);
  if (!rep) return null;
  const { start, unit, count } = rep;
  const outputs = Array.from({ length: count }, (_, k) => cuts[start + (k + 1) * unit - 1]!.tensor);
  const dataInputs = index.graphInputs.filter((i) => !isIntegerTensor(index, i));
  const blockInput = start > 0 ? cuts[start - 1]!.tensor : (dataInputs[0] ?? index.graphInputs[0] ?? null);
  const nodeSets = Array.from({ length: count }, (_, k) => cuts.slice(start + k * unit, start + (k + 1) * unit).flatMap((c) => c.nodes));
  const params = blockParameters(index, nodeSets);
  // Widths from the weights of each unit's last weighted op; BR and skip are undefined where they change.
  const widthOf = (nodes: number[]): number | undefined => {
    for (let i = nodes.length - 1; i >= 0; i--) {
      if (st.isWeightedNode(nodes[i]!)) return st.weightedWidth(nodes[i]!);
    }
    return undefined;
  };
  const widths = nodeSets.map(widthOf);
  const inputWidth = start > 0 ? widthOf(cuts.slice(0, start).flatMap((c) => c.nodes)) : undefined;
  const warnings: string[] = [];
  const changes: string[] = [];
  widths.forEach((w, k) => {
    const prev = k === 0 ? inputWidth : widths[k - 1];
    if (w !== undefined && prev !== undefined && w !== prev) changes.push(`block ${k} (${prev} → ${w})`);
  });
  if (changes.length) warnings.push(`widths change at ${changes.join(', ')}: BR and skip are undefined there`);
  const pattern = cuts.slice(start, start + unit).flatMap((c) => c.nodes.map((n) => st.nodeToken(n))).join(', ');
  return {
    method: 'repeated-units',
    blocks: outputs.map((out, k) => ({ index: k, name: `unit ${k}`, output: out, nodes: nodeSets[k]!, parameters: params[k]! })),
    blockInput,
    blockInputReason:
      start > 0
        ? 'main path: the tensor the first repeated unit reads (every value path from the input passes through it)'
        : 'main path: the model input, which the first repeated unit reads',
    granularity: 'layer',
    rejected: [],
    explanation:
      `repeated units: no residual Adds; the operator pattern (${pattern}) repeats ${count} times along the main path` +
      (blockInput ? `; block 0 reads '${blockInput}'` : ''),
    warnings,
  };
}

// ---------------------------------------------------------------------------------------------
// Route 4: user-named block outputs

function fromUser(index: GraphIndex, st: Structure, names: string[], blockInput?: string): BlockDetection {
  for (const n of names) {
    if (!index.has(n)) throw new BlockDetectionError(`--blocks: no tensor named '${n}' in the graph`);
  }
  if (new Set(names).size !== names.length) throw new BlockDetectionError('--blocks: a tensor is named twice');
  const warnings: string[] = [];
  let input: string | null = blockInput ?? null;
  let reason = 'given with --block-input';
  if (blockInput !== undefined && !index.has(blockInput)) {
    throw new BlockDetectionError(`--block-input: no tensor named '${blockInput}' in the graph`);
  }
  if (input === null) {
    // If block 0's output is (or follows) a residual sum, that sum's stream input is h_{−1}.
    const add = st.residualAdds().find((a) => a.out === names[0] || st.beforePassThrough(names[0]!) === a.out);
    if (add) {
      input = st.beforePassThrough(add.skip);
      reason = residualReason(index, add);
    }
    if (input === null) {
      reason = 'unknown';
      warnings.push('block 0 input is unknown for user-named blocks; br[0] is not available (use --block-input)');
    }
  }
  const nodeSets = nodeSetsBetween(index, input, names);
  const params = blockParameters(index, nodeSets);
  return {
    method: 'user',
    blocks: names.map((out, k) => ({ index: k, name: out, output: out, nodes: nodeSets[k]!, parameters: params[k]! })),
    blockInput: input,
    blockInputReason: reason,
    granularity: 'layer',
    rejected: [],
    explanation: `user: ${names.length} block outputs named on the command line`,
    warnings,
  };
}
