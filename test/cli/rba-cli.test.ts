// `blocklens rba | plan | verify` as a user runs them: the bundled dist/cli.js.
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { cliInTemp } from '../helpers/cli-run';
import { fixture, manifest } from '../helpers/fixtures';

const { tmp, run } = cliInTemp('blocklens-rba-cli-');

describe('blocklens rba / plan / verify', () => {
  const vit = path.join(tmp, 'vit.onnx');
  copyFileSync(fixture(manifest.models.vit_tiny!.file), vit);
  const data = fixture('data/digits_x.npy');
  const labels = fixture('data/digits_labels.npy');

  it('rba writes <model>.rba-I-J.onnx beside the input, --json prints fit and verification', () => {
    const r = run('rba', vit, '--from', '-1', '--to', '1', '--data', data, '--labels', labels, '--json');
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.equal(out.out, path.join(tmp, 'vit.rba--1-1.onnx'));
    assert.ok(existsSync(out.out));
    assert.deepEqual([out.spans[0].from, out.spans[0].to, out.spans[0].method], [-1, 1, 'linear']);
    for (const k of ['relMse', 'cka', 'agreement', 'original', 'candidate', 'latencyRatio']) assert.ok(k in out.verify, k);
    for (const k of ['parameters', 'sizeBytes', 'medianBatchMs', 'accuracy']) assert.ok(k in out.verify.original, k);
    assert.ok(out.verify.candidate.parameters < out.verify.original.parameters);
    // Again without --force: refused, the file is kept.
    const again = run('rba', vit, '--from', '-1', '--to', '1', '--data', data);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /vit\.rba--1-1\.onnx already exists; pass --force to replace it/);
  });

  it('rba errors: I ≥ J, out of range, usage', () => {
    let r = run('rba', vit, '--from', '3', '--to', '2', '--data', data);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^blocklens: error: .*vit\.onnx: span 3→2: the start must be before the end/);
    r = run('rba', vit, '--from', '0', '--to', '9', '--data', data);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /block 9 is out of range \(the model has blocks 0\.\.5\)/);
    r = run('rba', vit, '--method', 'lowrank', '--from', '0', '--to', '1');
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--method lowrank needs --rank R/);
    r = run('rba', vit);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /rba needs a span/);
  });

  it('rba --span twice, --method lowrank; verify compares the two files', () => {
    const out = path.join(tmp, 'two.onnx');
    let r = run('rba', vit, '--span', '0:1', '--span', '3:4', '--method', 'lowrank', '--rank', '8', '--data', data, '--out', out, '--no-verify');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /span 0→1 \(lowrank/);
    assert.match(r.stdout, /span 3→4 \(lowrank/);
    r = run('verify', vit, out, '--data', data, '--labels', labels, '--json');
    assert.equal(r.code, 0, r.stderr);
    const v = JSON.parse(r.stdout);
    assert.equal(v.samples, 256, 'verify uses all of --data by default');
    assert.equal(v.heldOutOnly, false);
    assert.ok(v.agreement > 0.5 && v.agreement <= 1);
    r = run('verify', vit, out, '--data', data, '--held-out-only', '--json');
    assert.ok(JSON.parse(r.stdout).samples < 100);
    r = run('verify', vit, fixture(manifest.models.bert_tiny!.file), '--data', data);
    assert.equal(r.code, 1);
  });

  it('plan --remove 1 --dry-run reports spans and measurements and writes nothing', () => {
    const before = readFileSync(vit);
    const r = run('plan', vit, '--data', data, '--remove', '1', '--dry-run', '--json');
    assert.equal(r.code, 0, r.stderr);
    const p = JSON.parse(r.stdout);
    assert.equal(p.spans.length, 21, 'all spans of 7 sites (−1..5)');
    assert.equal(p.chosen.blocksRemoved, 1);
    assert.ok(!('out' in p));
    assert.deepEqual(readFileSync(vit), before);
  });

  it('plan: an impossible budget exits 3 with a plain message and writes nothing', () => {
    const r = run('plan', vit, '--data', data, '--max-rel-err', '0');
    assert.equal(r.code, 3, r.stderr);
    assert.match(r.stdout, /no combination of spans meets output relative MSE ≤ 0/);
    assert.match(r.stdout, /nothing written/);
    const r2 = run('plan', vit, '--min-agreement', '0.9', '--remove', '2');
    assert.equal(r2.code, 2);
  });

  it('an existing output file is refused for plan too', () => {
    const out = path.join(tmp, 'taken.onnx');
    writeFileSync(out, 'x');
    const r = run('plan', vit, '--data', data, '--remove', '1', '--out', out);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /already exists/);
    assert.equal(readFileSync(out, 'utf8'), 'x');
  });
});
