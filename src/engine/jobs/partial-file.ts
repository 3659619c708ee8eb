// The binary container of a partial file. A shard's state can be far larger than one JS string
// (V8 caps strings near 512 MiB; a ViT-small block Gram alone is ~170 MB), so the typed arrays
// never go through JSON:
//
//   offset 0   8 bytes  magic "BLKLPRT\0"
//          8   u32 LE   container version (1)
//         12   u32 LE   reserved (0)
//         16   u64 LE   header length H in bytes
//         24   H bytes  UTF-8 JSON: the partial, every tagged array (encodeArray) replaced by
//                       { dtype, length, blob: i, offset, byteLength } (offset from the file start)
//              …        zero padding to a multiple of 8, then each blob's little-endian bytes,
//                       each starting at a multiple of 8.
//
// Written streaming (header, then each array's bytes straight from the array) to a temporary
// file in the target's folder, flushed, then renamed over the target.
import { open, rename, rm, type FileHandle } from 'node:fs/promises';
import { ModelFileError } from '../onnx/errors.js';
import { writeErrorMessage } from '../onnx/model-file.js';
import { removeStaleTemps, tempPathFor } from '../io/atomic-write.js';
import { bytesLE, dtypeSize, encodeArray, isEncodedArray, LITTLE, type Dtype, type Encodable } from '../pass/snapshot.js';

export const PARTIAL_MAGIC = Buffer.from('BLKLPRT\0', 'latin1');
export const CONTAINER_VERSION = 1;
const PREFIX = 24;
const CHUNK = 1 << 24;

interface BlobRef {
  dtype: Dtype;
  length: number;
  blob: number;
  offset: number;
  byteLength: number;
}

const align8 = (n: number): number => Math.ceil(n / 8) * 8;

/** The header tree (arrays replaced by blob references) and the arrays, in blob order. */
function split(value: unknown, start: (headerLength: number) => number): { header: Buffer; arrays: Encodable[] } {
  // Offsets depend on the header length, which depends on the offsets' digits: lay out with a
  // provisional data start, then redo with the real one until stable (two rounds in practice).
  let dataStart = 0;
  for (;;) {
    const arrays: Encodable[] = [];
    let at = dataStart;
    const walk = (v: unknown): unknown => {
      if (isEncodedArray(v)) {
        const ref: BlobRef = { dtype: v.dtype, length: v.length, blob: arrays.length, offset: at, byteLength: v.data.byteLength };
        arrays.push(v.data);
        at = align8(at + v.data.byteLength);
        return ref;
      }
      if (ArrayBuffer.isView(v)) throw new Error('internal: a bare typed array in a snapshot (use encodeArray)');
      if (Array.isArray(v)) return v.map(walk);
      if (v && typeof v === 'object') {
        const o: Record<string, unknown> = {};
        for (const [k, x] of Object.entries(v)) if (x !== undefined) o[k] = walk(x);
        return o;
      }
      return v;
    };
    const header = Buffer.from(JSON.stringify(walk(value)), 'utf8');
    const want = start(header.length);
    if (want === dataStart) return { header, arrays };
    dataStart = want;
  }
}

async function writeAll(fh: FileHandle, bytes: Uint8Array, position: number): Promise<void> {
  for (let done = 0; done < bytes.length; ) {
    const n = Math.min(CHUNK, bytes.length - done);
    const { bytesWritten } = await fh.write(bytes, done, n, position + done);
    done += bytesWritten;
  }
}

/** Writes `partial` (typed arrays tagged by encodeArray) to `file` atomically. */
export async function writePartialFile(file: string, partial: unknown): Promise<void> {
  const { header, arrays } = split(partial, (h) => align8(PREFIX + h));
  const prefix = Buffer.alloc(PREFIX);
  PARTIAL_MAGIC.copy(prefix, 0);
  prefix.writeUInt32LE(CONTAINER_VERSION, 8);
  prefix.writeUInt32LE(0, 12);
  prefix.writeBigUInt64LE(BigInt(header.length), 16);
  let tmp: string | undefined;
  try {
    await removeStaleTemps(file);
    tmp = tempPathFor(file);
    const fh = await open(tmp, 'wx');
    try {
      await writeAll(fh, prefix, 0);
      await writeAll(fh, header, PREFIX);
      let at = align8(PREFIX + header.length);
      for (const a of arrays) {
        await writeAll(fh, bytesLE(a), at);
        at = align8(at + a.byteLength);
      }
      await fh.truncate(at); // the padding after the last blob (and any gap) as zeros
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, file);
    tmp = undefined;
  } catch (e) {
    if (tmp) await rm(tmp, { force: true }).catch(() => {});
    throw new ModelFileError(writeErrorMessage(e, file), file, { cause: e, code: (e as NodeJS.ErrnoException).code });
  }
}

/** Whether `head` (the first bytes of a file) starts with the partial container's magic. */
export function isPartialContainer(head: Uint8Array): boolean {
  return head.length >= PARTIAL_MAGIC.length && Buffer.from(head.buffer, head.byteOffset, PARTIAL_MAGIC.length).equals(PARTIAL_MAGIC);
}

/** The typed array over `bytes` (little-endian, fresh and aligned), swapped in place on big-endian machines. */
function viewLE(bytes: Buffer, dtype: Dtype): Encodable {
  const size = dtypeSize(dtype);
  if (!LITTLE) {
    if (size === 8) bytes.swap64();
    else bytes.swap32();
  }
  const n = bytes.length / size;
  return dtype === 'f64' ? new Float64Array(bytes.buffer, bytes.byteOffset, n) : dtype === 'f32' ? new Float32Array(bytes.buffer, bytes.byteOffset, n) : new Int32Array(bytes.buffer, bytes.byteOffset, n);
}

/** A refused partial file; `reason` is the message without the file name. */
export class PartialFileError extends Error {
  constructor(readonly reason: string, readonly file: string) {
    super(`${file}: ${reason}`);
    this.name = 'PartialFileError';
  }
}

async function readExactly(fh: FileHandle, length: number, position: number, file: string, what: string): Promise<Buffer> {
  const buf = Buffer.from(new ArrayBuffer(length)); // own, 8-aligned memory: typed arrays view it directly
  let done = 0;
  while (done < length) {
    const { bytesRead } = await fh.read(buf, done, Math.min(CHUNK, length - done), position + done);
    if (bytesRead === 0) throw new PartialFileError(`truncated partial: ${what} ends past the end of the file`, file);
    done += bytesRead;
  }
  return buf;
}

/** Reads a partial container: the header's tree with every blob reference replaced by a tagged typed array. */
export async function readPartialFile(file: string): Promise<unknown> {
  const fh = await open(file, 'r');
  try {
    const size = (await fh.stat()).size;
    if (size < PREFIX) {
      const head = await readExactly(fh, size, 0, file, 'the file');
      if (isPartialContainer(head) || PARTIAL_MAGIC.subarray(0, size).equals(head)) throw new PartialFileError(`truncated partial: ${size} bytes, shorter than the ${PREFIX}-byte prefix`, file);
      throw new PartialFileError('not a BlockLens partial (no partial magic)', file);
    }
    const prefix = await readExactly(fh, PREFIX, 0, file, 'the prefix');
    if (!isPartialContainer(prefix)) throw new PartialFileError('not a BlockLens partial (no partial magic)', file);
    const version = prefix.readUInt32LE(8);
    if (version !== CONTAINER_VERSION) throw new PartialFileError(`partial container version ${version}; this blocklens reads version ${CONTAINER_VERSION}`, file);
    const headerLength = prefix.readBigUInt64LE(16);
    if (headerLength > BigInt(size - PREFIX)) throw new PartialFileError(`truncated or corrupt partial: a ${headerLength}-byte header in a ${size}-byte file`, file);
    const headerBytes = await readExactly(fh, Number(headerLength), PREFIX, file, 'the header');
    let tree: unknown;
    try {
      tree = JSON.parse(headerBytes.toString('utf8'));
    } catch {
      throw new PartialFileError('corrupt partial: the header is not JSON', file);
    }
    const dataStart = align8(PREFIX + Number(headerLength));
    const refs: { ref: BlobRef; set: (v: unknown) => void }[] = [];
    const walk = (v: unknown, set: (x: unknown) => void): void => {
      if (Array.isArray(v)) v.forEach((x, i) => walk(x, (y) => (v[i] = y)));
      else if (v && typeof v === 'object') {
        const r = v as BlobRef;
        if (typeof r.blob === 'number' && typeof r.offset === 'number' && typeof r.byteLength === 'number' && typeof r.dtype === 'string') refs.push({ ref: r, set });
        else for (const k of Object.keys(v)) walk((v as Record<string, unknown>)[k], (y) => ((v as Record<string, unknown>)[k] = y));
      }
    };
    walk(tree, (y) => (tree = y));
    for (const { ref, set } of refs) {
      const bad = (why: string) => new PartialFileError(`corrupt partial: blob ${ref.blob} ${why}`, file);
      if (!['f64', 'f32', 'i32'].includes(ref.dtype)) throw bad(`has an unknown dtype '${String(ref.dtype)}'`);
      if (!Number.isSafeInteger(ref.length) || ref.length < 0 || ref.byteLength !== ref.length * dtypeSize(ref.dtype)) throw bad(`holds ${ref.byteLength} bytes for ${ref.length} ${ref.dtype} values`);
      if (!Number.isSafeInteger(ref.offset) || ref.offset < dataStart || ref.offset % 8 !== 0) throw bad(`starts at a bad offset ${ref.offset}`);
      if (ref.offset + ref.byteLength > size) throw new PartialFileError(`truncated partial: blob ${ref.blob} (${ref.byteLength} bytes at ${ref.offset}) ends past the end of the ${size}-byte file`, file);
      const bytes = await readExactly(fh, ref.byteLength, ref.offset, file, `blob ${ref.blob}`);
      set(encodeArray(viewLE(bytes, ref.dtype)));
    }
    return tree;
  } finally {
    await fh.close();
  }
}
