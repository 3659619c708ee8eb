// Reports for the renderer tests: the unit tests' example report, plus a ranked `spans` list
// (schema SpanEntry), validated like the engine's own reports.
import type { AnalysisReport, SpanEntry } from '../../src/engine/report/schema';
import { validateReport } from '../../src/engine/report/validate';
import { exampleReport, type ExampleReportOptions } from '../unit/report-fixture';

export { exampleReport };

/** The report with a ranked span list: short spans in the redundant middle first. */
export function reportWithSpans(L: number, opts: ExampleReportOptions = {}): AnalysisReport & { spans: SpanEntry[]; spansExcluded: [number, number][] } {
  const r = exampleReport(L, opts);
  const spans: SpanEntry[] = [];
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
        relErrAtLast: Number((relErr * 0.6).toPrecision(4)),
        skipRelErr: Number((relErr * 3.2).toPrecision(4)),
        skipR2: Number((1 - relErr * 3.2).toPrecision(4)),
        paramsSaved: n * 7_087_872 - 192 * 193,
        estimate: 'pooled',
        rows: { train: 800, heldOut: 200 },
      });
    }
  }
  spans.sort((a, b) => a.relErr! - b.relErr! || a.from - b.from);
  const out = Object.assign(r, { spans: spans.slice(0, 10), spansExcluded: [[0, Math.min(11, L - 1)]] as [number, number][] });
  validateReport(out);
  return out;
}
