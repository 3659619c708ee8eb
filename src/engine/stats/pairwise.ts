// Row-wise pair statistics as mergeable sums: BR, relative MSE, cosine and block influence.
//
// State (all sums over rows, merged by adding): per block Σ‖x‖², all-zero rows, non-finite
// flag; per pair of equal width Σ‖x_i − x_j‖², Σ cos(x_i, x_j) and the number of rows where
// both norms are > 0; the same three against the block input h_{-1} for block 0.
// Bytes: 8·(3·L + 3·L²) + small — independent of the number of rows.

import type { Matrix } from '../report/schema.js';
import { decodeF64, encodeArray } from '../pass/snapshot.js';

export interface PairwiseResult {
  br: (number | null)[];
  relativeMse: (number | null)[];
  blockInfluence: (number | null)[];
  brMatrix: Matrix;
  cosine: Matrix;
  /** Blocks that carried NaN or Infinity. */
  nonFinite: boolean[];
  inputNonFinite: boolean;
  rows: number;
  widths: (number | null)[];
}

type RowsIn = { data: Float32Array | Float64Array; width: number };

export class PairwiseAccumulator {
  rows = 0;
  widths: (number | null)[];
  inputWidth: number | null = null;
  hasInput = false;
  private norm2: Float64Array;
  private zeroRows: Float64Array;
  private nonFinite: Uint8Array;
  private inputNonFinite = false;
  private inputNorm2 = 0;
  /** L×L, entry [i·L + j] for i < j. */
  private sse: Float64Array;
  private cosSum: Float64Array;
  private cosCount: Float64Array;
  /** Block 0 against the block input: sse, cos sum, cos count. */
  private inPair = new Float64Array(3);

  constructor(readonly blocks: number) {
    const L = blocks;
    this.widths = new Array<number | null>(L).fill(null);
    this.norm2 = new Float64Array(L);
    this.zeroRows = new Float64Array(L);
    this.nonFinite = new Uint8Array(L);
    this.sse = new Float64Array(L * L);
    this.cosSum = new Float64Array(L * L);
    this.cosCount = new Float64Array(L * L);
  }

  private setWidth(b: number, w: number): void {
    const cur = this.widths[b];
    if (cur === null) this.widths[b] = w;
    else if (cur !== w) throw new Error(`block ${b}: width ${w} differs from ${cur} seen before`);
  }

  /** One batch: `n` rows of every block (same rows, same order), and of the block input when known. */
  add(blocks: RowsIn[], n: number, input?: RowsIn): void {
    const L = this.blocks;
    if (blocks.length !== L) throw new Error(`expected rows of ${L} blocks, got ${blocks.length}`);
    if (n === 0) return;
    const norms: Float64Array[] = [];
    for (let b = 0; b < L; b++) {
      const { data, width } = blocks[b]!;
      if (data.length !== n * width) throw new Error(`block ${b}: expected ${n}×${width} values, got ${data.length}`);
      this.setWidth(b, width);
      const nr = new Float64Array(n);
      let tot = 0;
      let zeros = 0;
      let finite = true;
      for (let r = 0; r < n; r++) {
        let s = 0;
        const o = r * width;
        for (let k = 0; k < width; k++) {
          const v = data[o + k]!;
          s += v * v;
        }
        if (!Number.isFinite(s)) finite = false;
        nr[r] = s;
        tot += s;
        if (s === 0) zeros++;
      }
      if (!finite) this.nonFinite[b] = 1;
      this.norm2[b] += tot;
      this.zeroRows[b] += zeros;
      norms.push(nr);
    }
    for (let i = 0; i < L; i++) {
      for (let j = i + 1; j < L; j++) {
        if (this.widths[i] !== this.widths[j]) continue;
        const [sse, cs, cc] = pairSums(blocks[i]!.data, norms[i]!, blocks[j]!.data, norms[j]!, n, this.widths[i]!);
        this.sse[i * L + j] += sse;
        this.cosSum[i * L + j] += cs;
        this.cosCount[i * L + j] += cc;
      }
    }
    if (input) {
      this.hasInput = true;
      if (this.inputWidth === null) this.inputWidth = input.width;
      else if (this.inputWidth !== input.width) throw new Error(`block input: width ${input.width} differs from ${this.inputWidth} seen before`);
      const nr = new Float64Array(n);
      let tot = 0;
      for (let r = 0; r < n; r++) {
        let s = 0;
        for (let k = 0; k < input.width; k++) {
          const v = input.data[r * input.width + k]!;
          s += v * v;
        }
        nr[r] = s;
        tot += s;
      }
      if (!Number.isFinite(tot)) this.inputNonFinite = true;
      this.inputNorm2 += tot;
      if (input.width === this.widths[0]) {
        const [sse, cs, cc] = pairSums(input.data, nr, blocks[0]!.data, norms[0]!, n, input.width);
        this.inPair[0] += sse;
        this.inPair[1] += cs;
        this.inPair[2] += cc;
      }
    }
    this.rows += n;
  }

  snapshot(): Record<string, unknown> {
    return {
      blocks: this.blocks, rows: this.rows, widths: this.widths, inputWidth: this.inputWidth, hasInput: this.hasInput,
      inputNonFinite: this.inputNonFinite, inputNorm2: encodeArray(Float64Array.of(this.inputNorm2)),
      nonFinite: Array.from(this.nonFinite), norm2: encodeArray(this.norm2), zeroRows: encodeArray(this.zeroRows),
      sse: encodeArray(this.sse), cosSum: encodeArray(this.cosSum), cosCount: encodeArray(this.cosCount), inPair: encodeArray(this.inPair),
    };
  }

  merge(s: Record<string, unknown>): void {
    if (s.blocks !== this.blocks) throw new Error(`pairwise statistics: ${String(s.blocks)} blocks, expected ${this.blocks}`);
    (s.widths as (number | null)[]).forEach((w, b) => w !== null && this.setWidth(b, w));
    if (s.inputWidth !== null && s.inputWidth !== undefined) {
      if (this.inputWidth !== null && this.inputWidth !== s.inputWidth) throw new Error('pairwise statistics: block input widths differ');
      this.inputWidth = s.inputWidth as number;
    }
    this.hasInput ||= s.hasInput === true;
    this.inputNonFinite ||= s.inputNonFinite === true;
    this.inputNorm2 += decodeF64(s.inputNorm2, 'inputNorm2')[0]!;
    (s.nonFinite as number[]).forEach((v, b) => (this.nonFinite[b] |= v ? 1 : 0));
    const add = (a: Float64Array, key: string) => {
      const b = decodeF64(s[key], key);
      if (b.length !== a.length) throw new Error(`pairwise statistics: ${key} has ${b.length} values, expected ${a.length}`);
      for (let i = 0; i < a.length; i++) a[i] += b[i]!;
    };
    add(this.norm2, 'norm2');
    add(this.zeroRows, 'zeroRows');
    add(this.sse, 'sse');
    add(this.cosSum, 'cosSum');
    add(this.cosCount, 'cosCount');
    add(this.inPair, 'inPair');
    this.rows += s.rows as number;
  }

  finalize(warn: (m: string) => void): PairwiseResult {
    const L = this.blocks;
    const N = this.rows;
    const d = this.widths;
    const valid = Array.from({ length: L }, (_, b) => !this.nonFinite[b] && d[b] !== null);
    for (let b = 0; b < L; b++) if (this.nonFinite[b]) warn(`block ${b}: representation contains NaN or Infinity; all its entries are null`);
    for (let b = 0; b < L; b++) {
      if (!valid[b]) continue;
      const zero = this.zeroRows[b]!;
      if (zero > 0) warn(`block ${b}: ${zero} of ${N} rows are all-zero; cosine and block influence skip those rows${zero === N ? ' (none left: null)' : ''}`);
    }
    const brMatrix = nullMatrix(L);
    const cosine = nullMatrix(L);
    for (let i = 0; i < L; i++) {
      if (!valid[i]) continue;
      brMatrix[i]![i] = 0;
      cosine[i]![i] = this.norm2[i]! > 0 ? 1 : null;
      for (let j = i + 1; j < L; j++) {
        if (!valid[j] || d[i] !== d[j]) continue;
        const k = i * L + j;
        brMatrix[i]![j] = brMatrix[j]![i] = negMean(this.sse[k]!, N * d[i]!);
        const c = this.cosCount[k]! > 0 ? this.cosSum[k]! / this.cosCount[k]! : null;
        cosine[i]![j] = cosine[j]![i] = c;
      }
    }
    const br: (number | null)[] = [];
    const relativeMse: (number | null)[] = [];
    const blockInfluence: (number | null)[] = [];
    if (this.hasInput && this.inputNonFinite) warn('block input: contains NaN or Infinity; br[0], relativeMse[0] and blockInfluence[0] are null');
    for (let b = 0; b < L; b++) {
      let sse: number | null = null;
      let prev2 = 0;
      let cos: number | null = null;
      if (b === 0) {
        if (!this.hasInput) warn('block 0: no block input stored; br[0], relativeMse[0] and blockInfluence[0] are null');
        else if (!this.inputNonFinite && this.inputWidth !== d[0]) warn(`block 0: input width ${this.inputWidth} differs from block width ${d[0]}; br[0], relativeMse[0] and blockInfluence[0] are null`);
        else if (!this.inputNonFinite && valid[0]) {
          sse = this.inPair[0]!;
          cos = this.inPair[2]! > 0 ? this.inPair[1]! / this.inPair[2]! : null;
          prev2 = this.inputNorm2;
        }
      } else if (d[b] !== d[b - 1]) {
        warn(`block ${b}: width ${d[b]} differs from block ${b - 1} (${d[b - 1]}); br, relativeMse and blockInfluence are null`);
      } else if (valid[b] && valid[b - 1]) {
        const k = (b - 1) * L + b;
        sse = this.sse[k]!;
        cos = this.cosCount[k]! > 0 ? this.cosSum[k]! / this.cosCount[k]! : null;
        prev2 = this.norm2[b - 1]!;
      }
      if (sse === null) {
        br.push(null);
        relativeMse.push(null);
        blockInfluence.push(null);
        continue;
      }
      br.push(negMean(sse, N * d[b]!));
      if (prev2 > 0) relativeMse.push(sse / prev2);
      else {
        relativeMse.push(null);
        warn(`block ${b}: the previous representation is all zeros; relativeMse is null`);
      }
      blockInfluence.push(cos === null ? null : 1 - cos);
    }
    return {
      br, relativeMse, blockInfluence, brMatrix, cosine, rows: N, widths: [...d],
      nonFinite: Array.from(this.nonFinite, (v) => v === 1), inputNonFinite: this.inputNonFinite,
    };
  }
}

/** Σ‖a − b‖², Σ cos(a, b) and the count of rows where both norms are > 0. */
function pairSums(a: ArrayLike<number>, na2: Float64Array, b: ArrayLike<number>, nb2: Float64Array, n: number, d: number): [number, number, number] {
  let sse = 0;
  let cosSum = 0;
  let count = 0;
  for (let i = 0; i < n; i++) {
    const o = i * d;
    let s = 0;
    let dt = 0;
    for (let k = 0; k < d; k++) {
      const u = a[o + k]!;
      const v = b[o + k]!;
      const diff = u - v;
      s += diff * diff;
      dt += u * v;
    }
    sse += s;
    if (na2[i]! > 0 && nb2[i]! > 0) {
      // sqrt(x·x) of the rounded square is x again, so identical rows give exactly 1.
      cosSum += dt / Math.sqrt(na2[i]! * nb2[i]!);
      count++;
    }
  }
  return [sse, cosSum, count];
}

/** −sse/count, with +0 (not −0) for an unchanged block. */
export function negMean(sse: number, count: number): number {
  return sse === 0 ? 0 : -sse / count;
}

export function nullMatrix(L: number): (number | null)[][] {
  return Array.from({ length: L }, () => new Array<number | null>(L).fill(null));
}
