import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { OnnxFormatError } from '../../src/engine/onnx/errors';
import { WireReader, WireType, WireWriter } from '../../src/engine/onnx/wire';

const bytesOf = (f: (w: WireWriter) => void): number[] => {
  const w = new WireWriter();
  f(w);
  return [...w.finish()];
};

describe('wire: varints', () => {
  it('encodes the boundary values of uint32 varints', () => {
    assert.deepEqual(bytesOf((w) => w.uint32(0)), [0x00]);
    assert.deepEqual(bytesOf((w) => w.uint32(127)), [0x7f]);
    assert.deepEqual(bytesOf((w) => w.uint32(128)), [0x80, 0x01]);
    assert.deepEqual(bytesOf((w) => w.uint32(300)), [0xac, 0x02]);
    assert.deepEqual(bytesOf((w) => w.uint32(0xffffffff)), [0xff, 0xff, 0xff, 0xff, 0x0f]);
  });

  it('writes negative int64 and int32 as 10-byte varints', () => {
    const minusOne = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01];
    assert.deepEqual(bytesOf((w) => w.int64(-1n)), minusOne);
    assert.deepEqual(bytesOf((w) => w.int32(-1)), minusOne);
    assert.deepEqual(bytesOf((w) => w.uint64(0xffffffffffffffffn)), minusOne);
  });

  it('round-trips 64-bit values exactly', () => {
    const signed = [0n, 1n, 127n, 128n, 2n ** 31n, 2n ** 32n, 2n ** 53n + 1n, 2n ** 63n - 1n, -1n, -2n, -(2n ** 53n) - 1n, -(2n ** 63n)];
    for (const v of signed) {
      const r = new WireReader(new Uint8Array(bytesOf((w) => w.int64(v))));
      assert.equal(r.int64(), v, `int64 ${v}`);
      assert.equal(r.pos, r.buf.length);
    }
    const unsigned = [0n, 2n ** 53n + 1n, 2n ** 63n, 2n ** 64n - 1n];
    for (const v of unsigned) {
      const r = new WireReader(new Uint8Array(bytesOf((w) => w.uint64(v))));
      assert.equal(r.uint64(), v, `uint64 ${v}`);
    }
    assert.equal(new WireReader(new Uint8Array(bytesOf((w) => w.int64(2n ** 53n + 1n)))).int64(), 9007199254740993n);
  });

  it('reads int32 from a sign-extended varint', () => {
    const r = new WireReader(new Uint8Array(bytesOf((w) => w.int32(-123456))));
    assert.equal(r.int32(), -123456);
  });

  it('round-trips fixed-width values and strings', () => {
    const bytes = new Uint8Array(
      bytesOf((w) => {
        w.float(1.5);
        w.double(-Math.PI);
        w.fixed32(0xdeadbeef);
        w.string('héllo, ✓');
        w.string('ascii');
      }),
    );
    const r = new WireReader(bytes);
    assert.equal(r.float(), 1.5);
    assert.equal(r.double(), -Math.PI);
    assert.equal(r.fixed32(), 0xdeadbeef);
    assert.equal(r.string(), 'héllo, ✓');
    assert.equal(r.string(), 'ascii');
  });

  it('length-prefixes nested forks correctly, including large payloads kept by reference', () => {
    const big = new Uint8Array(5000).fill(7);
    const w = new WireWriter(16);
    w.tag(1, WireType.LEN);
    w.fork();
    w.tag(2, WireType.LEN);
    w.fork();
    w.bytes(big);
    w.ldelim();
    w.tag(3, WireType.VARINT);
    w.uint32(5);
    w.ldelim();
    const out = w.finish();
    const r = new WireReader(out);
    assert.equal(r.uint32(), (1 << 3) | 2);
    const end1 = r.lenEnd();
    assert.equal(end1, out.length);
    assert.equal(r.uint32(), (2 << 3) | 2);
    const end2 = r.lenEnd();
    assert.equal(r.bytes().length, 5000);
    assert.equal(r.pos, end2);
    assert.equal(r.uint32(), (3 << 3) | 0);
    assert.equal(r.uint32(), 5);
    assert.equal(r.pos, end1);
  });
});

describe('wire: malformed input', () => {
  it('throws "truncated at byte N" on a cut varint', () => {
    assert.throws(() => new WireReader(new Uint8Array([0x80])).int64(), { name: 'OnnxFormatError', message: 'truncated at byte 1' });
    assert.throws(() => new WireReader(new Uint8Array([0xff, 0xff, 0xff])).uint32(), /truncated at byte 3/);
  });

  it('throws on a length running past the end', () => {
    const r = new WireReader(new Uint8Array([0x05, 0x61, 0x62]));
    assert.throws(() => r.bytes(), (e: unknown) => e instanceof OnnxFormatError && /^truncated at byte 3/.test(e.message));
  });

  it('throws on truncated fixed-width values', () => {
    assert.throws(() => new WireReader(new Uint8Array([1, 2, 3])).float(), /truncated at byte 3/);
    assert.throws(() => new WireReader(new Uint8Array([1, 2, 3, 4, 5])).double(), /truncated at byte 5/);
  });

  it('throws on varints longer than 10 bytes', () => {
    const r = new WireReader(new Uint8Array(11).fill(0xff));
    assert.throws(() => r.int64(), /varint longer than 10 bytes/);
  });

  it('throws on invalid wire types when skipping', () => {
    const r = new WireReader(new Uint8Array([0x0f, 0x00]));
    const tag = r.uint32();
    assert.throws(() => r.skip(tag & 7, tag >>> 3, 0), { message: 'invalid wire type 7 at byte 0' });
  });

  it('skips deprecated groups', () => {
    // field 5 start-group, field 1 varint 3, field 5 end-group, then field 2 varint 9
    const r = new WireReader(new Uint8Array([0x2b, 0x08, 0x03, 0x2c, 0x10, 0x09]));
    const tag = r.uint32();
    r.skip(tag & 7, tag >>> 3, 0);
    assert.equal(r.pos, 4);
    assert.equal(r.uint32(), 0x10);
  });
});
