// Temporary local copy of the matmul backend contract.
// TODO: when src/engine/linalg/index.ts lands, import `MatmulBackend` from there and delete
// this file (keep `jsMatmulReference` only if tests still want an independent reference).

export interface MatmulBackend {
  /** C = A·Bᵀ. A: m×k, B: n×k, row-major Float64Array; returns m×n row-major. */
  abt(a: Float64Array, m: number, b: Float64Array, n: number, k: number): Promise<Float64Array>;
  /** C = Aᵀ·B. A: r×m, B: r×n; returns m×n. */
  atb(a: Float64Array, r: number, m: number, b: Float64Array, n: number): Promise<Float64Array>;
  dispose(): Promise<void>;
}

/** C = A·Bᵀ, plain float64 loops (row dot products; contiguous in both operands). */
export function abtSync(a: Float64Array, m: number, b: Float64Array, n: number, k: number): Float64Array {
  const c = new Float64Array(m * n);
  const sym = a === b && m === n;
  for (let i = 0; i < m; i++) {
    const ai = i * k;
    const j0 = sym ? i : 0;
    for (let j = j0; j < n; j++) {
      const bj = j * k;
      let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
      let t = 0;
      for (; t + 3 < k; t += 4) {
        s0 += a[ai + t] * b[bj + t];
        s1 += a[ai + t + 1] * b[bj + t + 1];
        s2 += a[ai + t + 2] * b[bj + t + 2];
        s3 += a[ai + t + 3] * b[bj + t + 3];
      }
      for (; t < k; t++) s0 += a[ai + t] * b[bj + t];
      const s = (s0 + s1) + (s2 + s3);
      c[i * n + j] = s;
      if (sym) c[j * n + i] = s;
    }
  }
  return c;
}

/** C = Aᵀ·B, plain float64 loops (rank-1 updates row by row). */
export function atbSync(a: Float64Array, r: number, m: number, b: Float64Array, n: number): Float64Array {
  const c = new Float64Array(m * n);
  for (let t = 0; t < r; t++) {
    const at = t * m;
    const bt = t * n;
    for (let i = 0; i < m; i++) {
      const v = a[at + i];
      if (v === 0) continue;
      const ci = i * n;
      for (let j = 0; j < n; j++) c[ci + j] += v * b[bt + j];
    }
  }
  return c;
}

/** Reference backend in plain JS (float64). */
export const jsMatmulReference: MatmulBackend = {
  abt: async (a, m, b, n, k) => abtSync(a, m, b, n, k),
  atb: async (a, r, m, b, n) => atbSync(a, r, m, b, n),
  dispose: async () => {},
};
