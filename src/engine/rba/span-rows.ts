// The analysis pass's estimate of every RBA span (issue 7's ranked list), at a bounded cost in
// time and memory (issue 9): a seeded sample of token rows of every block output, gathered
// inside the ONNX graph (model/row-samples.ts), kept as float32 rows, and fitted at the end with
// the same normal equations and solver as `blocklens rba` (span-stats.ts, fit.ts), one start
// block at a time. `blocklens rba` then fits the chosen span on every token.
//
// Which rows: sample id s gets m = clamp(⌊R₀/N⌋, 1, 64) draws j (R₀ = 4096); draw j has the key
// hash(seed, j, s) and the position u_j = frac(u₀ + j/m), u₀ = hash(seed', s) ∈ [0, 1): row
// floor(u_j·T) of a block with T positions per sample (systematic sampling: when m ≥ T every
// position is drawn, and the estimate is exact). A draw is kept when its key < R/(N·m), R the
// row budget, so at most about R rows are kept whatever N is, and everything is a function of
// (seed, id): shards keep exactly the rows of the single run and their merge is the union. Rows at padding positions
// (attention mask 0) do not count for that block. Per start block, rows repeating a (sample,
// position) are counted once.
//
// Memory: (4·D + 4·S + ~64) bytes per kept row (D = Σ widths of the S sites), at most R rows,
// R = min(4096, budget / that); fitting adds one start block's normal equations at a time
// (8·(d+1)·(d+1+Σ_j d_j) per split) and, per block, the d×d_last tail map.
// Time: the gathers are O(k·d) per batch inside ONNX Runtime; the fit is Σ_i R·(d_i+1)·(d_i+1+Σ_j d_j)
// float64 multiply-adds in ONNX Runtime and one (d+1)³ inverse per start block.
import { createNormalEquations, type NormalEquations } from '../linalg/ort-matmul.js';
import type { MatmulBackend } from '../linalg/matmul.js';
import { decodeF32, decodeI32, encodeArray } from '../pass/snapshot.js';
import type { FinalizeContext, PassBatch, PassConsumer, PassContext, RowDraws, Snapshot, TensorRequest } from '../pass/types.js';
import { deriveSeed, hashUniform } from '../random.js';
import { carriedRelErr, SpanSolver, tailInfo, type SpanFit, type TailInfo } from './fit.js';
import { rowCompatible, sitesOf, type SiteShape } from './span-pass.js';
import { DEFAULT_HELD_OUT, isHeldOut, pairKey, SpanStats, type SpanEstimate, type SpanPair } from './span-stats.js';
import type { RowLayout } from '../model/row-samples.js';

/** Most rows kept (before the byte budget). */
export const MAX_SPAN_ROWS = 4096;
/** Bytes the kept rows may take. */
export const DEFAULT_SPAN_ROW_BUDGET = 48 * 2 ** 20;
const MAX_DRAWS_PER_SAMPLE = 64;

export interface SpanRowsOptions {
  seed?: number;
  heldOut?: number;
  budgetBytes?: number;
  maxRows?: number;
  file?: string;
}

interface Site {
  block: number;
  tensor: string;
  width: number;
  layout: RowLayout;
  /** Canonical dims: [N, d], [N, T, d] or [N, C, H, W] (N as seen in the first batch). */
  dims: number[];
  /** Positions per sample (1 for [N, d]). */
  positions: number;
}

interface Row {
  id: number;
  draw: number;
  /** Per site: position of the row, or −1 when it is padding there. */
  pos: Int32Array;
  x: Float32Array;
}

export interface SpanRowsResult {
  fits: (SpanFit & { relErrAtLast: number | null })[];
  estimates: Map<number, SpanEstimate>;
  warnings: string[];
}

const canonical = (layout: RowLayout, d: number[]): number[] =>
  layout === 'tnd' ? [d[1]!, d[0]!, d[2]!] : layout === 'nhwc' ? [d[0]!, d[3]!, d[1]!, d[2]!] : d;

/** Bytes of the float64 copy of Y that one normal-equations call may make. */
const FIT_GROUP_BYTES = 16 * 2 ** 20;

/** Consecutive partners in groups whose n × Σd float64 stays under FIT_GROUP_BYTES (at least one each). */
function partnerGroups<T extends { width: number }>(partners: T[], n: number): T[][] {
  const groups: T[][] = [];
  let cur: T[] = [];
  let bytes = 0;
  for (const p of partners) {
    const b = 8 * n * p.width;
    if (cur.length && bytes + b > FIT_GROUP_BYTES) {
      groups.push(cur);
      cur = [];
      bytes = 0;
    }
    cur.push(p);
    bytes += b;
  }
  if (cur.length) groups.push(cur);
  return groups;
}

export class SpanRowsConsumer implements PassConsumer<SpanRowsResult> {
  readonly name = 'rba-span-rows';
  /** Why spans are not estimated (no block output of a rank RBA maps). */
  disabled?: string;
  private sites: Site[] | null = null;
  private siteTensors = new Map<number, string>();
  private rows: Row[] = [];
  private total = 0;
  private draws = 1;
  private pending?: { first: number; keys: Float64Array; sample: Int32Array; draw: Int32Array; dummy: boolean };
  private readonly maxRows: number;
  private readonly keySeeds: number[] = [];
  private posSeed = 0;

  constructor(readonly matmul: MatmulBackend, readonly opts: SpanRowsOptions = {}) {
    this.maxRows = opts.maxRows ?? MAX_SPAN_ROWS;
  }

  private setTotal(total: number): void {
    this.total = total;
    this.draws = Math.max(1, Math.min(MAX_DRAWS_PER_SAMPLE, Math.floor(this.maxRows / Math.max(1, total))));
    const seed = this.opts.seed ?? 0;
    this.keySeeds.length = 0;
    for (let j = 0; j < this.draws; j++) this.keySeeds.push(deriveSeed(seed, 'span-rows-key', j));
    this.posSeed = deriveSeed(seed, 'span-rows-position');
  }

  /** Rows kept (by key) once the sites, hence the bytes per row, are known. */
  private get rowBudget(): number {
    if (!this.sites) return this.maxRows;
    const D = this.sites.reduce((a, s) => a + s.width, 0);
    const perRow = 4 * D + 4 * this.sites.length + 64;
    return Math.max(1, Math.min(this.maxRows, Math.floor((this.opts.budgetBytes ?? DEFAULT_SPAN_ROW_BUDGET) / perRow)));
  }

  private threshold(budget: number): number {
    return budget / (Math.max(1, this.total) * this.draws);
  }

  private keyOf(id: number, draw: number): number {
    return hashUniform(this.keySeeds[draw]!, id);
  }

  requests(ctx: PassContext): TensorRequest[] {
    this.setTotal(ctx.totalSamples);
    this.siteTensors = sitesOf(ctx);
    return [{ kind: 'rows', id: this.name, tensors: [...this.siteTensors.values()], draws: (first, size) => this.drawsFor(first, size) }];
  }

  private drawsFor(first: number, size: number): RowDraws {
    const t = this.threshold(this.rowBudget);
    const sample: number[] = [];
    const draw: number[] = [];
    const keys: number[] = [];
    const u: number[] = [];
    for (let b = 0; b < size; b++) {
      const u0 = hashUniform(this.posSeed, first + b);
      for (let j = 0; j < this.draws; j++) {
        const key = this.keyOf(first + b, j);
        if (key >= t) continue;
        sample.push(b);
        draw.push(j);
        keys.push(key);
        // Systematic: the m draws of a sample sit 1/m apart from a random start, so every
        // position is drawn when m ≥ T and each position has the same chance otherwise.
        const v = u0 + j / this.draws;
        u.push(Math.min(v >= 1 ? v - 1 : v, 0.99999994)); // < 1 in float32
      }
    }
    const dummy = sample.length === 0;
    if (dummy) {
      sample.push(0);
      draw.push(0);
      keys.push(1);
      u.push(0);
    }
    this.pending = { first, keys: Float64Array.from(keys), sample: Int32Array.from(sample), draw: Int32Array.from(draw), dummy };
    return { sample: Int32Array.from(sample), u: Float32Array.from(u) };
  }

  onBatch(batch: PassBatch, ctx: PassContext): void {
    if (this.disabled) return;
    const out = batch.rows(this.name);
    const p = this.pending;
    if (!p || p.first !== batch.first) throw new Error('internal: span rows arrived without their draws');
    this.pending = undefined;
    if (!this.sites) {
      const blockOf = new Map([...this.siteTensors].map(([b, t]) => [t, b]));
      const sites: Site[] = out.map((o) => {
        const dims = canonical(o.layout, o.dims);
        return { block: blockOf.get(o.tensor)!, tensor: o.tensor, width: o.width, layout: o.layout, dims, positions: dims.length === 3 ? dims[1]! : dims.length === 4 ? dims[2]! * dims[3]! : 1 };
      });
      sites.sort((a, b) => a.block - b.block);
      if (sites.length < 2) {
        this.disabled = 'fewer than two block outputs could be sampled (they must be [N, d], [N, T, d] or [N, C, H, W] tensors, in a model of opset 7 or later)';
        return;
      }
      this.sites = sites;
    }
    if (p.dummy) return;
    const sites = this.sites;
    const byTensor = new Map(out.map((o) => [o.tensor, o]));
    const mask = ctx.maskInput ? batch.feeds[ctx.maskInput] : undefined;
    const maskT = mask && mask.dims.length === 2 ? mask.dims[1]! : -1;
    const t = this.threshold(this.rowBudget);
    const D = sites.reduce((a, s) => a + s.width, 0);
    for (let r = 0; r < p.keys.length; r++) {
      if (p.keys[r]! >= t) continue;
      const x = new Float32Array(D);
      const pos = new Int32Array(sites.length);
      let o = 0;
      sites.forEach((s, k) => {
        const o2 = byTensor.get(s.tensor)!;
        if (o2.width !== s.width) throw Object.assign(new Error(`block ${s.block} output '${s.tensor}' changed width from ${s.width} to ${o2.width}`), { file: this.opts.file });
        x.set(o2.data.subarray(r * s.width, (r + 1) * s.width), o);
        o += s.width;
        const at = o2.positions ? Number(o2.positions[r]!) : 0;
        // Padding (mask 0) at this position of a sequence block of the mask's length.
        const seqLen = o2.layout === 'ntd' ? o2.dims[1] : o2.layout === 'tnd' ? o2.dims[0] : -1;
        pos[k] = mask && seqLen === maskT && Number(mask.data[p.sample[r]! * maskT + at]) === 0 ? -1 : at;
      });
      this.rows.push({ id: batch.first + p.sample[r]!, draw: p.draw[r]!, pos, x });
    }
  }

  snapshot(): Snapshot {
    if (this.disabled) return { disabled: this.disabled };
    const sites = this.sites;
    const D = sites ? sites.reduce((a, s) => a + s.width, 0) : 0;
    const S = sites?.length ?? 0;
    const data = new Float32Array(this.rows.length * D);
    const pos = new Int32Array(this.rows.length * S);
    this.rows.forEach((r, k) => {
      data.set(r.x, k * D);
      pos.set(r.pos, k * S);
    });
    return {
      total: this.total, maxRows: this.maxRows, sites: sites ?? null,
      ids: encodeArray(Int32Array.from(this.rows, (r) => r.id)), draws: encodeArray(Int32Array.from(this.rows, (r) => r.draw)),
      positions: encodeArray(pos), data: encodeArray(data),
    };
  }

  merge(s: Snapshot): void {
    if (typeof s.disabled === 'string') {
      this.disabled ??= s.disabled;
      return;
    }
    if (s.maxRows !== this.maxRows) throw new Error('RBA span rows: the shards used different row budgets');
    if (this.total === 0) this.setTotal(s.total as number);
    else if (s.total !== this.total) throw new Error('RBA span rows: the shards name different sample counts');
    const sites = s.sites as Site[] | null;
    if (!sites) return;
    if (!this.sites) this.sites = sites;
    else if (JSON.stringify(sites.map((x) => [x.block, x.width, x.dims.slice(1)])) !== JSON.stringify(this.sites.map((x) => [x.block, x.width, x.dims.slice(1)]))) {
      throw new Error('RBA span rows: the shards saw different block outputs');
    }
    const D = sites.reduce((a, x) => a + x.width, 0);
    const S = sites.length;
    const ids = decodeI32(s.ids, 'span row ids');
    const draws = decodeI32(s.draws, 'span row draws');
    const pos = decodeI32(s.positions, 'span row positions');
    const data = decodeF32(s.data, 'span rows');
    const have = new Set(this.rows.map((r) => `${r.id}:${r.draw}`));
    for (let k = 0; k < ids.length; k++) {
      if (have.has(`${ids[k]}:${draws[k]}`)) throw new Error(`RBA span rows: sample ${ids[k]} appears in two partials`);
      this.rows.push({ id: ids[k]!, draw: draws[k]!, pos: pos.slice(k * S, (k + 1) * S), x: data.slice(k * D, (k + 1) * D) });
    }
  }

  /** Every row-compatible span fitted from the kept rows, one start block at a time. */
  async finalize(ctx?: FinalizeContext): Promise<SpanRowsResult> {
    const warnings: string[] = [];
    const sites = this.sites;
    if (this.disabled || !sites) return { fits: [], estimates: new Map(), warnings };
    const matmul = ctx?.matmul ?? this.matmul;
    // The byte budget (known once the widths were) bounds the rows: keep those under its key.
    const t = this.threshold(this.rowBudget);
    const rows = this.rows.filter((r) => this.keyOf(r.id, r.draw) < t).sort((a, b) => a.id - b.id || a.draw - b.draw);
    const shapes = new Map<number, SiteShape>(sites.map((s) => [s.block, { block: s.block, tensor: s.tensor, dims: s.dims, width: s.width, type: 'float32' }]));
    const index = new Map(sites.map((s, k) => [s.block, k]));
    const offset = new Map<number, number>();
    sites.reduce((o, s) => (offset.set(s.block, o), o + s.width), 0);
    const last = sites[sites.length - 1]!.block;
    const heldOut = this.opts.heldOut ?? DEFAULT_HELD_OUT;
    const seed = this.opts.seed ?? 0;
    const estimates = new Map<number, SpanEstimate>();
    const tails = new Map<number, TailInfo>();
    const fits: (SpanFit & { relErrAtLast: number | null })[] = [];
    const thin: { block: number; rows: number; width: number; spans: number }[] = [];
    let normal: NormalEquations | undefined;
    try {
    for (const si of [...sites].reverse()) {
      const i = si.block;
      const partners = sites.filter((sj) => sj.block > i && rowCompatible(shapes.get(i)!, shapes.get(sj.block)!) === null);
      if (!partners.length) continue;
      // Rows valid at i, a (sample, position) once.
      const k = index.get(i)!;
      const seen = new Set<string>();
      const mine = rows.filter((r) => {
        const p = r.pos[k]!;
        if (p < 0) return false;
        const key = `${r.id}:${p}`;
        if (seen.has(key)) return false;
        seen.add(key);
        return true;
      });
      if (!mine.length) continue;
      // Fewer training rows than twice the map's parameters per output: the fit would mostly
      // show the ridge, not the block (and at widths like 1408 its O(d³) solve alone takes
      // seconds per span). Such spans are left to `blocklens rba`, which uses every token.
      const trainCount = mine.reduce((a, r) => a + (isHeldOut(seed, r.id, heldOut) ? 0 : 1), 0);
      if (trainCount < 2 * (si.width + 1)) {
        thin.push({ block: i, rows: trainCount, width: si.width, spans: partners.length });
        continue;
      }
      // Every (unmasked) position is a row when a sample's draws cover its positions and none is dropped.
      const everyToken = this.draws >= si.positions && t >= 1;
      estimates.set(i, si.layout === 'vector' ? 'pooled' : everyToken ? 'tokens' : 'token-subsample');
      const members = [si, ...partners];
      const stats = new SpanStats({
        sites: members.map((s) => ({ block: s.block, tensor: s.tensor, width: s.width })),
        pairs: partners.map((s) => [i, s.block] as SpanPair),
        heldOut,
        seed,
      });
      // The normal equations of both splits in ONNX Runtime (rows cast to float64 in the graph),
      // the partners in groups that keep each call's float64 copy of Y under FIT_GROUP_BYTES.
      const oi = offset.get(i)!;
      const dx = si.width + 1;
      for (const [sums, want] of [[stats.train, false], [stats.heldOut, true]] as const) {
        ctx?.signal?.throwIfAborted();
        const sel = mine.filter((r) => isHeldOut(seed, r.id, heldOut) === want);
        const n = sel.length;
        for (const s of members) sums.rows.set(s.block, n);
        if (n === 0) continue;
        const x = new Float32Array(n * si.width);
        sel.forEach((r, q) => x.set(r.x.subarray(oi, oi + si.width), q * si.width));
        let first = true;
        for (const group of partnerGroups(partners, n)) {
          const cols = group.reduce((a, sj) => a + sj.width, 0);
          const y = new Float32Array(n * cols);
          sel.forEach((r, q) => {
            let c0 = q * cols;
            for (const sj of group) {
              const oj = offset.get(sj.block)!;
              y.set(r.x.subarray(oj, oj + sj.width), c0);
              c0 += sj.width;
            }
          });
          const ne = (normal ??= await createNormalEquations());
          const out = await ne.run(x, n, si.width, y, cols, first);
          if (first) sums.gram.get(i)!.set(out.g);
          first = false;
          let off = 0;
          for (const sj of group) {
            const dj = sj.width;
            const c = sums.cross.get(pairKey(i, sj.block))!;
            for (let a = 0; a < dx; a++) c.set(out.cross.subarray(a * cols + off, a * cols + off + dj), a * dj);
            sums.ysum.get(sj.block)!.set(out.cross.subarray(si.width * cols + off, si.width * cols + off + dj));
            let sq = 0;
            for (let b = 0; b < dj; b++) sq += out.ysq[off + b]!;
            sums.ysq.set(sj.block, sq);
            off += dj;
          }
        }
      }
      const trainRows = stats.train.rows.get(i) ?? 0;
      if (trainRows === 0) continue;
      const solver = new SpanSolver(stats, matmul);
      for (const sj of partners) {
        const j = sj.block;
        const fit = await solver.fit(i, j, { method: 'linear', heldOutOnly: true });
        const tail = tails.get(j);
        const atLast = j === last ? fit.heldOut.relErr : tail ? await carriedRelErr(fit, stats.heldOut, tail, matmul, solver.heldGw.get(fit)) : null;
        if (j === last) {
          const info = await tailInfo(fit, stats.heldOut, matmul);
          if (info) tails.set(i, { ...info, heldGramTo: Float64Array.from(info.heldGramTo) });
        }
        // The ranking keeps the figures, not the maps (78 maps of a ViT-small would hold 92 MB).
        fits.push({ ...fit, map: { ...fit.map, weight: new Float64Array(0) }, relErrAtLast: atLast });
      }
    }
    } finally {
      await normal?.dispose();
    }
    if (thin.length) {
      const spans = thin.reduce((a, t) => a + t.spans, 0);
      const widths = [...new Set(thin.map((t) => t.width))].join(', ');
      const rows = Math.max(...thin.map((t) => t.rows));
      warnings.push(
        `RBA spans not estimated from ${thin.length} start block(s) (${spans} span(s)): the analysis keeps at most ${rows} training rows for maps of width ${widths}, fewer than twice the width; \`blocklens rba MODEL --from I --to J\` fits a span on every token`,
      );
    }
    fits.sort((a, b) => a.map.from - b.map.from || a.map.to - b.map.to);
    return { fits, estimates, warnings };
  }
}
