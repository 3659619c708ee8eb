import assert from 'node:assert/strict';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import * as ort from 'onnxruntime-node';
import { detectBlocks } from '../../src/engine/blocks/detect';
import { decodeModel, encodeModel } from '../../src/engine/onnx/codec';
import { loadModelFile } from '../../src/engine/onnx/model-file';
import { DataType, type ModelProto } from '../../src/engine/onnx/types';
import { defaultOutputPath, runRba } from '../../src/engine/rba/export';
import { augmentedIdentity } from '../../src/engine/rba/fit';
import { runPlan } from '../../src/engine/rba/plan';
import { liveNodes, replaceSpans } from '../../src/engine/rba/surgery';
import { fixture, manifest } from '../helpers/fixtures';
import { BlockGraph, blocks, buildBlockModel, rbaTestEnv, writeModel } from '../helpers/rba-models';

const { matmul, tmp } = rbaTestEnv();

/** Runs a model file in ORT on one batch of ones and returns its first output's dims. */
async function runsInOrt(file: string, feeds: Record<string, ort.Tensor>): Promise<readonly number[]> {
  const s = await ort.InferenceSession.create(file);
  try {
    const out = await s.run(feeds);
    const first = out[s.outputNames[0]!]!;
    assert.ok((first.data as Float32Array).every((v) => Number.isFinite(Number(v))), `${file}: non-finite output`);
    return first.dims;
  } finally {
    await s.release();
  }
}

function feedsFor(name: string): Record<string, ort.Tensor> {
  const m = manifest.models[name]! as unknown as { inputs: { name: string; dtype: string; shape: (number | string)[] }[] };
  const feeds: Record<string, ort.Tensor> = {};
  for (const inp of m.inputs) {
    const dims = inp.shape.map((d) => (typeof d === 'number' ? d : d === 'batch' ? 3 : 16));
    const n = dims.reduce((a, b) => a * b, 1);
    feeds[inp.name] = inp.dtype === 'int64' ? new ort.Tensor('int64', BigInt64Array.from({ length: n }, (_, k) => BigInt(/mask/.test(inp.name) ? 1 : (k % 7) + 1)), dims) : new ort.Tensor('float32', Float32Array.from({ length: n }, (_, k) => (k % 13) / 13), dims);
  }
  return feeds;
}

const CASES: { name: string; data: string; spans: [number, number][]; samples?: number }[] = [
  { name: 'vit_tiny', data: 'data/digits_x.npy', spans: [[2, 3]] },
  { name: 'vit_tiny_op18', data: 'data/digits_x.npy', spans: [[-1, 1]] },
  { name: 'vit_external', data: 'data/digits_x.npy', spans: [[1, 3]] },
  { name: 'bert_tiny', data: 'data/bert_tokens.npz', spans: [[0, 2]], samples: 96 },
  { name: 'gpt_tiny', data: 'data/gpt_tokens.npz', spans: [[1, 3]] },
  { name: 'resnet_tiny', data: 'data/digits_x.npy', spans: [[2, 3], [-1, 1]] },
  { name: 'noscope_mlp_resnet', data: 'data/digits_flat.npy', spans: [[-1, 1]] },
  { name: 'linear_blocks', data: 'data/linear_x.npy', spans: [[0, 1], [2, 3]], samples: 64 },
];

describe('rba export: every fixture round-trips through ONNX Runtime', () => {
  for (const c of CASES) {
    it(`${c.name}: spans ${c.spans.map(([i, j]) => `${i}→${j}`).join(', ')}`, async () => {
      const m = manifest.models[c.name]!;
      const out = path.join(tmp, `${c.name}.rba.onnx`);
      const r = await runRba({ model: fixture(m.file), data: fixture(c.data), samples: c.samples ?? 128, spans: c.spans.map(([from, to]) => ({ from, to })), out }, matmul);
      assert.equal(r.out, out);
      const before = await loadModelFile(fixture(m.file));
      const after_ = await loadModelFile(out);
      // The replaced blocks' nodes are gone, the model still has its inputs and outputs.
      assert.ok(r.nodes.removed > 0 && after_.model.graph!.node.length === before.model.graph!.node.length - r.nodes.removed + r.nodes.added);
      assert.deepEqual(after_.model.graph!.output.map((o) => o.name), before.model.graph!.output.map((o) => o.name));
      assert.deepEqual(after_.model.opsetImport.map((o) => [o.domain, o.version]), before.model.opsetImport.map((o) => [o.domain, o.version]));
      // Every node is live and the order is topological.
      assert.equal(liveNodes(after_.model.graph!).size, after_.model.graph!.node.length, 'no dead nodes left');
      const seen = new Set([...after_.model.graph!.input.map((v) => v.name), ...after_.model.graph!.initializer.map((t) => t.name)]);
      for (const n of after_.model.graph!.node) {
        for (const i of n.input) if (i) assert.ok(seen.has(i), `${n.name} reads ${i} before it is computed`);
        n.output.forEach((o) => seen.add(o));
      }
      const used = new Set(after_.model.graph!.node.flatMap((n) => n.input));
      for (const t of after_.model.graph!.initializer) assert.ok(used.has(t.name!), `unused initializer ${t.name}`);
      assert.ok(r.verify!.candidate.parameters < r.verify!.original.parameters || c.name === 'linear_blocks');
      assert.ok(r.verify!.relMse !== null && Number.isFinite(r.verify!.relMse));
      const dims = await runsInOrt(out, feedsFor(c.name));
      const dimsBefore = await runsInOrt(fixture(m.file), feedsFor(c.name));
      assert.deepEqual(dims, dimsBefore);
      if (c.name === 'vit_external') {
        assert.equal(r.externalData, `${out}.data`);
        assert.ok(statSync(`${out}.data`).size > 100_000, 'weights written beside the new file');
        assert.ok(after_.model.graph!.initializer.some((t) => t.dataLocation === 1 && t.externalData.some((e) => e.value === path.basename(`${out}.data`))));
      }
    });
  }

  it('identity maps over identity blocks leave the outputs unchanged (skip and linear)', async () => {
    const m = manifest.models.linear_blocks!;
    const skip = await runRba({ model: fixture(m.file), data: fixture('data/linear_x.npy'), spans: [{ from: 1, to: 2 }], method: 'skip', out: path.join(tmp, 'skip.onnx') }, matmul);
    assert.equal(skip.verify!.relMse, 0);
    assert.equal(skip.verify!.samples > 0, true);
    const lin = await runRba({ model: fixture(m.file), data: fixture('data/linear_x.npy'), spans: [{ from: 1, to: 2 }], out: path.join(tmp, 'lin.onnx'), heldOut: 0.5 }, matmul);
    assert.ok(lin.verify!.relMse! < 1e-10, `linear map over the identity block: rel MSE ${lin.verify!.relMse}`);
  });

  it('keeps a tensor a later block reads from inside a removed block\'s scope', async () => {
    // Block 0 computes a table (scope /blocks.0/) that block 2 adds too; blocks are affine.
    const d = 8;
    const model = buildBlockModel({
      width: d,
      blocks: [
        (g: BlockGraph, s, h, k) => {
          const table = g.op(s, 'Mul', [g.random('table', [d], 1), g.weight('two', [], () => 2)]);
          const m = g.op(s, 'MatMul', [h, g.random(`w${k}`, [d, d], 0.4)]);
          return g.op(s, 'Add', [m, table]);
        },
        blocks.affine(d),
        (g, s, h, k) => {
          const table = g.nodes.find((n) => n.name?.startsWith('/blocks.0/Mul'))!.output[0]!;
          return g.op(s, 'Add', [g.op(s, 'MatMul', [h, g.random(`w${k}`, [d, d], 0.4)]), table]);
        },
      ],
    });
    const file = writeModel(tmp, 'shared.onnx', model);
    const out = path.join(tmp, 'shared.rba.onnx');
    const r = await runRba({ model: file, samples: 100, spans: [{ from: -1, to: 0 }], out }, matmul);
    assert.ok(r.verify!.relMse! < 1e-9, `exact replacement of an affine block: ${r.verify!.relMse}`);
    const names = (await loadModelFile(out)).model.graph!.node.map((n) => n.name);
    assert.ok(names.some((n) => n?.startsWith('/blocks.0/Mul')), 'the shared table node stays');
    assert.ok(!names.some((n) => n?.startsWith('/blocks.0/MatMul')), 'the block\'s own work is gone');
  });

  it('keeps unknown fields, metadata and functions of the model', async () => {
    const loaded = await loadModelFile(fixture(manifest.models.vit_tiny!.file));
    const model: ModelProto = { ...loaded.model, metadataProps: [...loaded.model.metadataProps, { key: 'kept', value: 'yes' }] };
    // An unknown ModelProto field 99 (varint 1) as a decoder would record it.
    model.$wire = { order: [...(loaded.model.$wire?.order ?? []), 99], unknown: [...(loaded.model.$wire?.unknown ?? []), { no: 99, bytes: Uint8Array.from([0x98, 0x06, 0x01]) }] };
    const det = detectBlocks(model);
    const d = 48;
    const edited = replaceSpans(model, [{ map: { from: 2, to: 3, method: 'linear', dIn: d, dOut: d, weight: augmentedIdentity(d), params: d * d + d }, input: det.blocks[2]!.output, output: det.blocks[3]!.output, rank: 3, elemType: DataType.FLOAT }]);
    const back = decodeModel(encodeModel(edited.model));
    assert.deepEqual(back.$wire?.unknown.map((u) => u.no), [99]);
    assert.ok(back.metadataProps.some((p) => p.key === 'kept'));
    assert.equal(back.producerName, loaded.model.producerName);
    assert.equal(loaded.model.graph!.node.length, (await loadModelFile(fixture(manifest.models.vit_tiny!.file))).model.graph!.node.length, 'input model not modified');
  });

  it('a second replacement over an already replaced span gets fresh names and still runs', async () => {
    const loaded = await loadModelFile(fixture(manifest.models.vit_tiny!.file));
    const det = detectBlocks(loaded.model);
    const d = 48;
    const rep = (model: ModelProto, scale: number) =>
      replaceSpans(model, [{ map: { from: 2, to: 3, method: 'linear', dIn: d, dOut: d, weight: augmentedIdentity(d).map((v) => v * scale), params: d * d + d }, input: det.blocks[2]!.output, output: det.blocks[3]!.output, rank: 3, elemType: DataType.FLOAT }]).model;
    const twice = rep(rep(loaded.model, 1), 2);
    // The map that stays is the second one (weights 2·I), wired to its own initializers.
    const mm = twice.graph!.node.filter((n) => n.opType === 'MatMul' && n.name?.startsWith('/blocklens_rba'));
    assert.equal(mm.length, 1);
    const w = twice.graph!.initializer.find((t) => t.name === mm[0]!.input[1])!;
    assert.equal(new Float32Array(w.rawData!.slice().buffer)[0], 2);
    const names = twice.graph!.initializer.map((t) => t.name);
    assert.equal(new Set(names).size, names.length, 'initializer names are unique');
    const outs = twice.graph!.node.flatMap((n) => n.output);
    assert.equal(new Set(outs).size, outs.length, 'every tensor has one producer');
    const s = await ort.InferenceSession.create(encodeModel(twice));
    const r = await s.run(feedsFor('vit_tiny'));
    assert.deepEqual(r.logits!.dims, [3, 10]);
    await s.release();
  });

  it('fp16 models get fp16 weights, and the export runs', async () => {
    const loaded = await loadModelFile(fixture(manifest.models.linear_blocks!.file));
    const g = loaded.model.graph!;
    const half = (t: (typeof g.initializer)[number]) => {
      const f = new Float32Array(t.rawData!.slice().buffer);
      const { makeTensor } = require('../../src/engine/onnx/builder') as typeof import('../../src/engine/onnx/builder');
      return makeTensor(t.name!, DataType.FLOAT16, t.dims, f);
    };
    const retype = <T extends { type?: { tensorType?: { elemType?: number } } }>(v: T): T => ({ ...v, type: { ...v.type, tensorType: { ...v.type!.tensorType, elemType: DataType.FLOAT16 } } });
    const fp16: ModelProto = { ...loaded.model, graph: { ...g, initializer: g.initializer.map(half), input: g.input.map(retype), output: g.output.map(retype), valueInfo: g.valueInfo.map(retype) } };
    delete fp16.$wire;
    delete fp16.graph!.$wire;
    const file = writeModel(tmp, 'linear_fp16.onnx', fp16);
    const out = path.join(tmp, 'linear_fp16.rba.onnx');
    const r = await runRba({ model: file, samples: 64, spans: [{ from: 0, to: 2 }], out }, matmul);
    const after_ = await loadModelFile(out);
    const added = after_.model.graph!.initializer.filter((t) => t.name?.startsWith('/blocklens_rba'));
    assert.equal(added.length, 2);
    for (const t of added) assert.equal(t.dataType, DataType.FLOAT16, `${t.name} is fp16`);
    assert.ok(after_.model.graph!.initializer.every((t) => t.dataType === DataType.FLOAT16));
    assert.ok(r.verify!.relMse! < 1e-4, `fp16 affine replacement rel MSE ${r.verify!.relMse}`);
  });

  it('the ViT fixture\'s best single-block replacement keeps top-1 agreement ≥ 98% on held-out data', async () => {
    const m = manifest.models.vit_tiny!;
    const r = await runPlan({ model: fixture(m.file), data: fixture('data/digits_x.npy'), labels: fixture('data/digits_labels.npy'), remove: 1, dryRun: true, heldOut: 0.5 }, matmul);
    assert.ok(r.chosen);
    assert.equal(r.chosen.blocksRemoved, 1);
    assert.ok(r.chosen.measured.agreement! >= 0.98, `agreement ${r.chosen.measured.agreement}`);
    assert.ok(r.chosen.measured.accuracy! >= 0.95, `accuracy ${r.chosen.measured.accuracy}`);
  });
});

describe('rba errors', () => {
  const vit = fixture(manifest.models.vit_tiny!.file);
  const data = fixture('data/digits_x.npy');
  it('I ≥ J', async () => {
    await assert.rejects(runRba({ model: vit, data, spans: [{ from: 3, to: 3 }], out: path.join(tmp, 'x.onnx') }, matmul), /start must be before the end/);
    await assert.rejects(runRba({ model: vit, data, spans: [{ from: 4, to: 2 }], out: path.join(tmp, 'x.onnx') }, matmul), /start must be before the end/);
  });
  it('out-of-range blocks', async () => {
    await assert.rejects(runRba({ model: vit, data, spans: [{ from: 2, to: 6 }], out: path.join(tmp, 'x.onnx') }, matmul), /block 6 is out of range \(the model has blocks 0\.\.5\)/);
    await assert.rejects(runRba({ model: vit, data, spans: [{ from: -2, to: 1 }], out: path.join(tmp, 'x.onnx') }, matmul), /block -2 is out of range/);
  });
  it('overlapping spans', async () => {
    await assert.rejects(runRba({ model: vit, data, spans: [{ from: 0, to: 2 }, { from: 1, to: 3 }], out: path.join(tmp, 'x.onnx') }, matmul), /overlap/);
  });
  it('an existing output file without --force, and never the input', async () => {
    const out = path.join(tmp, 'exists.onnx');
    writeFileSync(out, 'keep me');
    await assert.rejects(runRba({ model: vit, data, spans: [{ from: 2, to: 3 }], out }, matmul), /already exists; pass --force/);
    assert.equal(readFileSync(out, 'utf8'), 'keep me');
    await assert.rejects(runRba({ model: vit, data, spans: [{ from: 2, to: 3 }], out: vit, force: true }, matmul), /refusing to overwrite the input model/);
    const r = await runRba({ model: vit, data, samples: 64, spans: [{ from: 2, to: 3 }], out, force: true, verify: false }, matmul);
    assert.ok(statSync(r.out).size > 1000);
  });
  it('the default name is <model>.rba-I-J.onnx beside the input', () => {
    assert.equal(defaultOutputPath('/a/b/m.onnx', [{ from: -1, to: 2 }]), '/a/b/m.rba--1-2.onnx');
    assert.equal(defaultOutputPath('/a/b/m.onnx', [{ from: 0, to: 1 }, { from: 3, to: 5 }]), '/a/b/m.rba-0-1_3-5.onnx');
  });
  it('a width mismatch for skip', async () => {
    const file = writeModel(tmp, 'widths.onnx', buildBlockModel({ width: 8, blocks: [blocks.affine(8, 8), blocks.affine(8, 12), blocks.affine(12, 12)] }));
    await assert.rejects(runRba({ model: file, samples: 32, spans: [{ from: 0, to: 1 }], method: 'skip', out: path.join(tmp, 'w.onnx') }, matmul), /--method skip needs equal widths, but block 0 has width 8 and block 1 has 12/);
    // A linear map handles the width change.
    const r = await runRba({ model: file, samples: 64, spans: [{ from: 0, to: 1 }], out: path.join(tmp, 'w.onnx') }, matmul);
    assert.ok(r.verify!.relMse! < 1e-9);
  });
  it('a spatial mismatch names the reason and the options', async () => {
    const m = manifest.models.resnet_tiny!;
    await assert.rejects(
      runRba({ model: fixture(m.file), data, samples: 32, spans: [{ from: 1, to: 2 }], out: path.join(tmp, 'r.onnx') }, matmul),
      (e: Error) => /spatial size 8×8 vs 4×4/.test(e.message) && /1×1 convolution/.test(e.message) && /-1\.\.1, 2\.\.3, 4\.\.5/.test(e.message),
    );
    assert.ok(!existsSync(path.join(tmp, 'r.onnx')), 'nothing written');
  });
});
