// RepresentationStore: pooled block representations r_b(x), collected batch by batch.
//
// Layout: one "stream" per block (and one for the block input h_{-1}, and one for sample ids).
// Every stream receives the same rows in the same order (row t of block 3 and row t of block 5
// come from the same sample/token). Rows are kept as Float32 in fixed-size chunks; `matrix()`
// returns a float64 copy for arithmetic.
//
// Row budget: with `maxRows`, the store keeps a uniform random subset of at most maxRows rows
// (reservoir sampling, Algorithm R). The keep/replace decision for row t depends only on
// (seed, t) through `hashUniform`, so all streams keep exactly the same rows whatever the order
// in which blocks are appended. `matrix()` returns the kept rows in their original order.

import { hashUniform } from '../random.js';

export type BlockKey = number | 'input';

export interface StoreOptions {
  /** Number of blocks L. */
  blocks: number;
  /** Row budget; rows beyond it are subsampled (seeded reservoir). Default: unlimited. */
  maxRows?: number;
  /** Seed for the subsampling. Default 0. */
  seed?: number;
  /** Widths per block, if known up front; otherwise taken from the first append. */
  dims?: number[];
  /** Width of the block input h_{-1}, if known up front. */
  inputDim?: number;
}

const CHUNK_FLOATS = 1 << 16;

class Stream {
  readonly width: number;
  readonly chunkRows: number;
  readonly chunks: Float32Array[] = [];
  /** Rows appended so far (before subsampling). */
  seen = 0;
  constructor(width: number) {
    this.width = width;
    this.chunkRows = Math.max(1, Math.floor(CHUNK_FLOATS / Math.max(1, width)));
  }
  write(slot: number, src: Float32Array | Float64Array, srcOffset: number): void {
    const c = Math.floor(slot / this.chunkRows);
    while (this.chunks.length <= c) this.chunks.push(new Float32Array(this.chunkRows * this.width));
    const base = (slot - c * this.chunkRows) * this.width;
    const chunk = this.chunks[c];
    for (let k = 0; k < this.width; k++) chunk[base + k] = src[srcOffset + k];
  }
  readInto(slot: number, dst: Float64Array, dstOffset: number): void {
    const c = Math.floor(slot / this.chunkRows);
    const base = (slot - c * this.chunkRows) * this.width;
    const chunk = this.chunks[c];
    for (let k = 0; k < this.width; k++) dst[dstOffset + k] = chunk[base + k];
  }
}

export class RepresentationStore {
  readonly blocks: number;
  readonly maxRows: number;
  readonly seed: number;
  private readonly streams: (Stream | null)[];
  private inputStream: Stream | null = null;
  private readonly presetDims: (number | undefined)[];
  private readonly presetInputDim: number | undefined;
  /** Sample id per kept slot; absent until appendSampleIds is called. */
  private sampleIdSlots: number[] | null = null;
  private sampleIdsSeen = 0;
  /** Original row index held by each slot (max over streams; see class comment). */
  private slotOrigin: number[] = [];
  private orderCache: Int32Array | null = null;
  private labelsBySample: Int32Array | null = null;
  private classCount: number | null = null;

  constructor(opts: StoreOptions) {
    if (!Number.isInteger(opts.blocks) || opts.blocks < 0) throw new Error(`blocks must be a non-negative integer, got ${opts.blocks}`);
    this.blocks = opts.blocks;
    const maxRows = opts.maxRows ?? Infinity;
    if (!(maxRows >= 1)) throw new Error(`maxRows must be ≥ 1, got ${opts.maxRows}`);
    this.maxRows = maxRows === Infinity ? Infinity : Math.floor(maxRows);
    this.seed = opts.seed ?? 0;
    this.streams = new Array<Stream | null>(this.blocks).fill(null);
    this.presetDims = opts.dims ? [...opts.dims] : [];
    if (opts.dims && opts.dims.length !== this.blocks) throw new Error(`dims has ${opts.dims.length} entries for ${this.blocks} blocks`);
    this.presetInputDim = opts.inputDim;
  }

  /** Slot for original row t, or −1 when the reservoir discards it. */
  private slotFor(t: number): number {
    if (t < this.maxRows) return t;
    const j = Math.floor(hashUniform(this.seed, t) * (t + 1));
    return j < this.maxRows ? j : -1;
  }

  private noteSlot(slot: number, t: number): void {
    while (this.slotOrigin.length <= slot) this.slotOrigin.push(-1);
    if (t > this.slotOrigin[slot]) this.slotOrigin[slot] = t;
    this.orderCache = null;
  }

  /**
   * Append `rowCount` rows (row-major, width = rows.length / rowCount unless preset) to one
   * block's stream, or to the block input with 'input'.
   */
  append(block: BlockKey, rows: Float32Array | Float64Array, rowCount: number): void {
    if (!Number.isInteger(rowCount) || rowCount < 0) throw new Error(`rowCount must be a non-negative integer, got ${rowCount}`);
    if (rowCount === 0) return;
    let stream: Stream;
    const preset = block === 'input' ? this.presetInputDim : this.presetDims[this.checkBlock(block)];
    const existing = block === 'input' ? this.inputStream : this.streams[block];
    let width: number;
    if (existing) width = existing.width;
    else if (preset !== undefined) width = preset;
    else {
      width = rows.length / rowCount;
      if (!Number.isInteger(width) || width < 1) throw new Error(`${label(block)}: ${rows.length} values do not split into ${rowCount} rows`);
    }
    if (rows.length < rowCount * width) throw new Error(`${label(block)}: expected ${rowCount}×${width} values, got ${rows.length}`);
    if (rows.length !== rowCount * width) throw new Error(`${label(block)}: width ${rows.length / rowCount} differs from ${width}`);
    if (existing) stream = existing;
    else {
      stream = new Stream(width);
      if (block === 'input') this.inputStream = stream;
      else this.streams[block] = stream;
    }
    for (let r = 0; r < rowCount; r++) {
      const t = stream.seen++;
      const slot = this.slotFor(t);
      if (slot < 0) continue;
      stream.write(slot, rows, r * width);
      this.noteSlot(slot, t);
    }
  }

  /** Sample id of each appended row, in row order (for 'tokens' pooling: several rows per sample). */
  appendSampleIds(ids: ArrayLike<number>): void {
    if (!this.sampleIdSlots) {
      if (this.sampleIdsSeen > 0) throw new Error('internal: sample ids');
      this.sampleIdSlots = [];
    }
    for (let r = 0; r < ids.length; r++) {
      const id = ids[r];
      if (!Number.isInteger(id) || id < 0) throw new Error(`sample id must be a non-negative integer, got ${id}`);
      const t = this.sampleIdsSeen++;
      const slot = this.slotFor(t);
      if (slot < 0) continue;
      while (this.sampleIdSlots.length <= slot) this.sampleIdSlots.push(-1);
      this.sampleIdSlots[slot] = id;
      this.noteSlot(slot, t);
    }
  }

  /** Labels per sample id (labels[sampleId]); `classes` defaults to max label + 1. */
  setLabels(labels: ArrayLike<number>, classes?: number): void {
    const out = new Int32Array(labels.length);
    let max = -1;
    for (let i = 0; i < labels.length; i++) {
      const v = labels[i];
      if (!Number.isInteger(v) || v < 0) throw new Error(`label must be a non-negative integer, got ${v}`);
      out[i] = v;
      if (v > max) max = v;
    }
    if (classes !== undefined && max >= classes) throw new Error(`label ${max} is out of range for ${classes} classes`);
    this.labelsBySample = out;
    this.classCount = classes ?? max + 1;
  }

  get labels(): Int32Array | null {
    return this.labelsBySample;
  }
  get classes(): number | null {
    return this.classCount;
  }

  private checkBlock(block: number): number {
    if (!Number.isInteger(block) || block < 0 || block >= this.blocks) throw new Error(`block index ${block} out of range 0..${this.blocks - 1}`);
    return block;
  }

  /** Widths d_b per block (null for a block that has received no rows and has no preset). */
  get dims(): (number | null)[] {
    const out: (number | null)[] = [];
    for (let b = 0; b < this.blocks; b++) out.push(this.streams[b]?.width ?? this.presetDims[b] ?? null);
    return out;
  }
  get inputDim(): number | null {
    return this.inputStream?.width ?? this.presetInputDim ?? null;
  }
  get hasInput(): boolean {
    return this.inputStream !== null;
  }

  /** Rows appended per block before subsampling (they must agree across blocks). */
  get rowsSeen(): number {
    return this.commonSeen();
  }
  /** True when the row budget was exceeded and rows were subsampled. */
  get subsampled(): boolean {
    return this.commonSeen() > this.maxRows;
  }

  private commonSeen(): number {
    const counts: [string, number][] = [];
    for (let b = 0; b < this.blocks; b++) counts.push([`block ${b}`, this.streams[b]?.seen ?? 0]);
    if (this.inputStream) counts.push(['input', this.inputStream.seen]);
    if (this.sampleIdSlots) counts.push(['sample ids', this.sampleIdsSeen]);
    if (counts.length === 0) return 0;
    const first = counts[0][1];
    for (const [name, c] of counts) {
      if (c !== first) {
        throw new Error(`row counts differ across streams: ${counts.map(([n, v]) => `${n}=${v}`).join(', ')} (first mismatch: ${name})`);
      }
    }
    return first;
  }

  /** Number of rows kept (N). Throws if the streams received different numbers of rows. */
  get n(): number {
    return Math.min(this.commonSeen(), this.maxRows);
  }

  /** Kept slots in original row order. */
  private order(): Int32Array {
    const n = this.n;
    if (this.orderCache && this.orderCache.length === n) return this.orderCache;
    const slots = Array.from({ length: n }, (_, i) => i);
    if (this.subsampled) slots.sort((a, b) => this.slotOrigin[a] - this.slotOrigin[b]);
    this.orderCache = Int32Array.from(slots);
    return this.orderCache;
  }

  /** Row-major N×d float64 copy of a block's kept rows (or of the block input). */
  matrix(block: BlockKey): Float64Array {
    const stream = block === 'input' ? this.inputStream : this.streams[this.checkBlock(block)];
    if (!stream) throw new Error(`${label(block)}: no rows stored`);
    const order = this.order();
    const d = stream.width;
    const out = new Float64Array(order.length * d);
    for (let i = 0; i < order.length; i++) stream.readInto(order[i], out, i * d);
    return out;
  }

  /** Original (pre-subsampling) row index of each kept row. */
  rowIndices(): Float64Array {
    const order = this.order();
    const out = new Float64Array(order.length);
    for (let i = 0; i < order.length; i++) out[i] = this.subsampled ? this.slotOrigin[order[i]] : order[i];
    return out;
  }

  /** Sample id of each kept row; without appendSampleIds every row is its own sample (id = row index). */
  sampleIds(): Int32Array {
    const order = this.order();
    const out = new Int32Array(order.length);
    if (!this.sampleIdSlots) {
      const idx = this.rowIndices();
      for (let i = 0; i < order.length; i++) out[i] = idx[i];
    } else {
      for (let i = 0; i < order.length; i++) out[i] = this.sampleIdSlots[order[i]];
    }
    return out;
  }

  /** True when some sample contributes more than one kept row (e.g. 'tokens' pooling). */
  get rowsAreTokens(): boolean {
    const ids = this.sampleIds();
    const seen = new Set<number>();
    for (const id of ids) {
      if (seen.has(id)) return true;
      seen.add(id);
    }
    return false;
  }
}

function label(block: BlockKey): string {
  return block === 'input' ? 'block input' : `block ${block}`;
}
