import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';

import * as ort from 'onnxruntime-node';

import { emptyTensor, makeGraph, makeModel, makeNode, makeTensor, makeValueInfo } from '../../src/engine/onnx/builder';
import { encodeModel } from '../../src/engine/onnx/codec';
import { ModelFileError, OnnxFormatError } from '../../src/engine/onnx/errors';
import {
  checkExternalData,
  countParameters,
  DATA_LOCATION_EXTERNAL,
  externalDataRef,
  loadModelFile,
  readTensorBytes,
  resolveExternalPath,
  saveModelFile,
  tensorElementCount,
  tensorToFloat64,
  writeErrorMessage,
  type LoadedModel,
} from '../../src/engine/onnx/model-file';
import { DataType, type ModelProto, type TensorProto } from '../../src/engine/onnx/types';

let root: string;
before(() => {
  root = mkdtempSync(path.join(tmpdir(), 'blocklens-onnx-'));
});
after(() => {
  rmSync(root, { recursive: true, force: true });
});

/** A fresh empty folder under the test root. */
function folder(name: string): string {
  const d = path.join(root, name);
  mkdirSync(d, { recursive: true });
  return d;
}

const tempFiles = (dir: string): string[] => readdirSync(dir).filter((f) => f.endsWith('.tmp'));

const W_ROWS = 4;
const W_COLS = 500;
const wValues = Float32Array.from({ length: W_ROWS * W_COLS }, (_, i) => Math.sin(i) * 0.5);

/** Y = (X · W) * s, with W 8000 bytes and s a scalar. */
function linearModel(): ModelProto {
  const graph = makeGraph({
    name: 'linear',
    nodes: [makeNode('MatMul', ['X', 'W'], ['Z']), makeNode('Mul', ['Z', 's'], ['Y'])],
    inputs: [makeValueInfo('X', DataType.FLOAT, ['batch', W_ROWS])],
    outputs: [makeValueInfo('Y', DataType.FLOAT, ['batch', W_COLS])],
    initializers: [
      makeTensor('W', DataType.FLOAT, [W_ROWS, W_COLS], wValues),
      makeTensor('s', DataType.FLOAT, [], new Float32Array([2])),
    ],
  });
  return makeModel({ graph, opset: 17 });
}

const X = new Float32Array([1, -1, 0.5, 2, 0, 1, 1, -2]);

async function runModel(model: string | Uint8Array): Promise<Float32Array> {
  const session = typeof model === 'string' ? await ort.InferenceSession.create(model) : await ort.InferenceSession.create(model);
  try {
    const out = await session.run({ X: new ort.Tensor('float32', X, [2, W_ROWS]) });
    return out.Y.data as Float32Array;
  } finally {
    await session.release();
  }
}

describe('resolveExternalPath', () => {
  it('accepts plain relative paths inside the folder', () => {
    const dir = folder('resolve-ok');
    assert.equal(resolveExternalPath(dir, 'w.bin'), path.join(dir, 'w.bin'));
    assert.equal(resolveExternalPath(dir, 'sub/w.bin'), path.join(dir, 'sub', 'w.bin'));
    assert.equal(resolveExternalPath(dir, 'sub/../w.bin'), path.join(dir, 'w.bin'));
  });

  it('rejects paths that climb out of the folder', () => {
    const dir = folder('resolve-climb');
    assert.throws(() => resolveExternalPath(dir, '../../etc/passwd'), {
      name: 'ModelFileError',
      message: "external data path '../../etc/passwd' resolves outside the model folder",
    });
    assert.throws(() => resolveExternalPath(dir, '..'), /resolves outside the model folder/);
    assert.throws(() => resolveExternalPath(dir, 'sub/../../x.bin'), /resolves outside the model folder/);
    assert.throws(() => resolveExternalPath(dir, '.'), /resolves outside the model folder/);
  });

  it('rejects absolute paths', () => {
    const dir = folder('resolve-abs');
    assert.throws(() => resolveExternalPath(dir, '/etc/passwd'), /'\/etc\/passwd' is absolute/);
    assert.throws(() => resolveExternalPath(dir, 'C:\\weights.bin'), /is absolute/);
    assert.throws(() => resolveExternalPath(dir, '\\\\server\\share\\w.bin'), /is absolute/);
    assert.throws(() => resolveExternalPath(dir, ''), /not a valid file name/);
  });

  it('rejects symbolic links that lead outside the folder, and allows those that stay inside', () => {
    const dir = folder('resolve-links/model');
    const outside = folder('resolve-links/outside');
    writeFileSync(path.join(outside, 'secret.bin'), 'secret');
    writeFileSync(path.join(dir, 'real.bin'), 'ok');
    symlinkSync(path.join(outside, 'secret.bin'), path.join(dir, 'link.bin'));
    symlinkSync(outside, path.join(dir, 'sub'));
    symlinkSync(path.join(dir, 'real.bin'), path.join(dir, 'alias.bin'));
    assert.throws(() => resolveExternalPath(dir, 'link.bin'), /'link.bin' resolves outside the model folder/);
    assert.throws(() => resolveExternalPath(dir, 'sub/secret.bin'), /resolves outside the model folder/);
    assert.equal(resolveExternalPath(dir, 'alias.bin'), path.join(dir, 'alias.bin'));
  });
});

describe('loadModelFile', () => {
  it('loads a model and reports its hash and size', async () => {
    const dir = folder('load-ok');
    const file = path.join(dir, 'm.onnx');
    const bytes = encodeModel(linearModel());
    writeFileSync(file, bytes);
    const loaded = await loadModelFile(file);
    assert.equal(loaded.path, file);
    assert.equal(loaded.dir, dir);
    assert.equal(loaded.sizeBytes, bytes.length);
    assert.match(loaded.sha256, /^[0-9a-f]{64}$/);
    assert.equal(loaded.model.graph?.node.length, 2);
    assert.equal(countParameters(loaded.model), W_ROWS * W_COLS + 1);
  });

  it('names the file in every error', async () => {
    const dir = folder('load-errors');
    const check = async (file: string, pattern: RegExp, cls: typeof ModelFileError | typeof OnnxFormatError): Promise<void> => {
      await assert.rejects(loadModelFile(file), (e: unknown) => {
        assert.ok(e instanceof cls, `${String(e)} is a ${cls.name}`);
        assert.match(e.message, pattern);
        assert.equal(e.file, file);
        assert.ok(e.message.includes(file), `message names the file: ${e.message}`);
        return true;
      });
    };
    await check(path.join(dir, 'nope.onnx'), /does not exist/, ModelFileError);
    writeFileSync(path.join(dir, 'empty.onnx'), '');
    await check(path.join(dir, 'empty.onnx'), /is empty/, ModelFileError);
    await check(dir, /is a folder/, ModelFileError);
    writeFileSync(path.join(dir, 'text.onnx'), 'hello, this is text');
    await check(path.join(dir, 'text.onnx'), /not an ONNX model/, OnnxFormatError);
    const bytes = encodeModel(linearModel());
    writeFileSync(path.join(dir, 'cut.onnx'), bytes.subarray(0, bytes.length - 100));
    await check(path.join(dir, 'cut.onnx'), /truncated at byte \d+/, OnnxFormatError);
    writeFileSync(path.join(dir, 'nograph.onnx'), encodeModel({ irVersion: 8n, opsetImport: [], metadataProps: [] }));
    await check(path.join(dir, 'nograph.onnx'), /has no graph/, OnnxFormatError);
    // A sparse file over 2 GiB is refused from its size, without being read.
    const huge = path.join(dir, 'huge.onnx');
    writeFileSync(huge, encodeModel(linearModel()));
    truncateSync(huge, 2 ** 31 + 10);
    await check(huge, /over the 2 GiB limit of an ONNX protobuf/, ModelFileError);
  });

  it('loads a graph with zero nodes', async () => {
    const dir = folder('load-empty-graph');
    const file = path.join(dir, 'm.onnx');
    const x = makeValueInfo('x', DataType.FLOAT, [1]);
    writeFileSync(file, encodeModel(makeModel({ graph: makeGraph({ nodes: [], inputs: [x], outputs: [x] }), opset: 17 })));
    const loaded = await loadModelFile(file);
    assert.equal(loaded.model.graph?.node.length, 0);
  });
});

/** The linear model with W stored externally in `weights.bin` at byte 16. */
function externalModel(): ModelProto {
  const model = linearModel();
  const w = model.graph?.initializer[0] as TensorProto;
  delete w.rawData;
  w.dataLocation = DATA_LOCATION_EXTERNAL;
  w.externalData = [
    { key: 'location', value: 'weights.bin' },
    { key: 'offset', value: '16' },
    { key: 'length', value: String(wValues.byteLength) },
  ];
  return model;
}

describe('external data', () => {
  it('reports a missing file, a short file, and reads by offset once complete', async () => {
    const dir = folder('ext-read');
    const file = path.join(dir, 'm.onnx');
    await saveModelFile(file, externalModel());
    const loaded = await loadModelFile(file);
    await assert.rejects(checkExternalData(loaded), (e: unknown) => {
      assert.ok(e instanceof ModelFileError);
      assert.match(e.message, /^external data file 'weights.bin' is missing \(needed by tensor 'W' of m\.onnx\)$/);
      assert.equal(e.file, file, 'the model that holds the location is the file at fault');
      return true;
    });
    const w = loaded.model.graph?.initializer[0] as TensorProto;
    await assert.rejects(readTensorBytes(loaded, w), /external data file 'weights.bin' is missing/);

    writeFileSync(path.join(dir, 'weights.bin'), new Uint8Array(100));
    await assert.rejects(
      checkExternalData(loaded),
      /external data file 'weights.bin' is shorter than tensor 'W' needs: offset 16 \+ length 8000 > file size 100/,
    );
    await assert.rejects(readTensorBytes(loaded, w), /is shorter than tensor 'W' needs/);

    const data = new Uint8Array(16 + wValues.byteLength + 7).fill(0xee);
    data.set(new Uint8Array(wValues.buffer), 16);
    writeFileSync(path.join(dir, 'weights.bin'), data);
    const summary = await checkExternalData(loaded);
    assert.equal(summary.tensorCount, 1);
    assert.equal(summary.tensorBytes, wValues.byteLength);
    const bytes = await readTensorBytes(loaded, w);
    assert.deepEqual(Buffer.from(bytes), Buffer.from(wValues.buffer));
    assert.deepEqual(await tensorToFloat64(loaded, w), Float64Array.from(wValues));
    const reloaded = await loadModelFile(file);
    assert.equal(reloaded.sizeBytes, loaded.bytes.length + data.length);
    // ORT agrees with the inline model.
    assert.deepEqual(await runModel(file), await runModel(encodeModel(linearModel())));
  });

  it('rejects unsafe locations when checking and reading', async () => {
    const dir = folder('ext-unsafe');
    const model = externalModel();
    const w = model.graph?.initializer[0] as TensorProto;
    w.externalData[0].value = '../../etc/passwd';
    const file = path.join(dir, 'm.onnx');
    await saveModelFile(file, model);
    const loaded = await loadModelFile(file);
    await assert.rejects(checkExternalData(loaded), { message: "tensor 'W' has an external data location with '..' that leads outside the model folder (refused, nothing was read)", file } as object);
    await assert.rejects(readTensorBytes(loaded, loaded.model.graph?.initializer[0] as TensorProto), /outside the model folder/);
  });

  it('parses references and refuses malformed offsets', () => {
    const t = externalModel().graph?.initializer[0] as TensorProto;
    assert.deepEqual(externalDataRef(t), { location: 'weights.bin', offset: 16, length: 8000 });
    t.externalData[1].value = '-5';
    assert.throws(() => externalDataRef(t), /external data offset '-5' is not a non-negative integer/);
  });
});

describe('tensorToFloat64', () => {
  const tensor = (dataType: DataType, dims: number[], fill: Partial<TensorProto>): TensorProto => ({
    ...emptyTensor('t'),
    dataType,
    dims: dims.map(BigInt),
    ...fill,
  });
  const here = { dir: '/nonexistent' };

  it('reads values from the typed fields of every numeric type', async () => {
    const cases: [TensorProto, number[]][] = [
      [tensor(DataType.FLOAT, [2], { floatData: [1.5, -2] }), [1.5, -2]],
      [tensor(DataType.DOUBLE, [2], { doubleData: [0.1, 1e300] }), [0.1, 1e300]],
      [tensor(DataType.INT64, [2], { int64Data: [-(2n ** 40n), 7n] }), [-(2 ** 40), 7]],
      [tensor(DataType.UINT64, [1], { uint64Data: [2n ** 60n] }), [2 ** 60]],
      [tensor(DataType.UINT32, [1], { uint64Data: [4000000000n] }), [4000000000]],
      [tensor(DataType.INT32, [2], { int32Data: [-5, 6] }), [-5, 6]],
      [tensor(DataType.INT8, [2], { int32Data: [-128, 127] }), [-128, 127]],
      [tensor(DataType.UINT16, [1], { int32Data: [65535] }), [65535]],
      [tensor(DataType.BOOL, [2], { int32Data: [1, 0] }), [1, 0]],
      [tensor(DataType.FLOAT16, [2], { int32Data: [0x3c00, 0xc000] }), [1, -2]],
      [tensor(DataType.BFLOAT16, [1], { int32Data: [0x3fc0] }), [1.5]],
    ];
    for (const [t, want] of cases) {
      assert.deepEqual([...(await tensorToFloat64(here, t))], want, `data type ${t.dataType}`);
      // The same values through their little-endian bytes.
      const viaRaw = { ...t, rawData: await readTensorBytes(here, t) };
      assert.deepEqual([...(await tensorToFloat64(here, viaRaw))], want, `raw data type ${t.dataType}`);
    }
    assert.equal(tensorElementCount(tensor(DataType.FLOAT, [], { floatData: [3] })), 1);
    assert.equal(tensorElementCount(tensor(DataType.FLOAT, [0, 5], {})), 0);
  });

  it('refuses data whose length does not match the shape', async () => {
    await assert.rejects(tensorToFloat64(here, tensor(DataType.FLOAT, [3], { floatData: [1, 2] })), /float_data holds 2 values, expected 3/);
    await assert.rejects(tensorToFloat64(here, tensor(DataType.STRING, [1], {})), /data type 8/);
  });
});

describe('saveModelFile', () => {
  it('writes atomically and round-trips', async () => {
    const dir = folder('save-ok');
    const file = path.join(dir, 'out.onnx');
    const model = linearModel();
    const result = await saveModelFile(file, model);
    assert.equal(result.path, file);
    assert.equal(result.externalTensors, 0);
    assert.deepEqual(readFileSync(file), Buffer.from(encodeModel(model)));
    assert.deepEqual(tempFiles(dir), []);
    // Overwriting a file that is not the source is allowed.
    await saveModelFile(file, model);
    assert.deepEqual(readdirSync(dir), ['out.onnx']);
  });

  it('refuses to overwrite the source model', async () => {
    const dir = folder('save-source');
    const src = path.join(dir, 'src.onnx');
    const original = encodeModel(linearModel());
    writeFileSync(src, original);
    const other = linearModel();
    other.docString = 'changed';
    await assert.rejects(saveModelFile(src, other, { sourcePath: src }), /refusing to overwrite the source model/);
    await assert.rejects(
      saveModelFile(path.join(dir, '..', path.basename(dir), 'src.onnx'), other, { sourcePath: src }),
      /refusing to overwrite the source model/,
    );
    symlinkSync(src, path.join(dir, 'alias.onnx'));
    await assert.rejects(saveModelFile(path.join(dir, 'alias.onnx'), other, { sourcePath: src }), /refusing to overwrite/);
    assert.deepEqual(readFileSync(src), Buffer.from(original));
    assert.deepEqual(tempFiles(dir), []);
  });

  it('leaves no temporary file when the final rename fails', async () => {
    const dir = folder('save-fail-rename');
    const target = path.join(dir, 'taken.onnx');
    mkdirSync(target); // a folder where the file should go
    writeFileSync(path.join(target, 'keep'), 'x');
    await assert.rejects(saveModelFile(target, linearModel()), (e: unknown) => {
      assert.ok(e instanceof ModelFileError);
      assert.ok(e.message.includes(target), e.message);
      assert.equal(e.file, target);
      return true;
    });
    assert.deepEqual(readdirSync(dir), ['taken.onnx']);
  });

  it('names the path when the folder does not exist', async () => {
    const target = path.join(root, 'no', 'such', 'folder', 'm.onnx');
    await assert.rejects(saveModelFile(target, linearModel()), {
      name: 'ModelFileError',
      message: `folder '${path.dirname(target)}' does not exist: cannot write ${target}`,
    });
  });

  it('describes common write failures', () => {
    const err = (code: string): NodeJS.ErrnoException => Object.assign(new Error(code), { code });
    assert.equal(writeErrorMessage(err('ENOSPC'), '/data/m.onnx'), 'disk full writing /data/m.onnx');
    assert.equal(writeErrorMessage(err('EACCES'), '/data/m.onnx'), 'permission denied writing /data/m.onnx');
    assert.equal(writeErrorMessage(err('EROFS'), '/data/m.onnx'), 'read-only file system: cannot write /data/m.onnx');
  });
});

describe('saveModelFile with external data', () => {
  let first: LoadedModel;
  const expected = (async () => runModel(encodeModel(linearModel())))();

  it('moves initializers above the threshold into the data file', async () => {
    const dir = folder('save-ext-1');
    const file = path.join(dir, 'model.onnx');
    const model = linearModel();
    const result = await saveModelFile(file, model, { externalData: { location: 'model.onnx.data', threshold: 1024 } });
    assert.equal(result.externalTensors, 1);
    assert.equal(result.externalDataPath, path.join(dir, 'model.onnx.data'));
    assert.equal(result.externalDataBytes, wValues.byteLength);
    assert.ok(model.graph?.initializer[0].rawData !== undefined, 'the input model is not modified');
    assert.deepEqual(readdirSync(dir).sort(), ['model.onnx', 'model.onnx.data']);

    first = await loadModelFile(file);
    const [w, s] = first.model.graph?.initializer ?? [];
    assert.deepEqual(externalDataRef(w), { location: 'model.onnx.data', offset: 0, length: 8000 });
    assert.equal(s.dataLocation, undefined);
    assert.ok(s.rawData !== undefined);
    assert.equal(first.sizeBytes, first.bytes.length + wValues.byteLength);
    assert.deepEqual(await tensorToFloat64(first, w), Float64Array.from(wValues));
    assert.deepEqual(await runModel(file), await expected);
  });

  it('copies external data of a loaded model into a new folder', async () => {
    const dir = folder('save-ext-2');
    const file = path.join(dir, 'copy.onnx');
    const result = await saveModelFile(file, first.model, {
      sourcePath: first.path,
      externalData: { location: 'copy.data', threshold: 1 << 20, align: 4096 },
    });
    // W is below the new threshold but already external: it still moves (the old file is elsewhere).
    assert.equal(result.externalTensors, 1);
    const loaded = await loadModelFile(file);
    const w = loaded.model.graph?.initializer[0] as TensorProto;
    assert.deepEqual(externalDataRef(w), { location: 'copy.data', offset: 0, length: 8000 });
    assert.deepEqual(await tensorToFloat64(loaded, w), Float64Array.from(wValues));
    assert.deepEqual(await runModel(file), await expected);
  });

  it('refuses to leave external references dangling or to overwrite the source data', async () => {
    const dir = folder('save-ext-3');
    await assert.rejects(
      saveModelFile(path.join(dir, 'x.onnx'), first.model, { sourcePath: first.path }),
      /writing it to another folder needs the externalData option/,
    );
    await assert.rejects(
      saveModelFile(path.join(first.dir, 'other.onnx'), first.model, {
        sourcePath: first.path,
        externalData: { location: 'model.onnx.data' },
      }),
      /is the source model's own data file/,
    );
    await assert.rejects(
      saveModelFile(path.join(dir, 'x.onnx'), first.model, { externalData: { location: '../escape.data' } }),
      /resolves outside the model folder/,
    );
    assert.deepEqual(readdirSync(dir), []);
  });

  it('removes both temporary files when copying external data fails', async () => {
    const srcDir = folder('save-ext-4-src');
    const src = path.join(srcDir, 'm.onnx');
    await saveModelFile(src, externalModel()); // references weights.bin, which does not exist
    const loaded = await loadModelFile(src);
    const dir = folder('save-ext-4-out');
    await assert.rejects(
      saveModelFile(path.join(dir, 'out.onnx'), loaded.model, { sourcePath: src, externalData: { location: 'out.data' } }),
      /external data file 'weights.bin' is missing/,
    );
    assert.deepEqual(readdirSync(dir), []);
  });
});
