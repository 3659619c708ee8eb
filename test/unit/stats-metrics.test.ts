import assert from 'node:assert/strict';
import { test } from 'node:test';
import { jsMatmul as mm } from '../../src/engine/linalg/index.js';
import type { MatmulBackend } from '../../src/engine/linalg/index.js';
import { computeMetrics, msrs, sigmoid } from '../../src/engine/stats/metrics.js';
import { close, randn } from '../helpers/stats.js';
import { RepresentationStore } from '../../src/engine/stats/store.js';

/** A chain of L blocks: h_b = h_{b−1} + scale_b·noise; stored as float32 (values are float32-exact here). */
function chain(L: number, n: number, d: number, scales: number[], seed: number): { store: RepresentationStore; reps: Float32Array[]; input: Float32Array } {
  const input = Float32Array.from(randn(n, d, seed));
  const reps: Float32Array[] = [];
  let prev = input;
  for (let b = 0; b < L; b++) {
    const noise = randn(n, d, seed + 100 + b);
    const h = new Float32Array(n * d);
    for (let i = 0; i < h.length; i++) h[i] = prev[i] + scales[b] * noise[i];
    reps.push(h);
    prev = h;
  }
  const store = new RepresentationStore({ blocks: L });
  // Append in two batches to exercise batching.
  const half = Math.floor(n / 2);
  for (const [s, e] of [[0, half], [half, n]]) {
    store.append('input', input.subarray(s * d, e * d), e - s);
    for (let b = 0; b < L; b++) store.append(b, reps[b].subarray(s * d, e * d), e - s);
  }
  return { store, reps, input };
}

test('identity block x ↦ x: BR 0, relative MSE 0, BI 0, cosine 1, CKA 1', async () => {
  const { store } = chain(3, 40, 5, [1, 0, 0.5], 1);
  const { metrics, warnings } = await computeMetrics(store, { matmul: mm, seed: 1, unbiasedBatch: 16 });
  assert.equal(metrics.br[1], 0); // +0, not −0
  assert.equal(metrics.relativeMse?.[1], 0);
  assert.equal(metrics.blockInfluence?.[1], 0);
  assert.equal(metrics.cosine[0][1], 1);
  assert.equal(metrics.brMatrix[0][1], 0);
  close(metrics.cka[0][1], 1, 1e-13);
  close(metrics.ckaUnbiased[0][1], 1, 1e-12);
  // Other blocks change something.
  assert.ok((metrics.br[0] as number) < -0.5);
  assert.ok((metrics.br[2] as number) < -0.1);
  assert.ok((metrics.blockInfluence?.[2] as number) > 0);
  assert.deepEqual(warnings, ['unbiased CKA: 2 batches of 16 samples (fixed runs of sample ids); the last 8 of 40 samples were dropped']);
});

test('BR, relative MSE and BI equal a hand computation on a 3×2 example', async () => {
  const store = new RepresentationStore({ blocks: 2 });
  store.append('input', new Float32Array([1, 2, 3, 4, 5, 6]), 3);
  store.append(0, new Float32Array([1, 3, 3, 3, 6, 6]), 3);
  store.append(1, new Float32Array([1, 3, 3, 3, 6, 8]), 3);
  const { metrics, warnings } = await computeMetrics(store, { matmul: mm, seed: 0 });
  // Δ0 rows: (0,1), (0,−1), (1,0) → Σ‖Δ‖² = 3; BR = −3/(3·2).
  assert.equal(metrics.br[0], -0.5);
  assert.equal(metrics.relativeMse?.[0], 3 / 91);
  const cos = (a: number[], b: number[]) => (a[0] * b[0] + a[1] * b[1]) / (Math.hypot(...a) * Math.hypot(...b));
  const meanCos = (cos([1, 2], [1, 3]) + cos([3, 4], [3, 3]) + cos([5, 6], [6, 6])) / 3;
  close(metrics.blockInfluence?.[0], 1 - meanCos, 1e-15);
  // Δ1: only (6,6)→(6,8): Σ = 4 → BR = −4/6.
  assert.equal(metrics.br[1], -4 / 6);
  assert.equal(metrics.relativeMse?.[1], 4 / (1 + 9 + 9 + 9 + 36 + 36));
  assert.equal(metrics.brMatrix[0][1], -4 / 6);
  assert.equal(metrics.brMatrix[1][0], -4 / 6);
  assert.equal(metrics.brMatrix[0][0], 0);
  // N = 3 < 4: unbiased CKA impossible → null + warning; MSRS skips the pair.
  assert.deepEqual(metrics.ckaUnbiased, [[null, null], [null, null]]);
  assert.equal(metrics.msrs.value, null);
  assert.ok(warnings.some((w) => /unbiased CKA needs batches of at least 4 rows/.test(w)));
  assert.ok(warnings.some((w) => /MSRS: 1 of 1 block pairs/.test(w)));
});

test('MSRS of an all-ones CKA matrix is σ(2β(1−τ))·L(L−1)/2', async () => {
  const L = 5;
  const ones = Array.from({ length: L }, () => new Array<number | null>(L).fill(1));
  const m = msrs(ones, 100, 0.8);
  close(m.value, sigmoid(2 * 100 * 0.2) * 10, 1e-15);
  close(m.normalized, sigmoid(40), 1e-15);
  assert.equal(m.skipped, 0);
  // Through computeMetrics: L identical blocks.
  const n = 64, d = 4;
  const x = Float32Array.from(randn(n, d, 3));
  const store = new RepresentationStore({ blocks: L });
  for (let b = 0; b < L; b++) store.append(b, x, n);
  const { metrics } = await computeMetrics(store, { matmul: mm, seed: 2, unbiasedBatch: 32, beta: 10, tau: 0.5 });
  close(metrics.msrs.value, sigmoid(2 * 10 * 0.5) * 10, 1e-12);
  close(metrics.msrs.normalized, sigmoid(10), 1e-12);
  assert.equal(metrics.msrs.layers, L);
  assert.equal(metrics.msrs.beta, 10);
  assert.equal(metrics.msrs.tau, 0.5);
  // Sigmoid is stable for large |z|.
  assert.equal(sigmoid(-1000), 0);
  assert.equal(sigmoid(1000), 1);
  assert.equal(sigmoid(0), 0.5);
});

test('degenerate (constant) block → null entries, one warning naming it, JSON has no NaN', async () => {
  const n = 50, d = 6, L = 3;
  const store = new RepresentationStore({ blocks: L });
  const cls = new Float32Array(n * d);
  for (let i = 0; i < n; i++) for (let k = 0; k < d; k++) cls[i * d + k] = 0.1 * (k + 1); // same row for every sample
  store.append('input', cls, n);
  store.append(0, cls, n);
  store.append(1, Float32Array.from(randn(n, d, 5)), n);
  store.append(2, Float32Array.from(randn(n, d, 6)), n);
  const { metrics, warnings } = await computeMetrics(store, { matmul: mm, seed: 3, unbiasedBatch: 16, drBlock: 0 });
  const json = JSON.stringify(metrics);
  assert.ok(!/NaN|Infinity/.test(json));
  assert.equal(metrics.cka[0][0], null);
  assert.equal(metrics.cka[0][1], null);
  assert.equal(metrics.cka[2][0], null);
  assert.equal(metrics.cka[1][1], 1);
  assert.equal(metrics.ckaUnbiased[0][2], null);
  assert.equal(metrics.ckaUnbiased[2][2], 1);
  assert.ok(typeof metrics.ckaUnbiased[1][2] === 'number');
  assert.ok(typeof metrics.cka[1][2] === 'number');
  // BR and cosine are still defined for a constant (non-zero) representation.
  assert.equal(metrics.br[0], 0);
  assert.equal(metrics.cosine[0][0], 1);
  assert.equal(metrics.dr?.value, null);
  assert.ok(metrics.dr?.mean.every((v) => v === null));
  const named = warnings.filter((w) => /^block 0: representation is constant over samples/.test(w));
  assert.equal(named.length, 1);
  assert.ok(warnings.some((w) => /MSRS: 2 of 3 block pairs/.test(w)));
  close(metrics.msrs.normalized, (metrics.msrs.value as number) / 3, 1e-15);
  // All-zero representation: cosine undefined, BI null, no NaN.
  const z = new RepresentationStore({ blocks: 2 });
  z.append(0, new Float32Array(n * d), n);
  z.append(1, Float32Array.from(randn(n, d, 7)), n);
  const r = await computeMetrics(z, { matmul: mm, seed: 3, unbiasedBatch: 16 });
  assert.ok(!/NaN|Infinity/.test(JSON.stringify(r.metrics)));
  assert.equal(r.metrics.cosine[0][1], null);
  assert.equal(r.metrics.cosine[0][0], null);
  assert.equal(r.metrics.blockInfluence?.[1], null);
  assert.equal(r.metrics.relativeMse?.[1], null);
  assert.ok(typeof r.metrics.br[1] === 'number');
  assert.ok(r.warnings.some((w) => /block 0: 50 of 50 rows are all-zero/.test(w)));
});

test('different widths: BR/cosine null, CKA defined; missing input → br[0] null with warning', async () => {
  const n = 60;
  const store = new RepresentationStore({ blocks: 3 });
  const a = randn(n, 4, 10);
  const b = new Float64Array(n * 8);
  for (let i = 0; i < n; i++) for (let k = 0; k < 8; k++) b[i * 8 + k] = a[i * 4 + (k % 4)] * (k < 4 ? 1 : -2);
  store.append(0, a, n);
  store.append(1, b, n);
  store.append(2, randn(n, 8, 11), n);
  const { metrics, warnings } = await computeMetrics(store, { matmul: mm, seed: 1, unbiasedBatch: 20 });
  assert.equal(metrics.br[0], null);
  assert.equal(metrics.br[1], null);
  assert.ok(typeof metrics.br[2] === 'number');
  assert.equal(metrics.brMatrix[0][1], null);
  assert.equal(metrics.cosine[0][2], null);
  assert.ok(typeof metrics.cosine[1][2] === 'number');
  // b is a linear map of a with orthogonal-ish columns: CKA(a, b) is high and defined.
  assert.ok((metrics.cka[0][1] as number) > 0.9);
  assert.ok(warnings.includes('block 0: no block input stored; br[0], relativeMse[0] and blockInfluence[0] are null'));
  assert.ok(warnings.some((w) => /^block 1: width 8 differs from block 0 \(4\)/.test(w)));
  assert.equal(warnings.filter((w) => /dropped/.test(w)).length, 0); // 60 = 3·20
});

test('CKA path choice does not change the numbers; results are deterministic for a seed', async () => {
  const { store } = chain(4, 80, 6, [1, 0.3, 2, 0.1], 7);
  const g = await computeMetrics(store, { matmul: mm, seed: 9, unbiasedBatch: 32, ckaMethod: 'gram', drMethod: 'gram' });
  const f = await computeMetrics(store, { matmul: mm, seed: 9, unbiasedBatch: 32, ckaMethod: 'feature', drMethod: 'feature' });
  for (let i = 0; i < 4; i++) for (let j = 0; j < 4; j++) close(g.metrics.cka[i][j], f.metrics.cka[i][j] as number, 1e-12);
  g.metrics.dr?.mean.forEach((v, i) => close(v, f.metrics.dr?.mean[i] as number, 1e-12));
  const again = await computeMetrics(store, { matmul: mm, seed: 9, unbiasedBatch: 32, ckaMethod: 'gram', drMethod: 'gram' });
  assert.deepEqual(again, g);
  // The seed picks the DR subsets; unbiased-CKA minibatches are fixed runs of ids (seed-free).
  const other = await computeMetrics(store, { matmul: mm, seed: 10, unbiasedBatch: 32 });
  assert.notDeepEqual(other.metrics.dr?.std, g.metrics.dr?.std);
  assert.deepEqual(other.metrics.ckaUnbiased, g.metrics.ckaUnbiased);
  // The matrices are exactly symmetric with unit diagonals.
  for (const m of [g.metrics.cka, g.metrics.ckaUnbiased, g.metrics.cosine, g.metrics.brMatrix]) {
    for (let i = 0; i < 4; i++) for (let j = 0; j < 4; j++) assert.equal(m[i][j], m[j][i]);
  }
  for (let i = 0; i < 4; i++) {
    assert.equal(g.metrics.cka[i][i], 1);
    assert.equal(g.metrics.ckaUnbiased[i][i], 1);
    assert.equal(g.metrics.cosine[i][i], 1);
  }
  // Small-change blocks (scale 0.1) are more redundant than big-change ones (scale 2).
  assert.ok((g.metrics.br[3] as number) > (g.metrics.br[2] as number));
  assert.ok((g.metrics.cka[2][3] as number) > (g.metrics.cka[1][2] as number));
});

test('NaN in a block is reported, never propagated', async () => {
  const n = 20;
  const store = new RepresentationStore({ blocks: 2 });
  const bad = Float32Array.from(randn(n, 3, 1));
  bad[7] = NaN;
  store.append(0, bad, n);
  store.append(1, Float32Array.from(randn(n, 3, 2)), n);
  const { metrics, warnings } = await computeMetrics(store, { matmul: mm, seed: 1, unbiasedBatch: 10, drBlock: 0 });
  assert.ok(!/NaN|Infinity/.test(JSON.stringify(metrics)));
  assert.equal(metrics.cka[0][1], null);
  assert.equal(metrics.br[1], null);
  assert.equal(metrics.cka[1][1], 1);
  assert.ok(warnings.includes('block 0: representation contains NaN or Infinity; all its entries are null'));
});

test('block constant inside every unbiased batch → ckaUnbiased null + warning (no garbage ratio)', async () => {
  // Runs of ids: run 0 = ids 0..15; id 16 is the dropped tail.
  const N = 17, d = 3, batch = 16, seed = 4;
  const droppedRow = 16;
  const x = new Float32Array(N * d).fill(0.3);
  for (let k = 0; k < d; k++) x[droppedRow * d + k] = 5; // the only variation falls in the dropped row
  const store = new RepresentationStore({ blocks: 2 });
  store.append(0, x, N);
  store.append(1, Float32Array.from(randn(N, d, 1)), N);
  const { metrics, warnings } = await computeMetrics(store, { matmul: mm, seed, unbiasedBatch: batch });
  assert.equal(metrics.ckaUnbiased[0][0], null);
  assert.equal(metrics.ckaUnbiased[0][1], null);
  assert.equal(metrics.ckaUnbiased[1][1], 1);
  assert.ok(typeof metrics.cka[0][1] === 'number'); // the biased CKA sees all rows
  assert.ok(warnings.some((w) => /^block 0: unbiased HSIC\(X,X\) is not positive/.test(w)));
});

test('all large products go through the MatmulBackend passed in', async () => {
  const { store } = chain(3, 50, 4, [1, 1, 1], 2);
  const calls = { abt: 0, atb: 0 };
  const spy: MatmulBackend = {
    abt: async (a, m, b, n, k) => (calls.abt++, mm.abt(a, m, b, n, k)),
    atb: async (a, r, m, b, n) => (calls.atb++, mm.atb(a, r, m, b, n)),
    dispose: async () => {},
  };
  const labels = Int32Array.from({ length: 50 }, (_, i) => i % 2);
  const viaSpy = await computeMetrics(store, { matmul: spy, seed: 1, unbiasedBatch: 25, labels, ckaMethod: 'feature', drMethod: 'feature' });
  const direct = await computeMetrics(store, { matmul: mm, seed: 1, unbiasedBatch: 25, labels, ckaMethod: 'feature', drMethod: 'feature' });
  assert.deepEqual(viaSpy, direct);
  // One block-Gram product (every CKA pair and the DR covariance), one probe XᵀX. Unbiased: 2 runs × 3 Grams.
  assert.equal(calls.atb, 1 + 1);
  assert.equal(calls.abt, 2 * 3);
});
