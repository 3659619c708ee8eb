// Newer opsets than torch 1.13 can export: models built in code, analysed end to end.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, describe, it } from 'node:test';
import { analyzeModel } from '../../src/engine/analysis/analyze';
import { saveModelFile } from '../../src/engine/onnx/model-file';
import { buildVit } from '../helpers/vit-builder';

const dir = mkdtempSync(path.join(tmpdir(), 'blocklens-opsets-'));
after(() => rmSync(dir, { recursive: true, force: true }));

describe('ViT-style models at newer opsets', () => {
  for (const opset of [17, 18, 21, 23]) {
    it(`opset ${opset}: blocks found, pooling from the graph, metrics computed`, async () => {
      const file = path.join(dir, `vit_op${opset}.onnx`);
      await saveModelFile(file, buildVit({ image: 32, patch: 8, width: 32, heads: 2, layers: 3, mlp: 64, classes: 10, opset }));
      for (const pooling of ['auto', 'mean', 'last', 'tokens'] as const) {
        const report = await analyzeModel({ model: file, samples: 16, batch: 8, pooling });
        assert.equal(report.model.opsetVersion, opset);
        assert.deepEqual(report.blocks.map((b) => b.name), ['/blocks.0', '/blocks.1', '/blocks.2']);
        assert.equal(report.pooling.used, pooling === 'auto' ? 'cls' : pooling);
        for (let i = 0; i < 3; i++) assert.equal(report.metrics.cka[i]![i], 1);
        assert.ok(report.metrics.br.every((b) => typeof b === 'number' && b < 0));
      }
    });
  }
});
