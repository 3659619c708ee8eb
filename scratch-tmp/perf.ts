import { readFileSync } from 'node:fs';
import { decodeModel, encodeModel } from '../src/engine/onnx/codec';
import { WireWriter, WireType } from '../src/engine/onnx/wire';
function best(f: () => unknown, n = 5) { let b = Infinity; for (let i = 0; i < n; i++) { const t = performance.now(); f(); b = Math.min(b, performance.now() - t); } return b; }
for (const f of ['test/fixtures/models/gpt_tiny.onnx', 'test/fixtures/models/bert_tiny.onnx', 'test/fixtures/models/vit_tiny.onnx']) {
  const b = new Uint8Array(readFileSync(f));
  const m = decodeModel(b);
  console.log(f, b.length, 'decode', best(() => decodeModel(b), 20).toFixed(2), 'ms encode', best(() => encodeModel(m), 20).toFixed(2), 'ms');
}
// 100 MB raw data, 20k nodes
function synth(packed: boolean) {
  const w = new WireWriter();
  w.tag(1, WireType.VARINT); w.uint32(8);
  w.tag(7, WireType.LEN); w.fork();
  for (let i = 0; i < 20000; i++) { w.tag(1, WireType.LEN); w.fork(); w.tag(1, 2); w.string(`t${i}`); w.tag(2, 2); w.string(`t${i+1}`); w.tag(3, 2); w.string(`/encoder/layer.${i}/attention/MatMul`); w.tag(4, 2); w.string('MatMul'); w.ldelim(); }
  const chunk = new Uint8Array(1 << 20); const floats = new Float32Array(1 << 18).fill(0.5);
  for (let i = 0; i < 100; i++) { w.tag(5, 2); w.fork(); w.tag(1, 0); w.uint32(1 << 18); w.tag(2, 0); w.uint32(1); w.tag(8, 2); w.string(`w${i}`);
    if (packed) { w.tag(4, 2); w.uint32(1 << 20); w.floats(floats); } else { w.tag(9, 2); w.bytes(chunk); } w.ldelim(); }
  w.ldelim();
  return w.finish();
}
for (const packed of [false, true]) {
  const b = synth(packed);
  const t = performance.now(); const m = decodeModel(b); const d = performance.now() - t;
  const t2 = performance.now(); encodeModel(m); const e = performance.now() - t2;
  console.log(packed ? 'packed float_data' : 'raw_data', (b.length / 2 ** 20).toFixed(1), 'MiB decode', d.toFixed(0), 'ms (first run), encode', e.toFixed(0), 'ms; best decode', best(() => decodeModel(b), 3).toFixed(0), 'ms');
}
