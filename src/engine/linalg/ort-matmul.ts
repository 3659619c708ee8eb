// Float64 matrix products run by ONNX Runtime (CPU). Each product is a one-node model built
// with the ONNX builder: Gemm on tensor(double) with transA/transB, inputs with symbolic
// dimensions so that one cached session serves every size. ORT's CPU Gemm kernel is
// registered for double, so results are exact float64 products (no float32 detour).

import * as ort from 'onnxruntime-node';

import { attr, makeGraph, makeModel, makeNode, makeTensor, makeValueInfo } from '../onnx/builder.js';
import { encodeModel } from '../onnx/codec.js';
import { DataType } from '../onnx/types.js';
import { checkShape, type MatmulBackend } from './matmul.js';

type Op = 'abt' | 'atb';

/** The model for one op: C = Gemm(A, B) with A or B transposed. */
export function matmulModel(op: Op): Uint8Array {
  const [aDims, bDims] = op === 'abt' ? [['m', 'k'], ['n', 'k']] : [['r', 'm'], ['r', 'n']];
  const node = makeNode('Gemm', ['A', 'B'], ['C'], [attr.int(op === 'abt' ? 'transB' : 'transA', 1)], `blocklens_${op}`);
  const graph = makeGraph({
    name: `blocklens_${op}`,
    nodes: [node],
    inputs: [makeValueInfo('A', DataType.DOUBLE, aDims), makeValueInfo('B', DataType.DOUBLE, bDims)],
    outputs: [makeValueInfo('C', DataType.DOUBLE, ['m', 'n'])],
  });
  return encodeModel(makeModel({ graph, opset: 17 }));
}

export interface OrtMatmulOptions {
  /** Threads for one product (ORT default: one per physical core). */
  intraOpNumThreads?: number;
}

/** A MatmulBackend that runs products in ONNX Runtime, one cached session per op. */
export async function createOrtMatmul(opts: OrtMatmulOptions = {}): Promise<MatmulBackend> {
  const sessionOptions: ort.InferenceSession.SessionOptions = {
    executionProviders: ['cpu'],
    graphOptimizationLevel: 'all',
    logSeverityLevel: 3,
    // Products run between the model's batches (minibatch HSIC, block Gram): threads that spin
    // after a product would compete with the next forward pass.
    extra: { session: { intra_op: { allow_spinning: '0' } } },
  };
  if (opts.intraOpNumThreads !== undefined) sessionOptions.intraOpNumThreads = opts.intraOpNumThreads;
  const sessions = new Map<Op, Promise<ort.InferenceSession>>();
  let disposed = false;
  const session = (op: Op): Promise<ort.InferenceSession> => {
    if (disposed) return Promise.reject(new Error('ORT matmul backend used after dispose()'));
    let s = sessions.get(op);
    if (s === undefined) {
      s = ort.InferenceSession.create(matmulModel(op), sessionOptions);
      sessions.set(op, s);
    }
    return s;
  };
  const run = async (op: Op, a: Float64Array, aDims: number[], b: Float64Array, bDims: number[]): Promise<Float64Array> => {
    const s = await session(op);
    const out = await s.run({ A: new ort.Tensor('float64', a, aDims), B: new ort.Tensor('float64', b, bDims) });
    return out.C.data as Float64Array;
  };
  // Make sure the environment really runs double Gemm before handing the backend out.
  await session('abt');
  await session('atb');
  return {
    async abt(a, m, b, n, k) {
      checkShape('abt: A', a, m, k);
      checkShape('abt: B', b, n, k);
      if (m === 0 || n === 0 || k === 0) return new Float64Array(m * n);
      return run('abt', a, [m, k], b, [n, k]);
    },
    async atb(a, r, m, b, n) {
      checkShape('atb: A', a, r, m);
      checkShape('atb: B', b, r, n);
      if (m === 0 || n === 0 || r === 0) return new Float64Array(m * n);
      return run('atb', a, [r, m], b, [r, n]);
    },
    async dispose() {
      disposed = true;
      const all = [...sessions.values()];
      sessions.clear();
      for (const s of all) await (await s).release();
    },
  };
}

/**
 * Normal equations of one start block from float32 rows, in one ONNX Runtime call (float64):
 * X [n, d] and Y [n, c] → G = X̃ᵀX̃ ((d+1)², X̃ = [X, 1]), C = X̃ᵀY ((d+1)×c, its last row the
 * column sums of Y) and S = Σ_rows Y² per column (c). The rows are cast inside the graph, so
 * JavaScript only copies float32 row segments.
 */
export interface NormalEquations {
  /** `gram: false` skips G (returned empty): later column groups of the same rows. */
  run(x: Float32Array, n: number, d: number, y: Float32Array, c: number, gram?: boolean): Promise<{ g: Float64Array; cross: Float64Array; ysq: Float64Array }>;
  dispose(): Promise<void>;
}

export function normalEquationsModel(gram = true): Uint8Array {
  const nodes = [
    makeNode('Cast', ['X'], ['Xd'], [attr.int('to', DataType.DOUBLE)], 'cast_x'),
    makeNode('Cast', ['Y'], ['Yd'], [attr.int('to', DataType.DOUBLE)], 'cast_y'),
    makeNode('Shape', ['X'], ['xs'], [], 'shape_x'),
    makeNode('Slice', ['xs', 'zero', 'one'], ['rows'], [], 'rows'),
    makeNode('Concat', ['rows', 'one'], ['onesShape'], [attr.int('axis', 0)], 'ones_shape'),
    makeNode('ConstantOfShape', ['onesShape'], ['ones'], [attr.tensor('value', makeTensor('', DataType.DOUBLE, [1], Float64Array.of(1)))], 'ones'),
    makeNode('Concat', ['Xd', 'ones'], ['Xt'], [attr.int('axis', 1)], 'augment'),
    ...(gram ? [makeNode('Gemm', ['Xt', 'Xt'], ['G'], [attr.int('transA', 1)], 'gram')] : []),
    makeNode('Gemm', ['Xt', 'Yd'], ['C'], [attr.int('transA', 1)], 'cross'),
    makeNode('ReduceSumSquare', ['Yd'], ['S'], [attr.ints('axes', [0]), attr.int('keepdims', 0)], 'ysq'),
  ];
  const graph = makeGraph({
    name: 'blocklens_normal_equations',
    nodes,
    initializers: [
      makeTensor('zero', DataType.INT64, [1], BigInt64Array.of(0n)),
      makeTensor('one', DataType.INT64, [1], BigInt64Array.of(1n)),
    ],
    inputs: [makeValueInfo('X', DataType.FLOAT, ['n', 'd']), makeValueInfo('Y', DataType.FLOAT, ['n', 'c'])],
    outputs: [...(gram ? [makeValueInfo('G', DataType.DOUBLE, ['e', 'e'])] : []), makeValueInfo('C', DataType.DOUBLE, ['e', 'c']), makeValueInfo('S', DataType.DOUBLE, ['c'])],
  });
  return encodeModel(makeModel({ graph, opset: 17 }));
}

export async function createNormalEquations(): Promise<NormalEquations> {
  const options: ort.InferenceSession.SessionOptions = {
    executionProviders: ['cpu'],
    graphOptimizationLevel: 'all',
    logSeverityLevel: 3,
    // Transient buffers go back to the system after each call instead of growing an arena.
    enableCpuMemArena: false,
    enableMemPattern: false,
    extra: { session: { intra_op: { allow_spinning: '0' } } },
  };
  const withGram = await ort.InferenceSession.create(normalEquationsModel(true), options);
  let crossOnly: ort.InferenceSession | undefined;
  return {
    async run(x, n, d, y, c, gram = true) {
      checkShape('normal equations: X', x, n, d);
      checkShape('normal equations: Y', y, n, c);
      const session = gram ? withGram : (crossOnly ??= await ort.InferenceSession.create(normalEquationsModel(false), options));
      const out = await session.run({ X: new ort.Tensor('float32', x, [n, d]), Y: new ort.Tensor('float32', y, [n, c]) });
      return { g: gram ? (out.G!.data as Float64Array) : new Float64Array(0), cross: out.C!.data as Float64Array, ysq: out.S!.data as Float64Array };
    },
    async dispose() {
      await withGram.release();
      await crossOnly?.release();
    },
  };
}
