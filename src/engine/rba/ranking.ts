// The ranked span list of the analysis report (DESIGN §2, issue 7): every accumulated span
// fitted with the linear map, its held-out quality, the same for skip, and parameters saved.
import type { MatmulBackend } from '../linalg/matmul.js';
import type { SpanEntry } from '../report/schema.js';
import { SpanSolver, type SpanFit } from './fit.js';
import type { SpanEstimate, SpanStats } from './span-stats.js';

/** The ranked `spans` list of the analysis report, from fits of every accumulated pair. */
export function spanEntries(blocks: { index: number; parameters: number }[], stats: SpanStats | ((from: number) => SpanEstimate), fits: (SpanFit & { relErrAtLast?: number | null })[]): SpanEntry[] {
  const removedParams = (from: number, to: number) => blocks.filter((b) => b.index > from && b.index <= to).reduce((s, b) => s + b.parameters, 0);
  const entries: SpanEntry[] = fits.map((f) => ({
    ...(f.relErrAtLast !== undefined ? { relErrAtLast: f.relErrAtLast } : {}),
    from: f.map.from,
    to: f.map.to,
    blocksRemoved: f.map.to - f.map.from,
    relErr: f.heldOut.relErr,
    r2: f.heldOut.r2,
    skipRelErr: f.skip?.heldOut.relErr ?? null,
    skipR2: f.skip?.heldOut.r2 ?? null,
    paramsSaved: removedParams(f.map.from, f.map.to) - f.map.params,
    // The rows of a span are its start block's (both ends share the grid).
    estimate: typeof stats === 'function' ? stats(f.map.from) : (stats.estimates.get(f.map.from) ?? stats.estimate),
    rows: { train: f.train.rows, heldOut: f.heldOut.rows },
  }));
  const key = (e: SpanEntry) => e.relErrAtLast ?? e.relErr ?? Infinity;
  return entries.sort((a, b) => key(a) - key(b) || b.blocksRemoved - a.blocksRemoved);
}

/** Fits every accumulated span with the linear map. */
export async function fitAllSpans(stats: SpanStats, matmul: MatmulBackend): Promise<(SpanFit & { relErrAtLast: number | null })[]> {
  const solver = new SpanSolver(stats, matmul);
  const last = Math.max(...stats.config.sites.map((s) => s.block));
  const fits: (SpanFit & { relErrAtLast: number | null })[] = [];
  for (const [i, j] of stats.config.pairs) {
    const f = await solver.fit(i, j, { method: 'linear' });
    fits.push({ ...f, relErrAtLast: await solver.relErrAtLast(f, last) });
  }
  return fits;
}

