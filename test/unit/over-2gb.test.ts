// The 2 GiB protobuf limit, checked without allocating 2 GiB: tensors share one 288 MiB payload.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { makeGraph, makeModel, makeNode, makeValueInfo, emptyTensor } from '../../src/engine/onnx/builder';
import { decodeModel, encodeModel, encodeModelParts, MAX_PROTOBUF_BYTES } from '../../src/engine/onnx/codec';
import { OnnxFormatError } from '../../src/engine/onnx/errors';
import { weightsByReference } from '../../src/engine/onnx/by-reference';
import { DATA_LOCATION_EXTERNAL, externalDataRef } from '../../src/engine/onnx/model-file';
import { DataType, type ModelProto } from '../../src/engine/onnx/types';

/** Eight float tensors of 288 MiB each, all views of one payload: 2.25 GiB inline. */
function hugeInlineModel(): ModelProto {
  const payload = new Uint8Array(288 * 2 ** 20);
  const inits = Array.from({ length: 8 }, (_, i) => {
    const t = emptyTensor(`w${i}`);
    t.dataType = DataType.FLOAT;
    t.dims = [BigInt(payload.length / 4)];
    t.rawData = payload;
    return t;
  });
  return makeModel({
    graph: makeGraph({
      name: 'huge',
      nodes: inits.map((t, i) => makeNode('Identity', [t.name!], [`y${i}`])),
      initializers: inits,
      inputs: [],
      outputs: inits.map((_, i) => makeValueInfo(`y${i}`, DataType.FLOAT, [null])),
    }),
    opset: 17,
  });
}

describe('over 2 GiB', () => {
  it('encoding refuses a protobuf over 2 GiB before assembling it, and says to use external data', () => {
    const m = hugeInlineModel();
    assert.throws(() => encodeModel(m), (e: Error) => e instanceof OnnxFormatError && /over the 2 GiB protobuf limit; save the weights as external data/.test(e.message));
    assert.throws(() => encodeModelParts(m), OnnxFormatError);
  });

  it('weights by reference keep the graph small: tensors point at their bytes in the model file', () => {
    // A real file: bytes laid out as the codec writes them, tensors decoded as views into them.
    const dir = mkdtempSync(path.join(tmpdir(), 'blocklens-byref-'));
    try {
      const small: ModelProto = hugeInlineModel();
      const g = small.graph!;
      g.initializer = g.initializer.slice(0, 2).map((t, i) => ({ ...t, rawData: new Uint8Array(4096 * (i + 1)).map((_, k) => (k * 7 + i) & 255) }));
      g.node = g.node.slice(0, 2);
      g.output = g.output.slice(0, 2);
      for (const t of g.initializer) t.dims = [BigInt(t.rawData!.length / 4)];
      const bytes = encodeModel(small);
      assert.ok(bytes.length > 12288 && bytes.length < MAX_PROTOBUF_BYTES);
      const file = path.join(dir, 'm.onnx');
      writeFileSync(file, bytes);
      const loaded = decodeModel(new Uint8Array(readFileSync(file)));
      const onDisk = new Uint8Array(readFileSync(file));
      const byRef = weightsByReference(loaded, { path: file, bytes: onDisk });
      // Not views of `onDisk`: nothing moves.
      assert.equal(byRef, loaded);
      const fileBytes = new Uint8Array(readFileSync(file));
      const model = decodeModel(fileBytes);
      const out = weightsByReference(model, { path: file, bytes: fileBytes });
      assert.ok(encodeModel(out).length < 1024, 'the encoded graph holds no weights');
      for (const [i, t] of out.graph!.initializer.entries()) {
        assert.equal(t.dataLocation, DATA_LOCATION_EXTERNAL);
        assert.equal(t.rawData, undefined);
        const ref = externalDataRef(t)!;
        assert.equal(ref.location, 'm.onnx');
        assert.deepEqual(fileBytes.subarray(ref.offset, ref.offset + ref.length!), g.initializer[i]!.rawData);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
