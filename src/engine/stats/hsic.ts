// Unbiased minibatch CKA (Nguyen et al. 2021) as mergeable sums over fixed runs of sample ids.
//
// Run r holds the samples with ids r·m … r·m + m − 1 (m = min(256, N) samples; under tokens
// pooling m = max(1, floor(256 / P)) samples of P positions each, so a run holds ≤ 256 rows).
// Ids from floor(N/m)·m on are dropped (the short tail). When every sample of a run has been
// seen, its rows (ordered by id, then position) are centred, the Gram matrix of each block is
// formed (MatmulBackend) and the HSIC₁ of every pair is added to Σ_runs HSIC(X_i, X_j); the rows
// are then released. A run cut by a shard boundary stays pending (its rows are part of the
// snapshot) until the merge brings its other part, then it is completed in `finalize`.
//
// Bytes: 8·(L² + L) for the sums, plus the pending rows: ≤ 2 runs × 256 rows × Σ_b d_b × 4
// (the run being filled, and one cut at the start of a shard's range).

import type { MatmulBackend } from '../linalg/matmul.js';
import { decodeF32, decodeF64, decodeI32, encodeArray } from '../pass/snapshot.js';
import type { Matrix } from '../report/schema.js';
import { dot, hsic1FromParts, HSIC_ZERO_RELATIVE, zeroDiagParts, type ZeroDiagGram } from './cka.js';
import { nullMatrix } from './pairwise.js';

export const UNBIASED_BATCH = 256;

interface PendingRun {
  ids: number[];
  positions: number[];
  /** Per block: rows in arrival order (Float32, width d_b). */
  rows: number[][];
  samples: Set<number>;
}

export interface HsicResult {
  matrix: Matrix;
  runs: number;
  /** Samples per run. */
  runSamples: number;
  /** Samples dropped at the tail. */
  dropped: number;
  nonPositive: number[];
  tooSmall: boolean;
}

export interface RowsWithIds {
  data: ArrayLike<number>;
  width: number;
}

export class HsicAccumulator {
  /** Samples per run (set by the first batch under tokens pooling). */
  m: number | null;
  private sums: Float64Array;
  private scale: Float64Array;
  private runsDone = 0;
  private runsSkipped = 0;
  private widths: (number | null)[];
  private pending = new Map<number, PendingRun>();

  constructor(readonly blocks: number, readonly totalSamples: number, readonly batch = UNBIASED_BATCH, runSamples?: number) {
    this.sums = new Float64Array(blocks * blocks);
    this.scale = new Float64Array(blocks);
    this.widths = new Array<number | null>(blocks).fill(null);
    this.m = runSamples ?? null;
  }

  /** Fixes the run length from the positions per sample (1 unless rows are tokens). */
  setPositions(perSample: number): void {
    const m = perSample <= 1 ? Math.min(this.batch, this.totalSamples) : Math.max(1, Math.floor(this.batch / perSample));
    if (this.m === null) this.m = m;
    else if (this.m !== m) throw new Error(`unbiased CKA: runs of ${m} samples differ from ${this.m}`);
  }

  get runs(): number {
    return this.m ? Math.floor(this.totalSamples / this.m) : 0;
  }

  /** Rows of one batch for every block (same rows), with their sample ids and positions. */
  async add(blocks: RowsWithIds[], ids: ArrayLike<number>, positions: ArrayLike<number> | undefined, matmul: MatmulBackend): Promise<void> {
    if (this.m === null) this.setPositions(1);
    const m = this.m!;
    const runs = this.runs;
    blocks.forEach((b, i) => {
      if (this.widths[i] === null) this.widths[i] = b.width;
      else if (this.widths[i] !== b.width) throw new Error(`unbiased CKA: block ${i} width ${b.width} differs from ${this.widths[i]}`);
    });
    const touched = new Set<number>();
    for (let r = 0; r < ids.length; r++) {
      const id = ids[r]!;
      const run = Math.floor(id / m);
      if (run >= runs) continue;
      let p = this.pending.get(run);
      if (!p) {
        p = { ids: [], positions: [], rows: blocks.map(() => []), samples: new Set() };
        this.pending.set(run, p);
      }
      p.ids.push(id);
      p.positions.push(positions ? positions[r]! : 0);
      p.samples.add(id);
      blocks.forEach((b, i) => {
        const dst = p!.rows[i]!;
        for (let k = 0; k < b.width; k++) dst.push(b.data[r * b.width + k]!);
      });
      touched.add(run);
    }
    for (const run of touched) {
      const p = this.pending.get(run)!;
      if (p.samples.size === m) {
        this.pending.delete(run);
        await this.complete(p, matmul);
      }
    }
  }

  private async complete(p: PendingRun, matmul: MatmulBackend): Promise<void> {
    const L = this.blocks;
    const n = p.ids.length;
    if (n < 4) {
      // Too few rows for HSIC₁ (runs of < 4 samples, or heavy padding under tokens pooling).
      this.runsSkipped++;
      return;
    }
    const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => p.ids[a]! - p.ids[b]! || p.positions[a]! - p.positions[b]!);
    const parts: ZeroDiagGram[] = [];
    for (let b = 0; b < L; b++) {
      const d = this.widths[b]!;
      const src = p.rows[b]!;
      const x = new Float64Array(n * d);
      const mean = new Float64Array(d);
      order.forEach((from, to) => {
        for (let k = 0; k < d; k++) {
          const v = src[from * d + k]!;
          x[to * d + k] = v;
          mean[k] += v;
        }
      });
      for (let k = 0; k < d; k++) mean[k] /= n;
      for (let r = 0; r < n; r++) for (let k = 0; k < d; k++) x[r * d + k] -= mean[k]!;
      parts.push(zeroDiagParts(await matmul.abt(x, n, x, n, d), n));
    }
    for (let i = 0; i < L; i++) {
      const pi = parts[i]!;
      for (let j = i; j < L; j++) {
        const pj = parts[j]!;
        const tr = dot(pi.k, pj.k);
        if (i === j) this.scale[i] += tr / (n * (n - 3));
        this.sums[i * L + j] += hsic1FromParts(tr, pi.total, pj.total, pi.rows, pj.rows, n);
      }
    }
    this.runsDone++;
  }

  snapshot(): Record<string, unknown> {
    return {
      blocks: this.blocks, totalSamples: this.totalSamples, batch: this.batch, m: this.m, widths: this.widths,
      runsDone: this.runsDone, runsSkipped: this.runsSkipped, sums: encodeArray(this.sums), scale: encodeArray(this.scale),
      pending: [...this.pending.entries()].map(([run, p]) => ({
        run,
        ids: encodeArray(Int32Array.from(p.ids)),
        positions: encodeArray(Int32Array.from(p.positions)),
        rows: p.rows.map((r) => encodeArray(Float32Array.from(r))),
      })),
    };
  }

  merge(s: Record<string, unknown>): void {
    if (s.blocks !== this.blocks || s.totalSamples !== this.totalSamples || s.batch !== this.batch) throw new Error('unbiased CKA: settings differ');
    if (s.m !== null && s.m !== undefined) {
      if (this.m !== null && this.m !== s.m) throw new Error(`unbiased CKA: runs of ${String(s.m)} samples differ from ${this.m}`);
      this.m = s.m as number;
    }
    (s.widths as (number | null)[]).forEach((w, i) => {
      if (w === null) return;
      if (this.widths[i] !== null && this.widths[i] !== w) throw new Error(`unbiased CKA: block ${i} widths differ`);
      this.widths[i] = w;
    });
    const sums = decodeF64(s.sums, 'sums');
    const scale = decodeF64(s.scale, 'scale');
    for (let i = 0; i < sums.length; i++) this.sums[i] += sums[i]!;
    for (let i = 0; i < scale.length; i++) this.scale[i] += scale[i]!;
    this.runsDone += s.runsDone as number;
    this.runsSkipped += (s.runsSkipped as number) ?? 0;
    for (const e of s.pending as { run: number; ids: unknown; positions: unknown; rows: unknown[] }[]) {
      const ids = decodeI32(e.ids, 'pending ids');
      const positions = decodeI32(e.positions, 'pending positions');
      let p = this.pending.get(e.run);
      if (!p) {
        p = { ids: [], positions: [], rows: Array.from({ length: this.blocks }, () => []), samples: new Set() };
        this.pending.set(e.run, p);
      }
      const before = new Set(p.samples);
      for (const id of ids) if (before.has(id)) throw new Error(`unbiased CKA: sample ${id} appears in two partials`);
      p.ids.push(...ids);
      p.positions.push(...positions);
      for (const id of ids) p.samples.add(id);
      e.rows.forEach((r, i) => p!.rows[i]!.push(...decodeF32(r, 'pending rows')));
    }
  }

  async finalize(matmul: MatmulBackend, live: boolean[], signal?: AbortSignal): Promise<HsicResult> {
    const L = this.blocks;
    const m = this.m ?? Math.min(this.batch, this.totalSamples);
    const runs = this.runs;
    const result: HsicResult = { matrix: nullMatrix(L), runs, runSamples: m, dropped: this.totalSamples - runs * m, nonPositive: [], tooSmall: false };
    for (const [run, p] of [...this.pending.entries()].sort((a, b) => a[0] - b[0])) {
      signal?.throwIfAborted();
      if (p.samples.size === m) {
        this.pending.delete(run);
        await this.complete(p, matmul);
      }
    }
    const B = this.runsDone;
    if (B === 0) {
      result.tooSmall = true;
      return result;
    }
    const h = (i: number, j: number) => this.sums[Math.min(i, j) * L + Math.max(i, j)]! / B;
    const ok: boolean[] = [];
    for (let i = 0; i < L; i++) {
      const good = live[i]! && h(i, i) > HSIC_ZERO_RELATIVE * (this.scale[i]! / B);
      ok.push(good);
      if (live[i] && !good) result.nonPositive.push(i);
      if (good) result.matrix[i]![i] = 1;
    }
    for (let i = 0; i < L; i++) {
      for (let j = i + 1; j < L; j++) {
        if (!ok[i] || !ok[j]) continue;
        const v = h(i, j) / Math.sqrt(h(i, i) * h(j, j));
        if (!Number.isFinite(v)) continue;
        result.matrix[i]![j] = result.matrix[j]![i] = v;
      }
    }
    return result;
  }
}
