import * as ort from 'onnxruntime-node';
import { createOrtMatmul, jsMatmul } from '../src/engine/linalg';
import { makeNode, makeGraph, makeModel, makeValueInfo, attr } from '../src/engine/onnx/builder';
import { encodeModel } from '../src/engine/onnx/codec';
import { DataType } from '../src/engine/onnx/types';
const rnd = (n: number) => { const a = new Float64Array(n); for (let i = 0; i < n; i++) a[i] = Math.random() * 2 - 1; return a; };
async function time(f: () => Promise<unknown>, reps = 3) { let best = Infinity; for (let i = 0; i < reps; i++) { const t = performance.now(); await f(); best = Math.min(best, performance.now() - t); } return best; }
async function main() {
  const m = 2000, k = 512, n = 2000;
  const a = rnd(m * k), b = rnd(n * k);
  const o = await createOrtMatmul();
  const tOrt = await time(() => o.abt(a, m, b, n, k));
  const tJs = await time(() => jsMatmul.abt(a, m, b, n, k), 1);
  console.log(`abt ${m}x${k}·(${n}x${k})ᵀ: ORT Gemm ${tOrt.toFixed(1)} ms, JS ${tJs.toFixed(1)} ms, ratio ${(tJs / tOrt).toFixed(1)}`);
  const r = 20000, mm = 512, nn = 512;
  const x = rnd(r * mm), y = rnd(r * nn);
  const tOrt2 = await time(() => o.atb(x, r, mm, y, nn));
  const tJs2 = await time(() => jsMatmul.atb(x, r, mm, y, nn), 1);
  console.log(`atb (${r}x${mm})ᵀ·${r}x${nn}: ORT Gemm ${tOrt2.toFixed(1)} ms, JS ${tJs2.toFixed(1)} ms, ratio ${(tJs2 / tOrt2).toFixed(1)}`);
  // Transpose+MatMul alternative
  const g = makeGraph({ nodes: [makeNode('Transpose', ['B'], ['Bt'], [attr.ints('perm', [1, 0])]), makeNode('MatMul', ['A', 'Bt'], ['C'])], inputs: [makeValueInfo('A', DataType.DOUBLE, ['m', 'k']), makeValueInfo('B', DataType.DOUBLE, ['n', 'k'])], outputs: [makeValueInfo('C', DataType.DOUBLE, ['m', 'n'])] });
  const s = await ort.InferenceSession.create(encodeModel(makeModel({ graph: g, opset: 17 })));
  const tMM = await time(() => s.run({ A: new ort.Tensor('float64', a, [m, k]), B: new ort.Tensor('float64', b, [n, k]) }));
  console.log(`abt via Transpose+MatMul: ${tMM.toFixed(1)} ms`);
  await o.dispose();
}
main();
