// Sources backed by stored arrays: one .npy, an .npz, or a folder of <input>.npy files.

import { basename } from 'node:path';
import type { CalibrationInfo } from '../report/schema';
import { BaseSource } from './base';
import { castData, castProblem, viewAs } from './dtype';
import { classCount, readLabels, readLabelsFor } from './labels';
import { swapToLittle, type RowReader, type StoredArray } from './npy';
import { sortedSubset } from '../random';
import { requestedCount, roundToFixedBatch } from './sample-count';
import { fixedBatchOf, formatModelShape, formatShape, product, shapeProblem, unravel } from './shapes';
import { CalibrationError, throwIfAborted, type CalibrationBatch, type InputSpec, type OpenOptions, type SampleRange } from './types';

/** Keys of an .npz that hold labels when they are not model inputs. */
export const NPZ_LABEL_KEYS = ['labels', 'label', 'y', 'targets', 'target'];

interface Binding {
  spec: InputSpec;
  arr: StoredArray;
  perDims: number[];
  per: number;
}

export type ArrayKind = 'npy' | 'npz' | 'npy-folder';

export async function openArraySource(
  kind: ArrayKind,
  path: string,
  arrays: Map<string, StoredArray>,
  opts: OpenOptions,
): Promise<ArraySource> {
  const name = basename(path);
  const notes: string[] = [];
  const symbols = new Map<string, number>();
  const inputs = opts.inputs;
  const bindings: Binding[] = [];
  let labelArray: StoredArray | undefined;

  if (kind === 'npy') {
    const arr = [...arrays.values()][0];
    if (inputs.length !== 1) {
      throw new CalibrationError(
        path,
        `${name} holds one array but the model has ${inputs.length} inputs (${inputs.map((i) => i.name).join(', ')}); ` +
          `give an .npz with one array per input (np.savez('data.npz', ${inputs.map((i) => `${i.name}=...`).join(', ')})) or a folder of <input>.npy files`,
      );
    }
    bindings.push(bind(inputs[0], arr));
  } else {
    const inputNames = new Set(inputs.map((i) => i.name));
    const labelKey = NPZ_LABEL_KEYS.find((k) => arrays.has(k) && !inputNames.has(k));
    const dataKeys = [...arrays.keys()].filter((k) => k !== labelKey);
    const what = kind === 'npz' ? name : `folder ${name}`;
    for (const spec of inputs) {
      let arr = arrays.get(spec.name);
      if (!arr && inputs.length === 1 && dataKeys.length === 1) {
        arr = arrays.get(dataKeys[0])!;
        notes.push(`The only array, '${dataKeys[0]}', was used for input '${spec.name}'.`);
      }
      if (!arr) {
        const has = [...arrays.keys()];
        throw new CalibrationError(
          path,
          `${what} has no array for input '${spec.name}' (it has: ${has.length ? has.join(', ') : 'nothing'}); ` +
            (kind === 'npz' ? `save it as np.savez('${name}', ${spec.name}=...)` : `add ${spec.name}.npy`),
        );
      }
      bindings.push(bind(spec, arr));
    }
    if (labelKey && !opts.labels) labelArray = arrays.get(labelKey);
  }

  // Sample counts must agree across inputs.
  const total = bindings[0].arr.header.shape[0];
  for (const b of bindings) {
    if (b.arr.header.shape[0] !== total) {
      throw new CalibrationError(
        path,
        `${name}: inputs have different sample counts (${bindings.map((x) => `${x.spec.name}: ${x.arr.header.shape[0]}`).join(', ')})`,
      );
    }
  }
  if (total === 0) throw new CalibrationError(path, `${name} has no samples (its first dimension is 0)`);

  // Labels
  let allLabels: Int32Array | undefined;
  let labelSource: string | undefined;
  if (opts.labels) {
    allLabels = await readLabelsFor(opts.labels, name, total);
    labelSource = opts.labels;
  } else if (labelArray) {
    try {
      allLabels = await readLabels(labelArray);
    } catch (e) {
      throw e instanceof CalibrationError ? new CalibrationError(path, e.message) : e;
    }
    labelSource = labelArray.label;
    if (allLabels.length !== total) {
      throw new CalibrationError(path, `${labelArray.label} has ${allLabels.length} labels but ${name} has ${total} samples; give one label per sample`);
    }
  }

  // Sample count and selection
  const count = { path, name, unit: 'samples', total, samples: opts.samples, maxSamples: opts.maxSamples };
  const samples = roundToFixedBatch(inputs, requestedCount(count, notes), count, notes);
  const seed = opts.seed ?? 0;
  const selection = sortedSubset(total, samples, seed);

  const info: CalibrationInfo = {
    source: kind,
    path,
    samples,
    seed,
    batchSize: 0,
    preprocessing: {
      selection: samples < total ? `seeded random subset of ${samples} of ${total} samples, kept in file order` : `all ${total} samples in file order`,
      arrays: Object.fromEntries(
        bindings.map((b) => [
          b.spec.name,
          {
            array: b.arr.label,
            stored: b.arr.header.descr,
            cast: b.arr.header.dtype === b.spec.dtype ? 'none' : `${b.arr.header.dtype} → ${b.spec.dtype}`,
            ...(b.arr.header.fortranOrder && b.arr.header.shape.length > 1 ? { fortranOrder: 'transposed to C order' } : {}),
          },
        ]),
      ),
    },
    inputs: bindings.map((b) => ({ name: b.spec.name, dtype: b.spec.dtype, shape: [samples, ...b.perDims] })),
  };
  let labels: Int32Array | undefined;
  if (allLabels) {
    labels = Int32Array.from(selection, (i) => allLabels![i]);
    info.labels = { source: labelSource!, classes: classCount(allLabels) };
  }
  if (notes.length) info.note = notes.join(' ');
  const src = new ArraySource(info, samples, bindings, selection, labels);
  const fixed = fixedBatchOf(inputs);
  if (fixed !== undefined) src.fixedBatchSize = fixed;
  return src;

  function bind(spec: InputSpec, arr: StoredArray): Binding {
    const h = arr.header;
    const problem = castProblem(h.dtype, spec.dtype);
    if (problem) {
      throw new CalibrationError(arr.file, `${arr.label}: input '${spec.name}' expects ${spec.dtype}, found ${h.dtype} data (${h.descr}): ${problem}`);
    }
    if (h.shape.length === 0) {
      throw new CalibrationError(arr.file, `${arr.label}: input '${spec.name}' expects shape ${formatModelShape(spec)}, found a scalar (shape ()); the first dimension must count samples`);
    }
    const sp = shapeProblem(spec, h.shape, symbols);
    if (sp?.startsWith('symbol:')) {
      const [, sym, prev] = sp.split(':');
      throw new CalibrationError(
        arr.file,
        `${arr.label}: input '${spec.name}' has dimension '${sym}' = ${h.shape[spec.shape.indexOf(sym)]} but another input has it = ${prev}; inputs sharing a named dimension must agree`,
      );
    }
    if (sp) {
      throw new CalibrationError(arr.file, `${arr.label}: input '${spec.name}' expects shape ${formatModelShape(spec)}, found ${formatShape(h.shape)}`);
    }
    const perDims = h.shape.slice(1);
    return { spec, arr, perDims, per: product(perDims) };
  }
}

export class ArraySource extends BaseSource {
  constructor(
    readonly info: CalibrationInfo,
    readonly samples: number,
    private readonly bindings: Binding[],
    private readonly selection: number[],
    private readonly labels: Int32Array | undefined,
  ) {
    super();
  }

  protected async *produce(batchSize: number, range: SampleRange, signal?: AbortSignal): AsyncGenerator<CalibrationBatch> {
    const readers: RowReader[] = [];
    try {
      for (const b of this.bindings) readers.push(await b.arr.openReader());
      for (let start = range.start; start < range.end; start += batchSize) {
        throwIfAborted(signal);
        const rows = this.selection.slice(start, Math.min(range.end, start + batchSize));
        const feeds: CalibrationBatch['feeds'] = {};
        for (let k = 0; k < this.bindings.length; k++) {
          const b = this.bindings[k];
          let bytes: Uint8Array;
          try {
            bytes = await readers[k].read(rows);
          } catch (e) {
            throw new CalibrationError(b.arr.file, `${b.arr.label}: cannot read samples ${rows[0]}..${rows[rows.length - 1]}: ${(e as Error).message}`);
          }
          throwIfAborted(signal);
          swapToLittle(bytes, b.arr.header);
          const raw = viewAs(b.arr.header.dtype, bytes);
          const data = castData(raw, b.arr.header.dtype, b.spec.dtype, (flat, problem) => {
            const sample = rows[Math.floor(flat / Math.max(1, b.per))];
            const elem = unravel(flat % Math.max(1, b.per), b.perDims);
            const where = `sample ${sample}${b.perDims.length ? `, element [${elem.join(',')}]` : ''}`;
            const msg = /^(NaN|[+-]Inf)$/.test(problem)
              ? `${b.arr.label}: input '${b.spec.name}' has ${problem} at ${where} (first bad value); calibration data must be finite`
              : `${b.arr.label}: input '${b.spec.name}' at ${where}: ${problem}`;
            throw new CalibrationError(b.arr.file, msg);
          });
          feeds[b.spec.name] = { dtype: b.spec.dtype, dims: [rows.length, ...b.perDims], data };
        }
        const batch: CalibrationBatch = { feeds, size: rows.length, first: start };
        if (this.labels) batch.labels = this.labels.slice(start, start + rows.length);
        yield batch;
      }
    } finally {
      for (const r of readers) await r.close().catch(() => undefined);
    }
  }
}
