// Reports for the renderer tests: the unit tests' example report, plus the ranked `spans` list in
// the shape the RBA work adds to the schema (from, to, blocksRemoved, relErr, r2, skipRelErr,
// skipR2, paramsSaved, estimate, rows).
import type { AnalysisReport } from '../../src/engine/report/schema';
import { exampleReport, type ExampleReportOptions } from '../unit/report-fixture';

export { exampleReport };

export interface FixtureSpan {
  from: number;
  to: number;
  blocksRemoved: number;
  relErr: number | null;
  r2: number | null;
  skipRelErr: number | null;
  skipR2: number | null;
  paramsSaved: number;
  estimate: 'tokens' | 'token-subsample' | 'pooled';
  rows: { train: number; heldOut: number };
}

/** The report with a ranked span list: short spans in the redundant middle first. */
export function reportWithSpans(L: number, opts: ExampleReportOptions = {}): AnalysisReport & { spans: FixtureSpan[]; spansExcluded: [number, number][] } {
  const r = exampleReport(L, opts);
  const spans: FixtureSpan[] = [];
  for (let from = -1; from < L - 1; from++) {
    for (let to = from + 1; to < Math.min(L, from + 4); to++) {
      const n = to - from;
      const centre = (from + to) / 2 / Math.max(1, L - 1);
      const relErr = Number((0.01 * n * (0.3 + Math.abs(centre - 0.6) * 3)).toPrecision(4));
      spans.push({
        from,
        to,
        blocksRemoved: n,
        relErr,
        r2: Number((1 - relErr).toPrecision(4)),
        skipRelErr: Number((relErr * 3.2).toPrecision(4)),
        skipR2: Number((1 - relErr * 3.2).toPrecision(4)),
        paramsSaved: n * 7_087_872 - 192 * 193,
        estimate: 'pooled',
        rows: { train: 800, heldOut: 200 },
      });
    }
  }
  spans.sort((a, b) => a.relErr! - b.relErr! || a.from - b.from);
  return Object.assign(r, { spans: spans.slice(0, 10), spansExcluded: [[0, 11]] as [number, number][] });
}
