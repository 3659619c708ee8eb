// In-graph float64 cross-products: nodes appended to an (instrumented) model so that ONNX
// Runtime hands out ZᵀZ per batch, Z = [Z_1 | … | Z_k | 1] the rows of several tensors side by
// side (plus a ones column). Only the D×D product leaves the session, never the rows, and the
// product runs in ORT's float64 Gemm.
import { attr, makeNode, makeTensor, makeValueInfo, opsetVersion } from '../onnx/builder.js';
import { DataType, type ModelProto, type NodeProto, type TensorProto } from '../onnx/types.js';

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
}

/** Appends the nodes and outputs of every gram to `model.graph` (mutates the graph object it is given). */
export function appendGrams(model: ModelProto, grams: GramSpec[]): Map<string, string> {
  const graph = model.graph!;
  const opset = opsetVersion(model, '') ?? opsetVersion(model, 'ai.onnx') ?? 13;
  const nodes: NodeProto[] = [];
  const inits: TensorProto[] = [];
  let n = 0;
  const name = (hint: string) => `blocklens::gram_${hint}_${n++}`;
  const node = (op: string, inputs: string[], attrs: NodeProto['attribute'] = [], out?: string): string => {
    const o = out ?? name(op);
    nodes.push(makeNode(op, inputs, [o], attrs, `blocklens/gram/${op}_${n++}`));
    return o;
  };
  const int64s = (values: number[]): string => {
    const nm = name('const');
    inits.push(makeTensor(nm, DataType.INT64, [values.length], BigInt64Array.from(values.map(BigInt))));
    return nm;
  };
  const toDouble = (x: string) => node('Cast', [x], [attr.int('to', DataType.DOUBLE)]);
  const outputs = new Map<string, string>();
  for (const g of grams) {
    if (g.parts.length === 0) throw new Error(`gram '${g.id}': no tensors`);
    const cols: string[] = [];
    let maskCol: string | undefined;
    if (g.mask) maskCol = node('Flatten', [toDouble(g.mask)], [attr.int('axis', 2)]); // [N·T, 1]
    for (const p of g.parts) {
      let rows: string;
      if (g.mode === 'rows' || p.rank <= 2) {
        rows = p.rank === 2 ? p.tensor : node('Flatten', [p.tensor], [attr.int('axis', 1)]);
      } else if (p.rank === 4) {
        const t = node('Transpose', [p.tensor], [attr.ints('perm', [0, 2, 3, 1])]);
        rows = node('Flatten', [t], [attr.int('axis', 3)]);
      } else {
        // [N, T…, d]: every axis between batch and features is a token axis.
        const flat = p.rank === 3 ? p.tensor : node('Reshape', [p.tensor, int64s([0, -1, 0])]);
        rows = node('Flatten', [flat], [attr.int('axis', 2)]);
      }
      let col = toDouble(rows);
      if (maskCol) col = node('Mul', [col, maskCol]);
      cols.push(col);
    }
    if (g.ones) {
      if (maskCol) cols.push(maskCol);
      else if (opset >= 9) {
        const shape = node('Shape', [cols[0]!]);
        const rowsDim = node('Gather', [shape, int64s([0])], [attr.int('axis', 0)]);
        const target = node('Concat', [rowsDim, int64s([1])], [attr.int('axis', 0)]);
        const one = makeTensor('', DataType.DOUBLE, [1], Float64Array.of(1));
        cols.push(node('ConstantOfShape', [target], [attr.tensor('value', one)]));
      } else {
        // No ConstantOfShape before opset 9: 0·(row sum) + 1 (a row with NaN/Inf would give NaN).
        const zero = name('zero');
        const oneC = name('one');
        inits.push(makeTensor(zero, DataType.DOUBLE, [], Float64Array.of(0)), makeTensor(oneC, DataType.DOUBLE, [], Float64Array.of(1)));
        const s = node('ReduceSum', [cols[0]!], [attr.ints('axes', [1]), attr.int('keepdims', 1)]);
        cols.push(node('Add', [node('Mul', [s, zero]), oneC]));
      }
    }
    const z = cols.length === 1 ? cols[0]! : node('Concat', cols, [attr.int('axis', 1)]);
    const out = `${GRAM_PREFIX}${g.id}`;
    const gemmInputs = [z, z];
    if (opset < 11) {
      // C is a required input of Gemm before opset 11.
      const c = name('c');
      inits.push(makeTensor(c, DataType.DOUBLE, [], Float64Array.of(0)));
      gemmInputs.push(c);
    }
    node('Gemm', gemmInputs, [attr.int('transA', 1)], out);
    outputs.set(g.id, out);
  }
  graph.node = [...graph.node, ...nodes];
  graph.initializer = [...graph.initializer, ...inits];
  graph.output = [...graph.output, ...grams.map((g) => makeValueInfo(`${GRAM_PREFIX}${g.id}`, DataType.DOUBLE))];
  return outputs;
}
