// Report-derived facts the views share: which matrices exist, the ranked spans (tolerant of a
// report without them), the default selection.
import type { AnalysisReport, Matrix } from '../../src/engine/report/schema.js';
import { finite } from './format.js';

export type MetricKey = 'cka' | 'ckaUnbiased' | 'cosine' | 'brMatrix';

export interface MetricSpec {
  key: MetricKey;
  label: string;
  title: string;
  about: string;
  scale: 'unit' | 'cosine' | 'log';
}

export const METRICS: MetricSpec[] = [
  { key: 'cka', label: 'CKA', title: 'Linear CKA', about: 'Biased estimator on the full calibration set. 1 = same representation up to rotation and scale.', scale: 'unit' },
  { key: 'ckaUnbiased', label: 'Unbiased CKA', title: 'Unbiased CKA (minibatch)', about: 'Nguyen et al. estimator averaged over batches; the input to MSRS. May dip slightly below 0.', scale: 'unit' },
  { key: 'cosine', label: 'Cosine', title: 'Cosine similarity', about: 'Mean cosine between the pooled outputs of two blocks for the same input.', scale: 'cosine' },
  { key: 'brMatrix', label: 'BR', title: 'BR matrix', about: '−mean squared difference between block outputs of equal width; 0 = identical. Colour on a log scale of |BR|.', scale: 'log' },
];

export function matrixOf(r: AnalysisReport, key: MetricKey): Matrix {
  return r.metrics[key];
}

/**
 * A span i→j as the RBA issue names it: a map from block `from`'s output to block `to`'s output,
 * replacing blocks from+1 … to. `from` = −1 means block 0's input.
 */
export interface Span {
  from: number;
  to: number;
}

/** Cell (i, j) of a block-by-block matrix → the span between the two blocks; a diagonal cell → that one block. */
export function spanOfCell(i: number, j: number): Span {
  if (i === j) return { from: i - 1, to: i };
  return { from: Math.min(i, j), to: Math.max(i, j) };
}

export function sameSpan(a: Span | null | undefined, b: Span | null | undefined): boolean {
  return !!a && !!b && a.from === b.from && a.to === b.to;
}

/** One row of the report's ranked `spans` list, read defensively (the field is optional and newer than schema v1). */
export interface SpanRow extends Span {
  rank: number;
  relErr: number | null;
  r2: number | null;
  /** The map's error carried to the last block's output (what the planner ranks by), when reported. */
  relErrAtLast: number | null;
  skipRelErr: number | null;
  skipR2: number | null;
  paramsSaved: number | null;
  estimate: string | null;
  /** Rows the fit was trained and scored on. */
  rows: { train: number | null; heldOut: number | null } | null;
}

function num(v: unknown): number | null {
  return finite(v) ? v : null;
}

function readRows(v: unknown): SpanRow['rows'] {
  if (finite(v)) return { train: v, heldOut: null };
  if (v && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    return { train: num(o.train), heldOut: num(o.heldOut) };
  }
  return null;
}

/** Spans the report says were left out (memory budget), as [from, to]. */
export function readExcludedSpans(r: AnalysisReport): number {
  const raw = (r as unknown as { spansExcluded?: unknown }).spansExcluded;
  return Array.isArray(raw) ? raw.length : 0;
}

export function readSpans(r: AnalysisReport): SpanRow[] {
  const raw = (r as unknown as { spans?: unknown }).spans;
  const list = Array.isArray(raw) ? raw : Array.isArray((raw as { ranked?: unknown })?.ranked) ? ((raw as { ranked: unknown[] }).ranked) : [];
  const out: SpanRow[] = [];
  for (const item of list) {
    if (!item || typeof item !== 'object') continue;
    const o = item as Record<string, unknown>;
    const from = num(o.from);
    const to = num(o.to);
    if (from === null || to === null) continue;
    const linear = (o.linear && typeof o.linear === 'object' ? o.linear : o) as Record<string, unknown>;
    const skip = (o.skip && typeof o.skip === 'object' ? o.skip : {}) as Record<string, unknown>;
    const est = o.estimate;
    out.push({
      from,
      to,
      rank: out.length + 1,
      relErr: num(linear.relErr),
      r2: num(linear.r2),
      relErrAtLast: num(o.relErrAtLast),
      skipRelErr: num(skip.relErr ?? o.skipRelErr),
      skipR2: num(skip.r2 ?? o.skipR2),
      paramsSaved: num(o.paramsSaved ?? o.parametersSaved ?? o.savedParameters),
      estimate: typeof est === 'string' ? est : est && typeof est === 'object' && typeof (est as { kind?: unknown }).kind === 'string' ? (est as { kind: string }).kind : null,
      rows: readRows(o.rows),
    });
  }
  return out;
}

/** Indices of the k blocks with the least change by a per-block measure (`plot` maps to "change"). */
export function leastChange(values: (number | null)[], plot: (v: number) => number, k: number): number[] {
  return values
    .map((v, i) => ({ v, i }))
    .filter((x): x is { v: number; i: number } => finite(x.v))
    .sort((a, b) => plot(a.v) - plot(b.v) || a.i - b.i)
    .slice(0, k)
    .map((x) => x.i);
}

export function highlightCount(L: number): number {
  return Math.max(1, Math.min(3, Math.round(L / 6)));
}
