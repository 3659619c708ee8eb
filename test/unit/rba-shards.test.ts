// The analysis report's RBA spans, from shards analysed apart and merged, equal the single run.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { analyzeModel, analyzeShard, type AnalyzeOptions } from '../../src/engine/jobs/analyze';
import { mergePartials } from '../../src/engine/jobs/merge';
import type { AnalysisPartial } from '../../src/engine/jobs/partial';
import type { SpanEntry } from '../../src/engine/report/schema';
import { fixture, manifest } from '../helpers/fixtures';

const byKey = (spans: SpanEntry[]) => new Map(spans.map((s) => [`${s.from}:${s.to}`, s]));

describe('analysis spans: shards merge into the single run', () => {
  for (const [name, data, count] of [['vit_tiny', 'data/digits_x.npy', 3], ['bert_tiny', 'data/bert_tokens.npz', 4], ['resnet_tiny', 'data/digits_x.npy', 2]] as const) {
    it(`${name}: ${count} shards`, async () => {
      const opts: AnalyzeOptions = { model: fixture(manifest.models[name]!.file), data: fixture(data), samples: 96, batch: 20 };
      const single = await analyzeModel(opts);
      const parts: { file: string; partial: AnalysisPartial }[] = [];
      for (let k = 0; k < count; k++) parts.push({ file: `s${k}.json`, partial: JSON.parse(JSON.stringify(await analyzeShard(opts, { index: k, count }))) });
      const merged = await mergePartials(parts);
      assert.ok(single.spans && single.spans.length > 0, 'the single run ranks spans');
      assert.equal(merged.spans!.length, single.spans.length);
      const m = byKey(merged.spans!);
      let worst = 0;
      for (const s of single.spans) {
        const t = m.get(`${s.from}:${s.to}`)!;
        assert.deepEqual(t.rows, s.rows);
        assert.equal(t.estimate, s.estimate);
        assert.equal(t.paramsSaved, s.paramsSaved);
        for (const k of ['relErr', 'r2', 'skipRelErr', 'skipR2', 'relErrAtLast'] as const) {
          if (s[k] === null || s[k] === undefined) assert.equal(t[k], s[k]);
          else worst = Math.max(worst, Math.abs(t[k]! - s[k]!) / Math.max(1e-3, Math.abs(s[k]!)));
        }
      }
      assert.ok(worst < 1e-6, `${name}: spans differ by ${worst}`);
      assert.deepEqual(merged.spansExcluded, single.spansExcluded);
      if (name === 'resnet_tiny') {
        // 8×8 maps (64 positions) are subsampled to ~16 rows per sample, 4×4 and 2×2 maps are not.
        const est = Object.fromEntries(single.spans.map((s) => [`${s.from}:${s.to}`, s.estimate]));
        assert.equal(est['-1:0'], 'token-subsample');
        assert.equal(est['2:3'], 'tokens');
        assert.equal(est['4:5'], 'tokens');
      }
    });
  }
});
