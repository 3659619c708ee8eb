// Child process for the write-fault tests (test/unit/io-faults.test.ts):
//   node --import tsx write-child.ts atomic|model TARGET BYTES [hold]
// Writes BYTES bytes to TARGET with writeFileAtomic (atomic) or saveModelFile (model: one
// initializer of that size). Prints one JSON line: {ok} or {error, code, message}. With `hold`, it
// prints "writing" after the first chunk and then blocks forever (the parent kills it mid-write).
import { writeFileAtomic } from '../../src/engine/io/atomic-write';
import { makeGraph, makeModel, makeNode, makeTensor, makeValueInfo } from '../../src/engine/onnx/builder';
import { saveModelFile } from '../../src/engine/onnx/model-file';

const [mode, target, bytesArg, hold] = process.argv.slice(2);
const bytes = Number(bytesArg);
const onChunk = () => {
  if (!hold) return;
  process.stdout.write('writing\n');
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0); // blocks until killed
};

async function main(): Promise<void> {
  try {
    if (mode === 'atomic') {
      await writeFileAtomic(target!, new Uint8Array(bytes).fill(0x42), { onChunk });
    } else {
      const n = Math.max(1, Math.floor(bytes / 4));
      const w = makeTensor('w', 1, [n], new Float32Array(n).fill(0.5));
      const graph = makeGraph({ nodes: [makeNode('Identity', ['w'], ['y'])], inputs: [], outputs: [makeValueInfo('y', 1, [n])], initializers: [w] });
      await saveModelFile(target!, makeModel({ graph, opset: 17 }), { onChunk });
    }
    process.stdout.write(JSON.stringify({ ok: true }) + '\n');
  } catch (e) {
    const err = e as Error & { code?: string };
    process.stdout.write(JSON.stringify({ error: err.name, code: err.code, message: err.message }) + '\n');
  }
}
void main();
