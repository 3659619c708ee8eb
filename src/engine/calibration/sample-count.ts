// How many samples a file-backed source yields: the requested count (an error when the file
// holds fewer), else all of them up to the default cap, then rounded down to a multiple of a
// batch dimension the model fixes. Every adjustment is explained in `notes`.
import { fixedBatchOf } from './shapes';
import { CalibrationError, type InputSpec } from './types';

export interface SampleCountRequest {
  /** File or folder, for error messages. */
  path: string | undefined;
  /** Display name of the source, e.g. the file's base name. */
  name: string;
  /** What the source holds: 'samples', 'lines', 'images'. */
  unit: string;
  total: number;
  samples?: number;
  maxSamples?: number;
}

/** Validates `samples` and returns how many to take before any batch rounding. */
export function requestedCount(r: SampleCountRequest, notes: string[]): number {
  if (r.samples !== undefined) {
    if (!Number.isInteger(r.samples) || r.samples < 1) throw new CalibrationError(r.path, `samples must be a positive integer, got ${r.samples}`);
    if (r.samples > r.total) {
      throw new CalibrationError(r.path, `${r.name} has ${r.total} ${r.unit} but ${r.samples} were requested; ask for at most ${r.total} (or leave the count out to use all)`);
    }
    return r.samples;
  }
  if (r.maxSamples !== undefined && r.total > r.maxSamples) {
    notes.push(`Used ${r.maxSamples} of the ${r.total} ${r.unit} (the default cap); pass a sample count to use more.`);
    return r.maxSamples;
  }
  return r.total;
}

/** Rounds `samples` down to a multiple of the model's fixed batch dimension, if it has one. */
export function roundToFixedBatch(inputs: readonly InputSpec[], samples: number, r: Pick<SampleCountRequest, 'path' | 'name' | 'unit'>, notes: string[]): number {
  const fixed = fixedBatchOf(inputs);
  if (fixed === undefined || samples % fixed === 0) return samples;
  const kept = samples - (samples % fixed);
  if (kept === 0) throw new CalibrationError(r.path, `the model fixes its batch dimension to ${fixed} but ${r.name} has only ${samples} ${r.unit}`);
  notes.push(`The model fixes its batch dimension to ${fixed}, so samples were rounded down from ${samples} to ${kept}.`);
  return kept;
}
