// Synthetic calibration data: what BlockLens uses when the user gives no data.

import type { CalibrationInfo } from '../report/schema';
import { BaseSource } from './base';
import { allocate, floatToHalf, isFloat } from './dtype';
import { Rng } from '../random';
import { fixedBatchOf, isSymbolic, product, roleOf } from './shapes';
import { CalibrationError, throwIfAborted, type CalibrationBatch, type FeedData, type InputSpec, type OpenOptions, type SampleRange } from './types';

/**
 * Default sample count for synthetic data: 512 = two minibatches of 256, the batch size of the
 * unbiased minibatch CKA (DESIGN §2), and enough for stable linear CKA and BR on block widths of
 * a few hundred, while keeping a default run short. More random samples do not make the numbers
 * more meaningful: they describe the model's structure, not a task.
 */
export const SYNTHETIC_DEFAULT_SAMPLES = 512;
export const DEFAULT_SEQ_LEN = 128;
export const DEFAULT_IMAGE_SIZE = 224;
/** Token ids are drawn from [0, 100) when the caller knows no vocabulary size. */
export const FALLBACK_VOCAB = 100;
/** Largest number of values per sample of one input that synthetic data is made for (2^24). */
export const MAX_SYNTHETIC_VALUES = 2 ** 24;

const SEQ_NAME = /seq|token|length|^len|time|^t$|^s$|position/i;
const HW_NAME = /height|width|^h$|^w$|_h$|_w$|^img|^image/i;
const CHANNEL_NAME = /^(c|ch|chan|channels?|num_channels)$/i;

type Fill = { kind: 'normal' } | { kind: 'ones' } | { kind: 'zeros' } | { kind: 'positions' } | { kind: 'tokens'; vocab: number } | { kind: 'true' };

/** Per-sample dims (without the batch dim) for synthetic data, resolving symbolic dims. */
export function resolveSyntheticDims(spec: InputSpec, seqLen: number, imageSize: number): number[] {
  const s = spec.shape;
  const rank = s.length;
  // For unnamed dims of 4-D inputs, decide the layout from the fixed channel dim when there is one.
  let hwDims: number[] = [];
  if (rank === 4) {
    const ch = (d: unknown) => d === 1 || d === 3;
    hwDims = ch(s[3]) && !ch(s[1]) ? [1, 2] : [2, 3];
  }
  const out: number[] = [];
  for (let i = 1; i < rank; i++) {
    const d = s[i];
    if (!isSymbolic(d)) {
      out.push(d as number);
      continue;
    }
    const name = typeof d === 'string' ? d : '';
    if (name && CHANNEL_NAME.test(name)) out.push(3);
    else if (name && HW_NAME.test(name)) out.push(imageSize);
    else if (name && SEQ_NAME.test(name)) out.push(seqLen);
    else if (!name && rank === 4) out.push(hwDims.includes(i) ? imageSize : 3);
    else out.push(seqLen);
  }
  return out;
}

function fillFor(spec: InputSpec, opts: OpenOptions, notes: string[]): Fill {
  if (spec.dtype === 'bool') return { kind: 'true' };
  const role = roleOf(spec.name);
  if (isFloat(spec.dtype)) return role === 'mask' ? { kind: 'ones' } : { kind: 'normal' };
  if (role === 'mask') return { kind: 'ones' };
  if (role === 'type') return { kind: 'zeros' };
  if (role === 'position') return { kind: 'positions' };
  let vocab = opts.hints?.vocabSize?.[spec.name];
  if (vocab === undefined || !(vocab >= 1)) {
    vocab = FALLBACK_VOCAB;
    notes.push(`No vocabulary size is known for '${spec.name}', so its token ids are drawn from [0, ${FALLBACK_VOCAB}).`);
  }
  const cap = spec.dtype === 'uint8' ? 256 : spec.dtype === 'int8' ? 128 : spec.dtype === 'int16' ? 32768 : spec.dtype === 'uint16' ? 65536 : Infinity;
  return { kind: 'tokens', vocab: Math.min(Math.floor(vocab), cap) };
}

function describe(f: Fill): string {
  switch (f.kind) {
    case 'normal': return 'normal(0,1)';
    case 'ones': return 'ones';
    case 'zeros': return 'zeros';
    case 'positions': return 'positions 0..T-1';
    case 'tokens': return `uniform token ids in [0,${f.vocab})`;
    case 'true': return 'true';
  }
}

interface Plan {
  spec: InputSpec;
  dims: number[];
  per: number;
  fill: Fill;
}

export class SyntheticSource extends BaseSource {
  readonly info: CalibrationInfo;
  readonly samples: number;
  private readonly plans: Plan[];
  private readonly seed: number;

  constructor(opts: OpenOptions) {
    super();
    if (opts.labels) throw new CalibrationError(opts.labels, 'labels need calibration data: synthetic samples have no classes');
    const seqLen = opts.hints?.seqLen ?? DEFAULT_SEQ_LEN;
    const imageSize = opts.hints?.imageSize ?? DEFAULT_IMAGE_SIZE;
    this.seed = opts.seed ?? 0;
    const notes: string[] = [];
    this.plans = opts.inputs.map((spec) => {
      if (spec.shape.length === 0) throw new CalibrationError(undefined, `input '${spec.name}' is a scalar (rank 0); it has no batch dimension to fill`);
      const dims = resolveSyntheticDims(spec, seqLen, imageSize);
      const per = product(dims);
      // Declared dims come from the model file: absurd ones must not become allocations.
      if (!Number.isSafeInteger(per) || per > MAX_SYNTHETIC_VALUES) {
        throw new CalibrationError(
          opts.modelPath,
          `input '${spec.name}' declares ${dims.length ? dims.join('×') : 'no'} values per sample (${per} in all), more than the ${MAX_SYNTHETIC_VALUES} synthetic data is made for; check the model's declared input shape or pass --data`,
        );
      }
      return { spec, dims, per, fill: fillFor(spec, opts, notes) };
    });
    let samples = opts.samples ?? SYNTHETIC_DEFAULT_SAMPLES;
    if (!Number.isInteger(samples) || samples < 1) throw new CalibrationError(undefined, `samples must be a positive integer, got ${samples}`);
    const fixed = fixedBatchOf(opts.inputs);
    if (fixed !== undefined) {
      this.fixedBatchSize = fixed;
      if (samples % fixed !== 0) {
        notes.push(`The model fixes its batch dimension to ${fixed}, so samples were rounded down from ${samples} to ${samples - (samples % fixed)}.`);
        samples -= samples % fixed;
        if (samples === 0) throw new CalibrationError(undefined, `the model fixes its batch dimension to ${fixed}; ask for at least ${fixed} samples`);
      }
    }
    this.samples = samples;
    this.info = {
      source: 'synthetic',
      samples,
      seed: this.seed,
      batchSize: 0,
      preprocessing: { seqLen, imageSize, generator: 'xoshiro128** + Box–Muller, one stream per (input, sample id)' },
      inputs: this.plans.map((p) => ({ name: p.spec.name, dtype: p.spec.dtype, shape: [samples, ...p.dims], fill: describe(p.fill) })),
      note: [
        'Synthetic data (random inputs): it shows the model\'s structure — how much each block changes what flows through it — not how the model behaves on a real task. Give calibration data from your task to judge what can be removed.',
        ...notes,
      ].join(' '),
    };
  }

  protected async *produce(batchSize: number, range: SampleRange, signal?: AbortSignal): AsyncGenerator<CalibrationBatch> {
    for (let start = range.start; start < range.end; start += batchSize) {
      throwIfAborted(signal);
      const b = Math.min(batchSize, range.end - start);
      const feeds: CalibrationBatch['feeds'] = {};
      this.plans.forEach((p, i) => {
        feeds[p.spec.name] = { dtype: p.spec.dtype, dims: [b, ...p.dims], data: generate(p, i, b, start, this.seed) };
      });
      yield { feeds, size: b, first: start };
    }
  }
}

/**
 * Samples first … first + b − 1 of input `inputIndex`. Sample `id` draws from its own stream
 * Rng(seed, inputIndex, 'sample', id), so any range of ids is generated without the ones before.
 */
function generate(p: Plan, inputIndex: number, b: number, first: number, seed: number): FeedData {
  const n = b * p.per;
  const dtype = p.spec.dtype;
  const out = allocate(dtype, n);
  const lastDim = p.dims.length ? p.dims[p.dims.length - 1] : 1;
  const big = out instanceof BigInt64Array || out instanceof BigUint64Array;
  for (let s = 0; s < b; s++) {
    const rng = p.fill.kind === 'normal' || p.fill.kind === 'tokens' ? new Rng(seed, inputIndex, 'sample', first + s) : undefined;
    const valueAt = (i: number): number => {
      switch (p.fill.kind) {
        case 'normal': return rng!.normal();
        case 'ones': case 'true': return 1;
        case 'zeros': return 0;
        case 'positions': return i % lastDim;
        case 'tokens': return rng!.int(p.fill.vocab);
      }
    };
    const base = s * p.per;
    if (big) {
      for (let i = 0; i < p.per; i++) (out as BigInt64Array)[base + i] = BigInt(valueAt(i));
    } else if (dtype === 'float16') {
      for (let i = 0; i < p.per; i++) out[base + i] = floatToHalf(valueAt(i));
    } else {
      for (let i = 0; i < p.per; i++) out[base + i] = valueAt(i);
    }
  }
  return out;
}
