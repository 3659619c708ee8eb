import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { jsMatmul } from '../../src/engine/linalg/index';
import { openModelContext } from '../../src/engine/rba/context';
import { augmentedIdentity, SpanSolver } from '../../src/engine/rba/fit';
import { bestSet } from '../../src/engine/rba/plan';
import { toRows } from '../../src/engine/rba/rows';
import { runSpanPass } from '../../src/engine/rba/one-pass';
import { isHeldOut, planSpanPairs, SpanStats, spanStatsBytes, type SiteRows } from '../../src/engine/rba/span-stats';
import { fixture, manifest } from '../helpers/fixtures';
import { blocks, buildBlockModel, rbaTestEnv, seededRandom, writeModel } from '../helpers/rba-models';

const { matmul, tmp } = rbaTestEnv();

const maxAbsDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let m = 0;
  for (let k = 0; k < a.length; k++) m = Math.max(m, Math.abs(a[k]! - b[k]!));
  return m;
};

describe('RBA fits from the one-pass sums', () => {
  it('is exact on an affine block (linear_blocks fixture): held-out relErr ~ 0, R² = 1', async () => {
    const m = manifest.models.linear_blocks!;
    const ctx = await openModelContext({ model: fixture(m.file) });
    const pass = await runSpanPass(ctx, { model: fixture(m.file), data: fixture('data/linear_x.npy'), batch: 10 }, matmul, { pairs: [[0, 1], [1, 2], [-1, 3]] });
    const solver = new SpanSolver(pass.stats, matmul);
    for (const [i, j] of [[0, 1], [-1, 3]] as const) {
      const fit = await solver.fit(i, j, { method: 'linear' });
      assert.ok(fit.heldOut.rows > 0 && fit.train.rows > 0);
      assert.ok(fit.heldOut.relErr! < 1e-9, `span ${i}→${j} held-out relErr ${fit.heldOut.relErr}`);
      assert.ok(Math.abs(fit.heldOut.r2! - 1) < 1e-9, `R² ${fit.heldOut.r2}`);
      // The identity is a poor map for these blocks: the fit is not trivially skip.
      assert.ok(fit.skip!.heldOut.relErr! > 0.1);
    }
    // Block 2 is the identity: the fitted map is Ĩ (to float32 rounding of the activations).
    const id = await solver.fit(1, 2, { method: 'linear' });
    assert.ok(maxAbsDiff(id.map.weight, augmentedIdentity(16)) < 1e-5, `max |W − Ĩ| = ${maxAbsDiff(id.map.weight, augmentedIdentity(16))}`);
    assert.ok(id.skip!.heldOut.relErr! < 1e-12, 'skip over the identity block is exact');
  });

  it('recovers the weights of a purely linear block (no bias) exactly', async () => {
    const model = buildBlockModel({ width: 6, blocks: [blocks.affine(6, 6, false), blocks.affine(6, 6, false)] });
    const file = writeModel(tmp, 'linear.onnx', model);
    const ctx = await openModelContext({ model: file });
    const pass = await runSpanPass(ctx, { model: file, samples: 60 }, matmul, { pairs: [[0, 1]] });
    const fit = await new SpanSolver(pass.stats, matmul).fit(0, 1, { method: 'linear', shrink: 'zero' });
    const w1 = model.graph!.initializer.find((t) => t.name === 'w1')!;
    const want = new Float32Array(w1.rawData!.slice().buffer);
    assert.ok(maxAbsDiff(fit.map.weight.subarray(0, 36), want) < 1e-4, `weights differ by ${maxAbsDiff(fit.map.weight.subarray(0, 36), want)}`);
    assert.ok(maxAbsDiff(fit.map.weight.subarray(36), new Float64Array(6)) < 1e-4, 'bias ≈ 0');
  });

  it('the held-out error in closed form equals the error computed row by row', async () => {
    const model = buildBlockModel({ width: 5, tokens: 3, blocks: [blocks.mlp(5, 1), blocks.mlp(5, 1)] });
    const file = writeModel(tmp, 'mlp.onnx', model);
    const ctx = await openModelContext({ model: file });
    const pass = await runSpanPass(ctx, { model: file, samples: 40, seed: 4 }, matmul, { pairs: [[0, 1]] });
    const fit = await new SpanSolver(pass.stats, matmul).fit(0, 1, { method: 'linear' });
    // Recompute from the raw activations of the held-out samples.
    const ort = await import('onnxruntime-node');
    const { exposeTensors } = await import('../../src/engine/blocks/instrument');
    const { openSource, toOrtFeeds } = await import('../../src/engine/rba/context');
    const s = await ort.InferenceSession.create((await import('../../src/engine/onnx/codec')).encodeModel(exposeTensors(model, [ctx.sites.get(0)!, ctx.sites.get(1)!])));
    const source = await openSource(ctx, { model: file, samples: 40, seed: 4 });
    let sse = 0;
    let ssq = 0;
    let base = 0;
    for await (const batch of source.batches(32)) {
      const out = await s.run(toOrtFeeds(batch));
      const x = toRows({ data: out[ctx.sites.get(0)!]!.data as Float32Array, dims: out[ctx.sites.get(0)!]!.dims as number[] }, batch.size);
      const y = toRows({ data: out[ctx.sites.get(1)!]!.data as Float32Array, dims: out[ctx.sites.get(1)!]!.dims as number[] }, batch.size);
      for (let r = 0; r < x.rows; r++) {
        if (!isHeldOut(4, base + x.sample[r]!, 0.2)) continue;
        for (let c = 0; c < 5; c++) {
          let p = fit.map.weight[5 * 5 + c]!;
          for (let a = 0; a < 5; a++) p += x.data[r * 5 + a]! * fit.map.weight[a * 5 + c]!;
          sse += (y.data[r * 5 + c]! - p) ** 2;
          ssq += y.data[r * 5 + c]! ** 2;
        }
      }
      base += batch.size;
    }
    await source.close();
    await s.release();
    assert.ok(ssq > 0);
    assert.ok(Math.abs(fit.heldOut.relErr! - sse / ssq) < 1e-9 * Math.max(1, sse / ssq), `${fit.heldOut.relErr} vs ${sse / ssq}`);
  });

  it('low rank: a rank-2 residual block is fitted exactly at rank 2, not at rank 1', async () => {
    const model = buildBlockModel({ width: 12, blocks: [blocks.mlp(12, 1), blocks.lowrankResidual(12, 2)] });
    const file = writeModel(tmp, 'lowrank.onnx', model);
    const ctx = await openModelContext({ model: file });
    const pass = await runSpanPass(ctx, { model: file, samples: 80 }, matmul, { pairs: [[0, 1]] });
    const solver = new SpanSolver(pass.stats, matmul);
    const r2 = await solver.fit(0, 1, { method: 'lowrank', rank: 2 });
    const r1 = await solver.fit(0, 1, { method: 'lowrank', rank: 1 });
    assert.ok(r2.heldOut.relErr! < 1e-9, `rank 2 relErr ${r2.heldOut.relErr}`);
    assert.ok(r1.heldOut.relErr! > 1e-4, `rank 1 relErr ${r1.heldOut.relErr}`);
    assert.equal(r2.map.params, 13 * 2 + 2 * 12);
    await assert.rejects(solver.fit(0, 1, { method: 'lowrank', rank: 13 }), /not below the map's full rank/);
  });

  it('ridge toward the identity falls back to skip where data is scarce; plain ridge collapses', async () => {
    // Near-identity blocks, width 32, only 10 samples (8 training rows < d + 1 unknowns).
    const model = buildBlockModel({ width: 32, blocks: [blocks.mlp(32, 0.05), blocks.mlp(32, 0.05)] });
    const file = writeModel(tmp, 'scarce.onnx', model);
    const ctx = await openModelContext({ model: file });
    const pass = await runSpanPass(ctx, { model: file, samples: 10, heldOut: 0.3 }, matmul, { pairs: [[0, 1]] });
    const solver = new SpanSolver(pass.stats, matmul);
    const toIdentity = await solver.fit(0, 1, { method: 'linear', shrink: 'identity' });
    const toZero = await solver.fit(0, 1, { method: 'linear', shrink: 'zero' });
    assert.ok(pass.stats.train.rows.get(0)! < 33, `train rows ${pass.stats.train.rows.get(0)}`);
    assert.ok(toIdentity.heldOut.relErr! <= toIdentity.skip!.heldOut.relErr! * 1.01, `identity-shrunk ${toIdentity.heldOut.relErr} vs skip ${toIdentity.skip!.heldOut.relErr}`);
    assert.ok(toZero.heldOut.relErr! > 5 * toIdentity.heldOut.relErr!, `plain ridge ${toZero.heldOut.relErr} vs identity-shrunk ${toIdentity.heldOut.relErr}`);
  });

  it('merge is exact: two shards of the samples equal one run, and snapshots survive JSON', async () => {
    const sites = [{ block: 0, tensor: 'a', width: 3 }, { block: 1, tensor: 'b', width: 2 }];
    const config = { sites, pairs: [[0, 1]] as [number, number][], heldOut: 0.3, seed: 7 };
    const rnd = seededRandom(3);
    const batch = (n: number): Map<number, SiteRows> => {
      const mk = (d: number) => ({ data: Float64Array.from({ length: n * d }, () => rnd()), rows: n, sample: Int32Array.from({ length: n }, (_, k) => k) });
      return new Map([[0, mk(3)], [1, mk(2)]]);
    };
    const b1 = batch(20);
    const b2 = batch(17);
    const ids1 = Array.from({ length: 20 }, (_, k) => k);
    const ids2 = Array.from({ length: 17 }, (_, k) => 20 + k);
    const whole = new SpanStats(config);
    await whole.add(b1, ids1, jsMatmul);
    await whole.add(b2, ids2, jsMatmul);
    const s1 = new SpanStats(config);
    await s1.add(b1, ids1, matmul);
    const s2 = new SpanStats(config);
    await s2.add(b2, ids2, matmul);
    const merged = SpanStats.fromSnapshot(JSON.parse(JSON.stringify(s1.snapshot())));
    merged.mergeSnapshot(JSON.parse(JSON.stringify(s2.snapshot())));
    assert.equal(merged.samples, 37);
    assert.equal(merged.train.rows.get(0)! + merged.heldOut.rows.get(0)!, 37);
    assert.ok(merged.heldOut.rows.get(1)! > 0 && merged.train.rows.get(1)! > 0);
    for (const split of ['train', 'heldOut'] as const) {
      assert.deepEqual(merged[split].rows, whole[split].rows);
      assert.ok(maxAbsDiff(merged[split].gram.get(0)!, whole[split].gram.get(0)!) < 1e-12);
      assert.ok(maxAbsDiff(merged[split].cross.get('0:1')!, whole[split].cross.get('0:1')!) < 1e-12);
      assert.ok(Math.abs(merged[split].ysq.get(1)! - whole[split].ysq.get(1)!) < 1e-12);
    }
    assert.throws(() => merged.mergeSnapshot({ ...s2.snapshot(), config: { ...config, seed: 8 } }), /different sites, spans, seed/);
  });

  it('one block-Gram product and per-start-block products give the same sums', async () => {
    const sites = [-1, 0, 1, 2].map((b) => ({ block: b, tensor: `t${b}`, width: 3 + (b + 1) }));
    const config = { sites, pairs: planSpanPairs(sites, Infinity).pairs, heldOut: 0.25, seed: 1 };
    const rnd = seededRandom(11);
    const rows = new Map(sites.map((s) => [s.block, { data: Float64Array.from({ length: 30 * s.width }, () => rnd()), rows: 30, sample: Int32Array.from({ length: 30 }, (_, k) => k >> 1) }]));
    const ids = Array.from({ length: 15 }, (_, k) => 100 + k);
    const full = new SpanStats(config);
    await full.add(rows, ids, matmul);
    const per = new SpanStats(config);
    per.perSiteProducts = true;
    await per.add(rows, ids, matmul);
    for (const split of ['train', 'heldOut'] as const) {
      for (const [k, v] of full[split].gram) assert.ok(maxAbsDiff(v, per[split].gram.get(k)!) < 1e-12, `gram ${k}`);
      for (const [k, v] of full[split].cross) assert.ok(maxAbsDiff(v, per[split].cross.get(k)!) < 1e-12, `cross ${k}`);
      assert.ok(full[split].gram.get(-1)![0]! > 0);
    }
  });

  it('the memory budget admits short spans first and names the ones left out', () => {
    const sites = [-1, 0, 1, 2, 3].map((b) => ({ block: b, tensor: `t${b}`, width: 100 }));
    const all = planSpanPairs(sites, Infinity);
    assert.equal(all.pairs.length, 10);
    assert.equal(all.excluded.length, 0);
    const budget = spanStatsBytes(sites, all.pairs.filter(([i, j]) => j - i === 1)) + 1000;
    const some = planSpanPairs(sites, budget);
    assert.deepEqual(some.pairs.map(([i, j]) => j - i), [1, 1, 1, 1]);
    assert.equal(some.excluded.length, 6);
    assert.ok(spanStatsBytes(sites, some.pairs) <= budget);
  });

  it('bestSet finds the cheapest non-overlapping spans removing exactly K blocks (vs brute force)', () => {
    const rnd = seededRandom(9);
    const costs = new Map<string, number>();
    for (let i = -1; i < 5; i++) for (let j = i + 1; j <= 5; j++) costs.set(`${i}:${j}`, 0.5 + rnd());
    const spans = [...costs.keys()].map((k) => k.split(':').map(Number) as [number, number]);
    for (let K = 1; K <= 6; K++) {
      let best = Infinity;
      const rec = (start: number, from: number, removed: number, cost: number) => {
        if (removed === K) best = Math.min(best, cost);
        if (removed >= K) return;
        for (const [i, j] of spans) if (i >= from && i >= start) rec(j, j, removed + j - i, cost + costs.get(`${i}:${j}`)!);
      };
      rec(-1, -1, 0, 0);
      const set = bestSet(costs, -1, 5, K)!;
      const cost = set.reduce((s, [i, j]) => s + costs.get(`${i}:${j}`)!, 0);
      assert.equal(set.reduce((s, [i, j]) => s + j - i, 0), K);
      for (let k = 1; k < set.length; k++) assert.ok(set[k]![0] >= set[k - 1]![1], 'non-overlapping');
      assert.ok(Math.abs(cost - best) < 1e-12, `K=${K}: ${cost} vs brute force ${best}`);
    }
    assert.equal(bestSet(costs, -1, 5, 7), null);
  });
});
