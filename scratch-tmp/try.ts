import * as ort from 'onnxruntime-node';
import { makeNode, makeGraph, makeModel, makeValueInfo, attr } from '/work/main/src/engine/onnx/builder';
import { encodeModel, decodeModel } from '/work/main/src/engine/onnx/codec';
import { DataType } from '/work/main/src/engine/onnx/types';
async function main() {
  for (const variant of ['matmulT', 'gemm']) {
    const nodes = variant === 'gemm'
      ? [makeNode('Gemm', ['A', 'B'], ['C'], [attr.int('transB', 1)])]
      : [makeNode('Transpose', ['B'], ['Bt'], [attr.ints('perm', [1, 0])]), makeNode('MatMul', ['A', 'Bt'], ['C'])];
    const g = makeGraph({ nodes, inputs: [makeValueInfo('A', DataType.DOUBLE, ['m', 'k']), makeValueInfo('B', DataType.DOUBLE, ['n', 'k'])], outputs: [makeValueInfo('C', DataType.DOUBLE, ['m', 'n'])] });
    const bytes = encodeModel(makeModel({ graph: g, opset: 17 }));
    const back = encodeModel(decodeModel(bytes));
    console.log(variant, bytes.length, Buffer.compare(Buffer.from(bytes), Buffer.from(back)));
    const s = await ort.InferenceSession.create(bytes);
    for (const [m, k, n] of [[2, 3, 2], [2000, 512, 2000]]) {
      const a = new Float64Array(m * k).map(() => Math.random());
      const b = new Float64Array(n * k).map(() => Math.random());
      let t = performance.now();
      const out = await s.run({ A: new ort.Tensor('float64', a, [m, k]), B: new ort.Tensor('float64', b, [n, k]) });
      t = performance.now() - t;
      const c = out.C.data as Float64Array;
      let ref = 0; for (let i = 0; i < k; i++) ref += a[i] * b[(n - 1) * k + i];
      console.log(variant, m, k, n, t.toFixed(1), 'ms', c[n - 1], ref);
    }
  }
}
main();
