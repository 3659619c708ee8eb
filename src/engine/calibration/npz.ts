// .npz archives (np.savez: stored, np.savez_compressed: deflated): a zip of .npy files.
// yauzl reads the central directory and local headers; stored entries are then read by offset,
// deflated entries are inflated sequentially from the entry's bytes.

import { createReadStream } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { basename } from 'node:path';
import { createInflateRaw } from 'node:zlib';
import yauzl from 'yauzl';
import {
  ByteStream, checkDataSize, FileRowReader, fortranToC, fortranTooLarge, FORTRAN_LIMIT_BYTES, MemoryRowReader,
  npyHeaderLength, parseNpyHeader, rowBytesOf, StreamRowReader, type NpyHeader, type RowReader, type StoredArray,
} from './npy';
import { CalibrationError } from './types';

interface ZipEntryInfo {
  key: string;
  fileName: string;
  method: number;
  compressedSize: number;
  uncompressedSize: number;
  dataStart: number;
}

async function listEntries(path: string): Promise<ZipEntryInfo[]> {
  const name = basename(path);
  let zip: yauzl.ZipFile;
  try {
    zip = await yauzl.openPromise(path, { lazyEntries: true, autoClose: false });
  } catch (e) {
    throw new CalibrationError(path, `${name}: not a readable .npz (zip) archive: ${(e as Error).message}`);
  }
  try {
    const out: ZipEntryInfo[] = [];
    const entries: yauzl.Entry[] = [];
    await new Promise<void>((resolve, reject) => {
      zip.on('entry', (e: yauzl.Entry) => {
        entries.push(e);
        zip.readEntry();
      });
      zip.on('end', () => resolve());
      zip.on('error', reject);
      zip.readEntry();
    });
    for (const e of entries) {
      if (e.fileName.endsWith('/') || !e.fileName.endsWith('.npy')) continue;
      if (e.isEncrypted()) throw new CalibrationError(path, `${name}: entry '${e.fileName}' is encrypted`);
      if (e.compressionMethod !== 0 && e.compressionMethod !== 8) {
        throw new CalibrationError(path, `${name}: entry '${e.fileName}' uses zip compression method ${e.compressionMethod}; only stored (np.savez) and deflated (np.savez_compressed) are supported`);
      }
      const { fileDataStart } = await zip.readLocalFileHeaderPromise(e, { minimal: true });
      out.push({
        key: e.fileName.slice(0, -4),
        fileName: e.fileName,
        method: e.compressionMethod,
        compressedSize: e.compressedSize,
        uncompressedSize: e.uncompressedSize,
        dataStart: fileDataStart,
      });
    }
    return out;
  } catch (e) {
    if (e instanceof CalibrationError) throw e;
    throw new CalibrationError(path, `${name}: corrupt .npz (zip) archive: ${(e as Error).message}`);
  } finally {
    zip.close();
  }
}

function inflating(path: string, ent: ZipEntryInfo): ByteStream {
  const raw = createReadStream(path, { start: ent.dataStart, end: ent.dataStart + ent.compressedSize - 1, highWaterMark: 1 << 20 });
  const inflate = createInflateRaw();
  raw.on('error', (err) => inflate.destroy(err));
  raw.pipe(inflate);
  return new ByteStream(inflate);
}

async function readEntryHeader(path: string, ent: ZipEntryInfo, label: string): Promise<NpyHeader> {
  if (ent.method === 0) {
    const fh = await open(path, 'r');
    try {
      const pre = new Uint8Array(Math.min(12, ent.uncompressedSize));
      await fh.read(pre, 0, pre.length, ent.dataStart);
      const total = npyHeaderLength(pre, label);
      if (total > ent.uncompressedSize) throw new CalibrationError(path, `${label}: corrupt .npy header (entry ends inside the header)`);
      const h = new Uint8Array(total);
      await fh.read(h, 0, total, ent.dataStart);
      return parseNpyHeader(h, label);
    } finally {
      await fh.close();
    }
  }
  const bs = inflating(path, ent);
  try {
    const pre = await bs.read(Math.min(12, ent.uncompressedSize));
    const total = npyHeaderLength(pre, label);
    if (total > ent.uncompressedSize) throw new CalibrationError(path, `${label}: corrupt .npy header (entry ends inside the header)`);
    const rest = await bs.read(total - pre.length);
    const h = new Uint8Array(total);
    h.set(pre, 0);
    h.set(rest, pre.length);
    return parseNpyHeader(h, label);
  } catch (e) {
    if (e instanceof CalibrationError) throw e;
    throw new CalibrationError(path, `${label}: cannot inflate: ${(e as Error).message}`);
  } finally {
    bs.destroy();
  }
}

/** Every array in an .npz, by key (entry name without `.npy`). */
export async function openNpz(path: string): Promise<Map<string, StoredArray>> {
  const name = basename(path);
  try {
    if (!(await stat(path)).isFile()) throw new Error('not a file');
  } catch {
    throw new CalibrationError(path, `${path}: file not found`);
  }
  const entries = await listEntries(path);
  const out = new Map<string, StoredArray>();
  for (const ent of entries) {
    const label = `${name}:${ent.key}`;
    // CalibrationError.file must be the archive path; parse errors carry the label, so re-wrap.
    let header: NpyHeader;
    try {
      header = await readEntryHeader(path, ent, label);
    } catch (e) {
      if (e instanceof CalibrationError) throw new CalibrationError(path, e.message);
      throw e;
    }
    checkDataSize(header, ent.uncompressedSize - header.dataOffset, label, path);
    const rowBytes = rowBytesOf(header);
    let openReader: () => Promise<RowReader>;
    if (header.fortranOrder && header.shape.length > 1) {
      if (header.dataBytes > FORTRAN_LIMIT_BYTES) throw new CalibrationError(path, fortranTooLarge(label, header));
      let c: Uint8Array | undefined;
      openReader = async () => {
        if (!c) {
          let raw: Uint8Array;
          if (ent.method === 0) {
            const r = await FileRowReader.open(path, ent.dataStart + header.dataOffset, header.dataBytes);
            try {
              raw = await r.read([0]);
            } finally {
              await r.close();
            }
          } else {
            const bs = inflating(path, ent);
            try {
              await bs.take(header.dataOffset, null);
              raw = await bs.read(header.dataBytes);
            } finally {
              bs.destroy();
            }
          }
          c = fortranToC(raw, header.shape, header.itemSize);
        }
        return new MemoryRowReader(c, rowBytes);
      };
    } else if (ent.method === 0) {
      openReader = () => FileRowReader.open(path, ent.dataStart + header.dataOffset, rowBytes);
    } else {
      openReader = async () => {
        const bs = inflating(path, ent);
        await bs.take(header.dataOffset, null);
        return new StreamRowReader(bs, rowBytes);
      };
    }
    out.set(ent.key, { file: path, label, header, openReader });
  }
  return out;
}
