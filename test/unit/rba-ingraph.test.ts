// The span statistics formed inside the instrumented graph (SpanStatsConsumer's in-graph form:
// per split and start block, X̃ᵀ[X̃ | Y…] in float64, gram requests with a per-batch sample
// selection) equal the JavaScript form's sums over the same rows: masks, NCHW blocks with
// several spatial grids, [N, d] blocks, short last batches and batches with an empty split.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { runPass, type PassModel } from '../../src/engine/pass/run-pass';
import { openModelContext, openSource, type RbaDataOptions } from '../../src/engine/rba/context';
import { runSpanPass } from '../../src/engine/rba/one-pass';
import { SpanStatsConsumer } from '../../src/engine/rba/span-pass';
import { SpanStats, type SpanPair } from '../../src/engine/rba/span-stats';
import { attr } from '../../src/engine/onnx/builder';
import { DataType } from '../../src/engine/onnx/types';
import { fixture, manifest } from '../helpers/fixtures';
import { blocks, buildBlockModel, nhwcModel, rbaTestEnv, writeModel } from '../helpers/rba-models';

const { matmul, tmp } = rbaTestEnv();

/** max |a − b| / max(1, max |b|). */
const relDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let m = 0;
  let s = 1;
  for (let k = 0; k < b.length; k++) s = Math.max(s, Math.abs(b[k]!));
  for (let k = 0; k < a.length; k++) m = Math.max(m, Math.abs(a[k]! - b[k]!));
  return m / s;
};

function assertSameSums(got: SpanStats, want: SpanStats, what: string) {
  assert.deepEqual(got.config, want.config, `${what}: same sites and spans`);
  assert.equal(got.samples, want.samples);
  assert.equal(got.estimate, want.estimate);
  assert.deepEqual([...got.estimates].sort(), [...want.estimates].sort());
  for (const split of ['train', 'heldOut'] as const) {
    const g = got[split];
    const w = want[split];
    assert.deepEqual(g.rows, w.rows, `${what} ${split}: row counts`);
    for (const [k, v] of w.gram) assert.ok(relDiff(g.gram.get(k)!, v) < 1e-10, `${what} ${split}: X̃ᵀX̃ of ${k} differs by ${relDiff(g.gram.get(k)!, v)}`);
    for (const [k, v] of w.cross) assert.ok(relDiff(g.cross.get(k)!, v) < 1e-10, `${what} ${split}: X̃ᵀY of ${k} differs by ${relDiff(g.cross.get(k)!, v)}`);
    for (const [k, v] of w.ysum) assert.ok(relDiff(g.ysum.get(k)!, v) < 1e-10, `${what} ${split}: Σy of ${k}`);
    for (const [k, v] of w.ysq) assert.ok(Math.abs(g.ysq.get(k)! - v) <= 1e-10 * Math.max(1, Math.abs(v)), `${what} ${split}: Σ‖y‖² of ${k}: ${g.ysq.get(k)} vs ${v}`);
  }
}

async function both(opts: RbaDataOptions, pairs?: SpanPair[]) {
  const ctx = await openModelContext({ model: opts.model });
  const graph = await runSpanPass(ctx, opts, matmul, pairs ? { pairs } : {});
  const js = await runSpanPass(ctx, opts, matmul, { ...(pairs ? { pairs } : {}), inGraph: false });
  return { graph, js };
}

describe('RBA span statistics inside the graph', () => {
  const cases: [string, Partial<RbaDataOptions>][] = [
    ['bert_tiny', { batch: 7 }], // attention mask (padding rows drop out), a short last batch
    ['resnet_tiny', { batch: 8, samples: 20 }], // NCHW, several spatial grids and widths
    ['vit_tiny', { batch: 5, samples: 23 }], // [N, T, d]
    ['linear_blocks', { batch: 10 }], // [N, d]
  ];
  for (const [name, extra] of cases) {
    it(`${name}: equals the JavaScript form's sums, every admitted span`, async () => {
      const m = manifest.models[name]!;
      const data = fixture(m.calibration.npz ?? m.calibration.npy!);
      const { graph, js } = await both({ model: fixture(m.file), data, seed: 3, ...extra });
      assert.equal(graph.consumer.inGraph, true, 'the in-graph form applies');
      assert.equal(js.consumer.inGraph, false);
      assert.ok(graph.stats.config.pairs.length > 0);
      assert.deepEqual(graph.consumer.excluded, js.consumer.excluded);
      assert.deepEqual([...graph.consumer.shapes.values()].map((s) => [s.block, s.dims.slice(1), s.width, s.type]), [...js.consumer.shapes.values()].map((s) => [s.block, s.dims.slice(1), s.width, s.type]));
      assertSameSums(graph.stats, js.stats, name);
      assert.ok(graph.stats.train.rows.size > 0 && [...graph.stats.heldOut.rows.values()].some((r) => r > 0), 'both splits have rows');
    });
  }

  it('batches where one split is empty add nothing for it (batch of 1)', async () => {
    const model = buildBlockModel({ width: 4, tokens: 3, blocks: [blocks.mlp(4, 1), blocks.affine(4, 5), blocks.affine(5, 5)] });
    const file = writeModel(tmp, 'empty-split.onnx', model);
    const { graph, js } = await both({ model: file, samples: 9, batch: 1, seed: 2, heldOut: 0.3 });
    assert.equal(graph.consumer.inGraph, true);
    assertSameSums(graph.stats, js.stats, 'batch 1');
    // Widths 4 and 5: both kinds of ends, and blocks that only end spans (Σ‖y‖² from Y_jᵀY_j).
    assert.ok(graph.stats.config.pairs.some(([i, j]) => graph.stats.widthOf(i) !== graph.stats.widthOf(j)));
  });

  it('shards of the in-graph form merge into the single run, through JSON snapshots', async () => {
    const m = manifest.models.bert_tiny!;
    const opts = { model: fixture(m.file), data: fixture(m.calibration.npz!), seed: 5 };
    const ctx = await openModelContext({ model: opts.model });
    const pairs: SpanPair[] = [[0, 1], [-1, 3], [1, 3]];
    const source = await openSource(ctx, opts);
    const total = source.samples;
    await source.close();
    const model: PassModel = {
      loaded: ctx.loaded, blocks: ctx.detection.blocks.map((b) => ({ index: b.index, name: b.name, output: b.output })), blockInput: ctx.detection.blockInput,
      pooling: 'auto', maskInput: ctx.maskInput, session: {}, totalSamples: total, seed: 5, file: opts.model,
    };
    const shard = async (start: number, end: number, inGraph?: boolean) => {
      const src = await openSource(ctx, opts);
      const c = new SpanStatsConsumer(matmul, { pairs, seed: 5, ...(inGraph === false ? { inGraph } : {}) });
      try {
        await runPass(src, model, [c], { batchSize: 4, range: { start, end } });
      } finally {
        await src.close();
      }
      assert.equal(c.inGraph, inGraph !== false);
      return JSON.parse(JSON.stringify(c.snapshot()));
    };
    const cut = Math.floor(total / 3);
    const merged = new SpanStatsConsumer(matmul, { pairs });
    for (const snap of [await shard(0, cut), await shard(cut, total - 5, false), await shard(total - 5, total)]) merged.merge(snap);
    const single = new SpanStatsConsumer(matmul, { pairs });
    single.merge(await shard(0, total, false));
    assertSameSums(merged.stats!, single.stats!, 'merged shards');
  });

  for (const opset of [8, 10, 21]) {
    it(`opset ${opset}: the same sums (no ConstantOfShape before 9, Gemm needs C before 11)`, async () => {
      const model = buildBlockModel({ width: 5, tokens: 4, opset, blocks: [blocks.mlp(5, 1), blocks.affine(5, 5), blocks.mlp(5, 0.5)] });
      const file = writeModel(tmp, `op${opset}.onnx`, model);
      const { graph, js } = await both({ model: file, samples: 21, batch: 8, seed: 1 });
      assert.equal(graph.consumer.inGraph, true);
      assertSameSums(graph.stats, js.stats, `opset ${opset}`);
    });
  }

  it('float16 block outputs: cast to float64 in the graph, the same sums as the JavaScript form', async () => {
    // Blocks compute in float32; the sites are float16 copies of their outputs (named with --blocks).
    const model = buildBlockModel({
      width: 4, tokens: 3, blocks: [blocks.mlp(4, 1), blocks.mlp(4, 1), blocks.affine(4, 4)],
      finish: (g, outs) => outs.forEach((h, k) => g.op(`/half.${k}`, 'Cast', [h], [attr.int('to', DataType.FLOAT16)])),
    });
    const file = writeModel(tmp, 'half.onnx', model);
    const half = model.graph!.node.filter((n) => n.opType === 'Cast').map((n) => n.output[0]!);
    const opts = { model: file, samples: 14, batch: 5, blocks: half };
    const ctx = await openModelContext(opts);
    const graph = await runSpanPass(ctx, opts, matmul, {});
    const js = await runSpanPass(ctx, opts, matmul, { inGraph: false });
    assert.equal(graph.consumer.inGraph, true);
    assert.deepEqual([...graph.consumer.shapes.values()].map((s) => s.type).slice(1), ['float16', 'float16', 'float16']);
    assertSameSums(graph.stats, js.stats, 'float16');
  });

  it('channels-last blocks (a layout the in-graph rows do not take) fall back to the JavaScript form', async () => {
    const file = writeModel(tmp, 'nhwc.onnx', nhwcModel());
    const { graph, js } = await both({ model: file, samples: 12, batch: 4 });
    assert.equal(graph.consumer.inGraph, false);
    assertSameSums(graph.stats, js.stats, 'nhwc');
  });
});

