// Tensor payloads without file access: element counts, byte sizes, the little-endian bytes of
// tensors whose values sit in the typed fields, and conversion of bytes to float64. Layouts
// follow the ONNX IR specification (TensorProto: raw_data is little-endian; 16-bit and 8-bit
// types held in int32_data are their bit patterns; 4-bit types are packed two per byte).

import { OnnxFormatError } from './errors.js';
import { DataType, type GraphProto, type ModelProto, type SparseTensorProto, type TensorProto } from './types.js';

/** Bits per element of each fixed-size data type (undefined: STRING, UNDEFINED, unknown). */
export function bitsPerElement(dataType: number | undefined): number | undefined {
  switch (dataType) {
    case DataType.BOOL:
    case DataType.INT8:
    case DataType.UINT8:
    case DataType.FLOAT8E4M3FN:
    case DataType.FLOAT8E4M3FNUZ:
    case DataType.FLOAT8E5M2:
    case DataType.FLOAT8E5M2FNUZ:
      return 8;
    case DataType.INT16:
    case DataType.UINT16:
    case DataType.FLOAT16:
    case DataType.BFLOAT16:
      return 16;
    case DataType.FLOAT:
    case DataType.INT32:
    case DataType.UINT32:
      return 32;
    case DataType.DOUBLE:
    case DataType.INT64:
    case DataType.UINT64:
    case DataType.COMPLEX64:
      return 64;
    case DataType.COMPLEX128:
      return 128;
    case DataType.UINT4:
    case DataType.INT4:
    case DataType.FLOAT4E2M1:
      return 4;
    default:
      return undefined;
  }
}

/** Number of elements: the product of `dims` (1 for a scalar). */
export function tensorElementCount(tensor: Pick<TensorProto, 'dims'>): number {
  let n = 1;
  for (const d of tensor.dims) n *= Number(d);
  return n;
}

/** Bytes the tensor's values occupy as raw data, or undefined for strings/unknown types. */
export function tensorByteLength(tensor: Pick<TensorProto, 'dims' | 'dataType'>): number | undefined {
  const bits = bitsPerElement(tensor.dataType);
  if (bits === undefined) return undefined;
  return Math.ceil((tensorElementCount(tensor) * bits) / 8);
}

/** Little-endian bytes of a tensor whose values are in rawData or the typed repeated fields. */
export function inlineTensorBytes(tensor: TensorProto): Uint8Array {
  if (tensor.rawData !== undefined) return tensor.rawData;
  const name = tensor.name ?? '(unnamed)';
  const dt = tensor.dataType;
  const bits = bitsPerElement(dt);
  if (bits === undefined) throw new OnnxFormatError(`tensor '${name}': data type ${dt} has no fixed-size byte layout`);
  const fail = (field: string, have: number, want: number): never => {
    throw new OnnxFormatError(`tensor '${name}': ${field} holds ${have} values, expected ${want}`);
  };
  const count = tensorElementCount(tensor);
  if (!Number.isSafeInteger(count) || count < 0) throw new OnnxFormatError(`tensor '${name}': dims ${tensor.dims.join('×')} are not a valid size`);
  // Checked before allocating (dims may be absurd): each stored value holds at most two elements.
  const stored = tensor.floatData.length + tensor.doubleData.length + tensor.int64Data.length + tensor.uint64Data.length + tensor.int32Data.length;
  if (count > 2 * stored) throw new OnnxFormatError(`tensor '${name}': holds ${stored} values, but its dims ${tensor.dims.join('×')} need ${count}`);
  const out = new Uint8Array(Math.ceil((count * bits) / 8));
  const view = new DataView(out.buffer);
  switch (dt) {
    case DataType.FLOAT:
    case DataType.COMPLEX64: {
      const src = tensor.floatData;
      const want = dt === DataType.COMPLEX64 ? count * 2 : count;
      if (src.length !== want) fail('float_data', src.length, want);
      for (let i = 0; i < want; i++) view.setFloat32(i * 4, src[i], true);
      return out;
    }
    case DataType.DOUBLE:
    case DataType.COMPLEX128: {
      const src = tensor.doubleData;
      const want = dt === DataType.COMPLEX128 ? count * 2 : count;
      if (src.length !== want) fail('double_data', src.length, want);
      for (let i = 0; i < want; i++) view.setFloat64(i * 8, src[i], true);
      return out;
    }
    case DataType.INT64: {
      const src = tensor.int64Data;
      if (src.length !== count) fail('int64_data', src.length, count);
      for (let i = 0; i < count; i++) view.setBigInt64(i * 8, src[i], true);
      return out;
    }
    case DataType.UINT32:
    case DataType.UINT64: {
      const src = tensor.uint64Data;
      if (src.length !== count) fail('uint64_data', src.length, count);
      if (dt === DataType.UINT32) for (let i = 0; i < count; i++) view.setUint32(i * 4, Number(src[i]), true);
      else for (let i = 0; i < count; i++) view.setBigUint64(i * 8, src[i], true);
      return out;
    }
    default: {
      // int32_data: INT32 values, or bit patterns of 16/8-bit types, or packed 4-bit pairs.
      const src = tensor.int32Data;
      const want = bits === 4 ? out.length : count;
      if (src.length !== want) fail('int32_data', src.length, want);
      if (bits === 32) for (let i = 0; i < count; i++) view.setInt32(i * 4, src[i], true);
      else if (bits === 16) for (let i = 0; i < count; i++) view.setUint16(i * 2, src[i] & 0xffff, true);
      else for (let i = 0; i < want; i++) out[i] = src[i] & 0xff;
      return out;
    }
  }
}

/** Value of IEEE half-precision bits. */
export function float16ToNumber(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant === 0 ? sign * Infinity : NaN;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

const bf16Scratch = new DataView(new ArrayBuffer(4));
/** Value of bfloat16 bits. */
export function bfloat16ToNumber(h: number): number {
  bf16Scratch.setUint32(0, (h & 0xffff) << 16);
  return bf16Scratch.getFloat32(0);
}

/**
 * Converts little-endian tensor bytes of a real numeric type to float64. Complex, string,
 * 8-bit float and 4-bit types are refused.
 */
export function bytesToFloat64(bytes: Uint8Array, dataType: number | undefined, count: number, name = '(unnamed)'): Float64Array {
  const bits = bitsPerElement(dataType);
  if (bits === undefined || bits < 8) {
    throw new OnnxFormatError(`tensor '${name}': cannot convert data type ${dataType} to float64`);
  }
  if (bytes.length < (count * bits) / 8) {
    throw new OnnxFormatError(`tensor '${name}': ${bytes.length} bytes for ${count} elements of ${bits} bits`);
  }
  const out = new Float64Array(count);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  switch (dataType) {
    case DataType.FLOAT:
      for (let i = 0; i < count; i++) out[i] = view.getFloat32(i * 4, true);
      break;
    case DataType.DOUBLE:
      for (let i = 0; i < count; i++) out[i] = view.getFloat64(i * 8, true);
      break;
    case DataType.FLOAT16:
      for (let i = 0; i < count; i++) out[i] = float16ToNumber(view.getUint16(i * 2, true));
      break;
    case DataType.BFLOAT16:
      for (let i = 0; i < count; i++) out[i] = bfloat16ToNumber(view.getUint16(i * 2, true));
      break;
    case DataType.INT8:
      for (let i = 0; i < count; i++) out[i] = view.getInt8(i);
      break;
    case DataType.UINT8:
    case DataType.BOOL:
      for (let i = 0; i < count; i++) out[i] = bytes[i];
      break;
    case DataType.INT16:
      for (let i = 0; i < count; i++) out[i] = view.getInt16(i * 2, true);
      break;
    case DataType.UINT16:
      for (let i = 0; i < count; i++) out[i] = view.getUint16(i * 2, true);
      break;
    case DataType.INT32:
      for (let i = 0; i < count; i++) out[i] = view.getInt32(i * 4, true);
      break;
    case DataType.UINT32:
      for (let i = 0; i < count; i++) out[i] = view.getUint32(i * 4, true);
      break;
    case DataType.INT64:
      for (let i = 0; i < count; i++) out[i] = Number(view.getBigInt64(i * 8, true));
      break;
    case DataType.UINT64:
      for (let i = 0; i < count; i++) out[i] = Number(view.getBigUint64(i * 8, true));
      break;
    default:
      throw new OnnxFormatError(`tensor '${name}': cannot convert data type ${dataType} to float64`);
  }
  return out;
}

/** Float64 values of a tensor held inline (rawData or typed fields); fast paths skip bytes. */
export function inlineTensorToFloat64(tensor: TensorProto): Float64Array {
  const count = tensorElementCount(tensor);
  if (tensor.rawData === undefined) {
    if (tensor.dataType === DataType.FLOAT && tensor.floatData.length === count) return Float64Array.from(tensor.floatData);
    if (tensor.dataType === DataType.DOUBLE && tensor.doubleData.length === count) return Float64Array.from(tensor.doubleData);
    if (tensor.dataType === DataType.INT32 && tensor.int32Data.length === count) return Float64Array.from(tensor.int32Data);
  }
  return bytesToFloat64(inlineTensorBytes(tensor), tensor.dataType, count, tensor.name);
}

/** Every graph of the model: the main graph, then subgraphs (If/Loop/Scan bodies) depth-first. */
export function* allGraphs(model: ModelProto): Generator<GraphProto> {
  if (model.graph === undefined) return;
  const stack: GraphProto[] = [model.graph];
  while (stack.length > 0) {
    const g = stack.pop() as GraphProto;
    yield g;
    const subs: GraphProto[] = [];
    for (const n of g.node) {
      for (const a of n.attribute) {
        if (a.g !== undefined) subs.push(a.g);
        for (const sg of a.graphs) subs.push(sg);
      }
    }
    for (let i = subs.length - 1; i >= 0; i--) stack.push(subs[i]);
  }
}

/**
 * Every TensorProto of the model: initializers, sparse initializers' values and indices, and
 * tensors in node attributes, in all graphs.
 */
export function* allTensors(model: ModelProto): Generator<TensorProto> {
  const sparse = function* (s: SparseTensorProto): Generator<TensorProto> {
    if (s.values !== undefined) yield s.values;
    if (s.indices !== undefined) yield s.indices;
  };
  for (const g of allGraphs(model)) {
    yield* g.initializer;
    for (const s of g.sparseInitializer) yield* sparse(s);
    for (const n of g.node) {
      for (const a of n.attribute) {
        if (a.t !== undefined) yield a.t;
        yield* a.tensors;
        if (a.sparseTensor !== undefined) yield* sparse(a.sparseTensor);
        for (const s of a.sparseTensors) yield* sparse(s);
      }
    }
  }
}

/**
 * Parameters: the element count of every initializer in every graph (sparse initializers
 * count their stored values).
 */
export function countParameters(model: ModelProto): number {
  let n = 0;
  for (const g of allGraphs(model)) {
    for (const t of g.initializer) n += tensorElementCount(t);
    for (const s of g.sparseInitializer) if (s.values !== undefined) n += tensorElementCount(s.values);
  }
  return n;
}
