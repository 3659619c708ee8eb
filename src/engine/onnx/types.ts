// ONNX IR message types, written from the published ONNX IR specification (onnx.proto).
// Field names are the spec's snake_case names in camelCase. 64-bit integers are `bigint`,
// `bytes` fields are `Uint8Array`, enums and int32 fields are `number`.
//
// Every message may carry `$wire`: what the decoder saw that the typed fields do not say
// (unknown fields verbatim, field order, packed encodings). The encoder uses it so that an
// unchanged model re-encodes to the same bytes. Code that builds new messages leaves it out.

export interface UnknownField {
  /** Field number. */
  no: number;
  /** The whole field as it appeared on the wire: tag and payload. */
  bytes: Uint8Array;
}

export interface WireInfo {
  /** Field numbers in the order they first appeared. */
  order: number[];
  /** Fields this schema does not know, kept verbatim. */
  unknown: UnknownField[];
  /** Repeated scalar fields whose encoding on the wire differed from the schema's default packing. */
  packingFlipped?: number[];
}

export interface WithWire {
  $wire?: WireInfo;
}

export const enum DataType {
  UNDEFINED = 0,
  FLOAT = 1,
  UINT8 = 2,
  INT8 = 3,
  UINT16 = 4,
  INT16 = 5,
  INT32 = 6,
  INT64 = 7,
  STRING = 8,
  BOOL = 9,
  FLOAT16 = 10,
  DOUBLE = 11,
  UINT32 = 12,
  UINT64 = 13,
  COMPLEX64 = 14,
  COMPLEX128 = 15,
  BFLOAT16 = 16,
  FLOAT8E4M3FN = 17,
  FLOAT8E4M3FNUZ = 18,
  FLOAT8E5M2 = 19,
  FLOAT8E5M2FNUZ = 20,
  UINT4 = 21,
  INT4 = 22,
  FLOAT4E2M1 = 23,
}

export const enum AttributeType {
  UNDEFINED = 0,
  FLOAT = 1,
  INT = 2,
  STRING = 3,
  TENSOR = 4,
  GRAPH = 5,
  FLOATS = 6,
  INTS = 7,
  STRINGS = 8,
  TENSORS = 9,
  GRAPHS = 10,
  SPARSE_TENSOR = 11,
  SPARSE_TENSORS = 12,
  TYPE_PROTO = 13,
  TYPE_PROTOS = 14,
}

export interface StringStringEntryProto extends WithWire {
  key: string;
  value: string;
}

export interface OperatorSetIdProto extends WithWire {
  domain: string;
  version: bigint;
}

export interface TensorShapeDimension extends WithWire {
  dimValue?: bigint;
  dimParam?: string;
  denotation?: string;
}

export interface TensorShapeProto extends WithWire {
  dim: TensorShapeDimension[];
}

export interface TypeProtoTensor extends WithWire {
  elemType?: number;
  shape?: TensorShapeProto;
}

export interface TypeProto extends WithWire {
  tensorType?: TypeProtoTensor;
  sparseTensorType?: TypeProtoTensor;
  sequenceType?: { elemType?: TypeProto } & WithWire;
  optionalType?: { elemType?: TypeProto } & WithWire;
  mapType?: { keyType?: number; valueType?: TypeProto } & WithWire;
  denotation?: string;
}

export interface ValueInfoProto extends WithWire {
  name: string;
  type?: TypeProto;
  docString?: string;
  metadataProps: StringStringEntryProto[];
}

export interface TensorSegment extends WithWire {
  begin?: bigint;
  end?: bigint;
}

export interface TensorProto extends WithWire {
  dims: bigint[];
  dataType?: number;
  segment?: TensorSegment;
  floatData: number[];
  int32Data: number[];
  stringData: Uint8Array[];
  int64Data: bigint[];
  name?: string;
  docString?: string;
  rawData?: Uint8Array;
  externalData: StringStringEntryProto[];
  /** 0 = DEFAULT, 1 = EXTERNAL */
  dataLocation?: number;
  doubleData: number[];
  uint64Data: bigint[];
  metadataProps: StringStringEntryProto[];
}

export interface SparseTensorProto extends WithWire {
  values?: TensorProto;
  indices?: TensorProto;
  dims: bigint[];
}

export interface AttributeProto extends WithWire {
  name: string;
  refAttrName?: string;
  docString?: string;
  type?: number;
  f?: number;
  i?: bigint;
  s?: Uint8Array;
  t?: TensorProto;
  g?: GraphProto;
  sparseTensor?: SparseTensorProto;
  tp?: TypeProto;
  floats: number[];
  ints: bigint[];
  strings: Uint8Array[];
  tensors: TensorProto[];
  graphs: GraphProto[];
  sparseTensors: SparseTensorProto[];
  typeProtos: TypeProto[];
}

export interface NodeProto extends WithWire {
  input: string[];
  output: string[];
  name?: string;
  opType: string;
  domain?: string;
  overload?: string;
  attribute: AttributeProto[];
  docString?: string;
  metadataProps: StringStringEntryProto[];
}

export interface GraphProto extends WithWire {
  node: NodeProto[];
  name?: string;
  initializer: TensorProto[];
  sparseInitializer: SparseTensorProto[];
  docString?: string;
  input: ValueInfoProto[];
  output: ValueInfoProto[];
  valueInfo: ValueInfoProto[];
  metadataProps: StringStringEntryProto[];
}

export interface ModelProto extends WithWire {
  irVersion?: bigint;
  opsetImport: OperatorSetIdProto[];
  producerName?: string;
  producerVersion?: string;
  domain?: string;
  modelVersion?: bigint;
  docString?: string;
  graph?: GraphProto;
  metadataProps: StringStringEntryProto[];
}
