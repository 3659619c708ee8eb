// Newer opsets than torch 1.13 can export: models built in code, analysed end to end.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, describe, it } from 'node:test';
import { analyzeModel } from '../../src/engine/analysis/analyze';
import { saveModelFile } from '../../src/engine/onnx/model-file';
import { buildVit } from '../helpers/vit-builder';
import type { AnalysisReport } from '../../src/engine/report/schema';

const dir = mkdtempSync(path.join(tmpdir(), 'blocklens-opsets-'));
after(() => rmSync(dir, { recursive: true, force: true }));

describe('ViT-style models at newer opsets', () => {
  // The same seeded weights at every opset (buildVit seed 1): the numbers must agree across opsets,
  // up to float32 differences between operator implementations.
  const reports = new Map<string, AnalysisReport>();
  const close = (a: number | null, b: number | null, what: string) => {
    assert.ok(a !== null && b !== null && Number.isFinite(a) && Number.isFinite(b), `${what}: ${a} vs ${b}`);
    assert.ok(Math.abs(a - b) <= 1e-4 * Math.max(1, Math.abs(b)), `${what}: ${a} vs ${b}`);
  };
  for (const opset of [17, 18, 21, 23]) {
    it(`opset ${opset}: blocks found, pooling from the graph, metrics equal to opset 17's`, async () => {
      const file = path.join(dir, `vit_op${opset}.onnx`);
      await saveModelFile(file, buildVit({ image: 32, patch: 8, width: 32, heads: 2, layers: 3, mlp: 64, classes: 10, opset }));
      for (const pooling of ['auto', 'mean', 'last', 'tokens'] as const) {
        const report = await analyzeModel({ model: file, samples: 16, batch: 8, pooling });
        assert.equal(report.model.opsetVersion, opset);
        assert.deepEqual(report.blocks.map((b) => b.name), ['/blocks.0', '/blocks.1', '/blocks.2']);
        assert.equal(report.pooling.used, pooling === 'auto' ? 'cls' : pooling);
        reports.set(`${opset}/${pooling}`, report);
        const ref = reports.get(`17/${pooling}`)!;
        for (let i = 0; i < 3; i++) {
          close(report.metrics.br[i]!, ref.metrics.br[i]!, `opset ${opset} ${pooling} br[${i}]`);
          for (let j = 0; j < 3; j++) if (i !== j) close(report.metrics.cka[i]![j]!, ref.metrics.cka[i]![j]!, `opset ${opset} ${pooling} cka[${i}][${j}]`);
        }
      }
      // Pooling changes the numbers (the comparison above is not between constants).
      const cls = reports.get(`${opset}/auto`)!.metrics.br;
      const mean = reports.get(`${opset}/mean`)!.metrics.br;
      assert.ok(cls.some((b, i) => Math.abs(b! - mean[i]!) > 1e-3), `cls ${cls} vs mean ${mean}`);
    });
  }
});
