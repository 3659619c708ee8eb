// Writes a file so that readers see either the old content or the whole new content: the data
// goes to a temporary file in the same folder, which is then renamed over the target. A failed
// write (full disk, no permission) leaves no partial file behind.
import { randomBytes } from 'node:crypto';
import { rename, rm, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { ModelFileError } from '../onnx/errors.js';
import { writeErrorMessage } from '../onnx/model-file.js';

export async function writeFileAtomic(file: string, data: string | Uint8Array): Promise<void> {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  try {
    await writeFile(tmp, data);
    await rename(tmp, file);
  } catch (e) {
    await rm(tmp, { force: true }).catch(() => {});
    throw new ModelFileError(writeErrorMessage(e, file), file, { cause: e, code: (e as NodeJS.ErrnoException).code });
  }
}
