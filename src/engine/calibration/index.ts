// Calibration data for BlockLens: open a source from what the user gave (or nothing).
//
//   synthetic      no data: N(0,1) floats, token ids in [0, vocab), masks of ones...
//   .npy           one array for a one-input model
//   .npz / folder  one array per input name (np.savez / np.savez_compressed / <input>.npy files)
//   image folder   png/jpeg/webp, flat or class-per-subfolder (labels)
//   .jsonl         per line: {"input_ids": [...], ...} or {"text": "..."} (with a tokenizer)
//   .txt           one text per line, tokenized with tokenizer.json

import { readdir, stat } from 'node:fs/promises';
import { basename, extname, join, resolve } from 'node:path';
import { openArraySource } from './array-source';
import { folderHasImages, ImageSource, isImageFile } from './images';
import { openNpyFile, type StoredArray } from './npy';
import { openNpz } from './npz';
import { SyntheticSource } from './synthetic';
import { TokenSource } from './tokens';
import { CalibrationError, type CalibrationSource, type OpenOptions } from './types';

export * from './types';
export { encodeNpy, npyHeaderBytes, parseNpyHeader, type NpyHeader } from './npy';
export { SYNTHETIC_DEFAULT_SAMPLES, DEFAULT_SEQ_LEN, DEFAULT_IMAGE_SIZE, FALLBACK_VOCAB } from './synthetic';
export { IMAGENET_MEAN, IMAGENET_STD, IMAGE_EXTENSIONS } from './images';
export { halfToFloat, floatToHalf } from './dtype';
export { SampleHasher } from './base';

export async function openCalibration(opts: OpenOptions): Promise<CalibrationSource> {
  if (!opts.inputs.length) throw new CalibrationError(undefined, 'the model has no inputs to feed');
  if (opts.seed !== undefined && !Number.isSafeInteger(opts.seed)) {
    throw new CalibrationError(undefined, `seed must be an integer, got ${opts.seed}`);
  }
  if (!opts.data) return new SyntheticSource(opts);

  const path = opts.data;
  const name = basename(path);
  let isDir: boolean;
  try {
    isDir = (await stat(path)).isDirectory();
  } catch {
    throw new CalibrationError(path, `${path}: file not found`);
  }

  if (isDir) {
    const entries = await readdir(path, { withFileTypes: true });
    const npys = entries.filter((e) => e.isFile() && e.name.toLowerCase().endsWith('.npy')).map((e) => e.name).sort();
    if (npys.length) {
      const arrays = new Map<string, StoredArray>();
      const labelsFile = opts.labels;
      for (const f of npys) {
        const full = join(path, f);
        if (labelsFile && resolve(full) === resolve(labelsFile)) continue;
        arrays.set(f.slice(0, -4), await openNpyFile(full));
      }
      return openArraySource('npy-folder', path, arrays, opts);
    }
    if (await folderHasImages(path)) return ImageSource.open(path, opts);
    throw new CalibrationError(path, `${name}: folder has neither <input>.npy files nor images (${['.png', '.jpg', '.jpeg', '.webp'].join(', ')})`);
  }

  const ext = extname(path).toLowerCase();
  switch (ext) {
    case '.npy':
      return openArraySource('npy', path, new Map([[name.slice(0, -4), await openNpyFile(path)]]), opts);
    case '.npz':
      return openArraySource('npz', path, await openNpz(path), opts);
    case '.jsonl':
    case '.ndjson':
      return TokenSource.open('jsonl', path, opts);
    case '.txt':
      return TokenSource.open('text', path, opts);
    default:
      if (isImageFile(name)) {
        throw new CalibrationError(path, `${name}: give the folder that holds the images, not one image`);
      }
      throw new CalibrationError(
        path,
        `${name}: unsupported calibration data; give .npy, .npz, a folder of <input>.npy files, an image folder, .jsonl or .txt`,
      );
  }
}
