// The analysis pass's span estimate (rba/span-rows.ts): rows gathered inside the graph
// (model/row-samples.ts), appended outputs tied to run early (onnx/early-outputs.ts), and the
// fits from the kept rows against what the model computes.
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { after, describe, it } from 'node:test';
import * as ort from 'onnxruntime-node';
import { analyzeModel } from '../../src/engine/jobs/analyze';
import { appendRowSamples, type RowLayout } from '../../src/engine/model/row-samples';
import { makeGraph, makeModel, makeNode, makeValueInfo } from '../../src/engine/onnx/builder';
import { encodeModel } from '../../src/engine/onnx/codec';
import { runAppendedEarly } from '../../src/engine/onnx/early-outputs';
import { DataType, type ModelProto } from '../../src/engine/onnx/types';
import { blocks, buildBlockModel, seededRandom, tempDir, writeModel } from '../helpers/rba-models';

const tmp = tempDir('blocklens-span-rows-');
after(() => rmSync(tmp, { recursive: true, force: true }));

function identityModel(dims: (number | string)[]): ModelProto {
  return makeModel({
    graph: makeGraph({
      name: 'id',
      nodes: [makeNode('Identity', ['x'], ['h'], [], '/blocks.0/Identity'), makeNode('Mul', ['h', 'h'], ['y'], [], '/out/Mul')],
      inputs: [makeValueInfo('x', DataType.FLOAT, dims)],
      outputs: [makeValueInfo('y', DataType.FLOAT, dims)],
    }),
    opset: 13,
  });
}

describe('rows gathered inside the graph', () => {
  const cases: { layout: RowLayout; dims: number[]; at: (x: Float32Array, n: number, p: number, c: number) => number; width: number; positions: number }[] = [
    { layout: 'vector', dims: [4, 5], at: (x, n, _p, c) => x[n * 5 + c]!, width: 5, positions: 1 },
    { layout: 'ntd', dims: [4, 7, 3], at: (x, n, p, c) => x[(n * 7 + p) * 3 + c]!, width: 3, positions: 7 },
    { layout: 'tnd', dims: [7, 4, 3], at: (x, n, p, c) => x[(p * 4 + n) * 3 + c]!, width: 3, positions: 7 },
    { layout: 'nchw', dims: [4, 3, 2, 5], at: (x, n, p, c) => x[(n * 3 + c) * 10 + p]!, width: 3, positions: 10 },
    { layout: 'nhwc', dims: [4, 2, 5, 3], at: (x, n, p, c) => x[(n * 10 + p) * 3 + c]!, width: 3, positions: 10 },
  ];
  for (const k of cases) {
    it(`${k.layout} ${JSON.stringify(k.dims)}: row (sample, floor(u·T)) of every draw`, async () => {
      const model = identityModel(k.dims);
      const out = appendRowSamples(model, { id: 't', tensors: [{ tensor: 'h', layout: k.layout }] });
      const session = await ort.InferenceSession.create(encodeModel(model));
      const rand = seededRandom(3);
      const size = k.dims.reduce((a, b) => a * b, 1);
      const x = Float32Array.from({ length: size }, () => rand());
      const sample = [0, 3, 1, 3, 2];
      const u = Float32Array.from([0, 0.99999994, 0.5, 0.25, 0.7]);
      const r = await session.run({
        x: new ort.Tensor('float32', x, k.dims),
        [out.sampleInput]: new ort.Tensor('int64', BigInt64Array.from(sample, BigInt), [sample.length]),
        [out.uInput]: new ort.Tensor('float32', u, [u.length]),
      });
      const t = out.tensors[0]!;
      const rows = r[t.rows]!;
      assert.deepEqual(rows.dims, [sample.length, k.width]);
      assert.deepEqual(Array.from(r[t.shape]!.data as BigInt64Array, Number), k.dims);
      const pos = t.position ? Array.from(r[t.position]!.data as BigInt64Array, Number) : sample.map(() => 0);
      sample.forEach((n, q) => {
        assert.equal(pos[q], Math.floor(Math.fround(u[q]! * k.positions)), `position of draw ${q}`);
        for (let c = 0; c < k.width; c++) assert.equal((rows.data as Float32Array)[q * k.width + c], k.at(x, n, pos[q]!, c), `draw ${q} channel ${c}`);
      });
      await session.release();
    });
  }
});

describe('appended outputs run early', () => {
  const model = (): ModelProto => {
    const m = identityModel(['n', 3]);
    // Appended: a pooled output of h (one source) and a sum of h and y (two sources).
    m.graph!.node.push(
      makeNode('ReduceSum', ['h'], ['pooled'], [], 'blocklens/ReduceSum'),
      makeNode('Add', ['h', 'y'], ['both'], [], 'blocklens/Add'),
    );
    m.graph!.output.push(makeValueInfo('pooled', DataType.FLOAT), makeValueInfo('both', DataType.FLOAT));
    return m;
  };

  it('the last original reader of a tensor reads it through a Reshape tied to the outputs computed from it', () => {
    const m = model();
    const g = runAppendedEarly(m.graph!, 2);
    const mul = g.node.find((n) => n.name === '/out/Mul')!;
    assert.ok(mul.input.every((i) => i !== 'h'), 'the Mul reads the alias');
    const reshape = g.node.find((n) => n.opType === 'Reshape')!;
    assert.equal(reshape.input[0], 'h');
    assert.equal(mul.input[0], reshape.output[0]);
    const sizes = g.node.filter((n) => n.opType === 'Size').map((n) => n.input[0]);
    assert.deepEqual(sizes, ['pooled'], 'only the one-source output is tied (a two-source one could make a cycle)');
  });

  it('gives bit-identical outputs, NaN and Inf included', async () => {
    const plain = model();
    const tied = model();
    tied.graph = runAppendedEarly(tied.graph!, 2);
    const x = Float32Array.from([1.5, NaN, -Infinity, 0, -0, 3e38]);
    const run = async (m: ModelProto) => {
      const s = await ort.InferenceSession.create(encodeModel(m));
      const r = await s.run({ x: new ort.Tensor('float32', x, [2, 3]) });
      const out = Object.fromEntries(Object.entries(r).map(([k, v]) => [k, Array.from(v.data as Float32Array)]));
      await s.release();
      return out;
    };
    const a = await run(plain);
    const b = await run(tied);
    for (const k of ['y', 'pooled', 'both']) assert.deepEqual(Object.is(a[k]![1], NaN) ? a[k] : a[k], b[k], k);
    assert.ok(Number.isNaN(b.y![1]!));
  });
});

describe('analysis span estimates from the kept rows', () => {
  it('a linear block is fitted exactly, a nonlinear one is not, skip is exact on an identity block', async () => {
    const model = buildBlockModel({ width: 6, tokens: 5, blocks: [blocks.affine(6), blocks.mlp(6, 1), blocks.identity(), blocks.mlp(6, 1)], inputScale: 1 });
    const file = writeModel(tmp, 'mixed.onnx', model);
    const report = await analyzeModel({ model: file, samples: 64, batch: 16, pooling: 'mean' });
    const span = (i: number, j: number) => report.spans!.find((s) => s.from === i && s.to === j)!;
    assert.ok(span(-1, 0).relErr! < 1e-9, `affine block: relErr ${span(-1, 0).relErr}`);
    assert.ok(span(0, 1).relErr! > 1e-4, `mlp block: relErr ${span(0, 1).relErr}`);
    assert.ok(span(1, 2).skipRelErr! < 1e-12, `identity block: skip relErr ${span(1, 2).skipRelErr}`);
    // 64 samples × 5 tokens fit the row budget: every token is a row, so the estimate is exact.
    assert.equal(span(0, 1).estimate, 'tokens');
    assert.equal(span(0, 1).rows.train + span(0, 1).rows.heldOut, 64 * 5);
  });
});

describe('analysis span estimates need enough rows', () => {
  it('leaves spans of maps wider than the kept rows can pin down to `blocklens rba`, and says so', async () => {
    // [N, d] blocks of width 48 and 40 samples: ~32 training rows for 49 parameters per output.
    const model = buildBlockModel({ width: 48, blocks: [blocks.mlp(48, 1), blocks.mlp(48, 1), blocks.mlp(48, 1)] });
    const file = writeModel(tmp, 'wide.onnx', model);
    const report = await analyzeModel({ model: file, samples: 40, batch: 8 });
    assert.equal(report.spans, undefined);
    assert.ok(report.warnings.some((w) => /RBA spans not estimated from \d+ start block\(s\).*width 48.*blocklens rba/.test(w)), report.warnings.join('\n'));
    // With enough samples the same model's spans are estimated.
    const more = await analyzeModel({ model: file, samples: 200, batch: 50 });
    assert.ok(more.spans && more.spans.length === 6, `spans: ${more.spans?.length}`);
  });
});

describe('analyze --fit-span: chosen spans fitted on every token in the same pass', () => {
  it('equals the rba pass\'s fit of the span, and replaces the estimate in the ranking', async () => {
    const { createOrtMatmul } = await import('../../src/engine/linalg/index');
    const { openModelContext } = await import('../../src/engine/rba/context');
    const { runSpanPass } = await import('../../src/engine/rba/one-pass');
    const { SpanSolver } = await import('../../src/engine/rba/fit');
    const model = buildBlockModel({ width: 6, tokens: 40, blocks: [blocks.mlp(6, 1), blocks.mlp(6, 1), blocks.mlp(6, 1)] });
    const file = writeModel(tmp, 'fit-span.onnx', model);
    // 600 samples × 40 tokens = 24 000 rows: the estimate keeps a subsample, the exact fit every token.
    const plain = await analyzeModel({ model: file, samples: 600, batch: 100, pooling: 'mean' });
    const report = await analyzeModel({ model: file, samples: 600, batch: 100, pooling: 'mean', fitSpans: [{ from: 0, to: 2 }] });
    const est = plain.spans!.find((s) => s.from === 0 && s.to === 2)!;
    const got = report.spans!.find((s) => s.from === 0 && s.to === 2)!;
    assert.equal(est.estimate, 'token-subsample');
    assert.equal(got.estimate, 'tokens');
    assert.equal(got.rows.train + got.rows.heldOut, 600 * 40);
    assert.equal(report.spans!.length, plain.spans!.length);
    const matmul = await createOrtMatmul();
    try {
      const ctx = await openModelContext({ model: file });
      const pass = await runSpanPass(ctx, { model: file, samples: 600, batch: 100 }, matmul, { pairs: [[0, 2]] });
      const want = await new SpanSolver(pass.stats, matmul).fit(0, 2, { method: 'linear' });
      assert.ok(Math.abs(got.relErr! - want.heldOut.relErr!) <= 1e-9 * want.heldOut.relErr!, `${got.relErr} vs ${want.heldOut.relErr}`);
      assert.deepEqual(got.rows, { train: want.train.rows, heldOut: want.heldOut.rows });
    } finally {
      await matmul.dispose();
    }
  });

  it('names the file and the span when the span is out of range', async () => {
    const file = writeModel(tmp, 'fit-span-bad.onnx', buildBlockModel({ width: 4, blocks: [blocks.mlp(4, 1), blocks.mlp(4, 1)] }));
    await assert.rejects(analyzeModel({ model: file, samples: 20, fitSpans: [{ from: 0, to: 5 }] }), (e: Error & { file?: string }) => /--fit-span 0:5: out of range: the model has blocks 0\.\.1/.test(e.message) && e.file === file);
  });
});

describe('analysis span rows skip padding', () => {
  it('bert_tiny, 64 samples of 64 tokens: every unmasked token is a row, no padded one', async () => {
    const { fixture, manifest } = await import('../helpers/fixtures');
    const { loadModelFile } = await import('../../src/engine/onnx/model-file');
    const { openCalibration } = await import('../../src/engine/calibration/index');
    const { calibrationHints, modelInputs } = await import('../../src/engine/model/introspect');
    const model = fixture(manifest.models['bert_tiny']!.file);
    const data = fixture('data/bert_tokens.npz');
    const report = await analyzeModel({ model, data, samples: 64, batch: 16 });
    // The same samples the analysis read: count their unmasked positions.
    const loaded = await loadModelFile(model);
    const source = await openCalibration({ inputs: modelInputs(loaded.model, model), hints: calibrationHints(loaded.model), data, samples: 64, maxSamples: 512, seed: 0, modelPath: loaded.path });
    let tokens = 0;
    let positions = 0;
    for await (const b of source.batches(16)) {
      const m = b.feeds.attention_mask!;
      positions += m.data.length;
      for (const v of Array.from(m.data as ArrayLike<number | bigint>)) tokens += Number(v) !== 0 ? 1 : 0;
    }
    await source.close();
    assert.ok(tokens < positions, 'the data has padding');
    for (const s of report.spans!) {
      assert.equal(s.estimate, 'tokens', `${s.from}→${s.to}`);
      assert.equal(s.rows.train + s.rows.heldOut, tokens, `${s.from}→${s.to}: rows`);
    }
  });
});
