// Protocol Buffers wire format, written from the published encoding specification
// (https://protobuf.dev/programming-guides/encoding/): base-128 varints, fixed 32/64-bit
// little-endian values, length-delimited payloads. Only what ONNX needs: no zigzag.

import { OnnxFormatError } from './errors.js';

/** Wire types (the low three bits of a tag). */
export const enum WireType {
  VARINT = 0,
  I64 = 1,
  LEN = 2,
  SGROUP = 3,
  EGROUP = 4,
  I32 = 5,
}

const TWO_32 = 4294967296;

/**
 * Sequential reader over a byte array. `limit` bounds the current (sub-)message; reads past it
 * throw `OnnxFormatError("truncated at byte N")`. Positions in messages are absolute offsets
 * into `buf`, so errors point at the byte in the file.
 */
export class WireReader {
  readonly buf: Uint8Array;
  readonly view: DataView;
  pos: number;
  limit: number;
  /** Low and high 32 bits of the last varint read by `varint64()` (unsigned). */
  lo = 0;
  hi = 0;

  constructor(buf: Uint8Array, pos = 0, limit = buf.length) {
    this.buf = buf;
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    this.pos = pos;
    this.limit = limit;
  }

  truncated(at = this.limit): OnnxFormatError {
    return new OnnxFormatError(`truncated at byte ${at}`);
  }

  /** Reads a varint of up to 10 bytes into `lo`/`hi`. */
  varint64(): void {
    const buf = this.buf;
    const limit = this.limit;
    let pos = this.pos;
    let lo = 0;
    let hi = 0;
    let b: number;
    for (let shift = 0; shift < 28; shift += 7) {
      if (pos >= limit) throw this.truncated();
      b = buf[pos++];
      lo |= (b & 0x7f) << shift;
      if (b < 0x80) {
        this.pos = pos;
        this.lo = lo >>> 0;
        this.hi = 0;
        return;
      }
    }
    if (pos >= limit) throw this.truncated();
    b = buf[pos++];
    lo |= (b & 0x0f) << 28;
    hi = (b & 0x7f) >> 4;
    if (b >= 0x80) {
      for (let shift = 3; ; shift += 7) {
        if (shift > 31) throw new OnnxFormatError(`varint longer than 10 bytes at byte ${this.pos}`);
        if (pos >= limit) throw this.truncated();
        b = buf[pos++];
        hi |= (b & 0x7f) << shift;
        if (b < 0x80) break;
      }
    }
    this.pos = pos;
    this.lo = lo >>> 0;
    this.hi = hi >>> 0;
  }

  /** An unsigned varint that must fit in 32 bits (tags, lengths, enum values). */
  uint32(): number {
    const pos = this.pos;
    if (pos < this.limit && this.buf[pos] < 0x80) {
      this.pos = pos + 1;
      return this.buf[pos];
    }
    this.varint64();
    if (this.hi !== 0) throw new OnnxFormatError(`varint too large at byte ${pos}`);
    return this.lo;
  }

  /** An int32 field (negative values are sign-extended 10-byte varints). */
  int32(): number {
    const pos = this.pos;
    if (pos < this.limit && this.buf[pos] < 0x80) {
      this.pos = pos + 1;
      return this.buf[pos];
    }
    this.varint64();
    return this.lo | 0;
  }

  /** An int64 field as an exact bigint. */
  int64(): bigint {
    const pos = this.pos;
    if (pos < this.limit && this.buf[pos] < 0x80) {
      this.pos = pos + 1;
      return BigInt(this.buf[pos]);
    }
    this.varint64();
    return partsToInt64(this.lo, this.hi);
  }

  /** A uint64 field as an exact bigint. */
  uint64(): bigint {
    this.varint64();
    return partsToUint64(this.lo, this.hi);
  }

  fixed32(): number {
    if (this.pos + 4 > this.limit) throw this.truncated();
    const v = this.view.getUint32(this.pos, true);
    this.pos += 4;
    return v;
  }

  float(): number {
    if (this.pos + 4 > this.limit) throw this.truncated();
    const v = this.view.getFloat32(this.pos, true);
    this.pos += 4;
    return v;
  }

  double(): number {
    if (this.pos + 8 > this.limit) throw this.truncated();
    const v = this.view.getFloat64(this.pos, true);
    this.pos += 8;
    return v;
  }

  /** Reads a length prefix and returns the end offset of the payload (which starts at `pos`). */
  lenEnd(): number {
    const at = this.pos;
    const len = this.uint32();
    const end = this.pos + len;
    if (end > this.limit) {
      throw new OnnxFormatError(`truncated at byte ${this.limit} (field at byte ${at} declares ${len} bytes)`);
    }
    return end;
  }

  /** A length-delimited payload as a zero-copy view of the input. */
  bytes(): Uint8Array {
    const end = this.lenEnd();
    const out = this.buf.subarray(this.pos, end);
    this.pos = end;
    return out;
  }

  /** A length-delimited UTF-8 string. */
  string(): string {
    const end = this.lenEnd();
    const s = decodeUtf8(this.buf, this.pos, end);
    this.pos = end;
    return s;
  }

  /** Skips the payload of a field whose tag has been read. `tagAt` is where the tag began. */
  skip(wireType: number, fieldNo: number, tagAt: number): void {
    switch (wireType) {
      case WireType.VARINT:
        this.varint64();
        return;
      case WireType.I64:
        if (this.pos + 8 > this.limit) throw this.truncated();
        this.pos += 8;
        return;
      case WireType.LEN:
        this.pos = this.lenEnd();
        return;
      case WireType.I32:
        if (this.pos + 4 > this.limit) throw this.truncated();
        this.pos += 4;
        return;
      case WireType.SGROUP:
        // Deprecated groups: skip nested fields up to the matching end-group tag.
        for (;;) {
          const at = this.pos;
          const tag = this.uint32();
          const wt = tag & 7;
          if (wt === WireType.EGROUP) {
            if (tag >>> 3 !== fieldNo) throw new OnnxFormatError(`mismatched end-group tag at byte ${at}`);
            return;
          }
          this.skip(wt, tag >>> 3, at);
        }
      default:
        throw new OnnxFormatError(`invalid wire type ${wireType} at byte ${tagAt}`);
    }
  }
}

/** Combines unsigned 32-bit halves into a signed 64-bit bigint. */
export function partsToInt64(lo: number, hi: number): bigint {
  if (hi < 0x200000) return BigInt(hi * TWO_32 + lo); // < 2^53
  if (hi >= 0xffe00000) {
    // negative with magnitude <= 2^53: two's complement in doubles is exact here
    return BigInt(-((0xffffffff - hi) * TWO_32 + (TWO_32 - lo)));
  }
  return BigInt.asIntN(64, (BigInt(hi) << 32n) | BigInt(lo));
}

/** Combines unsigned 32-bit halves into an unsigned 64-bit bigint. */
export function partsToUint64(lo: number, hi: number): bigint {
  if (hi < 0x200000) return BigInt(hi * TWO_32 + lo);
  return (BigInt(hi) << 32n) | BigInt(lo);
}

const utf8 = new TextDecoder('utf-8');

/** Decodes UTF-8 in `buf[start, end)`; short ASCII strings avoid the TextDecoder call. */
export function decodeUtf8(buf: Uint8Array, start: number, end: number): string {
  const n = end - start;
  if (n === 0) return '';
  if (n <= 24) {
    let s = '';
    for (let i = start; i < end; i++) {
      const c = buf[i];
      if (c >= 0x80) return utf8.decode(buf.subarray(start, end));
      s += String.fromCharCode(c);
    }
    return s;
  }
  return utf8.decode(buf.subarray(start, end));
}

const utf8Encoder = new TextEncoder();

/** Bytes of `s` in UTF-8. */
export function encodeUtf8(s: string): Uint8Array {
  return utf8Encoder.encode(s);
}

const EMPTY = new Uint8Array(0);
/** Payloads at least this long are referenced, not copied, until `finish()`. */
const BY_REFERENCE = 2048;
const FIRST_BLOCK = 16 * 1024;
const MAX_BLOCK = 4 * 1024 * 1024;

/**
 * Append-only protobuf writer. Output is kept as a list of parts (large byte payloads by
 * reference) so that nested messages are length-prefixed without re-copying their contents:
 * `fork()` reserves a slot for a length, `ldelim()` fills it with the length of what was
 * written since.
 */
export class WireWriter {
  private block: Uint8Array;
  private view: DataView;
  private pos = 0;
  private segStart = 0;
  private readonly parts: Uint8Array[] = [];
  private flushed = 0;
  private readonly forks: { slot: number; start: number }[] = [];

  constructor(firstBlock = FIRST_BLOCK) {
    this.block = new Uint8Array(firstBlock);
    this.view = new DataView(this.block.buffer);
  }

  /** Bytes written so far. */
  get length(): number {
    return this.flushed + (this.pos - this.segStart);
  }

  private flush(): void {
    if (this.pos > this.segStart) {
      this.parts.push(this.block.subarray(this.segStart, this.pos));
      this.flushed += this.pos - this.segStart;
      this.segStart = this.pos;
    }
  }

  private ensure(n: number): void {
    if (this.block.length - this.pos >= n) return;
    this.flush();
    const size = Math.max(n, Math.min(MAX_BLOCK, this.block.length * 2));
    this.block = new Uint8Array(size);
    this.view = new DataView(this.block.buffer);
    this.pos = 0;
    this.segStart = 0;
  }

  /** Unsigned varint for 0 <= v < 2^32. */
  uint32(v: number): void {
    this.ensure(5);
    const b = this.block;
    let p = this.pos;
    while (v > 0x7f) {
      b[p++] = (v & 0x7f) | 0x80;
      v >>>= 7;
    }
    b[p++] = v;
    this.pos = p;
  }

  /** Varint from unsigned 32-bit halves. */
  varint64(lo: number, hi: number): void {
    if (hi === 0) {
      this.uint32(lo);
      return;
    }
    this.ensure(10);
    const b = this.block;
    let p = this.pos;
    // 4 full groups of 7 bits from lo, then 4 bits of lo + 3 of hi, then hi.
    for (let i = 0; i < 4; i++) {
      b[p++] = (lo & 0x7f) | 0x80;
      lo >>>= 7;
    }
    const mid = lo | ((hi & 0x7) << 4);
    hi >>>= 3;
    if (hi === 0) {
      b[p++] = mid;
    } else {
      b[p++] = mid | 0x80;
      while (hi > 0x7f) {
        b[p++] = (hi & 0x7f) | 0x80;
        hi >>>= 7;
      }
      b[p++] = hi;
    }
    this.pos = p;
  }

  /** int32 field: negative values become 10-byte sign-extended varints. */
  int32(v: number): void {
    if (v >= 0) this.uint32(v);
    else this.varint64(v >>> 0, 0xffffffff);
  }

  /** int64 field from an exact bigint (negative: 10-byte two's complement varint). */
  int64(v: bigint): void {
    if (v >= 0n && v < 0x100000000n) {
      this.uint32(Number(v));
      return;
    }
    const u = BigInt.asUintN(64, v);
    this.varint64(Number(u & 0xffffffffn), Number(u >> 32n));
  }

  /** uint64 field from an exact bigint. */
  uint64(v: bigint): void {
    this.int64(BigInt.asIntN(64, v));
  }

  tag(fieldNo: number, wireType: number): void {
    this.uint32((fieldNo * 8 + wireType) >>> 0);
  }

  fixed32(v: number): void {
    this.ensure(4);
    this.view.setUint32(this.pos, v, true);
    this.pos += 4;
  }

  float(v: number): void {
    this.ensure(4);
    this.view.setFloat32(this.pos, v, true);
    this.pos += 4;
  }

  double(v: number): void {
    this.ensure(8);
    this.view.setFloat64(this.pos, v, true);
    this.pos += 8;
  }

  /** Packed float payload (no tag or length). */
  floats(values: ArrayLike<number>): void {
    const n = values.length;
    this.ensure(n * 4);
    const view = this.view;
    let p = this.pos;
    for (let i = 0; i < n; i++, p += 4) view.setFloat32(p, values[i], true);
    this.pos = p;
  }

  /** Packed double payload (no tag or length). */
  doubles(values: ArrayLike<number>): void {
    const n = values.length;
    this.ensure(n * 8);
    const view = this.view;
    let p = this.pos;
    for (let i = 0; i < n; i++, p += 8) view.setFloat64(p, values[i], true);
    this.pos = p;
  }

  /** Bytes appended as they are (no length prefix). Large arrays are kept by reference. */
  raw(bytes: Uint8Array): void {
    if (bytes.length >= BY_REFERENCE) {
      this.flush();
      this.parts.push(bytes);
      this.flushed += bytes.length;
      return;
    }
    this.ensure(bytes.length);
    this.block.set(bytes, this.pos);
    this.pos += bytes.length;
  }

  /** Length-prefixed bytes. */
  bytes(bytes: Uint8Array): void {
    this.uint32(bytes.length);
    this.raw(bytes);
  }

  /** Length-prefixed UTF-8 string. */
  string(s: string): void {
    const n = s.length;
    if (n < 4096) {
      let ascii = true;
      for (let i = 0; i < n; i++) {
        if (s.charCodeAt(i) >= 0x80) {
          ascii = false;
          break;
        }
      }
      if (ascii) {
        this.uint32(n);
        this.ensure(n);
        const b = this.block;
        const p = this.pos;
        for (let i = 0; i < n; i++) b[p + i] = s.charCodeAt(i);
        this.pos = p + n;
        return;
      }
    }
    this.bytes(encodeUtf8(s));
  }

  /** Starts a length-delimited payload; close it with `ldelim()`. */
  fork(): void {
    this.flush();
    this.parts.push(EMPTY);
    this.forks.push({ slot: this.parts.length - 1, start: this.flushed });
  }

  /** Ends the payload begun by the matching `fork()`, writing its length in front of it. */
  ldelim(): void {
    const f = this.forks.pop();
    if (f === undefined) throw new Error('WireWriter.ldelim() without fork()');
    this.flush();
    const len = this.flushed - f.start;
    // Write the length varint into the block as its own segment and move it into the slot.
    this.uint32(len);
    this.parts[f.slot] = this.block.subarray(this.segStart, this.pos);
    this.flushed += this.pos - this.segStart;
    this.segStart = this.pos;
  }

  /** The output as parts in order (no copy) and their total length. */
  finishParts(): { parts: Uint8Array[]; length: number } {
    if (this.forks.length > 0) throw new Error('WireWriter.finish() with an open fork()');
    this.flush();
    return { parts: this.parts, length: this.flushed };
  }

  /** The output as one array. */
  finish(): Uint8Array {
    const { parts, length } = this.finishParts();
    if (parts.length === 1) return parts[0];
    const out = new Uint8Array(length);
    let p = 0;
    for (const part of parts) {
      out.set(part, p);
      p += part.length;
    }
    return out;
  }
}
