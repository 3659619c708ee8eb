// Weights by reference: a copy of a loaded model whose large inline initializers become
// external-data references into the .onnx file they were read from (location = the file's own
// name, offset = where the tensor's raw bytes sit in it). ONNX Runtime then reads those weights
// from the file itself, so a session built from the (now small) encoded graph never needs a
// second in-memory copy of the weights, and the file's bytes can be released by the caller.
// The user's file is only read, never written. The result is re-decoded from a fresh, small
// buffer, so it holds no views into the original file bytes.
import * as path from 'node:path';

import { decodeModel, encodeModel } from './codec.js';
import { DATA_LOCATION_EXTERNAL, externalTensor } from './model-file.js';
import type { GraphProto, ModelProto, TensorProto } from './types.js';

export interface ModelBytes {
  /** Absolute path of the .onnx file. */
  path: string;
  /** Its bytes exactly as read; the model's rawData payloads are views into them. */
  bytes: Uint8Array;
}

/** Smallest initializer (bytes) moved to a reference; smaller ones stay inline. */
export const BY_REFERENCE_THRESHOLD = 4096;

/** Offset of `raw` inside `file.bytes`, or undefined when it is not a view of them. */
function offsetIn(file: ModelBytes, raw: Uint8Array): number | undefined {
  if (raw.buffer !== file.bytes.buffer) return undefined;
  const off = raw.byteOffset - file.bytes.byteOffset;
  if (off < 0 || off + raw.byteLength > file.bytes.byteLength) return undefined;
  return off;
}

function mapInitializers(g: GraphProto, f: (t: TensorProto) => TensorProto): GraphProto {
  return { ...g, initializer: g.initializer.map(f) };
}

/**
 * The model with every main-graph initializer of at least `threshold` raw bytes turned into a
 * reference to its bytes in `file`. Tensors that are not views of `file.bytes` (built or edited
 * since loading) stay inline. Returns the model unchanged (same object) when nothing moved.
 */
export function weightsByReference(model: ModelProto, file: ModelBytes, threshold = BY_REFERENCE_THRESHOLD): ModelProto {
  if (model.graph === undefined) return model;
  const location = path.basename(file.path);
  let moved = 0;
  const graph = mapInitializers(model.graph, (t) => {
    const raw = t.rawData;
    if (raw === undefined || raw.byteLength < threshold || t.dataLocation === DATA_LOCATION_EXTERNAL) return t;
    const off = offsetIn(file, raw);
    if (off === undefined) return t;
    moved++;
    return externalTensor(t, location, off, raw.byteLength);
  });
  if (moved === 0) return model;
  // A fresh encode/decode detaches every remaining view (small tensors, strings) from file.bytes.
  return decodeModel(encodeModel({ ...model, graph }));
}

/** Bytes of the initializers that `weightsByReference` would leave inline (for reports/tests). */
export function inlineInitializerBytes(model: ModelProto): number {
  let n = 0;
  for (const t of model.graph?.initializer ?? []) if (t.dataLocation !== DATA_LOCATION_EXTERNAL) n += t.rawData?.byteLength ?? 0;
  return n;
}

/**
 * The loaded model with its weights left in the file: every initializer of at least `threshold`
 * bytes becomes a reference to its bytes in the .onnx file, and the file's bytes are dropped, so
 * a long pass does not hold a JavaScript copy of weights that ONNX Runtime reads from disk
 * itself. Everything but the weights' values (graph, shapes, small constants) stays in memory.
 */
export function detachWeights<T extends ModelBytes & { model: ModelProto }>(loaded: T, threshold = BY_REFERENCE_THRESHOLD): T {
  const model = weightsByReference(loaded.model, loaded, threshold);
  if (model === loaded.model) return loaded;
  return { ...loaded, model, bytes: new Uint8Array(0) };
}
