// Sample identity: every source reads any range of global sample ids, yielding exactly the
// samples (and labels) a full read gives at those ids; synthetic samples depend on (seed, id)
// only; range checksums combine into the full checksum.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { openCalibration, SampleHasher, type CalibrationBatch, type CalibrationSource, type OpenOptions } from '../../src/engine/calibration/index';
import { calibrationHints, modelInputs } from '../../src/engine/model/introspect';
import { loadModelFile } from '../../src/engine/onnx/model-file';
import { fixture, manifest } from '../helpers/fixtures';

async function read(src: CalibrationSource, batch: number, range?: { start: number; end: number }) {
  const out: CalibrationBatch[] = [];
  for await (const b of src.batches(batch, undefined, range)) out.push(b);
  return out;
}

/** Per sample id: the bytes of every input and the label. */
function bySample(batches: CalibrationBatch[]): Map<number, string> {
  const m = new Map<number, string>();
  for (const b of batches) {
    for (let s = 0; s < b.size; s++) {
      const parts = Object.keys(b.feeds).sort().map((k) => {
        const t = b.feeds[k]!;
        const per = t.data.length / b.size;
        return Buffer.from(t.data.buffer, t.data.byteOffset + s * per * t.data.BYTES_PER_ELEMENT, per * t.data.BYTES_PER_ELEMENT).toString('hex');
      });
      m.set(b.first + s, `${parts.join('|')}#${b.labels?.[s] ?? ''}`);
    }
  }
  return m;
}

async function sourceFor(name: string, extra: Partial<OpenOptions>): Promise<CalibrationSource> {
  const loaded = await loadModelFile(fixture(manifest.models[name]!.file));
  return openCalibration({ inputs: modelInputs(loaded.model), hints: calibrationHints(loaded.model), ...extra });
}

describe('id ranges', () => {
  const cases: [string, string, Partial<OpenOptions>][] = [
    ['synthetic', 'vit_tiny', { samples: 23, seed: 4 }],
    ['npy + labels (seeded subset)', 'vit_tiny', { data: fixture('data/digits_x.npy'), labels: fixture('data/digits_labels.npy'), samples: 40, seed: 2 }],
    ['npz tokens', 'bert_tiny', { data: fixture('data/bert_tokens.npz'), samples: 30 }],
    ['jsonl tokens', 'bert_tiny', { data: fixture('data/bert_tokens.jsonl') }],
    ['image folder', 'vit_tiny', { data: fixture('data/digits_images'), samples: 17 }],
  ];
  for (const [what, model, extra] of cases) {
    it(`${what}: ranges read the same samples as a full read, and their checksums combine`, async () => {
      const src = await sourceFor(model, extra);
      const full = bySample(await read(src, 4));
      const fullSum = src.info.checksum;
      assert.equal(full.size, src.samples);
      const cuts = [0, Math.floor(src.samples / 3), Math.floor(src.samples / 3) + 1, src.samples];
      const combined = new SampleHasher(src.info.inputs);
      for (let i = 0; i + 1 < cuts.length; i++) {
        const range = { start: cuts[i]!, end: cuts[i + 1]! };
        const batches = await read(src, 3, range);
        const part = bySample(batches);
        assert.deepEqual([...part.keys()], Array.from({ length: range.end - range.start }, (_, k) => range.start + k));
        for (const [id, v] of part) assert.equal(v, full.get(id), `sample ${id}`);
        const h = new SampleHasher(src.info.inputs);
        for (const b of batches) h.update(b, b.first);
        combined.merge(h.state());
      }
      assert.equal(combined.digest(), fullSum);
      await assert.rejects(read(src, 3, { start: 2, end: src.samples + 1 }), /sample range 2\.\.\d+ is not inside/);
      await src.close();
    });
  }

  it('synthetic sample k depends on (seed, k) only, not on how many samples are asked for', async () => {
    const a = bySample(await read(await sourceFor('bert_tiny', { samples: 10, seed: 9 }), 10));
    const b = bySample(await read(await sourceFor('bert_tiny', { samples: 30, seed: 9 }), 7, { start: 0, end: 10 }));
    assert.deepEqual(a, b);
    const c = bySample(await read(await sourceFor('bert_tiny', { samples: 10, seed: 8 }), 10));
    assert.notDeepEqual(a, c);
  });
});
