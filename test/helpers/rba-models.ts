// Small block models built in code for the RBA tests: each block is a scoped group of nodes
// (`/blocks.k/…`, so detection finds them by name) computing h_k from h_{k−1}.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { after, before } from 'node:test';
import { createOrtMatmul, type MatmulBackend } from '../../src/engine/linalg/index';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { attr, makeGraph, makeModel, makeNode, makeTensor, makeValueInfo } from '../../src/engine/onnx/builder';
import { encodeModel } from '../../src/engine/onnx/codec';
import { DataType, type ModelProto, type NodeProto, type TensorProto } from '../../src/engine/onnx/types';

import { seededRandom } from './random';

export { seededRandom };

export class BlockGraph {
  nodes: NodeProto[] = [];
  inits: TensorProto[] = [];
  private n = 0;
  readonly rand: () => number;
  constructor(seed = 1) {
    this.rand = seededRandom(seed);
  }
  op(scope: string, type: string, inputs: string[], attrs: NodeProto['attribute'] = []): string {
    const name = `${scope}/${type}_${this.n++}`;
    const out = `${name}_output_0`;
    this.nodes.push(makeNode(type, inputs, [out], attrs, name));
    return out;
  }
  weight(name: string, dims: number[], values: (k: number) => number): string {
    const size = dims.reduce((a, b) => a * b, 1);
    this.inits.push(makeTensor(name, DataType.FLOAT, dims, Float32Array.from({ length: size }, (_, k) => values(k))));
    return name;
  }
  random(name: string, dims: number[], scale: number): string {
    return this.weight(name, dims, () => this.rand() * 2 * scale);
  }
}

export type BlockFn = (g: BlockGraph, scope: string, h: string, k: number) => string;

export const blocks = {
  affine: (d: number, dOut = d, bias = true): BlockFn => (g, s, h, k) => {
    const m = g.op(s, 'MatMul', [h, g.random(`w${k}`, [d, dOut], 1 / Math.sqrt(d))]);
    return bias ? g.op(s, 'Add', [m, g.random(`b${k}`, [dOut], 0.5)]) : m;
  },
  identity: (): BlockFn => (g, s, h) => g.op(s, 'Identity', [h]),
  /** h + scale·relu(h·W1)·W2: a nonlinear residual block. */
  mlp: (d: number, scale: number, hidden = 2 * d): BlockFn => (g, s, h, k) => {
    const a = g.op(s, 'Relu', [g.op(s, 'MatMul', [h, g.random(`w1_${k}`, [d, hidden], 1 / Math.sqrt(d))])]);
    const f = g.op(s, 'MatMul', [a, g.random(`w2_${k}`, [hidden, d], scale / Math.sqrt(hidden))]);
    return g.op(s, 'Add', [h, f]);
  },
  /** h + h·U·V with U: d×r, V: r×d (a rank-r linear residual). */
  lowrankResidual: (d: number, r: number): BlockFn => (g, s, h, k) => {
    const u = g.op(s, 'MatMul', [h, g.random(`u${k}`, [d, r], 1 / Math.sqrt(d))]);
    return g.op(s, 'Add', [h, g.op(s, 'MatMul', [u, g.random(`v${k}`, [r, d], 1 / Math.sqrt(r))])]);
  },
};

export interface BlockModelSpec {
  width: number;
  /** Tokens per sample: the input is [batch, tokens, d]; omitted → [batch, d]. */
  tokens?: number;
  blocks: BlockFn[];
  /** Scale applied to the input before block 0 (h₋₁ = scale·x). */
  inputScale?: number;
  /** Head: logits = h_{L−1}·W (classes columns). */
  classes?: number;
  opset?: number;
  seed?: number;
  /** Extra hook after all blocks are built (e.g. wire a later block to an earlier tensor). */
  finish?: (g: BlockGraph, outputs: string[]) => void;
}

export function buildBlockModel(spec: BlockModelSpec): ModelProto {
  const g = new BlockGraph(spec.seed ?? 1);
  const d = spec.width;
  let h = g.op('/embed', 'Mul', ['x', g.weight('input_scale', [], () => spec.inputScale ?? 1)]);
  const outs: string[] = [];
  spec.blocks.forEach((fn, k) => {
    h = fn(g, `/blocks.${k}`, h, k);
    outs.push(h);
  });
  spec.finish?.(g, outs);
  const lastWidth = Number(g.inits.find((t) => t.name === `w${spec.blocks.length - 1}`)?.dims[1] ?? d);
  const outShape = spec.tokens ? ['batch', spec.tokens] : ['batch'];
  let out: string;
  if (spec.classes) {
    out = 'logits';
    g.nodes.push(makeNode('MatMul', [h, g.random('head', [lastWidth, spec.classes], 1 / Math.sqrt(lastWidth))], [out], [], '/head/MatMul'));
  } else {
    out = 'y';
    g.nodes.push(makeNode('Identity', [h], [out], [], '/out/Identity'));
  }
  return makeModel({
    graph: makeGraph({
      name: 'rba_test',
      nodes: g.nodes,
      initializers: g.inits,
      inputs: [makeValueInfo('x', DataType.FLOAT, spec.tokens ? ['batch', spec.tokens, d] : ['batch', d])],
      outputs: [makeValueInfo(out, DataType.FLOAT, [...outShape, spec.classes ?? lastWidth])],
    }),
    opset: spec.opset ?? 13,
  });
}

export function tempDir(prefix = 'blocklens-rba-'): string {
  return mkdtempSync(path.join(tmpdir(), prefix));
}

export function writeModel(dir: string, name: string, model: ModelProto): string {
  const file = path.join(dir, name);
  writeFileSync(file, encodeModel(model));
  return file;
}

/**
 * The setup every RBA test file shares: an ORT matmul backend created before the file's tests
 * and disposed after them, and a temporary folder removed after them.
 */
export function rbaTestEnv(prefix?: string): { matmul: MatmulBackend; tmp: string } {
  let mm: MatmulBackend | undefined;
  const tmp = tempDir(prefix);
  before(async () => {
    mm = await createOrtMatmul();
  });
  after(async () => {
    await mm?.dispose();
    rmSync(tmp, { recursive: true, force: true });
  });
  const live = (): MatmulBackend => {
    if (!mm) throw new Error('rbaTestEnv: the matmul backend is created in before()');
    return mm;
  };
  return { matmul: { abt: (...a) => live().abt(...a), atb: (...a) => live().atb(...a), dispose: async () => {} }, tmp };
}

/**
 * x NCHW [N,3,4,4] → h = Transpose to NHWC → 3 residual blocks h + T(relu(Conv(T⁻¹(h)))) in NHWC
 * (a Transpose around each Conv, as tf2onnx writes them).
 */
export function nhwcModel(): ModelProto {
  const nodes: NodeProto[] = [makeNode('Transpose', ['x'], ['h'], [attr.ints('perm', [0, 2, 3, 1])])];
  const inits: ReturnType<typeof makeTensor>[] = [];
  let h = 'h';
  for (let i = 0; i < 3; i++) {
    inits.push(makeTensor(`w${i}`, DataType.FLOAT, [3, 3, 3, 3], Float32Array.from({ length: 81 }, (_, k) => Math.sin(k + i) * 0.2)));
    nodes.push(makeNode('Transpose', [h], [`c${i}`], [attr.ints('perm', [0, 3, 1, 2])]));
    nodes.push(makeNode('Conv', [`c${i}`, `w${i}`], [`k${i}`], [attr.ints('kernel_shape', [3, 3]), attr.ints('pads', [1, 1, 1, 1])]));
    nodes.push(makeNode('Relu', [`k${i}`], [`r${i}`]));
    nodes.push(makeNode('Transpose', [`r${i}`], [`t${i}`], [attr.ints('perm', [0, 2, 3, 1])]));
    nodes.push(makeNode('Add', [h, `t${i}`], [`o${i}`]));
    h = `o${i}`;
  }
  return makeModel({
    graph: makeGraph({ nodes, inputs: [makeValueInfo('x', DataType.FLOAT, ['N', 3, 4, 4])], outputs: [makeValueInfo(h, DataType.FLOAT, ['N', 4, 4, 3])], initializers: inits }),
    opset: 13,
  });
}
