// Float64 matrix products run by ONNX Runtime (CPU). Each product is a one-node model built
// with the ONNX builder: Gemm on tensor(double) with transA/transB, inputs with symbolic
// dimensions so that one cached session serves every size. ORT's CPU Gemm kernel is
// registered for double, so results are exact float64 products (no float32 detour).

import * as ort from 'onnxruntime-node';

import { attr, makeGraph, makeModel, makeNode, makeValueInfo } from '../onnx/builder.js';
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
