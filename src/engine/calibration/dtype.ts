// Element types: sizes, typed-array views, float16 bits, and the casts allowed from stored data
// to a model input's type (with the value checks that make them safe).

import type { FeedData, OrtDtype } from './types';

export const ALL_DTYPES: readonly OrtDtype[] = [
  'float32', 'float64', 'float16', 'int64', 'int32', 'int16', 'int8',
  'uint8', 'uint16', 'uint32', 'uint64', 'bool',
];

export function bytesPerElement(d: OrtDtype): number {
  switch (d) {
    case 'float64': case 'int64': case 'uint64': return 8;
    case 'float32': case 'int32': case 'uint32': return 4;
    case 'float16': case 'int16': case 'uint16': return 2;
    case 'int8': case 'uint8': case 'bool': return 1;
  }
}

export function isFloat(d: OrtDtype): boolean {
  return d === 'float32' || d === 'float64' || d === 'float16';
}

export function isInteger(d: OrtDtype): boolean {
  return !isFloat(d) && d !== 'bool';
}

function is64(d: OrtDtype): boolean {
  return d === 'int64' || d === 'uint64';
}

/** Inclusive value range of an integer or bool type (as numbers; 64-bit ends are approximate). */
export function intRange(d: OrtDtype): [number, number] {
  switch (d) {
    case 'int8': return [-128, 127];
    case 'uint8': return [0, 255];
    case 'int16': return [-32768, 32767];
    case 'uint16': return [0, 65535];
    case 'int32': return [-2147483648, 2147483647];
    case 'uint32': return [0, 4294967295];
    case 'int64': return [-9223372036854775808, 9223372036854775807];
    case 'uint64': return [0, 18446744073709551615];
    case 'bool': return [0, 1];
    default: return [-Infinity, Infinity];
  }
}

export function allocate(d: OrtDtype, n: number): FeedData {
  switch (d) {
    case 'float32': return new Float32Array(n);
    case 'float64': return new Float64Array(n);
    case 'float16': case 'uint16': return new Uint16Array(n);
    case 'int64': return new BigInt64Array(n);
    case 'uint64': return new BigUint64Array(n);
    case 'int32': return new Int32Array(n);
    case 'uint32': return new Uint32Array(n);
    case 'int16': return new Int16Array(n);
    case 'int8': return new Int8Array(n);
    case 'uint8': case 'bool': return new Uint8Array(n);
  }
}

/**
 * A typed-array view of little-endian element bytes. Copies when `bytes` is not aligned for
 * the element size (views need aligned offsets).
 */
export function viewAs(d: OrtDtype, bytes: Uint8Array): FeedData {
  const size = bytesPerElement(d);
  if (bytes.byteLength % size !== 0) throw new RangeError(`viewAs: ${bytes.byteLength} bytes is not a whole number of ${d}`);
  let buf: ArrayBufferLike = bytes.buffer;
  let off = bytes.byteOffset;
  if (off % size !== 0) {
    buf = bytes.slice().buffer;
    off = 0;
  }
  const n = bytes.byteLength / size;
  switch (d) {
    case 'float32': return new Float32Array(buf, off, n);
    case 'float64': return new Float64Array(buf, off, n);
    case 'float16': case 'uint16': return new Uint16Array(buf, off, n);
    case 'int64': return new BigInt64Array(buf, off, n);
    case 'uint64': return new BigUint64Array(buf, off, n);
    case 'int32': return new Int32Array(buf, off, n);
    case 'uint32': return new Uint32Array(buf, off, n);
    case 'int16': return new Int16Array(buf, off, n);
    case 'int8': return new Int8Array(buf, off, n);
    case 'uint8': case 'bool': return new Uint8Array(buf, off, n);
  }
}

/** The element bytes of a typed array (a view, no copy). */
export function bytesOf(data: FeedData): Uint8Array {
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

// ---------------------------------------------------------------- float16

const POW2_M24 = 2 ** -24;
const POW2_M14 = 2 ** -14;

export function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const e = (h >>> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return sign * f * POW2_M24;
  if (e === 31) return f ? NaN : sign * Infinity;
  return sign * (1 + f / 1024) * 2 ** (e - 15);
}

/** Rounds to the nearest integer, ties to even. */
export function roundHalfEven(x: number): number {
  const f = Math.floor(x);
  const d = x - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

/** IEEE half bits nearest to `v` (round half to even; overflow → ±Inf). */
export function floatToHalf(v: number): number {
  if (Number.isNaN(v)) return 0x7e00;
  const sign = v < 0 || Object.is(v, -0) ? 0x8000 : 0;
  const a = Math.abs(v);
  if (a >= 65520) return sign | 0x7c00;
  if (a < POW2_M14) return sign | roundHalfEven(a / POW2_M24); // subnormal (1024 → smallest normal)
  let e = Math.floor(Math.log2(a));
  if (2 ** e > a) e--;
  else if (2 ** (e + 1) <= a) e++;
  let m = roundHalfEven((a / 2 ** e - 1) * 1024);
  if (m === 1024) {
    m = 0;
    e++;
  }
  if (e > 15) return sign | 0x7c00;
  return sign | ((e + 15) << 10) | m;
}

// ---------------------------------------------------------------- casts

/** Why data of type `from` cannot feed an input of type `to`, or null when it can. */
export function castProblem(from: OrtDtype, to: OrtDtype): string | null {
  if (from === to) return null;
  if (isFloat(to)) return null; // ints, bools and floats all read as numbers; range checked per value
  if (isFloat(from)) return `floating-point data is not cast to ${to} (save the array with an integer dtype)`;
  return null; // integer/bool → integer/bool: checked per value
}

export type CastFailure = (flatIndex: number, problem: string) => never;

/**
 * Cast `src` (elements of type `from`, native byte order) to type `to`, checking every value:
 * NaN/Inf in float data, values outside the target's range, non-0/1 values for bool.
 * `fail` is called with the flat index of the first bad element.
 */
export function castData(src: FeedData, from: OrtDtype, to: OrtDtype, fail: CastFailure): FeedData {
  const n = src.length;
  if (isFloat(from)) {
    for (let i = 0; i < n; i++) {
      const v = from === 'float16' ? halfToFloat((src as Uint16Array)[i]) : (src as Float32Array)[i];
      if (!Number.isFinite(v)) fail(i, Number.isNaN(v) ? 'NaN' : v > 0 ? '+Inf' : '-Inf');
    }
  }
  if (from === to) return src;
  const problem = castProblem(from, to);
  if (problem) fail(0, problem);

  const read: (i: number) => number =
    from === 'float16' ? (i) => halfToFloat((src as Uint16Array)[i])
      : is64(from) ? (i) => Number((src as BigInt64Array)[i])
        : (i) => (src as Float32Array)[i];

  const out = allocate(to, n);
  if (to === 'float16') {
    const o = out as Uint16Array;
    for (let i = 0; i < n; i++) {
      const h = floatToHalf(read(i));
      if ((h & 0x7fff) === 0x7c00) fail(i, `value ${read(i)} is outside the float16 range`);
      o[i] = h;
    }
    return out;
  }
  if (to === 'float32') {
    const o = out as Float32Array;
    for (let i = 0; i < n; i++) {
      const v = Math.fround(read(i));
      if (!Number.isFinite(v)) fail(i, `value ${read(i)} is outside the float32 range`);
      o[i] = v;
    }
    return out;
  }
  if (to === 'float64') {
    const o = out as Float64Array;
    for (let i = 0; i < n; i++) o[i] = read(i);
    return out;
  }
  // integer or bool target from integer or bool source
  if (is64(to) && is64(from)) {
    const s = src as BigInt64Array | BigUint64Array;
    const o = out as BigInt64Array | BigUint64Array;
    const max = to === 'int64' ? 0x7fffffffffffffffn : 0xffffffffffffffffn;
    for (let i = 0; i < n; i++) {
      const v = s[i];
      if (v < 0n || v > max) fail(i, `value ${v} is outside the ${to} range`);
      o[i] = v;
    }
    return out;
  }
  const [lo, hi] = intRange(to);
  if (is64(to)) {
    const o = out as BigInt64Array | BigUint64Array;
    for (let i = 0; i < n; i++) {
      const v = read(i);
      if (v < lo) fail(i, `value ${v} is outside the ${to} range`);
      o[i] = BigInt(v);
    }
    return out;
  }
  const o = out as Int32Array;
  for (let i = 0; i < n; i++) {
    const v = is64(from) ? (src as BigInt64Array)[i] : read(i);
    if (v < lo || v > hi) fail(i, to === 'bool' ? `value ${v} is not 0 or 1 (bool input)` : `value ${v} is outside the ${to} range`);
    o[i] = Number(v);
  }
  return out;
}
