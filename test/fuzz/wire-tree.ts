// A schema-free view of protobuf bytes as a tree of fields, for the fuzzer: every length-delimited
// payload that parses cleanly as fields becomes a nested message, everything else stays bytes.
// Mutating the tree and serialising it again keeps every enclosing length prefix right, so a
// corruption deep inside (a node's attribute, a tensor's dims) reaches the decoder at that depth
// instead of surfacing as "truncated" at the top level.

export interface WireField {
  no: number;
  wt: number;
  /** VARINT: the value (unsigned 64-bit); I32/I64: raw bytes; LEN: bytes or children. */
  varint?: bigint;
  fixed?: Uint8Array;
  bytes?: Uint8Array;
  children?: WireField[];
  /** Written instead of the payload's real length (a lie about the length). */
  lenOverride?: bigint;
  /** Extra bytes appended after the field, inside its parent (junk). */
  trailer?: Uint8Array;
}

function readVarint(buf: Uint8Array, pos: number, end: number): [bigint, number] | undefined {
  let v = 0n;
  for (let shift = 0n; shift < 70n; shift += 7n) {
    if (pos >= end) return undefined;
    const b = buf[pos++]!;
    v |= BigInt(b & 0x7f) << shift;
    if (b < 0x80) return [BigInt.asUintN(64, v), pos];
  }
  return undefined;
}

/** Parses `buf[start, end)` as fields; undefined when it is not a clean run of fields. */
export function parseFields(buf: Uint8Array, start = 0, end = buf.length, depth = 0): WireField[] | undefined {
  const out: WireField[] = [];
  let pos = start;
  while (pos < end) {
    const tag = readVarint(buf, pos, end);
    if (!tag) return undefined;
    pos = tag[1];
    const no = Number(tag[0] >> 3n);
    const wt = Number(tag[0] & 7n);
    if (no === 0 || no > 64) return undefined; // ONNX field numbers are small
    if (wt === 0) {
      const v = readVarint(buf, pos, end);
      if (!v) return undefined;
      out.push({ no, wt, varint: v[0] });
      pos = v[1];
    } else if (wt === 1 || wt === 5) {
      const n = wt === 1 ? 8 : 4;
      if (pos + n > end) return undefined;
      out.push({ no, wt, fixed: buf.slice(pos, pos + n) });
      pos += n;
    } else if (wt === 2) {
      const l = readVarint(buf, pos, end);
      if (!l || l[1] + Number(l[0]) > end) return undefined;
      pos = l[1];
      const len = Number(l[0]);
      const payload = buf.subarray(pos, pos + len);
      // Short payloads are more often strings than messages; nested messages of ONNX are longer.
      const children = depth < 40 && len >= 2 ? parseFields(buf, pos, pos + len, depth + 1) : undefined;
      out.push(children ? { no, wt, children, bytes: payload } : { no, wt, bytes: payload });
      pos += len;
    } else {
      return undefined;
    }
  }
  return out;
}

function varintBytes(v: bigint): number[] {
  const out: number[] = [];
  let x = BigInt.asUintN(64, v);
  while (x > 0x7fn) {
    out.push(Number(x & 0x7fn) | 0x80);
    x >>= 7n;
  }
  out.push(Number(x));
  return out;
}

class Sink {
  parts: Uint8Array[] = [];
  length = 0;
  push(b: Uint8Array | number[]): void {
    const u = b instanceof Uint8Array ? b : Uint8Array.from(b);
    this.parts.push(u);
    this.length += u.length;
  }
  join(): Uint8Array {
    const out = new Uint8Array(this.length);
    let p = 0;
    for (const part of this.parts) {
      out.set(part, p);
      p += part.length;
    }
    return out;
  }
}

export function serializeFields(fields: WireField[]): Uint8Array {
  const s = new Sink();
  for (const f of fields) {
    s.push(varintBytes(BigInt(f.no) * 8n + BigInt(f.wt & 7)));
    if (f.varint !== undefined) s.push(varintBytes(f.varint));
    else if (f.fixed !== undefined) s.push(f.fixed);
    else {
      const payload = f.children ? serializeFields(f.children) : (f.bytes ?? new Uint8Array(0));
      s.push(varintBytes(f.lenOverride ?? BigInt(payload.length)));
      s.push(payload);
    }
    if (f.trailer) s.push(f.trailer);
  }
  return s.join();
}

/** Every field of the tree with the list it lives in (for in-place edits), depth first. */
export function allFields(fields: WireField[], depth = 0, out: { field: WireField; parent: WireField[]; depth: number }[] = []) {
  for (const f of fields) {
    out.push({ field: f, parent: fields, depth });
    if (f.children) allFields(f.children, depth + 1, out);
  }
  return out;
}
