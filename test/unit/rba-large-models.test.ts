// What large models (issue 9 target 4) need from the rba job, checked on small fixtures:
// verification with one model loaded at a time (the original's outputs wait in a temporary file,
// so the numbers are exactly those of the both-sessions-at-once mode; only the latency is
// measured in turn), and a write of external data that a cancel stops and cleans up.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { runRba } from '../../src/engine/rba/export';
import { verifyModels, type VerifyResult } from '../../src/engine/rba/verify';
import { fixture, manifest } from '../helpers/fixtures';
import { rbaTestEnv } from '../helpers/rba-models';

const { matmul, tmp } = rbaTestEnv();

const verifyTemps = () => readdirSync(tmpdir()).filter((f) => f.startsWith('blocklens-verify-')).length;

/** The measured numbers (everything but timings and notes). */
const numbersOf = (v: VerifyResult) => ({
  samples: v.samples, positions: v.positions, relMse: v.relMse, cka: v.cka, agreement: v.agreement, agreementKind: v.agreementKind,
  accuracy: [v.original.accuracy, v.candidate.accuracy], parameters: [v.original.parameters, v.candidate.parameters],
});

describe('verify: one model at a time', () => {
  const cases: { name: string; data: string; labels?: string; span: [number, number]; samples: number }[] = [
    { name: 'vit_tiny', data: 'data/digits_x.npy', labels: 'data/digits_labels.npy', span: [2, 3], samples: 64 },
    { name: 'gpt_tiny', data: 'data/gpt_tokens.npz', span: [1, 3], samples: 64 },
    { name: 'vit_external', data: 'data/digits_x.npy', span: [1, 3], samples: 48 },
  ];
  for (const c of cases) {
    it(`${c.name}: the same numbers as with both models loaded`, async () => {
      const model = fixture(manifest.models[c.name]!.file);
      const data = fixture(c.data);
      const labels = c.labels ? fixture(c.labels) : undefined;
      const out = path.join(tmp, `${c.name}.rba.onnx`);
      await runRba({ model, data, labels, samples: c.samples, spans: [{ from: c.span[0], to: c.span[1] }], out, force: true, verify: false }, matmul);
      const opts = { model, data, labels, samples: c.samples, candidate: out };
      const before = verifyTemps();
      const both = await verifyModels({ ...opts, oneModelAtATime: false }, matmul);
      const one = await verifyModels({ ...opts, oneModelAtATime: true }, matmul);
      assert.deepEqual(numbersOf(one), numbersOf(both));
      assert.ok(one.samples > 0 && one.relMse !== null);
      if (c.labels) assert.ok(one.original.accuracy !== undefined);
      assert.ok(one.notes.some((n) => /one after the other/.test(n)), one.notes.join('; '));
      assert.ok(!both.notes.some((n) => /one after the other/.test(n)));
      assert.ok(one.original.medianBatchMs > 0 && one.candidate.medianBatchMs > 0);
      assert.equal(verifyTemps(), before, 'the temporary outputs file is removed');
    });
  }
  it('a cancelled one-at-a-time verification removes its temporary file', async () => {
    const model = fixture(manifest.models.gpt_tiny!.file);
    const out = path.join(tmp, 'cancel.rba.onnx');
    const data = fixture('data/gpt_tokens.npz');
    await runRba({ model, data, samples: 64, spans: [{ from: 1, to: 3 }], out, force: true, verify: false }, matmul);
    const before = verifyTemps();
    const ac = new AbortController();
    let polls = 0;
    let sawTemp = false;
    const p = verifyModels({ model, data, samples: 64, batch: 8, candidate: out, oneModelAtATime: true, heldOutOnly: false, signal: ac.signal }, matmul);
    // Abort once the first pass has started writing (the file exists), then wait for the error.
    const timer = setInterval(() => {
      sawTemp ||= verifyTemps() > before;
      if (sawTemp || ++polls > 2000) ac.abort();
    }, 5);
    await assert.rejects(p, (e: Error) => e.name === 'AbortError');
    clearInterval(timer);
    assert.ok(sawTemp, 'aborted while the outputs file existed');
    assert.equal(verifyTemps(), before);
  });
});

describe('rba export: cancelled while writing', () => {
  it('stops the write of the external data and leaves nothing behind', async () => {
    const model = fixture(manifest.models.vit_external!.file);
    const dir = path.join(tmp, 'cancel-write');
    mkdirSync(dir, { recursive: true });
    const out = path.join(dir, 'vit.rba.onnx');
    const ac = new AbortController();
    const p = runRba({
      model, data: fixture('data/digits_x.npy'), samples: 48, spans: [{ from: 1, to: 3 }], out, signal: ac.signal,
      onProgress: (phase) => {
        if (phase === 'write') ac.abort();
      },
    }, matmul);
    await assert.rejects(p, (e: Error) => e.name === 'AbortError');
    assert.ok(!existsSync(out) && !existsSync(`${out}.data`), 'no output written');
    assert.deepEqual(readdirSync(dir), [], 'no temporary files left');
  });
});
