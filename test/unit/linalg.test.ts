import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { createOrtMatmul, jsMatmul, type MatmulBackend } from '../../src/engine/linalg';

/** Deterministic pseudo-random values in [-1, 1) (xorshift32). */
function randomMatrix(n: number, seed: number): Float64Array {
  let s = seed >>> 0 || 1;
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    out[i] = s / 2 ** 31 - 1;
  }
  return out;
}

/** ‖a − b‖_F / ‖b‖_F and the largest element-wise error relative to ‖b‖_max. */
function relErrors(a: Float64Array, b: Float64Array): { fro: number; max: number } {
  assert.equal(a.length, b.length);
  let num = 0;
  let den = 0;
  let maxErr = 0;
  let maxRef = 0;
  for (let i = 0; i < a.length; i++) {
    const d = a[i] - b[i];
    num += d * d;
    den += b[i] * b[i];
    maxErr = Math.max(maxErr, Math.abs(d));
    maxRef = Math.max(maxRef, Math.abs(b[i]));
  }
  return { fro: Math.sqrt(num / (den || 1)), max: maxErr / (maxRef || 1) };
}

describe('linalg: ORT matmul equals the JS reference', () => {
  let ortMm: MatmulBackend;
  before(async () => {
    ortMm = await createOrtMatmul();
  });
  after(async () => {
    await ortMm.dispose();
  });

  const shapes: [number, number, number][] = [
    [1, 1, 1],
    [3, 5, 7],
    [37, 19, 23],
    [128, 64, 96],
    [300, 257, 129],
  ];

  for (const [m, k, n] of shapes) {
    it(`abt: ${m}×${k} · (${n}×${k})ᵀ`, async () => {
      const a = randomMatrix(m * k, m * 1000 + k);
      const b = randomMatrix(n * k, n * 7 + 3);
      const got = await ortMm.abt(a, m, b, n, k);
      const want = await jsMatmul.abt(a, m, b, n, k);
      assert.ok(got instanceof Float64Array);
      assert.equal(got.length, m * n);
      const e = relErrors(got, want);
      assert.ok(e.fro < 1e-12 && e.max < 1e-12, `relative error ${e.fro} / ${e.max}`);
    });

    it(`atb: (${k}×${m})ᵀ · ${k}×${n}`, async () => {
      const r = k;
      const a = randomMatrix(r * m, m + 11);
      const b = randomMatrix(r * n, n + 13);
      const got = await ortMm.atb(a, r, m, b, n);
      const want = await jsMatmul.atb(a, r, m, b, n);
      assert.equal(got.length, m * n);
      const e = relErrors(got, want);
      assert.ok(e.fro < 1e-12 && e.max < 1e-12, `relative error ${e.fro} / ${e.max}`);
    });
  }

  it('computes exact small products', async () => {
    // A = [[1,2],[3,4]], B = [[5,6],[7,8]]: A·Bᵀ = [[17,23],[39,53]], Aᵀ·B = [[26,30],[38,44]]
    const a = new Float64Array([1, 2, 3, 4]);
    const b = new Float64Array([5, 6, 7, 8]);
    for (const mm of [ortMm, jsMatmul]) {
      assert.deepEqual([...(await mm.abt(a, 2, b, 2, 2))], [17, 23, 39, 53]);
      assert.deepEqual([...(await mm.atb(a, 2, 2, b, 2))], [26, 30, 38, 44]);
    }
  });

  it('keeps float64 precision (no float32 detour)', async () => {
    const a = new Float64Array([1 + 2 ** -40, 1]);
    const b = new Float64Array([1, -1]);
    const got = await ortMm.abt(a, 1, b, 1, 2);
    assert.equal(got[0], 2 ** -40);
  });

  it('handles empty dimensions and rejects wrong lengths', async () => {
    for (const mm of [ortMm, jsMatmul]) {
      assert.deepEqual([...(await mm.abt(new Float64Array(0), 0, new Float64Array(6), 2, 3))], []);
      assert.deepEqual([...(await mm.abt(new Float64Array(0), 2, new Float64Array(0), 3, 0))], [0, 0, 0, 0, 0, 0]);
      assert.deepEqual([...(await mm.atb(new Float64Array(0), 0, 2, new Float64Array(0), 2))], [0, 0, 0, 0]);
      await assert.rejects(mm.abt(new Float64Array(5), 2, new Float64Array(6), 2, 3), /abt: A: expected 2×3 = 6 values, got 5/);
      await assert.rejects(mm.atb(new Float64Array(6), 3, 2, new Float64Array(5), 2), /atb: B: expected 3×2 = 6 values, got 5/);
    }
  });

  it('refuses to run after dispose', async () => {
    const other = await createOrtMatmul({ intraOpNumThreads: 1 });
    assert.deepEqual([...(await other.abt(new Float64Array([2]), 1, new Float64Array([3]), 1, 1))], [6]);
    await other.dispose();
    await assert.rejects(other.abt(new Float64Array([2]), 1, new Float64Array([3]), 1, 1), /after dispose/);
  });
});
