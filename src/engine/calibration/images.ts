// Image folders: png / jpeg / webp decoded with sharp, preprocessed to the model's image input.
//
// Layout: either class subfolders (<root>/<class>/**/<image>; sorted class names → labels
// 0..C-1) or a flat folder (no labels unless a labels .npy is given, one per image in sorted
// path order).
// Order: file paths are sorted, then visited in a seeded random order; the images fed are the
// first `samples` readable ones in that order. So a subset is a seeded random subset, and
// batches mix classes (a class-sorted order would make every minibatch one class).
// Every image visited is decoded once up front to find unreadable files before any batch is
// fed (so a bad file is reported with all the others, and skipping it keeps the sample count
// known); images are decoded again, with preprocessing, as batches stream.

import { readdir } from 'node:fs/promises';
import { basename, join, relative, sep } from 'node:path';
import sharp from 'sharp';
import type { CalibrationInfo } from '../report/schema';
import { BaseSource } from './base';
import { floatToHalf, roundHalfEven } from './dtype';
import { classCount, readLabelsFor } from './labels';
import { seededPermutation } from '../random';
import { requestedCount, roundToFixedBatch } from './sample-count';
import { fixedBatchOf, formatModelShape } from './shapes';
import { DEFAULT_IMAGE_SIZE } from './synthetic';
import { abortError, CalibrationError, throwIfAborted, type CalibrationBatch, type FeedData, type ImageOptions, type InputSpec, type OpenOptions, type SampleRange } from './types';

export const IMAGE_EXTENSIONS = ['.png', '.jpg', '.jpeg', '.webp'];
export const IMAGENET_MEAN = [0.485, 0.456, 0.406];
export const IMAGENET_STD = [0.229, 0.224, 0.225];
const DEFAULT_CONCURRENCY = 4;
const MAX_LISTED_BAD = 5;

export function isImageFile(name: string): boolean {
  const lower = name.toLowerCase();
  return !name.startsWith('.') && IMAGE_EXTENSIONS.some((e) => lower.endsWith(e));
}

async function listImages(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string) => {
    const entries = await readdir(d, { withFileTypes: true });
    for (const e of entries) {
      if (e.name.startsWith('.')) continue;
      const p = join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else if (e.isFile() && isImageFile(e.name)) out.push(p);
    }
  };
  await walk(dir);
  return out;
}

const byCodeUnit = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** Whether a folder looks like an image folder (has images at the top level or one below). */
export async function folderHasImages(dir: string): Promise<boolean> {
  const entries = await readdir(dir, { withFileTypes: true });
  if (entries.some((e) => e.isFile() && isImageFile(e.name))) return true;
  for (const e of entries) {
    if (e.isDirectory() && !e.name.startsWith('.')) {
      const sub = await readdir(join(dir, e.name), { withFileTypes: true });
      if (sub.some((s) => s.isFile() && isImageFile(s.name))) return true;
    }
  }
  return false;
}

interface Geometry {
  layout: 'nchw' | 'nhwc' | 'nhw';
  channels: 1 | 3;
  height: number;
  width: number;
}

/** Work out layout, channels and H×W from the model input and the options. */
export function imageGeometry(spec: InputSpec, img: ImageOptions, hintSize: number | undefined): Geometry {
  const s = spec.shape;
  const num = (d: unknown): number | undefined => (typeof d === 'number' && d > 0 ? d : undefined);
  const isCh = (d: unknown) => d === 1 || d === 3;
  let layout: Geometry['layout'];
  if (s.length === 3) layout = 'nhw';
  else if (s.length === 4) {
    const want = img.layout ?? 'auto';
    if (want !== 'auto') layout = want;
    else if (isCh(s[1])) layout = 'nchw';
    else if (isCh(s[3])) layout = 'nhwc';
    else if (num(s[1]) === undefined && num(s[3]) === undefined) layout = 'nchw';
    else {
      throw new CalibrationError(undefined, `input '${spec.name}' has shape ${formatModelShape(spec)}: no channel dimension of 1 or 3 next to the batch dimension or at the end; set image.layout if it is an image`);
    }
  } else {
    throw new CalibrationError(undefined, `an image folder needs an image input of shape [N,C,H,W] or [N,H,W,C]; input '${spec.name}' has shape ${formatModelShape(spec)}`);
  }
  const cDim = layout === 'nchw' ? s[1] : layout === 'nhwc' ? s[3] : 1;
  const hDim = layout === 'nhwc' || layout === 'nhw' ? s[1] : s[2];
  const wDim = layout === 'nhwc' || layout === 'nhw' ? s[2] : s[3];
  let channels: 1 | 3;
  const declaredC = num(cDim);
  if (declaredC !== undefined) {
    if (declaredC !== 1 && declaredC !== 3) {
      throw new CalibrationError(undefined, `input '${spec.name}' (shape ${formatModelShape(spec)}, ${layout.toUpperCase()}) has ${declaredC} channels; images give 1 (grayscale) or 3 (RGB)`);
    }
    channels = declaredC;
    const color = img.color ?? 'auto';
    if ((color === 'rgb' && channels !== 3) || (color === 'grayscale' && channels !== 1)) {
      throw new CalibrationError(undefined, `image.color is '${color}' but input '${spec.name}' has ${channels} channel${channels === 1 ? '' : 's'}`);
    }
  } else {
    channels = img.color === 'grayscale' ? 1 : 3;
  }
  const fallback = hintSize ?? DEFAULT_IMAGE_SIZE;
  let height = num(hDim);
  let width = num(wDim);
  if (img.size) {
    const [h, w] = img.size;
    if ((height !== undefined && height !== h) || (width !== undefined && width !== w)) {
      throw new CalibrationError(undefined, `image.size is ${h}×${w} but input '${spec.name}' declares ${height ?? '?'}×${width ?? '?'} (shape ${formatModelShape(spec)})`);
    }
    height ??= h;
    width ??= w;
  }
  return { layout, channels, height: height ?? fallback, width: width ?? fallback };
}

interface Plan {
  spec: InputSpec;
  geo: Geometry;
  crop: 'center' | 'none';
  resize?: number;
  kernel: 'nearest' | 'linear' | 'cubic' | 'lanczos3';
  raw: boolean; // uint8 input: feed 0..255 values unchanged
  scale: '0-1' | '0-255';
  mean: number[];
  std: number[];
}

/**
 * Decode one image to H×W×3 (RGB, uint8) after resize and crop. `resize` is the shorter side
 * before a center crop (torchvision's Resize(int) + CenterCrop); without it the image is scaled
 * just enough to cover H×W.
 */
async function decodeRgb(file: string, plan: Plan): Promise<Uint8Array> {
  const { height: H, width: W } = plan.geo;
  const img = sharp(file);
  const meta = await img.metadata();
  const h = meta.height;
  const w = meta.width;
  if (!h || !w) throw new Error('image has no size');
  let p = img.removeAlpha().toColourspace('srgb');
  if (plan.crop === 'none') {
    if (h !== H || w !== W) p = p.resize(W, H, { fit: 'fill', kernel: plan.kernel });
  } else {
    let nh: number;
    let nw: number;
    if (plan.resize !== undefined) {
      const r = plan.resize;
      if (h <= w) {
        nh = r;
        nw = Math.floor((r * w) / h);
      } else {
        nw = r;
        nh = Math.floor((r * h) / w);
      }
      if (nh < H || nw < W) throw new CalibrationError(file, `image.resize ${r} makes ${basename(file)} ${nw}×${nh}, smaller than the ${W}×${H} crop`);
    } else {
      const scale = Math.max(H / h, W / w);
      nh = Math.max(H, Math.round(h * scale));
      nw = Math.max(W, Math.round(w * scale));
    }
    if (nh !== h || nw !== w) p = p.resize(nw, nh, { fit: 'fill', kernel: plan.kernel });
    if (nh !== H || nw !== W) {
      p = p.extract({ left: roundHalfEven((nw - W) / 2), top: roundHalfEven((nh - H) / 2), width: W, height: H });
    }
  }
  const { data, info } = await p.raw().toBuffer({ resolveWithObject: true });
  if (info.channels !== 3 || info.width !== W || info.height !== H || data.length !== W * H * 3) {
    throw new Error(`decoder returned ${info.width}×${info.height}×${info.channels}, expected ${W}×${H}×3`);
  }
  return data;
}

/** Write one decoded image into the batch buffer at sample `k`. */
function writeSample(rgb: Uint8Array, plan: Plan, out: FeedData, k: number, dtype: string): void {
  const { height: H, width: W, channels: C, layout } = plan.geo;
  const hw = H * W;
  const base = k * hw * C;
  const div = plan.scale === '0-1' ? 255 : 1;
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      const pix = y * W + x;
      const r = rgb[pix * 3];
      const g = rgb[pix * 3 + 1];
      const b = rgb[pix * 3 + 2];
      for (let c = 0; c < C; c++) {
        // grayscale: ITU-R 601-2 luma in PIL's fixed point (what Image.convert('L') computes)
        const v8 = C === 1 ? (r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16 : c === 0 ? r : c === 1 ? g : b;
        const idx = layout === 'nchw' ? base + c * hw + pix : base + pix * C + c;
        if (plan.raw) {
          (out as Uint8Array)[idx] = v8;
          continue;
        }
        const v = (v8 / div - plan.mean[c]) / plan.std[c];
        if (dtype === 'float16') (out as Uint16Array)[idx] = floatToHalf(v);
        else (out as Float32Array)[idx] = v;
      }
    }
  }
}

export class ImageSource extends BaseSource {
  readonly info: CalibrationInfo;
  readonly samples: number;

  private constructor(
    info: CalibrationInfo,
    private readonly files: string[],
    private readonly labels: Int32Array | undefined,
    private readonly plan: Plan,
    private readonly concurrency: number,
  ) {
    super();
    this.info = info;
    this.samples = files.length;
  }

  static async open(dir: string, opts: OpenOptions): Promise<ImageSource> {
    const name = basename(dir);
    const img = opts.image ?? {};
    if (opts.inputs.length !== 1) {
      throw new CalibrationError(dir, `${name}: an image folder feeds one image input, but the model has ${opts.inputs.length} inputs (${opts.inputs.map((i) => i.name).join(', ')})`);
    }
    const spec = opts.inputs[0];
    let geo: Geometry;
    try {
      geo = imageGeometry(spec, img, opts.hints?.imageSize);
    } catch (e) {
      throw e instanceof CalibrationError ? new CalibrationError(dir, `${name}: ${e.message}`) : e;
    }
    const plan = makePlan(spec, geo, img, dir);

    // Files and classes
    const entries = await readdir(dir, { withFileTypes: true });
    const topImages = entries.filter((e) => e.isFile() && isImageFile(e.name)).map((e) => join(dir, e.name));
    const classDirs = entries.filter((e) => e.isDirectory() && !e.name.startsWith('.')).map((e) => e.name).sort(byCodeUnit);
    const perClass: string[][] = [];
    const classes: string[] = [];
    for (const c of classDirs) {
      const files = await listImages(join(dir, c));
      if (files.length) {
        classes.push(c);
        perClass.push(files);
      }
    }
    let all: string[];
    let allLabels: Int32Array | undefined;
    let labelSource: string | undefined;
    if (classes.length) {
      if (topImages.length) {
        throw new CalibrationError(dir, `${name}: has class subfolders (${classes.slice(0, 5).join(', ')}${classes.length > 5 ? ', …' : ''}) and also ${topImages.length} images at the top level (e.g. ${basename(topImages[0])}); put every image in a class folder, or use a flat folder`);
      }
      if (opts.labels) throw new CalibrationError(opts.labels, `${name}: labels come from its class subfolders; do not give a labels file as well`);
      const pairs: [string, number][] = [];
      perClass.forEach((files, ci) => files.forEach((f) => pairs.push([f, ci])));
      pairs.sort((a, b) => byCodeUnit(a[0], b[0]));
      all = pairs.map((p) => p[0]);
      allLabels = Int32Array.from(pairs, (p) => p[1]);
      labelSource = 'class subfolders';
    } else {
      all = topImages.sort(byCodeUnit);
      if (opts.labels) {
        allLabels = await readLabelsFor(opts.labels, name, all.length);
        labelSource = opts.labels;
      }
    }
    if (!all.length) throw new CalibrationError(dir, `${name}: no images found (looked for ${IMAGE_EXTENSIONS.join(', ')} files, in class subfolders or at the top level)`);

    // Visit in seeded order, keep the first `want` readable ones.
    const total = all.length;
    const seed = opts.seed ?? 0;
    const notes: string[] = [];
    const count = { path: dir, name, unit: 'images', total, samples: opts.samples, maxSamples: opts.maxSamples };
    const want = requestedCount(count, notes);
    const order = Array.from(seededPermutation(total, seed));
    const concurrency = Math.max(1, Math.floor(img.concurrency ?? DEFAULT_CONCURRENCY));
    const good: number[] = [];
    const bad: { file: string; why: string }[] = [];
    let pos = 0;
    while (good.length < want && pos < total) {
      const slice = order.slice(pos, pos + Math.max(concurrency * 2, want - good.length));
      pos += slice.length;
      const results = await mapLimit(slice, concurrency * 2, async (i) => {
        try {
          await sharp(all[i]).resize(8, 8, { fit: 'fill' }).raw().toBuffer();
          return null;
        } catch (e) {
          return firstLine(e);
        }
      });
      slice.forEach((i, k) => {
        const why = results[k];
        if (why === null) {
          if (good.length < want) good.push(i);
        } else bad.push({ file: all[i], why });
      });
    }
    if (bad.length) {
      const list = bad.slice(0, MAX_LISTED_BAD).map((b) => `${relative(dir, b.file).split(sep).join('/')} (${b.why})`).join('; ');
      if (!img.skipBad) {
        throw new CalibrationError(
          dir,
          `${name}: ${bad.length} unreadable image${bad.length === 1 ? '' : 's'}${bad.length > MAX_LISTED_BAD ? `, first ${MAX_LISTED_BAD}` : ''}: ${list}. Fix or remove them, or skip them (--skip-bad-images in the CLI, image.skipBad in the API)`,
        );
      }
      notes.push(`Skipped ${bad.length} unreadable image${bad.length === 1 ? '' : 's'}: ${list}.`);
    }
    if (opts.samples !== undefined && good.length < opts.samples) {
      throw new CalibrationError(dir, `${name} has only ${good.length} readable images (${bad.length} skipped) but ${opts.samples} were requested`);
    }
    const samples = roundToFixedBatch(opts.inputs, good.length, { path: dir, name, unit: 'readable images' }, notes);
    good.length = samples;
    if (samples === 0) throw new CalibrationError(dir, `${name}: no readable images`);

    const files = good.map((i) => all[i]);
    const labels = allLabels ? Int32Array.from(good, (i) => allLabels![i]) : undefined;
    const { layout, channels, height, width } = geo;
    const perDims = layout === 'nchw' ? [channels, height, width] : layout === 'nhwc' ? [height, width, channels] : [height, width];
    const info: CalibrationInfo = {
      source: 'images',
      path: dir,
      samples,
      seed,
      batchSize: 0,
      preprocessing: {
        decoder: `sharp ${sharp.versions.sharp ?? ''}`.trim(),
        layout: layout.toUpperCase(),
        color: channels === 3 ? 'rgb' : 'grayscale (ITU-R 601-2 luma, as PIL convert("L"))',
        alpha: 'dropped',
        size: [height, width],
        resize: plan.crop === 'none' ? `to ${width}×${height} (aspect ratio not kept)` : plan.resize !== undefined ? `shorter side to ${plan.resize}` : `shorter side to cover ${width}×${height}`,
        crop: plan.crop === 'none' ? 'none' : `center ${width}×${height}`,
        interpolation: plan.kernel,
        scale: plan.raw ? 'none (uint8 input: raw 0-255 values)' : plan.scale,
        ...(plan.raw ? {} : { mean: plan.mean, std: plan.std }),
        order: `seeded shuffle of ${total} sorted paths${want < total ? `, first ${want} readable` : ''}`,
        skipped: bad.length,
        ...(classes.length ? { classes } : {}),
      },
      inputs: [{ name: spec.name, dtype: spec.dtype, shape: [samples, ...perDims] }],
    };
    if (labels) info.labels = { source: labelSource!, classes: classes.length || classCount(allLabels!) };
    if (notes.length) info.note = notes.join(' ');
    const src = new ImageSource(info, files, labels, plan, concurrency);
    const fixed = fixedBatchOf(opts.inputs);
    if (fixed !== undefined) src.fixedBatchSize = fixed;
    return src;
  }

  protected async *produce(batchSize: number, range: SampleRange, signal?: AbortSignal): AsyncGenerator<CalibrationBatch> {
    const { spec, geo } = this.plan;
    const per = geo.height * geo.width * geo.channels;
    const perDims = this.info.inputs[0].shape.slice(1);
    // Prefetch: decodes run up to `concurrency` images ahead of the one being written.
    const pending = new Map<number, Promise<Uint8Array>>();
    let next = range.start;
    const start = (i: number) => {
      const p = decodeRgb(this.files[i], this.plan).catch((e: unknown) => {
        if (e instanceof CalibrationError) throw e;
        throw new CalibrationError(this.files[i], `cannot decode ${this.files[i]}: ${firstLine(e)}`);
      });
      p.catch(() => undefined); // handled when awaited
      pending.set(i, p);
    };
    try {
      for (let s = range.start; s < range.end; s += batchSize) {
        const b = Math.min(batchSize, range.end - s);
        const data: FeedData =
          this.plan.raw ? new Uint8Array(b * per)
            : spec.dtype === 'float16' ? new Uint16Array(b * per)
              : spec.dtype === 'float64' ? new Float64Array(b * per)
                : new Float32Array(b * per);
        for (let k = 0; k < b; k++) {
          const i = s + k;
          while (next < range.end && next < i + this.concurrency) start(next++);
          throwIfAborted(signal);
          const rgb = await raceAbort(pending.get(i)!, signal);
          pending.delete(i);
          writeSample(rgb, this.plan, data, k, spec.dtype);
        }
        const batch: CalibrationBatch = { feeds: { [spec.name]: { dtype: spec.dtype, dims: [b, ...perDims], data } }, size: b, first: s };
        if (this.labels) batch.labels = this.labels.slice(s, s + b);
        yield batch;
      }
    } finally {
      await Promise.allSettled(pending.values());
    }
  }
}

function makePlan(spec: InputSpec, geo: Geometry, img: ImageOptions, dir: string): Plan {
  const name = basename(dir);
  const fail = (m: string) => new CalibrationError(dir, `${name}: ${m}`);
  const kernels = { nearest: 'nearest', bilinear: 'linear', bicubic: 'cubic', lanczos: 'lanczos3' } as const;
  const kernel = kernels[img.interpolation ?? 'bilinear'];
  if (!kernel) throw fail(`unknown image.interpolation '${img.interpolation}'`);
  const crop = img.crop ?? 'center';
  if (img.resize !== undefined && (!Number.isInteger(img.resize) || img.resize < 1)) throw fail(`image.resize must be a positive integer, got ${img.resize}`);
  if (img.resize !== undefined && crop === 'center' && img.resize < Math.min(geo.height, geo.width)) {
    throw fail(`image.resize ${img.resize} is smaller than the ${geo.width}×${geo.height} crop`);
  }
  if (spec.dtype === 'uint8') {
    if (img.scale === '0-1' || img.mean || img.std || img.preset === 'imagenet') {
      throw fail(`input '${spec.name}' is uint8, so images are fed as raw 0-255 values; scale, mean, std and preset do not apply`);
    }
    return { spec, geo, crop, resize: img.resize, kernel, raw: true, scale: '0-255', mean: [0, 0, 0], std: [1, 1, 1] };
  }
  if (spec.dtype !== 'float32' && spec.dtype !== 'float64' && spec.dtype !== 'float16') {
    throw fail(`input '${spec.name}' is ${spec.dtype}; images feed float32/float64/float16 or uint8 inputs`);
  }
  const scale = img.scale ?? '0-1';
  const unit = scale === '0-255' ? 255 : 1;
  const C = geo.channels;
  const preset = img.preset ?? 'none';
  let mean = img.mean ?? (preset === 'imagenet' ? IMAGENET_MEAN.map((m) => m * unit) : [0]);
  let std = img.std ?? (preset === 'imagenet' ? IMAGENET_STD.map((s) => s * unit) : [1]);
  if (preset === 'imagenet' && C === 1 && !img.mean && !img.std) {
    throw fail(`preset 'imagenet' gives 3-channel mean/std but input '${spec.name}' has 1 channel; give image.mean and image.std`);
  }
  for (const [what, v] of [['mean', mean], ['std', std]] as const) {
    if (v.length !== 1 && v.length !== C) throw fail(`image.${what} has ${v.length} values; input '${spec.name}' has ${C} channel${C === 1 ? '' : 's'}`);
    if (!v.every((x) => Number.isFinite(x))) throw fail(`image.${what} has a value that is not a finite number`);
  }
  if (std.some((x) => x === 0)) throw fail('image.std has a zero');
  if (mean.length === 1) mean = new Array(C).fill(mean[0]);
  if (std.length === 1) std = new Array(C).fill(std[0]);
  return { spec, geo, crop, resize: img.resize, kernel, raw: false, scale, mean, std };
}

/** libvips errors repeat themselves over several lines; the first says what is wrong. */
function firstLine(e: unknown): string {
  const m = e instanceof Error ? e.message : String(e);
  return m.split('\n')[0].trim() || 'unreadable';
}

async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (t: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

/** Wait for `p`, or reject with an AbortError as soon as `signal` aborts. */
export function raceAbort<T>(p: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return p;
  throwIfAborted(signal);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => {
      reject(abortError());
    };
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}
