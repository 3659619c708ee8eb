import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RepresentationStore } from '../../src/engine/stats/store.js';
import { Rng, deriveSeed, randperm, seededPermutation, hashUniform } from '../../src/engine/random.js';

/** Rows whose first value encodes the row index t (as t·scale), width d. */
function rows(start: number, count: number, d: number, scale: number): Float32Array {
  const out = new Float32Array(count * d);
  for (let r = 0; r < count; r++) for (let k = 0; k < d; k++) out[r * d + k] = (start + r) * scale + k;
  return out;
}

test('append in batches; float64 matrix in row order; per-block widths', () => {
  const s = new RepresentationStore({ blocks: 2 });
  s.append('input', rows(0, 3, 2, 1), 3);
  s.append(0, rows(0, 3, 2, 1), 3);
  s.append(1, new Float64Array([0.1, 0.2, 0.3, 1.1, 1.2, 1.3, 2.1, 2.2, 2.3]), 3);
  s.append('input', rows(3, 2, 2, 1), 2);
  s.append(0, rows(3, 2, 2, 1), 2);
  s.append(1, new Float64Array([3.1, 3.2, 3.3, 4.1, 4.2, 4.3]), 2);
  assert.equal(s.n, 5);
  assert.deepEqual(s.dims, [2, 3]);
  assert.equal(s.inputDim, 2);
  assert.equal(s.hasInput, true);
  assert.deepEqual([...s.matrix(0)], [0, 1, 1, 2, 2, 3, 3, 4, 4, 5]);
  const m1 = s.matrix(1);
  assert.ok(m1 instanceof Float64Array);
  assert.equal(m1.length, 15);
  // Stored as float32: 0.1 comes back as Math.fround(0.1).
  assert.equal(m1[0], Math.fround(0.1));
  assert.equal(m1[14], Math.fround(4.3));
  assert.deepEqual([...s.sampleIds()], [0, 1, 2, 3, 4]);
  assert.equal(s.rowsAreTokens, false);
  assert.equal(s.subsampled, false);
});

test('many chunks: large widths round-trip exactly', () => {
  const d = 5000; // chunk holds 13 rows
  const s = new RepresentationStore({ blocks: 1 });
  for (let b = 0; b < 4; b++) s.append(0, rows(b * 10, 10, d, 0.5), 10);
  const m = s.matrix(0);
  assert.equal(s.n, 40);
  for (const t of [0, 12, 13, 27, 39]) {
    assert.equal(m[t * d], t * 0.5);
    assert.equal(m[t * d + d - 1], t * 0.5 + d - 1);
  }
});

test('mismatched row counts and widths are rejected', () => {
  const s = new RepresentationStore({ blocks: 2 });
  s.append(0, rows(0, 3, 2, 1), 3);
  s.append(1, rows(0, 2, 2, 1), 2);
  assert.throws(() => s.n, /row counts differ/);
  assert.throws(() => s.append(0, new Float32Array(9), 3), /width 3 differs from 2/);
  assert.throws(() => s.append(0, new Float32Array(7), 3), /do not split|differs/);
  assert.throws(() => s.append(2, new Float32Array(2), 1), /out of range/);
  assert.throws(() => s.matrix('input'), /no rows/);
  const p = new RepresentationStore({ blocks: 1, dims: [4] });
  assert.throws(() => p.append(0, new Float32Array(6), 2), /expected 2×4/);
});

test('row budget: seeded reservoir, same rows for every block whatever the append order', () => {
  const total = 1000, maxRows = 100;
  const a = new RepresentationStore({ blocks: 2, maxRows, seed: 5 });
  // Block 0 in batches of 7, block 1 all at once afterwards, sample ids in batches of 50.
  for (let t = 0; t < total; t += 7) a.append(0, rows(t, Math.min(7, total - t), 1, 1), Math.min(7, total - t));
  a.append(1, rows(0, total, 2, 10), total);
  for (let t = 0; t < total; t += 50) a.appendSampleIds(Array.from({ length: 50 }, (_, i) => 2 * (t + i)));
  assert.equal(a.n, maxRows);
  assert.equal(a.rowsSeen, total);
  assert.equal(a.subsampled, true);
  const m0 = a.matrix(0);
  const m1 = a.matrix(1);
  const idx = a.rowIndices();
  const ids = a.sampleIds();
  for (let i = 0; i < maxRows; i++) {
    assert.equal(m0[i], idx[i]);
    assert.equal(m1[2 * i], idx[i] * 10);
    assert.equal(ids[i], 2 * idx[i]);
    if (i > 0) assert.ok(idx[i] > idx[i - 1], 'kept rows in original order');
  }
  // Roughly uniform: kept rows spread over the whole stream.
  assert.ok(idx.filter((t) => t >= 500).length > 25);
  assert.ok(idx.filter((t) => t < 500).length > 25);
  // Deterministic for a seed, different for another.
  const b = new RepresentationStore({ blocks: 1, maxRows, seed: 5 });
  b.append(0, rows(0, total, 1, 1), total);
  assert.deepEqual([...b.matrix(0)], [...m0]);
  const c = new RepresentationStore({ blocks: 1, maxRows, seed: 6 });
  c.append(0, rows(0, total, 1, 1), total);
  assert.notDeepEqual([...c.matrix(0)], [...m0]);
});

test('sample ids for token rows, labels per sample', () => {
  const s = new RepresentationStore({ blocks: 1 });
  s.append(0, rows(0, 6, 2, 1), 6);
  s.appendSampleIds([0, 0, 0, 1, 1, 1]);
  assert.equal(s.rowsAreTokens, true);
  assert.deepEqual([...s.sampleIds()], [0, 0, 0, 1, 1, 1]);
  s.setLabels([3, 1]);
  assert.deepEqual([...(s.labels as Int32Array)], [3, 1]);
  assert.equal(s.classes, 4);
  s.setLabels([0, 1], 10);
  assert.equal(s.classes, 10);
  assert.throws(() => s.setLabels([0, 5], 3), /out of range/);
  assert.throws(() => s.setLabels([-1]), /non-negative/);
});

test('seeded PRNG: deterministic, valid permutations, roughly uniform', () => {
  const a = new Rng(42);
  const b = new Rng(42);
  const xs = Array.from({ length: 5 }, () => a.nextU32());
  assert.deepEqual(xs, Array.from({ length: 5 }, () => b.nextU32()));
  // One generator per seed, five draws each (not five fresh generators: their first draws repeat).
  const c = new Rng(43);
  const ys = Array.from({ length: 5 }, () => c.nextU32());
  assert.equal(new Set(ys).size, 5, 'a stream does not repeat itself');
  assert.ok(ys.every((y, i) => y !== xs[i]), `seed 43 gives other values than seed 42 at every draw: ${xs} vs ${ys}`);
  const p = randperm(1000, new Rng(1));
  assert.deepEqual([...p].sort((x, y) => x - y), Array.from({ length: 1000 }, (_, i) => i));
  assert.deepEqual([...seededPermutation(50, 7, 'dr', 1)], [...seededPermutation(50, 7, 'dr', 1)]);
  assert.notDeepEqual([...seededPermutation(50, 7, 'dr', 1)], [...seededPermutation(50, 7, 'dr', 2)]);
  assert.notEqual(deriveSeed(1, 'x'), deriveSeed(2, 'x'));
  const r = new Rng(3);
  let sum = 0;
  const n = 20000;
  for (let i = 0; i < n; i++) {
    const u = r.next();
    assert.ok(u >= 0 && u < 1);
    sum += u;
  }
  assert.ok(Math.abs(sum / n - 0.5) < 0.01);
  let hs = 0;
  for (let i = 0; i < n; i++) hs += hashUniform(9, i);
  assert.ok(Math.abs(hs / n - 0.5) < 0.01);
});
