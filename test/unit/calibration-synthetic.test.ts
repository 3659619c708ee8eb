// Synthetic calibration data, the opener's dispatch, and the PRNG.

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import {
  openCalibration, halfToFloat, SYNTHETIC_DEFAULT_SAMPLES,
  type InputSpec,
} from '../../src/engine/calibration/index';
import { Rng, seededPermutation, sortedSubset } from '../../src/engine/random';
import { MODELS, collect, rejects, useTempDir, values } from '../helpers/calibration';

const tmp = useTempDir('blocklens-syn-');

const BERT: InputSpec[] = [
  { name: 'input_ids', dtype: 'int64', shape: ['batch', 'sequence'] },
  { name: 'attention_mask', dtype: 'int64', shape: ['batch', 'sequence'] },
  { name: 'token_type_ids', dtype: 'int64', shape: ['batch', 'sequence'] },
  { name: 'position_ids', dtype: 'int32', shape: ['batch', 'sequence'] },
];
const VIT: InputSpec[] = [{ name: 'pixel_values', dtype: 'float32', shape: ['batch', 3, 'height', 'width'] }];

describe('synthetic data', () => {
  test('defaults: 512 samples, seed 0, note says it shows structure, not task behaviour', async () => {
    const src = await openCalibration({ inputs: VIT, hints: { imageSize: 8 } });
    assert.equal(SYNTHETIC_DEFAULT_SAMPLES, 512);
    assert.equal(src.samples, 512);
    assert.equal(src.info.source, 'synthetic');
    assert.equal(src.info.seed, 0);
    assert.equal(src.info.path, undefined);
    assert.match(src.info.note!, /structure/);
    assert.match(src.info.note!, /not how the model behaves on a real task/);
    assert.deepEqual(src.info.inputs, [{ name: 'pixel_values', dtype: 'float32', shape: [512, 3, 8, 8], fill: 'normal(0,1)' }]);
  });

  test('same seed → same checksum (any batching); different seed → different', async () => {
    const sum = async (seed: number, batch: number) => {
      const s = await openCalibration({ inputs: [...BERT, ...VIT], hints: { seqLen: 16, imageSize: 4, vocabSize: { input_ids: 1000 } }, samples: 50, seed });
      await collect(s, batch);
      return s.info.checksum!;
    };
    const a = await sum(7, 16);
    assert.match(a, /^[0-9a-f]{64}$/);
    assert.equal(await sum(7, 16), a);
    assert.equal(await sum(7, 50), a);
    assert.equal(await sum(7, 3), a);
    assert.notEqual(await sum(8, 16), a);
    assert.notEqual(await sum(0, 16), a);
  });

  test('token ids within the vocabulary; mask ones; token types zeros; positions 0..T-1', async () => {
    const src = await openCalibration({ inputs: BERT, hints: { seqLen: 12, vocabSize: { input_ids: 37 } }, samples: 40, seed: 3 });
    const b = await collect(src, 16);
    assert.deepEqual(b.map((x) => x.size), [16, 16, 8]);
    assert.deepEqual(b[0].feeds.input_ids.dims, [16, 12]);
    assert.ok(b[0].feeds.input_ids.data instanceof BigInt64Array);
    assert.ok(b[0].feeds.position_ids.data instanceof Int32Array);
    const ids = values(b, 'input_ids');
    assert.equal(ids.length, 40 * 12);
    assert.ok(ids.every((v) => Number.isInteger(v) && v >= 0 && v < 37));
    assert.equal(new Set(ids).size, 37, 'all ids of a small vocabulary appear');
    assert.ok(values(b, 'attention_mask').every((v) => v === 1));
    assert.ok(values(b, 'token_type_ids').every((v) => v === 0));
    assert.deepEqual(values(b, 'position_ids').slice(0, 24), [...Array(12).keys(), ...Array(12).keys()]);
    assert.deepEqual(src.info.inputs.map((i) => i.fill), ['uniform token ids in [0,37)', 'ones', 'zeros', 'positions 0..T-1']);
    assert.deepEqual(src.info.inputs.map((i) => i.shape), [[40, 12], [40, 12], [40, 12], [40, 12]]);
  });

  test('no vocabulary hint: ids in [0,100) and a note saying so', async () => {
    const src = await openCalibration({ inputs: BERT.slice(0, 1), samples: 20 });
    const ids = values(await collect(src, 20), 'input_ids');
    assert.ok(ids.every((v) => v >= 0 && v < 100));
    assert.ok(ids.some((v) => v >= 50));
    assert.match(src.info.note!, /No vocabulary size is known for 'input_ids', so its token ids are drawn from \[0, 100\)/);
    assert.deepEqual(src.info.inputs[0].shape, [20, 128], 'sequence dims default to 128');
  });

  test('floats are N(0,1); float16 inputs get half bits; bool inputs true; float masks ones', async () => {
    const src = await openCalibration({
      inputs: [
        { name: 'x', dtype: 'float32', shape: ['N', 64] },
        { name: 'h', dtype: 'float16', shape: ['N', 8] },
        { name: 'flag', dtype: 'bool', shape: ['N', 2] },
        { name: 'float_mask', dtype: 'float32', shape: ['N', 3] },
        { name: 'd', dtype: 'float64', shape: ['N'] },
      ],
      samples: 500,
      seed: 11,
    });
    const b = await collect(src, 128);
    const x = values(b, 'x');
    const mean = x.reduce((s, v) => s + v, 0) / x.length;
    const sd = Math.sqrt(x.reduce((s, v) => s + (v - mean) ** 2, 0) / x.length);
    assert.ok(Math.abs(mean) < 0.02, `mean ${mean}`);
    assert.ok(Math.abs(sd - 1) < 0.02, `std ${sd}`);
    const within1 = x.filter((v) => Math.abs(v) < 1).length / x.length;
    assert.ok(Math.abs(within1 - 0.6827) < 0.01, `P(|x|<1) = ${within1}`);
    assert.ok(b[0].feeds.h.data instanceof Uint16Array);
    const h = values(b, 'h').map(halfToFloat);
    assert.ok(h.every(Number.isFinite) && h.some((v) => v < 0) && h.some((v) => v > 0));
    assert.ok(values(b, 'flag').every((v) => v === 1));
    assert.ok(b[0].feeds.flag.data instanceof Uint8Array);
    assert.ok(values(b, 'float_mask').every((v) => v === 1));
    assert.deepEqual(b[0].feeds.d.dims, [128]);
    assert.ok(b[0].feeds.d.data instanceof Float64Array);
  });

  test('symbolic dims: seq names → seqLen, H/W → imageSize, unnamed 4-D → 3×S×S, other → seqLen', async () => {
    const src = await openCalibration({
      inputs: [
        { name: 'a', dtype: 'float32', shape: ['batch', 'num_channels', 'height', 'width'] },
        { name: 'b', dtype: 'float32', shape: [null, null, null, null] },
        { name: 'c', dtype: 'float32', shape: ['N', null, null, 1] },
        { name: 'd', dtype: 'float32', shape: ['N', 'sequence_length', 'dim'] },
        { name: 'e', dtype: 'float32', shape: ['N', 7, 'whatever'] },
      ],
      hints: { seqLen: 5, imageSize: 6 },
      samples: 2,
    });
    assert.deepEqual(src.info.inputs.map((i) => i.shape), [[2, 3, 6, 6], [2, 3, 6, 6], [2, 6, 6, 1], [2, 5, 5], [2, 7, 5]]);
    const b = await collect(src, 2);
    assert.equal(b[0].feeds.b.data.length, 2 * 3 * 6 * 6);
  });

  test('fixed batch dimension', async () => {
    const src = await openCalibration({ inputs: [{ name: 'x', dtype: 'float32', shape: [1, 4] }], samples: 3 });
    assert.equal(src.fixedBatchSize, 1);
    assert.deepEqual((await collect(src, 1)).map((b) => b.feeds.x.dims), [[1, 4], [1, 4], [1, 4]]);
    const four = await openCalibration({ inputs: [{ name: 'x', dtype: 'float32', shape: [4, 4] }], samples: 10 });
    assert.equal(four.samples, 8);
    await rejects(collect(four, 8), /fixes its batch dimension to 4; use batch size 4, not 8/);
  });

  test('abort before and during', async () => {
    const src = await openCalibration({ inputs: VIT, hints: { imageSize: 4 }, samples: 100 });
    const ac = new AbortController();
    ac.abort();
    await assert.rejects(collect(src, 10, ac.signal), (e: Error) => e.name === 'AbortError');
    const ac2 = new AbortController();
    let n = 0;
    await assert.rejects(
      (async () => {
        for await (const b of src.batches(10, ac2.signal)) {
          n += b.size;
          if (n === 30) ac2.abort();
        }
      })(),
      (e: Error) => e.name === 'AbortError',
    );
    assert.equal(n, 30);
  });

  test('errors: labels without data, bad sample count, bad seed, no inputs, scalar input', async () => {
    await rejects(openCalibration({ inputs: VIT, labels: '/tmp/x.npy' }), /labels need calibration data/);
    await rejects(openCalibration({ inputs: VIT, samples: 0 }), /samples must be a positive integer, got 0/);
    await rejects(openCalibration({ inputs: VIT, seed: 1.5 }), /seed must be an integer, got 1\.5/);
    await rejects(openCalibration({ inputs: [] }), /the model has no inputs/);
    await rejects(openCalibration({ inputs: [{ name: 's', dtype: 'float32', shape: [] }] }), /input 's' is a scalar/);
  });

  test('synthetic feeds run through the fixture models', async () => {
    for (const [model, hints] of [['bert_tiny.onnx', { seqLen: 48, vocabSize: { input_ids: 192 } }], ['vit_tiny.onnx', {}]] as const) {
      const session = await ort.InferenceSession.create(join(MODELS, model));
      const meta = session.inputMetadata as unknown as { name: string; type: string; shape: (number | string)[] }[];
      const inputs: InputSpec[] = meta.map((m) => ({ name: m.name, dtype: m.type as InputSpec['dtype'], shape: m.shape }));
      const src = await openCalibration({ inputs, hints, samples: 20 });
      for await (const b of src.batches(8)) {
        const feeds: Record<string, ort.Tensor> = {};
        for (const [k, t] of Object.entries(b.feeds)) feeds[k] = new ort.Tensor(t.dtype, t.data, t.dims);
        const out = await session.run(feeds);
        assert.equal(out[session.outputNames[0]].dims[0], b.size);
      }
      await session.release();
    }
  });
});

describe('opening: dispatch by path', () => {
  test('unknown extension, missing path', async () => {
    const f = join(tmp.path, 'data.csv');
    await writeFile(f, '1,2,3\n');
    await rejects(openCalibration({ inputs: VIT, data: f }), /data\.csv: unsupported calibration data; give \.npy, \.npz, a folder of <input>\.npy files, an image folder, \.jsonl or \.txt/);
    await rejects(openCalibration({ inputs: VIT, data: join(tmp.path, 'nothing') }), /nothing: file not found/);
  });
});

describe('rng', () => {
  test('deterministic streams; int(n) is uniform and in range; permutations', () => {
    const a = new Rng(42, 1);
    const b = new Rng(42, 1);
    const c = new Rng(42, 2);
    const xs = Array.from({ length: 100 }, () => a.nextU32());
    assert.deepEqual(Array.from({ length: 100 }, () => b.nextU32()), xs);
    assert.notDeepEqual(Array.from({ length: 100 }, () => c.nextU32()), xs);
    const r = new Rng(1);
    const counts = new Array(7).fill(0);
    for (let i = 0; i < 70000; i++) counts[r.int(7)]++;
    assert.ok(counts.every((k) => Math.abs(k - 10000) < 400), `counts ${counts}`);
    const u = Array.from({ length: 10000 }, () => r.next());
    assert.ok(u.every((v) => v >= 0 && v < 1));
    const p = seededPermutation(50, 3);
    assert.deepEqual([...p].sort((x, y) => x - y), [...Array(50).keys()]);
    assert.deepEqual(seededPermutation(50, 3), p);
    assert.notDeepEqual(seededPermutation(50, 4), p);
    const s = sortedSubset(100, 10, 5);
    assert.equal(new Set(s).size, 10);
    assert.deepEqual([...s].sort((x, y) => x - y), s);
    assert.deepEqual(sortedSubset(5, 10, 1), [0, 1, 2, 3, 4]);
  });
});
