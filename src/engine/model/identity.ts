// A model's identity for partial files: sha256 over the .onnx bytes and every external data
// file it references (name and content), so two shards agree only on the very same weights.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import * as path from 'node:path';
import { externalFiles, type LoadedModel } from '../onnx/model-file.js';

export async function modelIdentity(loaded: LoadedModel): Promise<string> {
  const h = createHash('sha256');
  h.update(`onnx\0${loaded.sha256}\0`);
  // A model whose weights are referenced in its own .onnx file (detachWeights) is covered by its sha256.
  for (const loc of [...externalFiles(loaded.model)].filter((l) => path.resolve(loaded.dir, l) !== loaded.path).sort()) {
    const fh = createHash('sha256');
    for await (const chunk of createReadStream(path.resolve(loaded.dir, loc))) fh.update(chunk as Buffer);
    h.update(`external\0${loc}\0${fh.digest('hex')}\0`);
  }
  return h.digest('hex');
}
