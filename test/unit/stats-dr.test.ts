import assert from 'node:assert/strict';
import { test } from 'node:test';
import { centerColumns } from '../../src/engine/stats/cka.js';
import {
  DEFAULT_DR_FRACTIONS, solveSpd, coefficientOfVariation, drCkaCurve, drPermutations, drValue, gini,
  probeCurve, subsetSize,
} from '../../src/engine/stats/dr.js';
import { jsMatmul as mm } from '../../src/engine/linalg/index.js';
import { computeMetrics } from '../../src/engine/stats/metrics.js';
import { close, randn } from '../helpers/stats.js';
import { RepresentationStore } from '../../src/engine/stats/store.js';
import { isHeldOut } from '../../src/engine/stats/probe.js';

async function curve(x: Float64Array, n: number, d: number, method: 'gram' | 'feature' = 'feature', seed = 1, seeds = 5) {
  const perms = drPermutations(d, seeds, seed);
  return drCkaCurve(centerColumns(x, n, d), perms, { fractions: [...DEFAULT_DR_FRACTIONS], seeds, seed, delta: 0.9, matmul: mm, method });
}

test('subset sizes: floor(f·d) with at least one neuron, robust to f·d rounding', () => {
  assert.equal(subsetSize(0.29, 100), 29); // 0.29·100 = 28.999999999999996
  assert.equal(subsetSize(0.7, 10), 7);
  assert.equal(subsetSize(0.01, 50), 1);
  assert.equal(subsetSize(0.05, 64), 3);
  assert.equal(subsetSize(1, 64), 64);
  assert.deepEqual(DEFAULT_DR_FRACTIONS, [0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1]);
});

test('drValue = 1 − first fraction whose relative score reaches δ', () => {
  assert.equal(drValue([0.1, 0.5, 1], [0.5, 0.95, 1], 1, 0.9), 0.5);
  assert.equal(drValue([0.1, 0.5, 1], [0.92, 0.95, 1], 1, 0.9), 0.9);
  assert.equal(drValue([0.1, 0.5, 1], [0.4, 0.82, 0.85], 0.9, 0.9), 0.5); // relative to full = 0.9: 0.82/0.9 ≥ 0.9
  assert.equal(drValue([0.1, 0.5], [0.4, 0.8], 1, 0.9), null);
  assert.equal(drValue([0.1, 1], [null, 1], 1, 0.9), 0);
  assert.equal(drValue([0.1, 1], [0.5, 1], 0, 0.9), null);
});

test('DR curve ends at exactly 1 at f = 1 and is non-decreasing-ish on random data', async () => {
  const n = 200, d = 50;
  const { info } = await curve(randn(n, d, 1), n, d);
  assert.equal(info.mean[info.mean.length - 1], 1);
  assert.equal(info.std[info.std.length - 1], 0);
  assert.equal(info.fractions.length, 13);
  for (let i = 1; i < info.mean.length; i++) {
    assert.ok((info.mean[i] as number) >= (info.mean[i - 1] as number) - 0.02, `mean[${i}] dropped: ${info.mean}`);
  }
  // Isotropic noise: CKA(subset, full) ≈ sqrt(f) (plus sampling bias), so 0.9 needs f ≈ 0.8.
  close(info.mean[7], Math.sqrt(0.5), 0.08, 'f = 0.5');
  assert.ok(info.value !== null && info.value >= 0 && info.value <= 0.3, `value ${info.value}`);
  for (const s of info.std) assert.ok((s as number) >= 0);
});

test('DR is low when only 10% of neurons carry signal and high when the signal is spread', async () => {
  const n = 300, d = 100;
  // Concentrated: 10 independent signal neurons, the other 90 nearly silent.
  const conc = randn(n, d, 2);
  for (let i = 0; i < n; i++) for (let k = 10; k < d; k++) conc[i * d + k] *= 0.01;
  // Spread: 3 latent factors mixed densely into all 100 neurons, plus a little noise.
  const z = randn(n, 3, 3);
  const w = randn(3, d, 4);
  const e = randn(n, d, 5);
  const spread = new Float64Array(n * d);
  for (let i = 0; i < n; i++) for (let k = 0; k < d; k++) {
    let s = 0.05 * e[i * d + k];
    for (let r = 0; r < 3; r++) s += z[i * 3 + r] * w[r * d + k];
    spread[i * d + k] = s;
  }
  // 10 subset seeds, not the default 5: with 5, about 1 permutation seed in 15 draws 70% subsets
  // that happen to hold 8–10 of the 10 signal neurons, and the concentrated DR comes out 0.3.
  const c = (await curve(conc, n, d, 'feature', 1, 10)).info;
  const s = (await curve(spread, n, d, 'feature', 1, 10)).info;
  // Observed: spread 0.8 (f = 0.2 suffices), concentrated 0.2 (needs f = 0.8).
  assert.ok((s.value as number) >= 0.7, `spread DR ${s.value}`);
  assert.ok((c.value as number) <= 0.2, `concentrated DR ${c.value}`);
  assert.ok((s.mean[3] as number) > 0.8, `spread at f = 0.1: ${s.mean[3]}`);
  assert.ok((c.mean[3] as number) < 0.6, `concentrated at f = 0.1: ${c.mean[3]}`);
});

test('DR curve: Gram and covariance paths agree', async () => {
  const n = 40, d = 30;
  const x = randn(n, d, 6);
  for (let i = 0; i < n; i++) x[i * d + 3] = 2; // a dead neuron
  const a = (await curve(x, n, d, 'gram', 4)).info;
  const b = (await curve(x, n, d, 'feature', 4)).info;
  a.mean.forEach((v, i) => close(v, b.mean[i] as number, 1e-12, `mean ${i}`));
  a.std.forEach((v, i) => close(v, b.std[i] as number, 1e-10, `std ${i}`));
  assert.equal(a.value, b.value);
});

test('SPD solve (Cholesky), Gini and coefficient of variation', () => {
  const a = Float64Array.from([4, 2, 0, 2, 5, 1, 0, 1, 3]);
  const x = [1, -2, 0.5];
  const b = Float64Array.from([4 * 1 + 2 * -2, 2 * 1 + 5 * -2 + 0.5, -2 + 1.5]);
  const solved = solveSpd(a, 3, b, 1)!;
  for (let i = 0; i < 3; i++) close(solved[i], x[i], 1e-14);
  assert.equal(solveSpd(Float64Array.from([1, 2, 2, 1]), 2, Float64Array.from([1, 1]), 1), null);
  assert.equal(gini([0.8, 0.8, 0.8, 0.8]), 0);
  assert.equal(coefficientOfVariation([0.8, 0.8, 0.8]), 0);
  assert.equal(gini([0, 1]), 0.5); // Σ|ai−aj| = 2, 2·C²·mean = 2·4·0.5
  close(gini([0.2, 0.4, 0.9]), (2 * (0.2 + 0.7 + 0.5)) / (2 * 9 * (1.5 / 3)), 1e-15);
  assert.equal(coefficientOfVariation([1, 3]), 0.5);
  assert.equal(gini([0, 0, 0]), 0);
});

/** Gaussian blobs: class c centred at 6·e_c in the first C dims, d dims in all. */
function blobs(perClass: number, C: number, d: number, seed: number): { x: Float64Array; labels: Int32Array; n: number } {
  const n = perClass * C;
  const x = randn(n, d, seed);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    labels[i] = i % C;
    x[i * d + (i % C)] += 6;
  }
  return { x, labels, n };
}

test('probe on linearly separable labels reaches accuracy 1; classes balanced → Gini 0', async () => {
  const C = 3, d = 20;
  const { x, labels, n } = blobs(40, C, d, 7);
  const perms = drPermutations(d, 5, 1);
  const { info, warnings } = await probeCurve(x, n, d, labels, C, {
    fractions: [...DEFAULT_DR_FRACTIONS], perms, delta: 0.9, heldOut: 0.2, seed: 1, matmul: mm,
  });
  assert.deepEqual(warnings, []);
  assert.ok(info);
  assert.equal(info.fullAccuracy, 1);
  assert.equal(info.classes, 3);
  // Held out: the samples whose key u(seed, id) < 0.2 (a function of the id alone).
  const held = Array.from({ length: n }, (_, id) => id).filter((id) => isHeldOut(1, id, 0.2));
  assert.equal(info.testSamples, held.length);
  assert.equal(info.trainSamples, n - held.length);
  assert.ok(held.length > 0.1 * n && held.length < 0.3 * n, `${held.length} of ${n} held out`);
  assert.equal(info.mean[info.mean.length - 1], 1);
  assert.deepEqual(info.perClass[info.perClass.length - 1], [1, 1, 1]);
  assert.equal(info.gini[info.gini.length - 1], 0);
  assert.equal(info.cv[info.cv.length - 1], 0);
  // One neuron out of 20 rarely holds a signal dimension: accuracy near chance, uneven classes.
  assert.ok(info.mean[0] < 0.8, `f = 0.01 accuracy ${info.mean[0]}`);
  assert.ok(info.gini[0] > 0);
  assert.equal(info.perClass.length, 13);
  for (const pc of info.perClass) assert.equal(pc.length, 3);
  assert.ok(info.value !== null && info.value >= 0 && info.value < 1);
});

test('probe through computeMetrics: labels, tokens and single-class cases', async () => {
  const C = 4, d = 16;
  const { x, labels, n } = blobs(30, C, d, 8);
  const store = new RepresentationStore({ blocks: 2 });
  store.append(0, randn(n, d, 9), n);
  store.append(1, x, n);
  store.setLabels(labels, C);
  const { metrics, warnings } = await computeMetrics(store, { matmul: mm, seed: 5, unbiasedBatch: 60 });
  const p = metrics.dr?.probe;
  assert.ok(p);
  assert.equal(metrics.dr?.block, 1);
  assert.equal(p.fullAccuracy, 1);
  assert.equal(p.classes, 4);
  assert.equal(p.trainSamples + p.testSamples, n);
  assert.deepEqual(warnings.filter((w) => /probe/.test(w)), []);
  assert.ok(!/NaN|Infinity/.test(JSON.stringify(metrics)));
  // Labels given in opts override; one class only → skipped with a warning.
  const one = await computeMetrics(store, { matmul: mm, seed: 5, unbiasedBatch: 60, labels: new Int32Array(n) });
  assert.equal(one.metrics.dr?.probe, undefined);
  assert.ok(one.warnings.some((w) => /probe skipped: fewer than 2 classes/.test(w)));
  // Token rows: several rows per labelled sample → skipped.
  const tok = new RepresentationStore({ blocks: 1 });
  tok.append(0, x, n);
  tok.appendSampleIds(Array.from({ length: n }, (_, i) => Math.floor(i / 4)));
  tok.setLabels(Array.from({ length: n / 4 }, (_, i) => i % 2));
  const t = await computeMetrics(tok, { matmul: mm, seed: 5, unbiasedBatch: 60 });
  assert.equal(t.metrics.dr?.probe, undefined);
  assert.ok(t.warnings.some((w) => /probe skipped: rows are tokens/.test(w)));
});
