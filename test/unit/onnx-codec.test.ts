import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import * as ort from 'onnxruntime-node';

import {
  attr,
  float16Bits,
  makeGraph,
  makeModel,
  makeNode,
  makeTensor,
  makeValueInfo,
  opsetVersion,
} from '../../src/engine/onnx/builder';
import {
  decodeModel,
  decodeNode,
  decodeTensor,
  encodeModel,
  encodeNode,
  encodeTensor,
  looksLikeOnnx,
} from '../../src/engine/onnx/codec';
import { OnnxFormatError } from '../../src/engine/onnx/errors';
import { countParameters, float16ToNumber, tensorElementCount } from '../../src/engine/onnx/tensor-data';
import { AttributeType, DataType, type ModelProto } from '../../src/engine/onnx/types';
import { WireType, WireWriter } from '../../src/engine/onnx/wire';

// ---- a tiny DSL to write protobuf messages by hand, in any field order -----------------------

type F =
  | [number, 'varint', number | bigint]
  | [number, 'str', string]
  | [number, 'bytes', Uint8Array]
  | [number, 'f32', number]
  | [number, 'fixed64', bigint]
  | [number, 'msg', F[]]
  | [number, 'packed', bigint[]]
  | [number, 'packedf32', number[]]
  | [number, 'group', F[]];

function write(w: WireWriter, fields: F[]): void {
  for (const f of fields) {
    const [no, kind] = f;
    switch (kind) {
      case 'varint':
        w.tag(no, WireType.VARINT);
        w.int64(BigInt(f[2]));
        break;
      case 'str':
        w.tag(no, WireType.LEN);
        w.string(f[2]);
        break;
      case 'bytes':
        w.tag(no, WireType.LEN);
        w.bytes(f[2]);
        break;
      case 'f32':
        w.tag(no, WireType.I32);
        w.float(f[2]);
        break;
      case 'fixed64': {
        w.tag(no, WireType.I64);
        const b = new Uint8Array(8);
        new DataView(b.buffer).setBigUint64(0, f[2], true);
        w.raw(b);
        break;
      }
      case 'msg':
        w.tag(no, WireType.LEN);
        w.fork();
        write(w, f[2]);
        w.ldelim();
        break;
      case 'packed':
        w.tag(no, WireType.LEN);
        w.fork();
        for (const v of f[2]) w.int64(v);
        w.ldelim();
        break;
      case 'packedf32':
        w.tag(no, WireType.LEN);
        w.uint32(f[2].length * 4);
        w.floats(f[2]);
        break;
      case 'group':
        w.tag(no, WireType.SGROUP);
        write(w, f[2]);
        w.tag(no, WireType.EGROUP);
        break;
    }
  }
}

function pb(fields: F[]): Uint8Array {
  const w = new WireWriter();
  write(w, fields);
  return w.finish();
}

const concat = (...parts: Uint8Array[]): Uint8Array => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
};

/** Deep copy without `$wire`, for comparing decoded messages with built ones. */
function stripWire<T>(v: T): T {
  if (Array.isArray(v)) return v.map(stripWire) as T;
  if (v instanceof Uint8Array) return new Uint8Array(v) as T;
  if (v !== null && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) if (k !== '$wire' && x !== undefined) out[k] = stripWire(x);
    return out as T;
  }
  return v;
}

const I64_MAX = 9223372036854775807n;

// ---- a hand-written model that exercises everything the round trip must keep -----------------

function craftedModel(): Uint8Array {
  const functionProto: F[] = [
    [1, 'str', 'MyFunc'],
    [4, 'str', 'x'],
    [5, 'str', 'y'],
    [7, 'msg', [[1, 'str', 'x'], [2, 'str', 'y'], [4, 'str', 'Identity']]],
    [10, 'str', 'custom'],
  ];
  const node: F[] = [
    [4, 'str', 'MyFunc'], // op_type before input/output: out of canonical order
    [1, 'str', 'x'],
    [2, 'str', 'y'],
    [7, 'str', 'custom'],
    [5, 'msg', [[1, 'str', 'big'], [20, 'varint', AttributeType.INT], [3, 'varint', I64_MAX]]],
    [5, 'msg', [[1, 'str', 'neg'], [3, 'varint', -1n], [20, 'varint', AttributeType.INT]]],
    // ints written packed although the schema says unpacked
    [5, 'msg', [[1, 'str', 'many'], [20, 'varint', AttributeType.INTS], [8, 'packed', [1n, -1n, I64_MAX, -(2n ** 63n)]]]],
    [5, 'msg', [[1, 'str', 'alpha'], [2, 'f32', 0.25], [20, 'varint', AttributeType.FLOAT], [77, 'varint', 5]]],
    [3, 'str', 'node0'],
  ];
  const weight: F[] = [
    [8, 'str', 'w'],
    [1, 'packed', [2n, 3n]], // dims packed (schema: unpacked)
    [2, 'varint', DataType.FLOAT],
    // float_data unpacked (schema: packed)
    ...[1, 2, 3, -4, 0.5, -0].map((v): F => [4, 'f32', v]),
  ];
  const ints: F[] = [
    [1, 'varint', 3],
    [2, 'varint', DataType.INT64],
    [7, 'packed', [-1n, I64_MAX, 2n ** 53n + 1n]],
    [8, 'str', 'i64'],
  ];
  const valueInfo = (name: string, dims: F[][]): F[] => [
    [1, 'str', name],
    [2, 'msg', [[1, 'msg', [[1, 'varint', DataType.FLOAT], [2, 'msg', dims.map((d): F => [1, 'msg', d])]]]]],
  ];
  const graph: F[] = [
    [2, 'str', 'g'],
    [1, 'msg', node],
    [5, 'msg', weight],
    [5, 'msg', ints],
    [11, 'msg', valueInfo('x', [[[2, 'str', 'batch']], [[1, 'varint', 3]], []])],
    [14, 'msg', [[1, 'str', 'x'], [2, 'msg', [[1, 'str', 'SCALE_TENSOR'], [2, 'str', 's']]]]], // quantization_annotation
    [12, 'msg', valueInfo('y', [[[2, 'str', 'batch']], [[1, 'varint', 3]]])],
  ];
  return concat(
    pb([
      [2, 'str', 'handmade'], // producer_name before ir_version
      [1, 'varint', 8],
      [99, 'varint', 12345], // unknown varint
    ]),
    pb([[98, 'fixed64', 0x0123456789abcdefn]]), // unknown fixed64
    pb([
      [97, 'group', [[1, 'varint', 1], [2, 'str', 'in a group']]], // unknown group
      [8, 'msg', [[1, 'str', ''], [2, 'varint', 17]]], // domain '' written explicitly
      [8, 'msg', [[2, 'varint', 1], [1, 'str', 'custom']]],
      [7, 'msg', graph],
      [25, 'msg', functionProto], // FunctionProto: unknown to the schema
      [14, 'msg', [[1, 'str', 'k'], [2, 'str', 'v']]],
    ]),
  );
}

describe('codec: byte-exact round trip', () => {
  it('keeps unknown fields, field order and non-default packing', () => {
    const bytes = craftedModel();
    const model = decodeModel(bytes);
    const again = encodeModel(model);
    assert.deepEqual(Buffer.from(again), Buffer.from(bytes));

    assert.equal(model.irVersion, 8n);
    assert.equal(model.producerName, 'handmade');
    assert.deepEqual(model.$wire?.order, [2, 1, 99, 98, 97, 8, 7, 25, 14]);
    assert.deepEqual(
      model.$wire?.unknown.map((u) => u.no),
      [99, 98, 97, 25],
    );
    assert.deepEqual(
      model.opsetImport.map((o) => [o.domain, o.version]),
      [
        ['', 17n],
        ['custom', 1n],
      ],
    );
    assert.equal(opsetVersion(model), 17);
    assert.equal(opsetVersion(model, 'custom'), 1);
    assert.equal(opsetVersion(model, 'com.microsoft'), undefined);
  });

  it('decodes 64-bit integers exactly', () => {
    const g = decodeModel(craftedModel()).graph;
    assert.ok(g);
    const [big, neg, many, alpha] = g.node[0].attribute;
    assert.equal(big.i, I64_MAX);
    assert.equal(neg.i, -1n);
    assert.deepEqual(many.ints, [1n, -1n, I64_MAX, -(2n ** 63n)]);
    assert.deepEqual(many.$wire?.packingFlipped, [8]);
    assert.equal(alpha.f, 0.25);
    assert.deepEqual(alpha.$wire?.unknown.map((u) => u.no), [77]);
    const [w, i64] = g.initializer;
    assert.deepEqual(w.dims, [2n, 3n]);
    assert.deepEqual(w.floatData, [1, 2, 3, -4, 0.5, -0]);
    assert.ok(Object.is(w.floatData[5], -0));
    assert.deepEqual(w.$wire?.packingFlipped, [1, 4]);
    assert.deepEqual(i64.int64Data, [-1n, I64_MAX, 2n ** 53n + 1n]);
    assert.equal(i64.$wire?.packingFlipped, undefined);
    assert.equal(tensorElementCount(w), 6);
    assert.equal(countParameters(decodeModel(craftedModel())), 9);
    const x = g.input[0].type?.tensorType?.shape?.dim;
    assert.deepEqual(stripWire(x), [{ dimParam: 'batch' }, { dimValue: 3n }, {}]);
    assert.deepEqual(g.$wire?.unknown.map((u) => u.no), [14]);
  });

  it('re-encodes edits and keeps the rest', () => {
    const model = decodeModel(craftedModel());
    const g = model.graph;
    assert.ok(g);
    g.node[0].name = 'renamed';
    g.initializer[0].floatData[0] = 42;
    model.docString = 'added later';
    g.node[0].attribute.push(attr.ints('added', [7, -7]));
    const back = decodeModel(encodeModel(model));
    assert.equal(back.graph?.node[0].name, 'renamed');
    assert.equal(back.graph?.initializer[0].floatData[0], 42);
    assert.equal(back.docString, 'added later');
    assert.deepEqual(back.graph?.node[0].attribute[4].ints, [7n, -7n]);
    assert.equal(back.$wire?.order.at(-1), 6, 'new fields come after the recorded ones');
    assert.deepEqual(back.$wire?.unknown.map((u) => u.no), [99, 98, 97, 25]);
    // Unknown FunctionProto bytes are the same.
    const fnBefore = model.$wire?.unknown.find((u) => u.no === 25)?.bytes;
    const fnAfter = back.$wire?.unknown.find((u) => u.no === 25)?.bytes;
    assert.ok(fnBefore && fnAfter);
    assert.deepEqual(Buffer.from(fnAfter), Buffer.from(fnBefore));
  });

  it('round-trips a node and a tensor alone', () => {
    const node = pb([
      [2, 'str', 'out'],
      [1, 'str', 'a'],
      [1, 'str', ''],
      [1, 'str', 'c'],
      [4, 'str', 'Conv'],
    ]);
    const n = decodeNode(node);
    assert.deepEqual(n.input, ['a', '', 'c']);
    assert.deepEqual(Buffer.from(encodeNode(n)), Buffer.from(node));
    const tensor = pb([
      [1, 'varint', 2],
      [2, 'varint', DataType.FLOAT],
      [4, 'packedf32', [1.25, -2.5]],
      [8, 'str', 't'],
    ]);
    const t = decodeTensor(tensor);
    assert.deepEqual(t.floatData, [1.25, -2.5]);
    assert.deepEqual(Buffer.from(encodeTensor(t)), Buffer.from(tensor));
  });

  it('keeps rawData as a zero-copy view of the input', () => {
    const raw = new Uint8Array(4096).map((_, i) => i & 0xff);
    const bytes = pb([[1, 'varint', 8], [7, 'msg', [[5, 'msg', [[1, 'varint', 1024], [2, 'varint', 1], [9, 'bytes', raw]]]]]]);
    const model = decodeModel(bytes);
    const rd = model.graph?.initializer[0].rawData;
    assert.ok(rd);
    assert.equal(rd.buffer, bytes.buffer);
    assert.deepEqual(Buffer.from(rd), Buffer.from(raw));
    assert.deepEqual(Buffer.from(encodeModel(model)), Buffer.from(bytes));
  });

  it('keeps an empty string field that was present, and omits it when built', () => {
    const withEmpty = pb([[1, 'varint', 8], [8, 'msg', [[1, 'str', ''], [2, 'varint', 13]]]]);
    assert.deepEqual(Buffer.from(encodeModel(decodeModel(withEmpty))), Buffer.from(withEmpty));
    const built = encodeModel(makeModel({ graph: makeGraph({ nodes: [], inputs: [], outputs: [] }), opset: 13 }));
    const op = decodeModel(built).opsetImport[0];
    assert.deepEqual(op.$wire?.order, [2]);
  });
});

describe('codec: malformed input', () => {
  it('reports truncation with the byte offset', () => {
    const bytes = craftedModel();
    for (const cut of [1, 20, bytes.length - 1]) {
      assert.throws(
        () => decodeModel(bytes.subarray(0, cut)),
        (e: unknown) => e instanceof OnnxFormatError && /truncated at byte \d+/.test(e.message),
        `cut at ${cut}`,
      );
    }
  });

  it('reports invalid wire types', () => {
    assert.throws(() => decodeModel(new Uint8Array([0x08, 0x07, 0x0e, 0x00])), { message: 'invalid wire type 6 at byte 2' });
    assert.throws(() => decodeModel(new Uint8Array([0x08, 0x07, 0x0f])), { message: 'invalid wire type 7 at byte 2' });
  });

  it('reports a packed float field whose length is not a multiple of 4', () => {
    const bad = new Uint8Array([0x22, 0x03, 0, 0, 0]);
    assert.throws(() => decodeTensor(bad), /packed float field of 3 bytes/);
  });

  it('sniffs ONNX models', () => {
    const model = craftedModel();
    assert.equal(looksLikeOnnx(model), true);
    assert.equal(looksLikeOnnx(model.subarray(0, model.length / 2)), true, 'truncated models still look like ONNX');
    assert.equal(looksLikeOnnx(new Uint8Array(0)), false);
    assert.equal(looksLikeOnnx(new TextEncoder().encode('This is a plain text file.')), false);
    assert.equal(looksLikeOnnx(new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])), false, 'PNG');
    assert.equal(looksLikeOnnx(new Uint8Array([0x50, 0x4b, 0x03, 0x04, 0, 0, 0, 0])), false, 'zip');
    assert.equal(looksLikeOnnx(new Uint8Array([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59])), false, 'npy');
    // A TensorProto (.pb test data) starts with the same 0x08 tag but field 2 is a varint there.
    const tensorPb = pb([[1, 'varint', 3], [2, 'varint', 1], [9, 'bytes', new Uint8Array(12)]]);
    assert.equal(looksLikeOnnx(tensorPb), false);
  });
});

// ---- builder → encode → decode → ORT ---------------------------------------------------------

function builtModel(): ModelProto {
  const w = makeTensor('W', DataType.FLOAT, [3, 2], new Float32Array([1, 2, 3, 4, 5, 6]));
  const b = makeTensor('B', DataType.FLOAT, [2], new Float32Array([0.5, -0.5]));
  const shape = makeTensor('shape', DataType.INT64, [2], new BigInt64Array([-1n, 2n]));
  const graph = makeGraph({
    name: 'built',
    nodes: [
      makeNode('MatMul', ['X', 'W'], ['XW'], [], 'mm'),
      makeNode('Add', ['XW', 'B'], ['Z'], [], 'add'),
      makeNode('Reshape', ['Z', 'shape'], ['R'], [], 'reshape'),
      makeNode('LeakyRelu', ['R'], ['Y'], [attr.float('alpha', 0.25)], 'act'),
    ],
    inputs: [makeValueInfo('X', DataType.FLOAT, ['batch', 3])],
    outputs: [makeValueInfo('Y', DataType.FLOAT, ['batch', 2])],
    initializers: [w, b, shape],
  });
  return makeModel({ graph, opset: 17, producerVersion: '0.1.0' });
}

describe('codec: builder models', () => {
  it('decode(encode(model)) equals the built model', () => {
    const model = builtModel();
    const bytes = encodeModel(model);
    const back = decodeModel(bytes);
    assert.deepEqual(stripWire(back), stripWire(model));
    assert.equal(back.irVersion, 8n);
    assert.deepEqual(Buffer.from(encodeModel(back)), Buffer.from(bytes));
    assert.equal(countParameters(back), 10);
  });

  it('is runnable by ONNX Runtime with the expected output', async () => {
    const session = await ort.InferenceSession.create(encodeModel(builtModel()));
    try {
      const x = new Float32Array([1, 0, -1, 2, 1, 0]);
      const out = await session.run({ X: new ort.Tensor('float32', x, [2, 3]) });
      // row 0: [1-5, 2-6] + [0.5,-0.5] = [-3.5, -4.5] → leaky: [-0.875, -1.125]
      // row 1: [2+3, 4+4] + b = [5.5, 7.5]
      assert.deepEqual([...(out.Y.data as Float32Array)], [-0.875, -1.125, 5.5, 7.5]);
      assert.deepEqual(out.Y.dims, [2, 2]);
    } finally {
      await session.release();
    }
  });

  it('makes tensors of each supported type with little-endian raw data', () => {
    const t16 = makeTensor('h', DataType.FLOAT16, [3], new Float32Array([1, -2, 65504]));
    assert.deepEqual([...(t16.rawData ?? [])], [0x00, 0x3c, 0x00, 0xc0, 0xff, 0x7b]);
    const d = makeTensor('d', DataType.DOUBLE, [1], new Float64Array([0.1]));
    assert.equal(new DataView((d.rawData as Uint8Array).buffer).getFloat64(0, true), 0.1);
    const i = makeTensor('i', DataType.INT64, [2], new BigInt64Array([-(2n ** 63n), 2n ** 63n - 1n]));
    assert.equal(new DataView((i.rawData as Uint8Array).buffer).getBigInt64(0, true), -(2n ** 63n));
    assert.throws(() => makeTensor('bad', DataType.FLOAT, [2, 2], new Float32Array(3)), /3 values for shape \[2, 2\]/);
  });

  it('makes value infos with fixed, symbolic and unknown dimensions, or no type at all', () => {
    const vi = makeValueInfo('x', DataType.FLOAT, [2, 'batch', null]);
    assert.deepEqual(vi.type?.tensorType?.shape?.dim, [{ dimValue: 2n }, { dimParam: 'batch' }, {}]);
    assert.equal(makeValueInfo('r', DataType.FLOAT).type?.tensorType?.shape, undefined, 'unknown rank');
    assert.deepEqual(makeValueInfo('u', DataType.UNDEFINED), { name: 'u', metadataProps: [] });
  });

  it('converts every half-precision value exactly both ways', () => {
    for (let h = 0; h < 0x10000; h++) {
      const v = float16ToNumber(h);
      if (Number.isNaN(v)) assert.equal(float16Bits(v) & 0x7c00, 0x7c00);
      else assert.equal(float16Bits(v), h, `half 0x${h.toString(16)}`);
    }
    assert.equal(float16Bits(0.1), 0x2e66);
    assert.equal(float16Bits(65520), 0x7c00, 'rounds to infinity (ties to even)');
  });
});

describe('codec: speed', () => {
  it('decodes a 100 MB model quickly, with weights as views', () => {
    const tensors: F[] = [];
    const chunk = new Uint8Array(1 << 20);
    for (let i = 0; i < 100; i++) tensors.push([5, 'msg', [[1, 'varint', 262144], [2, 'varint', 1], [8, 'str', `w${i}`], [9, 'bytes', chunk]]]);
    const nodes: F[] = [];
    for (let i = 0; i < 20000; i++) {
      nodes.push([1, 'msg', [[1, 'str', `t${i}`], [1, 'str', `w${i % 100}`], [2, 'str', `t${i + 1}`], [3, 'str', `/layer.${i}/MatMul`], [4, 'str', 'MatMul']]]);
    }
    const bytes = pb([[1, 'varint', 8], [7, 'msg', [...nodes, ...tensors]]]);
    assert.ok(bytes.length > 100 * 2 ** 20);
    const t0 = performance.now();
    const model = decodeModel(bytes);
    const decodeMs = performance.now() - t0;
    assert.equal(model.graph?.node.length, 20000);
    assert.equal(model.graph?.initializer[99].rawData?.buffer, bytes.buffer);
    const t1 = performance.now();
    const again = encodeModel(model);
    const encodeMs = performance.now() - t1;
    assert.equal(Buffer.compare(Buffer.from(again), Buffer.from(bytes)), 0);
    assert.ok(decodeMs < 2000, `decode took ${decodeMs.toFixed(0)} ms`);
    assert.ok(encodeMs < 4000, `encode took ${encodeMs.toFixed(0)} ms`);
  });
});
