// Shared helpers for the stats tests (test/unit/stats-*.test.ts).
import assert from 'node:assert/strict';
import { Rng } from '../../src/engine/random.js';

/** rows×cols standard normal values (Box–Muller from one seeded stream). */
export function randn(rows: number, cols: number, seed: number): Float64Array {
  const rng = new Rng(seed);
  const out = new Float64Array(rows * cols);
  for (let i = 0; i < out.length; i++) {
    const u = 1 - rng.next();
    const v = rng.next();
    out[i] = Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }
  return out;
}

/** Assert `actual` is a number within relative tolerance `tol` (absolute below 1) of `expected`. */
export function close(actual: number | null | undefined, expected: number, tol: number, msg?: string): void {
  assert.ok(typeof actual === 'number', `${msg ?? ''} expected ${expected}, got ${actual}`);
  assert.ok(Math.abs(actual - expected) <= tol * Math.max(1, Math.abs(expected)), `${msg ?? ''} expected ${expected}, got ${actual}`);
}
