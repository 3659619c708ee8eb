// Structural facts about a graph that block detection reasons from, without looking at names:
// which Adds are residual (identity or projection shortcut), the chain of residual adds, the
// period of their sub-block signatures (layers), and the repeated unit along the main path of a
// network without residuals.
import type { NodeProto } from '../onnx/types.js';
import type { GraphIndex } from './graph-index.js';

/** FLOAT, FLOAT16, DOUBLE, BFLOAT16 are representations; every other element type is not. */
export function isIntegerTensor(index: GraphIndex, name: string): boolean {
  const t = index.types.get(name)?.elemType;
  return t !== undefined && t !== 0 && t !== 1 && t !== 10 && t !== 11 && t !== 16;
}

/** Ops that apply learned weights when one operand is a weight. */
const WEIGHTED_OPS = new Set([
  'MatMul', 'Gemm', 'Conv', 'ConvTranspose', 'MatMulInteger', 'ConvInteger', 'QLinearMatMul', 'QLinearConv', 'Einsum',
]);
/** Ops a residual stream passes through unchanged in value (the next block may start with one). */
export const PASS_THROUGH_OPS = new Set(['Cast', 'Identity']);
/** Ops a projection shortcut is made of (1×1 / strided Conv, BN, pooling, a linear map, casts). */
const SHORTCUT_OPS = new Set([
  'Conv', 'ConvTranspose', 'BatchNormalization', 'AveragePool', 'MaxPool', 'LpPool', 'Gemm', 'MatMul', 'Cast', 'Identity',
  'Pad', 'Add', 'Mul', 'Sub', 'Div', 'Slice', 'DequantizeLinear', 'QuantizeLinear',
]);
/** Ops that keep every axis where it is (elementwise, normalisation over channels, pooling). */
const AXIS_PRESERVING_OPS = new Set([
  'Add', 'Sub', 'Mul', 'Div', 'Relu', 'LeakyRelu', 'PRelu', 'Sigmoid', 'HardSigmoid', 'HardSwish', 'Tanh', 'Clip', 'Elu', 'Selu',
  'Gelu', 'Erf', 'Cast', 'Identity', 'BatchNormalization', 'InstanceNormalization', 'MaxPool', 'AveragePool', 'Pad', 'Dropout',
]);
/** ONNX Runtime contrib ops that fuse a residual add with the norm after it. */
const SKIP_NORM_OPS = new Set(['SkipLayerNormalization', 'SkipSimplifiedLayerNormalization']);
/** What makes a shortcut a projection rather than a plain elementwise step. */
const PROJECTING_OPS = new Set(['Conv', 'ConvTranspose', 'AveragePool', 'MaxPool', 'LpPool', 'Gemm', 'MatMul', 'Slice']);

export class Structure {
  private weightMemo = new Map<string, boolean>();
  private residualMemo?: ResidualAdd[];

  constructor(readonly index: GraphIndex) {}

  /** A weight: a constant, or computed from constants only (Transpose / DequantizeLinear of an initializer…). */
  isWeightLike(name: string, depth = 6): boolean {
    const memo = this.weightMemo.get(name);
    if (memo !== undefined) return memo;
    const index = this.index;
    let r = false;
    if (index.isConstant(name)) r = true;
    else if (depth > 0) {
      const p = index.producer.get(name);
      if (p !== undefined) {
        const ins = index.nodes[p]!.input.filter(Boolean);
        r = ins.length > 0 && ins.every((i) => this.isWeightLike(i, depth - 1));
      }
    }
    this.weightMemo.set(name, r);
    return r;
  }

  isWeightedNode(n: number): boolean {
    const node = this.index.nodes[n]!;
    return WEIGHTED_OPS.has(node.opType) && node.input.some((i) => !!i && this.isWeightLike(i));
  }

  /** Non-weight inputs of a node (what it computes on). */
  dataInputs(node: NodeProto): string[] {
    return node.input.filter((i) => !!i && !this.isWeightLike(i));
  }

  /** Nodes on value paths from `from` to `to` (both excluded as tensors; `to`'s producer included). */
  nodesBetween(from: string, to: string): number[] {
    const index = this.index;
    const toPos = index.position(to);
    const down = index.dataDescendantNodes(from, toPos);
    const up = index.dataAncestorNodes(to, index.position(from));
    return [...up].filter((n) => down.has(n)).sort((a, b) => a - b);
  }

  /** Walks back from `t` through Cast/Identity (value-preserving) producers. */
  beforePassThrough(t: string): string {
    const index = this.index;
    let cur = t;
    for (let i = 0; i < 4; i++) {
      const p = index.producer.get(cur);
      if (p === undefined) break;
      const node = index.nodes[p]!;
      if (!PASS_THROUGH_OPS.has(node.opType) || node.domain) break;
      const inp = node.input[0];
      if (!inp || isIntegerTensor(index, inp) || index.isConstant(inp)) break;
      cur = inp;
    }
    return cur;
  }

  // -------------------------------------------------------------------------------------------
  // Residual adds

  /** Every Add that sums a stream x with f(x) (identity shortcut) or with a projection of x. */
  residualAdds(): ResidualAdd[] {
    if (this.residualMemo) return this.residualMemo;
    const index = this.index;
    const out: ResidualAdd[] = [];
    index.nodes.forEach((node, i) => {
      const plain = (node.opType === 'Add' || node.opType === 'Sum') && !node.domain && node.input.length === 2;
      // ONNX Runtime's fused residual + norm: the sum is output 3 when kept, else output 0 (post-LN).
      const fused = node.domain === 'com.microsoft' && SKIP_NORM_OPS.has(node.opType) && node.input.length >= 2;
      if (!plain && !fused) return;
      const [a, b] = node.input;
      if (!a || !b || a === b || !node.output[0]) return;
      if (this.isWeightLike(a) || this.isWeightLike(b)) return;
      if (isIntegerTensor(index, a) || isIntegerTensor(index, b)) return;
      const r = this.identityResidual(i, a, b) ?? this.identityResidual(i, b, a) ?? this.projectionResidual(i, a, b) ?? this.projectionResidual(i, b, a);
      if (r) out.push(r);
    });
    this.residualMemo = out;
    return out;
  }

  private identityResidual(node: number, skip: string, branch: string): ResidualAdd | undefined {
    // A fused SkipLayerNormalization hands the stream on as its sum output and the next
    // sub-block reads its normalised output: the branch starts from that sibling.
    const from = this.index.dataDependsOn(branch, skip) ? skip : this.normalisedSibling(skip);
    if (!from || !this.index.dataDependsOn(branch, from)) return undefined;
    const between = this.nodesBetween(from, branch);
    // f(x) must apply weights (rules out x + c·x³ in a tanh-GELU, x·cos + rot(x)·sin, …).
    if (!between.some((n) => this.isWeightedNode(n))) return undefined;
    return { node, skip, from, branch, out: this.sumOutput(node), projection: false };
  }

  /** For the sum output of a fused SkipLayerNormalization, its normalised output. */
  private normalisedSibling(t: string): string | undefined {
    const p = this.index.producer.get(t);
    if (p === undefined) return undefined;
    const node = this.index.nodes[p]!;
    if (node.domain !== 'com.microsoft' || !SKIP_NORM_OPS.has(node.opType) || node.output[3] !== t) return undefined;
    return node.output[0] || undefined;
  }

  /** The tensor carrying the sum: an Add's output, or a fused SkipLayerNormalization's. */
  private sumOutput(n: number): string {
    const node = this.index.nodes[n]!;
    if (node.domain === 'com.microsoft' && SKIP_NORM_OPS.has(node.opType) && node.output[3]) return node.output[3];
    return node.output[0]!;
  }

  /** `short` = P(x) with P a short projection (≤ 4 ops), `branch` = f(x) with weights, longer than P. */
  private projectionResidual(node: number, short: string, branch: string): ResidualAdd | undefined {
    const index = this.index;
    let cur = short;
    const path: number[] = [];
    for (let step = 0; step < 4; step++) {
      const p = index.producer.get(cur);
      if (p === undefined) return undefined;
      const pn = index.nodes[p]!;
      if (!SHORTCUT_OPS.has(pn.opType) || pn.domain) return undefined;
      const data = this.dataInputs(pn);
      if (data.length !== 1) return undefined;
      path.push(p);
      cur = data[0]!;
      if (!path.some((n) => PROJECTING_OPS.has(index.nodes[n]!.opType))) continue;
      if (!index.dataDependsOn(branch, cur)) continue;
      const between = this.nodesBetween(cur, branch);
      if (between.length <= path.length || !between.some((n) => this.isWeightedNode(n))) continue;
      return { node, skip: cur, from: cur, branch, out: this.sumOutput(node), projection: true };
    }
    return undefined;
  }

  /** The longest chain of residual adds, each one's stream descending from the previous add. */
  residualChain(): ResidualAdd[] {
    const index = this.index;
    const residual = this.residualAdds();
    const n = residual.length;
    if (n === 0) return [];
    const best = new Array<number>(n).fill(1);
    const prev = new Array<number>(n).fill(-1);
    // The nearest earlier add whose sum this add's stream descends from (in a chain it is the
    // previous one, so this is linear in the number of adds, not quadratic).
    for (let j = 0; j < n; j++) {
      for (let i = j - 1; i >= 0; i--) {
        if (index.dataDependsOn(residual[j]!.skip, residual[i]!.out)) {
          best[j] = best[i]! + 1;
          prev[j] = i;
          break;
        }
      }
    }
    let end = 0;
    for (let j = 1; j < n; j++) if (best[j]! >= best[end]!) end = j;
    const chain: number[] = [];
    for (let j = end; j >= 0; j = prev[j]!) chain.unshift(j);
    return chain.map((j) => residual[j]!);
  }

  /**
   * The stream tensor after each add of the chain: what the next add carries forward (a post-norm
   * or ReLU after the add included, Cast/Identity at the start of the next block excluded). For
   * the last add, the same post-op as the earlier ones, when they all have the same one.
   */
  streamOutputs(chain: ResidualAdd[]): string[] {
    const index = this.index;
    const outs: string[] = [];
    const postSigs: (string | null)[] = [];
    for (let k = 0; k + 1 < chain.length; k++) {
      const add = chain[k]!;
      let t = this.beforePassThrough(chain[k + 1]!.skip);
      if (!index.dataDependsOn(t, add.out)) t = add.out;
      outs.push(t);
      postSigs.push(t === add.out ? null : opSignature(index, this.nodesBetween(add.out, t)));
    }
    const last = chain[chain.length - 1]!;
    let lastOut = last.out;
    const sig = postSigs[0];
    if (sig && postSigs.every((s) => s === sig)) {
      const found = this.findPostOp(last.out, sig);
      if (found) lastOut = found;
    }
    outs.push(lastOut);
    return outs;
  }

  /** The first tensor after `from` whose value path from `from` has the op signature `sig`. */
  private findPostOp(from: string, sig: string): string | undefined {
    const index = this.index;
    const desc = [...index.dataDescendantNodes(from)].sort((a, b) => a - b).slice(0, 64);
    for (const n of desc) {
      for (const o of index.nodes[n]!.output) {
        if (!o) continue;
        if (opSignature(index, this.nodesBetween(from, o)) === sig) return o;
      }
    }
    return undefined;
  }

  /** Op-type multiset of the sub-block an add closes: every node on value paths from its stream input to its output. */
  subBlockSignature(add: ResidualAdd): string {
    return opSignature(this.index, this.nodesBetween(add.from, add.out));
  }

  /** A coarser signature: weighted-op count and whether it attends (Softmax). */
  coarseSignature(add: ResidualAdd): string {
    const nodes = this.nodesBetween(add.from, add.out);
    const weighted = nodes.filter((n) => this.isWeightedNode(n)).length;
    const attends = nodes.some((n) => this.index.nodes[n]!.opType === 'Softmax');
    return `${attends ? 'attention' : 'feed-forward'}:${weighted}`;
  }

  // -------------------------------------------------------------------------------------------
  // Main path without residuals

  /**
   * Cut tensors of the main path in order: tensors every value path from the data inputs to the
   * first graph output passes through. Returned with the nodes computed since the previous cut.
   */
  mainPathCuts(): { tensor: string; nodes: number[] }[] {
    const index = this.index;
    const target = index.graphOutputs[0];
    if (!target) return [];
    const dataInputs = index.graphInputs.filter((i) => !isIntegerTensor(index, i));
    const sources = dataInputs.length ? dataInputs : index.graphInputs;
    // Main region: nodes on value paths from a data input to the output.
    const up = index.dataAncestorNodes(target);
    const down = new Set<number>();
    for (const s of sources) for (const n of index.dataDescendantNodes(s)) down.add(n);
    const region = [...up].filter((n) => down.has(n)).sort((a, b) => a - b);
    const inRegion = new Set(region);
    const remaining = new Map<string, number>();
    const count = (t: string) => (index.consumers.get(t) ?? []).filter((c) => inRegion.has(c) && index.nodes[c]!.input.includes(t)).length;
    const live = new Set<string>();
    for (const s of sources) {
      const c = count(s);
      if (c > 0) {
        live.add(s);
        remaining.set(s, c);
      }
    }
    const cuts: { tensor: string; nodes: number[] }[] = [];
    let pending: number[] = [];
    for (const n of region) {
      const node = index.nodes[n]!;
      pending.push(n);
      for (const inp of new Set(node.input)) {
        if (!inp || !live.has(inp)) continue;
        const r = (remaining.get(inp) ?? 1) - 1;
        remaining.set(inp, r);
        if (r <= 0) live.delete(inp);
      }
      for (const o of node.output) {
        if (!o) continue;
        const c = count(o) + (o === target ? 1 : 0);
        if (c > 0 && !isIntegerTensor(index, o)) {
          live.add(o);
          remaining.set(o, c);
        }
      }
      if (live.size === 1) {
        const t = [...live][0]!;
        if (node.output.includes(t)) {
          cuts.push({ tensor: t, nodes: pending });
          pending = [];
        }
      }
    }
    return cuts;
  }

  /** A short description of one node for unit signatures (depthwise and kernel size for convs). */
  nodeToken(n: number): string {
    const node = this.index.nodes[n]!;
    if (node.opType === 'Conv' || node.opType === 'ConvTranspose') {
      const group = Number(node.attribute.find((a) => a.name === 'group')?.i ?? 1);
      const w = node.input[1] ? this.index.dims(node.input[1]) : undefined;
      const k = node.attribute.find((a) => a.name === 'kernel_shape')?.ints.map(Number) ?? (w ? w.slice(2).map(Number) : []);
      return `${node.opType}${group > 1 ? '/dw' : ''}/${k.join('x')}`;
    }
    return node.domain ? `${node.domain}.${node.opType}` : node.opType;
  }

  /**
   * Axis that carries the channels of a 4-D tensor: 1 at a Conv's output, moved by the Transposes
   * between the nearest Conv before it and the tensor (tf2onnx keeps NHWC between its convs).
   * Undefined when a reshape or anything else that moves axes is in between.
   */
  channelAxis(tensor: string, budget = { left: 64 }): number | undefined {
    const index = this.index;
    if (budget.left-- <= 0) return undefined;
    const p = index.producer.get(tensor);
    if (p === undefined) return undefined;
    const node = index.nodes[p]!;
    if (node.domain) return undefined;
    if (node.opType === 'Conv' || node.opType === 'ConvTranspose') return 1;
    if (node.opType === 'Transpose') {
      const perm = node.attribute.find((a) => a.name === 'perm')?.ints.map(Number);
      const inner = node.input[0] ? this.channelAxis(node.input[0], budget) : undefined;
      if (!perm || inner === undefined) return undefined;
      const axis = perm.indexOf(inner);
      return axis >= 0 ? axis : undefined;
    }
    if (!AXIS_PRESERVING_OPS.has(node.opType)) return undefined;
    // Elementwise: the first operand that leads back to a Conv (for a residual Add, the branch).
    for (const inp of this.dataInputs(node)) {
      const axis = this.channelAxis(inp, budget);
      if (axis !== undefined) return axis;
    }
    return undefined;
  }

  /** Output width (channels / features) of a weighted node, from its weight's dims. */
  weightedWidth(n: number): number | undefined {
    const index = this.index;
    const node = index.nodes[n]!;
    const w = node.input[1];
    const dims = w ? index.dims(w) : undefined;
    if (!dims) return undefined;
    const num = (d: unknown) => (typeof d === 'number' ? d : undefined);
    if (node.opType === 'Conv') return num(dims[0]);
    if (node.opType === 'ConvTranspose') {
      const group = Number(node.attribute.find((a) => a.name === 'group')?.i ?? 1);
      const c = num(dims[1]);
      return c === undefined ? undefined : c * group;
    }
    if (node.opType === 'Gemm') {
      const transB = Number(node.attribute.find((a) => a.name === 'transB')?.i ?? 0);
      return num(dims[transB ? 0 : 1]);
    }
    if (node.opType === 'MatMul') return num(dims[dims.length - 1]);
    return undefined;
  }
}

export interface ResidualAdd {
  /** Index of the Add node. */
  node: number;
  /** The stream x the add carries forward (identity), or x itself when the shortcut projects x. */
  skip: string;
  /** Where the sub-block's computation starts: `skip`, or a fused norm's normalised output. */
  from: string;
  /** The operand computed by the sub-block f(x). */
  branch: string;
  out: string;
  projection: boolean;
}

export function opSignature(index: GraphIndex, nodes: number[]): string {
  const counts = new Map<string, number>();
  for (const n of nodes) {
    const op = index.nodes[n]!.opType;
    counts.set(op, (counts.get(op) ?? 0) + 1);
  }
  return [...counts.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([op, c]) => `${op}×${c}`).join(',');
}

/** Smallest period p (1 ≤ p < n, p | n) with sigs[i] = sigs[i + p] for all i; undefined if none. */
export function periodOf(sigs: string[]): number | undefined {
  const n = sigs.length;
  for (let p = 1; p < n; p++) {
    if (n % p !== 0) continue;
    let ok = true;
    for (let i = 0; i + p < n && ok; i++) if (sigs[i] !== sigs[i + p]) ok = false;
    if (ok) return p;
  }
  return undefined;
}

/**
 * The tandem repeat covering most of a token sequence: `unit` consecutive tokens repeated `count`
 * times from `start`. Ties: more coverage, then the shorter unit, then the later end (units end
 * after their activation, not before it).
 */
export function bestTandemRepeat(tokens: string[], accept: (start: number, unit: number) => boolean): { start: number; unit: number; count: number } | undefined {
  const m = tokens.length;
  const ids = new Map<string, number>();
  const t = Int32Array.from(tokens, (x) => {
    let id = ids.get(x);
    if (id === undefined) ids.set(x, (id = ids.size));
    return id;
  });
  let best: { start: number; unit: number; count: number } | undefined;
  const run = new Int32Array(m + 1);
  // Linear per unit length: run[i] = how many tokens from i on equal the token u later.
  for (let u = 1; u * 2 <= m; u++) {
    run[m - u] = 0;
    for (let i = m - u - 1; i >= 0; i--) run[i] = t[i] === t[i + u] ? run[i + 1]! + 1 : 0;
    for (let s = 0; s + 2 * u <= m; s++) {
      const k = 1 + Math.floor(run[s]! / u);
      if (k < 2) continue;
      const cov = k * u;
      const end = s + cov;
      const better =
        !best ||
        cov > best.count * best.unit ||
        (cov === best.count * best.unit && (u < best.unit || (u === best.unit && end > best.start + best.count * best.unit)));
      if (better && accept(s, u)) best = { start: s, unit: u, count: k };
    }
  }
  return best;
}

