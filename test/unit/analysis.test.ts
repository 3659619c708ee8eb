import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as ort from 'onnxruntime-node';
import { analyzeModel } from '../../src/engine/analysis/analyze';
import { openModelSession } from '../../src/engine/analysis/session';
import { detectBlocks } from '../../src/engine/blocks/detect';
import { GraphIndex } from '../../src/engine/blocks/graph-index';
import { exposeTensors, instrumentModel, POOLED_PREFIX, type PoolTarget } from '../../src/engine/blocks/instrument';
import { openCalibration } from '../../src/engine/calibration/index';
import { modelInputs } from '../../src/engine/analysis/analyze';
import { loadModelFile } from '../../src/engine/onnx/model-file';
import type { Pooling } from '../../src/engine/report/schema';
import { validateReport } from '../../src/engine/report/validate';
import { fixture, manifest } from '../helpers/fixtures';

const close = (a: number, b: number, rel: number, what: string) =>
  assert.ok(Math.abs(a - b) <= rel * Math.max(1e-6, Math.abs(b)), `${what}: ${a} vs ${b}`);

describe('analysis matches an independent float64 computation (PyTorch activations, generate.py)', () => {
  for (const name of Object.keys(manifest.models)) {
    const m = manifest.models[name]!;
    const ref = m.reference_stats!;
    it(`${name}: BR and linear CKA within 1e-4`, async () => {
      const data = m.calibration.npy ?? m.calibration.npz!;
      const pooling = (['cls', 'mean', 'last', 'gap'].includes(ref.pooling) ? ref.pooling : 'auto') as Pooling;
      const report = await analyzeModel({ model: fixture(m.file), data: fixture(`${data}`), samples: ref.n_samples, pooling });
      validateReport(JSON.parse(JSON.stringify(report)));
      assert.equal(report.calibration.samples, ref.n_samples);
      ref.br.forEach((b, i) => {
        if (b === null) assert.equal(report.metrics.br[i], null, `br[${i}] undefined across a width change`);
        else close(report.metrics.br[i]!, b, 1e-4, `br[${i}]`);
      });
      ref.cka_linear_biased.forEach((row, i) => row.forEach((v, j) => close(report.metrics.cka[i]![j]!, v, 1e-4, `cka[${i}][${j}]`)));
    });
  }
});

describe('identities on real runs', () => {
  it('an identity block has BR 0, BI 0, relative MSE 0 and CKA 1 with its input', async () => {
    const m = manifest.models.linear_blocks!;
    const k = m.identity_block!;
    const report = await analyzeModel({ model: fixture(m.file), data: fixture(m.calibration.npy!) });
    assert.equal(report.metrics.br[k], 0);
    assert.equal(report.metrics.relativeMse![k], 0);
    assert.ok(Math.abs(report.metrics.blockInfluence![k]!) < 1e-12);
    assert.ok(Math.abs(report.metrics.cka[k - 1]![k]! - 1) < 1e-12);
    assert.ok(Math.abs(report.metrics.ckaUnbiased[k - 1]![k]! - 1) < 1e-12);
  });

  it('the same seed gives the same report numbers; a different seed changes synthetic data', async () => {
    const model = fixture(manifest.models.vit_tiny!.file);
    const a = await analyzeModel({ model, samples: 64, seed: 1 });
    const b = await analyzeModel({ model, samples: 64, seed: 1 });
    const c = await analyzeModel({ model, samples: 64, seed: 2 });
    assert.deepEqual(a.metrics, b.metrics);
    assert.equal(a.calibration.checksum, b.calibration.checksum);
    assert.notEqual(a.calibration.checksum, c.calibration.checksum);
    assert.equal(a.calibration.source, 'synthetic');
    assert.ok(a.warnings.some((w) => /synthetic/.test(w) && /structure/.test(w)));
  });

  it('cancellation after the forward loop (while metrics are computed) ends in an AbortError, not a report', async () => {
    const ac = new AbortController();
    const phases: string[] = [];
    await assert.rejects(
      analyzeModel({
        model: fixture(manifest.models.vit_tiny!.file),
        samples: 64,
        signal: ac.signal,
        onProgress: (p) => {
          phases.push(p.phase);
          if (p.phase === 'metrics') ac.abort();
        },
      }),
      (e: Error) => e.name === 'AbortError',
    );
    assert.ok(phases.includes('forward') && phases.includes('metrics'), `phases ${phases}`);
    assert.ok(!phases.includes('done'), 'no report was finished');
  });

  it('cancellation stops the run with an AbortError', async () => {
    const ac = new AbortController();
    ac.abort();
    await assert.rejects(analyzeModel({ model: fixture(manifest.models.vit_tiny!.file), signal: ac.signal }), (e: Error) => e.name === 'AbortError');
  });
});

describe('pooling inside the graph equals pooling the raw tensors', () => {
  const cases: { model: string; data: string; pooling: Pooling; leftPad?: boolean }[] = [
    { model: 'vit_tiny', data: 'data/digits_x.npy', pooling: 'cls' },
    { model: 'vit_tiny_op18', data: 'data/digits_x.npy', pooling: 'mean' },
    { model: 'gpt_tiny', data: 'data/gpt_tokens.npz', pooling: 'last' },
    { model: 'resnet_tiny', data: 'data/digits_x.npy', pooling: 'gap' },
    { model: 'resnet_tiny', data: 'data/digits_x.npy', pooling: 'tokens' },
    { model: 'bert_tiny', data: 'data/bert_tokens.npz', pooling: 'mean' },
    { model: 'bert_tiny', data: 'data/bert_tokens.npz', pooling: 'last' },
    { model: 'bert_tiny', data: 'data/bert_tokens.npz', pooling: 'last', leftPad: true },
    { model: 'bert_tiny', data: 'data/bert_tokens.npz', pooling: 'mean', leftPad: true },
    { model: 'bert_tiny', data: 'data/bert_tokens.npz', pooling: 'tokens' },
  ];
  for (const c of cases) {
    it(`${c.model} ${c.pooling}${c.leftPad ? ' (left padding)' : ''} (opset ${manifest.models[c.model]!.opset})`, async () => {
      const loaded = await loadModelFile(fixture(manifest.models[c.model]!.file));
      const det = detectBlocks(loaded.model);
      const index = new GraphIndex(loaded.model.graph!);
      const inputs = modelInputs(loaded.model);
      const src = await openCalibration({ inputs, data: fixture(c.data), samples: 16 });
      let batch;
      for await (const b of src.batches(16)) batch = b;
      await src.close();
      const feeds: Record<string, ort.Tensor> = {};
      for (const [k, t] of Object.entries(batch!.feeds)) feeds[k] = new ort.Tensor(t.dtype as ort.Tensor.Type, t.data as ort.Tensor.DataType, t.dims);
      const mask = inputs.find((i) => /mask/.test(i.name))?.name;
      if (c.leftPad) leftPad(feeds, 'input_ids', 'attention_mask');
      // Raw block tensors, no optimisation.
      const raw = await openModelSession(exposeTensors(loaded.model, det.blocks.map((b) => b.output)), loaded.dir, { optimization: 'disabled' });
      const rawOut = await raw.session.run(feeds);
      await raw.dispose();
      const targets: PoolTarget[] = det.blocks.map((b) => ({ key: String(b.index), tensor: b.output, rank: rawOut[b.output]!.dims.length }));
      const inst = instrumentModel(loaded.model, targets, { pooling: c.pooling, maskInput: mask, keepOutputs: false });
      const pooled = await openModelSession(inst.model, loaded.dir, { optimization: 'all' });
      const out = await pooled.session.run(feeds);
      await pooled.dispose();
      const maskData = mask ? Array.from(feeds[mask]!.data as BigInt64Array, Number) : undefined;
      for (const b of det.blocks) {
        const t = rawOut[b.output]!;
        const expected = jsPool(t.data as Float32Array, t.dims as number[], c.pooling, maskData);
        const got = out[`${POOLED_PREFIX}${b.index}`]!;
        assert.equal(got.data.length, expected.length, `block ${b.index} size`);
        const g = got.data as Float32Array;
        for (let i = 0; i < expected.length; i++) assert.ok(Math.abs(g[i]! - expected[i]!) <= 1e-4 * (1 + Math.abs(expected[i]!)), `block ${b.index}[${i}]: ${g[i]} vs ${expected[i]}`);
      }
      void index;
    });
  }
});

/** Moves each row's padding (mask 0) from the right to the left, as causal LMs batch. */
function leftPad(feeds: Record<string, ort.Tensor>, ids: string, mask: string): void {
  const [n, t] = feeds[mask]!.dims as [number, number];
  const m = feeds[mask]!.data as BigInt64Array;
  const x = feeds[ids]!.data as BigInt64Array;
  let shifted = 0;
  for (let s = 0; s < n; s++) {
    const row = (a: BigInt64Array) => a.subarray(s * t, (s + 1) * t);
    const len = row(m).reduce((acc, v) => acc + Number(v), 0);
    if (len === t) continue;
    shifted++;
    for (const a of [row(m), row(x)]) {
      const real = a.slice(0, len);
      a.fill(0n);
      a.set(real, t - len);
    }
  }
  assert.ok(shifted > 0, 'the fixture batch has padded rows to move');
}

/** Plain-JS reference pooling of a raw block tensor. */
function jsPool(x: Float32Array, dims: number[], pooling: Pooling, mask?: number[]): number[] {
  const out: number[] = [];
  if (dims.length === 4) {
    const [n, c, h, w] = dims as [number, number, number, number];
    if (pooling === 'tokens') {
      for (let s = 0; s < n; s++) for (let p = 0; p < h * w; p++) for (let k = 0; k < c; k++) out.push(x[(s * c + k) * h * w + p]!);
      return out;
    }
    for (let s = 0; s < n; s++) for (let k = 0; k < c; k++) {
      let sum = 0;
      for (let p = 0; p < h * w; p++) sum += x[(s * c + k) * h * w + p]!;
      out.push(sum / (h * w));
    }
    return out;
  }
  const [n, t, d] = dims as [number, number, number];
  const at = (s: number, i: number, k: number) => x[(s * t + i) * d + k]!;
  for (let s = 0; s < n; s++) {
    const valid = Array.from({ length: t }, (_, i) => (mask ? mask[s * t + i]! !== 0 : true));
    const len = valid.filter(Boolean).length;
    if (pooling === 'tokens') {
      for (let i = 0; i < t; i++) for (let k = 0; k < d; k++) out.push(at(s, i, k));
      continue;
    }
    for (let k = 0; k < d; k++) {
      if (pooling === 'cls') out.push(at(s, 0, k));
      else if (pooling === 'last') out.push(at(s, valid.lastIndexOf(true), k));
      else {
        let sum = 0;
        for (let i = 0; i < t; i++) if (valid[i]) sum += at(s, i, k);
        out.push(sum / len);
      }
    }
  }
  return out;
}
