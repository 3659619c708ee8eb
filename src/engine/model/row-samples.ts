// In-graph row sampling: nodes appended to an (instrumented) model so that ONNX Runtime hands
// out a few chosen token rows of several tensors per batch, never the whole activations.
//
// Per batch the caller feeds k draws: `sample` (int64 [k], the sample's index in the batch) and
// `u` (float32 [k], in [0, 1)). For each tensor the graph computes its number of positions per
// sample T (tokens, or H·W of a feature map) from its runtime shape, the position
// p = floor(u·T), and gathers row (sample, p) of the tensor seen as [N·T, d] rows:
//   [N, d]        row `sample` (p = 0)
//   [N, T, d]     token p                 ('tnd' layout: transposed first)
//   [N, C, H, W]  the C channels at spatial position p = h·W + w   (channels-last: [N, H, W, C])
// Outputs per tensor: rows [k, d] (float32), p (int64 [k]) and the tensor's shape (int64).
// Tensors with the same T get the same positions for the same draw, so their rows pair up.
import { attr, graphAppender, makeValueInfo } from '../onnx/builder.js';
import { DataType, type ModelProto } from '../onnx/types.js';

export const ROWS_PREFIX = 'blocklens::rows::';

export type RowLayout = 'vector' | 'ntd' | 'tnd' | 'nchw' | 'nhwc';

export interface RowSampleSpec {
  id: string;
  tensors: { tensor: string; layout: RowLayout }[];
}

export interface RowSampleOutputs {
  /** Graph inputs to feed per batch. */
  sampleInput: string;
  uInput: string;
  /** Per tensor (in spec order): output names. `position` is absent for 'vector' tensors. */
  tensors: { tensor: string; layout: RowLayout; rows: string; position?: string; shape: string }[];
}

/** Appends the sampling nodes, inputs and outputs of `spec` to `model.graph` (mutates it). */
export function appendRowSamples(model: ModelProto, spec: RowSampleSpec): RowSampleOutputs {
  const graph = model.graph!;
  const base = `${ROWS_PREFIX}${spec.id}::`;
  const { nodes, inits, name, node, int64s } = graphAppender(base, 'blocklens/rows/');
  const sampleInput = `${base}sample`;
  const uInput = `${base}u`;
  const dimAt = (shape: string, axis: number) => node('Gather', [shape, int64s([axis])], [attr.int('axis', 0)]); // int64 [1]
  const outputs: RowSampleOutputs['tensors'] = [];
  const outInfos = [];
  for (const { tensor, layout } of spec.tensors) {
    const shape = node('Shape', [tensor], [], name('shape'));
    let flat: string;
    let positions: string | undefined;
    let index: string;
    if (layout === 'vector') {
      flat = tensor;
      index = sampleInput;
    } else {
      let perSample: string;
      if (layout === 'ntd') {
        flat = node('Flatten', [tensor], [attr.int('axis', 2)]);
        perSample = dimAt(shape, 1);
      } else if (layout === 'tnd') {
        flat = node('Flatten', [node('Transpose', [tensor], [attr.ints('perm', [1, 0, 2])])], [attr.int('axis', 2)]);
        perSample = dimAt(shape, 0);
      } else if (layout === 'nchw') {
        flat = node('Flatten', [node('Transpose', [tensor], [attr.ints('perm', [0, 2, 3, 1])])], [attr.int('axis', 3)]);
        perSample = node('Mul', [dimAt(shape, 2), dimAt(shape, 3)]);
      } else {
        flat = node('Flatten', [tensor], [attr.int('axis', 3)]);
        perSample = node('Mul', [dimAt(shape, 1), dimAt(shape, 2)]);
      }
      const tf = node('Cast', [perSample], [attr.int('to', DataType.FLOAT)]);
      positions = node('Cast', [node('Floor', [node('Mul', [uInput, tf])])], [attr.int('to', DataType.INT64)], name('position'));
      index = node('Add', [node('Mul', [sampleInput, perSample]), positions]);
    }
    const rows = node('Cast', [node('Gather', [flat, index], [attr.int('axis', 0)])], [attr.int('to', DataType.FLOAT)], name('rows'));
    outputs.push({ tensor, layout, rows, shape, ...(positions ? { position: positions } : {}) });
    outInfos.push(makeValueInfo(rows, DataType.FLOAT), makeValueInfo(shape, DataType.INT64));
    if (positions) outInfos.push(makeValueInfo(positions, DataType.INT64));
  }
  graph.node = [...graph.node, ...nodes];
  graph.initializer = [...graph.initializer, ...inits];
  graph.input = [...graph.input, makeValueInfo(sampleInput, DataType.INT64, ['k']), makeValueInfo(uInput, DataType.FLOAT, ['k'])];
  graph.output = [...graph.output, ...outInfos];
  return { sampleInput, uInput, tensors: outputs };
}
