// `blocklens blocks` explains its choices; --granularity and --layout reach the engine.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { cliInTemp } from '../helpers/cli-run';
import { fixture, manifest } from '../helpers/fixtures';

const { tmp, run } = cliInTemp('blocklens-cli-blocks-');

describe('blocklens blocks: route, block input, granularity, pooling and rejected routes', () => {
  it('blocks --json on the decoder explains h-1 and the causal pooling', () => {
    const m = manifest.models.llama_tiny!;
    const r = run('blocks', fixture(m.file), '--json');
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.equal(out.method, 'scoped-names');
    assert.deepEqual(out.blocks.map((b: { output: string }) => b.output), m.blocks.outputs);
    assert.equal(out.blockInput, m.blocks.input);
    assert.match(out.blockInputReason, /residual stream/);
    assert.equal(out.granularity, 'layer');
    assert.equal(out.pooling.used, 'last');
    assert.ok(out.pooling.evidence.some((e: string) => /lower-triangular/.test(e)));
    assert.equal(out.layout, 'ntd');
    assert.ok(Array.isArray(out.rejected));
  });

  it('--granularity sublayer gives one block per residual sub-block; a bad value is a usage error', () => {
    const m = manifest.models.preln_stripped!;
    const r = run('blocks', fixture(m.file), '--json', '--granularity', 'sublayer');
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.equal(out.granularity, 'sublayer');
    assert.equal(out.blocks.length, 2 * m.blocks.count);
    const bad = run('blocks', fixture(m.file), '--granularity', 'layers');
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--granularity must be one of layer, sublayer/);
  });

  it('plain text output names the pooling, the block input reason and the width change', () => {
    const r = run('blocks', fixture(manifest.models.plain_cnn!.file));
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /repeated units/);
    assert.match(r.stdout, /block input h-1: .* main path/);
    assert.match(r.stdout, /pooling: gap/);
    assert.match(r.stdout, /widths change at block 1/);
  });

  it('analyze --granularity sublayer --layout ntd reaches the report', () => {
    const m = manifest.models.llama_tiny!;
    const out = path.join(tmp, 'r.json');
    const r = run('analyze', fixture(m.file), '--data', fixture(m.calibration.npz!), '--samples', '16', '--granularity', 'sublayer', '--layout', 'ntd', '--out', out, '--quiet');
    assert.equal(r.code, 0, r.stderr);
    const report = JSON.parse(readFileSync(out, 'utf8'));
    assert.equal(report.detection.granularity, 'sublayer');
    assert.equal(report.blocks.length, 8);
    assert.equal(report.detection.layout, 'ntd');
    assert.equal(report.pooling.used, 'last');
  });
});
