// Helpers to build ONNX messages in code (for graph surgery, tests and the tiny linear-algebra
// models). Messages built here carry no `$wire`, so they encode in canonical field order.

import {
  AttributeType,
  DataType,
  type AttributeProto,
  type GraphProto,
  type ModelProto,
  type NodeProto,
  type OperatorSetIdProto,
  type TensorProto,
  type TensorShapeDimension,
  type ValueInfoProto,
} from './types.js';

export type TensorData = Float32Array | Float64Array | BigInt64Array | Int32Array;

/** An empty TensorProto with all repeated fields present. */
export function emptyTensor(name?: string): TensorProto {
  const t: TensorProto = {
    dims: [],
    floatData: [],
    int32Data: [],
    stringData: [],
    int64Data: [],
    externalData: [],
    doubleData: [],
    uint64Data: [],
    metadataProps: [],
  };
  if (name !== undefined) t.name = name;
  return t;
}

function emptyAttribute(name: string, type: AttributeType): AttributeProto {
  return {
    name,
    type,
    floats: [],
    ints: [],
    strings: [],
    tensors: [],
    graphs: [],
    sparseTensors: [],
    typeProtos: [],
  };
}

const utf8 = new TextEncoder();

/** Attribute constructors, one per attribute type. */
export const attr = {
  int(name: string, v: number | bigint): AttributeProto {
    return { ...emptyAttribute(name, AttributeType.INT), i: BigInt(v) };
  },
  ints(name: string, v: readonly (number | bigint)[]): AttributeProto {
    return { ...emptyAttribute(name, AttributeType.INTS), ints: v.map((x) => BigInt(x)) };
  },
  float(name: string, v: number): AttributeProto {
    return { ...emptyAttribute(name, AttributeType.FLOAT), f: v };
  },
  floats(name: string, v: readonly number[]): AttributeProto {
    return { ...emptyAttribute(name, AttributeType.FLOATS), floats: [...v] };
  },
  string(name: string, v: string | Uint8Array): AttributeProto {
    return { ...emptyAttribute(name, AttributeType.STRING), s: typeof v === 'string' ? utf8.encode(v) : v };
  },
  strings(name: string, v: readonly (string | Uint8Array)[]): AttributeProto {
    const strings = v.map((x) => (typeof x === 'string' ? utf8.encode(x) : x));
    return { ...emptyAttribute(name, AttributeType.STRINGS), strings };
  },
  tensor(name: string, t: TensorProto): AttributeProto {
    return { ...emptyAttribute(name, AttributeType.TENSOR), t };
  },
  graph(name: string, g: GraphProto): AttributeProto {
    return { ...emptyAttribute(name, AttributeType.GRAPH), g };
  },
};

/** A node. `inputs` may contain '' for an omitted optional input. */
export function makeNode(
  opType: string,
  inputs: readonly string[],
  outputs: readonly string[],
  attrs: readonly AttributeProto[] = [],
  name?: string,
  domain?: string,
): NodeProto {
  const node: NodeProto = {
    input: [...inputs],
    output: [...outputs],
    opType,
    attribute: [...attrs],
    metadataProps: [],
  };
  if (name !== undefined) node.name = name;
  if (domain !== undefined && domain !== '') node.domain = domain;
  return node;
}

const BYTES_PER_ELEMENT: Partial<Record<DataType, number>> = {
  [DataType.FLOAT]: 4,
  [DataType.DOUBLE]: 8,
  [DataType.INT64]: 8,
  [DataType.INT32]: 4,
  [DataType.INT16]: 2,
  [DataType.UINT16]: 2,
  [DataType.INT8]: 1,
  [DataType.UINT8]: 1,
  [DataType.BOOL]: 1,
  [DataType.FLOAT16]: 2,
};

/** IEEE half-precision bits of `v` (round to nearest even). */
export function float16Bits(v: number): number {
  const f32 = new Float32Array([v]);
  const x = new Uint32Array(f32.buffer)[0];
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant !== 0 ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let half = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const mid = 1 << (shift - 1);
    if (rem > mid || (rem === mid && (half & 1) === 1)) half++;
    return sign | half;
  }
  let half = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (half & 1) === 1)) half++;
  return sign | half;
}

/**
 * A tensor holding `data` as little-endian `rawData` (copied). `data` is converted to
 * `dataType` (FLOAT, DOUBLE, INT64, INT32, INT16, UINT16, INT8, UINT8, BOOL, FLOAT16).
 */
export function makeTensor(name: string, dataType: DataType, dims: readonly (number | bigint)[], data: TensorData): TensorProto {
  const count = dims.reduce<number>((a, d) => a * Number(d), 1);
  if (data.length !== count) {
    throw new RangeError(`tensor '${name}': ${data.length} values for shape [${dims.join(', ')}] (${count} elements)`);
  }
  const size = BYTES_PER_ELEMENT[dataType];
  if (size === undefined) throw new RangeError(`tensor '${name}': makeTensor does not support data type ${dataType}`);
  const raw = new Uint8Array(count * size);
  const view = new DataView(raw.buffer);
  const num = (i: number): number => Number(data[i]);
  for (let i = 0; i < count; i++) {
    const o = i * size;
    switch (dataType) {
      case DataType.FLOAT:
        view.setFloat32(o, num(i), true);
        break;
      case DataType.DOUBLE:
        view.setFloat64(o, num(i), true);
        break;
      case DataType.INT64:
        view.setBigInt64(o, typeof data[i] === 'bigint' ? (data[i] as bigint) : BigInt(Math.trunc(num(i))), true);
        break;
      case DataType.INT32:
        view.setInt32(o, num(i), true);
        break;
      case DataType.INT16:
        view.setInt16(o, num(i), true);
        break;
      case DataType.UINT16:
        view.setUint16(o, num(i), true);
        break;
      case DataType.INT8:
        view.setInt8(o, num(i));
        break;
      case DataType.UINT8:
        view.setUint8(o, num(i));
        break;
      case DataType.BOOL:
        view.setUint8(o, num(i) !== 0 ? 1 : 0);
        break;
      case DataType.FLOAT16:
        view.setUint16(o, float16Bits(num(i)), true);
        break;
    }
  }
  const t = emptyTensor(name);
  t.dims = dims.map((d) => BigInt(d));
  t.dataType = dataType;
  t.rawData = raw;
  return t;
}

/**
 * A tensor value info. `dims`: a number is a fixed size, a string a symbolic dimension, null an
 * unknown one; `dims` undefined means unknown rank. With `DataType.UNDEFINED` and no dims the
 * value info has no type at all (ONNX Runtime infers it; it rejects an explicit elem_type 0).
 */
export function makeValueInfo(name: string, elemType: DataType, dims?: readonly (number | bigint | string | null)[]): ValueInfoProto {
  if (elemType === DataType.UNDEFINED && dims === undefined) return { name, metadataProps: [] };
  const tensorType: NonNullable<ValueInfoProto['type']>['tensorType'] = { elemType };
  if (dims !== undefined) {
    tensorType.shape = {
      dim: dims.map((d): TensorShapeDimension => {
        if (d === null) return {};
        if (typeof d === 'string') return { dimParam: d };
        return { dimValue: BigInt(d) };
      }),
    };
  }
  return { name, type: { tensorType }, metadataProps: [] };
}

export interface GraphParts {
  name?: string;
  nodes: NodeProto[];
  inputs: ValueInfoProto[];
  outputs: ValueInfoProto[];
  initializers?: TensorProto[];
  valueInfo?: ValueInfoProto[];
}

export function makeGraph(p: GraphParts): GraphProto {
  const g: GraphProto = {
    node: p.nodes,
    initializer: p.initializers ?? [],
    sparseInitializer: [],
    input: p.inputs,
    output: p.outputs,
    valueInfo: p.valueInfo ?? [],
    metadataProps: [],
  };
  if (p.name !== undefined) g.name = p.name;
  return g;
}

/** The IR version released with each default-domain opset (ONNX versioning table). */
function irVersionFor(opset: number): bigint {
  if (opset <= 8) return 3n;
  if (opset <= 9) return 4n;
  if (opset <= 10) return 5n;
  if (opset <= 11) return 6n;
  if (opset <= 14) return 7n;
  if (opset <= 18) return 8n;
  if (opset <= 20) return 9n;
  if (opset <= 22) return 10n;
  return 11n;
}

export interface ModelParts {
  graph: GraphProto;
  /** Default-domain opset version, or explicit imports. */
  opset: number | { domain: string; version: number | bigint }[];
  irVersion?: number | bigint;
  producerName?: string;
  producerVersion?: string;
}

export function makeModel(p: ModelParts): ModelProto {
  const opsetImport: OperatorSetIdProto[] =
    typeof p.opset === 'number'
      ? [{ domain: '', version: BigInt(p.opset) }]
      : p.opset.map((o) => ({ domain: o.domain, version: BigInt(o.version) }));
  const main = opsetImport.find((o) => o.domain === '' || o.domain === 'ai.onnx');
  const model: ModelProto = {
    irVersion: p.irVersion !== undefined ? BigInt(p.irVersion) : irVersionFor(Number(main?.version ?? 17n)),
    opsetImport,
    graph: p.graph,
    metadataProps: [],
  };
  model.producerName = p.producerName ?? 'blocklens';
  if (p.producerVersion !== undefined) model.producerVersion = p.producerVersion;
  return model;
}

/** The opset version the model imports for `domain` ('' and 'ai.onnx' are the same), if any. */
export function opsetVersion(model: ModelProto, domain = ''): number | undefined {
  const norm = (d: string): string => (d === 'ai.onnx' ? '' : d);
  const want = norm(domain);
  const entry = model.opsetImport.find((o) => norm(o.domain) === want);
  return entry === undefined ? undefined : Number(entry.version);
}

/**
 * Nodes and constants to append to a graph (instrumentation): tensor names `${tensorPrefix}${hint}_${k}`,
 * node names `${nodePrefix}${op}_${k}`, one counter for both so every name is unique.
 */
export function graphAppender(tensorPrefix: string, nodePrefix: string) {
  const nodes: NodeProto[] = [];
  const inits: TensorProto[] = [];
  let n = 0;
  const name = (hint: string): string => `${tensorPrefix}${hint}_${n++}`;
  const node = (op: string, inputs: string[], attrs: NodeProto['attribute'] = [], out?: string): string => {
    const o = out ?? name(op);
    nodes.push(makeNode(op, inputs, [o], attrs, `${nodePrefix}${op}_${n++}`));
    return o;
  };
  const int64s = (values: number[]): string => {
    const nm = name('const');
    inits.push(makeTensor(nm, DataType.INT64, [values.length], BigInt64Array.from(values.map(BigInt))));
    return nm;
  };
  return { nodes, inits, name, node, int64s };
}
