// Rows of a block output for the RBA fit (DESIGN §2: all tokens are rows, one map shared
// across tokens): [N, d] → N rows; [N, T, d] → N·T rows (padding positions dropped when the
// model has an attention mask); [N, C, H, W] → N·H·W rows of C channels.
import { halfToFloat } from '../calibration/dtype.js';
import type { SiteRows } from './span-stats.js';

export interface RawTensor {
  data: ArrayLike<number | bigint>;
  dims: readonly number[];
  /** 'float16' data is half bits. */
  type?: string;
}

export type RowLayout = 'vector' | 'tokens' | 'nchw';

export function layoutOf(rank: number): RowLayout {
  if (rank === 2) return 'vector';
  if (rank === 3) return 'tokens';
  if (rank === 4) return 'nchw';
  throw new Error(`block outputs of rank ${rank} are not supported by RBA (expected [N, d], [N, T, d] or [N, C, H, W])`);
}

export function widthOf(dims: readonly number[]): number {
  return dims.length === 4 ? dims[1]! : dims[dims.length - 1]!;
}

/** Which (sample, position) rows are valid: mask [N, T] of 0/1, or all. */
export function validPositions(n: number, t: number, mask?: RawTensor): Uint8Array {
  const keep = new Uint8Array(n * t).fill(1);
  if (mask) {
    if (mask.data.length !== n * t) throw new Error(`attention mask has ${mask.data.length} values, expected ${n}×${t}`);
    for (let k = 0; k < n * t; k++) keep[k] = Number(mask.data[k]) !== 0 ? 1 : 0;
  }
  return keep;
}

function value(t: RawTensor, k: number): number {
  const v = t.data[k]!;
  return t.type === 'float16' ? halfToFloat(v as number) : Number(v);
}

/** Converts one block output to float64 rows. */
export function toRows(t: RawTensor, batch: number, keep?: Uint8Array): SiteRows {
  const dims = t.dims;
  if (dims[0] !== batch) throw new Error(`block output has batch dimension ${dims[0]}, expected ${batch}`);
  const layout = layoutOf(dims.length);
  if (layout === 'vector') {
    const d = dims[1]!;
    const data = new Float64Array(batch * d);
    for (let k = 0; k < data.length; k++) data[k] = value(t, k);
    return { data, rows: batch, sample: Int32Array.from({ length: batch }, (_, i) => i) };
  }
  if (layout === 'tokens') {
    const [, T, d] = dims as [number, number, number];
    const valid = keep ?? new Uint8Array(batch * T).fill(1);
    let rows = 0;
    for (let k = 0; k < batch * T; k++) rows += valid[k]!;
    const data = new Float64Array(rows * d);
    const sample = new Int32Array(rows);
    let r = 0;
    for (let k = 0; k < batch * T; k++) {
      if (!valid[k]) continue;
      const o = k * d;
      for (let c = 0; c < d; c++) data[r * d + c] = value(t, o + c);
      sample[r] = Math.floor(k / T);
      r++;
    }
    return { data, rows, sample };
  }
  const [, C, H, W] = dims as [number, number, number, number];
  const hw = H * W;
  const rows = batch * hw;
  const data = new Float64Array(rows * C);
  const sample = new Int32Array(rows);
  for (let n = 0; n < batch; n++) {
    for (let c = 0; c < C; c++) {
      const src = (n * C + c) * hw;
      for (let p = 0; p < hw; p++) data[(n * hw + p) * C + c] = value(t, src + p);
    }
    sample.fill(n, n * hw, (n + 1) * hw);
  }
  return { data, rows, sample };
}
