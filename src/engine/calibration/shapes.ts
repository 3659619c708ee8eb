// Shape helpers shared by the sources: input roles, symbolic dims, messages.

import type { InputSpec } from './types';

export type InputRole = 'mask' | 'type' | 'position' | 'ids';

/** What an input is for, from its name (used for token inputs and synthetic fills). */
export function roleOf(name: string): InputRole {
  const n = name.toLowerCase();
  if (n.includes('mask')) return 'mask';
  if (n.includes('token_type') || n.includes('tokentype') || n.includes('segment')) return 'type';
  if (n.includes('position')) return 'position';
  return 'ids';
}

export function isSymbolic(d: number | string | null | undefined): boolean {
  return typeof d !== 'number' || !(d > 0);
}

/** The model's declared shape as users read it: batch dim `N`, symbolic dims by name or `?`. */
export function formatModelShape(spec: InputSpec): string {
  const dims = spec.shape.map((d, i) => (i === 0 ? 'N' : isSymbolic(d) ? (typeof d === 'string' && d ? d : '?') : String(d)));
  return `[${dims.join(',')}]`;
}

export function formatShape(dims: readonly number[]): string {
  return `[${dims.join(',')}]`;
}

/** Multi-index of a flat C-order offset within `dims`. */
export function unravel(flat: number, dims: readonly number[]): number[] {
  const idx = new Array<number>(dims.length).fill(0);
  for (let i = dims.length - 1; i >= 0; i--) {
    const d = dims[i];
    if (d > 0) {
      idx[i] = flat % d;
      flat = Math.floor(flat / d);
    }
  }
  return idx;
}

export function product(dims: readonly number[]): number {
  let p = 1;
  for (const d of dims) p *= d;
  return p;
}

/**
 * The batch dimension a model input fixes (numeric and > 0 in dim 0), or undefined when it is
 * symbolic. A fixed batch dim of k means every batch must have exactly k samples.
 */
export function fixedBatchOf(inputs: readonly InputSpec[]): number | undefined {
  let fixed: number | undefined;
  for (const s of inputs) {
    const d = s.shape[0];
    if (typeof d === 'number' && d > 0) {
      if (fixed !== undefined && fixed !== d) {
        return Math.min(fixed, d); // inconsistent model; the caller's session will say so
      }
      fixed = d;
    }
  }
  return fixed;
}

/**
 * Check per-sample dims of stored data against the model's declared per-sample dims, and that
 * symbolic dims with the same name agree across inputs. Returns a problem or null.
 */
export function shapeProblem(spec: InputSpec, found: readonly number[], symbols: Map<string, number>): string | null {
  if (found.length !== spec.shape.length) return 'rank';
  for (let i = 1; i < spec.shape.length; i++) {
    const d = spec.shape[i];
    if (typeof d === 'number' && d > 0) {
      if (found[i] !== d) return 'dim';
    } else if (typeof d === 'string' && d) {
      const prev = symbols.get(d);
      if (prev !== undefined && prev !== found[i]) return `symbol:${d}:${prev}`;
      symbols.set(d, found[i]);
    }
  }
  return null;
}
