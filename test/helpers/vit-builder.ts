// Builds ViT-style ONNX models in code (timm naming `/blocks.i/…`, random seeded weights, any
// opset from 13): the ViT-small-sized one for benchmarks (224×224 RGB, patch 16, width 384,
// 6 heads, 12 blocks, MLP 1536), small ones for tests of newer opsets. Nothing here is trained.
import { attr, makeGraph, makeModel, makeNode, makeTensor, makeValueInfo } from '../../src/engine/onnx/builder';
import { DataType, type ModelProto, type NodeProto, type TensorProto } from '../../src/engine/onnx/types';
import { seededRandom } from './random';

export interface VitSpec {
  image: number;
  patch: number;
  width: number;
  heads: number;
  layers: number;
  mlp: number;
  classes: number;
  /** Default-domain opset (13 or newer). */
  opset?: number;
}

export const VIT_SMALL: VitSpec = { image: 224, patch: 16, width: 384, heads: 6, layers: 12, mlp: 1536, classes: 1000 };

export function buildVit(spec: VitSpec = VIT_SMALL, seed = 1): ModelProto {
  const rand = seededRandom(seed);
  const nodes: NodeProto[] = [];
  const inits: TensorProto[] = [];
  const weight = (name: string, dims: number[], scale: number, fill?: number) => {
    const n = dims.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n);
    for (let i = 0; i < n; i++) data[i] = fill ?? rand() * 2 * scale;
    inits.push(makeTensor(name, DataType.FLOAT, dims, data));
    return name;
  };
  const ints = (name: string, v: number[]) => {
    inits.push(makeTensor(name, DataType.INT64, [v.length], BigInt64Array.from(v.map(BigInt))));
    return name;
  };
  const op = (scope: string, type: string, inputs: string[], attrs: NodeProto['attribute'] = [], k = 0) => {
    const name = `${scope}/${type}${k ? `_${k}` : ''}`;
    const out = `${name}_output_0`;
    nodes.push(makeNode(type, inputs, [out], attrs, name));
    return out;
  };
  const { width: d, heads: h, patch, image } = spec;
  const tokens = (image / patch) ** 2 + 1;
  const hd = d / h;

  // Embeddings: Conv patchify, flatten, transpose, CLS concat, position add.
  let x = op('/patch_embed/proj', 'Conv', ['pixel_values', weight('patch_embed.proj.weight', [d, 3, patch, patch], 1 / Math.sqrt(3 * patch * patch)), weight('patch_embed.proj.bias', [d], 0.02)], [attr.ints('kernel_shape', [patch, patch]), attr.ints('strides', [patch, patch])]);
  x = op('/patch_embed', 'Reshape', [x, ints('shape_patches', [0, d, -1])]);
  x = op('/patch_embed', 'Transpose', [x], [attr.ints('perm', [0, 2, 1])]);
  const batch = op('', 'Shape', [x], [attr.int('start', 0), attr.int('end', 1)]);
  const clsShape = op('', 'Concat', [batch, ints('cls_rest', [1, d])], [attr.int('axis', 0)]);
  const cls = op('', 'Expand', [weight('cls_token', [1, 1, d], 0.02), clsShape]);
  x = op('', 'Concat', [cls, x], [attr.int('axis', 1)], 1);
  x = op('', 'Add', [x, weight('pos_embed', [1, tokens, d], 0.02)]);

  const ln = (scope: string, input: string, prefix: string) =>
    op(scope, 'LayerNormalization', [input, weight(`${prefix}.weight`, [d], 0, 1), weight(`${prefix}.bias`, [d], 0, 0)], [attr.int('axis', -1), attr.float('epsilon', 1e-6)]);
  const linear = (scope: string, input: string, prefix: string, inDim: number, outDim: number) => {
    const m = op(scope, 'MatMul', [input, weight(`${prefix}.weight`, [inDim, outDim], 1 / Math.sqrt(inDim))]);
    return op(scope, 'Add', [m, weight(`${prefix}.bias`, [outDim], 0.02)]);
  };
  const headsShape = ints('shape_heads', [0, 0, h, hd]);
  const mergeShape = ints('shape_merge', [0, 0, d]);
  for (let i = 0; i < spec.layers; i++) {
    const s = `/blocks.${i}`;
    const p = `blocks.${i}`;
    const a = ln(`${s}/norm1`, x, `${p}.norm1`);
    const heads = (which: string, perm: number[]) => {
      const t = linear(`${s}/attn/${which}`, a, `${p}.attn.${which}`, d, d);
      const r = op(`${s}/attn/${which}`, 'Reshape', [t, headsShape]);
      return op(`${s}/attn/${which}`, 'Transpose', [r], [attr.ints('perm', perm)]);
    };
    const q = heads('q', [0, 2, 1, 3]);
    const k = heads('k', [0, 2, 3, 1]);
    const v = heads('v', [0, 2, 1, 3]);
    let att = op(`${s}/attn`, 'MatMul', [q, k]);
    att = op(`${s}/attn`, 'Mul', [att, weight(`${p}.attn.scale`, [], 0, 1 / Math.sqrt(hd))]);
    att = op(`${s}/attn`, 'Softmax', [att], [attr.int('axis', -1)]);
    let o = op(`${s}/attn`, 'MatMul', [att, v], [], 1);
    o = op(`${s}/attn`, 'Transpose', [o], [attr.ints('perm', [0, 2, 1, 3])]);
    o = op(`${s}/attn`, 'Reshape', [o, mergeShape]);
    o = linear(`${s}/attn/proj`, o, `${p}.attn.proj`, d, d);
    x = op(s, 'Add', [x, o]);
    const m = ln(`${s}/norm2`, x, `${p}.norm2`);
    let f = linear(`${s}/mlp/fc1`, m, `${p}.mlp.fc1`, d, spec.mlp);
    f = op(`${s}/mlp/act`, 'Relu', [f]);
    f = linear(`${s}/mlp/fc2`, f, `${p}.mlp.fc2`, spec.mlp, d);
    x = op(s, 'Add', [x, f], [], 1);
  }
  x = ln('/norm', x, 'norm');
  const first = op('', 'Gather', [x, ints('index0', [0])], [attr.int('axis', 1)]);
  const pooled = op('', 'Squeeze', [first, ints('axis1', [1])]);
  const logits = linear('/head', pooled, 'head', d, spec.classes);
  nodes.push(makeNode('Identity', [logits], ['logits'], [], '/head/Identity'));
  return makeModel({
    graph: makeGraph({
      name: 'vit_small_bench',
      nodes,
      initializers: inits,
      inputs: [makeValueInfo('pixel_values', DataType.FLOAT, ['batch', 3, image, image])],
      outputs: [makeValueInfo('logits', DataType.FLOAT, ['batch', spec.classes])],
    }),
    opset: spec.opset ?? 17,
  });
}
