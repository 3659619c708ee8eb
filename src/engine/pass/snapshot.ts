// Lossless JSON encoding of typed arrays for consumer snapshots (partial files): the raw
// little-endian bytes in base64, tagged with the element type. A float64 survives bit for bit.

export type EncodedArray = { dtype: 'f64' | 'f32' | 'i32'; length: number; base64: string };

type Encodable = Float64Array | Float32Array | Int32Array;

const LITTLE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function bytesLE(a: Encodable): Buffer {
  const bytes = Buffer.from(a.buffer, a.byteOffset, a.byteLength);
  if (LITTLE) return bytes;
  const copy = Buffer.from(bytes);
  if (a.BYTES_PER_ELEMENT === 8) copy.swap64();
  else copy.swap32();
  return copy;
}

export function encodeArray(a: Encodable): EncodedArray {
  const dtype = a instanceof Float64Array ? 'f64' : a instanceof Float32Array ? 'f32' : 'i32';
  return { dtype, length: a.length, base64: bytesLE(a).toString('base64') };
}

function isEncoded(v: unknown): v is EncodedArray {
  const e = v as EncodedArray;
  return !!e && typeof e === 'object' && typeof e.base64 === 'string' && typeof e.length === 'number' && ['f64', 'f32', 'i32'].includes(e.dtype);
}

function decodeAny(v: unknown, what: string): Encodable {
  if (!isEncoded(v)) throw new Error(`${what}: not an encoded array`);
  const bytes = Buffer.from(v.base64, 'base64');
  const size = v.dtype === 'f64' ? 8 : 4;
  if (bytes.length !== v.length * size) throw new Error(`${what}: ${bytes.length} bytes for ${v.length} ${v.dtype} values`);
  if (!LITTLE) {
    if (size === 8) bytes.swap64();
    else bytes.swap32();
  }
  const copy = new Uint8Array(bytes).buffer; // aligned copy
  return v.dtype === 'f64' ? new Float64Array(copy) : v.dtype === 'f32' ? new Float32Array(copy) : new Int32Array(copy);
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
