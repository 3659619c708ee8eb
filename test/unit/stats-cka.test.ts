import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  biasedCkaMatrix, centerColumns, chooseCkaMethod, ckaFlops, hsic1, linearCka, unbiasedBatches, unbiasedCkaMatrix,
} from '../../src/engine/stats/cka.js';
import { jsMatmul as mm } from '../../src/engine/linalg/index.js';
import { close, randn } from '../helpers/stats.js';

/** Y = X·W for X n×a, W a×b. */
function mul(x: Float64Array, n: number, a: number, w: Float64Array, b: number): Float64Array {
  const y = new Float64Array(n * b);
  for (let i = 0; i < n; i++) for (let k = 0; k < a; k++) for (let j = 0; j < b; j++) y[i * b + j] += x[i * a + k] * w[k * b + j];
  return y;
}

/** Random d×d orthogonal matrix by Gram–Schmidt on a Gaussian matrix (columns orthonormal). */
function orthogonal(d: number, seed: number): Float64Array {
  const g = randn(d, d, seed);
  const q = new Float64Array(d * d);
  for (let j = 0; j < d; j++) {
    const v = new Float64Array(d);
    for (let i = 0; i < d; i++) v[i] = g[i * d + j];
    for (let pass = 0; pass < 2; pass++) {
      for (let p = 0; p < j; p++) {
        let dp = 0;
        for (let i = 0; i < d; i++) dp += v[i] * q[i * d + p];
        for (let i = 0; i < d; i++) v[i] -= dp * q[i * d + p];
      }
    }
    let nrm = 0;
    for (let i = 0; i < d; i++) nrm += v[i] * v[i];
    nrm = Math.sqrt(nrm);
    for (let i = 0; i < d; i++) q[i * d + j] = v[i] / nrm;
  }
  return q;
}

/** Naive biased linear CKA: centre, feature-space products with plain loops. */
function naiveCka(x: Float64Array, y: Float64Array, n: number, dx: number, dy: number): number {
  const cx = new Float64Array(n * dx);
  const cy = new Float64Array(n * dy);
  for (const [src, dst, d] of [[x, cx, dx], [y, cy, dy]] as [Float64Array, Float64Array, number][]) {
    for (let k = 0; k < d; k++) {
      let m = 0;
      for (let i = 0; i < n; i++) m += src[i * d + k];
      m /= n;
      for (let i = 0; i < n; i++) dst[i * d + k] = src[i * d + k] - m;
    }
  }
  const f2 = (a: Float64Array, da: number, b: Float64Array, db: number) => {
    let s = 0;
    for (let p = 0; p < da; p++) {
      for (let q = 0; q < db; q++) {
        let c = 0;
        for (let i = 0; i < n; i++) c += a[i * da + p] * b[i * db + q];
        s += c * c;
      }
    }
    return s;
  };
  return f2(cy, dy, cx, dx) / (Math.sqrt(f2(cx, dx, cx, dx)) * Math.sqrt(f2(cy, dy, cy, dy)));
}

/** Naive HSIC₁ straight from the formula, plain loops, no centring, explicit K̃L̃ product. */
function naiveHsic1(x: Float64Array, y: Float64Array, rows: ArrayLike<number>, dx: number, dy: number): number {
  const n = rows.length;
  const gram = (z: Float64Array, d: number) => {
    const k: number[][] = [];
    for (let a = 0; a < n; a++) {
      k.push([]);
      for (let b = 0; b < n; b++) {
        let s = 0;
        if (a !== b) for (let t = 0; t < d; t++) s += z[rows[a] * d + t] * z[rows[b] * d + t];
        k[a].push(s);
      }
    }
    return k;
  };
  const K = gram(x, dx);
  const Lm = gram(y, dy);
  const KL: number[][] = [];
  for (let a = 0; a < n; a++) {
    KL.push([]);
    for (let b = 0; b < n; b++) {
      let s = 0;
      for (let t = 0; t < n; t++) s += K[a][t] * Lm[t][b];
      KL[a].push(s);
    }
  }
  let tr = 0;
  let sumK = 0;
  let sumL = 0;
  let sumKL = 0;
  for (let a = 0; a < n; a++) {
    tr += KL[a][a];
    for (let b = 0; b < n; b++) {
      sumK += K[a][b];
      sumL += Lm[a][b];
      sumKL += KL[a][b];
    }
  }
  return (tr + (sumK * sumL) / ((n - 1) * (n - 2)) - (2 / (n - 2)) * sumKL) / (n * (n - 3));
}

test('biased CKA(X, X) = 1 on both paths; matrix diagonal exactly 1', async () => {
  const n = 50, d = 8;
  const x = randn(n, d, 1);
  close(await linearCka(x, x, n, d, d, mm, 'gram'), 1, 1e-13);
  close(await linearCka(x, x, n, d, d, mm, 'feature'), 1, 1e-13);
  const c = centerColumns(x, n, d);
  for (const method of ['gram', 'feature'] as const) {
    const m = await biasedCkaMatrix([c, c], mm, method);
    assert.equal(m[0][0], 1);
    assert.equal(m[1][1], 1);
    close(m[0][1], 1, 1e-13);
  }
});

test('unbiased CKA(X, X) = 1: diagonal exactly 1, copy of X within rounding', async () => {
  const n = 300, d = 6;
  const x = randn(n, d, 2);
  const c = centerColumns(x, n, d);
  const r = await unbiasedCkaMatrix([c, c], mm, 64, 7);
  assert.equal(r.matrix[0][0], 1);
  assert.equal(r.matrix[1][1], 1);
  close(r.matrix[0][1], 1, 1e-12);
  assert.equal(r.batches, 4);
  assert.equal(r.batchSize, 64);
  assert.equal(r.dropped, 300 - 256);
});

test('CKA is invariant under an orthogonal map and isotropic scaling (biased and unbiased)', async () => {
  const n = 120, d = 10, dz = 7;
  const x = randn(n, d, 3);
  const w = randn(d, dz, 4);
  const z = mul(x, n, d, w, dz);
  const noise = randn(n, dz, 5);
  for (let i = 0; i < z.length; i++) z[i] += 2 * noise[i];
  const q = orthogonal(d, 6);
  // Q really is orthogonal: QᵀQ = I.
  for (let a = 0; a < d; a++) {
    for (let b = 0; b < d; b++) {
      let s = 0;
      for (let i = 0; i < d; i++) s += q[i * d + a] * q[i * d + b];
      assert.ok(Math.abs(s - (a === b ? 1 : 0)) < 1e-12);
    }
  }
  const xq = mul(x, n, d, q, d);
  const xs = x.map((v) => 3.7 * v);
  const base = await linearCka(x, z, n, d, dz, mm, 'feature');
  assert.ok(base !== null && base > 0.1 && base < 0.99, `base ${base}`);
  close(await linearCka(xq, z, n, d, dz, mm, 'feature'), base, 1e-12, 'orthogonal');
  close(await linearCka(xs, z, n, d, dz, mm, 'gram'), base, 1e-12, 'scaled');
  // Unbiased.
  const un = async (a: Float64Array) =>
    (await unbiasedCkaMatrix([centerColumns(a, n, d), centerColumns(z, n, dz)], mm, 40, 11)).matrix[0][1];
  const ub = await un(x);
  assert.ok(ub !== null && Math.abs(ub - base) < 0.3);
  close(await un(xq), ub as number, 1e-11, 'unbiased orthogonal');
  close(await un(xs), ub as number, 1e-11, 'unbiased scaled');
});

test('CKA is symmetric', async () => {
  const n = 40, dx = 5, dy = 9;
  const x = randn(n, dx, 8);
  const y = randn(n, dy, 9);
  for (let i = 0; i < n; i++) y[i * dy] += 3 * x[i * dx];
  const a = await linearCka(x, y, n, dx, dy, mm);
  const b = await linearCka(y, x, n, dy, dx, mm);
  close(a, b as number, 1e-13);
  const m = await biasedCkaMatrix([centerColumns(x, n, dx), centerColumns(y, n, dy)], mm, 'gram');
  assert.equal(m[0][1], m[1][0]);
  const u = await unbiasedCkaMatrix([centerColumns(x, n, dx), centerColumns(y, n, dy)], mm, 20, 1);
  assert.equal(u.matrix[0][1], u.matrix[1][0]);
});

test('biased CKA matches a naive feature-space computation', async () => {
  const n = 30, dx = 4, dy = 6;
  const x = randn(n, dx, 10);
  const y = randn(n, dy, 11);
  for (let i = 0; i < n; i++) y[i * dy + 2] += x[i * dx + 1] - 0.5 * x[i * dx + 3] + 5; // offset: centring matters
  const expected = naiveCka(x, y, n, dx, dy);
  assert.ok(expected > 0.05 && expected < 0.95);
  close(await linearCka(x, y, n, dx, dy, mm, 'gram'), expected, 1e-12);
  close(await linearCka(x, y, n, dx, dy, mm, 'feature'), expected, 1e-12);
});

test('Gram and feature-space paths give the same matrix (mixed widths)', async () => {
  const n = 64;
  const dims = [3, 16, 16, 40];
  const blocks = dims.map((d, b) => {
    const x = randn(n, d, 20 + b);
    if (b > 0) for (let i = 0; i < n; i++) x[i * d] += 2 * (i % 5); // shared signal
    return centerColumns(x, n, d);
  });
  const g = await biasedCkaMatrix(blocks, mm, 'gram');
  const f = await biasedCkaMatrix(blocks, mm, 'feature');
  for (let i = 0; i < dims.length; i++) {
    for (let j = 0; j < dims.length; j++) {
      close(g[i][j], f[j][i] as number, 1e-12, `(${i},${j})`);
      assert.ok((g[i][j] as number) > 0 && (g[i][j] as number) <= 1 + 1e-12);
    }
  }
});

test('path choice follows the flop estimate', () => {
  assert.equal(chooseCkaMethod(1000, [64, 64, 64]), 'feature');
  assert.equal(chooseCkaMethod(100, [4096, 4096, 4096]), 'gram');
  // Gram memory cap forces the feature path.
  assert.equal(chooseCkaMethod(100, [4096, 4096, 4096], 1000), 'feature');
  const f = ckaFlops(10, [2, 3]);
  assert.equal(f.gram, 100 * 2 + 100 * 3 + 100);
  assert.equal(f.feature, 10 * 4 + 4 + 10 * 6 + 6 + 10 * 9 + 9);
});

test('unbiased minibatch CKA matches a naive HSIC₁ implementation batch by batch', async () => {
  const N = 70, dx = 5, dy = 3, batch = 16;
  const x = randn(N, dx, 30);
  const y = randn(N, dy, 31);
  for (let i = 0; i < N; i++) {
    x[i * dx] += 10; // uncentred offset: HSIC₁ must be shift-invariant
    y[i * dy + 1] += 0.8 * x[i * dx + 2];
  }
  const plan = unbiasedBatches(N, batch, 99);
  assert.equal(plan.batches.length, 4);
  assert.equal(plan.dropped, 6);
  // Batches are disjoint and in the seeded order.
  const all = new Set<number>();
  for (const b of plan.batches) for (const r of b) all.add(r);
  assert.equal(all.size, 64);
  let hxy = 0, hxx = 0, hyy = 0;
  for (const rows of plan.batches) {
    hxy += naiveHsic1(x, y, rows, dx, dy);
    hxx += naiveHsic1(x, x, rows, dx, dx);
    hyy += naiveHsic1(y, y, rows, dy, dy);
  }
  const B = plan.batches.length;
  const expected = hxy / B / Math.sqrt((hxx / B) * (hyy / B));
  const r = await unbiasedCkaMatrix([centerColumns(x, N, dx), centerColumns(y, N, dy)], mm, batch, 99);
  close(r.matrix[0][1], expected, 1e-10);
  close(r.hsic[0][0], hxx / B, 1e-9);
  close(r.hsic[0][1], hxy / B, 1e-9);
  // hsic1() helper on raw Gram matrices agrees with the naive formula too.
  const rows = plan.batches[0];
  const n = rows.length;
  const gram = (z: Float64Array, d: number) => {
    const k = new Float64Array(n * n);
    for (let a = 0; a < n; a++) for (let b = 0; b < n; b++) for (let t = 0; t < d; t++) k[a * n + b] += z[rows[a] * d + t] * z[rows[b] * d + t];
    return k;
  };
  close(hsic1(gram(x, dx), gram(y, dy), n), naiveHsic1(x, y, rows, dx, dy), 1e-10);
});

test('unbiased HSIC₁ uses /(n(n−3)), not /n·(n−3): value is O(1) for unit-variance data', async () => {
  // For X = Y with d independent unit-variance features, HSIC(X,X) ≈ ‖Cov‖²_F = d.
  const N = 2000, d = 4;
  const x = randn(N, d, 40);
  const r = await unbiasedCkaMatrix([centerColumns(x, N, d)], mm, 256, 1);
  const h = r.hsic[0][0] as number;
  assert.ok(h > 3 && h < 5, `HSIC(X,X) = ${h}`);
});

test('unbiased CKA needs batches of at least 4 rows', async () => {
  const x = randn(3, 2, 1);
  await assert.rejects(unbiasedCkaMatrix([centerColumns(x, 3, 2)], mm, 256, 1), /at least 4/);
  assert.throws(() => hsic1(new Float64Array(9), new Float64Array(9), 3), /n ≥ 4/);
});

test('constant block is degenerate: null entries, never NaN', async () => {
  const n = 20;
  const x = randn(n, 3, 50);
  const c = new Float64Array(n * 3).fill(0.1);
  const cc = centerColumns(c, n, 3);
  assert.equal(cc.degenerate, true);
  assert.ok(cc.data.every((v) => v === 0));
  const m = await biasedCkaMatrix([centerColumns(x, n, 3), cc], mm, 'gram');
  assert.deepEqual(m, [[1, null], [null, null]]);
  const u = await unbiasedCkaMatrix([centerColumns(x, n, 3), cc], mm, 8, 1);
  assert.deepEqual(u.matrix, [[1, null], [null, null]]);
  assert.deepEqual(u.nonPositive, []);
  // Partly constant columns are fine and become exact zeros after centring.
  const p = Float64Array.from(x);
  for (let i = 0; i < n; i++) p[i * 3 + 1] = 0.3;
  const pc = centerColumns(p, n, 3);
  assert.equal(pc.degenerate, false);
  for (let i = 0; i < n; i++) assert.equal(pc.data[i * 3 + 1], 0);
});
