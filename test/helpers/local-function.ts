// A model whose blocks call a model-local function (ModelProto field 25): h_{i+1} = LinBlock(h_i,
// A_i, b_i) with LinBlock(x, A, b) = x·A + b defined in the model, plus a TrainingInfoProto
// (field 20) and an unknown field (1000). The same model with the function inlined serves as
// the reference. Protobuf bytes for the fields the codec does not know are written here.
import { encodeNode, encodeModel, decodeModel } from '../../src/engine/onnx/codec';
import { makeGraph, makeModel, makeNode, makeTensor, makeValueInfo } from '../../src/engine/onnx/builder';
import { DataType, type ModelProto } from '../../src/engine/onnx/types';
import { Rng } from '../../src/engine/random';

function varint(v: number): number[] {
  const out: number[] = [];
  while (v > 127) {
    out.push((v & 127) | 128);
    v = Math.floor(v / 128);
  }
  out.push(v);
  return out;
}
const field = (no: number, payload: Uint8Array | number[]): number[] => [...varint((no << 3) | 2), ...varint(payload.length), ...payload];
const str = (no: number, s: string) => field(no, [...new TextEncoder().encode(s)]);

export function functionProtoBytes(): Uint8Array {
  const opset = [...str(1, ''), ...varint((2 << 3) | 0), ...varint(13)];
  return Uint8Array.from([
    ...str(1, 'LinBlock'),
    ...str(4, 'x'), ...str(4, 'A'), ...str(4, 'b'),
    ...str(5, 'y'),
    ...field(7, encodeNode(makeNode('MatMul', ['x', 'A'], ['t'], [], 'matmul'))),
    ...field(7, encodeNode(makeNode('Add', ['t', 'b'], ['y'], [], 'add'))),
    ...field(9, opset),
    ...str(10, 'local'),
  ]);
}

/** Extra top-level fields: the function (25), an empty TrainingInfoProto (20), unknown field 1000 = 7. */
export function extraModelFields(): Uint8Array {
  return Uint8Array.from([...field(25, functionProtoBytes()), ...field(20, []), ...varint((1000 << 3) | 0), 7]);
}

export function localFunctionModels(width = 8, blocks = 4): { withFunction: ModelProto; inlined: ModelProto } {
  const rng = new Rng(5, 'local-function');
  const inits = [];
  for (let i = 0; i < blocks; i++) {
    inits.push(makeTensor(`A${i}`, DataType.FLOAT, [width, width], Float32Array.from({ length: width * width }, () => rng.normal() / Math.sqrt(width))));
    inits.push(makeTensor(`b${i}`, DataType.FLOAT, [width], Float32Array.from({ length: width }, () => rng.normal() * 0.1)));
  }
  const h = (i: number) => (i === 0 ? 'x' : i === blocks ? 'y' : `/blocks.${i - 1}/h`);
  const io = { inputs: [makeValueInfo('x', DataType.FLOAT, ['batch', width])], outputs: [makeValueInfo('y', DataType.FLOAT, ['batch', width])], initializers: inits };
  const called = makeGraph({
    name: 'local_function', ...io,
    nodes: Array.from({ length: blocks }, (_, i) => makeNode('LinBlock', [h(i), `A${i}`, `b${i}`], [h(i + 1)], [], `/blocks.${i}/LinBlock`, 'local')),
  });
  const inlined = makeGraph({
    name: 'inlined', ...io,
    nodes: Array.from({ length: blocks }, (_, i) => [
      makeNode('MatMul', [h(i), `A${i}`], [`/blocks.${i}/t`], [], `/blocks.${i}/MatMul`),
      makeNode('Add', [`/blocks.${i}/t`, `b${i}`], [h(i + 1)], [], `/blocks.${i}/Add`),
    ]).flat(),
  });
  const base = encodeModel(makeModel({ graph: called, opset: [{ domain: '', version: 13 }, { domain: 'local', version: 1 }], irVersion: 8 }));
  const extra = extraModelFields();
  const bytes = new Uint8Array(base.length + extra.length);
  bytes.set(base);
  bytes.set(extra, base.length);
  return { withFunction: decodeModel(bytes), inlined: makeModel({ graph: inlined, opset: 13, irVersion: 8 }) };
}
