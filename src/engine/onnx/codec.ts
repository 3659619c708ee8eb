// ONNX ModelProto codec, written from the ONNX IR specification (field numbers and types of
// onnx.proto, proto2) and the protobuf wire format. Each message is described once by a small
// table (field number, key, kind); one generic decoder and one generic encoder walk the tables.
//
// Byte-exact round trips: the decoder records in `$wire` the order in which field numbers
// appeared, unknown fields verbatim (FunctionProto, TrainingInfoProto, annotations, fields
// newer than this table) and repeated scalars whose packing differs from the schema. The
// encoder replays that order, so decode → encode of an unchanged message gives the same bytes.
// Limits (none seen from real producers): a repeated field split into several runs by other
// fields is re-emitted as one run; a singular field that occurs twice keeps its last value;
// non-minimal varints, invalid UTF-8 in strings and signalling-NaN payloads are normalised.

import { emptyTensor } from './builder.js';
import { OnnxFormatError } from './errors.js';
import type {
  AttributeProto,
  GraphProto,
  ModelProto,
  NodeProto,
  TensorProto,
  UnknownField,
  ValueInfoProto,
  WireInfo,
} from './types.js';
import { WireReader, WireType, WireWriter } from './wire.js';

type Kind = 'int32' | 'int64' | 'uint64' | 'float' | 'double' | 'string' | 'bytes' | 'message';

interface FieldSpec {
  no: number;
  key: string;
  kind: Kind;
  repeated: boolean;
  /** Schema packing of a repeated scalar (`[packed = true]` in onnx.proto). */
  packed: boolean;
  /** For fields typed as always present: the value that means "not set". */
  def?: string | bigint;
  /** Name of the message type, for kind 'message'. */
  type?: MessageName;
  msg?: MessageSpec;
}

interface MessageSpec {
  name: MessageName;
  /** Ascending field number. */
  fields: FieldSpec[];
  byNo: (FieldSpec | undefined)[];
  create(): Msg;
}

type Msg = Record<string, unknown> & { $wire?: WireInfo };

type MessageName =
  | 'ModelProto'
  | 'GraphProto'
  | 'NodeProto'
  | 'AttributeProto'
  | 'TensorProto'
  | 'TensorSegment'
  | 'SparseTensorProto'
  | 'ValueInfoProto'
  | 'TypeProto'
  | 'TypeProtoTensor'
  | 'TypeProtoSequence'
  | 'TypeProtoMap'
  | 'TypeProtoOptional'
  | 'TensorShapeProto'
  | 'TensorShapeDimension'
  | 'OperatorSetIdProto'
  | 'StringStringEntryProto';

/** Field shorthand: [no, key, kind, flags?, type?]; flags: r = repeated, p = packed. */
type Row = [number, string, Kind, string?, MessageName?];

function spec(name: MessageName, rows: Row[], create: () => Msg, defs: Record<string, string | bigint> = {}): MessageSpec {
  const fields = rows
    .map(([no, key, kind, flags = '', type]): FieldSpec => ({
      no,
      key,
      kind,
      repeated: flags.includes('r'),
      packed: flags.includes('p'),
      def: defs[key],
      type,
    }))
    .sort((a, b) => a.no - b.no);
  const byNo: (FieldSpec | undefined)[] = new Array(fields[fields.length - 1].no + 1).fill(undefined);
  for (const f of fields) byNo[f.no] = f;
  return { name, fields, byNo, create };
}

const SPECS: Record<MessageName, MessageSpec> = {
  StringStringEntryProto: spec(
    'StringStringEntryProto',
    [
      [1, 'key', 'string'],
      [2, 'value', 'string'],
    ],
    () => ({ key: '', value: '' }),
    { key: '', value: '' },
  ),
  OperatorSetIdProto: spec(
    'OperatorSetIdProto',
    [
      [1, 'domain', 'string'],
      [2, 'version', 'int64'],
    ],
    () => ({ domain: '', version: 0n }),
    { domain: '', version: 0n },
  ),
  TensorShapeDimension: spec(
    'TensorShapeDimension',
    [
      [1, 'dimValue', 'int64'],
      [2, 'dimParam', 'string'],
      [3, 'denotation', 'string'],
    ],
    () => ({}),
  ),
  TensorShapeProto: spec('TensorShapeProto', [[1, 'dim', 'message', 'r', 'TensorShapeDimension']], () => ({ dim: [] })),
  TypeProtoTensor: spec(
    'TypeProtoTensor',
    [
      [1, 'elemType', 'int32'],
      [2, 'shape', 'message', '', 'TensorShapeProto'],
    ],
    () => ({}),
  ),
  TypeProtoSequence: spec('TypeProtoSequence', [[1, 'elemType', 'message', '', 'TypeProto']], () => ({})),
  TypeProtoOptional: spec('TypeProtoOptional', [[1, 'elemType', 'message', '', 'TypeProto']], () => ({})),
  TypeProtoMap: spec(
    'TypeProtoMap',
    [
      [1, 'keyType', 'int32'],
      [2, 'valueType', 'message', '', 'TypeProto'],
    ],
    () => ({}),
  ),
  TypeProto: spec(
    'TypeProto',
    [
      [1, 'tensorType', 'message', '', 'TypeProtoTensor'],
      [4, 'sequenceType', 'message', '', 'TypeProtoSequence'],
      [5, 'mapType', 'message', '', 'TypeProtoMap'],
      [6, 'denotation', 'string'],
      [8, 'sparseTensorType', 'message', '', 'TypeProtoTensor'],
      [9, 'optionalType', 'message', '', 'TypeProtoOptional'],
    ],
    () => ({}),
  ),
  ValueInfoProto: spec(
    'ValueInfoProto',
    [
      [1, 'name', 'string'],
      [2, 'type', 'message', '', 'TypeProto'],
      [3, 'docString', 'string'],
      [4, 'metadataProps', 'message', 'r', 'StringStringEntryProto'],
    ],
    () => ({ name: '', metadataProps: [] }),
    { name: '' },
  ),
  TensorSegment: spec(
    'TensorSegment',
    [
      [1, 'begin', 'int64'],
      [2, 'end', 'int64'],
    ],
    () => ({}),
  ),
  TensorProto: spec(
    'TensorProto',
    [
      [1, 'dims', 'int64', 'r'],
      [2, 'dataType', 'int32'],
      [3, 'segment', 'message', '', 'TensorSegment'],
      [4, 'floatData', 'float', 'rp'],
      [5, 'int32Data', 'int32', 'rp'],
      [6, 'stringData', 'bytes', 'r'],
      [7, 'int64Data', 'int64', 'rp'],
      [8, 'name', 'string'],
      [9, 'rawData', 'bytes'],
      [10, 'doubleData', 'double', 'rp'],
      [11, 'uint64Data', 'uint64', 'rp'],
      [12, 'docString', 'string'],
      [13, 'externalData', 'message', 'r', 'StringStringEntryProto'],
      [14, 'dataLocation', 'int32'],
      [16, 'metadataProps', 'message', 'r', 'StringStringEntryProto'],
    ],
    () => ({ ...emptyTensor() }) as Msg,
  ),
  SparseTensorProto: spec(
    'SparseTensorProto',
    [
      [1, 'values', 'message', '', 'TensorProto'],
      [2, 'indices', 'message', '', 'TensorProto'],
      [3, 'dims', 'int64', 'r'],
    ],
    () => ({ dims: [] }),
  ),
  AttributeProto: spec(
    'AttributeProto',
    [
      [1, 'name', 'string'],
      [2, 'f', 'float'],
      [3, 'i', 'int64'],
      [4, 's', 'bytes'],
      [5, 't', 'message', '', 'TensorProto'],
      [6, 'g', 'message', '', 'GraphProto'],
      [7, 'floats', 'float', 'r'],
      [8, 'ints', 'int64', 'r'],
      [9, 'strings', 'bytes', 'r'],
      [10, 'tensors', 'message', 'r', 'TensorProto'],
      [11, 'graphs', 'message', 'r', 'GraphProto'],
      [13, 'docString', 'string'],
      [14, 'tp', 'message', '', 'TypeProto'],
      [15, 'typeProtos', 'message', 'r', 'TypeProto'],
      [20, 'type', 'int32'],
      [21, 'refAttrName', 'string'],
      [22, 'sparseTensor', 'message', '', 'SparseTensorProto'],
      [23, 'sparseTensors', 'message', 'r', 'SparseTensorProto'],
    ],
    () => ({
      name: '',
      floats: [],
      ints: [],
      strings: [],
      tensors: [],
      graphs: [],
      sparseTensors: [],
      typeProtos: [],
    }),
    { name: '' },
  ),
  NodeProto: spec(
    'NodeProto',
    [
      [1, 'input', 'string', 'r'],
      [2, 'output', 'string', 'r'],
      [3, 'name', 'string'],
      [4, 'opType', 'string'],
      [5, 'attribute', 'message', 'r', 'AttributeProto'],
      [6, 'docString', 'string'],
      [7, 'domain', 'string'],
      [8, 'overload', 'string'],
      [9, 'metadataProps', 'message', 'r', 'StringStringEntryProto'],
    ],
    () => ({ input: [], output: [], opType: '', attribute: [], metadataProps: [] }),
    { opType: '' },
  ),
  GraphProto: spec(
    'GraphProto',
    [
      [1, 'node', 'message', 'r', 'NodeProto'],
      [2, 'name', 'string'],
      [5, 'initializer', 'message', 'r', 'TensorProto'],
      [10, 'docString', 'string'],
      [11, 'input', 'message', 'r', 'ValueInfoProto'],
      [12, 'output', 'message', 'r', 'ValueInfoProto'],
      [13, 'valueInfo', 'message', 'r', 'ValueInfoProto'],
      [15, 'sparseInitializer', 'message', 'r', 'SparseTensorProto'],
      [16, 'metadataProps', 'message', 'r', 'StringStringEntryProto'],
    ],
    () => ({ node: [], initializer: [], sparseInitializer: [], input: [], output: [], valueInfo: [], metadataProps: [] }),
  ),
  ModelProto: spec(
    'ModelProto',
    [
      [1, 'irVersion', 'int64'],
      [2, 'producerName', 'string'],
      [3, 'producerVersion', 'string'],
      [4, 'domain', 'string'],
      [5, 'modelVersion', 'int64'],
      [6, 'docString', 'string'],
      [7, 'graph', 'message', '', 'GraphProto'],
      [8, 'opsetImport', 'message', 'r', 'OperatorSetIdProto'],
      [14, 'metadataProps', 'message', 'r', 'StringStringEntryProto'],
    ],
    () => ({ opsetImport: [], metadataProps: [] }),
  ),
};

for (const s of Object.values(SPECS)) {
  for (const f of s.fields) if (f.type !== undefined) f.msg = SPECS[f.type];
}

/** Wire type of one (unpacked) value of a scalar kind. */
function scalarWireType(kind: Kind): number {
  switch (kind) {
    case 'float':
      return WireType.I32;
    case 'double':
      return WireType.I64;
    case 'int32':
    case 'int64':
    case 'uint64':
      return WireType.VARINT;
    default:
      return WireType.LEN;
  }
}

// ---------------------------------------------------------------------------------------------
// Decoding

function readScalar(r: WireReader, kind: Kind): number | bigint {
  switch (kind) {
    case 'int32':
      return r.int32();
    case 'int64':
      return r.int64();
    case 'uint64':
      return r.uint64();
    case 'float':
      return r.float();
    default:
      return r.double();
  }
}

/** Reads a packed run of `kind` values ending at `end` into `out`. */
function readPacked(r: WireReader, kind: Kind, end: number, out: (number | bigint)[]): void {
  if (kind === 'float' || kind === 'double') {
    const size = kind === 'float' ? 4 : 8;
    const bytes = end - r.pos;
    if (bytes % size !== 0) {
      throw new OnnxFormatError(`packed ${kind} field of ${bytes} bytes at byte ${r.pos} is not a multiple of ${size}`);
    }
    const view = r.view;
    const nums = out as number[];
    if (size === 4) for (let p = r.pos; p < end; p += 4) nums.push(view.getFloat32(p, true));
    else for (let p = r.pos; p < end; p += 8) nums.push(view.getFloat64(p, true));
    r.pos = end;
    return;
  }
  const saved = r.limit;
  r.limit = end;
  if (kind === 'int32') {
    const nums = out as number[];
    while (r.pos < end) nums.push(r.int32());
  } else if (kind === 'int64') {
    const big = out as bigint[];
    while (r.pos < end) big.push(r.int64());
  } else {
    const big = out as bigint[];
    while (r.pos < end) big.push(r.uint64());
  }
  r.limit = saved;
}

/**
 * Reads one occurrence of a known field into `m`. Returns false when the wire type does not fit
 * the schema (the caller then keeps the field verbatim as unknown).
 */
function readField(r: WireReader, f: FieldSpec, wt: number, m: Msg, info: WireInfo, depth: number): boolean {
  switch (f.kind) {
    case 'message': {
      if (wt !== WireType.LEN) return false;
      const end = r.lenEnd();
      const v = decodeMessage(r, f.msg as MessageSpec, end, depth + 1);
      if (f.repeated) (m[f.key] as Msg[]).push(v);
      else m[f.key] = v;
      return true;
    }
    case 'string': {
      if (wt !== WireType.LEN) return false;
      const v = r.string();
      if (f.repeated) (m[f.key] as string[]).push(v);
      else m[f.key] = v;
      return true;
    }
    case 'bytes': {
      if (wt !== WireType.LEN) return false;
      const v = r.bytes();
      if (f.repeated) (m[f.key] as Uint8Array[]).push(v);
      else m[f.key] = v;
      return true;
    }
    default: {
      const unpackedWt = scalarWireType(f.kind);
      if (!f.repeated) {
        if (wt !== unpackedWt) return false;
        m[f.key] = readScalar(r, f.kind);
        return true;
      }
      const out = m[f.key] as (number | bigint)[];
      let packedOnWire: boolean;
      if (wt === WireType.LEN) {
        const end = r.lenEnd();
        readPacked(r, f.kind, end, out);
        packedOnWire = true;
      } else if (wt === unpackedWt) {
        out.push(readScalar(r, f.kind));
        packedOnWire = false;
      } else {
        return false;
      }
      if (packedOnWire !== f.packed) {
        const flipped = (info.packingFlipped ??= []);
        if (!flipped.includes(f.no)) flipped.push(f.no);
      }
      return true;
    }
  }
}

/**
 * Deepest nesting of messages accepted, as protobuf's own parsers default to (100): real models
 * nest a few levels per subgraph; a file nesting thousands of type or graph levels would
 * otherwise exhaust the stack of this decoder, and of every recursive walker after it.
 */
export const MAX_MESSAGE_DEPTH = 100;

/** Decodes the fields in `[r.pos, end)` as message `s`. */
function decodeMessage(r: WireReader, s: MessageSpec, end: number, depth = 0): Msg {
  if (depth > MAX_MESSAGE_DEPTH) {
    throw new OnnxFormatError(`messages nested more than ${MAX_MESSAGE_DEPTH} levels deep at byte ${r.pos} (a corrupt or hostile file)`);
  }
  const m = s.create();
  const order: number[] = [];
  const unknown: UnknownField[] = [];
  const info: WireInfo = { order, unknown };
  const savedLimit = r.limit;
  r.limit = end;
  const byNo = s.byNo;
  let last = -1;
  while (r.pos < end) {
    const tagAt = r.pos;
    const tag = r.uint32();
    const no = tag >>> 3;
    const wt = tag & 7;
    if (no === 0) throw new OnnxFormatError(`invalid field number 0 at byte ${tagAt}`);
    if (no !== last) {
      if (!order.includes(no)) order.push(no);
      last = no;
    }
    const f = no < byNo.length ? byNo[no] : undefined;
    if (f === undefined || !readField(r, f, wt, m, info, depth)) {
      r.skip(wt, no, tagAt);
      unknown.push({ no, bytes: r.buf.subarray(tagAt, r.pos) });
    }
  }
  r.limit = savedLimit;
  m.$wire = info;
  return m;
}

function decodeTop(bytes: Uint8Array, name: MessageName): Msg {
  const r = new WireReader(bytes);
  return decodeMessage(r, SPECS[name], bytes.length);
}

// ---------------------------------------------------------------------------------------------
// Encoding

function writeScalar(w: WireWriter, kind: Kind, v: number | bigint): void {
  switch (kind) {
    case 'int32':
      w.int32(v as number);
      return;
    case 'int64':
      w.int64(v as bigint);
      return;
    case 'uint64':
      w.uint64(v as bigint);
      return;
    case 'float':
      w.float(v as number);
      return;
    default:
      w.double(v as number);
  }
}

function writeField(w: WireWriter, f: FieldSpec, m: Msg, recorded: boolean, flipped: boolean): void {
  const v = m[f.key];
  if (v === undefined || v === null) return;
  if (f.repeated) {
    const arr = v as unknown[];
    switch (f.kind) {
      case 'message':
        for (const item of arr) {
          w.tag(f.no, WireType.LEN);
          w.fork();
          encodeMessage(w, f.msg as MessageSpec, item as Msg);
          w.ldelim();
        }
        return;
      case 'string':
        for (const item of arr) {
          w.tag(f.no, WireType.LEN);
          w.string(item as string);
        }
        return;
      case 'bytes':
        for (const item of arr) {
          w.tag(f.no, WireType.LEN);
          w.bytes(item as Uint8Array);
        }
        return;
      default: {
        const packed = f.packed !== flipped;
        if (!packed) {
          const wt = scalarWireType(f.kind);
          for (const item of arr) {
            w.tag(f.no, wt);
            writeScalar(w, f.kind, item as number | bigint);
          }
          return;
        }
        // An empty packed run is written only when the input had one.
        if (arr.length === 0 && !recorded) return;
        w.tag(f.no, WireType.LEN);
        if (f.kind === 'float') {
          w.uint32(arr.length * 4);
          w.floats(arr as number[]);
        } else if (f.kind === 'double') {
          w.uint32(arr.length * 8);
          w.doubles(arr as number[]);
        } else {
          w.fork();
          for (const item of arr) writeScalar(w, f.kind, item as number | bigint);
          w.ldelim();
        }
        return;
      }
    }
  }
  if (f.def !== undefined && v === f.def && !recorded) return;
  switch (f.kind) {
    case 'message':
      w.tag(f.no, WireType.LEN);
      w.fork();
      encodeMessage(w, f.msg as MessageSpec, v as Msg);
      w.ldelim();
      return;
    case 'string':
      w.tag(f.no, WireType.LEN);
      w.string(v as string);
      return;
    case 'bytes':
      w.tag(f.no, WireType.LEN);
      w.bytes(v as Uint8Array);
      return;
    default:
      w.tag(f.no, scalarWireType(f.kind));
      writeScalar(w, f.kind, v as number | bigint);
  }
}

function encodeMessage(w: WireWriter, s: MessageSpec, m: Msg): void {
  const info = m.$wire;
  if (info === undefined) {
    for (const f of s.fields) writeField(w, f, m, false, false);
    return;
  }
  const { order, unknown } = info;
  const flipped = info.packingFlipped;
  const byNo = s.byNo;
  // Fields in the order recorded, each with its unknown twins (same number, other wire type).
  let seenLow = 0; // bit i: field i (< 31) was recorded
  for (const no of order) {
    if (no < 31) seenLow |= 1 << no;
    const f = no < byNo.length ? byNo[no] : undefined;
    if (f !== undefined) writeField(w, f, m, true, flipped !== undefined && flipped.includes(no));
    for (let i = 0; i < unknown.length; i++) if (unknown[i].no === no) w.raw(unknown[i].bytes);
  }
  // Fields set since decoding, in ascending order.
  for (const f of s.fields) {
    const recorded = f.no < 31 ? (seenLow & (1 << f.no)) !== 0 : order.includes(f.no);
    if (!recorded) writeField(w, f, m, false, flipped !== undefined && flipped.includes(f.no));
  }
  // Unknown fields whose number was not recorded (only if `$wire` was built by hand).
  for (const u of unknown) if (!order.includes(u.no)) w.raw(u.bytes);
}

/** Largest protobuf message: 2 GiB − 1. */
export const MAX_PROTOBUF_BYTES = 0x7fffffff;

/** Encodes `m` as message `name`, refusing results over the protobuf size limit. */
function encodeChecked(m: Msg, name: MessageName): WireWriter {
  const w = new WireWriter();
  encodeMessage(w, SPECS[name], m);
  if (w.length > MAX_PROTOBUF_BYTES) {
    throw new OnnxFormatError(
      `encoded ${name} is ${w.length} bytes, over the 2 GiB protobuf limit; save the weights as external data`,
    );
  }
  return w;
}

function encodeTop(m: Msg, name: MessageName): Uint8Array {
  return encodeChecked(m, name).finish();
}

// ---------------------------------------------------------------------------------------------
// Public API

/** Decodes a serialized ModelProto. Byte payloads (rawData, strings) are views of `bytes`. */
export function decodeModel(bytes: Uint8Array): ModelProto {
  return decodeTop(bytes, 'ModelProto') as unknown as ModelProto;
}

/** Encodes a ModelProto; an unchanged decoded model gives back its input bytes. */
export function encodeModel(model: ModelProto): Uint8Array {
  return encodeTop(model as unknown as Msg, 'ModelProto');
}

/**
 * Encodes a ModelProto as a list of parts (large payloads are the caller's arrays, not copies),
 * for writing to a file without assembling one buffer.
 */
export function encodeModelParts(model: ModelProto): { parts: Uint8Array[]; length: number } {
  return encodeChecked(model as unknown as Msg, 'ModelProto').finishParts();
}

export function decodeGraph(bytes: Uint8Array): GraphProto {
  return decodeTop(bytes, 'GraphProto') as unknown as GraphProto;
}
export function encodeGraph(graph: GraphProto): Uint8Array {
  return encodeTop(graph as unknown as Msg, 'GraphProto');
}
export function decodeNode(bytes: Uint8Array): NodeProto {
  return decodeTop(bytes, 'NodeProto') as unknown as NodeProto;
}
export function encodeNode(node: NodeProto): Uint8Array {
  return encodeTop(node as unknown as Msg, 'NodeProto');
}
export function decodeAttribute(bytes: Uint8Array): AttributeProto {
  return decodeTop(bytes, 'AttributeProto') as unknown as AttributeProto;
}
export function encodeAttribute(attr: AttributeProto): Uint8Array {
  return encodeTop(attr as unknown as Msg, 'AttributeProto');
}
/** Decodes a serialized TensorProto (e.g. an ONNX test-data `.pb` file). */
export function decodeTensor(bytes: Uint8Array): TensorProto {
  return decodeTop(bytes, 'TensorProto') as unknown as TensorProto;
}
export function encodeTensor(tensor: TensorProto): Uint8Array {
  return encodeTop(tensor as unknown as Msg, 'TensorProto');
}
export function decodeValueInfo(bytes: Uint8Array): ValueInfoProto {
  return decodeTop(bytes, 'ValueInfoProto') as unknown as ValueInfoProto;
}
export function encodeValueInfo(vi: ValueInfoProto): Uint8Array {
  return encodeTop(vi as unknown as Msg, 'ValueInfoProto');
}

/**
 * ModelProto fields and their wire types, for sniffing. Unknown numbers up to MODEL_MAX_FIELD
 * are tolerated (reserved or newer fields); beyond it a top-level tag is taken as "not ONNX".
 */
const MODEL_WIRE_TYPES = new Map<number, number>([
  [1, WireType.VARINT], // ir_version
  [2, WireType.LEN], // producer_name
  [3, WireType.LEN], // producer_version
  [4, WireType.LEN], // domain
  [5, WireType.VARINT], // model_version
  [6, WireType.LEN], // doc_string
  [7, WireType.LEN], // graph
  [8, WireType.LEN], // opset_import
  [14, WireType.LEN], // metadata_props
  [20, WireType.LEN], // training_info
  [25, WireType.LEN], // functions
  [26, WireType.LEN], // configuration
]);
const MODEL_MAX_FIELD = 1000;

/**
 * Cheap check that `bytes` plausibly hold a ModelProto: the first top-level field must be a
 * ModelProto field with its proper wire type, and the following top-level fields (up to 64, or
 * until the data runs out) must be well-formed with ModelProto's wire types; ir_version, when
 * present, must be a small positive number. A file cut short
 * still "looks like" ONNX here, so that decoding reports it as truncated.
 */
export function looksLikeOnnx(bytes: Uint8Array): boolean {
  if (bytes.length < 2) return false;
  const r = new WireReader(bytes);
  for (let i = 0; i < 64 && r.pos < bytes.length; i++) {
    let tag: number;
    try {
      tag = r.uint32();
    } catch {
      return i > 0;
    }
    const no = tag >>> 3;
    const wt = tag & 7;
    const expected = MODEL_WIRE_TYPES.get(no);
    if (i === 0 && expected === undefined) return false;
    if (no === 0 || no > MODEL_MAX_FIELD) return false;
    if (expected !== undefined && expected !== wt) return false;
    if (wt === WireType.EGROUP || wt > WireType.I32) return false;
    try {
      if (wt === WireType.LEN) {
        const len = r.uint32();
        // Running past the end: a truncated file if anything before made sense.
        if (r.pos + len > bytes.length) return i > 0 || no === 7;
        r.pos += len;
      } else if (no === 1 && wt === WireType.VARINT) {
        r.varint64();
        // IR versions are small positive numbers (3..11 in 2025).
        if (r.hi !== 0 || r.lo === 0 || r.lo > 1000) return false;
      } else {
        r.skip(wt, no, 0);
      }
    } catch {
      return i > 0;
    }
  }
  return true;
}
