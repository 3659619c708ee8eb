// The binary partial container (src/engine/jobs/partial-file.ts): arrays travel as raw bytes, never
// through JSON, so a shard's state larger than one JS string can be written and read back.
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, describe, it } from 'node:test';
import { readPartial, MergeError } from '../../src/engine/jobs/merge';
import { readPartialFile, writePartialFile } from '../../src/engine/jobs/partial-file';
import { PARTIAL_FORMAT, PARTIAL_VERSION } from '../../src/engine/jobs/partial';
import { decodeF32, decodeF64, decodeI32, encodeArray } from '../../src/engine/pass/snapshot';

const tmp = mkdtempSync(path.join(tmpdir(), 'blocklens-partial-file-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

/** Deterministic doubles covering odd bit patterns (NaN payloads, −0, subnormals, ±∞). */
function doubles(n: number, seed: number): Float64Array {
  const a = new Float64Array(n);
  const u = new Uint32Array(a.buffer);
  let s = seed >>> 0;
  for (let i = 0; i < u.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    u[i] = s;
  }
  if (n > 5) a.set([-0, Number.MIN_VALUE, Infinity, -Infinity, NaN], 0);
  return a;
}

function partialWith(consumers: Record<string, unknown>) {
  return {
    format: PARTIAL_FORMAT, version: PARTIAL_VERSION, tool: 'test', modelIdentity: 'a'.repeat(64), settings: { samples: 10 },
    shard: { index: 0, count: 1 }, range: { start: 0, end: 10 }, totalSamples: 10, labels: false, meta: { note: 'ünïcode ✓' }, timings: {}, consumers,
  };
}

const bytesOf = (a: ArrayBufferView) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

describe('binary partial container', () => {
  const big = doubles((50 * 1024 * 1024) / 8, 7); // 50 MB of float64
  const f32 = Float32Array.from({ length: 1001 }, (_, i) => Math.fround(i / 7 - 3));
  const i32 = Int32Array.from({ length: 3 }, (_, i) => -(i * 100003));
  const file = path.join(tmp, 'big.partial');

  it('a 50 MB array round-trips byte for byte and the header stays small (no array data in JSON)', async () => {
    const src = partialWith({
      gram: { S: encodeArray(big), empty: encodeArray(new Float64Array(0)), nothing: null },
      list: [encodeArray(f32), { ids: encodeArray(i32) }],
      scalar: 3.5,
    });
    await writePartialFile(file, src);
    const raw = readFileSync(file);
    const headerLength = Number(raw.readBigUInt64LE(16));
    assert.ok(headerLength < 4096, `header of ${headerLength} bytes`);
    assert.ok(raw.length >= big.byteLength + f32.byteLength + i32.byteLength && raw.length < big.byteLength + 8192, `file of ${raw.length} bytes`);
    // The header is the tree with references where the arrays were.
    const header = JSON.parse(raw.subarray(24, 24 + headerLength).toString('utf8'));
    assert.deepEqual(Object.keys(header.consumers.gram.S).sort(), ['blob', 'byteLength', 'dtype', 'length', 'offset']);
    assert.equal(header.consumers.gram.S.offset % 8, 0);
    assert.equal(header.consumers.gram.S.byteLength, big.byteLength);
    assert.ok(bytesOf(big).equals(raw.subarray(header.consumers.gram.S.offset, header.consumers.gram.S.offset + big.byteLength)));

    const back = (await readPartial(file)) as unknown as ReturnType<typeof partialWith>;
    const c = back.consumers as any;
    const S = decodeF64(c.gram.S, 'S');
    assert.equal(S.length, big.length);
    assert.ok(bytesOf(S).equals(bytesOf(big)), 'float64 bytes differ');
    assert.equal(decodeF64(c.gram.empty, 'empty').length, 0);
    assert.equal(c.gram.nothing, null);
    assert.ok(bytesOf(decodeF32(c.list[0], 'f32')).equals(bytesOf(f32)));
    assert.deepEqual(Array.from(decodeI32(c.list[1].ids, 'i32')), Array.from(i32));
    assert.equal(c.scalar, 3.5);
    assert.equal(back.meta.note, 'ünïcode ✓');
    assert.equal(back.modelIdentity, 'a'.repeat(64));
    // No temporary file left next to the target.
    assert.deepEqual(readdirSync(tmp).filter((f: string) => f.endsWith('.tmp')), []);
  });

  it('a truncated partial is refused with one error naming the file', async () => {
    const cut = path.join(tmp, 'cut.partial');
    writeFileSync(cut, readFileSync(file).subarray(0, statSync(file).size - 1000));
    await assert.rejects(readPartial(cut), (e: Error) => e instanceof MergeError && e.file === cut && /truncated partial: blob \d+ \(\d+ bytes at \d+\) ends past the end/.test(e.message));
    truncateSync(cut, 30); // inside the header
    await assert.rejects(readPartial(cut), (e: Error) => e instanceof MergeError && e.file === cut && /truncated or corrupt partial: a \d+-byte header in a 30-byte file/.test(e.message));
    truncateSync(cut, 10); // inside the prefix
    await assert.rejects(readPartialFile(cut), (e: Error) => e.message.startsWith(`${cut}: truncated partial`));
  });

  it('a foreign file (wrong magic) and a corrupt header are refused', async () => {
    const foreign = path.join(tmp, 'foreign.bin');
    const bytes = Buffer.from(readFileSync(file).subarray(0, 4096));
    bytes.write('NOTAPART', 0, 'latin1');
    writeFileSync(foreign, bytes);
    await assert.rejects(readPartialFile(foreign), (e: Error) => e.message === `${foreign}: not a BlockLens partial (no partial magic)`);
    await assert.rejects(readPartial(foreign), (e: Error) => e instanceof MergeError && e.file === foreign && /not a BlockLens partial/.test(e.message));
    const bad = path.join(tmp, 'bad-blob.partial');
    const small = path.join(tmp, 'small.partial');
    await writePartialFile(small, partialWith({ x: encodeArray(Float64Array.of(1, 2, 3)) }));
    const raw = readFileSync(small);
    const h = Number(raw.readBigUInt64LE(16));
    const text = raw.subarray(24, 24 + h).toString('utf8').replace('"byteLength":24', '"byteLength":25');
    assert.equal(Buffer.byteLength(text), h);
    writeFileSync(bad, Buffer.concat([raw.subarray(0, 24), Buffer.from(text), raw.subarray(24 + h)]));
    await assert.rejects(readPartial(bad), (e: Error) => e instanceof MergeError && /corrupt partial: blob 0 holds 25 bytes for 3 f64 values/.test(e.message));
  });

  it('an old JSON partial (version 1) is refused by version', async () => {
    const old = path.join(tmp, 'old.json');
    writeFileSync(old, JSON.stringify({ ...partialWith({}), version: 1 }));
    await assert.rejects(readPartial(old), (e: Error) => e instanceof MergeError && /partial format version 1; this blocklens reads version 2/.test(e.message));
  });
});
