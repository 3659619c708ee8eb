// Token data: .jsonl of token ids (padding, truncation, masks, labels) and text tokenized with
// tokenizer.json (plain .txt and {"text": ...} lines).

import { test, describe, before } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile, readFile, mkdir, copyFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  openCalibration, encodeNpy,
  type InputSpec, type CalibrationBatch,
} from '../../src/engine/calibration/index';
import { BERT, DATA, collect, rejects, useTempDir } from '../helpers/calibration';

const TOKENIZER = join(DATA, 'bert_tokenizer', 'tokenizer.json');

const tmp = useTempDir('blocklens-tok-');
const { put } = tmp;

/** Rows of one input over all batches. */
function rows(batches: CalibrationBatch[], input: string): number[][] {
  const out: number[][] = [];
  for (const b of batches) {
    const t = b.feeds[input];
    const T = t.dims[1];
    for (let r = 0; r < b.size; r++) out.push(Array.from(t.data.slice(r * T, r * T + T) as ArrayLike<number | bigint>, Number));
  }
  return out;
}

const BERT8: InputSpec[] = [
  { name: 'input_ids', dtype: 'int64', shape: ['batch', 8] },
  { name: 'attention_mask', dtype: 'int64', shape: ['batch', 8] },
];

describe('jsonl token ids', () => {
  let file: string;
  before(async () => {
    file = await put('ids.jsonl', [
      JSON.stringify({ input_ids: [2, 10, 11, 3], attention_mask: [1, 1, 1, 1], label: 1 }),
      '',
      JSON.stringify({ input_ids: [2, 10, 11, 12, 13, 14, 15, 16, 17, 3], label: 0 }),
      JSON.stringify({ input_ids: [2, 3], label: 2 }),
    ].join('\n') + '\n');
  });

  test('pads with 0 and mask 0, truncates to the declared length, fills a missing mask', async () => {
    const src = await openCalibration({ inputs: BERT8, data: file });
    assert.equal(src.info.source, 'jsonl');
    assert.equal(src.samples, 3);
    const b = await collect(src, 2);
    assert.deepEqual(b.map((x) => x.size), [2, 1]);
    assert.deepEqual(rows(b, 'input_ids'), [
      [2, 10, 11, 3, 0, 0, 0, 0],
      [2, 10, 11, 12, 13, 14, 15, 16],
      [2, 3, 0, 0, 0, 0, 0, 0],
    ]);
    assert.deepEqual(rows(b, 'attention_mask'), [
      [1, 1, 1, 1, 0, 0, 0, 0],
      [1, 1, 1, 1, 1, 1, 1, 1],
      [1, 1, 0, 0, 0, 0, 0, 0],
    ]);
    assert.ok(b[0].feeds.input_ids.data instanceof BigInt64Array);
    assert.deepEqual(b.flatMap((x) => [...x.labels!]), [1, 0, 2]);
    assert.deepEqual(src.info.labels, { source: 'ids.jsonl ("label" field)', classes: 3 });
    assert.equal(src.info.preprocessing!.truncated, 1);
    assert.equal(src.info.preprocessing!.padded, 2);
    assert.equal(src.info.inputs[1].fill, '1 over tokens, 0 over padding');
    assert.deepEqual(src.info.inputs.map((i) => i.shape), [[3, 8], [3, 8]]);
  });

  test('symbolic sequence length: seqLen hint, else 128', async () => {
    const s1 = await openCalibration({ inputs: BERT, data: file, hints: { seqLen: 5 } });
    assert.deepEqual(rows(await collect(s1, 3), 'input_ids')[1], [2, 10, 11, 12, 13]);
    const s2 = await openCalibration({ inputs: BERT, data: file });
    assert.deepEqual(s2.info.inputs[0].shape, [3, 128]);
    assert.equal((await collect(s2, 3))[0].feeds.input_ids.data.length, 3 * 128);
  });

  test('token_type_ids → zeros, position_ids → 0..T-1, int32 inputs', async () => {
    const inputs: InputSpec[] = [
      { name: 'input_ids', dtype: 'int32', shape: ['N', 6] },
      { name: 'token_type_ids', dtype: 'int32', shape: ['N', 6] },
      { name: 'position_ids', dtype: 'int32', shape: ['N', 6] },
    ];
    const src = await openCalibration({ inputs, data: file });
    const b = await collect(src, 3);
    assert.ok(b[0].feeds.input_ids.data instanceof Int32Array);
    assert.deepEqual(rows(b, 'token_type_ids')[0], [0, 0, 0, 0, 0, 0]);
    assert.deepEqual(rows(b, 'position_ids')[2], [0, 1, 2, 3, 4, 5]);
    assert.equal(src.info.inputs[2].fill, 'positions 0..T-1');
  });

  test('seeded subsets keep file order; checksum independent of batch size', async () => {
    const a = await openCalibration({ inputs: BERT8, data: file, samples: 2, seed: 4 });
    const ra = rows(await collect(a, 1), 'input_ids');
    const again = await openCalibration({ inputs: BERT8, data: file, samples: 2, seed: 4 });
    assert.deepEqual(rows(await collect(again, 2), 'input_ids'), ra);
    assert.equal(a.info.checksum, again.info.checksum);
    const all = rows(await collect(await openCalibration({ inputs: BERT8, data: file }), 3), 'input_ids');
    const idx = ra.map((r) => all.findIndex((x) => JSON.stringify(x) === JSON.stringify(r)));
    assert.ok(idx.every((i) => i >= 0) && idx[0] < idx[1]);
  });

  test('errors name the file and line', async () => {
    const bad = await put('bad.jsonl', '{"input_ids": [1, 2]}\n{"input_ids": [1, 2\n');
    await rejects(openCalibration({ inputs: BERT8, data: bad }), /^bad\.jsonl line 2: not valid JSON/, bad);
    const noIds = await put('noids.jsonl', '{"attention_mask": [1, 1], "foo": 1}\n');
    await rejects(openCalibration({ inputs: BERT8, data: noIds }), /noids\.jsonl line 1: no 'input_ids' \(the line has: attention_mask, foo\)/);
    const vocab = await put('vocab.jsonl', '{"input_ids": [2, 5]}\n{"input_ids": [2, 300]}\n');
    await rejects(openCalibration({ inputs: BERT8, data: vocab, hints: { vocabSize: { input_ids: 192 } } }), /vocab\.jsonl line 2: input 'input_ids' has token id 300 at position 1, outside the vocabulary \[0, 192\)/);
    const frac = await put('frac.jsonl', '{"input_ids": [2, 5.5]}\n');
    await rejects(openCalibration({ inputs: BERT8, data: frac }), /frac\.jsonl line 1: 'input_ids'\[1\] is 5\.5; input 'input_ids' is int64/);
    const notArr = await put('notarr.jsonl', '{"input_ids": "2 5"}\n');
    await rejects(openCalibration({ inputs: BERT8, data: notArr }), /notarr\.jsonl line 1: 'input_ids' must be an array of numbers/);
    const someLabels = await put('somelabels.jsonl', '{"input_ids": [2], "label": 1}\n{"input_ids": [2]}\n');
    await rejects(openCalibration({ inputs: BERT8, data: someLabels }), /somelabels\.jsonl: 1 of 2 lines have a label; give a label on every line or on none/);
    await rejects(openCalibration({ inputs: BERT8, data: file, samples: 4 }), /ids\.jsonl has 3 samples but 4 were requested/);
    const range = await put('range.jsonl', '{"input_ids": [2, 300]}\n');
    await rejects(openCalibration({ inputs: [{ name: 'input_ids', dtype: 'uint8', shape: ['N', 4] }], data: range }), /range\.jsonl line 1: input 'input_ids' value 300 at position 1 is outside the uint8 range/);
    const notObj = await put('notobj.jsonl', '[1, 2, 3]\n');
    await rejects(openCalibration({ inputs: BERT8, data: notObj }), /notobj\.jsonl line 1: expected a JSON object/);
    await rejects(openCalibration({ inputs: [{ name: 'x', dtype: 'float32', shape: ['N', 3, 4, 4] }], data: file }), /ids\.jsonl: token data feeds inputs of shape \[N,seq\]; input 'x' expects shape \[N,3,4,4\]/);
    await rejects(openCalibration({ inputs: BERT8, data: join(tmp.path, 'missing.jsonl') }), /missing\.jsonl: file not found/);
  });

  test('lines that give ids and also keep their text need no tokenizer', async () => {
    const f = await put('idsandtext.jsonl', '{"text": "hello", "input_ids": [2, 7, 3]}\n');
    const src = await openCalibration({ inputs: BERT8, data: f });
    assert.deepEqual(rows(await collect(src, 1), 'input_ids'), [[2, 7, 3, 0, 0, 0, 0, 0]]);
    assert.equal(src.info.preprocessing!.tokenizer, undefined);
  });

  test('labels from a .npy file; count must match', async () => {
    const lab = join(tmp.path, 'tok_labels.npy');
    await writeFile(lab, encodeNpy('int64', [3], [0, 1, 0]));
    const plain = await put('plain.jsonl', '{"input_ids": [2]}\n{"input_ids": [3]}\n{"input_ids": [4]}\n');
    const src = await openCalibration({ inputs: BERT8, data: plain, labels: lab });
    assert.deepEqual((await collect(src, 3))[0].labels, Int32Array.from([0, 1, 0]));
    const lab2 = join(tmp.path, 'tok_labels2.npy');
    await writeFile(lab2, encodeNpy('int64', [2], [0, 1]));
    await rejects(openCalibration({ inputs: BERT8, data: plain, labels: lab2 }), /^tok_labels2\.npy has 2 labels but plain\.jsonl has 3 samples/, lab2);
  });

  test('abort', async () => {
    const many = await put('many.jsonl', Array.from({ length: 50 }, (_, i) => JSON.stringify({ input_ids: [2, i, 3] })).join('\n'));
    const src = await openCalibration({ inputs: BERT8, data: many });
    const ac = new AbortController();
    let n = 0;
    await assert.rejects(
      (async () => {
        for await (const b of src.batches(8, ac.signal)) {
          n += b.size;
          if (n >= 16) ac.abort();
        }
      })(),
      (e: Error) => e.name === 'AbortError',
    );
    assert.equal(n, 16);
  });
});

describe('text with tokenizer.json', () => {
  test('bert_text.txt tokenized in JS matches bert_tokens.jsonl (tokenized by the Python reference)', async () => {
    const text = await openCalibration({ inputs: BERT, data: join(DATA, 'bert_text.txt'), tokenizer: TOKENIZER, hints: { seqLen: 96 } });
    const ids = await openCalibration({ inputs: BERT, data: join(DATA, 'bert_tokens.jsonl'), hints: { seqLen: 96 } });
    assert.equal(text.info.source, 'text');
    assert.equal(text.samples, 18);
    assert.equal(text.info.preprocessing!.tokenizer, TOKENIZER);
    const bt = await collect(text, 5);
    const bi = await collect(ids, 7);
    assert.deepEqual(rows(bt, 'input_ids'), rows(bi, 'input_ids'));
    assert.deepEqual(rows(bt, 'attention_mask'), rows(bi, 'attention_mask'));
    assert.equal(text.info.checksum, ids.info.checksum);
    const first = rows(bt, 'input_ids')[0];
    assert.equal(first[0], 2, '[CLS]');
  });

  test('truncation keeps the final [SEP]; mask from the tokenizer', async () => {
    const src = await openCalibration({ inputs: BERT8, data: join(DATA, 'bert_text.txt'), tokenizer: TOKENIZER });
    const r = rows(await collect(src, 18), 'input_ids');
    const long = r.filter((x) => x.every((v) => v !== 0));
    assert.ok(long.length > 0);
    for (const x of long) {
      assert.equal(x[0], 2);
      assert.equal(x[7], 3, 'last token is [SEP]');
    }
    assert.ok(Number(src.info.preprocessing!.truncated) > 0);
  });

  test('tokenizer.json found beside the model; {"text": ...} lines in jsonl', async () => {
    const modelDir = join(tmp.path, 'model');
    await mkdir(modelDir);
    await copyFile(TOKENIZER, join(modelDir, 'tokenizer.json'));
    const lines = (await readFile(join(DATA, 'bert_text.txt'), 'utf8')).split('\n').filter((l) => l.trim());
    const jsonl = await put('text.jsonl', lines.map((t, i) => JSON.stringify({ text: t, label: i % 2 })).join('\n'));
    const src = await openCalibration({ inputs: BERT, data: jsonl, modelPath: join(modelDir, 'model.onnx'), hints: { seqLen: 96 } });
    assert.equal(src.info.preprocessing!.tokenizer, join(modelDir, 'tokenizer.json'));
    const b = await collect(src, 18);
    const ref = await openCalibration({ inputs: BERT, data: join(DATA, 'bert_tokens.jsonl'), hints: { seqLen: 96 } });
    assert.deepEqual(rows(b, 'input_ids'), rows(await collect(ref, 18), 'input_ids'));
    assert.deepEqual([...b[0].labels!].slice(0, 4), [0, 1, 0, 1]);
  });

  test('text without a tokenizer is a clear error', async () => {
    const txt = await put('lonely.txt', 'hello world\n');
    await rejects(
      openCalibration({ inputs: BERT, data: txt, modelPath: join(tmp.path, 'nomodel', 'm.onnx') }),
      /lonely\.txt: text needs a tokenizer\.json to turn into token ids; none found \(looked for .*nomodel\/tokenizer\.json and beside the data\); give one with the tokenizer option/,
      txt,
    );
    const jl = await put('lonely.jsonl', '{"text": "hello"}\n');
    await rejects(openCalibration({ inputs: BERT, data: jl }), /lonely\.jsonl: text needs a tokenizer\.json/);
    await rejects(openCalibration({ inputs: BERT, data: txt, tokenizer: join(tmp.path, 'nope.json') }), /nope\.json: tokenizer file not found/);
    const badTok = await put('badtok.json', '{"not": "a tokenizer"');
    await rejects(openCalibration({ inputs: BERT, data: txt, tokenizer: badTok }), /badtok\.json: not a readable tokenizer\.json/);
  });

  test('pad id comes from tokenizer.json "padding"', async () => {
    const tok = JSON.parse(await readFile(TOKENIZER, 'utf8'));
    tok.padding = { pad_id: 4, pad_token: '[MASK]' };
    const tdir = join(tmp.path, 'padtok');
    await mkdir(tdir);
    await writeFile(join(tdir, 'tokenizer.json'), JSON.stringify(tok));
    const txt = await put('short.txt', 'a\n');
    const src = await openCalibration({ inputs: BERT8, data: txt, tokenizer: join(tdir, 'tokenizer.json') });
    const r = rows(await collect(src, 1), 'input_ids')[0];
    assert.deepEqual(r.slice(3), [4, 4, 4, 4, 4]);
    assert.deepEqual(rows(await collect(src, 1), 'attention_mask')[0], [1, 1, 1, 0, 0, 0, 0, 0]);
  });
});
