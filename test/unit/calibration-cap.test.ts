// The default sample cap: without an explicit count, large sources give a seeded subset and say so.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { openCalibration, type InputSpec } from '../../src/engine/calibration/index';
import { fixture } from '../helpers/fixtures';

const VIT: InputSpec = { name: 'pixel_values', dtype: 'float32', shape: ['batch', 1, 16, 16] };
const BERT: InputSpec[] = [
  { name: 'input_ids', dtype: 'int64', shape: ['batch', 'sequence'] },
  { name: 'attention_mask', dtype: 'int64', shape: ['batch', 'sequence'] },
];

describe('default sample cap (maxSamples)', () => {
  it('npy: a capped subset with a note; an explicit count still wins', async () => {
    const capped = await openCalibration({ inputs: [VIT], data: fixture('data/digits_x.npy'), maxSamples: 100 });
    assert.equal(capped.samples, 100);
    assert.match(capped.info.note ?? '', /Used 100 of the 256 samples \(the default cap\)/);
    const explicit = await openCalibration({ inputs: [VIT], data: fixture('data/digits_x.npy'), samples: 200, maxSamples: 100 });
    assert.equal(explicit.samples, 200);
    assert.doesNotMatch(explicit.info.note ?? '', /default cap/);
    const under = await openCalibration({ inputs: [VIT], data: fixture('data/digits_x.npy'), maxSamples: 1000 });
    assert.equal(under.samples, 256);
  });

  it('images and jsonl honour the cap too', async () => {
    const images = await openCalibration({ inputs: [VIT], data: fixture('data/digits_images'), maxSamples: 30 });
    assert.equal(images.samples, 30);
    assert.match(images.info.note ?? '', /Used 30 of the \d+ images/);
    const tokens = await openCalibration({ inputs: BERT, data: fixture('data/bert_tokens.jsonl'), maxSamples: 5, hints: { seqLen: 64 } });
    assert.equal(tokens.samples, 5);
    assert.match(tokens.info.note ?? '', /Used 5 of the 18 samples/);
  });
});
