// In-graph float64 cross-products (model/cross-products.ts) equal the same products formed in JS
// from the raw tensors: pooled rows, and all token rows with the attention mask (RBA's use).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as ort from 'onnxruntime-node';
import { detectBlocks } from '../../src/engine/blocks/detect';
import { openCalibration } from '../../src/engine/calibration/index';
import { appendGrams, GRAM_PREFIX } from '../../src/engine/model/cross-products';
import { modelInputs } from '../../src/engine/model/introspect';
import { loadModelFile } from '../../src/engine/onnx/model-file';
import { makeValueInfo } from '../../src/engine/onnx/builder';
import { DataType } from '../../src/engine/onnx/types';
import { openModelSession } from '../../src/engine/runtime/session';
import { toOrtFeeds } from '../../src/engine/runtime/feeds';
import { fixture, manifest } from '../helpers/fixtures';

describe('in-graph block Gram', () => {
  for (const name of ['bert_tiny', 'resnet_tiny'] as const) {
    it(`${name}: token rows (mask-weighted) of two blocks plus a ones column`, async () => {
      const m = manifest.models[name]!;
      const loaded = await loadModelFile(fixture(m.file));
      const det = detectBlocks(loaded.model);
      const tensors = [det.blocks[0]!.output, det.blocks[1]!.output];
      const src = await openCalibration({ inputs: modelInputs(loaded.model), data: fixture(m.calibration.npz ?? m.calibration.npy!), samples: 6 });
      let batch;
      for await (const b of src.batches(6)) batch = b;
      await src.close();
      const rank = name === 'bert_tiny' ? 3 : 4;
      const model = { ...loaded.model, graph: { ...loaded.model.graph!, output: tensors.map((t) => { const v = makeValueInfo(t, DataType.UNDEFINED); delete v.type; return v; }) } };
      const mask = name === 'bert_tiny' ? 'attention_mask' : undefined;
      appendGrams(model, [{ id: 'g', parts: tensors.map((tensor) => ({ tensor, rank })), mode: 'tokens', mask, ones: true }]);
      const s = await openModelSession(model, loaded.dir);
      const out = await s.session.run(toOrtFeeds(batch!));
      await s.dispose();
      // JS: rows of [N,T,d] (or NCHW → N·H·W rows of C), times the mask, side by side, then ZᵀZ.
      const rowsOf = (t: ort.Tensor): number[][] => {
        const d = t.dims as number[];
        const x = t.data as Float32Array;
        const rows: number[][] = [];
        if (d.length === 3) for (let i = 0; i < d[0]! * d[1]!; i++) rows.push(Array.from(x.subarray(i * d[2]!, (i + 1) * d[2]!)));
        else for (let n = 0; n < d[0]!; n++) for (let p = 0; p < d[2]! * d[3]!; p++) rows.push(Array.from({ length: d[1]! }, (_, c) => x[(n * d[1]! + c) * d[2]! * d[3]! + p]!));
        return rows;
      };
      const a = rowsOf(out[tensors[0]!]!);
      const b = rowsOf(out[tensors[1]!]!);
      const w = mask ? Array.from(batch!.feeds[mask]!.data as BigInt64Array, Number) : a.map(() => 1);
      const z = a.map((r, i) => [...r, ...b[i]!, 1].map((v) => v * w[i]!));
      const D = z[0]!.length;
      const g = out[`${GRAM_PREFIX}g`]!;
      assert.deepEqual(g.dims, [D, D]);
      assert.equal(g.type, 'float64');
      const gd = g.data as Float64Array;
      for (let i = 0; i < D; i++) {
        for (let j = 0; j < D; j++) {
          let sum = 0;
          for (const r of z) sum += r[i]! * r[j]!;
          assert.ok(Math.abs(gd[i * D + j]! - sum) <= 1e-9 * (1 + Math.abs(sum)), `[${i}][${j}] ${gd[i * D + j]} vs ${sum}`);
        }
      }
      // The corner counts the rows that are not padding.
      assert.equal(gd[D * D - 1], w.reduce((x, y) => x + y, 0));
    });
  }
});
