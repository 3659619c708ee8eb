// Typed arrays inside consumer snapshots. `encodeArray` tags an array with its element type and
// keeps the array itself (no copy, no text): the partial-file writer (jobs/partial-file.ts) stores
// its raw little-endian bytes as a blob. JSON.stringify of a tagged array (tests, old partials)
// gives the lossless `{dtype, length, base64}` form; the decode helpers accept both.

export type Dtype = 'f64' | 'f32' | 'i32';
export type Encodable = Float64Array | Float32Array | Int32Array;
export type EncodedArray = { dtype: Dtype; length: number; data: Encodable };
type Base64Array = { dtype: Dtype; length: number; base64: string };

export const LITTLE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
const DTYPES: readonly string[] = ['f64', 'f32', 'i32'];

export const dtypeSize = (d: Dtype): number => (d === 'f64' ? 8 : 4);

export function dtypeOf(a: Encodable): Dtype {
  return a instanceof Float64Array ? 'f64' : a instanceof Float32Array ? 'f32' : 'i32';
}

/** The little-endian bytes of `a` (a view on it on little-endian machines, a swapped copy otherwise). */
export function bytesLE(a: Encodable): Buffer {
  const bytes = Buffer.from(a.buffer, a.byteOffset, a.byteLength);
  if (LITTLE) return bytes;
  const copy = Buffer.from(bytes);
  if (a.BYTES_PER_ELEMENT === 8) copy.swap64();
  else copy.swap32();
  return copy;
}

/** A typed array of `dtype` over a fresh, aligned copy of little-endian `bytes` (length must fit). */
export function fromBytesLE(bytes: Uint8Array, dtype: Dtype): Encodable {
  const buf = new ArrayBuffer(bytes.length);
  const copy = Buffer.from(buf);
  copy.set(bytes);
  if (!LITTLE) {
    if (dtypeSize(dtype) === 8) copy.swap64();
    else copy.swap32();
  }
  return dtype === 'f64' ? new Float64Array(buf) : dtype === 'f32' ? new Float32Array(buf) : new Int32Array(buf);
}

export function encodeArray(a: Encodable): EncodedArray {
  const e = { dtype: dtypeOf(a), length: a.length, data: a };
  Object.defineProperty(e, 'toJSON', { enumerable: false, value: (): Base64Array => ({ dtype: e.dtype, length: e.length, base64: bytesLE(a).toString('base64') }) });
  return e;
}

/** A tagged array as `encodeArray` (or the partial reader) makes it. */
export function isEncodedArray(v: unknown): v is EncodedArray {
  const e = v as EncodedArray;
  return !!e && typeof e === 'object' && ArrayBuffer.isView(e.data) && typeof e.length === 'number' && DTYPES.includes(e.dtype);
}

function isBase64(v: unknown): v is Base64Array {
  const e = v as Base64Array;
  return !!e && typeof e === 'object' && typeof e.base64 === 'string' && typeof e.length === 'number' && DTYPES.includes(e.dtype);
}

function decodeAny(v: unknown, what: string): Encodable {
  if (isEncodedArray(v)) {
    if (v.data.length !== v.length || dtypeOf(v.data) !== v.dtype) throw new Error(`${what}: ${v.data.length} ${dtypeOf(v.data)} values tagged as ${v.length} ${v.dtype}`);
    return v.data.slice(); // a copy, as decoding always gave: a merged consumer never aliases the snapshot's owner
  }
  if (!isBase64(v)) throw new Error(`${what}: not an encoded array`);
  const bytes = Buffer.from(v.base64, 'base64');
  if (bytes.length !== v.length * dtypeSize(v.dtype)) throw new Error(`${what}: ${bytes.length} bytes for ${v.length} ${v.dtype} values`);
  return fromBytesLE(bytes, v.dtype);
}

export function decodeF64(v: unknown, what: string): Float64Array {
  const a = decodeAny(v, what);
  if (!(a instanceof Float64Array)) throw new Error(`${what}: expected f64 data`);
  return a;
}

export function decodeF32(v: unknown, what: string): Float32Array {
  const a = decodeAny(v, what);
  if (!(a instanceof Float32Array)) throw new Error(`${what}: expected f32 data`);
  return a;
}

export function decodeI32(v: unknown, what: string): Int32Array {
  const a = decodeAny(v, what);
  if (!(a instanceof Int32Array)) throw new Error(`${what}: expected i32 data`);
  return a;
}

/** Adds `b` into `a` element-wise (sizes must match). */
export function addInto(a: Float64Array, b: Float64Array, what: string): void {
  if (a.length !== b.length) throw new Error(`${what}: cannot merge ${b.length} values into ${a.length}`);
  for (let i = 0; i < a.length; i++) a[i] += b[i];
}
