// Reading and writing .onnx files and their external data (ONNX IR spec, "External Tensor
// Data": data_location = EXTERNAL, external_data keys `location`, `offset`, `length`,
// `checksum`; location is relative to the model's folder). Every error names the file.

import { createHash, randomBytes } from 'node:crypto';
import { realpathSync } from 'node:fs';
import { open, readFile, rename, stat, unlink, type FileHandle } from 'node:fs/promises';
import * as path from 'node:path';

import { decodeModel, encodeModelParts, looksLikeOnnx, MAX_PROTOBUF_BYTES } from './codec.js';
import { ModelFileError, OnnxFormatError } from './errors.js';
import { graphProblem } from './graph-check.js';
import { removeStaleTemps } from '../io/stale-temps.js';
import {
  allTensors,
  bitsPerElement,
  bytesToFloat64,
  inlineTensorBytes,
  inlineTensorToFloat64,
  tensorByteLength,
  tensorElementCount,
} from './tensor-data.js';
import type {
  AttributeProto,
  GraphProto,
  ModelProto,
  NodeProto,
  SparseTensorProto,
  StringStringEntryProto,
  TensorProto,
} from './types.js';

export { allGraphs, allTensors, countParameters, tensorByteLength, tensorElementCount } from './tensor-data.js';

/** TensorProto.data_location values. */
export const DATA_LOCATION_DEFAULT = 0;
export const DATA_LOCATION_EXTERNAL = 1;

export interface LoadedModel {
  /** Absolute path of the .onnx file. */
  path: string;
  /** The path as the caller gave it: errors about the model name it so. */
  given?: string;
  /** Its folder: external data locations are relative to it. */
  dir: string;
  /** The file's bytes; `model`'s byte payloads are views into them. */
  bytes: Uint8Array;
  model: ModelProto;
  /** SHA-256 (hex) of the .onnx file bytes. */
  sha256: string;
  /** Size of the .onnx file plus every distinct external data file it references that exists. */
  sizeBytes: number;
}

/** Where external tensor data is looked up: a model's folder (and, for messages, its path). */
export type ModelLocation = Pick<LoadedModel, 'dir'> & { path?: string; given?: string };

/** How errors about the model name it: as the caller gave it, else its absolute path. */
const modelName = (loaded: ModelLocation): string | undefined => loaded.given ?? loaded.path;

const errno = (e: unknown): string | undefined => (e as NodeJS.ErrnoException | undefined)?.code;

function formatBytes(n: number): string {
  if (n >= 2 ** 30) return `${(n / 2 ** 30).toFixed(2)} GiB`;
  if (n >= 2 ** 20) return `${(n / 2 ** 20).toFixed(1)} MiB`;
  return `${n} bytes`;
}

/** Reads, sniffs and decodes an .onnx file. */
export async function loadModelFile(file: string): Promise<LoadedModel> {
  const abs = path.resolve(file);
  let size: number;
  try {
    const st = await stat(abs);
    if (st.isDirectory()) throw new ModelFileError(`'${file}' is a folder, not an ONNX model file`, file);
    size = st.size;
  } catch (e) {
    if (e instanceof ModelFileError) throw e;
    throw readError(e, file);
  }
  if (size === 0) throw new ModelFileError(`model file '${file}' is empty`, file);
  if (size > MAX_PROTOBUF_BYTES) {
    throw new ModelFileError(
      `model file '${file}' is ${formatBytes(size)}, over the 2 GiB limit of an ONNX protobuf; ` +
        'models this large keep their weights in external data files',
      file,
    );
  }
  let buf: Buffer;
  try {
    buf = await readFile(abs);
  } catch (e) {
    throw readError(e, file);
  }
  const bytes = new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
  if (!looksLikeOnnx(bytes)) {
    const kind = sniffOtherFormat(bytes);
    throw new OnnxFormatError(`not an ONNX model (${kind ?? 'the file does not start like an ONNX ModelProto'})`, file);
  }
  let model: ModelProto;
  try {
    model = decodeModel(bytes);
  } catch (e) {
    if (e instanceof OnnxFormatError) throw e.withFile(file);
    throw e;
  }
  if (model.graph === undefined) throw new OnnxFormatError('the model has no graph', file);
  const problem = graphProblem(model);
  if (problem !== undefined) throw new OnnxFormatError(`invalid graph: ${problem}`, file);
  const dir = path.dirname(abs);
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  let sizeBytes = bytes.length;
  for (const f of externalFiles(model)) {
    try {
      sizeBytes += (await stat(resolveExternalPath(dir, f))).size;
    } catch {
      // missing or unsafe: reported by checkExternalData
    }
  }
  return { path: abs, given: file, dir, bytes, model, sha256, sizeBytes };
}

/** What a file that is not ONNX looks like, from its first bytes, for the error message. */
export function sniffOtherFormat(b: Uint8Array): string | undefined {
  const starts = (...sig: number[]) => sig.every((v, i) => b[i] === v);
  const ascii = (s: string, at = 0) => [...s].every((c, i) => b[at + i] === c.charCodeAt(0));
  if (starts(0x50, 0x4b, 0x03, 0x04) || starts(0x50, 0x4b, 0x05, 0x06)) {
    return 'it is a ZIP archive; PyTorch .pt/.pth checkpoints and .npz files are ZIP archives: export the model with torch.onnx.export';
  }
  if (b[0] === 0x80 && b[1] !== undefined && b[1] >= 2 && b[1] <= 5) return 'it is a Python pickle, as old PyTorch checkpoints are: export the model with torch.onnx.export';
  if (starts(0x89, 0x48, 0x44, 0x46)) return 'it is an HDF5 file (a Keras .h5 model?): convert it with tf2onnx';
  if (ascii('TFL3', 4)) return 'it is a TensorFlow Lite model: convert it with tf2onnx';
  if (ascii('GGUF')) return 'it is a GGUF file (llama.cpp), not ONNX';
  if (starts(0x89, 0x50, 0x4e, 0x47) || starts(0xff, 0xd8, 0xff)) return 'it is an image';
  if (ascii('\x93NUMPY')) return 'it is a NumPy .npy array; pass it with --data';
  if (b.length >= 9 && b[8] === 0x7b && b[4] === 0 && b[5] === 0 && b[6] === 0 && b[7] === 0) return 'it is a safetensors file (weights only, no graph)';
  const head = b.subarray(0, Math.min(b.length, 512));
  let text = 0;
  for (const c of head) if (c === 9 || c === 10 || c === 13 || (c >= 0x20 && c < 0x7f) || c >= 0xc2) text++;
  if (head.length > 0 && text === head.length) return 'it is a text file';
  return undefined;
}

function readError(e: unknown, file: string): ModelFileError {
  const code = errno(e);
  const opts = { cause: e, code };
  switch (code) {
    case 'ENOENT':
      return new ModelFileError(`model file '${file}' does not exist`, file, opts);
    case 'EACCES':
    case 'EPERM':
      return new ModelFileError(`cannot read '${file}': permission denied`, file, opts);
    case 'EISDIR':
      return new ModelFileError(`'${file}' is a folder, not an ONNX model file`, file, opts);
    default:
      return new ModelFileError(`cannot read '${file}': ${(e as Error).message}`, file, opts);
  }
}

// ---------------------------------------------------------------------------------------------
// External data

export interface ExternalDataRef {
  location: string;
  offset: number;
  /** Absent: the tensor's byte length from its type and shape. */
  length?: number;
  checksum?: string;
}

function entry(entries: StringStringEntryProto[], key: string): string | undefined {
  return entries.find((e) => e.key === key)?.value;
}

function parseCount(tensor: TensorProto, key: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v.trim())) {
    throw new OnnxFormatError(`tensor '${tensor.name ?? ''}': external data ${key} '${v}' is not a non-negative integer`);
  }
  return Number(v.trim());
}

/** The external data reference of a tensor, or undefined if its data is inline. */
export function externalDataRef(tensor: TensorProto): ExternalDataRef | undefined {
  if (tensor.dataLocation !== DATA_LOCATION_EXTERNAL) return undefined;
  const location = entry(tensor.externalData, 'location');
  if (location === undefined || location === '') {
    throw new OnnxFormatError(`tensor '${tensor.name ?? ''}' has external data without a location`);
  }
  const ref: ExternalDataRef = { location, offset: parseCount(tensor, 'offset', entry(tensor.externalData, 'offset')) ?? 0 };
  const length = parseCount(tensor, 'length', entry(tensor.externalData, 'length'));
  if (length !== undefined) ref.length = length;
  const checksum = entry(tensor.externalData, 'checksum');
  if (checksum !== undefined) ref.checksum = checksum;
  return ref;
}

/** Distinct external data locations referenced by the model. */
export function externalFiles(model: ModelProto): string[] {
  const seen = new Set<string>();
  for (const t of allTensors(model)) {
    if (t.dataLocation !== DATA_LOCATION_EXTERNAL) continue;
    const loc = entry(t.externalData, 'location');
    if (loc !== undefined && loc !== '') seen.add(loc);
  }
  return [...seen];
}

function isInside(base: string, target: string): boolean {
  const rel = path.relative(base, target);
  return rel !== '' && rel !== '..' && !rel.startsWith(`..${path.sep}`) && !path.isAbsolute(rel);
}

/**
 * The absolute path of an external data file. Rejects absolute locations, locations that
 * climb out of the model's folder, and symbolic links that resolve outside it.
 */
export function resolveExternalPath(modelDir: string, location: string): string {
  const refuse = (message: string, reason: UnsafeLocationReason): never => {
    throw Object.assign(new ModelFileError(message, location), { reason });
  };
  if (location === '' || location.includes('\0')) {
    refuse(`external data path '${location}' is not a valid file name`, 'invalid');
  }
  if (path.isAbsolute(location) || path.win32.isAbsolute(location) || location.startsWith('\\')) {
    refuse(`external data path '${location}' is absolute; ONNX external data must be relative to the model folder`, 'absolute');
  }
  const base = path.resolve(modelDir);
  const target = path.resolve(base, location);
  if (!isInside(base, target)) {
    refuse(`external data path '${location}' resolves outside the model folder`, 'outside');
  }
  let realTarget: string | undefined;
  try {
    realTarget = realpathSync.native(target);
  } catch (e) {
    // A symbolic link loop or an unreadable folder on the way: refuse rather than follow.
    if (errno(e) === 'ELOOP') refuse(`external data path '${location}' is a symbolic link loop`, 'symlink');
    if (errno(e) !== 'ENOENT' && errno(e) !== 'ENOTDIR') {
      throw new ModelFileError(`cannot resolve external data path '${location}': ${(e as Error).message}`, location, { cause: e, code: errno(e) });
    }
  }
  if (realTarget !== undefined) {
    let realBase = base;
    try {
      realBase = realpathSync.native(base);
    } catch {
      // the folder itself vanished: keep the lexical path
    }
    if (!isInside(realBase, realTarget)) {
      refuse(`external data path '${location}' resolves outside the model folder (through a symbolic link)`, 'symlink');
    }
  }
  return target;
}

/** Why `resolveExternalPath` refused a location (on its ModelFileError as `reason`). */
export type UnsafeLocationReason = 'invalid' | 'absolute' | 'outside' | 'symlink';

/**
 * `resolveExternalPath` for a location read from a model: a refusal names the model (the file
 * at fault) and the tensor, never the path the location points at.
 */
function modelExternalPath(loaded: ModelLocation, ref: ExternalDataRef, tensor: TensorProto): string {
  try {
    return resolveExternalPath(loaded.dir, ref.location);
  } catch (e) {
    const reason = (e as { reason?: UnsafeLocationReason }).reason;
    if (reason === undefined) throw e;
    const who = `tensor '${tensor.name ?? ''}'`;
    const why = {
      invalid: `${who} has an external data location that is not a valid file name`,
      absolute: `${who} has an absolute external data location; ONNX external data must be relative to the model folder (refused, nothing was read)`,
      outside: `${who} has an external data location with '..' that leads outside the model folder (refused, nothing was read)`,
      symlink: `${who}: external data file '${ref.location}' is a symbolic link that leads outside the model folder (refused, nothing was read)`,
    }[reason];
    throw Object.assign(new ModelFileError(why, modelName(loaded), { cause: e }), { reason });
  }
}

export interface ExternalDataSummary {
  /** Files referenced, with their sizes. */
  files: { location: string; path: string; sizeBytes: number }[];
  /** Tensors stored externally. */
  tensorCount: number;
  /** Bytes those tensors occupy. */
  tensorBytes: number;
}

/** Bytes a tensor's external data occupies per its reference (length, else type and shape). */
function externalLength(tensor: TensorProto, ref: ExternalDataRef): number | undefined {
  return ref.length ?? tensorByteLength(tensor);
}

/**
 * Checks that every external data file exists, lies inside the model folder, and is long
 * enough for each tensor's offset + length. Throws the first problem found.
 */
export async function checkExternalData(loaded: ModelLocation & { model: ModelProto }): Promise<ExternalDataSummary> {
  const sizes = new Map<string, { path: string; sizeBytes: number }>();
  let tensorCount = 0;
  let tensorBytes = 0;
  for (const t of allTensors(loaded.model)) {
    const ref = externalDataRef(t);
    if (ref === undefined) continue;
    tensorCount++;
    const file = await externalFileSize(loaded, ref, t, sizes);
    const len = externalLength(t, ref);
    if (len === undefined) continue;
    tensorBytes += len;
    if (ref.length !== undefined) {
      const need = tensorByteLength(t);
      if (need !== undefined && need !== ref.length) {
        throw new ModelFileError(
          `tensor '${t.name ?? ''}': external data length ${ref.length} does not match the ${need} bytes its type and shape need`,
          modelName(loaded) ?? file.path,
        );
      }
    }
    if (!Number.isSafeInteger(ref.offset + len) || ref.offset + len > file.sizeBytes) {
      throw shortFile(ref, t, len, file.sizeBytes, modelName(loaded) ?? file.path);
    }
  }
  const files = [...sizes.entries()].map(([location, f]) => ({ location, ...f }));
  return { files, tensorCount, tensorBytes };
}

async function externalFileSize(
  loaded: ModelLocation,
  ref: ExternalDataRef,
  tensor: TensorProto,
  cache: Map<string, { path: string; sizeBytes: number }>,
): Promise<{ path: string; sizeBytes: number }> {
  const hit = cache.get(ref.location);
  if (hit !== undefined) return hit;
  const file = modelExternalPath(loaded, ref, tensor);
  try {
    const st = await stat(file);
    if (!st.isFile()) {
      throw new ModelFileError(`external data file '${ref.location}' of tensor '${tensor.name ?? ''}' is not a regular file`, modelName(loaded) ?? file);
    }
    const v = { path: file, sizeBytes: st.size };
    cache.set(ref.location, v);
    return v;
  } catch (e) {
    if (e instanceof ModelFileError) throw e;
    throw externalReadError(e, ref, tensor, file, loaded);
  }
}

function externalReadError(e: unknown, ref: ExternalDataRef, tensor: TensorProto, file: string, loaded: ModelLocation): ModelFileError {
  const code = errno(e);
  const who = `tensor '${tensor.name ?? ''}'${loaded.path === undefined ? '' : ` of ${path.basename(loaded.path)}`}`;
  if (code === 'ENOENT' || code === 'ENOTDIR') {
    return new ModelFileError(`external data file '${ref.location}' is missing (needed by ${who})`, modelName(loaded) ?? file, { cause: e, code });
  }
  return new ModelFileError(`cannot read external data file '${ref.location}': ${(e as Error).message}`, modelName(loaded) ?? file, {
    cause: e,
    code,
  });
}

function shortFile(ref: ExternalDataRef, tensor: TensorProto, len: number, size: number, file: string): ModelFileError {
  return new ModelFileError(
    `external data file '${ref.location}' is shorter than tensor '${tensor.name ?? ''}' needs: ` +
      `offset ${ref.offset} + length ${len} > file size ${size}`,
    file,
  );
}

/** Reads exactly `length` bytes at `offset` of an open file into `into` (or a new array). */
async function readExactly(fh: FileHandle, offset: number, length: number, into?: Uint8Array): Promise<number> {
  const buf = into ?? new Uint8Array(length);
  let done = 0;
  while (done < length) {
    const { bytesRead } = await fh.read(buf, done, length - done, offset + done);
    if (bytesRead === 0) break;
    done += bytesRead;
  }
  return done;
}

/**
 * The little-endian bytes of a tensor's values: rawData as is, typed fields packed, external
 * data read by offset (only the tensor's range, never the whole file).
 */
export async function readTensorBytes(loaded: ModelLocation, tensor: TensorProto): Promise<Uint8Array> {
  const ref = externalDataRef(tensor);
  if (ref === undefined) return inlineTensorBytes(tensor);
  const file = modelExternalPath(loaded, ref, tensor);
  let fh: FileHandle;
  try {
    fh = await open(file, 'r');
  } catch (e) {
    throw externalReadError(e, ref, tensor, file, loaded);
  }
  try {
    const size = (await fh.stat()).size;
    let len = externalLength(tensor, ref);
    if (len === undefined) len = Math.max(0, size - ref.offset);
    // Checked before allocating: a declared length may be absurd.
    if (!Number.isSafeInteger(ref.offset + len) || ref.offset + len > size) throw shortFile(ref, tensor, len, size, modelName(loaded) ?? file);
    const out = new Uint8Array(len);
    const got = await readExactly(fh, ref.offset, len, out);
    if (got < len) throw shortFile(ref, tensor, len, ref.offset + got, file);
    return out;
  } finally {
    await fh.close();
  }
}

/** A tensor's values as float64 (real numeric types), wherever they are stored. */
export async function tensorToFloat64(loaded: ModelLocation, tensor: TensorProto): Promise<Float64Array> {
  if (tensor.dataLocation !== DATA_LOCATION_EXTERNAL) return inlineTensorToFloat64(tensor);
  const bytes = await readTensorBytes(loaded, tensor);
  return bytesToFloat64(bytes, tensor.dataType, tensorElementCount(tensor), tensor.name);
}

// ---------------------------------------------------------------------------------------------
// Saving

export interface ExternalDataOptions {
  /** File name of the data file, relative to the output model's folder. */
  location: string;
  /** Initializers of at least this many bytes move to the data file (default 1024). */
  threshold?: number;
  /** Offsets of tensors in the data file are multiples of this (default 64). */
  align?: number;
}

export interface SaveOptions {
  /**
   * The model this one was derived from: it is never overwritten, and external data that the
   * model still references is read relative to its folder.
   */
  sourcePath?: string;
  /** Write large initializers to a separate data file. */
  externalData?: ExternalDataOptions;
  /** Cancels the write: temporary files are removed, an AbortError is thrown, nothing is replaced. */
  signal?: AbortSignal;
  /** Called after each chunk written (at most 4 MB), with the bytes written so far to both files. */
  onChunk?: (written: number) => void;
}

export interface SaveResult {
  path: string;
  /** Size of the written .onnx file. */
  modelBytes: number;
  externalDataPath?: string;
  externalDataBytes?: number;
  /** Tensors stored in the external data file. */
  externalTensors: number;
}

/** Human-readable cause of a failed write (exported for tests). */
export function writeErrorMessage(e: unknown, file: string): string {
  switch (errno(e)) {
    case 'ENOSPC':
      return `disk full writing ${file}`;
    case 'EDQUOT':
      return `disk quota exceeded writing ${file}`;
    case 'EFBIG':
      return `file size limit exceeded writing ${file}`;
    case 'EACCES':
    case 'EPERM':
      return `permission denied writing ${file}`;
    case 'EROFS':
      return `read-only file system: cannot write ${file}`;
    case 'ENOENT':
    case 'ENOTDIR':
      return `folder '${path.dirname(file)}' does not exist: cannot write ${file}`;
    case 'EISDIR':
      return `cannot write ${file}: a folder with that name exists`;
    default:
      return `cannot write ${file}: ${(e as Error).message}`;
  }
}

function samePath(a: string, b: string): boolean {
  if (path.resolve(a) === path.resolve(b)) return true;
  try {
    return realpathSync.native(a) === realpathSync.native(b);
  } catch {
    return false;
  }
}

function tempPathFor(target: string): string {
  return path.join(path.dirname(target), `.${path.basename(target)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
}

/** Where the bytes of a tensor moved to the data file come from. */
type ByteSource = { bytes: Uint8Array } | { file: string; offset: number; length: number; ref: ExternalDataRef; tensor: TensorProto };

interface Placement {
  source: ByteSource;
  offset: number;
  length: number;
}

const COPY_CHUNK = 4 * 1024 * 1024;

/**
 * Copy of `g` (and its subgraphs) with every initializer mapped by `init` and every other tensor
 * (sparse initializers, node attributes) mapped by `other`. Unchanged parts are shared.
 */
function mapGraphTensors(g: GraphProto, init: (t: TensorProto) => TensorProto, other: (t: TensorProto) => TensorProto): GraphProto {
  const sparse = (s: SparseTensorProto): SparseTensorProto => {
    const values = s.values && other(s.values);
    const indices = s.indices && other(s.indices);
    return values === s.values && indices === s.indices ? s : { ...s, values, indices };
  };
  const attribute = (a: AttributeProto): AttributeProto => {
    const t = a.t && other(a.t);
    const tensors = a.tensors.map(other);
    const sparseTensor = a.sparseTensor && sparse(a.sparseTensor);
    const sparseTensors = a.sparseTensors.map(sparse);
    const sub = a.g && mapGraphTensors(a.g, init, other);
    const graphs = a.graphs.map((sg) => mapGraphTensors(sg, init, other));
    const same = (x: unknown[], y: unknown[]): boolean => x.every((v, i) => v === y[i]);
    if (
      t === a.t &&
      sparseTensor === a.sparseTensor &&
      sub === a.g &&
      same(tensors, a.tensors) &&
      same(sparseTensors, a.sparseTensors) &&
      same(graphs, a.graphs)
    ) {
      return a;
    }
    const out: AttributeProto = { ...a, tensors, sparseTensors, graphs };
    if (t !== undefined) out.t = t;
    if (sparseTensor !== undefined) out.sparseTensor = sparseTensor;
    if (sub !== undefined) out.g = sub;
    return out;
  };
  const node = g.node.map((n): NodeProto => {
    const attrs = n.attribute.map(attribute);
    return attrs.every((a, i) => a === n.attribute[i]) ? n : { ...n, attribute: attrs };
  });
  return { ...g, node, initializer: g.initializer.map(init), sparseInitializer: g.sparseInitializer.map(sparse) };
}

/** `t` with its data moved to `location` at offset/length (inline data fields cleared). */
export function externalTensor(t: TensorProto, location: string, offset: number, length: number): TensorProto {
  const out: TensorProto = {
    ...t,
    floatData: [],
    int32Data: [],
    int64Data: [],
    doubleData: [],
    uint64Data: [],
    stringData: [],
    externalData: [
      { key: 'location', value: location },
      { key: 'offset', value: String(offset) },
      { key: 'length', value: String(length) },
    ],
    dataLocation: DATA_LOCATION_EXTERNAL,
  };
  delete out.rawData;
  return out;
}

/** Writes all of `bytes` at `position`, in chunks of at most 4 MB with `between` called after each. */
async function writeAll(fh: FileHandle, bytes: Uint8Array, position: number, between?: (pos: number) => void): Promise<void> {
  let done = 0;
  while (done < bytes.length) {
    const { bytesWritten } = await fh.write(bytes, done, Math.min(COPY_CHUNK, bytes.length - done), position + done);
    done += bytesWritten;
    between?.(position + done);
  }
}

/**
 * Writes `model` to `file` atomically: into a temporary file in the same folder, then renamed.
 * On failure nothing is left behind and the error names the file. With `externalData`, large
 * initializers go to a data file next to it; bytes already in another external file are copied
 * in chunks of a few MB.
 */
export async function saveModelFile(file: string, model: ModelProto, opts: SaveOptions = {}): Promise<SaveResult> {
  const target = path.resolve(file);
  const dir = path.dirname(target);
  const sourcePath = opts.sourcePath !== undefined ? path.resolve(opts.sourcePath) : undefined;
  const sourceDir = sourcePath !== undefined ? path.dirname(sourcePath) : undefined;
  if (sourcePath !== undefined && samePath(target, sourcePath)) {
    throw new ModelFileError(`refusing to overwrite the source model ${opts.sourcePath}; choose another output file`, file);
  }
  // External data still referenced by the model, relative to the source folder.
  const referenced = externalFiles(model);
  const referencedPaths =
    sourceDir !== undefined ? referenced.map((loc) => resolveExternalPath(sourceDir, loc)) : [];
  for (const p of referencedPaths) {
    if (samePath(target, p)) throw new ModelFileError(`refusing to overwrite external data file ${p} of the source model`, file);
  }

  let toWrite = model;
  let plan: { dataPath: string; location: string; placements: Placement[]; size: number } | undefined;
  if (opts.externalData !== undefined) {
    const { location } = opts.externalData;
    const threshold = opts.externalData.threshold ?? 1024;
    const align = Math.max(1, opts.externalData.align ?? 64);
    const dataPath = resolveExternalPath(dir, location);
    if (samePath(dataPath, target)) throw new ModelFileError(`external data file ${location} would replace the model file itself`, file);
    if (sourcePath !== undefined && samePath(dataPath, sourcePath)) {
      throw new ModelFileError(`refusing to overwrite the source model ${opts.sourcePath} with external data`, file);
    }
    for (const p of referencedPaths) {
      if (samePath(dataPath, p)) {
        throw new ModelFileError(
          `external data file '${location}' is the source model's own data file (${p}); choose another name`,
          file,
        );
      }
    }
    if (referenced.length > 0 && sourceDir === undefined) {
      throw new ModelFileError(`the model references external data; pass sourcePath so it can be found (writing ${file})`, file);
    }
    const placements: Placement[] = [];
    let size = 0;
    const place = (source: ByteSource, length: number): number => {
      const offset = Math.ceil(size / align) * align;
      placements.push({ source, offset, length });
      size = offset + length;
      return offset;
    };
    const move = (t: TensorProto): TensorProto => {
      const ref = externalDataRef(t);
      if (ref !== undefined) {
        const length = externalLength(t, ref);
        if (length === undefined) throw new OnnxFormatError(`tensor '${t.name ?? ''}': external data without a length`);
        const src = resolveExternalPath(sourceDir as string, ref.location);
        const offset = place({ file: src, offset: ref.offset, length, ref, tensor: t }, length);
        return externalTensor(t, location, offset, length);
      }
      if (bitsPerElement(t.dataType) === undefined) return t; // strings stay inline
      const length = t.rawData !== undefined ? t.rawData.length : (tensorByteLength(t) ?? 0);
      if (length < threshold) return t;
      const offset = place({ bytes: inlineTensorBytes(t) }, length);
      return externalTensor(t, location, offset, length);
    };
        // Initializers above the threshold move out; tensors already external elsewhere (other
    // initializers, attribute values) move too, since their old files may not sit beside the output.
    const moveExternal = (t: TensorProto): TensorProto => (t.dataLocation === DATA_LOCATION_EXTERNAL ? move(t) : t);
    if (model.graph !== undefined) toWrite = { ...model, graph: mapGraphTensors(model.graph, move, moveExternal) };
    plan = { dataPath, location, placements, size };
  } else if (referenced.length > 0 && sourceDir !== undefined && path.resolve(sourceDir) !== dir) {
    throw new ModelFileError(
      `the model keeps weights in external data next to ${opts.sourcePath}; ` +
        `writing it to another folder needs the externalData option (writing ${file})`,
      file,
    );
  }

  const { parts, length: modelBytes } = encodeModelParts(toWrite);
  const temps: string[] = [];
  let current = target;
  const signal = opts.signal;
  let written = 0;
  let lastPos = 0;
  const checkAbort = () => {
    if (signal?.aborted) throw new DOMException('The write was cancelled', 'AbortError');
  };
  const between = (pos?: number) => {
    if (pos !== undefined) {
      written += pos - lastPos;
      lastPos = pos;
      opts.onChunk?.(written);
    }
    checkAbort();
  };
  try {
    checkAbort();
    await removeStaleTemps(target);
    let dataTemp: string | undefined;
    if (plan !== undefined) {
      current = plan.dataPath;
      await removeStaleTemps(plan.dataPath);
      dataTemp = tempPathFor(plan.dataPath);
      temps.push(dataTemp);
      await writeDataFile(dataTemp, plan.placements, between);
      lastPos = 0;
    }
    current = target;
    const modelTemp = tempPathFor(target);
    temps.push(modelTemp);
    const fh = await open(modelTemp, 'wx');
    try {
      let pos = 0;
      for (const part of parts) {
        await writeAll(fh, part, pos, between);
        pos += part.length;
      }
      await fh.sync();
      checkAbort();
    } finally {
      await fh.close();
    }
    if (plan !== undefined && dataTemp !== undefined) {
      current = plan.dataPath;
      await rename(dataTemp, plan.dataPath);
      temps.splice(temps.indexOf(dataTemp), 1);
    }
    current = target;
    await rename(modelTemp, target);
    temps.splice(temps.indexOf(modelTemp), 1);
  } catch (e) {
    await Promise.all(temps.map((t) => unlink(t).catch(() => undefined)));
    if (e instanceof ModelFileError || e instanceof OnnxFormatError || (e as Error).name === 'AbortError') throw e;
    throw new ModelFileError(writeErrorMessage(e, current), current, { cause: e, code: errno(e) });
  }
  const result: SaveResult = { path: target, modelBytes, externalTensors: plan?.placements.length ?? 0 };
  if (plan !== undefined) {
    result.externalDataPath = plan.dataPath;
    result.externalDataBytes = plan.size;
  }
  return result;
}

/** Writes the data file: each tensor at its offset, zero padding between. */
async function writeDataFile(tempPath: string, placements: Placement[], between: (pos: number) => void): Promise<void> {
  const fh = await open(tempPath, 'wx');
  const sources = new Map<string, FileHandle>();
  let chunk: Uint8Array | undefined;
  try {
    for (const p of placements) {
      const src = p.source;
      if ('bytes' in src) {
        await writeAll(fh, src.bytes, p.offset, between);
        continue;
      }
      let in_ = sources.get(src.file);
      if (in_ === undefined) {
        try {
          in_ = await open(src.file, 'r');
        } catch (e) {
          throw externalReadError(e, src.ref, src.tensor, src.file, { dir: path.dirname(src.file) });
        }
        sources.set(src.file, in_);
      }
      chunk ??= new Uint8Array(Math.min(COPY_CHUNK, Math.max(1, p.length)));
      if (chunk.length < Math.min(COPY_CHUNK, p.length)) chunk = new Uint8Array(Math.min(COPY_CHUNK, p.length));
      for (let done = 0; done < p.length; ) {
        const n = Math.min(chunk.length, p.length - done);
        const view = chunk.subarray(0, n);
        const got = await readExactly(in_, src.offset + done, n, view);
        if (got < n) throw shortFile(src.ref, src.tensor, p.length, src.offset + done + got, src.file);
        await writeAll(fh, view, p.offset + done, between);
        done += n;
      }
    }
    await fh.sync();
  } finally {
    await fh.close();
    await Promise.all([...sources.values()].map((s) => s.close()));
  }
}
