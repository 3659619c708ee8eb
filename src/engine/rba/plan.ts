// The planner: which spans to replace. One pass accumulates the normal equations of every
// candidate span; held-out fits estimate each span's fidelity; a DP picks the non-overlapping
// spans that remove K blocks with the least predicted error; the combined model is then built
// and measured for real, backing off when the measurement misses the budget.
//
// Predicted fidelity of a set S: e(S) = Σ_{s∈S} e(s), where e(s) is the span's held-out error
// carried linearly to the last block's output (SpanSolver.relErrAtLast; first order: errors of
// disjoint spans add). The final output's relative MSE is predicted as ρ·e(S) and its top-1
// disagreement as κ·e(S); ρ and κ start at 1 and are re-fit (least squares through the
// origin) from every measurement made, so later predictions lean on this model's own numbers.
import { createOrtMatmul, type MatmulBackend } from '../linalg/index.js';
import { encodeModel } from '../onnx/codec.js';
import type { LoadedModel } from '../onnx/model-file.js';
import type { SpanEntry } from '../report/schema.js';
import { openModelContext, type ModelContext, type RbaDataOptions } from './context.js';
import { checkOutputPath, defaultOutputPath, replacementFor, writeDerived } from './export.js';
import type { SpanFit } from './fit.js';
import { fitAllSpans, spanEntries } from './ranking.js';
import { runSpanPass } from './one-pass.js';
import type { SiteShape } from './span-pass.js';
import type { SpanPair, SpanStats } from './span-stats.js';
import { replaceSpans } from './surgery.js';
import { verifyModels, type VerifyResult } from './verify.js';

export interface PlanOptions extends RbaDataOptions {
  /** Budget: top-1 agreement of the final output ≥ this (default 0.99 for logits). */
  minAgreement?: number;
  /** Budget: relative MSE of the final output ≤ this (default 0.01 when the output is not logits). */
  maxRelErr?: number;
  /** No budget: the best spans removing exactly K blocks. */
  remove?: number;
  out?: string;
  force?: boolean;
  /** Write the best model found even when it misses the budget. */
  writeBest?: boolean;
  /** Do not write any file (report only). */
  dryRun?: boolean;
  budgetBytes?: number;
  /** Largest number of combined models built and measured (default 6). */
  maxMeasurements?: number;
  onProgress?: (phase: string) => void;
}

export interface PlannedSpan {
  from: number;
  to: number;
  relErr: number;
  r2: number | null;
}

export interface Measurement {
  spans: PlannedSpan[];
  blocksRemoved: number;
  predicted: { repRelErr: number; relMse: number; agreement: number | null };
  measured: Pick<VerifyResult, 'relMse' | 'cka' | 'agreement' | 'agreementKind' | 'latencyRatio' | 'cpuRatio'> & { accuracy?: number; originalAccuracy?: number };
  params: { before: number; after: number };
  sizeBytes: { before: number; after: number };
  meetsBudget: boolean;
}

export interface PlanResult {
  model: string;
  budget: { kind: 'min-agreement' | 'max-rel-err' | 'remove'; value: number };
  /** Every candidate span, ranked by held-out relative error of the linear map. */
  spans: SpanEntry[];
  excludedSpans: SpanPair[];
  measurements: Measurement[];
  /** The chosen plan (meets the budget), or null when none did. */
  chosen: Measurement | null;
  /** When nothing met the budget: the best model measured. */
  bestFound: Measurement | null;
  message: string;
  out?: string;
  samples: number;
  timings: { passMs: number; forwardMs: number; accumulateMs: number; fitMs: number; searchMs: number };
}

export { fitAllSpans, spanEntries } from './ranking.js';

/**
 * Non-overlapping spans over blocks −1..L−1 that remove exactly K blocks with the least total
 * cost (DP over the block line). `banned` spans are not used. Returns null when impossible.
 */
export function bestSet(costs: Map<string, number>, first: number, last: number, K: number, banned = new Set<string>()): SpanPair[] | null {
  // f[b][k]: least cost using blocks ≤ b with k removed; position b is "after block b".
  const n = last - first + 1;
  const INF = Infinity;
  const f: number[][] = Array.from({ length: n }, () => new Array<number>(K + 1).fill(INF));
  const back: ([number, number] | null)[][] = Array.from({ length: n }, () => new Array(K + 1).fill(null));
  f[0]![0] = 0;
  for (let p = 1; p < n; p++) {
    const b = first + p;
    for (let k = 0; k <= K; k++) {
      // Block b kept.
      if (f[p - 1]![k]! < f[p]![k]!) {
        f[p]![k] = f[p - 1]![k]!;
        back[p]![k] = null;
      }
      // A span (i, b] ends here.
      for (let q = 0; q < p; q++) {
        const i = first + q;
        const len = b - i;
        if (len > k) continue;
        const key = `${i}:${b}`;
        const c = costs.get(key);
        if (c === undefined || banned.has(key)) continue;
        const v = f[q]![k - len]! + c;
        if (v < f[p]![k]!) {
          f[p]![k] = v;
          back[p]![k] = [q, len];
        }
      }
    }
  }
  if (!Number.isFinite(f[n - 1]![K]!)) return null;
  const out: SpanPair[] = [];
  let p = n - 1;
  let k = K;
  while (p > 0) {
    const step = back[p]![k];
    if (step === null || step === undefined) {
      p--;
      continue;
    }
    const [q, len] = step;
    out.push([first + q, first + p]);
    p = q;
    k -= len;
  }
  return out.reverse();
}

/** In-memory candidate for verification: unchanged external tensors still live beside the original. */
function inMemory(ctx: ModelContext, model: LoadedModel['model']): LoadedModel {
  const bytes = encodeModel(model);
  const external = ctx.loaded.sizeBytes - ctx.loaded.bytes.length;
  return { path: '(candidate in memory)', dir: ctx.loaded.dir, bytes, model, sha256: '', sizeBytes: bytes.length + Math.max(0, external) };
}

export async function runPlan(opts: PlanOptions, matmulIn?: MatmulBackend): Promise<PlanResult> {
  const progress = opts.onProgress ?? (() => {});
  const ctx = await openModelContext(opts);
  const L = ctx.detection.blocks.length;
  if (opts.out && !opts.dryRun) await checkOutputPath(opts.out, ctx.loaded.path, !!opts.force);
  const matmul = matmulIn ?? (await createOrtMatmul());
  try {
    progress('pass');
    const t0 = performance.now();
    const pass = await runSpanPass(ctx, opts, matmul, { budgetBytes: opts.budgetBytes });
    const passMs = performance.now() - t0;
    progress('fit');
    const t1 = performance.now();
    const fits = await fitAllSpans(pass.stats, matmul);
    const fitMs = performance.now() - t1;
    opts.signal?.throwIfAborted();
    const spans = spanEntries(ctx.detection.blocks, pass.stats, fits);
    const byKey = new Map(fits.map((f) => [`${f.map.from}:${f.map.to}`, f]));
    const costs = new Map<string, number>();
    // A span's cost: its held-out error carried to the last block (falls back to its own error).
    for (const f of fits) {
      const e = f.relErrAtLast ?? f.heldOut.relErr;
      if (e !== null) costs.set(`${f.map.from}:${f.map.to}`, e);
    }
    const first = ctx.sites.has(-1) ? -1 : 0;

    const t2 = performance.now();
    progress('search');
    // Measure the original once to learn what the output is (logits or not).
    const measurements: Measurement[] = [];
    const disagreement = new Map<Measurement, number>();
    let rho = 1;
    let kappa = 1;
    const budget: PlanResult['budget'] =
      opts.remove !== undefined ? { kind: 'remove', value: opts.remove } : opts.maxRelErr !== undefined ? { kind: 'max-rel-err', value: opts.maxRelErr } : { kind: 'min-agreement', value: opts.minAgreement ?? 0.99 };
    if (budget.kind === 'remove' && (!Number.isInteger(budget.value) || budget.value < 1 || budget.value > L - first)) {
      throw Object.assign(new Error(`--remove ${budget.value}: expected 1..${L - first} blocks`), { file: ctx.loaded.path });
    }
    const predict = (set: SpanPair[]) => {
      const e = set.reduce((s, [i, j]) => s + costs.get(`${i}:${j}`)!, 0);
      return { repRelErr: e, relMse: rho * e, agreement: Math.max(0, 1 - kappa * e) };
    };
    const predictedMeets = (set: SpanPair[]): boolean => {
      const p = predict(set);
      if (budget.kind === 'max-rel-err') return p.relMse <= budget.value;
      if (budget.kind === 'min-agreement') return p.agreement >= budget.value;
      return true;
    };
    const measure = async (set: SpanPair[]): Promise<Measurement> => {
      opts.signal?.throwIfAborted();
      const fitsOf = set.map(([i, j]) => byKey.get(`${i}:${j}`)!);
      const surgery = replaceSpans(ctx.loaded.model, fitsOf.map((f) => replacementFor(ctx, pass.consumer.shapes, f)));
      const cand = inMemory(ctx, surgery.model);
      const v = await verifyModels({ ...opts, candidate: cand.path }, matmul, ctx.loaded, cand);
      const predicted = predict(set);
      const meets =
        budget.kind === 'remove'
          ? true
          : budget.kind === 'max-rel-err'
            ? v.relMse !== null && v.relMse <= budget.value
            : v.agreement !== null && v.agreement >= budget.value;
      const m: Measurement = {
        spans: set.map(([i, j]) => ({ from: i, to: j, relErr: costs.get(`${i}:${j}`)!, r2: byKey.get(`${i}:${j}`)!.heldOut.r2 })),
        blocksRemoved: set.reduce((s, [i, j]) => s + j - i, 0),
        predicted: { ...predicted, agreement: v.agreement === null ? null : predicted.agreement },
        measured: {
          relMse: v.relMse,
          cka: v.cka,
          agreement: v.agreement,
          agreementKind: v.agreementKind,
          latencyRatio: v.latencyRatio,
          cpuRatio: v.cpuRatio,
          ...(v.candidate.accuracy !== undefined ? { accuracy: v.candidate.accuracy, originalAccuracy: v.original.accuracy } : {}),
        },
        params: { before: v.original.parameters, after: v.candidate.parameters },
        sizeBytes: { before: v.original.sizeBytes, after: v.candidate.sizeBytes },
        meetsBudget: meets,
      };
      measurements.push(m);
      // Disagreement with half a pseudo-count, so a perfect small sample does not predict zero.
      disagreement.set(m, v.agreement === null ? 0 : ((1 - v.agreement) * v.positions + 0.5) / (v.positions + 1));
      // Re-fit the calibration factors on every measurement (least squares through the origin).
      const pts = measurements.filter((x) => x.predicted.repRelErr > 0);
      const ee = pts.reduce((s, x) => s + x.predicted.repRelErr ** 2, 0);
      if (ee > 0) {
        rho = pts.reduce((s, x) => s + x.predicted.repRelErr * (x.measured.relMse ?? 0), 0) / ee;
        if (v.agreement !== null) kappa = pts.reduce((s, x) => s + x.predicted.repRelErr * disagreement.get(x)!, 0) / ee;
      }
      return m;
    };

    const maxK = L - first;
    const sets = new Map<number, SpanPair[] | null>();
    const setFor = (K: number) => {
      if (!sets.has(K)) sets.set(K, bestSet(costs, first, L - 1, K));
      return sets.get(K)!;
    };
    const maxMeasure = opts.maxMeasurements ?? 6;
    let chosen: Measurement | null = null;
    if (budget.kind === 'remove') {
      const set = setFor(budget.value);
      if (set) chosen = await measure(set);
    } else {
      // Binary search on K (blocks removed), driven by measurements; the predictions choose
      // the starting K and, for each K, the spans. A K that misses gets one second chance
      // without its worst span before the search backs off below it.
      let lo = 0; // largest K known to meet
      let hi = maxK + 1; // smallest K known to miss
      let start = 0;
      for (let k = maxK; k >= 1; k--) {
        const s = setFor(k);
        if (s && predictedMeets(s)) {
          start = k;
          break;
        }
      }
      let K = Math.max(1, start);
      while (measurements.length < maxMeasure && K > lo && K < hi) {
        const set = setFor(K);
        let met = false;
        if (set) {
          const m = await measure(set);
          met = m.meetsBudget;
          if (met) chosen = !chosen || K > chosen.blocksRemoved ? m : chosen;
          else if (measurements.length < maxMeasure) {
            const worst = [...set].sort((a, b) => costs.get(`${b[0]}:${b[1]}`)! - costs.get(`${a[0]}:${a[1]}`)!)[0]!;
            const alt = bestSet(costs, first, L - 1, K, new Set([`${worst[0]}:${worst[1]}`]));
            if (alt) {
              const m2 = await measure(alt);
              met = m2.meetsBudget;
              if (met) chosen = !chosen || K > chosen.blocksRemoved ? m2 : chosen;
            }
          }
        }
        if (met) lo = K;
        else hi = K;
        K = Math.floor((lo + hi) / 2);
      }
    }
    const searchMs = performance.now() - t2;
    const bestFound = chosen ?? [...measurements].sort((a, b) => (b.measured.agreement ?? -(b.measured.relMse ?? Infinity)) - (a.measured.agreement ?? -(a.measured.relMse ?? Infinity)))[0] ?? null;
    const budgetText = budget.kind === 'min-agreement' ? `top-1 agreement ≥ ${budget.value}` : budget.kind === 'max-rel-err' ? `output relative MSE ≤ ${budget.value}` : `${budget.value} blocks removed`;
    let message: string;
    let out: string | undefined;
    const target = chosen ?? (opts.writeBest ? bestFound : null);
    if (chosen) {
      message = `plan: replace ${chosen.spans.map((s) => `${s.from}→${s.to}`).join(', ')} (${chosen.blocksRemoved} of ${L} blocks removed); measured ${describe(chosen)} meets ${budgetText}`;
    } else if (bestFound) {
      message = `no combination of spans meets ${budgetText}: the best found, ${bestFound.spans.map((s) => `${s.from}→${s.to}`).join(', ')}, measured ${describe(bestFound)}${opts.writeBest ? '' : '; nothing written (pass --write-best to write it anyway)'}`;
    } else {
      message = `no combination of spans meets ${budgetText}: no span could even be fitted; nothing written`;
    }
    if (target && !opts.dryRun) {
      const file = opts.out ?? defaultOutputPath(ctx.loaded.path, target.spans);
      await checkOutputPath(file, ctx.loaded.path, !!opts.force);
      const surgery = replaceSpans(ctx.loaded.model, target.spans.map((s) => replacementFor(ctx, pass.consumer.shapes, byKey.get(`${s.from}:${s.to}`)!)));
      out = (await writeDerived(ctx, surgery.model, file, opts.signal)).path;
    }
    return {
      model: ctx.loaded.path,
      budget,
      spans,
      excludedSpans: pass.consumer.excluded,
      measurements,
      chosen,
      bestFound: chosen ? null : bestFound,
      message,
      ...(out ? { out } : {}),
      samples: pass.samples,
      timings: { passMs, forwardMs: pass.forwardMs, accumulateMs: pass.accumulateMs, fitMs, searchMs },
    };
  } finally {
    if (!matmulIn) await matmul.dispose();
  }
}

function describe(m: Measurement): string {
  const parts: string[] = [];
  if (m.measured.agreement !== null) parts.push(`${m.measured.agreementKind === 'next-token' ? 'next-token' : 'top-1'} agreement ${(100 * m.measured.agreement).toFixed(2)}%`);
  if (m.measured.relMse !== null) parts.push(`output rel. MSE ${m.measured.relMse.toExponential(2)}`);
  return parts.join(', ');
}

export type { SiteShape };
