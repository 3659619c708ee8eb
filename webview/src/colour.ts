// Colour scales for the heatmaps: d3 sequential scales over viridis (perceptually ordered,
// readable for colour-blind people, the same in light and dark themes).
import { scaleSequential, scaleSequentialLog } from 'd3-scale';
import { interpolateViridis } from 'd3-scale-chromatic';
import { finite } from './format.js';

export interface ColourScale {
  colour(v: number): string;
  /** The scale the legend's axis is drawn from, on values shown to people (already signed). */
  legendDomain: [number, number];
  log: boolean;
  /** Legend colour at fraction t ∈ [0, 1] of the legend (0 = bottom). */
  ramp(t: number): string;
  caption: string;
}

export function matrixValues(m: (number | null)[][]): number[] {
  const out: number[] = [];
  for (const row of m) for (const v of row ?? []) if (finite(v)) out.push(v);
  return out;
}

export function colourScale(kind: 'unit' | 'cosine' | 'log', values: number[]): ColourScale {
  const lo = values.length ? Math.min(...values) : 0;
  const hi = values.length ? Math.max(...values) : 1;
  if (kind === 'log') {
    // BR-like values (≤ 0, spanning decades): brightness by log |v|, 0 brightest.
    const mags = values.map(Math.abs).filter((m) => m > 0);
    let mLo = mags.length ? Math.min(...mags) : 0.1;
    const mHi = mags.length ? Math.max(...mags) : 1;
    if (mHi / mLo < 10) mLo = mHi / 10;
    const s = scaleSequentialLog(interpolateViridis).domain([mHi, mLo]).clamp(true);
    const sign = values.some((v) => v > 0) && !values.some((v) => v < 0) ? 1 : -1;
    return {
      colour: (v) => (v === 0 ? interpolateViridis(1) : s(Math.abs(v))),
      legendDomain: [sign * mHi, sign * mLo],
      log: true,
      ramp: (t) => interpolateViridis(t),
      caption: 'log |value|',
    };
  }
  const d0 = kind === 'cosine' ? Math.min(lo < 0 ? -1 : 0, lo) : Math.min(0, lo);
  const d1 = Math.max(1, hi);
  const s = scaleSequential(interpolateViridis).domain([d0, d1]).clamp(true);
  return { colour: (v) => s(v), legendDomain: [d0, d1], log: false, ramp: (t) => interpolateViridis(t), caption: 'linear' };
}

/** Relative luminance of `#rrggbb` or `rgb(r, g, b)`. */
export function luminance(colour: string): number {
  let rgb: number[];
  const m = /^#([0-9a-f]{6})$/i.exec(colour);
  if (m) rgb = [0, 2, 4].map((k) => parseInt(m[1]!.slice(k, k + 2), 16));
  else rgb = (colour.match(/\d+(\.\d+)?/g) ?? ['0', '0', '0']).slice(0, 3).map(Number);
  const [r, g, b] = rgb.map((v) => {
    const x = v / 255;
    return x <= 0.03928 ? x / 12.92 : ((x + 0.055) / 1.055) ** 2.4;
  }) as [number, number, number];
  return 0.2126 * r + 0.7152 * g + 0.0722 * b;
}

/** Dark or light ink, whichever reads better on `colour`. */
export function inkOn(colour: string): 'ink-dark' | 'ink-light' {
  return luminance(colour) > 0.2 ? 'ink-dark' : 'ink-light';
}
