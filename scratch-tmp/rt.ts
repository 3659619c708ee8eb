import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { decodeModel, encodeModel, looksLikeOnnx } from '../src/engine/onnx/codec';
function walk(d: string): string[] { return readdirSync(d).flatMap(f => { const p = join(d, f); return statSync(p).isDirectory() ? walk(p) : p.endsWith('.onnx') ? [p] : []; }); }
for (const f of [...walk('test/fixtures/models'), ...walk('test/fixtures/broken')]) {
  const b = new Uint8Array(readFileSync(f));
  try {
    const t = performance.now();
    const m = decodeModel(b);
    const t1 = performance.now();
    const e = encodeModel(m);
    const t2 = performance.now();
    console.log(f, b.length, looksLikeOnnx(b), Buffer.compare(Buffer.from(b), Buffer.from(e)) === 0 ? 'EXACT' : 'DIFF', (t1 - t).toFixed(1), (t2 - t1).toFixed(1), m.graph?.node.length, m.$wire?.order.join(','));
  } catch (err) { console.log(f, looksLikeOnnx(b), String(err)); }
}
