// Issue 11: blocks, block inputs and pooling from the graph's structure, on every fixture, with
// and without names; rules one by one on the new fixtures and on small built graphs.
import assert from 'node:assert/strict';
import { nhwcModel } from '../helpers/rba-models';
import { describe, it } from 'node:test';
import * as ort from 'onnxruntime-node';
import { analyzeModel } from '../../src/engine/analysis/analyze';
import { detectBlocks, BlockDetectionError } from '../../src/engine/blocks/detect';
import { GraphIndex } from '../../src/engine/blocks/graph-index';
import { instrumentModel, POOLED_PREFIX, type PoolTarget } from '../../src/engine/blocks/instrument';
import { planRepresentations } from '../../src/engine/blocks/plan';
import { evaluateCausalMask, fusedCausalAttention } from '../../src/engine/blocks/probe';
import { encodeModel } from '../../src/engine/onnx/codec';
import { attr, makeGraph, makeModel, makeNode, makeTensor, makeValueInfo } from '../../src/engine/onnx/builder';
import { loadModelFile } from '../../src/engine/onnx/model-file';
import { DataType, type ModelProto, type NodeProto } from '../../src/engine/onnx/types';
import { fixture, manifest, FIXTURES } from '../helpers/fixtures';
import { stripNames } from '../helpers/strip';

const STRUCTURAL = new Set(['residual-adds', 'repeated-units']);

async function poolingOf(model: ModelProto, dir: string, d: ReturnType<typeof detectBlocks>) {
  const index = new GraphIndex(model.graph!);
  const targets: PoolTarget[] = d.blocks.map((b) => ({ key: String(b.index), tensor: b.output, rank: index.rank(b.output) ?? -1 }));
  if (d.blockInput) targets.push({ key: 'input', tensor: d.blockInput, rank: index.rank(d.blockInput) ?? -1 });
  return planRepresentations({ model, index, dir, targets, lastKey: String(d.blocks.length - 1), requested: 'auto' });
}

describe('every fixture: blocks, block input and pooling as the manifest says', () => {
  for (const [name, m] of Object.entries(manifest.models)) {
    it(`${name}: ${m.blocks.route}, L=${m.blocks.count}, pooling ${m.pooling}`, async () => {
      const loaded = await loadModelFile(fixture(m.file));
      const d = detectBlocks(loaded.model);
      assert.equal(d.method, m.blocks.route);
      assert.deepEqual(d.blocks.map((b) => b.output), m.blocks.outputs);
      assert.equal(d.blockInput, m.blocks.input);
      assert.ok(d.blockInputReason.length > 10, 'the block input comes with its reason');
      assert.equal(d.granularity, 'layer');
      const plan = await poolingOf(loaded.model, loaded.dir, d);
      assert.equal(plan.pooling.used, m.pooling, plan.pooling.reason);
      assert.ok(plan.pooling.evidence.length >= 1);
    });
  }
});

describe('names are only a shortcut: stripped and renamed fixtures give the same answer', () => {
  // Every transformer and CNN fixture (linear_blocks too): node names and metadata emptied, every
  // tensor renamed in shuffled order. Only the structure is left.
  for (const [name, m] of Object.entries(manifest.models)) {
    it(`${name} without names: same blocks, block input and pooling`, async () => {
      const loaded = await loadModelFile(fixture(m.file));
      const { model, rename } = stripNames(loaded.model);
      assert.ok(model.graph!.node.every((n) => !n.name && n.metadataProps.length === 0));
      const d = detectBlocks(model);
      assert.ok(STRUCTURAL.has(d.method), `structural route expected, got ${d.method}`);
      if (m.blocks.route !== 'scoped-names') assert.equal(d.method, m.blocks.route);
      assert.deepEqual(d.blocks.map((b) => b.output), m.blocks.outputs.map(rename));
      assert.equal(d.blockInput, rename(m.blocks.input));
      // No expected name survives the renaming (the comparison is not a name match).
      for (const t of [...m.blocks.outputs, m.blocks.input]) assert.notEqual(rename(t), t);
      const plan = await poolingOf(model, loaded.dir, d);
      assert.equal(plan.pooling.used, m.pooling, plan.pooling.reason);
    });
  }
});

describe('rule 1: block input by role (residual stream), not by reader count', () => {
  it('llama_tiny: the CSE-shared rotary tables in layers.0 are read by later layers, and are not h-1', async () => {
    const m = manifest.models.llama_tiny! as typeof manifest.models.llama_tiny & { blocks: { side_tensors_in_block0: string[] } };
    const loaded = await loadModelFile(fixture(m.file));
    const index = new GraphIndex(loaded.model.graph!);
    const side = m.blocks.side_tensors_in_block0;
    assert.ok(side.length > 0);
    // Produced in layers.0 and read by later layers (the situation the issue describes), and
    // among them the rotary tables (computed from the Cos node).
    const cos = index.nodes.findIndex((n) => n.opType === 'Cos');
    assert.ok(index.nodes[cos]!.name!.startsWith('/layers.0/'));
    for (const t of side) {
      const readers = (index.consumers.get(t) ?? []).map((c) => index.nodes[c]!.name ?? '');
      assert.ok(readers.some((r) => /^\/layers\.[1-9]\//.test(r)), `${t} is read by a later layer`);
    }
    assert.ok(side.some((t) => index.dependsOn(t, index.nodes[cos]!.output[0]!)), 'a rotary table is among them');
    const d = detectBlocks(loaded.model);
    assert.equal(d.blockInput, m.blocks.input);
    assert.ok(!side.includes(d.blockInput!));
    assert.match(d.blockInputReason, /residual stream/);
  });

  it('a block output reached through a Cast in the next block is the tensor before the Cast', () => {
    // x → [blocks.i: h + W·relu(Cast(h))] ×3; block i+1 starts with Cast(h_i) (Identity-like).
    const nodes: NodeProto[] = [];
    const inits: ReturnType<typeof makeTensor>[] = [];
    let h = 'x';
    for (let i = 0; i < 3; i++) {
      const s = `/blocks.${i}`;
      nodes.push(makeNode('Cast', [h], [`c${i}`], [attr.int('to', DataType.FLOAT)], `${s}/Cast`));
      nodes.push(makeNode('MatMul', [`c${i}`, `w${i}`], [`m${i}`], [], `${s}/MatMul`));
      nodes.push(makeNode('Relu', [`m${i}`], [`r${i}`], [], `${s}/Relu`));
      nodes.push(makeNode('Add', [`c${i}`, `r${i}`], [`h${i}`], [], `${s}/Add`));
      inits.push(makeTensor(`w${i}`, DataType.FLOAT, [4, 4], new Float32Array(16).fill(0.1)));
      h = `h${i}`;
    }
    const model = makeModel({
      graph: makeGraph({ nodes, inputs: [makeValueInfo('x', DataType.FLOAT, ['N', 4])], outputs: [makeValueInfo(h, DataType.FLOAT, ['N', 4])], initializers: inits }),
      opset: 13,
    });
    const d = detectBlocks(model);
    assert.deepEqual(d.blocks.map((b) => b.output), ['h0', 'h1', 'h2']);
    assert.equal(d.blockInput, 'x');
    assert.match(d.blockInputReason, /residual stream/);
    const { model: bare, rename } = stripNames(model);
    const s = detectBlocks(bare);
    assert.equal(s.method, 'residual-adds');
    assert.deepEqual(s.blocks.map((b) => b.output), ['h0', 'h1', 'h2'].map(rename));
    assert.equal(s.blockInput, rename('x'));
  });
});

describe('rule 2: causal masks built at run time, recognised by evaluation', () => {
  it('llama_tiny has no Trilu and no constant mask, yet its mask evaluates lower-triangular → last', async () => {
    const loaded = await loadModelFile(fixture(manifest.models.llama_tiny!.file));
    assert.ok(!loaded.model.graph!.node.some((n) => n.opType === 'Trilu'));
    const c = await evaluateCausalMask(loaded.model, new GraphIndex(loaded.model.graph!), { dir: loaded.dir });
    assert.equal(c.causal, true, c.detail);
    assert.match(c.detail, /lower-triangular/);
  });

  it('a padding-only mask (bert_tiny) and an encoder without mask (preln_stripped) are not causal', async () => {
    for (const name of ['bert_tiny', 'preln_stripped']) {
      const loaded = await loadModelFile(fixture(manifest.models[name]!.file));
      const c = await evaluateCausalMask(loaded.model, new GraphIndex(loaded.model.graph!), { dir: loaded.dir });
      assert.equal(c.causal, false, `${name}: ${c.detail}`);
    }
  });

  it('analyze on the decoder with its right-padded token data: auto → last, BR[0] defined and matching PyTorch', async () => {
    const m = manifest.models.llama_tiny!;
    const report = await analyzeModel({ model: fixture(m.file), data: fixture(m.calibration.npz!) });
    assert.equal(report.pooling.used, 'last');
    assert.match(report.pooling.reason, /causal/);
    assert.equal(report.detection.blockInput, m.blocks.input);
    assert.ok(report.detection.blockInputReason && /residual stream/.test(report.detection.blockInputReason));
    const ref = m.reference_stats!;
    assert.equal(report.calibration.samples, ref.n_samples);
    assert.notEqual(report.metrics.br[0], null);
    ref.br.forEach((b, i) => assert.ok(Math.abs(report.metrics.br[i]! - b!) <= 1e-4 * Math.abs(b!), `br[${i}] ${report.metrics.br[i]} vs ${b}`));
  });
});

describe('rule 2: masks with earlier context and fused attention ops', () => {
  it('a mask over P cached + T new keys (key j visible from query i iff j ≤ i + P) is causal; the same mask with ≥ is not', async () => {
    for (const [op, causal] of [['LessOrEqual', true], ['GreaterOrEqual', false]] as const) {
      const model = contextMaskModel(op);
      const c = await evaluateCausalMask(model, new GraphIndex(model.graph!), { dir: FIXTURES });
      assert.equal(c.causal, causal, c.detail);
      if (causal) assert.match(c.detail, /after \d+ context positions/);
    }
  });

  it('ONNX Attention(is_causal=1) and ORT GroupQueryAttention are causal by their semantics', () => {
    const mk = (n: NodeProto) => new GraphIndex(makeGraph({ nodes: [n], inputs: [makeValueInfo('q', DataType.FLOAT, ['N', 'T', 8])], outputs: [makeValueInfo('o', DataType.FLOAT, ['N', 'T', 8])] }));
    assert.match(fusedCausalAttention(mk(makeNode('Attention', ['q', 'q', 'q'], ['o'], [attr.int('is_causal', 1)])))!, /is_causal=1/);
    assert.equal(fusedCausalAttention(mk(makeNode('Attention', ['q', 'q', 'q'], ['o'], [attr.int('is_causal', 0)]))), undefined);
    const gqa = makeNode('GroupQueryAttention', ['q', 'q', 'q'], ['o']);
    gqa.domain = 'com.microsoft';
    assert.match(fusedCausalAttention(mk(gqa))!, /causal by definition/);
  });
});

describe('rule 3: residual adds with a projection shortcut', () => {
  it('stripped resnet_tiny: 6 blocks, the 2 downsampling blocks found through their 1×1 strided conv shortcut', async () => {
    const m = manifest.models.resnet_tiny!;
    const loaded = await loadModelFile(fixture(m.file));
    const { model, rename } = stripNames(loaded.model);
    const d = detectBlocks(model);
    assert.equal(d.blocks.length, 6);
    assert.match(d.explanation, /2 with a projection shortcut/);
    assert.deepEqual(d.blocks.map((b) => b.output), m.blocks.outputs.map(rename));
  });

  it("ONNX Runtime's fused SkipLayerNormalization is a residual add; its sum output is the stream", () => {
    // pre-LN MLP stack as ORT's transformer optimizer writes it: SkipLN(f_k, h_{k-1}) → [LN for the next block, , , h_k]
    const nodes: NodeProto[] = [makeNode('LayerNormalization', ['x', 'g', 'b'], ['n0'], [attr.int('axis', -1)])];
    const inits = [makeTensor('g', DataType.FLOAT, [4], new Float32Array(4).fill(1)), makeTensor('b', DataType.FLOAT, [4], new Float32Array(4))];
    let h = 'x';
    for (let i = 0; i < 3; i++) {
      inits.push(makeTensor(`w${i}`, DataType.FLOAT, [4, 4], new Float32Array(16).fill(0.1)), makeTensor(`v${i}`, DataType.FLOAT, [4, 4], new Float32Array(16).fill(0.2)));
      nodes.push(makeNode('MatMul', [`n${i}`, `w${i}`], [`a${i}`]), makeNode('Relu', [`a${i}`], [`r${i}`]), makeNode('MatMul', [`r${i}`, `v${i}`], [`f${i}`]));
      const sk = makeNode('SkipLayerNormalization', [`f${i}`, h, 'g', 'b'], [`n${i + 1}`, '', '', `h${i}`]);
      sk.domain = 'com.microsoft';
      nodes.push(sk);
      h = `h${i}`;
    }
    const model = makeModel({
      graph: makeGraph({ nodes, inputs: [makeValueInfo('x', DataType.FLOAT, ['N', 4])], outputs: [makeValueInfo('n3', DataType.FLOAT, ['N', 4])], initializers: inits }),
      opset: 13,
    });
    const d = detectBlocks(model);
    assert.equal(d.method, 'residual-adds');
    assert.deepEqual(d.blocks.map((b) => b.output), ['h0', 'h1', 'h2']);
    assert.equal(d.blockInput, 'x');
  });

  it('shortcuts made of pooling + 1×1 conv, or a Gemm, count too', () => {
    for (const shortcut of ['pool+conv', 'gemm'] as const) {
      const model = projectionChain(shortcut);
      const d = detectBlocks(model);
      assert.equal(d.method, 'residual-adds', shortcut);
      assert.deepEqual(d.blocks.map((b) => b.output), ['y0', 'y1', 'y2'], shortcut);
      assert.equal(d.blockInput, 'x', shortcut);
    }
  });
});

describe('rule 4: residual adds grouped into layers by the period of their signatures', () => {
  for (const name of ['preln_stripped', 'llama_tiny', 'vit_tiny', 'gpt_tiny']) {
    it(`${name}: --granularity sublayer gives attention and MLP sub-blocks, every second one a layer output`, async () => {
      const m = manifest.models[name]!;
      const loaded = await loadModelFile(fixture(m.file));
      const { model, rename } = stripNames(loaded.model);
      const layer = detectBlocks(model, { granularity: 'layer' });
      const sub = detectBlocks(model, { granularity: 'sublayer' });
      assert.equal(sub.granularity, 'sublayer');
      assert.equal(sub.blocks.length, 2 * layer.blocks.length);
      assert.deepEqual(sub.blocks.filter((_, i) => i % 2 === 1).map((b) => b.output), m.blocks.outputs.map(rename));
      assert.equal(sub.blockInput, rename(m.blocks.input));
      assert.ok(sub.blocks.filter((_, i) => i % 2 === 0).every((b) => /attention/.test(b.name)), sub.blocks.map((b) => b.name).join(', '));
      assert.match(layer.explanation, /period 2/);
      assert.ok(layer.rejected.some((r) => /sublayer/.test(r.route)));
    });
  }

  it('sublayer on a model with scoped names uses the residual sub-blocks (names kept when the scope shows)', async () => {
    const loaded = await loadModelFile(fixture(manifest.models.llama_tiny!.file));
    const d = detectBlocks(loaded.model, { granularity: 'sublayer' });
    assert.equal(d.method, 'residual-adds');
    assert.equal(d.blocks.length, 8);
    assert.match(d.blocks[0]!.name, /\/layers\.0/);
  });

  it('sublayer without residual adds is refused with the alternative', async () => {
    const loaded = await loadModelFile(fixture(manifest.models.plain_cnn!.file));
    assert.throws(() => detectBlocks(loaded.model, { granularity: 'sublayer' }), /--granularity layer/);
  });
});

describe('rule 5: repeated units without residuals', () => {
  it('plain_cnn: the depthwise-separable unit repeated 4 times, width change reported', async () => {
    const m = manifest.models.plain_cnn!;
    const loaded = await loadModelFile(fixture(m.file));
    const d = detectBlocks(loaded.model);
    assert.equal(d.method, 'repeated-units');
    assert.match(d.explanation, /Conv\/dw\/3x3, Relu, Conv\/1x1, Relu/);
    assert.ok(d.warnings.some((w) => /widths change at block 1 \(8 → 16\)/.test(w)), d.warnings.join('; '));
    assert.ok(d.rejected.some((r) => r.route === 'residual-adds'));
  });

  it('torchvision-VGG-style single-op scopes are not blocks; the unit (conv, relu, conv, relu, pool) is', () => {
    const nodes: NodeProto[] = [];
    const inits: ReturnType<typeof makeTensor>[] = [];
    let h = 'x';
    let c = 3;
    let k = 0;
    for (const width of [4, 8, 8]) {
      for (const op of ['Conv', 'Relu', 'Conv', 'Relu', 'MaxPool']) {
        const out = `t${k}`;
        if (op === 'Conv') {
          inits.push(makeTensor(`w${k}`, DataType.FLOAT, [width, c, 3, 3], new Float32Array(width * c * 9).fill(0.01)));
          nodes.push(makeNode('Conv', [h, `w${k}`], [out], [attr.ints('kernel_shape', [3, 3]), attr.ints('pads', [1, 1, 1, 1])], `/features/features.${k}/Conv`));
          c = width;
        } else if (op === 'Relu') nodes.push(makeNode('Relu', [h], [out], [], `/features/features.${k}/Relu`));
        else nodes.push(makeNode('MaxPool', [h], [out], [attr.ints('kernel_shape', [2, 2]), attr.ints('strides', [2, 2])], `/features/features.${k}/MaxPool`));
        h = out;
        k++;
      }
    }
    nodes.push(makeNode('GlobalAveragePool', [h], ['gap'], [], '/avgpool/GlobalAveragePool'));
    const model = makeModel({
      graph: makeGraph({ nodes, inputs: [makeValueInfo('x', DataType.FLOAT, ['N', 3, 16, 16])], outputs: [makeValueInfo('gap', DataType.FLOAT, ['N', 8, 1, 1])], initializers: inits }),
      opset: 13,
    });
    const d = detectBlocks(model);
    assert.equal(d.method, 'repeated-units');
    assert.deepEqual(d.blocks.map((b) => b.output), ['t4', 't9', 't14']);
    assert.equal(d.blockInput, 'x');
    assert.ok(d.warnings.some((w) => /block 1 \(4 → 8\)/.test(w)), d.warnings.join('; '));
  });
});

describe('rule 6: sequence-first layouts', () => {
  it('[T, N, d] block outputs are detected and pooled per sample, not over the batch', async () => {
    const model = seqFirstModel(['N', 'T', 4]);
    const index = new GraphIndex(model.graph!);
    const d = detectBlocks(model);
    assert.equal(d.blocks.length, 3);
    const targets: PoolTarget[] = d.blocks.map((b) => ({ key: String(b.index), tensor: b.output, rank: -1 }));
    const plan = await planRepresentations({ model, index, dir: FIXTURES, targets, lastKey: '2', requested: 'auto' });
    assert.equal(plan.layout, 'tnd');
    assert.equal(plan.pooling.used, 'mean');
    assert.ok(plan.pooling.evidence.some((e) => /sequence-first/.test(e)));
    // Pooled in the graph = mean over T of the [N, T, d] view, per sample.
    const inst = instrumentModel(model, targets, { pooling: 'mean', keepOutputs: true, layout: plan.layout });
    const session = await ort.InferenceSession.create(encodeModel(inst.model));
    const N = 3, T = 5;
    const x = Float32Array.from({ length: N * T * 4 }, (_, i) => Math.sin(i));
    const out = await session.run({ x: new ort.Tensor('float32', x, [N, T, 4]) });
    const pooled = out[`${POOLED_PREFIX}2`]!;
    assert.deepEqual(pooled.dims, [N, 4]);
    const y = out['y']!; // [N, T, 4] (transposed back by the model)
    for (let n = 0; n < N; n++) {
      for (let j = 0; j < 4; j++) {
        let s = 0;
        for (let t = 0; t < T; t++) s += (y.data as Float32Array)[(n * T + t) * 4 + j]!;
        assert.ok(Math.abs((pooled.data as Float32Array)[n * 4 + j]! - s / T) < 1e-5);
      }
    }
    await session.release();
  });

  it('when the batch axis cannot be told, analysis is refused with a message naming --layout', async () => {
    const model = seqFirstModel([4, 4, 4]);
    const index = new GraphIndex(model.graph!);
    const d = detectBlocks(model);
    const targets: PoolTarget[] = d.blocks.map((b) => ({ key: String(b.index), tensor: b.output, rank: -1 }));
    await assert.rejects(planRepresentations({ model, index, dir: FIXTURES, targets, lastKey: '2', requested: 'auto' }), /--layout/);
    const ok = await planRepresentations({ model, index, dir: FIXTURES, targets, lastKey: '2', requested: 'auto', layout: 'tnd' });
    assert.equal(ok.layout, 'tnd');
  });
});

describe('rule 6 for feature maps: channels-last blocks are pooled over H and W, not over W and C', () => {
  it('NHWC residual blocks (Transpose after each Conv, as tf2onnx writes) are transposed before gap', async () => {
    const model = nhwcModel();
    const index = new GraphIndex(model.graph!);
    const d = detectBlocks(model);
    assert.deepEqual(d.blocks.map((b) => b.output), ['o0', 'o1', 'o2']);
    const targets: PoolTarget[] = d.blocks.map((b) => ({ key: String(b.index), tensor: b.output, rank: -1 }));
    const plan = await planRepresentations({ model, index, dir: FIXTURES, targets, lastKey: '2', requested: 'auto' });
    assert.equal(plan.pooling.used, 'gap');
    assert.ok(plan.channelsLast?.('o2'));
    assert.ok(plan.pooling.evidence.some((e) => /channels-last/.test(e)));
    const inst = instrumentModel(model, targets, { pooling: 'gap', keepOutputs: false, channelsLast: plan.channelsLast });
    // Expose the raw block output too, to pool it by hand.
    inst.model.graph!.output.push(makeValueInfo('o2', DataType.FLOAT, ['N', 4, 4, 3]));
    const session = await ort.InferenceSession.create(encodeModel(inst.model));
    const x = Float32Array.from({ length: 2 * 3 * 4 * 4 }, (_, i) => Math.cos(i * 0.3));
    const out = await session.run({ x: new ort.Tensor('float32', x, [2, 3, 4, 4]) });
    const pooled = out[`${POOLED_PREFIX}2`]!;
    assert.deepEqual(pooled.dims, [2, 3]);
    const raw = out['o2']!.data as Float32Array; // [2, 4, 4, 3]
    for (let n = 0; n < 2; n++) {
      for (let c = 0; c < 3; c++) {
        let sum = 0;
        for (let p = 0; p < 16; p++) sum += raw[(n * 16 + p) * 3 + c]!;
        assert.ok(Math.abs((pooled.data as Float32Array)[n * 3 + c]! - sum / 16) < 1e-5);
      }
    }
    await session.release();
  });
});

describe('rule 7: the choices are explained', () => {
  it('detection lists the rejected routes and the block input reason; errors name --blocks', async () => {
    const loaded = await loadModelFile(fixture(manifest.models.preln_stripped!.file));
    const d = detectBlocks(loaded.model);
    assert.deepEqual(d.rejected.map((r) => r.route), ['scoped-names', 'residual-adds (sublayer)']);
    assert.match(d.blockInputReason, /adds its own output/);
    assert.throws(() => detectBlocks(loaded.model, { granularity: 'layers' as 'layer' }), BlockDetectionError);
  });

  it('analyze reports granularity, rejected routes, layout and pooling evidence (schema-valid)', async () => {
    const m = manifest.models.preln_stripped!;
    const report = await analyzeModel({ model: fixture(m.file), data: fixture(m.calibration.npy!), samples: 32 });
    assert.equal(report.detection.granularity, 'layer');
    assert.equal(report.detection.layout, 'ntd');
    assert.ok((report.detection.rejected ?? []).length >= 1);
    assert.ok((report.pooling.evidence ?? []).some((e) => /no mask/.test(e)));
  });
});

// ---------------------------------------------------------------------------------------------
// small graphs

/** x [N,8] → 3 blocks: y_k = relu(W2·relu(W1·h)) + P(h), P a pooling+1×1-conv-like or Gemm shortcut. */
function projectionChain(kind: 'pool+conv' | 'gemm'): ModelProto {
  const nodes: NodeProto[] = [];
  const inits: ReturnType<typeof makeTensor>[] = [];
  let h = 'x';
  const w = (name: string, r: number, c: number) => inits.push(makeTensor(name, DataType.FLOAT, [r, c], new Float32Array(r * c).fill(0.05)));
  if (kind === 'pool+conv') {
    // 4-D: [N, 2, 8, 8]; shortcut AveragePool(2) → Conv 1×1; branch Conv 3×3 stride 2 → Relu → Conv 3×3.
    for (let i = 0; i < 3; i++) {
      const cin = 2 << i, cout = 4 << i;
      inits.push(makeTensor(`a${i}`, DataType.FLOAT, [cout, cin, 3, 3], new Float32Array(cout * cin * 9).fill(0.02)));
      inits.push(makeTensor(`b${i}`, DataType.FLOAT, [cout, cout, 3, 3], new Float32Array(cout * cout * 9).fill(0.02)));
      inits.push(makeTensor(`p${i}`, DataType.FLOAT, [cout, cin, 1, 1], new Float32Array(cout * cin).fill(0.1)));
      nodes.push(makeNode('Conv', [h, `a${i}`], [`c${i}`], [attr.ints('pads', [1, 1, 1, 1]), attr.ints('strides', [2, 2])]));
      nodes.push(makeNode('Relu', [`c${i}`], [`r${i}`]));
      nodes.push(makeNode('Conv', [`r${i}`, `b${i}`], [`d${i}`], [attr.ints('pads', [1, 1, 1, 1])]));
      nodes.push(makeNode('AveragePool', [h], [`ap${i}`], [attr.ints('kernel_shape', [2, 2]), attr.ints('strides', [2, 2])]));
      nodes.push(makeNode('Conv', [`ap${i}`, `p${i}`], [`s${i}`]));
      nodes.push(makeNode('Add', [`d${i}`, `s${i}`], [`y${i}`]));
      h = `y${i}`;
    }
    return makeModel({
      graph: makeGraph({ nodes, inputs: [makeValueInfo('x', DataType.FLOAT, ['N', 2, 8, 8])], outputs: [makeValueInfo(h, DataType.FLOAT, ['N', 16, 1, 1])], initializers: inits }),
      opset: 13,
    });
  }
  for (let i = 0; i < 3; i++) {
    const din = 8 * (i + 1), dout = 8 * (i + 2);
    w(`a${i}`, din, dout);
    w(`b${i}`, dout, dout);
    w(`p${i}`, dout, din);
    nodes.push(makeNode('MatMul', [h, `a${i}`], [`c${i}`]));
    nodes.push(makeNode('Relu', [`c${i}`], [`r${i}`]));
    nodes.push(makeNode('MatMul', [`r${i}`, `b${i}`], [`d${i}`]));
    nodes.push(makeNode('Gemm', [h, `p${i}`], [`s${i}`], [attr.int('transB', 1)]));
    nodes.push(makeNode('Add', [`s${i}`, `d${i}`], [`y${i}`]));
    h = `y${i}`;
  }
  return makeModel({
    graph: makeGraph({ nodes, inputs: [makeValueInfo('x', DataType.FLOAT, ['N', 8])], outputs: [makeValueInfo(h, DataType.FLOAT, ['N', 32])], initializers: inits }),
    opset: 13,
  });
}

/** x [N,T,4] → Transpose → [T,N,4] → 3 residual blocks (h + relu(h·W)) → Transpose back → y. */
function seqFirstModel(xDims: (number | string)[]): ModelProto {
  const nodes: NodeProto[] = [makeNode('Transpose', ['x'], ['h'], [attr.ints('perm', [1, 0, 2])])];
  const inits: ReturnType<typeof makeTensor>[] = [];
  let h = 'h';
  for (let i = 0; i < 3; i++) {
    inits.push(makeTensor(`w${i}`, DataType.FLOAT, [4, 4], Float32Array.from({ length: 16 }, (_, k) => Math.cos(k + i))));
    nodes.push(makeNode('MatMul', [h, `w${i}`], [`m${i}`]));
    nodes.push(makeNode('Relu', [`m${i}`], [`r${i}`]));
    nodes.push(makeNode('Add', [h, `r${i}`], [`o${i}`]));
    h = `o${i}`;
  }
  nodes.push(makeNode('Transpose', [h], ['y'], [attr.ints('perm', [1, 0, 2])]));
  return makeModel({
    graph: makeGraph({ nodes, inputs: [makeValueInfo('x', DataType.FLOAT, xDims)], outputs: [makeValueInfo('y', DataType.FLOAT, xDims)], initializers: inits }),
    opset: 13,
  });
}


/**
 * ids [N,T] → x = E[ids] [N,T,4]; keys = Concat(past [N,P,4], x·Wk); scores = (x·Wq)·keysᵀ [N,T,P+T]
 * plus a mask built at run time from Range and `op`: key j vs query i + P.
 */
function contextMaskModel(op: 'LessOrEqual' | 'GreaterOrEqual'): ModelProto {
  const f = (name: string, dims: number[]) => makeTensor(name, DataType.FLOAT, dims, Float32Array.from({ length: dims.reduce((a, b) => a * b, 1) }, (_, k) => Math.sin(k + 1)));
  const i64 = (name: string, v: number[], dims = [v.length]) => makeTensor(name, DataType.INT64, dims, BigInt64Array.from(v.map(BigInt)));
  const nodes: NodeProto[] = [
    makeNode('Gather', ['E', 'ids'], ['x']),
    makeNode('MatMul', ['x', 'Wq'], ['q']),
    makeNode('MatMul', ['x', 'Wk'], ['kn']),
    makeNode('Concat', ['past', 'kn'], ['k'], [attr.int('axis', 1)]),
    makeNode('Transpose', ['k'], ['kt'], [attr.ints('perm', [0, 2, 1])]),
    makeNode('MatMul', ['q', 'kt'], ['scores']),
    makeNode('Shape', ['ids'], ['sid']),
    makeNode('Gather', ['sid', 'one'], ['T'], [attr.int('axis', 0)]),
    makeNode('Shape', ['past'], ['sp']),
    makeNode('Gather', ['sp', 'one'], ['P'], [attr.int('axis', 0)]),
    makeNode('Add', ['P', 'T'], ['PT']),
    makeNode('Range', ['zero', 'T', 'one'], ['qi']),
    makeNode('Add', ['qi', 'P'], ['qpos']),
    makeNode('Range', ['zero', 'PT', 'one'], ['kpos']),
    makeNode('Unsqueeze', ['qpos', 'ax1'], ['qcol']),
    makeNode('Unsqueeze', ['kpos', 'ax0'], ['krow']),
    makeNode(op, ['krow', 'qcol'], ['keep']),
    makeNode('Where', ['keep', 'zf', 'neg'], ['mask']),
    makeNode('Add', ['scores', 'mask'], ['biased']),
    makeNode('Softmax', ['biased'], ['probs'], [attr.int('axis', -1)]),
  ];
  return makeModel({
    graph: makeGraph({
      nodes,
      inputs: [makeValueInfo('ids', DataType.INT64, ['N', 'T']), makeValueInfo('past', DataType.FLOAT, ['N', 'P', 4])],
      outputs: [makeValueInfo('probs', DataType.FLOAT, ['N', 'T', 'PT'])],
      initializers: [f('E', [8, 4]), f('Wq', [4, 4]), f('Wk', [4, 4]), i64('one', [1], []), i64('zero', [0], []), i64('ax0', [0]), i64('ax1', [1]),
        makeTensor('zf', DataType.FLOAT, [], new Float32Array([0])), makeTensor('neg', DataType.FLOAT, [], new Float32Array([-1e4]))],
    }),
    opset: 13,
  });
}

