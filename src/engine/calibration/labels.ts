// Integer class labels, one per sample.

import { basename } from 'node:path';
import { isInteger, viewAs } from './dtype';
import { openNpyFile, swapToLittle, type StoredArray } from './npy';
import { formatShape } from './shapes';
import { CalibrationError } from './types';

/** Read a whole labels array (shape [N] or [N,1], integer dtype, values ≥ 0). */
export async function readLabels(arr: StoredArray): Promise<Int32Array> {
  const h = arr.header;
  if (!isInteger(h.dtype)) {
    throw new CalibrationError(arr.file, `${arr.label}: labels must be integers, found ${h.dtype} (${h.descr})`);
  }
  if (!(h.shape.length === 1 || (h.shape.length === 2 && h.shape[1] === 1))) {
    throw new CalibrationError(arr.file, `${arr.label}: labels must have shape [N] or [N,1], found ${formatShape(h.shape)}`);
  }
  const n = h.shape[0];
  const reader = await arr.openReader();
  let bytes: Uint8Array;
  try {
    bytes = await reader.read(Array.from({ length: n }, (_, i) => i));
  } finally {
    await reader.close();
  }
  swapToLittle(bytes, h);
  const src = viewAs(h.dtype, bytes);
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const v = Number(src[i]);
    if (v < 0 || v > 2147483647) {
      throw new CalibrationError(arr.file, `${arr.label}: label ${v} at index ${i} is not a class index (labels must be 0..C-1)`);
    }
    out[i] = v;
  }
  return out;
}

export async function readLabelsFile(path: string): Promise<Int32Array> {
  return readLabels(await openNpyFile(path));
}

/** Reads a `--labels` file that must hold one label for each of `sampleCount` samples of `dataName`. */
export async function readLabelsFor(labelsPath: string, dataName: string, sampleCount: number): Promise<Int32Array> {
  const labels = await readLabelsFile(labelsPath);
  if (labels.length !== sampleCount) throw labelsCountProblem(labelsPath, labels.length, dataName, sampleCount);
  return labels;
}

export function classCount(labels: Int32Array): number {
  let max = -1;
  for (const v of labels) if (v > max) max = v;
  return max + 1;
}

export function labelsCountProblem(labelsPath: string, labelCount: number, dataName: string, sampleCount: number): CalibrationError {
  return new CalibrationError(
    labelsPath,
    `${basename(labelsPath)} has ${labelCount} labels but ${dataName} has ${sampleCount} samples; give one label per sample`,
  );
}
