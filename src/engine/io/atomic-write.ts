// Writes a file so that readers see either the old content or the whole new content: the data
// goes to a temporary file in the same folder (flushed to disk), which is then renamed over the
// target. A failed or cancelled write (full disk, no permission, Ctrl-C) removes its temporary
// file and leaves the target as it was. A process killed outright cannot clean up: its temporary
// file (`.<name>.<pid>.<random>.tmp`, hidden) is removed by the next write to the same target
// once that pid is gone.
import { randomBytes } from 'node:crypto';
import { open, rename, rm } from 'node:fs/promises';
import * as path from 'node:path';
import { ModelFileError } from '../onnx/errors.js';
import { writeErrorMessage } from '../onnx/model-file.js';
import { removeStaleTemps } from './stale-temps.js';

export { removeStaleTemps };

export interface AtomicWriteOptions {
  /** Cancels the write: the temporary file is removed and an AbortError thrown; the target is untouched. */
  signal?: AbortSignal;
  /** Called after each chunk is written, with the bytes written so far (progress; tests cancel from it). */
  onChunk?: (written: number, total: number) => void;
}

/** Bytes per write call: cancellation is checked between chunks. */
export const WRITE_CHUNK = 1 << 20;

/** The temporary file name used for `target` by this process. */
export function tempPathFor(target: string): string {
  return path.join(path.dirname(target), `.${path.basename(target)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
}

function abortError(): Error {
  return new DOMException('The write was cancelled', 'AbortError');
}

/** Writes `data` to a new file at `tmp` in chunks, checking `signal` between them, then flushes it to disk. */
async function writeTemp(tmp: string, data: Uint8Array, opts: AtomicWriteOptions): Promise<void> {
  if (opts.signal?.aborted) throw abortError();
  const fh = await open(tmp, 'wx');
  try {
    let done = 0;
    while (done < data.length) {
      const n = Math.min(WRITE_CHUNK, data.length - done);
      const { bytesWritten } = await fh.write(data, done, n, done);
      done += bytesWritten;
      opts.onChunk?.(done, data.length);
      if (opts.signal?.aborted) throw abortError();
    }
    await fh.sync();
  } finally {
    await fh.close();
  }
}

const toBytes = (data: string | Uint8Array): Uint8Array => (typeof data === 'string' ? Buffer.from(data, 'utf8') : data);

function failure(e: unknown, file: string): Error {
  if ((e as Error).name === 'AbortError') return e as Error;
  return new ModelFileError(writeErrorMessage(e, file), file, { cause: e, code: (e as NodeJS.ErrnoException).code });
}

export async function writeFileAtomic(file: string, data: string | Uint8Array, opts: AtomicWriteOptions = {}): Promise<void> {
  await writeFilesAtomic([{ file, data }], opts);
}

/**
 * Writes several files all-or-nothing as far as the file system allows: every temporary file is
 * written and flushed first, and only then renamed over its target, in order. A failure or a
 * cancel before the renames leaves every target as it was (the CLI's --out and --html: when the
 * HTML cannot be written, report.json is not replaced either).
 */
export async function writeFilesAtomic(files: { file: string; data: string | Uint8Array }[], opts: AtomicWriteOptions = {}): Promise<void> {
  const temps: { tmp: string; file: string }[] = [];
  let current = files[0]?.file ?? '';
  try {
    for (const f of files) {
      current = f.file;
      await removeStaleTemps(f.file);
      const tmp = tempPathFor(f.file);
      temps.push({ tmp, file: f.file });
      await writeTemp(tmp, toBytes(f.data), opts);
    }
    if (opts.signal?.aborted) throw abortError();
    while (temps.length > 0) {
      const t = temps[0]!;
      current = t.file;
      await rename(t.tmp, t.file);
      temps.shift();
    }
  } catch (e) {
    await Promise.all(temps.map((t) => rm(t.tmp, { force: true }).catch(() => {})));
    throw failure(e, current);
  }
}
