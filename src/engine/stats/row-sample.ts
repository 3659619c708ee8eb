// The row form of the similarity statistics: a bounded, id-keyed set of pooled rows (all
// blocks side by side). Row (id, position) has the key u = hashUniform(deriveSeed(seed,
// 'row-sample', position), id); the set keeps the `cap` rows with the smallest keys, so the
// merge of shards (union, then the same bound) is exactly the single run's set. Below the cap
// every row is kept and the numbers are exact; above it, biased CKA and DR come from a seeded
// uniform sample of rows (said in a warning).
//
// Bytes: (4·D + 12) per kept row, D = Σ_b d_b, at most `cap` rows.

import type { MatmulBackend } from '../linalg/matmul.js';
import { decodeF32, decodeI32, encodeArray } from '../pass/snapshot.js';
import { deriveSeed, hashUniform } from '../random.js';
import type { DrInfo, Matrix } from '../report/schema.js';
import { biasedCkaMatrix, centerColumns, chooseCkaMethod, type Centered } from './cka.js';
import { drCkaCurve } from './dr.js';

interface Row {
  id: number;
  pos: number;
  u: number;
  x: Float32Array;
}

export class RowSampleAccumulator {
  private rows: Row[] = [];
  /** Rows offered (before the bound). */
  seen = 0;
  private widths: number[] | null = null;
  private centredCache: Centered[] | null = null;

  constructor(readonly blocks: number, readonly cap: number, readonly seed: number) {
    if (!(cap >= 1)) throw new Error(`row cap must be ≥ 1, got ${cap}`);
  }

  private key(id: number, pos: number): number {
    return hashUniform(deriveSeed(this.seed, 'row-sample', pos), id);
  }

  add(blocks: { data: ArrayLike<number>; width: number }[], rows: number, ids: ArrayLike<number>, positions?: ArrayLike<number>): void {
    const widths = blocks.map((b) => b.width);
    if (!this.widths) this.widths = widths;
    else if (widths.some((w, i) => w !== this.widths![i])) throw new Error('row sample: block widths changed');
    const D = widths.reduce((a, b) => a + b, 0);
    for (let r = 0; r < rows; r++) {
      const x = new Float32Array(D);
      let o = 0;
      for (const b of blocks) {
        for (let k = 0; k < b.width; k++) x[o + k] = b.data[r * b.width + k]!;
        o += b.width;
      }
      const pos = positions ? positions[r]! : 0;
      this.rows.push({ id: ids[r]!, pos, u: this.key(ids[r]!, pos), x });
    }
    this.seen += rows;
    if (this.rows.length > 2 * this.cap) this.bound();
  }

  private bound(): void {
    if (this.rows.length <= this.cap) return;
    this.rows.sort((a, b) => a.u - b.u || a.id - b.id || a.pos - b.pos);
    this.rows.length = this.cap;
  }

  get subsampled(): boolean {
    return this.seen > this.cap;
  }

  snapshot(): Record<string, unknown> {
    this.bound();
    const D = this.widths ? this.widths.reduce((a, b) => a + b, 0) : 0;
    const data = new Float32Array(this.rows.length * D);
    this.rows.forEach((r, i) => data.set(r.x, i * D));
    return {
      blocks: this.blocks, cap: this.cap, seed: this.seed, seen: this.seen, widths: this.widths,
      ids: encodeArray(Int32Array.from(this.rows, (r) => r.id)), positions: encodeArray(Int32Array.from(this.rows, (r) => r.pos)), data: encodeArray(data),
    };
  }

  merge(s: Record<string, unknown>): void {
    if (s.blocks !== this.blocks || s.cap !== this.cap || s.seed !== this.seed) throw new Error('row sample: settings differ');
    this.seen += s.seen as number;
    if (!s.widths) return;
    const widths = s.widths as number[];
    if (!this.widths) this.widths = widths;
    else if (widths.some((w, i) => w !== this.widths![i])) throw new Error('row sample: block widths differ');
    const D = widths.reduce((a, b) => a + b, 0);
    const ids = decodeI32(s.ids, 'row ids');
    const pos = decodeI32(s.positions, 'row positions');
    const data = decodeF32(s.data, 'rows');
    const have = new Set(this.rows.map((r) => `${r.id}:${r.pos}`));
    for (let i = 0; i < ids.length; i++) {
      if (have.has(`${ids[i]}:${pos[i]}`)) throw new Error(`row sample: sample ${ids[i]} appears in two partials`);
      this.rows.push({ id: ids[i]!, pos: pos[i]!, u: this.key(ids[i]!, pos[i]!), x: data.slice(i * D, (i + 1) * D) });
    }
    this.bound();
  }

  /** Kept rows of every block, centred, in (id, position) order. */
  centred(): Centered[] {
    if (this.centredCache) return this.centredCache;
    this.bound();
    const rows = [...this.rows].sort((a, b) => a.id - b.id || a.pos - b.pos);
    const n = rows.length;
    const out: Centered[] = [];
    let o = 0;
    for (const d of this.widths ?? []) {
      const x = new Float64Array(n * d);
      rows.forEach((r, i) => {
        for (let k = 0; k < d; k++) x[i * d + k] = r.x[o + k]!;
      });
      out.push(centerColumns(x, n, d));
      o += d;
    }
    this.centredCache = out;
    return out;
  }

  blockState(): { nonFinite: boolean[]; degenerate: boolean[] } {
    if (!this.widths) return { nonFinite: new Array<boolean>(this.blocks).fill(false), degenerate: new Array<boolean>(this.blocks).fill(true) };
    const c = this.centred();
    const nonFinite = c.map((b) => !b.data.every((v) => Number.isFinite(v)) || !b.mean.every((v) => Number.isFinite(v)));
    return { nonFinite, degenerate: c.map((b) => b.degenerate) };
  }

  async ckaMatrix(matmul: MatmulBackend, live: boolean[]): Promise<Matrix> {
    const c = this.centred();
    const n = c[0]?.n ?? 0;
    // A block that is not live (NaN, constant) is passed as degenerate: its entries are null.
    const blocks = c.map((b, i) => (live[i] ? b : { ...b, degenerate: true }));
    return biasedCkaMatrix(blocks, matmul, chooseCkaMethod(n, c.map((b) => b.d)));
  }

  async drCurve(block: number, perms: Int32Array[], opts: { fractions: number[]; seeds: number; seed: number; delta: number; matmul: MatmulBackend; signal?: AbortSignal }): Promise<{ info: DrInfo; emptySubsets: number }> {
    return drCkaCurve(this.centred()[block]!, perms, { ...opts, method: 'auto' });
  }
}
