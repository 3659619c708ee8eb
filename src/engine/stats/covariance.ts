// The block-Gram accumulator: ZᵀZ of Z = [X_0 | X_1 | … | X_{L−1} | 1] summed over rows, plus
// per-column minimum and maximum. Every centred cross-product X̃_iᵀX̃_j is a sub-block of it
// (S_ij − s_i s_jᵀ / n), so it gives the biased linear CKA of every pair and the covariance
// that the DR curve needs, and it merges by adding (min/max by min/max).
//
// Bytes: 8·(D+1)² + 16·D with D = Σ_b d_b (per pair of blocks 8·d_i·d_j, per block 8·d_b² + 16·d_b),
// independent of the number of rows. Rows never stay: each batch's ZᵀZ comes from ONNX Runtime
// (in-graph float64 Gemm, or `addRows` through a MatmulBackend).

import type { MatmulBackend } from '../linalg/matmul.js';
import { decodeF64, encodeArray } from '../pass/snapshot.js';
import type { Matrix } from '../report/schema.js';
import { nullMatrix } from './pairwise.js';

export class CovarianceAccumulator {
  /** Rows added. */
  n = 0;
  private widths: number[] | null;
  private offsets: number[] = [];
  private D = 0;
  /** (D+1)×(D+1), row-major; the last row/column belong to the ones column. */
  private S: Float64Array | null = null;
  private colMin: Float64Array | null = null;
  private colMax: Float64Array | null = null;
  private nonFinite: Uint8Array;

  constructor(readonly blocks: number, widths?: number[]) {
    this.widths = null;
    this.nonFinite = new Uint8Array(blocks);
    if (widths) this.init(widths);
  }

  private init(widths: number[]): void {
    if (this.widths) {
      if (widths.length !== this.widths.length || widths.some((w, i) => w !== this.widths![i])) {
        throw new Error(`block widths ${widths.join(',')} differ from ${this.widths.join(',')}`);
      }
      return;
    }
    if (widths.length !== this.blocks) throw new Error(`expected ${this.blocks} widths, got ${widths.length}`);
    this.widths = [...widths];
    let o = 0;
    this.offsets = widths.map((w) => ((o += w), o - w));
    this.D = o;
    this.S = new Float64Array((o + 1) * (o + 1));
    this.colMin = new Float64Array(o).fill(Infinity);
    this.colMax = new Float64Array(o).fill(-Infinity);
  }

  get dims(): number[] | null {
    return this.widths ? [...this.widths] : null;
  }

  /** Bytes of state for widths `d`: the cost model of this form. */
  static bytes(widths: number[]): number {
    const D = widths.reduce((a, b) => a + b, 0);
    return 8 * (D + 1) * (D + 1) + 16 * D;
  }

  /** Adds one batch's ZᵀZ ((D+1)² float64, ones column last) computed elsewhere (in the graph). */
  addGram(gram: Float64Array, widths: number[]): void {
    this.init(widths);
    const S = this.S!;
    if (gram.length !== S.length) throw new Error(`block Gram has ${gram.length} values, expected ${S.length}`);
    for (let i = 0; i < S.length; i++) S[i] += gram[i]!;
    this.n += gram[gram.length - 1]!;
  }

  /** Column minima and maxima (constant columns are exactly zero after centring), non-finite flags. */
  observeRows(block: number, data: ArrayLike<number>, rows: number, width: number): void {
    const o = this.offsets[block]!;
    const mn = this.colMin!;
    const mx = this.colMax!;
    for (let r = 0; r < rows; r++) {
      const base = r * width;
      for (let k = 0; k < width; k++) {
        const v = data[base + k]!;
        if (v < mn[o + k]!) mn[o + k] = v;
        if (v > mx[o + k]!) mx[o + k] = v;
        if (v !== v || v === Infinity || v === -Infinity) this.nonFinite[block] = 1;
      }
    }
  }

  /** Adds rows of every block (same rows), computing ZᵀZ with `matmul` (when no in-graph product is at hand). */
  async addRows(blocks: { data: ArrayLike<number>; width: number }[], rows: number, matmul: MatmulBackend): Promise<void> {
    const widths = blocks.map((b) => b.width);
    this.init(widths);
    if (rows === 0) return;
    const D1 = this.D + 1;
    const z = new Float64Array(rows * D1);
    blocks.forEach((b, i) => {
      const o = this.offsets[i]!;
      for (let r = 0; r < rows; r++) for (let k = 0; k < b.width; k++) z[r * D1 + o + k] = b.data[r * b.width + k]!;
      this.observeRows(i, b.data, rows, b.width);
    });
    for (let r = 0; r < rows; r++) z[r * D1 + this.D] = 1;
    this.addGram(await matmul.atb(z, rows, D1, z, D1), widths);
  }

  snapshot(): Record<string, unknown> {
    return {
      blocks: this.blocks, n: this.n, widths: this.widths, nonFinite: Array.from(this.nonFinite),
      S: this.S ? encodeArray(this.S) : null, colMin: this.colMin ? encodeArray(this.colMin) : null, colMax: this.colMax ? encodeArray(this.colMax) : null,
    };
  }

  merge(s: Record<string, unknown>): void {
    if (s.blocks !== this.blocks) throw new Error(`block Gram: ${String(s.blocks)} blocks, expected ${this.blocks}`);
    (s.nonFinite as number[]).forEach((v, b) => (this.nonFinite[b] |= v ? 1 : 0));
    if (!s.widths) return;
    this.init(s.widths as number[]);
    const S = decodeF64(s.S, 'S');
    const mn = decodeF64(s.colMin, 'colMin');
    const mx = decodeF64(s.colMax, 'colMax');
    if (S.length !== this.S!.length || mn.length !== this.D || mx.length !== this.D) throw new Error('block Gram: sizes differ');
    for (let i = 0; i < S.length; i++) this.S![i] += S[i]!;
    for (let i = 0; i < this.D; i++) {
      if (mn[i]! < this.colMin![i]!) this.colMin![i] = mn[i]!;
      if (mx[i]! > this.colMax![i]!) this.colMax![i] = mx[i]!;
    }
    this.n += s.n as number;
  }

  /** Whether each block has NaN/Inf, and whether each is degenerate (all columns constant, or n < 2). */
  blockState(): { nonFinite: boolean[]; degenerate: boolean[] } {
    const nonFinite = Array.from(this.nonFinite, (v) => v === 1);
    const degenerate = Array.from({ length: this.blocks }, (_, b) => {
      if (!this.widths || this.n < 2) return true;
      const o = this.offsets[b]!;
      for (let k = 0; k < this.widths[b]!; k++) if (this.colMin![o + k]! !== this.colMax![o + k]!) return false;
      return true;
    });
    return { nonFinite, degenerate };
  }

  private isConstant(col: number): boolean {
    return this.colMin![col]! === this.colMax![col]!;
  }

  /** Centred cross-product X̃_iᵀX̃_j (d_i × d_j), constant columns exactly zero. */
  centred(i: number, j: number): Float64Array {
    if (!this.widths) throw new Error('block Gram: no rows');
    const di = this.widths[i]!;
    const dj = this.widths[j]!;
    const oi = this.offsets[i]!;
    const oj = this.offsets[j]!;
    const D1 = this.D + 1;
    const S = this.S!;
    const n = this.n;
    const out = new Float64Array(di * dj);
    for (let a = 0; a < di; a++) {
      const ra = oi + a;
      if (this.isConstant(ra)) continue;
      const sa = S[this.D * D1 + ra]! / n;
      for (let b = 0; b < dj; b++) {
        const cb = oj + b;
        if (this.isConstant(cb)) continue;
        out[a * dj + b] = S[ra * D1 + cb]! - sa * S[this.D * D1 + cb]!;
      }
    }
    return out;
  }

  /** Biased linear CKA between every pair of blocks: ‖X̃_iᵀX̃_j‖²_F / (‖X̃_iᵀX̃_i‖_F ‖X̃_jᵀX̃_j‖_F). */
  ckaMatrix(signal?: AbortSignal): Matrix {
    const L = this.blocks;
    const out = nullMatrix(L);
    if (!this.widths) return out;
    const { nonFinite, degenerate } = this.blockState();
    const live = nonFinite.map((bad, b) => !bad && !degenerate[b]);
    const self = new Float64Array(L);
    for (let b = 0; b < L; b++) {
      if (!live[b]) continue;
      self[b] = Math.sqrt(frob2(this.centred(b, b)));
      out[b]![b] = 1;
    }
    for (let i = 0; i < L; i++) {
      for (let j = i + 1; j < L; j++) {
        if (!live[i] || !live[j]) continue;
        signal?.throwIfAborted();
        const v = frob2(this.centred(i, j)) / (self[i]! * self[j]!);
        out[i]![j] = out[j]![i] = v;
      }
    }
    return out;
  }
}

function frob2(a: Float64Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * a[i]!;
  return s;
}
