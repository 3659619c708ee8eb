// Every model in test/fixtures/models must decode and re-encode to identical bytes; external
// data must be readable by offset; the broken corpus must fail with the expected messages.

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';

import * as ort from 'onnxruntime-node';

import { decodeModel, encodeModel } from '../../src/engine/onnx/codec';
import {
  allTensors,
  checkExternalData,
  externalDataRef,
  loadModelFile,
  readTensorBytes,
  tensorToFloat64,
} from '../../src/engine/onnx/model-file';

const FIXTURES = path.resolve(import.meta.dirname, '../fixtures');
const MODELS = path.join(FIXTURES, 'models');

function onnxFiles(dir: string): string[] {
  return readdirSync(dir)
    .sort()
    .flatMap((name) => {
      const p = path.join(dir, name);
      if (statSync(p).isDirectory()) return onnxFiles(p);
      return name.endsWith('.onnx') ? [p] : [];
    });
}

interface Manifest {
  models?: Record<string, { file: string; sha256?: string; same_weights_as?: string }>;
}

const manifest: Manifest = JSON.parse(readFileSync(path.join(FIXTURES, 'manifest.json'), 'utf8'));
const files = onnxFiles(MODELS);

describe('fixtures: byte-exact round trip', () => {
  it('finds fixture models', () => {
    assert.ok(files.length > 0, `no .onnx files under ${MODELS}`);
    assert.ok(
      files.some((f) => f.endsWith(path.join('vit_external', 'vit_external.onnx'))),
      'vit_external/vit_external.onnx is among the fixtures',
    );
  });

  for (const file of files) {
    const rel = path.relative(MODELS, file);
    it(`${rel}: decode → encode gives identical bytes`, async () => {
      const loaded = await loadModelFile(file);
      const again = encodeModel(loaded.model);
      assert.equal(again.length, loaded.bytes.length);
      assert.equal(Buffer.compare(Buffer.from(again), Buffer.from(loaded.bytes)), 0, `${rel} re-encodes differently`);
      assert.equal(loaded.sha256, createHash('sha256').update(readFileSync(file)).digest('hex'));
      assert.ok((loaded.model.graph?.node.length ?? 0) > 0);
      // External data (if any) is complete.
      await checkExternalData(loaded);
    });
  }
});

describe('fixtures: manifest', () => {
  it('lists the sha256 of each fixture model as loaded', async () => {
    for (const m of Object.values(manifest.models ?? {})) {
      if (m.sha256 === undefined) continue;
      const loaded = await loadModelFile(path.resolve(FIXTURES, m.file));
      assert.equal(loaded.sha256, m.sha256, `${m.file}: sha256 differs from manifest.json`);
    }
  });
});

describe('fixtures: external data', () => {
  const file = path.join(MODELS, 'vit_external', 'vit_external.onnx');

  it('reads every external tensor by offset, equal to the bytes in the data file', async () => {
    const loaded = await loadModelFile(file);
    const summary = await checkExternalData(loaded);
    assert.equal(summary.files.length, 1);
    const data = readFileSync(summary.files[0].path);
    assert.equal(loaded.sizeBytes, loaded.bytes.length + data.length);
    let n = 0;
    for (const t of allTensors(loaded.model)) {
      const ref = externalDataRef(t);
      if (ref === undefined) continue;
      n++;
      const bytes = await readTensorBytes(loaded, t);
      assert.equal(bytes.length, ref.length);
      assert.equal(Buffer.compare(Buffer.from(bytes), data.subarray(ref.offset, ref.offset + bytes.length)), 0, t.name);
    }
    assert.equal(n, summary.tensorCount);
    assert.ok(n > 0);
  });

  it('has the same weights as the model it was split from', async () => {
    const entry = Object.values(manifest.models ?? {}).find((m) => m.file === 'models/vit_external/vit_external.onnx');
    const twin = entry?.same_weights_as;
    assert.ok(twin !== undefined, 'manifest names the twin model');
    const ext = await loadModelFile(file);
    const inline = await loadModelFile(path.resolve(FIXTURES, manifest.models?.[twin]?.file ?? ''));
    const byName = new Map(inline.model.graph?.initializer.map((t) => [t.name, t]));
    let compared = 0;
    for (const t of ext.model.graph?.initializer ?? []) {
      if (externalDataRef(t) === undefined) continue;
      const other = byName.get(t.name);
      assert.ok(other, `initializer ${t.name} exists in ${twin}`);
      assert.deepEqual(await tensorToFloat64(ext, t), await tensorToFloat64(inline, other));
      compared++;
    }
    assert.ok(compared > 0);
  });

  it('loads in ONNX Runtime from its path', async () => {
    const session = await ort.InferenceSession.create(file);
    assert.ok(session.inputNames.length > 0);
    await session.release();
  });

  it('decodes as fast as expected for the largest fixture', () => {
    const largest = files.map((f) => ({ f, size: statSync(f).size })).sort((a, b) => b.size - a.size)[0];
    const bytes = new Uint8Array(readFileSync(largest.f));
    decodeModel(bytes); // warm-up
    const t0 = performance.now();
    decodeModel(bytes);
    const ms = performance.now() - t0;
    // ~1 MB fixtures decode in milliseconds; a generous bound that still catches a per-byte slowdown.
    assert.ok(ms < 250 * Math.max(1, largest.size / 2 ** 20), `${path.basename(largest.f)} decoded in ${ms.toFixed(1)} ms`);
  });
});

describe('fixtures: broken models', () => {
  const BROKEN = path.join(FIXTURES, 'broken');
  const expected: Record<string, string> = JSON.parse(readFileSync(path.join(BROKEN, 'expected.json'), 'utf8'));
  // The cases that loading and external-data checks must catch (others are for later stages).
  const ours = ['empty.onnx', 'random_bytes.onnx', 'truncated.onnx', 'text_file.onnx', 'unsafe_external/model.onnx', 'missing_external/model.onnx'];

  for (const name of ours) {
    it(`${name}: fails with "${expected[name]}"`, async () => {
      assert.ok(expected[name] !== undefined, `expected.json lists ${name}`);
      const file = path.join(BROKEN, name);
      await assert.rejects(
        async () => {
          const loaded = await loadModelFile(file);
          await checkExternalData(loaded);
        },
        (e: unknown) => {
          assert.ok(e instanceof Error);
          assert.ok(e.message.toLowerCase().includes(expected[name].toLowerCase()), `message: ${e.message}`);
          const named = (e as { file?: string }).file;
          assert.ok(named !== undefined && named.length > 0, 'the error names a file');
          return true;
        },
      );
    });
  }

  it('zero_nodes.onnx loads (deciding what to do with an empty graph is the caller’s job)', async () => {
    const loaded = await loadModelFile(path.join(BROKEN, 'zero_nodes.onnx'));
    assert.equal(loaded.model.graph?.node.length, 0);
  });
});
