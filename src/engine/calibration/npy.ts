// The NumPy .npy format (versions 1.0, 2.0, 3.0), written from the format description in
// numpy.lib.format: magic "\x93NUMPY", major/minor version bytes, a little-endian header length
// (uint16 for 1.0, uint32 for 2.0/3.0), then a Python dict literal with 'descr',
// 'fortran_order' and 'shape', padded so the data starts on a 64-byte boundary.

import { open, stat, type FileHandle } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { basename } from 'node:path';
import { bytesPerElement } from './dtype';
import { product } from './shapes';
import { CalibrationError, type OrtDtype } from './types';

export interface NpyHeader {
  version: string;
  /** The descr string as written, e.g. '<f4'. */
  descr: string;
  dtype: OrtDtype;
  byteOrder: '<' | '>' | '|';
  itemSize: number;
  fortranOrder: boolean;
  shape: number[];
  /** Offset of the first data byte from the start of the .npy bytes. */
  dataOffset: number;
  /** Bytes of data the header promises. */
  dataBytes: number;
}

export const NPY_MAGIC = Uint8Array.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]); // \x93NUMPY
/** Fortran-ordered arrays are loaded whole to be transposed; above this size that is refused. */
export const FORTRAN_LIMIT_BYTES = 1024 ** 3;

const KIND_TO_DTYPE: Record<string, OrtDtype> = {
  f2: 'float16', f4: 'float32', f8: 'float64',
  i1: 'int8', i2: 'int16', i4: 'int32', i8: 'int64',
  u1: 'uint8', u2: 'uint16', u4: 'uint32', u8: 'uint64',
  b1: 'bool',
};
const DTYPE_TO_KIND: Record<OrtDtype, string> = Object.fromEntries(
  Object.entries(KIND_TO_DTYPE).map(([k, v]) => [v, k]),
) as Record<OrtDtype, string>;

/** Number of bytes the preamble + header take, from the first 12 bytes; throws if not an .npy. */
export function npyHeaderLength(prefix: Uint8Array, file: string): number {
  if (prefix.length < 10 || !NPY_MAGIC.every((b, i) => prefix[i] === b)) {
    throw new CalibrationError(file, `${basename(file)}: not a .npy file (the magic string \\x93NUMPY is missing)`);
  }
  const major = prefix[6];
  if (major === 1) return 10 + (prefix[8] | (prefix[9] << 8));
  if (major === 2 || major === 3) {
    if (prefix.length < 12) throw new CalibrationError(file, `${basename(file)}: corrupt .npy header (file ends inside the preamble)`);
    return 12 + (prefix[8] | (prefix[9] << 8) | (prefix[10] << 16)) + prefix[11] * 16777216;
  }
  throw new CalibrationError(file, `${basename(file)}: unsupported .npy format version ${major}.${prefix[7]} (1.0, 2.0 and 3.0 are supported)`);
}

/** Parse the whole preamble + header (`bytes` must hold at least npyHeaderLength bytes). */
export function parseNpyHeader(bytes: Uint8Array, file: string): NpyHeader {
  const name = basename(file);
  const total = npyHeaderLength(bytes, file);
  if (bytes.length < total) throw new CalibrationError(file, `${name}: corrupt .npy header (file ends inside the header)`);
  const major = bytes[6];
  const start = major === 1 ? 10 : 12;
  const raw = bytes.subarray(start, total);
  const text = major === 3 ? new TextDecoder('utf-8', { fatal: false }).decode(raw) : latin1(raw);
  let dict: unknown;
  try {
    dict = new PyLiteralParser(text).parseTop();
  } catch (e) {
    throw new CalibrationError(file, `${name}: corrupt .npy header (${(e as Error).message}): ${JSON.stringify(text.trim().slice(0, 200))}`);
  }
  if (!dict || typeof dict !== 'object' || Array.isArray(dict)) {
    throw new CalibrationError(file, `${name}: corrupt .npy header (expected a dict): ${JSON.stringify(text.trim().slice(0, 200))}`);
  }
  const d = dict as Record<string, unknown>;
  for (const key of ['descr', 'fortran_order', 'shape']) {
    if (!(key in d)) throw new CalibrationError(file, `${name}: corrupt .npy header (no '${key}' key)`);
  }
  if (typeof d.descr !== 'string') {
    throw new CalibrationError(file, `${name}: structured dtypes (record arrays) are not supported; save a plain numeric array`);
  }
  if (typeof d.fortran_order !== 'boolean') throw new CalibrationError(file, `${name}: corrupt .npy header ('fortran_order' is not True/False)`);
  if (!Array.isArray(d.shape) || !d.shape.every((x) => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0)) {
    throw new CalibrationError(file, `${name}: corrupt .npy header ('shape' is not a tuple of non-negative integers)`);
  }
  const m = /^([<>|=]?)([a-zA-Z?])(\d*)$/.exec(d.descr);
  let dtype: OrtDtype | undefined;
  let order: '<' | '>' | '|' = '|';
  if (m) {
    const kind = m[2] === '?' ? 'b1' : m[2] + m[3];
    dtype = KIND_TO_DTYPE[kind];
    order = m[1] === '>' ? '>' : m[1] === '|' ? '|' : '<'; // '=' (native) and '' are little-endian here
  }
  if (!dtype) {
    throw new CalibrationError(
      file,
      `${name}: dtype '${d.descr}' is not supported (supported: float16/32/64, int8/16/32/64, uint8/16/32/64, bool)`,
    );
  }
  const itemSize = bytesPerElement(dtype);
  if (itemSize === 1) order = '|';
  const shape = d.shape as number[];
  return {
    version: `${major}.${bytes[7]}`,
    descr: d.descr,
    dtype,
    byteOrder: order,
    itemSize,
    fortranOrder: d.fortran_order,
    shape,
    dataOffset: total,
    dataBytes: product(shape) * itemSize,
  };
}

function latin1(b: Uint8Array): string {
  let s = '';
  for (let i = 0; i < b.length; i++) s += String.fromCharCode(b[i]);
  return s;
}

/** A parser for the Python literals .npy headers use: dicts, tuples, lists, strings, ints, True/False/None. */
class PyLiteralParser {
  private i = 0;
  constructor(private readonly s: string) {}

  parseTop(): unknown {
    const v = this.value();
    this.ws();
    if (this.i < this.s.length) throw new Error(`unexpected '${this.s[this.i]}' after the dict`);
    return v;
  }

  private ws(): void {
    while (this.i < this.s.length && /\s/.test(this.s[this.i])) this.i++;
  }

  private value(): unknown {
    this.ws();
    const c = this.s[this.i];
    if (c === undefined) throw new Error('header ends early');
    if (c === '{') return this.dict();
    if (c === '(') return this.seq(')');
    if (c === '[') return this.seq(']');
    if (c === "'" || c === '"') return this.str();
    if (/[-+\d]/.test(c)) return this.num();
    for (const [word, v] of [['True', true], ['False', false], ['None', null]] as const) {
      if (this.s.startsWith(word, this.i)) {
        this.i += word.length;
        return v;
      }
    }
    throw new Error(`unexpected '${c}'`);
  }

  private dict(): Record<string, unknown> {
    this.i++;
    const out: Record<string, unknown> = {};
    for (;;) {
      this.ws();
      if (this.s[this.i] === '}') {
        this.i++;
        return out;
      }
      const k = this.value();
      if (typeof k !== 'string') throw new Error('dict key is not a string');
      this.ws();
      if (this.s[this.i] !== ':') throw new Error("expected ':'");
      this.i++;
      out[k] = this.value();
      this.ws();
      if (this.s[this.i] === ',') this.i++;
      else if (this.s[this.i] !== '}') throw new Error("expected ',' or '}'");
    }
  }

  private seq(close: string): unknown[] {
    this.i++;
    const out: unknown[] = [];
    for (;;) {
      this.ws();
      if (this.s[this.i] === close) {
        this.i++;
        return out;
      }
      out.push(this.value());
      this.ws();
      if (this.s[this.i] === ',') this.i++;
      else if (this.s[this.i] !== close) throw new Error(`expected ',' or '${close}'`);
    }
  }

  private str(): string {
    const q = this.s[this.i++];
    let out = '';
    while (this.i < this.s.length && this.s[this.i] !== q) {
      if (this.s[this.i] === '\\') this.i++;
      out += this.s[this.i++];
    }
    if (this.s[this.i] !== q) throw new Error('unterminated string');
    this.i++;
    return out;
  }

  private num(): number {
    const m = /^[-+]?\d+[lL]?/.exec(this.s.slice(this.i));
    if (!m) throw new Error('bad number');
    this.i += m[0].length;
    return Number(m[0].replace(/[lL]$/, ''));
  }
}

/** The preamble + header of an .npy file (version 1.0 unless the header needs 2.0, or as asked). */
export function npyHeaderBytes(
  dtype: OrtDtype,
  shape: readonly number[],
  opts: { byteOrder?: '<' | '>'; fortranOrder?: boolean; version?: 1 | 2 | 3 } = {},
): Uint8Array {
  const item = bytesPerElement(dtype);
  const order = item === 1 ? '|' : opts.byteOrder ?? '<';
  const descr = `${order}${DTYPE_TO_KIND[dtype]}`;
  const shapeText = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  const dict = `{'descr': '${descr}', 'fortran_order': ${opts.fortranOrder ? 'True' : 'False'}, 'shape': ${shapeText}, }`;
  let version = opts.version ?? 1;
  if (version === 1 && Math.ceil((10 + dict.length + 1) / 64) * 64 - 10 > 65535) version = 2;
  const pre = version === 1 ? 10 : 12;
  const headerLen = Math.ceil((pre + dict.length + 1) / 64) * 64 - pre;
  const out = new Uint8Array(pre + headerLen);
  out.set(NPY_MAGIC, 0);
  out[6] = version;
  out[7] = 0;
  const dv = new DataView(out.buffer);
  if (version === 1) dv.setUint16(8, headerLen, true);
  else dv.setUint32(8, headerLen, true);
  const headerText = dict + ' '.repeat(headerLen - dict.length - 1) + '\n';
  for (let i = 0; i < headerText.length; i++) out[pre + i] = headerText.charCodeAt(i);
  return out;
}

/**
 * Encode a whole .npy file. `data` is given in C order (numbers, bigints for 64-bit integers,
 * half bits for float16) and written in the requested byte and memory order; with `rawBytes`
 * it is copied as is. For tests and exports.
 */
export function encodeNpy(
  dtype: OrtDtype,
  shape: readonly number[],
  data: ArrayLike<number | bigint> | Uint8Array,
  opts: { byteOrder?: '<' | '>'; fortranOrder?: boolean; version?: 1 | 2 | 3; rawBytes?: boolean } = {},
): Uint8Array {
  const item = bytesPerElement(dtype);
  const n = product(shape);
  const header = npyHeaderBytes(dtype, shape, opts);
  const base = header.length;
  if (opts.rawBytes) {
    const out = new Uint8Array(base + (data as Uint8Array).length);
    out.set(header, 0);
    out.set(data as Uint8Array, base);
    return out;
  }
  const out = new Uint8Array(base + n * item);
  out.set(header, 0);
  const dv = new DataView(out.buffer);
  const fortranPos = opts.fortranOrder ? cToFortranPositions(shape) : null;
  const le = opts.byteOrder !== '>';
  for (let i = 0; i < n; i++) {
    const pos = base + (fortranPos ? fortranPos[i] : i) * item;
    const v = data[i];
    switch (dtype) {
      case 'float32': dv.setFloat32(pos, Number(v), le); break;
      case 'float64': dv.setFloat64(pos, Number(v), le); break;
      case 'float16': case 'uint16': dv.setUint16(pos, Number(v), le); break;
      case 'int16': dv.setInt16(pos, Number(v), le); break;
      case 'int32': dv.setInt32(pos, Number(v), le); break;
      case 'uint32': dv.setUint32(pos, Number(v), le); break;
      case 'int64': dv.setBigInt64(pos, BigInt(v), le); break;
      case 'uint64': dv.setBigUint64(pos, BigInt(v), le); break;
      case 'int8': dv.setInt8(pos, Number(v)); break;
      case 'uint8': case 'bool': dv.setUint8(pos, Number(v)); break;
    }
  }
  return out;
}

/** For each C-order element index, its element position in Fortran order. */
function cToFortranPositions(shape: readonly number[]): Uint32Array | Float64Array {
  const n = product(shape);
  const out = n < 2 ** 32 ? new Uint32Array(n) : new Float64Array(n);
  const rank = shape.length;
  const fstride = new Array<number>(rank);
  let s = 1;
  for (let j = 0; j < rank; j++) {
    fstride[j] = s;
    s *= shape[j];
  }
  const idx = new Array<number>(rank).fill(0);
  let off = 0;
  for (let i = 0; i < n; i++) {
    out[i] = off;
    for (let j = rank - 1; j >= 0; j--) {
      idx[j]++;
      off += fstride[j];
      if (idx[j] < shape[j]) break;
      off -= fstride[j] * shape[j];
      idx[j] = 0;
    }
  }
  return out;
}

/** Reorder Fortran-order element bytes into C order. */
export function fortranToC(src: Uint8Array, shape: readonly number[], itemSize: number): Uint8Array {
  const n = product(shape);
  const out = new Uint8Array(n * itemSize);
  if (n === 0) return out;
  const pos = cToFortranPositions(shape);
  const aligned = src.byteOffset % itemSize === 0 ? src : src.slice();
  if (itemSize === 1) {
    for (let i = 0; i < n; i++) out[i] = aligned[pos[i]];
  } else if (itemSize === 2) {
    const s = new Uint16Array(aligned.buffer, aligned.byteOffset, n);
    const o = new Uint16Array(out.buffer);
    for (let i = 0; i < n; i++) o[i] = s[pos[i]];
  } else {
    // 4 and 8 bytes: copy 32-bit words (exact bits; no float canonicalisation)
    const w = itemSize / 4;
    const s = new Uint32Array(aligned.buffer, aligned.byteOffset, n * w);
    const o = new Uint32Array(out.buffer);
    for (let i = 0; i < n; i++) {
      const p = pos[i] * w;
      for (let k = 0; k < w; k++) o[i * w + k] = s[p + k];
    }
  }
  return out;
}

/** Big-endian element bytes → little-endian, in place. */
export function swapToLittle(bytes: Uint8Array, header: NpyHeader): void {
  if (header.byteOrder !== '>' || header.itemSize === 1) return;
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (header.itemSize === 2) b.swap16();
  else if (header.itemSize === 4) b.swap32();
  else b.swap64();
}

// ---------------------------------------------------------------- row readers

/** Reads rows (first-axis slices) of one C-ordered array by row index. */
export interface RowReader {
  /** Bytes of the given rows, concatenated; `rows` must be ascending (and, for streams, above any read before). */
  read(rows: readonly number[]): Promise<Uint8Array>;
  close(): Promise<void>;
}

/** Group ascending row indices into runs of consecutive rows: [firstRow, count][]. */
export function runs(rows: readonly number[]): [number, number][] {
  const out: [number, number][] = [];
  for (const r of rows) {
    const last = out[out.length - 1];
    if (last && r === last[0] + last[1]) last[1]++;
    else out.push([r, 1]);
  }
  return out;
}

/** Rows read by offset from a file (positional reads, one per run of consecutive rows). */
export class FileRowReader implements RowReader {
  private constructor(private readonly fh: FileHandle, private readonly dataStart: number, private readonly rowBytes: number) {}

  static async open(path: string, dataStart: number, rowBytes: number): Promise<FileRowReader> {
    return new FileRowReader(await open(path, 'r'), dataStart, rowBytes);
  }

  async read(rows: readonly number[]): Promise<Uint8Array> {
    const out = new Uint8Array(rows.length * this.rowBytes);
    let at = 0;
    for (const [first, count] of runs(rows)) {
      const len = count * this.rowBytes;
      let got = 0;
      while (got < len) {
        const { bytesRead } = await this.fh.read(out, at + got, len - got, this.dataStart + first * this.rowBytes + got);
        if (bytesRead === 0) throw new Error('unexpected end of file');
        got += bytesRead;
      }
      at += len;
    }
    return out;
  }

  async close(): Promise<void> {
    await this.fh.close();
  }
}

/** Rows held in memory (Fortran-ordered arrays after transposition). */
export class MemoryRowReader implements RowReader {
  constructor(private readonly bytes: Uint8Array, private readonly rowBytes: number) {}

  async read(rows: readonly number[]): Promise<Uint8Array> {
    const out = new Uint8Array(rows.length * this.rowBytes);
    let at = 0;
    for (const [first, count] of runs(rows)) {
      const len = count * this.rowBytes;
      out.set(this.bytes.subarray(first * this.rowBytes, first * this.rowBytes + len), at);
      at += len;
    }
    return out;
  }

  async close(): Promise<void> {}
}

/** Sequential exact-size reads from a byte stream (e.g. an inflating zip entry). */
export class ByteStream {
  private readonly it: AsyncIterator<Buffer>;
  private pending: Buffer[] = [];
  private have = 0;
  private ended = false;
  /** Bytes consumed so far. */
  position = 0;

  constructor(private readonly stream: Readable) {
    this.it = stream[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  }

  private async fill(n: number): Promise<void> {
    while (this.have < n && !this.ended) {
      const r = await this.it.next();
      if (r.done) this.ended = true;
      else {
        this.pending.push(r.value);
        this.have += r.value.length;
      }
    }
  }

  /** Copy the next `n` bytes into `out` at `at` (or discard them when `out` is null). */
  async take(n: number, out: Uint8Array | null, at = 0): Promise<void> {
    while (n > 0) {
      if (this.have === 0) {
        await this.fill(1);
        if (this.have === 0) throw new Error('unexpected end of data');
      }
      const head = this.pending[0];
      const k = Math.min(n, head.length);
      if (out) out.set(head.subarray(0, k), at);
      at += k;
      n -= k;
      this.have -= k;
      this.position += k;
      if (k === head.length) this.pending.shift();
      else this.pending[0] = head.subarray(k);
    }
  }

  async read(n: number): Promise<Uint8Array> {
    const out = new Uint8Array(n);
    await this.take(n, out);
    return out;
  }

  destroy(): void {
    this.stream.destroy();
  }
}

/** Rows read in order from a stream that starts at the first data byte. */
export class StreamRowReader implements RowReader {
  private nextRow = 0;
  constructor(private readonly bs: ByteStream, private readonly rowBytes: number) {}

  async read(rows: readonly number[]): Promise<Uint8Array> {
    const out = new Uint8Array(rows.length * this.rowBytes);
    let at = 0;
    for (const [first, count] of runs(rows)) {
      if (first < this.nextRow) throw new Error('internal: stream rows must be read in ascending order');
      await this.bs.take((first - this.nextRow) * this.rowBytes, null);
      await this.bs.take(count * this.rowBytes, out, at);
      at += count * this.rowBytes;
      this.nextRow = first + count;
    }
    return out;
  }

  async close(): Promise<void> {
    this.bs.destroy();
  }
}

// ---------------------------------------------------------------- .npy files

/** One stored array: its header and how to read its rows. */
export interface StoredArray {
  /** File path (for messages). */
  file: string;
  /** How messages name it: 'x.npy' or 'data.npz:input_ids'. */
  label: string;
  header: NpyHeader;
  /** A fresh reader (every iteration opens its own). Rows come back in C order, file byte order. */
  openReader(): Promise<RowReader>;
}

export function rowBytesOf(h: NpyHeader): number {
  return product(h.shape.slice(1)) * h.itemSize;
}

/** Read and check the header of a .npy file; Fortran-ordered arrays are loaded and transposed. */
export async function openNpyFile(path: string): Promise<StoredArray> {
  const name = basename(path);
  let size: number;
  try {
    const st = await stat(path);
    if (!st.isFile()) throw new CalibrationError(path, `${name}: not a file`);
    size = st.size;
  } catch (e) {
    if (e instanceof CalibrationError) throw e;
    throw new CalibrationError(path, `${path}: file not found`);
  }
  const fh = await open(path, 'r');
  try {
    const pre = new Uint8Array(Math.min(12, size));
    await fh.read(pre, 0, pre.length, 0);
    const total = npyHeaderLength(pre, path);
    if (total > size) throw new CalibrationError(path, `${name}: corrupt .npy header (file ends inside the header)`);
    const hbytes = new Uint8Array(total);
    await fh.read(hbytes, 0, total, 0);
    const header = parseNpyHeader(hbytes, path);
    checkDataSize(header, size - header.dataOffset, name, path);
    const label = name;
    if (header.fortranOrder && header.shape.length > 1) {
      if (header.dataBytes > FORTRAN_LIMIT_BYTES) {
        throw new CalibrationError(path, fortranTooLarge(name, header));
      }
      const raw = new Uint8Array(header.dataBytes);
      let got = 0;
      while (got < raw.length) {
        const { bytesRead } = await fh.read(raw, got, raw.length - got, header.dataOffset + got);
        if (bytesRead === 0) break;
        got += bytesRead;
      }
      const c = fortranToC(raw, header.shape, header.itemSize);
      return { file: path, label, header, openReader: async () => new MemoryRowReader(c, rowBytesOf(header)) };
    }
    return { file: path, label, header, openReader: () => FileRowReader.open(path, header.dataOffset, rowBytesOf(header)) };
  } finally {
    await fh.close();
  }
}

export function checkDataSize(header: NpyHeader, available: number, label: string, file: string): void {
  if (available < header.dataBytes) {
    throw new CalibrationError(
      file,
      `${label}: the header promises shape (${header.shape.join(', ')}) of ${header.descr} = ${header.dataBytes} bytes, but only ${available} bytes follow (truncated file?)`,
    );
  }
}

export function fortranTooLarge(label: string, h: NpyHeader): string {
  return `${label}: Fortran-ordered array of ${(h.dataBytes / 1024 ** 3).toFixed(1)} GiB is too large to transpose in memory (limit 1 GiB); save it in C order (np.ascontiguousarray) instead`;
}
