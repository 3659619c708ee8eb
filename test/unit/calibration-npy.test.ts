// .npy calibration data: every dtype, byte order, memory order and header version; casts;
// errors; batching, subsets, checksums, cancellation. Files are written in TS into a temp dir,
// plus a few byte-exact files written by numpy (embedded below) and the fixture variants.

import { test, describe, before } from 'node:test';
import assert from 'node:assert/strict';
import { open, readFile, access } from 'node:fs/promises';
import { join } from 'node:path';
import {
  openCalibration, encodeNpy, npyHeaderBytes, halfToFloat, floatToHalf,
  type InputSpec, type OrtDtype,
} from '../../src/engine/calibration/index';
import { DATA, VIT_DIGITS, collect, rejects, useTempDir, values } from '../helpers/calibration';

const tmp = useTempDir('blocklens-npy-');
const { put } = tmp;

const ALL: OrtDtype[] = ['float32', 'float64', 'float16', 'int64', 'int32', 'int16', 'int8', 'uint8', 'uint16', 'uint32', 'uint64', 'bool'];

/** Test values for element i of a dtype (C order). */
function valueFor(d: OrtDtype, i: number): number {
  switch (d) {
    case 'float32': case 'float64': case 'float16': return i * 0.5 - 3;
    case 'bool': return i % 3 === 0 ? 1 : 0;
    case 'uint8': case 'uint16': case 'uint32': case 'uint64': return i * 7;
    default: return i * 3 - 20;
  }
}

describe('npy: every dtype × byte order × memory order × header version', () => {
  const shape = [5, 3, 2];
  const n = 30;
  for (const dtype of ALL) {
    for (const byteOrder of ['<', '>'] as const) {
      for (const fortranOrder of [false, true]) {
        for (const version of [1, 2, 3] as const) {
          if (version !== 1 && (byteOrder === '>' || fortranOrder)) continue; // versions are tested on the plain case
          const label = `${dtype} ${byteOrder} ${fortranOrder ? 'F' : 'C'} v${version}`;
          test(label, async () => {
            const expected = Array.from({ length: n }, (_, i) => valueFor(dtype, i));
            const stored = dtype === 'float16' ? expected.map(floatToHalf) : expected;
            const file = await put(`v_${dtype}_${byteOrder === '<' ? 'le' : 'be'}_${fortranOrder ? 'f' : 'c'}_${version}.npy`,
              encodeNpy(dtype, shape, stored, { byteOrder, fortranOrder, version }));
            const src = await openCalibration({ inputs: [{ name: 'x', dtype, shape: ['N', 3, 2] }], data: file });
            assert.equal(src.samples, 5);
            assert.equal(src.info.source, 'npy');
            assert.deepEqual(src.info.inputs, [{ name: 'x', dtype, shape: [5, 3, 2] }]);
            const batches = await collect(src, 2);
            assert.deepEqual(batches.map((b) => b.size), [2, 2, 1]);
            assert.deepEqual(batches.map((b) => b.feeds.x.dims), [[2, 3, 2], [2, 3, 2], [1, 3, 2]]);
            const got = values(batches, 'x');
            assert.deepEqual(dtype === 'float16' ? got.map(halfToFloat) : got, expected);
            await src.close();
          });
        }
      }
    }
  }
});

describe('npy: files written by numpy', () => {
  // Written by numpy.lib.format.write_array (numpy 2.x); base64 so tests need no Python.
  const NP = {
    f8_be_fortran_2x3x2: 'k05VTVBZAQB2AHsnZGVzY3InOiAnPmY4JywgJ2ZvcnRyYW5fb3JkZXInOiBUcnVlLCAnc2hhcGUnOiAoMiwgMywgMiksIH0gICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAq/8AAAAAAAAD/gAAAAAAAAv+AAAAAAAAA/8AAAAAAAAAAAAAAAAAAAP/gAAAAAAAC/6AAAAAAAAD/oAAAAAAAAv9AAAAAAAAA/9AAAAAAAAD/QAAAAAAAAP/wAAAAAAAA=',
    f2_3x2: 'k05VTVBZAQB2AHsnZGVzY3InOiAnPGYyJywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKDMsIDIpLCB9ICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoAvAC4AAAAOAA8AD4=',
    b1_4: 'k05VTVBZAQB2AHsnZGVzY3InOiAnfGIxJywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKDQsKSwgfSAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoBAAAB',
    u8_be_2x2: 'k05VTVBZAQB2AHsnZGVzY3InOiAnPnU4JywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKDIsIDIpLCB9ICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoAAAAAAAAAAQAAAAAAAAACAAAAAAAAAAOAAAAAAAAABQ==',
    i2_v3_2x2: 'k05VTVBZAwB0AAAAeydkZXNjcic6ICc8aTInLCAnZm9ydHJhbl9vcmRlcic6IEZhbHNlLCAnc2hhcGUnOiAoMiwgMiksIH0gICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAr//wIALAEAgA==',
    i4_be_fortran_v2_3x2: 'k05VTVBZAgB0AAAAeydkZXNjcic6ICc+aTQnLCAnZm9ydHJhbl9vcmRlcic6IFRydWUsICdzaGFwZSc6ICgzLCAyKSwgfSAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoAAAABAAAAAwAAAAX////+/////P////o=',
  };
  const load = async (key: keyof typeof NP, spec: InputSpec) => {
    const file = await put(`${key}.npy`, Buffer.from(NP[key], 'base64'));
    const src = await openCalibration({ inputs: [spec], data: file });
    return { src, batches: await collect(src, 10), file };
  };

  test('big-endian float64, Fortran order, 3-D → float32 input', async () => {
    const { batches, src } = await load('f8_be_fortran_2x3x2', { name: 'x', dtype: 'float32', shape: ['batch', 3, 2] });
    assert.deepEqual(values(batches, 'x'), Array.from({ length: 12 }, (_, i) => i * 0.25 - 1));
    assert.equal(batches[0].feeds.x.data.constructor, Float32Array);
    const arrays = src.info.preprocessing!.arrays as Record<string, { cast: string; fortranOrder?: string }>;
    assert.equal(arrays.x.cast, 'float64 → float32');
    assert.equal(arrays.x.fortranOrder, 'transposed to C order');
  });
  test('float16 → float16 input keeps the half bits; → float32 input converts', async () => {
    const a = await load('f2_3x2', { name: 'x', dtype: 'float16', shape: ['N', 2] });
    assert.deepEqual([...a.batches[0].feeds.x.data as Uint16Array].map(halfToFloat), [-1, -0.5, 0, 0.5, 1, 1.5]);
    const b = await load('f2_3x2', { name: 'x', dtype: 'float32', shape: ['N', 2] });
    assert.deepEqual(values(b.batches, 'x'), [-1, -0.5, 0, 0.5, 1, 1.5]);
  });
  test('bool 1-D → bool input of shape [N]', async () => {
    const { batches } = await load('b1_4', { name: 'm', dtype: 'bool', shape: ['N'] });
    assert.deepEqual(batches[0].feeds.m.dims, [4]);
    assert.deepEqual(values(batches, 'm'), [1, 0, 0, 1]);
  });
  test('big-endian uint64 beyond int64: exact as uint64, rejected for int64', async () => {
    const { batches } = await load('u8_be_2x2', { name: 'x', dtype: 'uint64', shape: ['N', 2] });
    assert.deepEqual([...(batches[0].feeds.x.data as BigUint64Array)], [1n, 2n, 3n, 2n ** 63n + 5n]);
    const file = join(tmp.path, 'u8_be_2x2.npy');
    const src = await openCalibration({ inputs: [{ name: 'x', dtype: 'int64', shape: ['N', 2] }], data: file });
    await rejects(collect(src, 10), /u8_be_2x2\.npy: input 'x' at sample 1, element \[1\]: value 9223372036854775813 is outside the int64 range/, file);
  });
  test('format 3.0 header, int16', async () => {
    const { batches } = await load('i2_v3_2x2', { name: 'x', dtype: 'int16', shape: ['N', 2] });
    assert.deepEqual(values(batches, 'x'), [-1, 2, 300, -32768]);
  });
  test('format 2.0 header, big-endian int32, Fortran order → int64 input', async () => {
    const { batches } = await load('i4_be_fortran_v2_3x2', { name: 'x', dtype: 'int64', shape: ['N', 2] });
    assert.deepEqual([...(batches[0].feeds.x.data as BigInt64Array)], [1n, -2n, 3n, -4n, 5n, -6n]);
  });
});

describe('npy: casts to the model input type', () => {
  const spec = (dtype: OrtDtype): InputSpec => ({ name: 'inp', dtype, shape: ['N', 2] });
  test('int32 data → float32 and float64 inputs', async () => {
    const file = await put('i4.npy', encodeNpy('int32', [2, 2], [1, -2, 3, 40000]));
    for (const d of ['float32', 'float64'] as const) {
      const src = await openCalibration({ inputs: [spec(d)], data: file });
      assert.deepEqual(values(await collect(src, 4), 'inp'), [1, -2, 3, 40000]);
    }
  });
  test('float64 data → float16 input rounds; values beyond float16 fail', async () => {
    const ok = await put('f8_small.npy', encodeNpy('float64', [1, 2], [0.1, 1000.5]));
    const src = await openCalibration({ inputs: [spec('float16')], data: ok });
    assert.deepEqual([...(await collect(src, 1))[0].feeds.inp.data as Uint16Array].map(halfToFloat), [halfToFloat(floatToHalf(0.1)), 1000.5]);
    const big = await put('f8_big.npy', encodeNpy('float64', [2, 2], [0, 1, 2, 1e6]));
    const s2 = await openCalibration({ inputs: [spec('float16')], data: big });
    await rejects(collect(s2, 2), /f8_big\.npy: input 'inp' at sample 1, element \[1\]: value 1000000 is outside the float16 range/);
  });
  test('float64 beyond float32 range fails', async () => {
    const big = await put('f8_huge.npy', encodeNpy('float64', [1, 2], [1, 1e300]));
    const src = await openCalibration({ inputs: [spec('float32')], data: big });
    await rejects(collect(src, 1), /outside the float32 range/);
  });
  test('float data → int64 input is refused at open', async () => {
    const file = await put('f4_ids.npy', encodeNpy('float32', [2, 2], [1, 2, 3, 4]));
    await rejects(
      openCalibration({ inputs: [spec('int64')], data: file }),
      /f4_ids\.npy: input 'inp' expects int64, found float32 data \(<f4\): floating-point data is not cast to int64/,
      file,
    );
  });
  test('int64 data → int32 input: fine in range, error out of range', async () => {
    const ok = await put('i8_ok.npy', encodeNpy('int64', [1, 2], [5n, -7n]));
    assert.deepEqual(values(await collect(await openCalibration({ inputs: [spec('int32')], data: ok }), 1), 'inp'), [5, -7]);
    const bad = await put('i8_bad.npy', encodeNpy('int64', [2, 2], [1n, 2n, 3n, 2n ** 40n]));
    await rejects(collect(await openCalibration({ inputs: [spec('int32')], data: bad }), 2), /i8_bad\.npy: input 'inp' at sample 1, element \[1\]: value 1099511627776 is outside the int32 range/);
  });
  test('uint8 data → bool input needs 0/1', async () => {
    const ok = await put('u1_ok.npy', encodeNpy('uint8', [1, 2], [0, 1]));
    assert.deepEqual(values(await collect(await openCalibration({ inputs: [spec('bool')], data: ok }), 1), 'inp'), [0, 1]);
    const bad = await put('u1_bad.npy', encodeNpy('uint8', [1, 2], [1, 2]));
    await rejects(collect(await openCalibration({ inputs: [spec('bool')], data: bad }), 1), /value 2 is not 0 or 1 \(bool input\)/);
  });
  test('negative int8 → uint8 input fails', async () => {
    const bad = await put('i1_neg.npy', encodeNpy('int8', [1, 2], [3, -1]));
    await rejects(collect(await openCalibration({ inputs: [spec('uint8')], data: bad }), 1), /value -1 is outside the uint8 range/);
  });
});

describe('npy: errors', () => {
  test('missing file', async () => {
    const file = join(tmp.path, 'nope.npy');
    await rejects(openCalibration({ inputs: [VIT_DIGITS], data: file }), /nope\.npy: file not found/, file);
  });
  test('wrong rank: message names file, input, expected and found shapes', async () => {
    const file = await put('digits.npy', encodeNpy('float32', [256, 64], new Float32Array(256 * 64)));
    await rejects(openCalibration({ inputs: [VIT_DIGITS], data: file }), /^digits\.npy: input 'pixel_values' expects shape \[N,1,16,16\], found \[256,64\]$/, file);
  });
  test('wrong fixed dimension', async () => {
    const file = await put('wrongdim.npy', encodeNpy('float32', [4, 1, 16, 15], new Float32Array(4 * 16 * 15)));
    await rejects(openCalibration({ inputs: [VIT_DIGITS], data: file }), /wrongdim\.npy: input 'pixel_values' expects shape \[N,1,16,16\], found \[4,1,16,15\]/);
  });
  test('scalar array', async () => {
    const file = await put('scalar.npy', encodeNpy('float32', [], [2.5]));
    await rejects(openCalibration({ inputs: [{ name: 'x', dtype: 'float32', shape: ['N'] }], data: file }), /scalar\.npy: input 'x' expects shape \[N\], found a scalar/);
  });
  test('NaN and Inf: file, input, sample and element of the first bad value', async () => {
    const v = new Float32Array(6 * 16 * 16);
    v[3 * 256 + 5 * 16 + 7] = NaN;
    v[4 * 256] = Infinity;
    const file = await put('nan.npy', encodeNpy('float32', [6, 1, 16, 16], v));
    const src = await openCalibration({ inputs: [VIT_DIGITS], data: file });
    await rejects(collect(src, 2), /^nan\.npy: input 'pixel_values' has NaN at sample 3, element \[0,5,7\] \(first bad value\); calibration data must be finite$/, file);
    const inf = await put('inf.npy', encodeNpy('float64', [2, 2], [1, 2, -Infinity, 0]));
    await rejects(collect(await openCalibration({ inputs: [{ name: 'x', dtype: 'float32', shape: ['N', 2] }], data: inf }), 2), /inf\.npy: input 'x' has -Inf at sample 1, element \[0\]/);
  });
  test('fewer samples than requested; all when not asked', async () => {
    const file = await put('ten.npy', encodeNpy('float32', [10, 2], new Float32Array(20)));
    const spec: InputSpec = { name: 'x', dtype: 'float32', shape: ['N', 2] };
    await rejects(openCalibration({ inputs: [spec], data: file, samples: 11 }), /ten\.npy has 10 samples but 11 were requested; ask for at most 10/);
    assert.equal((await openCalibration({ inputs: [spec], data: file })).samples, 10);
  });
  test('a model with several inputs cannot take one .npy', async () => {
    const file = await put('one.npy', encodeNpy('int64', [2, 4], new Array(8).fill(0)));
    await rejects(
      openCalibration({ inputs: [{ name: 'input_ids', dtype: 'int64', shape: ['N', 'seq'] }, { name: 'attention_mask', dtype: 'int64', shape: ['N', 'seq'] }], data: file }),
      /one\.npy holds one array but the model has 2 inputs \(input_ids, attention_mask\); give an \.npz with one array per input/,
    );
  });
  test('corrupt headers', async () => {
    const spec: InputSpec = { name: 'x', dtype: 'float32', shape: ['N', 2] };
    const good = encodeNpy('float32', [2, 2], [1, 2, 3, 4]);
    const badMagic = good.slice();
    badMagic[1] = 0x58;
    await rejects(openCalibration({ inputs: [spec], data: await put('magic.npy', badMagic) }), /magic\.npy: not a \.npy file \(the magic string \\x93NUMPY is missing\)/);
    const badDict = good.slice();
    badDict.set(new TextEncoder().encode("{'descr': '<f4', 'fortran_order': Nope"), 10);
    await rejects(openCalibration({ inputs: [spec], data: await put('dict.npy', badDict) }), /dict\.npy: corrupt \.npy header/);
    await rejects(openCalibration({ inputs: [spec], data: await put('short.npy', good.slice(0, 40)) }), /short\.npy: corrupt \.npy header \(file ends inside the header\)/);
    const noShape = good.slice();
    noShape.set(new TextEncoder().encode("{'descr': '<f4', 'fortran_order': False, 'shapx'"), 10);
    await rejects(openCalibration({ inputs: [spec], data: await put('noshape.npy', noShape) }), /noshape\.npy: corrupt \.npy header \(no 'shape' key\)/);
    const version = good.slice();
    version[6] = 9;
    await rejects(openCalibration({ inputs: [spec], data: await put('ver.npy', version) }), /ver\.npy: unsupported \.npy format version 9\.0/);
    await rejects(openCalibration({ inputs: [spec], data: await put('trunc.npy', good.slice(0, good.length - 3)) }), /trunc\.npy: the header promises shape \(2, 2\) of <f4 = 16 bytes, but only 13 bytes follow/);
    const complex = good.slice();
    complex.set(new TextEncoder().encode("{'descr': '<c8'"), 10);
    await rejects(openCalibration({ inputs: [spec], data: await put('complex.npy', complex) }), /complex\.npy: dtype '<c8' is not supported/);
    const structured = good.slice();
    structured.set(new TextEncoder().encode("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,), }"), 10);
    await rejects(openCalibration({ inputs: [spec], data: await put('struct.npy', structured) }), /struct\.npy: structured dtypes .* are not supported/);
  });
  test('Fortran-ordered arrays over 1 GiB are refused with a clear message', async () => {
    const header = npyHeaderBytes('float32', [16384, 32768], { fortranOrder: true });
    const file = join(tmp.path, 'huge_fortran.npy');
    const fh = await open(file, 'w');
    await fh.write(header);
    await fh.truncate(header.length + 4 * (1 << 14) * (1 << 15)); // sparse: 2 GiB of zeros
    await fh.close();
    await rejects(
      openCalibration({ inputs: [{ name: 'x', dtype: 'float32', shape: ['N', 32768] }], data: file }),
      /huge_fortran\.npy: Fortran-ordered array of 2\.0 GiB is too large to transpose in memory \(limit 1 GiB\); save it in C order/,
    );
  });
  test('a large C-order file is read by offset (2 GiB sparse file, 3 rows read)', async () => {
    const rows = 2048;
    const cols = 1 << 18; // 1 MiB rows of float32
    const header = npyHeaderBytes('float32', [rows, cols]);
    const file = join(tmp.path, 'huge_c.npy');
    const fh = await open(file, 'w');
    await fh.write(header);
    await fh.truncate(header.length + rows * cols * 4);
    // row r starts with the value r, so each row read shows where it came from
    for (let r = 1; r < rows; r++) await fh.write(new Uint8Array(new Float32Array([r]).buffer), 0, 4, header.length + r * cols * 4);
    await fh.close();
    const src = await openCalibration({ inputs: [{ name: 'x', dtype: 'float32', shape: ['N', cols] }], data: file, samples: 3, seed: 1 });
    const t0 = Date.now();
    const batches = await collect(src, 2);
    assert.ok(Date.now() - t0 < 5000);
    assert.deepEqual(batches.map((b) => b.size), [2, 1]);
    const firsts: number[] = [];
    for (const b of batches) {
      const d = b.feeds.x.data as Float32Array;
      for (let k = 0; k < b.size; k++) {
        firsts.push(d[k * cols]);
        assert.equal(d[k * cols + 1], 0);
      }
    }
    assert.equal(new Set(firsts).size, 3);
    assert.deepEqual([...firsts].sort((a, b) => a - b), firsts);
    assert.ok(firsts.every((r) => Number.isInteger(r) && r >= 0 && r < rows));
    assert.match(String(src.info.preprocessing!.selection), /seeded random subset of 3 of 2048 samples/);
  });
});

describe('npy: labels', () => {
  const spec: InputSpec = { name: 'x', dtype: 'float32', shape: ['N', 1] };
  test('labels follow the samples (also in a subset); classes = max + 1', async () => {
    const data = await put('lab_x.npy', encodeNpy('float32', [8, 1], [0, 1, 2, 3, 4, 5, 6, 7]));
    const labels = await put('lab_y.npy', encodeNpy('int64', [8], [0, 1, 2, 0, 1, 2, 0, 4]));
    const src = await openCalibration({ inputs: [spec], data, labels });
    assert.deepEqual(src.info.labels, { source: labels, classes: 5 });
    const b = await collect(src, 3);
    assert.deepEqual(b.map((x) => [...x.labels!]), [[0, 1, 2], [0, 1, 2], [0, 4]]);
    const sub = await openCalibration({ inputs: [spec], data, labels, samples: 4, seed: 3 });
    const sb = await collect(sub, 4);
    const xs = values(sb, 'x');
    assert.deepEqual([...sb[0].labels!], xs.map((i) => [0, 1, 2, 0, 1, 2, 0, 4][i]));
  });
  test('labels count mismatch', async () => {
    const data = await put('lc_x.npy', encodeNpy('float32', [8, 1], new Float32Array(8)));
    const labels = await put('lc_y.npy', encodeNpy('int32', [7], new Array(7).fill(0)));
    await rejects(openCalibration({ inputs: [spec], data, labels }), /^lc_y\.npy has 7 labels but lc_x\.npy has 8 samples; give one label per sample$/, labels);
  });
  test('labels must be integers', async () => {
    const data = await put('lf_x.npy', encodeNpy('float32', [2, 1], new Float32Array(2)));
    const labels = await put('lf_y.npy', encodeNpy('float32', [2], [0, 1]));
    await rejects(openCalibration({ inputs: [spec], data, labels }), /lf_y\.npy: labels must be integers, found float32 \(<f4\)/, labels);
  });
  test('labels must be non-negative', async () => {
    const data = await put('ln_x.npy', encodeNpy('float32', [2, 1], new Float32Array(2)));
    const labels = await put('ln_y.npy', encodeNpy('int8', [2], [0, -1]));
    await rejects(openCalibration({ inputs: [spec], data, labels }), /ln_y\.npy: label -1 at index 1 is not a class index/);
  });
});

describe('npy: batching, subsets, checksum, cancellation', () => {
  const spec: InputSpec = { name: 'x', dtype: 'float32', shape: ['N', 2] };
  let file: string;
  before(async () => {
    file = await put('seq10.npy', encodeNpy('float32', [10, 2], Array.from({ length: 20 }, (_, i) => i)));
  });
  test('batch size that does not divide N; info records it', async () => {
    const src = await openCalibration({ inputs: [spec], data: file });
    const b = await collect(src, 3);
    assert.deepEqual(b.map((x) => x.size), [3, 3, 3, 1]);
    assert.equal(src.info.batchSize, 3);
    assert.deepEqual(values(b, 'x'), Array.from({ length: 20 }, (_, i) => i));
  });
  test('checksum: sha256 of the fed tensors, same for any batching and repeated iteration', async () => {
    const src = await openCalibration({ inputs: [spec], data: file });
    await collect(src, 3);
    const c3 = src.info.checksum;
    assert.match(c3!, /^[0-9a-f]{64}$/);
    await collect(src, 10);
    assert.equal(src.info.checksum, c3);
    await collect(src, 1);
    assert.equal(src.info.checksum, c3);
    const other = await put('seq10b.npy', encodeNpy('float32', [10, 2], Array.from({ length: 20 }, (_, i) => (i === 19 ? 0 : i))));
    const src2 = await openCalibration({ inputs: [spec], data: other });
    await collect(src2, 3);
    assert.notEqual(src2.info.checksum, c3);
  });
  test('seeded subset: deterministic, in file order, differs by seed', async () => {
    const pick = async (seed: number) => values(await collect(await openCalibration({ inputs: [spec], data: file, samples: 4, seed }), 4), 'x').filter((_, i) => i % 2 === 0).map((v) => v / 2);
    const a = await pick(1);
    assert.deepEqual(await pick(1), a);
    assert.equal(a.length, 4);
    assert.deepEqual([...a].sort((x, y) => x - y), a);
    const others = await Promise.all([2, 3, 4, 5].map(pick));
    assert.ok(others.some((o) => JSON.stringify(o) !== JSON.stringify(a)));
  });
  test('abort stops the iteration with an AbortError', async () => {
    const src = await openCalibration({ inputs: [spec], data: file });
    const ac = new AbortController();
    let seen = 0;
    await assert.rejects(
      (async () => {
        for await (const b of src.batches(2, ac.signal)) {
          seen += b.size;
          ac.abort();
        }
      })(),
      (e: Error) => e.name === 'AbortError',
    );
    assert.equal(seen, 2);
    const pre = new AbortController();
    pre.abort();
    await assert.rejects(collect(src, 2, pre.signal), (e: Error) => e.name === 'AbortError');
  });
  test('fixed batch dimension: only that batch size; samples rounded down', async () => {
    const src = await openCalibration({ inputs: [{ name: 'x', dtype: 'float32', shape: [4, 2] }], data: file });
    assert.equal(src.fixedBatchSize, 4);
    assert.equal(src.samples, 8);
    assert.match(src.info.note!, /rounded down from 10 to 8/);
    await rejects(collect(src, 3), /fixes its batch dimension to 4; use batch size 4, not 3/);
    assert.deepEqual((await collect(src, 4)).map((b) => b.size), [4, 4]);
  });
  test('bad batch size', async () => {
    const src = await openCalibration({ inputs: [spec], data: file });
    await rejects(collect(src, 0), /batch size must be a positive integer, got 0/);
  });
});

describe('npy: fixture files (written by numpy)', () => {
  const exists = (p: string) => access(p).then(() => true, () => false);
  test('npy_variants/expected.json: every variant reads as numpy wrote it', async () => {
    const vd = join(DATA, 'npy_variants');
    assert.ok(await exists(join(vd, 'expected.json')), 'fixture npy_variants/expected.json is missing (run test/fixtures/generate.py)');
    type Variant = { dtype: string; shape: number[]; fortran_order: boolean; first_values_c_order: (number | boolean)[] };
    const expected = JSON.parse(await readFile(join(vd, 'expected.json'), 'utf8')) as Record<string, Partial<Variant> & { members?: Record<string, Variant> }>;
    const toOrt: Record<string, OrtDtype> = { f2: 'float16', f4: 'float32', f8: 'float64', i1: 'int8', i2: 'int16', i4: 'int32', i8: 'int64', u1: 'uint8', u2: 'uint16', u4: 'uint32', u8: 'uint64', b1: 'bool' };
    let checked = 0;
    for (const [file, e] of Object.entries(expected)) {
      const path = join(vd, file);
      const members: [string, Variant][] = e.members ? Object.entries(e.members) : [['x', e as Variant]];
      for (const [k, m] of members) {
        // one input per member (the archive's members have different sample counts)
        const input: InputSpec = { name: k, dtype: toOrt[m.dtype.slice(1)], shape: ['N', ...m.shape.slice(1)] };
        if (m.shape.length === 0) {
          await rejects(openCalibration({ inputs: [input], data: path }), /found a scalar/);
          checked++;
          continue;
        }
        const src = await openCalibration({ inputs: [input], data: path });
        assert.deepEqual(src.info.inputs[0].shape, m.shape, `${file}:${k}`);
        if (e.members) assert.equal(src.info.source, 'npz');
        const arrays = src.info.preprocessing!.arrays as Record<string, { stored: string; fortranOrder?: string }>;
        assert.equal(arrays[k].stored, m.dtype, `${file}:${k}`);
        assert.equal(arrays[k].fortranOrder !== undefined, m.fortran_order, `${file}:${k} fortran order`);
        let got = values(await collect(src, 1), k);
        if (input.dtype === 'float16') got = got.map(halfToFloat);
        const want = m.first_values_c_order.map(Number);
        assert.deepEqual(got.slice(0, want.length), want, `${file}:${k}`);
        checked++;
      }
    }
    assert.ok(checked >= 15, `checked ${checked} arrays`);
  });
  test('digits_x.npy feeds vit_tiny; bad_shape, has_nan and labels_wrong_count fail clearly', async () => {
    const labels = join(DATA, 'digits_labels.npy');
    const src = await openCalibration({ inputs: [VIT_DIGITS], data: join(DATA, 'digits_x.npy'), labels });
    assert.equal(src.samples, 256);
    assert.equal(src.info.labels!.classes, 10);
    const b = await collect(src, 100);
    assert.deepEqual(b.map((x) => x.size), [100, 100, 56]);
    const px = values(b, 'pixel_values');
    assert.ok(px.every((v) => v >= 0 && v <= 1));
    await rejects(openCalibration({ inputs: [VIT_DIGITS], data: join(DATA, 'bad_shape.npy') }), /^bad_shape\.npy: input 'pixel_values' expects shape \[N,1,16,16\], found \[16,16,16\]$/);
    const nan = await openCalibration({ inputs: [VIT_DIGITS], data: join(DATA, 'has_nan.npy') });
    await rejects(collect(nan, 4), /^has_nan\.npy: input 'pixel_values' has NaN at sample 3, element \[0,5,7\]/);
    await rejects(openCalibration({ inputs: [VIT_DIGITS], data: join(DATA, 'digits_x.npy'), labels: join(DATA, 'labels_wrong_count.npy') }), /labels_wrong_count\.npy has 255 labels but digits_x\.npy has 256 samples/);
  });
});
