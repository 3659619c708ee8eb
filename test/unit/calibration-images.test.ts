// Image folders: class labels, layout and channels from the model input, resize/crop, scaling
// and normalisation (checked pixel by pixel), broken images, order, cancellation.

import { test, describe, before } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import * as ort from 'onnxruntime-node';
import {
  openCalibration, IMAGENET_MEAN, IMAGENET_STD,
  type InputSpec, type OpenOptions,
} from '../../src/engine/calibration/index';
import { DATA, MODELS, VIT_DIGITS, collect, rejects, useTempDir } from '../helpers/calibration';

const tmp = useTempDir('blocklens-img-');

/** Write an RGB image whose pixel (x, y) is px(x, y). */
async function image(path: string, w: number, h: number, px: (x: number, y: number) => [number, number, number], format: 'png' | 'jpeg' | 'webp' = 'png') {
  const raw = Buffer.alloc(w * h * 3);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) raw.set(px(x, y), (y * w + x) * 3);
  let s = sharp(raw, { raw: { width: w, height: h, channels: 3 } });
  s = format === 'png' ? s.png() : format === 'jpeg' ? s.jpeg({ quality: 100 }) : s.webp({ lossless: true });
  await writeFile(path, await s.toBuffer());
}

const close = (a: number, b: number, tol = 1e-6) => Math.abs(a - b) <= tol;

describe('image folder with class subfolders', () => {
  let root: string;
  const COLORS: Record<string, [number, number, number]> = { cat: [51, 102, 204], dog: [255, 0, 0], ant: [0, 0, 0] };
  before(async () => {
    root = join(tmp.path, 'classes');
    for (const [cls, rgb] of Object.entries(COLORS)) {
      await mkdir(join(root, cls, 'nested'), { recursive: true });
      await image(join(root, cls, 'a.png'), 4, 4, () => rgb);
      await image(join(root, cls, 'b.png'), 4, 4, () => rgb);
      await image(join(root, cls, 'nested', 'c.webp'), 4, 4, () => rgb, 'webp');
    }
    await writeFile(join(root, 'cat', 'README.txt'), 'not an image, ignored');
  });

  test('labels from sorted subfolder names; scale to [0,1]; NCHW RGB', async () => {
    const src = await openCalibration({ inputs: [{ name: 'pixel_values', dtype: 'float32', shape: ['batch', 3, 4, 4] }], data: root });
    assert.equal(src.info.source, 'images');
    assert.equal(src.samples, 9);
    assert.deepEqual(src.info.labels, { source: 'class subfolders', classes: 3 });
    assert.deepEqual(src.info.preprocessing!.classes, ['ant', 'cat', 'dog']);
    assert.equal(src.info.preprocessing!.layout, 'NCHW');
    assert.equal(src.info.preprocessing!.scale, '0-1');
    assert.deepEqual(src.info.inputs, [{ name: 'pixel_values', dtype: 'float32', shape: [9, 3, 4, 4] }]);
    const batches = await collect(src, 4);
    assert.deepEqual(batches.map((b) => b.size), [4, 4, 1]);
    const byClass = ['ant', 'cat', 'dog'];
    for (const b of batches) {
      const d = b.feeds.pixel_values.data as Float32Array;
      assert.deepEqual(b.feeds.pixel_values.dims, [b.size, 3, 4, 4]);
      for (let k = 0; k < b.size; k++) {
        const rgb = COLORS[byClass[b.labels![k]]];
        for (let c = 0; c < 3; c++) {
          for (let p = 0; p < 16; p++) assert.ok(close(d[k * 48 + c * 16 + p], rgb[c] / 255), `sample ${k} channel ${c}`);
        }
      }
    }
    // cat (51,102,204) is exactly (0.2, 0.4, 0.8)
    const cat = batches.flatMap((b) => [...b.labels!].map((l, k) => [l, (b.feeds.pixel_values.data as Float32Array).slice(k * 48, k * 48 + 48)] as const)).find(([l]) => l === 1)![1];
    assert.ok(close(cat[0], 0.2) && close(cat[16], 0.4) && close(cat[32], 0.8));
  });

  test('imagenet preset, NHWC layout', async () => {
    const src = await openCalibration({ inputs: [{ name: 'x', dtype: 'float32', shape: ['N', 4, 4, 3] }], data: root, image: { preset: 'imagenet' } });
    assert.equal(src.info.preprocessing!.layout, 'NHWC');
    assert.deepEqual(src.info.preprocessing!.mean, IMAGENET_MEAN);
    assert.deepEqual(src.info.preprocessing!.std, IMAGENET_STD);
    const b = (await collect(src, 9))[0];
    const d = b.feeds.x.data as Float32Array;
    const k = [...b.labels!].indexOf(1); // a cat
    for (let c = 0; c < 3; c++) {
      const want = ([0.2, 0.4, 0.8][c] - IMAGENET_MEAN[c]) / IMAGENET_STD[c];
      for (let p = 0; p < 16; p++) assert.ok(close(d[k * 48 + p * 3 + c], want, 1e-5), `channel ${c}: ${d[k * 48 + p * 3 + c]} vs ${want}`);
    }
  });

  test('grayscale: 1-channel input gets ITU-R 601-2 luma; 0-255 scale; custom mean/std', async () => {
    const src = await openCalibration({ inputs: [{ name: 'x', dtype: 'float32', shape: ['N', 1, 4, 4] }], data: root, image: { scale: '0-255', mean: [10], std: [2] } });
    assert.match(String(src.info.preprocessing!.color), /grayscale/);
    const b = (await collect(src, 9))[0];
    const d = b.feeds.x.data as Float32Array;
    const k = [...b.labels!].indexOf(1);
    // (51*19595 + 102*38470 + 204*7471 + 32768) >> 16 = 98
    assert.equal(d[k * 16], (98 - 10) / 2);
    const red = [...b.labels!].indexOf(2);
    assert.equal(d[red * 16], (((255 * 19595 + 32768) >> 16) - 10) / 2);
  });

  test('uint8 input gets raw 0-255 values; float16 and float64 inputs', async () => {
    const u8 = await openCalibration({ inputs: [{ name: 'x', dtype: 'uint8', shape: ['N', 3, 4, 4] }], data: root });
    const b = (await collect(u8, 9))[0];
    const k = [...b.labels!].indexOf(1);
    assert.ok(b.feeds.x.data instanceof Uint8Array);
    assert.deepEqual([b.feeds.x.data[k * 48], b.feeds.x.data[k * 48 + 16], b.feeds.x.data[k * 48 + 32]], [51, 102, 204]);
    await rejects(openCalibration({ inputs: [{ name: 'x', dtype: 'uint8', shape: ['N', 3, 4, 4] }], data: root, image: { preset: 'imagenet' } }), /input 'x' is uint8, so images are fed as raw 0-255 values/);
    const f64 = await openCalibration({ inputs: [{ name: 'x', dtype: 'float64', shape: ['N', 3, 4, 4] }], data: root });
    const b64 = (await collect(f64, 9))[0];
    assert.ok(b64.feeds.x.data instanceof Float64Array);
    assert.equal(b64.feeds.x.data[[...b64.labels!].indexOf(1) * 48], 0.2);
    const f16 = await openCalibration({ inputs: [{ name: 'x', dtype: 'float16', shape: ['N', 3, 4, 4] }], data: root });
    const b16 = (await collect(f16, 9))[0];
    assert.ok(b16.feeds.x.data instanceof Uint16Array);
  });

  test('order: seeded shuffle (classes mixed), deterministic; subsets differ by seed', async () => {
    const spec: InputSpec = { name: 'x', dtype: 'float32', shape: ['N', 3, 4, 4] };
    const labelsOf = async (o: Partial<OpenOptions>) => (await collect(await openCalibration({ inputs: [spec], data: root, ...o }), 100)).flatMap((b) => [...b.labels!]);
    const a = await labelsOf({ seed: 0 });
    assert.deepEqual(await labelsOf({ seed: 0 }), a);
    assert.deepEqual([...a].sort(), [0, 0, 0, 1, 1, 1, 2, 2, 2]);
    const s1 = await openCalibration({ inputs: [spec], data: root, samples: 4, seed: 1 });
    await collect(s1, 2);
    const sums = new Set<string>();
    for (let seed = 0; seed < 6; seed++) {
      const s = await openCalibration({ inputs: [spec], data: root, samples: 4, seed });
      assert.equal(s.samples, 4);
      await collect(s, 3);
      sums.add(s.info.checksum!);
    }
    assert.ok(sums.size > 1, 'different seeds pick different subsets');
    await rejects(openCalibration({ inputs: [spec], data: root, samples: 10 }), /classes has 9 images but 10 were requested/);
  });

  test('abort while decoding', async () => {
    const src = await openCalibration({ inputs: [{ name: 'x', dtype: 'float32', shape: ['N', 3, 4, 4] }], data: root });
    const ac = new AbortController();
    let n = 0;
    await assert.rejects(
      (async () => {
        for await (const b of src.batches(2, ac.signal)) {
          n += b.size;
          ac.abort();
        }
      })(),
      (e: Error) => e.name === 'AbortError',
    );
    assert.equal(n, 2);
  });
});

describe('resize and crop', () => {
  let flat: string;
  before(async () => {
    flat = join(tmp.path, 'geometry');
    await mkdir(flat);
    // 12 wide × 6 high: columns 0-2 red, 3-8 green, 9-11 blue
    await image(join(flat, 'stripes.png'), 12, 6, (x) => (x < 3 ? [255, 0, 0] : x < 9 ? [0, 255, 0] : [0, 0, 255]));
  });

  test('center crop without resize (shorter side already the target)', async () => {
    const src = await openCalibration({ inputs: [{ name: 'x', dtype: 'float32', shape: ['N', 3, 6, 6] }], data: flat });
    assert.equal(src.info.preprocessing!.crop, 'center 6×6');
    const d = (await collect(src, 1))[0].feeds.x.data as Float32Array;
    for (let p = 0; p < 36; p++) assert.deepEqual([d[p], d[36 + p], d[72 + p]], [0, 1, 0]);
  });

  test('shorter side resized to image.resize then center-cropped; symbolic H/W take image.size', async () => {
    const src = await openCalibration({
      inputs: [{ name: 'x', dtype: 'float32', shape: ['N', 3, 'height', 'width'] }], data: flat,
      image: { size: [4, 4], resize: 6, interpolation: 'nearest' },
    });
    assert.deepEqual(src.info.inputs[0].shape, [1, 3, 4, 4]);
    assert.equal(src.info.preprocessing!.resize, 'shorter side to 6');
    const d = (await collect(src, 1))[0].feeds.x.data as Float32Array;
    // 12×6 stays 12×6; a 4×4 center crop starts at column 4 → all green
    for (let p = 0; p < 16; p++) assert.deepEqual([d[p], d[16 + p], d[32 + p]], [0, 1, 0]);
  });

  test('crop none: resized straight to H×W, all three stripes kept', async () => {
    const src = await openCalibration({ inputs: [{ name: 'x', dtype: 'float32', shape: ['N', 3, 3, 4] }], data: flat, image: { crop: 'none', interpolation: 'nearest' } });
    const d = (await collect(src, 1))[0].feeds.x.data as Float32Array;
    assert.equal(d[0], 1, 'top-left is red'); // R channel, (0,0)
    assert.equal(d[24 + 3], 1, 'top-right is blue'); // B channel, (0,3)
  });

  test('symbolic H/W default to the imageSize hint, then 224', async () => {
    const s1 = await openCalibration({ inputs: [{ name: 'x', dtype: 'float32', shape: ['N', 3, 'h', 'w'] }], data: flat, hints: { imageSize: 5 } });
    assert.deepEqual(s1.info.inputs[0].shape, [1, 3, 5, 5]);
    const s2 = await openCalibration({ inputs: [{ name: 'x', dtype: 'float32', shape: ['N', 3, null, null] }], data: flat });
    assert.deepEqual(s2.info.inputs[0].shape, [1, 3, 224, 224]);
    const b = (await collect(s2, 1))[0];
    assert.equal(b.feeds.x.data.length, 3 * 224 * 224);
  });

  test('jpeg decodes (lossy: close to the colour)', async () => {
    const jd = join(tmp.path, 'jpeg');
    await mkdir(jd);
    await image(join(jd, 'a.jpg'), 16, 16, () => [200, 100, 50], 'jpeg');
    const d = (await collect(await openCalibration({ inputs: [{ name: 'x', dtype: 'float32', shape: ['N', 3, 16, 16] }], data: jd }), 1))[0].feeds.x.data as Float32Array;
    assert.ok(close(d[0], 200 / 255, 3 / 255) && close(d[256], 100 / 255, 3 / 255) && close(d[512], 50 / 255, 3 / 255));
  });

  test('errors: shape not an image, several inputs, size conflicts, mean/std mismatch', async () => {
    await rejects(openCalibration({ inputs: [{ name: 'ids', dtype: 'int64', shape: ['N', 'seq'] }], data: flat }), /geometry: an image folder needs an image input of shape \[N,C,H,W\] or \[N,H,W,C\]; input 'ids' has shape \[N,seq\]/, flat);
    await rejects(openCalibration({ inputs: [{ name: 'a', dtype: 'float32', shape: ['N', 3, 4, 4] }, { name: 'b', dtype: 'float32', shape: ['N', 3] }], data: flat }), /an image folder feeds one image input, but the model has 2 inputs \(a, b\)/);
    await rejects(openCalibration({ inputs: [{ name: 'x', dtype: 'float32', shape: ['N', 5, 4, 4] }], data: flat }), /no channel dimension of 1 or 3/);
    await rejects(openCalibration({ inputs: [{ name: 'x', dtype: 'float32', shape: ['N', 3, 16, 16] }], data: flat, image: { size: [8, 8] } }), /image\.size is 8×8 but input 'x' declares 16×16/);
    await rejects(openCalibration({ inputs: [{ name: 'x', dtype: 'float32', shape: ['N', 1, 4, 4] }], data: flat, image: { preset: 'imagenet' } }), /preset 'imagenet' gives 3-channel mean\/std but input 'x' has 1 channel/);
    await rejects(openCalibration({ inputs: [{ name: 'x', dtype: 'float32', shape: ['N', 3, 4, 4] }], data: flat, image: { mean: [0.5, 0.5] } }), /image\.mean has 2 values; input 'x' has 3 channels/);
    await rejects(openCalibration({ inputs: [{ name: 'x', dtype: 'float32', shape: ['N', 3, 4, 4] }], data: flat, image: { color: 'grayscale' } }), /image\.color is 'grayscale' but input 'x' has 3 channels/);
    await rejects(openCalibration({ inputs: [{ name: 'x', dtype: 'float32', shape: ['N', 3, 4, 4] }], data: join(flat, 'stripes.png') }), /stripes\.png: give the folder that holds the images, not one image/);
  });

  test('a folder mixing class subfolders and top-level images is refused', async () => {
    const mixed = join(tmp.path, 'mixed');
    await mkdir(join(mixed, 'a'), { recursive: true });
    await image(join(mixed, 'a', '1.png'), 4, 4, () => [0, 0, 0]);
    await image(join(mixed, 'top.png'), 4, 4, () => [0, 0, 0]);
    await rejects(openCalibration({ inputs: [{ name: 'x', dtype: 'float32', shape: ['N', 3, 4, 4] }], data: mixed }), /mixed: has class subfolders \(a\) and also 1 images at the top level \(e\.g\. top\.png\)/);
  });
});

describe('flat folder with a labels file', () => {
  test('labels in sorted path order; count must match', async () => {
    const fd = join(tmp.path, 'flatlabels');
    await mkdir(fd);
    await image(join(fd, 'b.png'), 2, 2, () => [255, 255, 255]);
    await image(join(fd, 'a.png'), 2, 2, () => [0, 0, 0]);
    const { encodeNpy } = await import('../../src/engine/calibration/index');
    const lab = join(tmp.path, 'flat_labels.npy');
    await writeFile(lab, encodeNpy('int64', [2], [7, 3])); // a.png → 7, b.png → 3
    const src = await openCalibration({ inputs: [{ name: 'x', dtype: 'float32', shape: ['N', 1, 2, 2] }], data: fd, labels: lab });
    const b = (await collect(src, 2))[0];
    const d = b.feeds.x.data as Float32Array;
    for (let k = 0; k < 2; k++) assert.equal(b.labels![k], d[k * 4] === 0 ? 7 : 3);
    assert.deepEqual(src.info.labels, { source: lab, classes: 8 });
    const lab3 = join(tmp.path, 'flat_labels3.npy');
    await writeFile(lab3, encodeNpy('int64', [3], [1, 2, 3]));
    await rejects(openCalibration({ inputs: [{ name: 'x', dtype: 'float32', shape: ['N', 1, 2, 2] }], data: fd, labels: lab3 }), /flat_labels3\.npy has 3 labels but flatlabels has 2 samples/);
  });
});

describe('broken images', () => {
  let broken: string;
  before(async () => {
    broken = join(tmp.path, 'broken');
    await mkdir(join(broken, 'x'), { recursive: true });
    await mkdir(join(broken, 'y'), { recursive: true });
    for (let i = 0; i < 3; i++) await image(join(broken, 'x', `${i}.png`), 4, 4, () => [i, i, i]);
    await image(join(broken, 'y', 'ok.png'), 4, 4, () => [9, 9, 9]);
    await writeFile(join(broken, 'y', 'text.png'), 'this is text, not a PNG');
    const jpg = await sharp(Buffer.alloc(64 * 64 * 3, 128), { raw: { width: 64, height: 64, channels: 3 } }).jpeg().toBuffer();
    await writeFile(join(broken, 'x', 'truncated.jpg'), jpg.subarray(0, jpg.length >> 1));
  });
  const spec: InputSpec = { name: 'x', dtype: 'float32', shape: ['N', 3, 4, 4] };

  test('fail with the bad paths and a count', async () => {
    const e = await rejects(openCalibration({ inputs: [spec], data: broken }), /^broken: 2 unreadable images: /, broken);
    assert.match(e.message, /x\/truncated\.jpg \(/);
    assert.match(e.message, /y\/text\.png \(/);
    assert.match(e.message, /skip them \(--skip-bad-images in the CLI, image\.skipBad in the API\)/);
  });
  test('skipBad: skipped and counted', async () => {
    const src = await openCalibration({ inputs: [spec], data: broken, image: { skipBad: true } });
    assert.equal(src.samples, 4);
    assert.equal(src.info.preprocessing!.skipped, 2);
    assert.match(src.info.note!, /Skipped 2 unreadable images: .*truncated\.jpg.*text\.png|Skipped 2 unreadable images: .*text\.png.*truncated\.jpg/);
    const b = await collect(src, 3);
    assert.deepEqual(b.map((x) => x.size), [3, 1]);
    await rejects(openCalibration({ inputs: [spec], data: broken, image: { skipBad: true }, samples: 5 }), /broken has only 4 readable images \(2 skipped\) but 5 were requested/);
  });
});

describe('image fixtures (digits)', () => {
  test('digits_images: 10 classes, png/jpeg/webp, 32×32 → 16×16; vit_tiny classifies them', async () => {
    const src = await openCalibration({ inputs: [VIT_DIGITS], data: join(DATA, 'digits_images') });
    assert.equal(src.samples, 107);
    assert.equal(src.info.labels!.classes, 10);
    assert.deepEqual(src.info.preprocessing!.classes, ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']);
    const session = await ort.InferenceSession.create(join(MODELS, 'vit_tiny.onnx'));
    let correct = 0;
    let n = 0;
    for await (const b of src.batches(32)) {
      const t = b.feeds.pixel_values;
      assert.ok((t.data as Float32Array).every((v) => v >= 0 && v <= 1));
      const out = await session.run({ pixel_values: new ort.Tensor('float32', t.data as Float32Array, t.dims) });
      const logits = out[session.outputNames[0]].data as Float32Array;
      for (let k = 0; k < b.size; k++) {
        const row = logits.subarray(k * 10, k * 10 + 10);
        if (row.indexOf(Math.max(...row)) === b.labels![k]) correct++;
        n++;
      }
    }
    assert.equal(n, 107);
    assert.ok(correct / n > 0.95, `accuracy ${correct}/${n}: preprocessing must match what the model was trained on`);
    await session.release();
  });
  test('digits_images_broken: two bad files; skipBad keeps the 30 good ones', async () => {
    const data = join(DATA, 'digits_images_broken');
    const e = await rejects(openCalibration({ inputs: [VIT_DIGITS], data }), /digits_images_broken: 2 unreadable images: /, data);
    assert.match(e.message, /3\/bad1\.png/);
    assert.match(e.message, /7\/bad2\.jpg/);
    const src = await openCalibration({ inputs: [VIT_DIGITS], data, image: { skipBad: true } });
    assert.equal(src.samples, 30);
    assert.equal(src.info.preprocessing!.skipped, 2);
    assert.equal((await collect(src, 16)).reduce((s, b) => s + b.size, 0), 30);
  });
});
