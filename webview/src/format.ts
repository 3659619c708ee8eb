// Number and text formatting for people. Pure functions (no DOM), shared by every chart.

const MINUS = '\u2212';

function trimZeros(s: string): string {
  return s.includes('.') ? s.replace(/\.?0+$/, '') : s;
}

export function finite(v: unknown): v is number {
  return typeof v === 'number' && Number.isFinite(v);
}

/**
 * A number with `sig` significant digits: trailing zeros dropped, exponent form (`1.2e−5`) only
 * for very small or very large magnitudes, a real minus sign. null/NaN → `n/a`.
 */
export function formatNumber(x: number | null | undefined, sig = 3): string {
  if (!finite(x)) return 'n/a';
  if (x === 0) return '0';
  const a = Math.abs(x);
  let s: string;
  if (a >= 1e5 || a < 1e-3) {
    const [m, e] = x.toExponential(sig - 1).split('e');
    s = `${trimZeros(m!)}e${Number(e)}`;
  } else {
    s = String(Number(x.toPrecision(sig)));
  }
  return s.replace(/-/g, MINUS);
}
export const fmt = formatNumber;

export function fmtInt(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

/** 7.09 M, 12.3 k, 1.2 B. */
export function fmtCompact(n: number): string {
  const a = Math.abs(n);
  if (a >= 1e9) return `${fmt(n / 1e9, 3)} B`;
  if (a >= 1e6) return `${fmt(n / 1e6, 3)} M`;
  if (a >= 1e4) return `${fmt(n / 1e3, 3)} k`;
  return fmtInt(n);
}

export function fmtBytes(n: number): string {
  const units = ['bytes', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${fmtInt(v)} bytes` : `${fmt(v, 3)} ${units[u]}`;
}

/** Milliseconds. */
export function fmtMs(ms: number): string {
  if (ms < 1000) return `${fmt(ms, 3)} ms`;
  if (ms < 60_000) return `${fmt(ms / 1000, 3)} s`;
  const min = Math.floor(ms / 60_000);
  const s = Math.round((ms - min * 60_000) / 1000);
  return `${min} min ${s} s`;
}

export function pct(x: number | null | undefined, sig = 3): string {
  return finite(x) ? `${fmt(x * 100, sig)}%` : 'n/a';
}

/** Accuracy-style percentage with one decimal: 38.0%. */
export function pct1(x: number | null | undefined): string {
  return finite(x) ? `${(x * 100).toFixed(1)}%` : 'n/a';
}

export function baseName(p: string): string {
  const parts = p.split(/[\\/]/).filter((s) => s.length > 0);
  return parts.length ? parts[parts.length - 1]! : p;
}

/** `2025-11-23 10:15:00 UTC` from an ISO time; the input unchanged when it does not parse. */
export function fmtTime(iso: string): string {
  const t = Date.parse(iso);
  return Number.isNaN(t) ? iso : new Date(t).toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC').replace(/Z$/, ' UTC');
}

/** A short axis label for a block: the last one or two scope segments, at most `max` characters. */
export function shortBlockName(name: string, max = 16): string {
  const parts = name.split(/[\\/]/).filter((s) => s.length > 0);
  let s = parts.length ? parts[parts.length - 1]! : name;
  if (s.length > max) s = `…${s.slice(s.length - max + 1)}`;
  return s;
}

/** Indices to label so labels are at least `minGap` px apart with `cell` px per index; always the first. */
export function labelledIndices(n: number, cell: number, minGap: number): number[] {
  const need = minGap / cell;
  let step = Math.ceil(need);
  for (const s of [1, 2, 4, 5, 10, 20, 25, 50, 100, 200, 500, 1000]) {
    if (s >= need) {
      step = s;
      break;
    }
  }
  const out: number[] = [];
  for (let i = 0; i < n; i += step) out.push(i);
  const last = n - 1;
  if (out[out.length - 1] !== last && (last - out[out.length - 1]!) * cell >= minGap) out.push(last);
  return out;
}
