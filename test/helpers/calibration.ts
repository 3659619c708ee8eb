// Shared setup for the calibration tests (test/unit/calibration-*.test.ts): fixture paths, a
// per-file temp dir, batch collection, CalibrationError checks and common input specs.
import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CalibrationError, type CalibrationBatch, type CalibrationSource, type InputSpec } from '../../src/engine/calibration/index';
import { FIXTURES } from './fixtures';

export { FIXTURES };
/** Calibration data fixtures (test/fixtures/data). */
export const DATA = join(FIXTURES, 'data');
/** Fixture models (test/fixtures/models). */
export const MODELS = join(FIXTURES, 'models');

export interface TempDir {
  /** The directory; set once the file's `before` hook has run. */
  readonly path: string;
  /** Write `data` to `name` inside the directory; returns the full path. */
  put(name: string, data: string | Uint8Array): Promise<string>;
}

/** A temp dir made before the file's tests and removed after them (call at module level). */
export function useTempDir(prefix: string): TempDir {
  let path = '';
  before(async () => {
    path = await mkdtemp(join(tmpdir(), prefix));
  });
  after(async () => {
    await rm(path, { recursive: true, force: true });
  });
  return {
    get path() {
      return path;
    },
    put: async (name, data) => {
      const p = join(path, name);
      await writeFile(p, data);
      return p;
    },
  };
}

export async function collect(src: CalibrationSource, batchSize: number, signal?: AbortSignal): Promise<CalibrationBatch[]> {
  const out: CalibrationBatch[] = [];
  for await (const b of src.batches(batchSize, signal)) out.push(b);
  return out;
}

/** All values of one input over all batches, as numbers (bigints converted). */
export function values(batches: CalibrationBatch[], input: string): number[] {
  const out: number[] = [];
  for (const b of batches) for (const v of b.feeds[input].data) out.push(Number(v));
  return out;
}

/** Assert that `p` rejects with a CalibrationError whose message matches `pattern` (and whose `file` is `file`, if given). */
export async function rejects(p: Promise<unknown>, pattern: RegExp, file?: string): Promise<CalibrationError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof CalibrationError, `expected CalibrationError, got ${(e as Error)?.stack ?? e}`);
    assert.match(e.message, pattern);
    if (file !== undefined) assert.equal(e.file, file);
    return e;
  }
  assert.fail(`expected a CalibrationError matching ${pattern}`);
}

/** BERT-style token inputs with a dynamic batch and sequence length. */
export const BERT: InputSpec[] = [
  { name: 'input_ids', dtype: 'int64', shape: ['batch', 'sequence'] },
  { name: 'attention_mask', dtype: 'int64', shape: ['batch', 'sequence'] },
];

/** The ViT fixture's input (1×16×16 digits, the fixture data's shape). */
export const VIT_DIGITS: InputSpec = { name: 'pixel_values', dtype: 'float32', shape: ['batch', 1, 16, 16] };
