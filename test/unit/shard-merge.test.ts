// Shards of a calibration set, analysed apart and merged, give the single run's report: every
// metric on every fixture (real models, real data), up to float rounding. And merge refuses
// partials that do not make one analysis.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { analyzeModel, analyzeShard, type AnalyzeOptions } from '../../src/engine/jobs/analyze';
import { checkPartials, mergePartials, MergeError } from '../../src/engine/jobs/merge';
import type { AnalysisPartial } from '../../src/engine/jobs/partial';
import type { AnalysisReport } from '../../src/engine/report/schema';
import { fixture, manifest } from '../helpers/fixtures';

/** Largest |a − b| / max(1, |b|) over every number of two JSON trees of the same shape (nulls must match). */
export function maxDifference(a: unknown, b: unknown, at = '', out = new Map<string, number>()): Map<string, number> {
  const parts = at.split(/[.[]/).filter(Boolean);
  const top = parts.slice(0, parts[1] === 'dr' && parts[2] === 'probe' ? 3 : 2).join('.') || '(root)';
  if (typeof b === 'number') {
    assert.equal(typeof a, 'number', `${at}: ${String(a)} vs ${b}`);
    const d = Math.abs((a as number) - b) / Math.max(1, Math.abs(b));
    out.set(top, Math.max(out.get(top) ?? 0, d));
    return out;
  }
  if (b === null || typeof b !== 'object') {
    assert.deepEqual(a, b, at);
    return out;
  }
  assert.ok(a !== null && typeof a === 'object', `${at}: ${String(a)} vs object`);
  const keys = new Set([...Object.keys(a as object), ...Object.keys(b as object)]);
  for (const k of keys) maxDifference((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], Array.isArray(b) ? `${at}[${k}]` : `${at}.${k}`, out);
  return out;
}

function dataOf(name: string): Pick<AnalyzeOptions, 'data' | 'labels'> {
  const c = manifest.models[name]!.calibration;
  return { data: fixture(c.npy ?? c.npz!), ...(c.labels ? { labels: fixture(c.labels) } : {}) };
}

async function shards(opts: AnalyzeOptions, count: number): Promise<{ file: string; partial: AnalysisPartial }[]> {
  const out = [];
  for (let k = 0; k < count; k++) {
    // Through JSON, as a partial file would be.
    const partial = JSON.parse(JSON.stringify(await analyzeShard(opts, { index: k, count }))) as AnalysisPartial;
    out.push({ file: `shard${k + 1}.json`, partial });
  }
  return out;
}

function assertSameReport(merged: AnalysisReport, single: AnalysisReport, what: string): Map<string, number> {
  const diff = maxDifference(merged.metrics, single.metrics, 'metrics');
  for (const [k, v] of diff) assert.ok(v <= 1e-9, `${what}: ${k} differs by ${v}`);
  maxDifference(merged.modelAccuracy ?? null, single.modelAccuracy ?? null, 'modelAccuracy', diff);
  assert.equal(merged.calibration.checksum, single.calibration.checksum, `${what}: data checksum`);
  assert.equal(merged.calibration.samples, single.calibration.samples);
  assert.deepEqual(merged.blocks, single.blocks);
  assert.deepEqual(merged.pooling, single.pooling);
  return diff;
}

describe('shard and merge equals a single run', () => {
  const worst = new Map<string, number>();
  // 3 shards of 256 samples (85/85/86) cut the 256-sample unbiased-CKA run and the batches of 32.
  for (const name of Object.keys(manifest.models)) {
    it(`${name}: every metric, accuracy and checksum (3 shards)`, async () => {
      const opts: AnalyzeOptions = { model: fixture(manifest.models[name]!.file), ...dataOf(name) };
      const single = await analyzeModel(opts);
      const merged = await mergePartials(await shards(opts, 3));
      for (const [k, v] of assertSameReport(merged, single, name)) worst.set(k, Math.max(worst.get(k) ?? 0, v));
      if (name === 'vit_tiny') {
        assert.ok(single.metrics.dr?.probe, 'the probe ran (labels)');
        assert.ok(single.modelAccuracy, 'accuracy was scored');
      }
    });
  }
  it('tokens pooling (several rows per sample, padding removed), synthetic data, 4 shards', async () => {
    const opts: AnalyzeOptions = { model: fixture(manifest.models.bert_tiny!.file), data: fixture('data/bert_tokens.npz'), samples: 48, pooling: 'tokens', batch: 5 };
    const single = await analyzeModel(opts);
    assertSameReport(await mergePartials(await shards(opts, 4)), single, 'bert tokens');
    const synth: AnalyzeOptions = { model: fixture(manifest.models.vit_tiny!.file), samples: 40, batch: 7 };
    assertSameReport(await mergePartials(await shards(synth, 4)), await analyzeModel(synth), 'synthetic');
  });
  it('reports the largest merged-vs-single difference per metric', () => {
    // Printed for the record (the numbers asserted above); no threshold here.
    console.log(`largest merged-vs-single difference: ${JSON.stringify(Object.fromEntries(worst))}`);
  });
});

describe('merge refuses partials that are not one analysis', () => {
  let parts: { file: string; partial: AnalysisPartial }[];
  const get = async () => (parts ??= await shards({ model: fixture(manifest.models.linear_blocks!.file), data: fixture('data/linear_x.npy') }, 3));
  const copy = (p: AnalysisPartial) => JSON.parse(JSON.stringify(p)) as AnalysisPartial;
  it('all shards: accepted', async () => {
    checkPartials(await get());
  });
  it('a missing shard', async () => {
    const p = await get();
    assert.throws(() => checkPartials([p[0]!, p[2]!]), (e: Error) => e instanceof MergeError && /missing shards 2\/3/.test(e.message) && /ids 21\.\.41/.test(e.message));
  });
  it('overlapping shards', async () => {
    const p = await get();
    assert.throws(() => checkPartials([p[0]!, p[1]!, { file: 'again.json', partial: copy(p[1]!.partial) }, p[2]!]), (e: Error) => e instanceof MergeError && /overlaps shard2\.json/.test(e.message) && (e as MergeError).file === 'again.json');
  });
  it('a different model', async () => {
    const p = await get();
    const other = copy(p[1]!.partial);
    other.modelIdentity = '0'.repeat(64);
    assert.throws(() => checkPartials([p[0]!, { file: 'other.json', partial: other }, p[2]!]), (e: Error) => /different model than shard1\.json/.test(e.message) && (e as MergeError).file === 'other.json');
  });
  it('different settings', async () => {
    const p = await get();
    const other = copy(p[2]!.partial);
    other.settings.seed = 7;
    assert.throws(() => checkPartials([p[0]!, p[1]!, { file: 'seed7.json', partial: other }]), (e: Error) => /different settings than shard1\.json: seed is 7 here and 0 there/.test(e.message));
  });
});
