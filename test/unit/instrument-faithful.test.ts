// Instrumenting keeps what it does not touch: model-local functions (field 25), training info
// (field 20) and unknown fields survive, so a model whose blocks call local functions analyses.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, describe, it } from 'node:test';
import { exposeTensors, instrumentModel } from '../../src/engine/blocks/instrument';
import { analyzeModel } from '../../src/engine/jobs/analyze';
import { appendGrams } from '../../src/engine/model/cross-products';
import { decodeModel, encodeModel } from '../../src/engine/onnx/codec';
import { saveModelFile } from '../../src/engine/onnx/model-file';
import type { ModelProto } from '../../src/engine/onnx/types';
import { extraModelFields, localFunctionModels } from '../helpers/local-function';

const dir = mkdtempSync(path.join(tmpdir(), 'blocklens-faithful-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const unknownBytes = (m: ModelProto) => Buffer.concat((m.$wire?.unknown ?? []).map((u) => Buffer.from(u.bytes))).toString('hex');

describe('faithful instrumentation', () => {
  const { withFunction, inlined } = localFunctionModels();

  it('the fixture carries a local function, training info and an unknown field', () => {
    assert.deepEqual(withFunction.$wire?.unknown.map((u) => u.no), [25, 20, 1000]);
    assert.equal(unknownBytes(withFunction), Buffer.from(extraModelFields()).toString('hex'));
  });

  it('instrumented, exposed and gram-extended copies keep fields 25, 20 and 1000 byte for byte', () => {
    const targets = [0, 1, 2, 3].map((i) => ({ key: String(i), tensor: i === 3 ? 'y' : `/blocks.${i}/h`, rank: 2 }));
    const inst = instrumentModel(withFunction, targets, { pooling: 'mean', keepOutputs: true }).model;
    appendGrams(inst, [{ id: 'g', parts: [{ tensor: 'blocklens::pooled::0', rank: 2 }], mode: 'rows', ones: true }]);
    for (const copy of [inst, exposeTensors(withFunction, ['/blocks.0/h'])]) {
      const again = decodeModel(encodeModel(copy));
      assert.equal(unknownBytes(again), unknownBytes(withFunction));
    }
    // The user's model object is untouched.
    assert.equal(withFunction.graph!.output.length, 1);
  });

  it('a model whose blocks call a local function analyses to the numbers of its inlined twin', async () => {
    const a = path.join(dir, 'local_function.onnx');
    const b = path.join(dir, 'inlined.onnx');
    await saveModelFile(a, withFunction);
    await saveModelFile(b, inlined);
    const blocks = ['/blocks.0/h', '/blocks.1/h', '/blocks.2/h', 'y'];
    const ra = await analyzeModel({ model: a, samples: 64, blocks, blockInput: 'x' });
    const rb = await analyzeModel({ model: b, samples: 64, blocks, blockInput: 'x' });
    assert.equal(ra.blocks.length, 4);
    ra.metrics.cka.forEach((row, i) => row.forEach((v, j) => assert.ok(Math.abs((v as number) - (rb.metrics.cka[i]![j] as number)) < 1e-9, `cka[${i}][${j}]`)));
    ra.metrics.br.forEach((v, i) => assert.ok(Math.abs((v as number) - (rb.metrics.br[i] as number)) < 1e-9 * Math.abs(rb.metrics.br[i] as number), `br[${i}]`));
  });
});
