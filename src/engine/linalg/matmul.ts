// Float64 matrix products used by the statistics (Gram matrices, cross-products, normal
// equations). Row-major Float64Array throughout.

export interface MatmulBackend {
  /** C = A·Bᵀ. A: m×k, B: n×k, row-major Float64Array; returns m×n row-major. */
  abt(a: Float64Array, m: number, b: Float64Array, n: number, k: number): Promise<Float64Array>;
  /** C = Aᵀ·B. A: r×m, B: r×n; returns m×n. */
  atb(a: Float64Array, r: number, m: number, b: Float64Array, n: number): Promise<Float64Array>;
  dispose(): Promise<void>;
}

/** Throws unless `arr` holds exactly rows×cols values. */
export function checkShape(what: string, arr: { length: number }, rows: number, cols: number): void {
  if (!Number.isInteger(rows) || !Number.isInteger(cols) || rows < 0 || cols < 0) {
    throw new RangeError(`${what}: invalid shape ${rows}×${cols}`);
  }
  if (arr.length !== rows * cols) {
    throw new RangeError(`${what}: expected ${rows}×${cols} = ${rows * cols} values, got ${arr.length}`);
  }
}

/** C = A·Bᵀ with plain loops (both operands walked along contiguous rows). */
export function abtSync(a: Float64Array, m: number, b: Float64Array, n: number, k: number): Float64Array {
  checkShape('abt: A', a, m, k);
  checkShape('abt: B', b, n, k);
  const c = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    const ai = i * k;
    for (let j = 0; j < n; j++) {
      const bj = j * k;
      let s = 0;
      for (let t = 0; t < k; t++) s += a[ai + t] * b[bj + t];
      c[i * n + j] = s;
    }
  }
  return c;
}

/** C = Aᵀ·B with plain loops (rank-1 updates row by row of A and B). */
export function atbSync(a: Float64Array, r: number, m: number, b: Float64Array, n: number): Float64Array {
  checkShape('atb: A', a, r, m);
  checkShape('atb: B', b, r, n);
  const c = new Float64Array(m * n);
  for (let row = 0; row < r; row++) {
    const ar = row * m;
    const br = row * n;
    for (let i = 0; i < m; i++) {
      const x = a[ar + i];
      if (x === 0) continue;
      const ci = i * n;
      for (let j = 0; j < n; j++) c[ci + j] += x * b[br + j];
    }
  }
  return c;
}

/** The reference backend: plain JavaScript loops. */
export const jsMatmul: MatmulBackend = {
  abt: async (a, m, b, n, k) => abtSync(a, m, b, n, k),
  atb: async (a, r, m, b, n) => atbSync(a, r, m, b, n),
  dispose: async () => undefined,
};
