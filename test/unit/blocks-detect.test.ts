import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { detectBlocks, BlockDetectionError, nodeScope } from '../../src/engine/blocks/detect';
import { loadModelFile } from '../../src/engine/onnx/model-file';
import { makeGraph, makeModel, makeNode, makeTensor, makeValueInfo } from '../../src/engine/onnx/builder';
import { DataType, type ModelProto } from '../../src/engine/onnx/types';
import { fixture, manifest } from '../helpers/fixtures';

describe('block detection on every fixture model', () => {
  for (const [name, m] of Object.entries(manifest.models)) {
    it(`${name}: route, count, outputs and block input match the manifest`, async () => {
      const loaded = await loadModelFile(fixture(m.file));
      const d = detectBlocks(loaded.model);
      assert.equal(d.method, m.blocks.route);
      assert.equal(d.blocks.length, m.blocks.count);
      assert.deepEqual(d.blocks.map((b) => b.output), m.blocks.outputs);
      assert.equal(d.blockInput, m.blocks.input);
      if (m.blocks.scopes.length) assert.deepEqual(d.blocks.map((b) => b.name), m.blocks.scopes);
      assert.ok(d.explanation.length > 10);
      for (const b of d.blocks) assert.ok(b.parameters > 0, `block ${b.index} owns parameters`);
    });
  }
});

describe('block detection: overrides and errors', () => {
  it('user-named blocks win and a residual output gives block 0 its input', async () => {
    const m = manifest.models.noscope_mlp_resnet!;
    const loaded = await loadModelFile(fixture(m.file));
    const d = detectBlocks(loaded.model, { blocks: m.blocks.outputs.slice(1) });
    assert.equal(d.method, 'user');
    assert.deepEqual(d.blocks.map((b) => b.output), m.blocks.outputs.slice(1));
    assert.equal(d.blockInput, m.blocks.outputs[0]);
  });

  it('user --block-input overrides detection', async () => {
    const m = manifest.models.vit_tiny!;
    const loaded = await loadModelFile(fixture(m.file));
    const d = detectBlocks(loaded.model, { blockInput: 'pixel_values' });
    assert.equal(d.blockInput, 'pixel_values');
    assert.throws(() => detectBlocks(loaded.model, { blockInput: 'nope' }), /no tensor named 'nope'/);
  });

  it('unknown user tensors are named in the error', async () => {
    const loaded = await loadModelFile(fixture(manifest.models.vit_tiny!.file));
    assert.throws(() => detectBlocks(loaded.model, { blocks: ['missing_tensor'] }), (e: Error) => e instanceof BlockDetectionError && /missing_tensor/.test(e.message));
  });

  it('a graph with no repeated structure asks the user to name block outputs', () => {
    const model = chainModel(['Relu', 'Sigmoid', 'Tanh'], (i) => `op_${i}`);
    assert.throws(() => detectBlocks(model), /--blocks/);
  });

  it('shared masks and constants fed to every block do not become the block input', () => {
    // x → [blocks.i: Mul(h, mask) + h] ×3, mask computed once outside the blocks.
    const nodes = [makeNode('Sigmoid', ['m_in'], ['mask'], [], '/mask/Sigmoid')];
    let h = 'x';
    for (let i = 0; i < 3; i++) {
      nodes.push(makeNode('Mul', [h, 'mask'], [`b${i}_mul`], [], `/blocks.${i}/Mul`));
      nodes.push(makeNode('Relu', [`b${i}_mul`], [`b${i}_relu`], [], `/blocks.${i}/Relu`));
      nodes.push(makeNode('Add', [h, `b${i}_relu`], [`b${i}_out`], [], `/blocks.${i}/Add`));
      h = `b${i}_out`;
    }
    const model = makeModel({
      graph: makeGraph({
        nodes,
        inputs: [makeValueInfo('m_in', DataType.FLOAT, ['N', 8]), makeValueInfo('x', DataType.FLOAT, ['N', 8])],
        outputs: [makeValueInfo(h, DataType.FLOAT, ['N', 8])],
      }),
      opset: 13,
    });
    const d = detectBlocks(model);
    assert.equal(d.method, 'scoped-names');
    assert.equal(d.blockInput, 'x');
    assert.deepEqual(d.blocks.map((b) => b.output), ['b0_out', 'b1_out', 'b2_out']);
  });

  it('Keras-style names (`block`, `block_1`, …) count the unsuffixed scope as block 0', () => {
    const nodes = [];
    let h = 'x';
    for (const scope of ['transformer_block', 'transformer_block_1', 'transformer_block_2']) {
      const base = `StatefulPartitionedCall/model/${scope}`;
      nodes.push(makeNode('Relu', [h], [`${scope}_r`], [], `${base}/dense/Relu`));
      nodes.push(makeNode('Add', [h, `${scope}_r`], [`${scope}_out`], [], `${base}/add/Add`));
      h = `${scope}_out`;
    }
    const model = makeModel({
      graph: makeGraph({ nodes, inputs: [makeValueInfo('x', DataType.FLOAT, ['N', 8])], outputs: [makeValueInfo(h, DataType.FLOAT, ['N', 8])] }),
      opset: 13,
    });
    const d = detectBlocks(model);
    assert.equal(d.method, 'scoped-names');
    assert.deepEqual(d.blocks.map((b) => b.output), ['transformer_block_out', 'transformer_block_1_out', 'transformer_block_2_out']);
    assert.equal(d.blockInput, 'x');
  });

  it('scopes come from node names or torch name_scopes metadata', () => {
    const a = makeNode('MatMul', ['a', 'b'], ['c'], [], '/encoder/layer.3/attention/MatMul_1');
    assert.deepEqual(nodeScope(a), ['encoder', 'layer', '3', 'attention']);
    const b = makeNode('MatMul', ['a', 'b'], ['c'], [], 'node_MatMul_7');
    b.metadataProps.push({ key: 'pkg.torch.onnx.name_scopes', value: "['', 'model', 'model.layers.2', 'model.layers.2.mlp']" });
    assert.deepEqual(nodeScope(b), ['model', 'layers', '2', 'mlp']);
  });

  it('dangling node inputs are reported with node and tensor', () => {
    const model = chainModel(['Relu'], () => '/blocks.0/Relu');
    model.graph!.node[0]!.input[0] = 'ghost';
    assert.throws(() => detectBlocks(model), /reads tensor 'ghost'/);
  });
});

function chainModel(ops: string[], name: (i: number) => string): ModelProto {
  const nodes = ops.map((op, i) => makeNode(op, [i === 0 ? 'x' : `t${i - 1}`], [`t${i}`], [], name(i)));
  return makeModel({
    graph: makeGraph({
      nodes,
      inputs: [makeValueInfo('x', DataType.FLOAT, ['N', 4])],
      outputs: [makeValueInfo(`t${ops.length - 1}`, DataType.FLOAT, ['N', 4])],
      initializers: [makeTensor('unused', DataType.FLOAT, [1], new Float32Array([1]))],
    }),
    opset: 13,
  });
}
