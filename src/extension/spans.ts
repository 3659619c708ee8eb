// Ranked block spans for *Replace blocks i→j with linear map…*. The analysis report carries the
// engine's measured spans (`report.spans`, best first: a map h_from → h_to replacing blocks
// from+1..to); for older reports without them, candidates are ranked by the linear CKA between a
// span's input and output (a span whose output is nearly a linear image of its
// input is the cheapest to replace). No `vscode` import.
import type { AnalysisReport } from '../engine/report/schema.js';

export interface RankedSpan {
  from: number;
  to: number;
  /** What the ranking is based on, for the quick pick's description. */
  score: number | null;
  basis: string;
}

interface EngineSpan {
  from: number;
  to: number;
  relErr?: number | null;
  r2?: number | null;
  paramsSaved?: number;
}

export function rankedSpans(report: AnalysisReport, max = 12): RankedSpan[] {
  const engine = (report as unknown as { spans?: EngineSpan[] | { ranked?: EngineSpan[] } }).spans;
  const list = Array.isArray(engine) ? engine : engine?.ranked;
  if (list && list.length) {
    return list.slice(0, max).map((s) => ({
      from: s.from,
      to: s.to,
      score: s.relErr != null ? -s.relErr : null,
      basis:
        (s.relErr != null ? `held-out relative error ${s.relErr.toPrecision(3)}` : 'no held-out estimate') +
        (s.paramsSaved !== undefined ? `, saves ${s.paramsSaved.toLocaleString('en-US')} parameters` : ''),
    }));
  }
  const cka = report.metrics.cka;
  const L = report.blocks.length;
  const out: RankedSpan[] = [];
  for (let i = 0; i < L; i++) {
    for (let j = i + 1; j < L; j++) {
      const v = cka[i]?.[j];
      if (typeof v === 'number') out.push({ from: i, to: j, score: v, basis: `CKA(h${i}, h${j}) = ${v.toFixed(3)}` });
    }
  }
  // Prefer high similarity; among similar ones, longer spans save more.
  out.sort((a, b) => b.score! - a.score! + (b.to - b.from - (a.to - a.from)) * 1e-3);
  return out.slice(0, max);
}
