import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { SpanEntry } from '../../src/engine/report/schema';
import { validateReport } from '../../src/engine/report/validate';
import { exampleReport } from './report-fixture';

const entry = (over: Partial<SpanEntry> = {}): SpanEntry => ({
  from: -1, to: 1, blocksRemoved: 2, relErr: 0.01, r2: 0.99, skipRelErr: 0.2, skipR2: null, paramsSaved: 1000, estimate: 'tokens', rows: { train: 800, heldOut: 200 }, ...over,
});

describe('report: spans (additive)', () => {
  it('a report without spans and one with valid spans both validate', () => {
    validateReport(exampleReport(4));
    validateReport({ ...exampleReport(4), spans: [entry(), entry({ from: 2, to: 3, blocksRemoved: 1, estimate: 'pooled' })], spansExcluded: [[-1, 3]] });
  });
  it('rejects malformed entries, naming the path', () => {
    const bad = (e: unknown, re: RegExp) => assert.throws(() => validateReport({ ...exampleReport(4), spans: [e] }), re);
    bad(entry({ from: 2, to: 2, blocksRemoved: 0 }), /spans\[0\]\.to: expected a block after 'from' \(2\), found 2/);
    bad(entry({ to: 4, blocksRemoved: 5 }), /spans\[0\]\.to: expected a block index below 4, found 4/);
    bad(entry({ from: -2 }), /spans\[0\]\.from: expected integer ≥ -1/);
    bad(entry({ blocksRemoved: 3 }), /spans\[0\]\.blocksRemoved: expected to − from = 2, found 3/);
    bad(entry({ relErr: Number.NaN }), /spans\[0\]\.relErr: expected number or null, found NaN/);
    bad(entry({ estimate: 'guess' as never }), /spans\[0\]\.estimate: expected 'tokens' \| 'token-subsample' \| 'pooled'/);
    bad({ ...entry(), rows: { train: 1 } }, /spans\[0\]\.rows\.heldOut: required field missing/);
    assert.throws(() => validateReport({ ...exampleReport(4), spansExcluded: [[1]] }), /spansExcluded\[0\]: expected length 2/);
  });
});
