// In-graph float64 cross-products: nodes appended to an (instrumented) model so that ONNX
// Runtime hands out ZᵀZ per batch, Z = [Z_1 | … | Z_k | 1] the rows of several tensors side by
// side (plus a ones column). Only the D×D product leaves the session, never the rows, and the
// product runs in ORT's float64 Gemm.
import { attr, graphAppender, makeTensor, makeValueInfo, opsetVersion } from '../onnx/builder.js';
import { DataType, type ModelProto } from '../onnx/types.js';

export const GRAM_PREFIX = 'blocklens::gram::';

export interface GramPart {
  tensor: string;
  /** Rank of the tensor (batch included). */
  rank: number;
}

export interface GramSpec {
  id: string;
  parts: GramPart[];
  /**
   * How a part becomes rows: 'rows' takes a 2-D [rows, d] tensor as it is (pooled outputs);
   * 'tokens' takes every position ([N, T, d] → [N·T, d]; NCHW → [N·H·W, C]).
   */
  mode: 'rows' | 'tokens';
  /** Graph input [N, T] whose values weight the rows (padding rows become zero); only with rows = N·T. */
  mask?: string;
  ones: boolean;
  /**
   * Only the products of the first `left` parts (and the ones column) with everything:
   * Lᵀ [L | Z_left+1 | … | Z_k] with L = [Z_1 | … | Z_left | 1], a [D_L, D] matrix. For the
   * normal equations of spans from one start block: X̃ᵀ [X̃ | Y_1 | …] without the Y-Y blocks.
   * One Gemm per block of columns, so no [rows, D] operand is ever assembled. Default: ZᵀZ.
   */
  left?: number;
  /**
   * Graph input (int64 [k], added when missing) of sample positions in the batch: every part
   * (and the mask) keeps only those samples (Gather on axis 0) before it becomes rows. Per-batch
   * train/held-out splits cost one product over all rows in total, not one per split.
   */
  select?: string;
}

/** Appends the nodes and outputs of every gram to `model.graph` (mutates the graph object it is given). */
export function appendGrams(model: ModelProto, grams: GramSpec[]): Map<string, string> {
  const graph = model.graph!;
  const opset = opsetVersion(model, '') ?? opsetVersion(model, 'ai.onnx') ?? 13;
  const { nodes, inits, name, node, int64s } = graphAppender('blocklens::gram_', 'blocklens/gram/');
  const toDouble = (x: string) => node('Cast', [x], [attr.int('to', DataType.DOUBLE)]);
  // Row columns, mask columns and ones columns are shared by every gram that needs the same
  // (tensor, selection, mask): each tensor is gathered and cast once per batch.
  const cache = new Map<string, string>();
  const shared = (key: string, make: () => string): string => {
    let v = cache.get(key);
    if (v === undefined) cache.set(key, (v = make()));
    return v;
  };
  const selected = (x: string, select?: string) => (select ? shared(`sel|${x}|${select}`, () => node('Gather', [x, select], [attr.int('axis', 0)])) : x);
  const gemm = (a: string, b: string, out?: string): string => {
    const inputs = [a, b];
    if (opset < 11) {
      // C is a required input of Gemm before opset 11.
      const c = name('c');
      inits.push(makeTensor(c, DataType.DOUBLE, [], Float64Array.of(0)));
      inputs.push(c);
    }
    return node('Gemm', inputs, [attr.int('transA', 1)], out);
  };
  const selects = new Set<string>();
  const outputs = new Map<string, string>();
  for (const g of grams) {
    if (g.parts.length === 0) throw new Error(`gram '${g.id}': no tensors`);
    if (g.left !== undefined && !(g.left >= 1 && g.left <= g.parts.length)) throw new Error(`gram '${g.id}': left must be 1 … ${g.parts.length}`);
    if (g.select) selects.add(g.select);
    const sel = g.select ?? '';
    const cols: string[] = [];
    let maskCol: string | undefined;
    if (g.mask) maskCol = shared(`mask|${g.mask}|${sel}`, () => node('Flatten', [toDouble(selected(g.mask!, g.select))], [attr.int('axis', 2)])); // [N·T, 1]
    for (const p of g.parts) {
      cols.push(
        shared(`col|${g.mode}|${p.tensor}|${sel}|${g.mask ?? ''}`, () => {
          const x = selected(p.tensor, g.select);
          let rows: string;
          if (g.mode === 'rows' || p.rank <= 2) {
            rows = p.rank === 2 ? x : node('Flatten', [x], [attr.int('axis', 1)]);
          } else if (p.rank === 4) {
            const t = node('Transpose', [x], [attr.ints('perm', [0, 2, 3, 1])]);
            rows = node('Flatten', [t], [attr.int('axis', 3)]);
          } else {
            // [N, T…, d]: every axis between batch and features is a token axis.
            const flat = p.rank === 3 ? x : node('Reshape', [x, int64s([0, -1, 0])]);
            rows = node('Flatten', [flat], [attr.int('axis', 2)]);
          }
          let col = toDouble(rows);
          if (maskCol) col = node('Mul', [col, maskCol]);
          return col;
        }),
      );
    }
    let ones: string | undefined;
    if (g.ones) {
      if (maskCol) ones = maskCol;
      else if (opset >= 9) {
        ones = shared(`ones|${cols[0]}`, () => {
          const shape = node('Shape', [cols[0]!]);
          const rowsDim = node('Gather', [shape, int64s([0])], [attr.int('axis', 0)]);
          const target = node('Concat', [rowsDim, int64s([1])], [attr.int('axis', 0)]);
          const one = makeTensor('', DataType.DOUBLE, [1], Float64Array.of(1));
          return node('ConstantOfShape', [target], [attr.tensor('value', one)]);
        });
      } else {
        // No ConstantOfShape before opset 9: 0·(row sum) + 1 (a row with NaN/Inf would give NaN).
        const zero = name('zero');
        const oneC = name('one');
        inits.push(makeTensor(zero, DataType.DOUBLE, [], Float64Array.of(0)), makeTensor(oneC, DataType.DOUBLE, [], Float64Array.of(1)));
        const s = node('ReduceSum', [cols[0]!], [attr.ints('axes', [1]), attr.int('keepdims', 1)]);
        ones = node('Add', [node('Mul', [s, zero]), oneC]);
      }
    }
    const out = `${GRAM_PREFIX}${g.id}`;
    if (g.left === undefined) {
      if (ones) cols.push(ones);
      const z = cols.length === 1 ? cols[0]! : node('Concat', cols, [attr.int('axis', 1)]);
      gemm(z, z, out);
    } else {
      const lc = cols.slice(0, g.left);
      if (ones) lc.push(ones);
      const l = lc.length === 1 ? lc[0]! : node('Concat', lc, [attr.int('axis', 1)]);
      const blocks = [gemm(l, l), ...cols.slice(g.left).map((c) => gemm(l, c))];
      if (blocks.length === 1) node('Identity', blocks, [], out);
      else node('Concat', blocks, [attr.int('axis', 1)], out);
    }
    outputs.set(g.id, out);
  }
  graph.node = [...graph.node, ...nodes];
  graph.initializer = [...graph.initializer, ...inits];
  const inputs = new Set(graph.input.map((i) => i.name));
  const newInputs = [...selects].filter((s) => !inputs.has(s)).map((s) => makeValueInfo(s, DataType.INT64, [null]));
  if (newInputs.length) graph.input = [...graph.input, ...newInputs];
  graph.output = [...graph.output, ...grams.map((g) => makeValueInfo(`${GRAM_PREFIX}${g.id}`, DataType.DOUBLE))];
  return outputs;
}
