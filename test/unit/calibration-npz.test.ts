// .npz archives (stored and deflated; written by numpy and by a small zip writer here) and
// folders of <input>.npy files.

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { writeFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { crc32, deflateRawSync } from 'node:zlib';
import {
  openCalibration, encodeNpy,
  type InputSpec,
} from '../../src/engine/calibration/index';
import { BERT, DATA, FIXTURES, VIT_DIGITS, collect, rejects, useTempDir, values } from '../helpers/calibration';

const tmp = useTempDir('blocklens-npz-');
const { put } = tmp;

/** A minimal zip writer (no zip64): stored or raw-deflate entries. */
function zip(entries: { name: string; data: Uint8Array; deflate: boolean }[]): Uint8Array {
  const parts: Buffer[] = [];
  const central: Buffer[] = [];
  let offset = 0;
  for (const e of entries) {
    const name = Buffer.from(e.name, 'utf8');
    const body = e.deflate ? deflateRawSync(e.data) : Buffer.from(e.data);
    const crc = crc32(e.data);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt16LE(0, 6);
    local.writeUInt16LE(e.deflate ? 8 : 0, 8);
    local.writeUInt16LE(0, 10);
    local.writeUInt16LE(0x21, 12);
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(body.length, 18);
    local.writeUInt32LE(e.data.length, 22);
    local.writeUInt16LE(name.length, 26);
    local.writeUInt16LE(0, 28);
    const cd = Buffer.alloc(46);
    cd.writeUInt32LE(0x02014b50, 0);
    cd.writeUInt16LE(20, 4);
    cd.writeUInt16LE(20, 6);
    cd.writeUInt16LE(0, 8);
    cd.writeUInt16LE(e.deflate ? 8 : 0, 10);
    cd.writeUInt16LE(0, 12);
    cd.writeUInt16LE(0x21, 14);
    cd.writeUInt32LE(crc, 16);
    cd.writeUInt32LE(body.length, 20);
    cd.writeUInt32LE(e.data.length, 24);
    cd.writeUInt16LE(name.length, 28);
    cd.writeUInt32LE(offset, 42);
    central.push(cd, name);
    parts.push(local, name, body);
    offset += 30 + name.length + body.length;
  }
  const cdBytes = Buffer.concat(central);
  const eocd = Buffer.alloc(22);
  eocd.writeUInt32LE(0x06054b50, 0);
  eocd.writeUInt16LE(entries.length, 8);
  eocd.writeUInt16LE(entries.length, 10);
  eocd.writeUInt32LE(cdBytes.length, 12);
  eocd.writeUInt32LE(offset, 16);
  return Buffer.concat([...parts, cdBytes, eocd]);
}

describe('npz written by numpy (np.savez / np.savez_compressed, ZIP64 extra fields)', () => {
  // np.savez(f, input_ids=arange(12).reshape(3,4), attention_mask=ones((3,4)), labels=[2,0,1]); int64
  const NPZ = {
    stored: 'UEsDBC0AAAAAAAAAIQAIYuax//////////8NABQAaW5wdXRfaWRzLm5weQEAEADgAAAAAAAAAOAAAAAAAAAAk05VTVBZAQB2AHsnZGVzY3InOiAnPGk4JywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKDMsIDQpLCB9ICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoAAAAAAAAAAAEAAAAAAAAAAgAAAAAAAAADAAAAAAAAAAQAAAAAAAAABQAAAAAAAAAGAAAAAAAAAAcAAAAAAAAACAAAAAAAAAAJAAAAAAAAAAoAAAAAAAAACwAAAAAAAABQSwMELQAAAAAAAAAhAPPlfYv//////////xIAFABhdHRlbnRpb25fbWFzay5ucHkBABAA4AAAAAAAAADgAAAAAAAAAJNOVU1QWQEAdgB7J2Rlc2NyJzogJzxpOCcsICdmb3J0cmFuX29yZGVyJzogRmFsc2UsICdzaGFwZSc6ICgzLCA0KSwgfSAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAKAQAAAAAAAAABAAAAAAAAAAEAAAAAAAAAAQAAAAAAAAABAAAAAAAAAAEAAAAAAAAAAQAAAAAAAAABAAAAAAAAAAEAAAAAAAAAAQAAAAAAAAABAAAAAAAAAAEAAAAAAAAAUEsDBC0AAAAAAAAAIQCKGs4T//////////8KABQAbGFiZWxzLm5weQEAEACYAAAAAAAAAJgAAAAAAAAAk05VTVBZAQB2AHsnZGVzY3InOiAnPGk4JywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKDMsKSwgfSAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoCAAAAAAAAAAAAAAAAAAAAAQAAAAAAAABQSwECLQMtAAAAAAAAACEACGLmseAAAADgAAAADQAAAAAAAAAAAAAAgAEAAAAAaW5wdXRfaWRzLm5weVBLAQItAy0AAAAAAAAAIQDz5X2L4AAAAOAAAAASAAAAAAAAAAAAAACAAR8BAABhdHRlbnRpb25fbWFzay5ucHlQSwECLQMtAAAAAAAAACEAihrOE5gAAACYAAAACgAAAAAAAAAAAAAAgAFDAgAAbGFiZWxzLm5weVBLBQYAAAAAAwADALMAAAAXAwAAAAA=',
    deflated: 'UEsDBC0AAAAIAAAAIQAIYuax//////////8NABQAaW5wdXRfaWRzLm5weQEAEADgAAAAAAAAAGUAAAAAAAAAm+wX6hsQychQxlCtnpJanFykbqWgbpNpoa6joJ6WX1RSlJgXn1+UkgoSd0vMKU4FihdnJBakAvkaxjoKJpo6CrUKZAMuBihghNJMUJoZSrNAaVYozQal2aE0B5TmhNIwA7mhNABQSwMELQAAAAgAAAAhAPPlfYv//////////xIAFABhdHRlbnRpb25fbWFzay5ucHkBABAA4AAAAAAAAABMAAAAAAAAAJvsF+obEMnIUMZQrZ6SWpxcpG6loG6TaaGuo6Cell9UUpSYF59flJIKEndLzClOBYoXZyQWpAL5GsY6CiaaOgq1CmQDLkYGCKAVDQBQSwMELQAAAAgAAAAhAIoazhP//////////woAFABsYWJlbHMubnB5AQAQAJgAAAAAAAAASgAAAAAAAACb7BfqGxDJyFDGUK2eklqcXKRupaBuk2mhrqOgnpZfVFKUmBefX5SSChJ3S8wpTgWKF2ckFqQC+RrGOpo6CrUKFAAuJgZUwAilAVBLAQItAy0AAAAIAAAAIQAIYuaxZQAAAOAAAAANAAAAAAAAAAAAAACAAQAAAABpbnB1dF9pZHMubnB5UEsBAi0DLQAAAAgAAAAhAPPlfYtMAAAA4AAAABIAAAAAAAAAAAAAAIABpAAAAGF0dGVudGlvbl9tYXNrLm5weVBLAQItAy0AAAAIAAAAIQCKGs4TSgAAAJgAAAAKAAAAAAAAAAAAAACAATQBAABsYWJlbHMubnB5UEsFBgAAAAADAAMAswAAALoBAAAAAA==',
  };
  const checksums: string[] = [];
  for (const kind of ['stored', 'deflated'] as const) {
    test(kind, async () => {
      const file = await put(`np_${kind}.npz`, Buffer.from(NPZ[kind], 'base64'));
      const src = await openCalibration({ inputs: BERT, data: file });
      assert.equal(src.info.source, 'npz');
      assert.equal(src.samples, 3);
      assert.deepEqual(src.info.labels, { source: `np_${kind}.npz:labels`, classes: 3 });
      assert.deepEqual(src.info.inputs, [
        { name: 'input_ids', dtype: 'int64', shape: [3, 4] },
        { name: 'attention_mask', dtype: 'int64', shape: [3, 4] },
      ]);
      const b = await collect(src, 2);
      assert.deepEqual(b.map((x) => x.size), [2, 1]);
      assert.deepEqual(values(b, 'input_ids'), Array.from({ length: 12 }, (_, i) => i));
      assert.deepEqual(values(b, 'attention_mask'), new Array(12).fill(1));
      assert.ok(b[0].feeds.input_ids.data instanceof BigInt64Array);
      assert.deepEqual(b.flatMap((x) => [...x.labels!]), [2, 0, 1]);
      checksums.push(src.info.checksum!);
      if (checksums.length === 2) assert.equal(checksums[0], checksums[1], 'stored and deflated feed the same tensors');
    });
  }
});

describe('npz written here: stored and deflated, subsets, Fortran members', () => {
  const N = 300;
  const T = 37;
  const ids = Array.from({ length: N * T }, (_, i) => (i * 7919) % 1000);
  const mask = Array.from({ length: N * T }, (_, i) => (i % T < 20 + (Math.floor(i / T) % 17) ? 1 : 0));
  const specs: InputSpec[] = [
    { name: 'input_ids', dtype: 'int64', shape: ['batch', 'seq'] },
    { name: 'attention_mask', dtype: 'int64', shape: ['batch', 'seq'] },
  ];
  const members = (deflate: boolean) => [
    { name: 'input_ids.npy', data: encodeNpy('int32', [N, T], ids), deflate },
    { name: 'attention_mask.npy', data: encodeNpy('uint8', [N, T], mask, { fortranOrder: true }), deflate },
  ];
  const sums = new Map<string, string>();

  for (const deflate of [false, true]) {
    test(deflate ? 'deflated' : 'stored', async () => {
      const file = await put(`mine_${deflate}.npz`, zip(members(deflate)));
      const src = await openCalibration({ inputs: specs, data: file });
      const b = await collect(src, 64);
      assert.deepEqual(b.map((x) => x.size), [64, 64, 64, 64, 44]);
      assert.deepEqual(values(b, 'input_ids'), ids);
      assert.deepEqual(values(b, 'attention_mask'), mask);
      sums.set(`${deflate}`, src.info.checksum!);
      // A seeded subset reads the same rows from either kind of member.
      const sub = await openCalibration({ inputs: specs, data: file, samples: 25, seed: 9 });
      const sb = await collect(sub, 7);
      assert.deepEqual(sb.map((x) => x.size), [7, 7, 7, 4]);
      const got = values(sb, 'input_ids');
      const rows: number[] = [];
      for (let r = 0; r < 25; r++) {
        const first = got[r * T];
        const row = ids.findIndex((v, i) => i % T === 0 && v === first && ids.slice(i, i + T).every((x, k) => x === got[r * T + k]));
        assert.ok(row >= 0);
        rows.push(row / T);
      }
      assert.deepEqual([...rows].sort((x, y) => x - y), rows, 'subset kept in file order');
      const gotMask = values(sb, 'attention_mask');
      rows.forEach((row, r) => assert.deepEqual(gotMask.slice(r * T, r * T + T), mask.slice(row * T, row * T + T)));
      sums.set(`${deflate}-sub`, sub.info.checksum!);
      if (sums.size === 4) {
        assert.equal(sums.get('false'), sums.get('true'));
        assert.equal(sums.get('false-sub'), sums.get('true-sub'));
      }
    });
  }

  test('one-input model takes the only array whatever its name (np.savez positional arr_0)', async () => {
    const file = await put('arr0.npz', zip([{ name: 'arr_0.npy', data: encodeNpy('float32', [3, 2], [1, 2, 3, 4, 5, 6]), deflate: true }]));
    const src = await openCalibration({ inputs: [{ name: 'x', dtype: 'float32', shape: ['N', 2] }], data: file });
    assert.deepEqual(values(await collect(src, 3), 'x'), [1, 2, 3, 4, 5, 6]);
    assert.match(src.info.note!, /The only array, 'arr_0', was used for input 'x'/);
  });

  test('errors: missing input lists what the archive has; counts differ; corrupt zip; bad member', async () => {
    const file = await put('partial.npz', zip([
      { name: 'input_ids.npy', data: encodeNpy('int64', [2, 3], [1, 2, 3, 4, 5, 6]), deflate: false },
      { name: 'token_type_ids.npy', data: encodeNpy('int64', [2, 3], [0, 0, 0, 0, 0, 0]), deflate: false },
    ]));
    await rejects(openCalibration({ inputs: specs, data: file }), /^partial\.npz has no array for input 'attention_mask' \(it has: input_ids, token_type_ids\); save it as np\.savez\('partial\.npz', attention_mask=\.\.\.\)$/, file);
    const counts = await put('counts.npz', zip([
      { name: 'input_ids.npy', data: encodeNpy('int64', [2, 3], [1, 2, 3, 4, 5, 6]), deflate: true },
      { name: 'attention_mask.npy', data: encodeNpy('int64', [1, 3], [1, 1, 1]), deflate: true },
    ]));
    await rejects(openCalibration({ inputs: specs, data: counts }), /counts\.npz: inputs have different sample counts \(input_ids: 2, attention_mask: 1\)/);
    const corrupt = await put('corrupt.npz', new TextEncoder().encode('not a zip file at all'));
    await rejects(openCalibration({ inputs: specs, data: corrupt }), /corrupt\.npz: not a readable \.npz \(zip\) archive/, corrupt);
    const badMember = await put('badmember.npz', zip([{ name: 'x.npy', data: new TextEncoder().encode('hello, not npy'), deflate: true }]));
    await rejects(openCalibration({ inputs: [{ name: 'x', dtype: 'float32', shape: ['N'] }], data: badMember }), /badmember\.npz:x: not a \.npy file/, badMember);
    const shape = await put('shape.npz', zip([{ name: 'x.npy', data: encodeNpy('float32', [4, 3], new Float32Array(12)), deflate: true }]));
    await rejects(openCalibration({ inputs: [{ name: 'x', dtype: 'float32', shape: ['N', 4] }], data: shape }), /^shape\.npz:x: input 'x' expects shape \[N,4\], found \[4,3\]$/, shape);
    const nan = await put('nan.npz', zip([{ name: 'x.npy', data: encodeNpy('float32', [4, 3], [0, 0, 0, 0, 0, 0, 0, NaN, 0, 0, 0, 0]), deflate: true }]));
    await rejects(collect(await openCalibration({ inputs: [{ name: 'x', dtype: 'float32', shape: ['N', 3] }], data: nan }), 4), /^nan\.npz:x: input 'x' has NaN at sample 2, element \[1\]/, nan);
  });

  test('named dims shared by inputs must agree', async () => {
    const file = await put('seqs.npz', zip([
      { name: 'input_ids.npy', data: encodeNpy('int64', [2, 3], [1, 2, 3, 4, 5, 6]), deflate: false },
      { name: 'attention_mask.npy', data: encodeNpy('int64', [2, 4], new Array(8).fill(1)), deflate: false },
    ]));
    await rejects(openCalibration({ inputs: specs, data: file }), /seqs\.npz:attention_mask: input 'attention_mask' has dimension 'seq' = 4 but another input has it = 3/);
  });

  test('abort during a deflated stream', async () => {
    const file = join(tmp.path, 'mine_true.npz');
    const src = await openCalibration({ inputs: specs, data: file });
    const ac = new AbortController();
    let n = 0;
    await assert.rejects(
      (async () => {
        for await (const b of src.batches(10, ac.signal)) {
          n += b.size;
          if (n === 30) ac.abort();
        }
      })(),
      (e: Error) => e.name === 'AbortError',
    );
    assert.equal(n, 30);
  });
});

describe('folder of <input>.npy files', () => {
  test('one file per input; labels.npy beside them is used as labels', async () => {
    const d = join(tmp.path, 'folder');
    await mkdir(d);
    await writeFile(join(d, 'input_ids.npy'), encodeNpy('int64', [4, 2], [1, 2, 3, 4, 5, 6, 7, 8]));
    await writeFile(join(d, 'attention_mask.npy'), encodeNpy('int64', [4, 2], [1, 1, 1, 0, 1, 1, 1, 1]));
    await writeFile(join(d, 'labels.npy'), encodeNpy('int64', [4], [1, 0, 1, 0]));
    const src = await openCalibration({ inputs: BERT, data: d });
    assert.equal(src.info.source, 'npy-folder');
    assert.deepEqual(src.info.labels, { source: 'labels.npy', classes: 2 });
    const b = await collect(src, 3);
    assert.deepEqual(values(b, 'input_ids'), [1, 2, 3, 4, 5, 6, 7, 8]);
    assert.deepEqual(values(b, 'attention_mask'), [1, 1, 1, 0, 1, 1, 1, 1]);
    assert.deepEqual(b.flatMap((x) => [...x.labels!]), [1, 0, 1, 0]);
  });
  test('a missing input file is named', async () => {
    const d = join(tmp.path, 'folder2');
    await mkdir(d);
    await writeFile(join(d, 'input_ids.npy'), encodeNpy('int64', [4, 2], [1, 2, 3, 4, 5, 6, 7, 8]));
    await rejects(openCalibration({ inputs: BERT, data: d }), /^folder folder2 has no array for input 'attention_mask' \(it has: input_ids\); add attention_mask\.npy$/, d);
  });
  test('an empty folder is refused', async () => {
    const d = join(tmp.path, 'empty');
    await mkdir(d);
    await rejects(openCalibration({ inputs: BERT, data: d }), /empty: folder has neither <input>\.npy files nor images/, d);
  });
});

describe('npz fixtures', () => {
  test('bert_tokens.npz (np.savez, stored, ZIP64) with bert_labels.npy', async () => {
    const src = await openCalibration({ inputs: BERT, data: join(DATA, 'bert_tokens.npz'), labels: join(DATA, 'bert_labels.npy') });
    assert.equal(src.samples, 256);
    const seq = JSON.parse(readFileSync(join(FIXTURES, 'manifest.json'), 'utf8')).models.bert_tiny.train_seq_len;
    assert.ok(Number.isInteger(seq) && seq > 1);
    assert.deepEqual(src.info.inputs.map((i) => i.shape), [[256, seq], [256, seq]]);
    assert.equal(src.info.labels!.classes, 4);
    const b = await collect(src, 100);
    assert.deepEqual(b.map((x) => x.size), [100, 100, 56]);
    const ids = values(b, 'input_ids');
    const mask = values(b, 'attention_mask');
    assert.equal(ids[0], 2, 'each row starts with [CLS] (id 2)');
    assert.ok(mask.every((m) => m === 0 || m === 1));
    for (let i = 0; i < ids.length; i++) if (mask[i] === 0) assert.equal(ids[i], 0, 'padding is id 0');
  });
  test('digits.npz (np.savez_compressed, deflated) matches digits_x.npy', async () => {
    const a = await openCalibration({ inputs: [VIT_DIGITS], data: join(DATA, 'digits.npz') });
    const b = await openCalibration({ inputs: [VIT_DIGITS], data: join(DATA, 'digits_x.npy') });
    await collect(a, 50);
    await collect(b, 64);
    assert.equal(a.samples, 256);
    assert.equal(a.info.checksum, b.info.checksum);
  });
});
