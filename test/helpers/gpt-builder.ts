// Builds a GPT-style decoder (pre-LN, causal self-attention, MLP; HF-export naming
// `/transformer/h.i/…`) with random seeded weights, written as an .onnx graph plus one external
// data file. Weights stream to the data file tensor by tensor (one tensor in memory at a time) and
// the graph only holds references, so models far over the 2 GiB protobuf limit are built without
// any large buffer. Nothing here is trained.
import { open } from 'node:fs/promises';
import * as path from 'node:path';

import { attr, emptyTensor, makeGraph, makeModel, makeNode, makeTensor, makeValueInfo } from '../../src/engine/onnx/builder';
import { DATA_LOCATION_EXTERNAL, saveModelFile } from '../../src/engine/onnx/model-file';
import { DataType, type NodeProto, type TensorProto } from '../../src/engine/onnx/types';
import { seededRandom } from './random';

export interface GptSpec {
  layers: number;
  width: number;
  heads: number;
  /** Longest sequence (rows of the position table; also the synthetic sequence length). */
  context: number;
  vocab: number;
}

/** 24 layers of width 1408: 12·1408²·24 ≈ 571M weights, 2.30 GB (2.14 GiB) of float32. */
export const GPT_2GB: GptSpec = { layers: 24, width: 1408, heads: 11, context: 16, vocab: 1024 };

export interface BuiltGpt {
  model: string;
  data: string;
  /** Bytes of weights in the data file. */
  weightBytes: number;
  parameters: number;
}

/** Writes `gpt.onnx` and `gpt.onnx.data` into `dir`. */
export async function writeGpt(dir: string, spec: GptSpec, seed = 1, name = 'gpt'): Promise<BuiltGpt> {
  const modelPath = path.join(dir, `${name}.onnx`);
  const location = `${name}.onnx.data`;
  const dataPath = path.join(dir, location);
  const fh = await open(dataPath, 'w');
  let offset = 0;
  let parameters = 0;
  const rand = seededRandom(seed);
  const nodes: NodeProto[] = [];
  const inits: TensorProto[] = [];
  try {
    /** A float32 weight, written to the data file at a 64-byte aligned offset. */
    const weight = async (wname: string, dims: number[], scale: number, fill?: number): Promise<string> => {
      const n = dims.reduce((a, b) => a * b, 1);
      const data = new Float32Array(n);
      if (fill !== undefined) data.fill(fill);
      else for (let i = 0; i < n; i++) data[i] = rand() * 2 * scale;
      offset = Math.ceil(offset / 64) * 64;
      const bytes = new Uint8Array(data.buffer);
      for (let done = 0; done < bytes.length; ) {
        const { bytesWritten } = await fh.write(bytes, done, bytes.length - done, offset + done);
        done += bytesWritten;
      }
      const t = emptyTensor(wname);
      t.dims = dims.map(BigInt);
      t.dataType = DataType.FLOAT;
      t.dataLocation = DATA_LOCATION_EXTERNAL;
      t.externalData = [
        { key: 'location', value: location },
        { key: 'offset', value: String(offset) },
        { key: 'length', value: String(bytes.length) },
      ];
      inits.push(t);
      offset += bytes.length;
      parameters += n;
      return wname;
    };
    const ints = (iname: string, v: number[]) => {
      inits.push(makeTensor(iname, DataType.INT64, [v.length], BigInt64Array.from(v.map(BigInt))));
      return iname;
    };
    const scalar = (iname: string, v: number) => {
      inits.push(makeTensor(iname, DataType.INT64, [], BigInt64Array.of(BigInt(v))));
      return iname;
    };
    const op = (scope: string, type: string, inputs: string[], attrs: NodeProto['attribute'] = [], k = 0) => {
      const nname = `${scope}/${type}${k ? `_${k}` : ''}`;
      const out = `${nname}_output_0`;
      nodes.push(makeNode(type, inputs, [out], attrs, nname));
      return out;
    };
    const { width: d, heads: h, context: T, vocab: V } = spec;
    const hd = d / h;
    if (!Number.isInteger(hd)) throw new RangeError(`width ${d} is not a multiple of ${h} heads`);

    // Embeddings: token table + position table rows 0..T-1.
    const tok = op('/transformer/wte', 'Gather', [await weight('transformer.wte.weight', [V, d], 0.5), 'input_ids'], [attr.int('axis', 0)]);
    const shape = op('/transformer', 'Shape', ['input_ids']);
    const seqLen = op('/transformer', 'Gather', [shape, scalar('one', 1)], [attr.int('axis', 0)]);
    const positions = op('/transformer', 'Range', [scalar('zero', 0), seqLen, scalar('step', 1)]);
    const pos = op('/transformer/wpe', 'Gather', [await weight('transformer.wpe.weight', [T, d], 0.1), positions], [attr.int('axis', 0)]);
    let x = op('/transformer', 'Add', [tok, pos]);
    // Causal mask: −1e4 above the diagonal, cut to the sequence length.
    const maskData = new Float32Array(T * T);
    for (let i = 0; i < T; i++) for (let j = i + 1; j < T; j++) maskData[i * T + j] = -1e4;
    inits.push(makeTensor('causal_mask', DataType.FLOAT, [T, T], maskData));
    const seq1 = op('/transformer', 'Unsqueeze', [seqLen, ints('axes0', [0])]);
    const seq2 = op('/transformer', 'Concat', [seq1, seq1], [attr.int('axis', 0)]);
    const mask = op('/transformer', 'Slice', ['causal_mask', ints('starts00', [0, 0]), seq2, ints('axes01', [0, 1])]);

    const ln = async (scope: string, input: string, prefix: string) =>
      op(scope, 'LayerNormalization', [input, await weight(`${prefix}.weight`, [d], 0, 1), await weight(`${prefix}.bias`, [d], 0, 0)], [attr.int('axis', -1), attr.float('epsilon', 1e-5)]);
    const linear = async (scope: string, input: string, prefix: string, inDim: number, outDim: number) => {
      const m = op(scope, 'MatMul', [input, await weight(`${prefix}.weight`, [inDim, outDim], 1 / Math.sqrt(inDim))]);
      return op(scope, 'Add', [m, await weight(`${prefix}.bias`, [outDim], 0.02)]);
    };
    const headsShape = ints('shape_heads', [0, 0, h, hd]);
    const mergeShape = ints('shape_merge', [0, 0, d]);
    inits.push(makeTensor('attn_scale', DataType.FLOAT, [], Float32Array.of(1 / Math.sqrt(hd))));
    for (let i = 0; i < spec.layers; i++) {
      const s = `/transformer/h.${i}`;
      const p = `transformer.h.${i}`;
      const a = await ln(`${s}/ln_1`, x, `${p}.ln_1`);
      const heads = async (which: string, perm: number[]) => {
        const t = await linear(`${s}/attn/${which}`, a, `${p}.attn.${which}`, d, d);
        const r = op(`${s}/attn/${which}`, 'Reshape', [t, headsShape]);
        return op(`${s}/attn/${which}`, 'Transpose', [r], [attr.ints('perm', perm)]);
      };
      const q = await heads('q_proj', [0, 2, 1, 3]);
      const k = await heads('k_proj', [0, 2, 3, 1]);
      const v = await heads('v_proj', [0, 2, 1, 3]);
      let att = op(`${s}/attn`, 'MatMul', [q, k]);
      att = op(`${s}/attn`, 'Mul', [att, 'attn_scale']);
      att = op(`${s}/attn`, 'Add', [att, mask]);
      att = op(`${s}/attn`, 'Softmax', [att], [attr.int('axis', -1)]);
      let o = op(`${s}/attn`, 'MatMul', [att, v], [], 1);
      o = op(`${s}/attn`, 'Transpose', [o], [attr.ints('perm', [0, 2, 1, 3])]);
      o = op(`${s}/attn`, 'Reshape', [o, mergeShape]);
      o = await linear(`${s}/attn/c_proj`, o, `${p}.attn.c_proj`, d, d);
      x = op(s, 'Add', [x, o]);
      const m = await ln(`${s}/ln_2`, x, `${p}.ln_2`);
      let f = await linear(`${s}/mlp/c_fc`, m, `${p}.mlp.c_fc`, d, 4 * d);
      f = op(`${s}/mlp/act`, 'Relu', [f]);
      f = await linear(`${s}/mlp/c_proj`, f, `${p}.mlp.c_proj`, 4 * d, d);
      x = op(s, 'Add', [x, f], [], 1);
    }
    x = await ln('/transformer/ln_f', x, 'transformer.ln_f');
    const logits = op('/lm_head', 'MatMul', [x, await weight('lm_head.weight', [d, V], 1 / Math.sqrt(d))]);
    nodes.push(makeNode('Identity', [logits], ['logits'], [], '/lm_head/Identity'));
    await fh.sync();
  } finally {
    await fh.close();
  }
  const model = makeModel({
    graph: makeGraph({
      name: 'gpt_bench',
      nodes,
      initializers: inits,
      inputs: [makeValueInfo('input_ids', DataType.INT64, ['batch', 'sequence'])],
      outputs: [makeValueInfo('logits', DataType.FLOAT, ['batch', 'sequence', spec.vocab])],
    }),
    opset: 17,
  });
  await saveModelFile(modelPath, model);
  return { model: modelPath, data: dataPath, weightBytes: offset, parameters };
}
