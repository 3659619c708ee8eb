// Renders an AnalysisReport as one self-contained HTML page: inline CSS and hand-written
// SVG, no scripts, no network. Every string that comes from the model, the data or a path
// is escaped. Tooltips are native SVG <title> elements.

import { SCHEMA_VERSION, type AnalysisReport, type BlockInfo, type DrInfo, type Matrix, type ProbeDrInfo } from './schema';

// ───────────────────────────── text and numbers ─────────────────────────────

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Escape text for HTML element content and attribute values (also valid inside inline SVG). */
export function escapeHtml(value: unknown): string {
  return String(value).replace(/[&<>"']/g, (c) => ESCAPES[c]!);
}
const esc = escapeHtml;

const MINUS = '\u2212';

function trimZeros(s: string): string {
  return s.includes('.') ? s.replace(/\.?0+$/, '') : s;
}

/**
 * A number with `sig` significant digits, for people: trailing zeros dropped, exponent form
 * (`1.2e−5`) only for very small or very large magnitudes, a real minus sign. null → `n/a`.
 */
export function formatNumber(x: number | null | undefined, sig = 3): string {
  if (x === null || x === undefined || !Number.isFinite(x)) return 'n/a';
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
const fmt = formatNumber;

function fmtInt(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

function fmtCompact(n: number): string {
  const a = Math.abs(n);
  if (a >= 1e9) return `${fmt(n / 1e9, 3)} B`;
  if (a >= 1e6) return `${fmt(n / 1e6, 3)} M`;
  if (a >= 1e4) return `${fmt(n / 1e3, 3)} k`;
  return fmtInt(n);
}

function fmtBytes(n: number): string {
  const units = ['bytes', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${fmtInt(v)} bytes` : `${fmt(v, 3)} ${units[u]}`;
}

/** Timings are milliseconds. */
function fmtMs(ms: number): string {
  if (ms < 1000) return `${fmt(ms, 3)} ms`;
  if (ms < 60_000) return `${fmt(ms / 1000, 3)} s`;
  const min = Math.floor(ms / 60_000);
  const s = Math.round((ms - min * 60_000) / 1000);
  return `${min} min ${s} s`;
}

function pct(x: number | null | undefined, sig = 3): string {
  if (x === null || x === undefined || !Number.isFinite(x)) return 'n/a';
  return `${fmt(x * 100, sig)}%`;
}

/** Accuracy-style percentage with one decimal: 38.0%. */
function pct1(x: number | null | undefined): string {
  if (x === null || x === undefined || !Number.isFinite(x)) return 'n/a';
  return `${(x * 100).toFixed(1)}%`;
}

function baseName(p: string): string {
  const parts = p.split(/[\\/]/).filter((s) => s.length > 0);
  return parts.length ? parts[parts.length - 1]! : p;
}

function finite(v: unknown): v is number {
  return typeof v === 'number' && Number.isFinite(v);
}

/** Coordinates in SVG: at most two decimals. */
function c(x: number): string {
  return String(Math.round(x * 100) / 100);
}

// ───────────────────────────── colour ─────────────────────────────

/** A sequential, perceptually ordered ramp (dark violet → blue → teal → green → yellow). */
const RAMP: [number, [number, number, number]][] = [
  [0.0, [68, 1, 84]],
  [0.13, [71, 44, 122]],
  [0.25, [59, 82, 139]],
  [0.38, [44, 114, 142]],
  [0.5, [33, 145, 140]],
  [0.63, [39, 173, 129]],
  [0.75, [92, 200, 99]],
  [0.88, [170, 220, 50]],
  [1.0, [253, 231, 37]],
];

function rampRgb(t: number): [number, number, number] {
  const x = Math.min(1, Math.max(0, Number.isFinite(t) ? t : 0));
  for (let k = 1; k < RAMP.length; k++) {
    const [t1, c1] = RAMP[k]!;
    if (x <= t1) {
      const [t0, c0] = RAMP[k - 1]!;
      const u = (x - t0) / (t1 - t0);
      return [0, 1, 2].map((i) => Math.round(c0[i]! + (c1[i]! - c0[i]!) * u)) as [number, number, number];
    }
  }
  return RAMP[RAMP.length - 1]![1];
}

function hex(rgb: [number, number, number]): string {
  return `#${rgb.map((v) => v.toString(16).padStart(2, '0')).join('')}`;
}

function rampColour(t: number): string {
  return hex(rampRgb(t));
}

/** Dark or light text, whichever reads better on ramp colour t. */
function inkOn(t: number): string {
  const [r, g, b] = rampRgb(t).map((v) => {
    const s = v / 255;
    return s <= 0.03928 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
  }) as [number, number, number];
  const lum = 0.2126 * r + 0.7152 * g + 0.0722 * b;
  return lum > 0.2 ? '#14161a' : '#ffffff';
}

function gradientDef(id: string, vertical: boolean): string {
  const stops = RAMP.map(([t, rgb]) => `<stop offset="${vertical ? c(1 - t) : c(t)}" stop-color="${hex(rgb)}"/>`);
  if (vertical) stops.reverse();
  const dir = vertical ? 'x1="0" y1="0" x2="0" y2="1"' : 'x1="0" y1="0" x2="1" y2="0"';
  return `<linearGradient id="${id}" ${dir}>${stops.join('')}</linearGradient>`;
}

function hatchDef(id: string, size = 6): string {
  return (
    `<pattern id="${id}" width="${size}" height="${size}" patternUnits="userSpaceOnUse" patternTransform="rotate(45)">` +
    `<rect class="na-bg" width="${size}" height="${size}"/><line class="na-line" x1="0" y1="0" x2="0" y2="${size}"/></pattern>`
  );
}

// ───────────────────────────── scales ─────────────────────────────

interface ColourScale {
  /** 0 (dark) … 1 (bright) for a value. */
  frac(v: number): number;
  /** Legend ticks, frac 1 first. */
  ticks: { frac: number; label: string }[];
  /** One line under the legend. */
  caption: string;
}

function linearScale(lo: number, hi: number): ColourScale {
  const span = hi - lo || 1;
  return {
    frac: (v) => (v - lo) / span,
    ticks: [
      { frac: 1, label: fmt(hi) },
      { frac: 0.5, label: fmt((lo + hi) / 2) },
      { frac: 0, label: fmt(lo) },
    ],
    caption: 'linear',
  };
}

/** For BR-like values (≤ 0, spanning decades): brightness by log |v|, 0 brightest. */
function logMagnitudeScale(values: number[]): ColourScale {
  const mags = values.map(Math.abs).filter((m) => m > 0);
  if (mags.length === 0) return linearScale(-1, 0);
  let lo = Math.min(...mags);
  let hi = Math.max(...mags);
  if (hi / lo < 10) lo = hi / 10;
  const l0 = Math.log10(lo);
  const l1 = Math.log10(hi);
  const sign = values.some((v) => v > 0) && !values.some((v) => v < 0) ? 1 : -1;
  return {
    frac: (v) => (v === 0 ? 1 : 1 - (Math.log10(Math.abs(v)) - l0) / (l1 - l0)),
    ticks: [
      { frac: 1, label: fmt(sign * lo) },
      { frac: 0.5, label: fmt(sign * Math.sqrt(lo * hi)) },
      { frac: 0, label: fmt(sign * hi) },
    ],
    caption: 'log |value|',
  };
}

function niceStep(x: number): number {
  if (!(x > 0) || !Number.isFinite(x)) return 1;
  const e = Math.floor(Math.log10(x));
  const f = x / 10 ** e;
  const n = f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10;
  return n * 10 ** e;
}

function niceTicks(lo: number, hi: number, count: number): { lo: number; hi: number; ticks: number[] } {
  if (!(hi > lo)) {
    hi = lo === 0 ? 1 : lo + Math.abs(lo);
  }
  const step = niceStep((hi - lo) / count);
  const a = Math.floor(lo / step + 1e-9) * step;
  const b = Math.ceil(hi / step - 1e-9) * step;
  const ticks: number[] = [];
  for (let t = a; t <= b + step / 2; t += step) ticks.push(Math.abs(t) < step * 1e-9 ? 0 : Number(t.toPrecision(12)));
  return { lo: a, hi: b, ticks };
}

/** Show every `step`-th index so labels are at least `minGap` units apart. */
function labelStep(cell: number, minGap: number): number {
  const need = minGap / cell;
  for (const s of [1, 2, 4, 5, 10, 20, 25, 50, 100, 200, 500, 1000]) if (s >= need) return s;
  return Math.ceil(need);
}

function labelledIndices(n: number, cell: number, minGap: number): number[] {
  const step = labelStep(cell, minGap);
  const out: number[] = [];
  for (let i = 0; i < n; i += step) out.push(i);
  const last = n - 1;
  if (out[out.length - 1] !== last && (last - out[out.length - 1]!) * cell >= minGap) out.push(last);
  return out;
}

// ───────────────────────────── heatmaps ─────────────────────────────

interface HeatmapSpec {
  key: 'cka' | 'ckaUnbiased' | 'cosine' | 'brMatrix';
  title: string;
  about: string;
  matrix: Matrix;
  scale: 'unit' | 'cosine' | 'log';
}

function blockLabel(b: BlockInfo | undefined, i: number): string {
  return b ? `block ${i} · ${b.name}` : `block ${i}`;
}

function matrixValues(m: Matrix): number[] {
  const out: number[] = [];
  for (const row of m) for (const v of row ?? []) if (finite(v)) out.push(v);
  return out;
}

function heatmap(spec: HeatmapSpec, blocks: BlockInfo[]): string {
  const m = spec.matrix;
  const L = m.length;
  const values = matrixValues(m);
  const nulls = L * L - values.length;
  const dMin = values.length ? Math.min(...values) : 0;
  const dMax = values.length ? Math.max(...values) : 1;
  const scale =
    spec.scale === 'log'
      ? logMagnitudeScale(values)
      : spec.scale === 'cosine'
        ? linearScale(Math.min(dMin < 0 ? -1 : 0, dMin), Math.max(1, dMax))
        : linearScale(Math.min(0, dMin), Math.max(1, dMax));

  // 432 px for the grid, but small matrices get cells of at most 54 px.
  const P = Math.min(432, Math.max(1, L) * 54);
  const cell = L > 0 ? P / L : P;
  const legendH = Math.max(P, 150);
  const left = 40;
  const top = 10;
  const bottom = 40;
  const gap = 20;
  const legendW = 12;
  const legendLabels = 64;
  const W = left + P + gap + legendW + legendLabels;
  const H = top + Math.max(P, legendH) + bottom;
  const id = `hm-${spec.key}`;
  const showNumbers = L <= 12;

  const parts: string[] = [];
  parts.push(
    `<svg class="chart heatmap" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="${esc(spec.title)}, ${L} by ${L}">`,
    `<defs>${gradientDef(`${id}-grad`, true)}${hatchDef(`${id}-hatch`, Math.max(4, Math.min(8, cell / 2)))}</defs>`,
  );

  // cells
  parts.push(`<g class="cells" shape-rendering="crispEdges">`);
  for (let i = 0; i < L; i++) {
    const row = m[i] ?? [];
    for (let j = 0; j < L; j++) {
      const v = row[j];
      const x = c(left + j * cell);
      const y = c(top + i * cell);
      const w = c(cell + 0.02);
      const tip = `${i} × ${j}: ${finite(v) ? fmt(v, 4) : 'n/a'}\n${blockLabel(blocks[i], i)}\n${blockLabel(blocks[j], j)}`;
      if (finite(v)) {
        parts.push(`<rect class="c" x="${x}" y="${y}" width="${w}" height="${w}" fill="${rampColour(scale.frac(v))}"><title>${esc(tip)}</title></rect>`);
      } else {
        parts.push(`<rect class="c na" x="${x}" y="${y}" width="${w}" height="${w}" fill="url(#${id}-hatch)"><title>${esc(tip)}</title></rect>`);
      }
    }
  }
  parts.push(`</g>`);

  if (showNumbers && L > 0) {
    parts.push(`<g class="cell-values" pointer-events="none" text-anchor="middle" dominant-baseline="central">`);
    for (let i = 0; i < L; i++) {
      for (let j = 0; j < L; j++) {
        const v = m[i]?.[j];
        const label = finite(v) ? fmt(v, spec.scale === 'log' ? 2 : 3) : 'n/a';
        const size = Math.min(12, cell / 3.2, (cell * 0.88) / (label.length * 0.58));
        const cls = finite(v) ? (inkOn(scale.frac(v)) === '#ffffff' ? 'ink-light' : 'ink-dark') : 'na-text';
        parts.push(
          `<text class="${cls}" x="${c(left + (j + 0.5) * cell)}" y="${c(top + (i + 0.5) * cell)}" font-size="${c(size)}">${esc(label)}</text>`,
        );
      }
    }
    parts.push(`</g>`);
  }

  // axes: row labels left, column labels below
  const shown = labelledIndices(L, cell, 22);
  parts.push(`<g class="tick-labels">`);
  for (const i of shown) {
    const t = `<title>${esc(blockLabel(blocks[i], i))}</title>${i}`;
    parts.push(`<text class="tick" x="${left - 6}" y="${c(top + (i + 0.5) * cell)}" text-anchor="end" dominant-baseline="central">${t}</text>`);
    parts.push(`<text class="tick" x="${c(left + (i + 0.5) * cell)}" y="${top + P + 14}" text-anchor="middle">${t}</text>`);
  }
  parts.push(`</g>`);
  parts.push(
    `<text class="axis-title" x="${left + P / 2}" y="${top + P + 34}" text-anchor="middle">block</text>`,
    `<text class="axis-title" transform="translate(11 ${top + P / 2}) rotate(-90)" text-anchor="middle">block</text>`,
    `<rect class="frame" x="${left}" y="${top}" width="${P}" height="${P}" fill="none"/>`,
  );

  // legend
  const lx = left + P + gap;
  parts.push(`<rect x="${lx}" y="${top}" width="${legendW}" height="${legendH}" fill="url(#${id}-grad)" rx="2"/>`);
  for (const t of scale.ticks) {
    const y = top + (1 - t.frac) * legendH;
    parts.push(
      `<line class="legend-tick" x1="${lx + legendW}" x2="${lx + legendW + 4}" y1="${c(y)}" y2="${c(y)}"/>`,
      `<text class="tick" x="${lx + legendW + 7}" y="${c(y)}" dominant-baseline="${t.frac === 1 ? 'hanging' : t.frac === 0 ? 'auto' : 'central'}">${esc(t.label)}</text>`,
    );
  }
  parts.push(`</svg>`);

  const range = values.length
    ? `data ${esc(fmt(dMin))} … ${esc(fmt(dMax))}`
    : 'no values';
  const naNote = nulls > 0 ? ` · <span class="na-swatch"></span> ${nulls} n/a` : '';
  return (
    `<figure class="card heatmap-card" data-heatmap="${spec.key}" id="heatmap-${spec.key}">` +
    `<figcaption><h3>${esc(spec.title)}</h3><p class="muted">${spec.about}</p></figcaption>` +
    parts.join('') +
    `<p class="chart-note">${range} · colour ${esc(scale.caption)}, brighter = more similar${naNote}</p>` +
    `</figure>`
  );
}

// ───────────────────────────── bar charts ─────────────────────────────

interface BarSpec {
  key: string;
  title: string;
  about: string;
  /** Raw per-block values (null → n/a). */
  values: (number | null)[];
  /** Value plotted (e.g. −BR). */
  plot: (v: number) => number;
  yLabel: string;
  /** Blocks to draw in the accent colour. */
  highlight: number[];
  width: number;
  height: number;
  digits?: number;
}

/** Indices of the k smallest plotted values (most redundant), ties by index. */
function smallest(values: (number | null)[], plot: (v: number) => number, k: number): number[] {
  return values
    .map((v, i) => ({ v, i }))
    .filter((e): e is { v: number; i: number } => finite(e.v))
    .sort((a, b) => plot(a.v) - plot(b.v) || a.i - b.i)
    .slice(0, k)
    .map((e) => e.i);
}

function highlightCount(L: number): number {
  return Math.max(1, Math.min(3, Math.round(L / 6)));
}

function barChart(spec: BarSpec, blocks: BlockInfo[]): string {
  const L = spec.values.length;
  const W = spec.width;
  const H = spec.height;
  const left = 64;
  const right = 12;
  const top = 14;
  const bottom = 42;
  const PW = W - left - right;
  const PH = H - top - bottom;
  const id = `bar-${spec.key}`;
  const plotted = spec.values.map((v) => (finite(v) ? spec.plot(v) : null));
  const nums = plotted.filter(finite);
  const { lo, hi, ticks } = niceTicks(Math.min(0, ...nums), Math.max(0, ...nums), 4);
  const y = (v: number) => top + PH - ((v - lo) / (hi - lo)) * PH;
  const band = L > 0 ? PW / L : PW;
  const bw = Math.max(1, band * (L > 24 ? 0.78 : 0.68));
  const hl = new Set(spec.highlight);

  const parts: string[] = [];
  parts.push(
    `<svg class="chart bars" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="${esc(spec.title)}">`,
    `<defs>${hatchDef(`${id}-hatch`, 5)}</defs>`,
  );
  for (const t of ticks) {
    parts.push(
      `<line class="grid" x1="${left}" x2="${W - right}" y1="${c(y(t))}" y2="${c(y(t))}"/>`,
      `<text class="tick" x="${left - 6}" y="${c(y(t))}" text-anchor="end" dominant-baseline="central">${esc(fmt(t))}</text>`,
    );
  }
  parts.push(`<line class="axis" x1="${left}" x2="${W - right}" y1="${c(y(0))}" y2="${c(y(0))}"/>`);
  for (let i = 0; i < L; i++) {
    const x = left + i * band + (band - bw) / 2;
    const raw = spec.values[i];
    const name = blockLabel(blocks[i], i);
    const p = plotted[i];
    if (finite(p) && finite(raw)) {
      const y0 = y(0);
      const y1 = y(p);
      const h = Math.max(Math.abs(y0 - y1), p === 0 ? 0 : 0.75);
      const tip = `${name}\n${spec.yLabel}: ${fmt(p, 4)}${hl.has(i) ? '\n(among the most redundant)' : ''}`;
      parts.push(
        `<rect class="bar${hl.has(i) ? ' hl' : ''}" x="${c(x)}" y="${c(Math.min(y0, y1))}" width="${c(bw)}" height="${c(h)}" rx="${bw > 6 ? 1.5 : 0}"><title>${esc(tip)}</title></rect>`,
      );
    } else {
      parts.push(
        `<rect class="bar na" x="${c(x)}" y="${c(top)}" width="${c(bw)}" height="${c(PH)}" fill="url(#${id}-hatch)" opacity="0.6"><title>${esc(`${name}\nn/a`)}</title></rect>`,
      );
    }
  }
  for (const i of labelledIndices(L, band, 24)) {
    parts.push(
      `<text class="tick" x="${c(left + (i + 0.5) * band)}" y="${top + PH + 14}" text-anchor="middle"><title>${esc(blockLabel(blocks[i], i))}</title>${i}</text>`,
    );
  }
  parts.push(
    `<text class="axis-title" x="${left + PW / 2}" y="${H - 6}" text-anchor="middle">block</text>`,
    `<text class="axis-title" transform="translate(12 ${top + PH / 2}) rotate(-90)" text-anchor="middle">${esc(spec.yLabel)}</text>`,
    `</svg>`,
  );

  const chips = spec.highlight
    .map((i) => `<span class="chip hl-chip" title="${esc(blocks[i]?.name ?? '')}">#${i} <span class="muted">${esc(fmt(plotted[i], spec.digits ?? 3))}</span></span>`)
    .join(' ');
  return (
    `<figure class="card bar-card" data-bars="${esc(spec.key)}">` +
    `<figcaption><h3>${esc(spec.title)}</h3><p class="muted">${spec.about}</p></figcaption>` +
    parts.join('') +
    (chips ? `<p class="chart-note"><span class="legend-swatch hl"></span> least change: ${chips}</p>` : '') +
    `</figure>`
  );
}

// ───────────────────────────── DR curves ─────────────────────────────

interface CurveSpec {
  key: string;
  title: string;
  about: string;
  fractions: number[];
  mean: (number | null)[];
  std: (number | null)[];
  /** Score with all neurons (threshold = delta · full). */
  full: number;
  delta: number;
  value: number | null;
  yLabel: string;
  tone: 'a' | 'b';
  seeds?: number;
}

function curveChart(spec: CurveSpec): string {
  const W = 560;
  const H = 300;
  const left = 56;
  const right = 18;
  const top = 18;
  const bottom = 46;
  const PW = W - left - right;
  const PH = H - top - bottom;
  const positive = spec.fractions.filter((f) => f > 0);
  const fMin = positive.length ? Math.min(...positive) : 0.01;
  const lx0 = Math.log10(Math.min(fMin, 0.5));
  const lx1 = 0;
  const x = (f: number) => left + ((Math.log10(Math.max(f, 10 ** lx0)) - lx0) / (lx1 - lx0)) * PW;
  const hiData = Math.max(
    1,
    ...spec.mean.map((m, i) => (finite(m) ? m + (finite(spec.std[i]) ? spec.std[i]! : 0) : 0)),
  );
  const yTop = hiData > 1.05 ? niceTicks(0, hiData, 5).hi : 1;
  const yBot = Math.min(0, ...spec.mean.filter(finite).map((m, i) => m - (finite(spec.std[i]) ? spec.std[i]! : 0)));
  const y = (v: number) => top + PH - ((Math.min(yTop, Math.max(yBot, v)) - yBot) / (yTop - yBot)) * PH;

  const parts: string[] = [];
  parts.push(`<svg class="chart curve tone-${spec.tone}" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="${esc(spec.title)}">`);
  for (const t of niceTicks(yBot, yTop, 5).ticks.filter((t) => t >= yBot - 1e-9 && t <= yTop + 1e-9)) {
    parts.push(
      `<line class="grid" x1="${left}" x2="${W - right}" y1="${c(y(t))}" y2="${c(y(t))}"/>`,
      `<text class="tick" x="${left - 6}" y="${c(y(t))}" text-anchor="end" dominant-baseline="central">${esc(fmt(t))}</text>`,
    );
  }
  const xTicks = [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1].filter((f) => Math.log10(f) >= lx0 - 1e-9);
  for (const f of xTicks) {
    parts.push(
      `<line class="grid" x1="${c(x(f))}" x2="${c(x(f))}" y1="${top}" y2="${top + PH}"/>`,
      `<text class="tick" x="${c(x(f))}" y="${top + PH + 15}" text-anchor="middle">${esc(pct(f))}</text>`,
    );
  }
  parts.push(`<line class="axis" x1="${left}" x2="${W - right}" y1="${top + PH}" y2="${top + PH}"/>`);

  // runs of defined points
  const pts = spec.fractions.map((f, i) => ({ f, m: spec.mean[i], s: spec.std[i] }));
  const runs: { f: number; m: number; s: number }[][] = [];
  let cur: { f: number; m: number; s: number }[] = [];
  for (const p of pts) {
    if (finite(p.m) && p.f > 0) cur.push({ f: p.f, m: p.m, s: finite(p.s) ? p.s : 0 });
    else if (cur.length) {
      runs.push(cur);
      cur = [];
    }
  }
  if (cur.length) runs.push(cur);
  for (const run of runs) {
    const upper = run.map((p) => `${c(x(p.f))},${c(y(p.m + p.s))}`);
    const lower = run.map((p) => `${c(x(p.f))},${c(y(p.m - p.s))}`).reverse();
    parts.push(`<polygon class="band" points="${[...upper, ...lower].join(' ')}"/>`);
  }
  // threshold
  const thr = spec.delta * spec.full;
  parts.push(
    `<line class="threshold" x1="${left}" x2="${W - right}" y1="${c(y(thr))}" y2="${c(y(thr))}"/>`,
    `<text class="threshold-label halo" x="${left + 6}" y="${c(y(thr) - 6)}">δ = ${esc(fmt(spec.delta))} × full = ${esc(fmt(thr))}</text>`,
  );
  for (const run of runs) {
    parts.push(`<path class="line" d="${run.map((p, k) => `${k ? 'L' : 'M'}${c(x(p.f))} ${c(y(p.m))}`).join('')}"/>`);
  }
  for (const p of pts) {
    if (!finite(p.m) || !(p.f > 0)) continue;
    const tip = `${pct(p.f)} of neurons\nmean ${fmt(p.m, 4)}${finite(p.s) ? ` ± ${fmt(p.s, 3)}` : ''}${spec.seeds ? ` (${spec.seeds} seeds)` : ''}`;
    parts.push(`<circle class="pt" cx="${c(x(p.f))}" cy="${c(y(p.m))}" r="3.2"><title>${esc(tip)}</title></circle>`);
  }
  // DR marker
  if (finite(spec.value)) {
    const fStar = 1 - spec.value;
    const k = spec.fractions.findIndex((f) => Math.abs(f - fStar) < 1e-6);
    const mStar = k >= 0 && finite(spec.mean[k]) ? spec.mean[k]! : thr;
    const mx = x(Math.max(fStar, 10 ** lx0));
    const my = y(mStar);
    const label = `DR = ${fmt(spec.value)}`;
    const sub = `${pct(fStar)} of neurons suffice`;
    const toRight = mx < left + PW * 0.72;
    const tx = toRight ? mx + 9 : mx - 9;
    const anchor = toRight ? 'start' : 'end';
    const ty = Math.max(my + 40, top + PH * 0.55);
    parts.push(
      `<line class="dr-line" x1="${c(mx)}" x2="${c(mx)}" y1="${top}" y2="${top + PH}"/>`,
      `<circle class="dr-pt" cx="${c(mx)}" cy="${c(my)}" r="5.5"><title>${esc(`${label}: ${sub}`)}</title></circle>`,
      `<text class="dr-label halo" x="${c(tx)}" y="${c(ty)}" text-anchor="${anchor}">${esc(label)}</text>`,
      `<text class="dr-sub halo" x="${c(tx)}" y="${c(ty + 15)}" text-anchor="${anchor}">${esc(sub)}</text>`,
    );
  }
  parts.push(
    `<text class="axis-title" x="${left + PW / 2}" y="${H - 8}" text-anchor="middle">fraction of neurons kept (log scale)</text>`,
    `<text class="axis-title" transform="translate(13 ${top + PH / 2}) rotate(-90)" text-anchor="middle">${esc(spec.yLabel)}</text>`,
    `</svg>`,
  );
  const valueNote = finite(spec.value)
    ? `DR(δ = ${esc(fmt(spec.delta))}) = <b>${esc(fmt(spec.value))}</b>`
    : `DR(δ = ${esc(fmt(spec.delta))}) = <b>n/a</b> (the threshold is not reached)`;
  return (
    `<figure class="card curve-card" data-curve="${esc(spec.key)}">` +
    `<figcaption><h3>${esc(spec.title)}</h3><p class="muted">${spec.about}</p></figcaption>` +
    parts.join('') +
    `<p class="chart-note"><span class="legend-line tone-${spec.tone}"></span> mean${spec.seeds ? ` over ${spec.seeds} seeds` : ''} <span class="legend-band tone-${spec.tone}"></span> ± 1 std <span class="legend-dash"></span> threshold · ${valueNote}</p>` +
    `</figure>`
  );
}

/** At most this many columns in a per-class strip; more classes are shown in groups. */
const MAX_CLASS_COLUMNS = 100;

/**
 * Rows of per-class values in [0, 1] as a heat strip, with extra text columns on the right.
 * With more than MAX_CLASS_COLUMNS classes, consecutive classes are grouped and each column
 * shows the group's mean (the tooltip gives its range).
 */
function classStrip(
  key: string,
  rows: { label: string; values: number[]; extra: string[] }[],
  extraHeads: string[],
  classes: number,
  rowTitle: string,
): string {
  const group = Math.max(1, Math.ceil(classes / MAX_CLASS_COLUMNS));
  const cols = Math.ceil(classes / group);
  const left = 64;
  const colW = 70;
  const SW = 1100 - left - colW * extraHeads.length - 10;
  const rowH = rows.length > 1 ? 18 : 26;
  const top = 24;
  const W = left + SW + 10 + colW * extraHeads.length;
  const H = top + rows.length * rowH + 40;
  const cw = cols > 0 ? SW / cols : SW;
  const parts: string[] = [];
  parts.push(`<svg class="chart strip" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="${esc(rowTitle || 'per-class accuracy')}">`);
  parts.push(`<defs>${gradientDef(`strip-${key}-grad`, false)}${hatchDef(`strip-${key}-hatch`, 5)}</defs>`);
  parts.push(`<text class="tick strong" x="${left - 8}" y="${top - 9}" text-anchor="end">${esc(rowTitle)}</text>`);
  extraHeads.forEach((h, k) => {
    parts.push(`<text class="tick strong" x="${c(left + SW + 10 + colW * (k + 0.5))}" y="${top - 9}" text-anchor="middle">${esc(h)}</text>`);
  });
  parts.push(`<g shape-rendering="crispEdges">`);
  rows.forEach((row, r) => {
    const y0 = top + r * rowH;
    parts.push(`<text class="tick" x="${left - 8}" y="${c(y0 + rowH / 2)}" text-anchor="end" dominant-baseline="central">${esc(row.label)}</text>`);
    for (let k = 0; k < cols; k++) {
      const from = k * group;
      const to = Math.min(classes, from + group) - 1;
      const vals = row.values.slice(from, to + 1).filter(finite);
      const v = vals.length ? vals.reduce((a, b) => a + b, 0) / vals.length : null;
      const fill = finite(v) ? rampColour(v) : `url(#strip-${key}-hatch)`;
      const who = group === 1 ? `class ${from}` : `classes ${from}–${to} (mean)`;
      const tip = `${row.label ? `${row.label} · ` : ''}${who}: ${finite(v) ? pct1(v) : 'n/a'}`;
      parts.push(`<rect class="c" x="${c(left + k * cw)}" y="${c(y0 + 1)}" width="${c(cw + 0.02)}" height="${rowH - 2}" fill="${fill}"><title>${esc(tip)}</title></rect>`);
    }
    row.extra.forEach((e, k) => {
      parts.push(`<text class="tick num" x="${c(left + SW + 10 + colW * (k + 0.5))}" y="${c(y0 + rowH / 2)}" text-anchor="middle" dominant-baseline="central">${esc(e)}</text>`);
    });
  });
  parts.push(`</g>`);
  const yAxis = top + rows.length * rowH;
  for (const k of labelledIndices(cols, cw, group === 1 ? 22 : 36)) {
    parts.push(`<text class="tick" x="${c(left + (k + 0.5) * cw)}" y="${yAxis + 13}" text-anchor="middle">${k * group}</text>`);
  }
  const lgW = 160;
  const lgX = left + SW - lgW;
  parts.push(
    `<text class="axis-title" x="${left}" y="${H - 6}">${group === 1 ? 'class' : `class (columns of ${group} classes, mean)`}</text>`,
    `<rect x="${lgX}" y="${H - 16}" width="${lgW}" height="8" rx="2" fill="url(#strip-${key}-grad)"/>`,
    `<text class="tick" x="${lgX - 6}" y="${H - 8}" text-anchor="end">accuracy 0%</text>`,
    `<text class="tick" x="${lgX + lgW + 6}" y="${H - 8}">100%</text>`,
    `</svg>`,
  );
  return parts.join('');
}

// ───────────────────────────── sections ─────────────────────────────

function kv(label: string, valueHtml: string, title?: string): string {
  return `<div class="kv"><dt>${esc(label)}</dt><dd${title ? ` title="${esc(title)}"` : ''}>${valueHtml}</dd></div>`;
}

function mono(s: string): string {
  return `<code>${esc(s)}</code>`;
}

function header(r: AnalysisReport): string {
  const m = r.model;
  const file = baseName(m.path);
  const items = [
    kv('sha256', mono(m.sha256.slice(0, 12) + (m.sha256.length > 12 ? '…' : '')), m.sha256),
    kv('opset', esc(m.opsetVersion), `IR version ${m.irVersion}`),
    kv('IR', esc(m.irVersion)),
    kv('parameters', esc(fmtCompact(m.parameters)), `${fmtInt(m.parameters)} parameters`),
  ];
  if (m.sizeBytes !== undefined) items.push(kv('size', esc(fmtBytes(m.sizeBytes)), `${fmtInt(m.sizeBytes)} bytes`));
  if (m.producer) items.push(kv('producer', esc(m.producer)));
  items.push(kv('blocks', esc(r.blocks.length)));
  return (
    `<header class="page-head">` +
    `<div class="brand">BlockLens · block redundancy report</div>` +
    `<h1>${esc(file)}</h1>` +
    `<p class="path" title="${esc(m.path)}">${esc(m.path)}</p>` +
    `<dl class="meta">${items.join('')}</dl>` +
    `<nav class="toc"><a href="#similarity">Similarity</a><a href="#per-block">Per-block change</a><a href="#diffused">Diffused redundancy</a><a href="#blocks">Blocks</a><a href="#run">Run details</a></nav>` +
    `</header>`
  );
}

function syntheticBanner(r: AnalysisReport): string {
  if (r.calibration.source !== 'synthetic') return '';
  return (
    `<aside class="callout info" role="note" data-synthetic>` +
    `<div class="callout-icon" aria-hidden="true">i</div><div>` +
    `<strong>Synthetic calibration data — synthetic data shows structure, not task behaviour.</strong>` +
    `<p>These numbers describe how the network transforms random inputs. Before removing blocks, re-run with real inputs (an <code>.npy</code>/<code>.npz</code> file, an image folder or token ids).</p>` +
    `</div></aside>`
  );
}

function warningsBlock(r: AnalysisReport): string {
  if (!r.warnings.length) return '';
  return (
    `<aside class="callout warn" role="note" data-warnings>` +
    `<div class="callout-icon" aria-hidden="true">!</div><div>` +
    `<strong>${r.warnings.length === 1 ? '1 warning' : `${r.warnings.length} warnings`}</strong>` +
    `<ul>${r.warnings.map((w) => `<li>${esc(w)}</li>`).join('')}</ul>` +
    `</div></aside>`
  );
}

function mostRedundantByBr(r: AnalysisReport): number[] {
  return smallest(r.metrics.br, (v) => -v, highlightCount(r.blocks.length));
}

function summary(r: AnalysisReport): string {
  const L = r.blocks.length;
  const cards: string[] = [];
  const ms = r.metrics.msrs;
  const pairs = (L * (L - 1)) / 2;
  const gauge = finite(ms.normalized)
    ? `<div class="gauge" title="normalised MSRS ${esc(fmt(ms.normalized, 4))}"><i style="width:${c(Math.min(1, Math.max(0, ms.normalized)) * 100)}%"></i></div>`
    : '';
  cards.push(
    `<div class="kpi" data-kpi="msrs"><div class="kpi-label">MSRS</div><div class="kpi-value">${esc(fmt(ms.value, 4))}</div>` +
      `<div class="kpi-sub">L = ${esc(ms.layers)} block${ms.layers === 1 ? '' : 's'} · ${esc(fmtInt(pairs))} pair${pairs === 1 ? '' : 's'}</div>` +
      `<div class="kpi-sub">normalised <b>${esc(fmt(ms.normalized, 3))}</b></div>${gauge}` +
      `<div class="kpi-foot">β = ${esc(fmt(ms.beta))}, τ = ${esc(fmt(ms.tau))}, unbiased CKA</div></div>`,
  );
  const top = mostRedundantByBr(r);
  if (top.length) {
    const b = top[0]!;
    cards.push(
      `<div class="kpi" data-kpi="most-redundant"><div class="kpi-label">Least change</div><div class="kpi-value">#${b}</div>` +
        `<div class="kpi-sub"><code>${esc(r.blocks[b]?.name ?? '')}</code></div>` +
        `<div class="kpi-foot">highest BR ${esc(fmt(r.metrics.br[b], 3))}${top.length > 1 ? ` · then ${top.slice(1).map((i) => `#${i}`).join(', ')}` : ''}</div></div>`,
    );
  }
  const dr = r.metrics.dr;
  if (dr) {
    cards.push(
      `<div class="kpi" data-kpi="dr"><div class="kpi-label">DR · CKA</div><div class="kpi-value">${esc(fmt(dr.value, 3))}</div>` +
        `<div class="kpi-sub">block #${esc(dr.block)} · δ = ${esc(fmt(dr.delta))}</div>` +
        `<div class="kpi-foot">${finite(dr.value) ? `${esc(pct(1 - dr.value))} of neurons keep ${esc(pct(dr.delta, 2))} of the similarity` : 'threshold not reached'}</div></div>`,
    );
    if (dr.probe) {
      const p = dr.probe;
      cards.push(
        `<div class="kpi" data-kpi="probe-dr"><div class="kpi-label">DR · linear probe</div><div class="kpi-value">${esc(fmt(p.value, 3))}</div>` +
          `<div class="kpi-sub">block #${esc(dr.block)} · full-layer accuracy ${esc(pct1(p.fullAccuracy))}</div>` +
          `<div class="kpi-foot">${esc(p.classes)} classes · ${esc(fmtInt(p.trainSamples))} train / ${esc(fmtInt(p.testSamples))} test</div></div>`,
      );
    }
  }
  if (r.modelAccuracy) {
    const a = r.modelAccuracy;
    cards.push(
      `<div class="kpi" data-kpi="accuracy"><div class="kpi-label">Model accuracy</div><div class="kpi-value">${esc(pct1(a.accuracy))}</div>` +
        `<div class="kpi-sub">on ${esc(fmtInt(a.samples))} labelled samples</div>` +
        `<div class="kpi-foot">${a.perClass ? `${a.perClass.length} classes, per class below` : '&nbsp;'}</div></div>`,
    );
  }
  return `<section class="kpis">${cards.join('')}</section>`;
}

function similaritySection(r: AnalysisReport): string {
  const m = r.metrics;
  const specs: HeatmapSpec[] = [
    { key: 'cka', title: 'Linear CKA', about: 'Biased estimator on the full calibration set. 1 = same representation up to rotation and scale.', matrix: m.cka, scale: 'unit' },
    { key: 'ckaUnbiased', title: 'Unbiased CKA (minibatch)', about: 'Nguyen et al. estimator averaged over batches; the input to MSRS. May dip slightly below 0.', matrix: m.ckaUnbiased, scale: 'unit' },
    { key: 'cosine', title: 'Cosine similarity', about: 'Mean cosine between the pooled outputs of two blocks for the same input.', matrix: m.cosine, scale: 'cosine' },
    { key: 'brMatrix', title: 'BR matrix', about: '−mean squared difference between block outputs of equal width; 0 = identical. Colour on a log scale.', matrix: m.brMatrix, scale: 'log' },
  ];
  return (
    `<section id="similarity"><div class="section-head"><h2>Similarity between blocks</h2>` +
    `<p class="muted">Each cell compares the outputs of two blocks (pooling: <code>${esc(r.pooling.used)}</code>). A bright square on the diagonal is a run of blocks that barely change the representation — a candidate span to replace by one linear map. Hatched cells have no value (n/a), e.g. blocks of different widths.</p></div>` +
    `<div class="grid2">${specs.map((s) => heatmap(s, r.blocks)).join('')}</div></section>`
  );
}

function perBlockSection(r: AnalysisReport): string {
  const L = r.blocks.length;
  const k = highlightCount(L);
  const m = r.metrics;
  const charts: string[] = [];
  charts.push(
    barChart(
      {
        key: 'br',
        title: 'Block redundancy: change each block makes',
        about: 'Bars show −BR = mean squared change ‖h<sub>b</sub> − h<sub>b−1</sub>‖² per feature. Short bars = the block barely changes its input (high BR, most redundant).',
        values: m.br,
        plot: (v) => -v,
        yLabel: '−BR (mean sq. change)',
        highlight: smallest(m.br, (v) => -v, k),
        width: 1140,
        height: 250,
      },
      r.blocks,
    ),
  );
  const half: string[] = [];
  if (m.relativeMse) {
    half.push(
      barChart(
        {
          key: 'relativeMse',
          title: 'Relative change',
          about: 'Scale-free BR: ‖Δ‖² / ‖h<sub>b−1</sub>‖². Comparable across depths where the residual stream grows.',
          values: m.relativeMse,
          plot: (v) => v,
          yLabel: 'relative MSE',
          highlight: smallest(m.relativeMse, (v) => v, k),
          width: 560,
          height: 230,
        },
        r.blocks,
      ),
    );
  }
  if (m.blockInfluence) {
    half.push(
      barChart(
        {
          key: 'blockInfluence',
          title: 'Block influence',
          about: 'ShortGPT BI = 1 − E[cos(h<sub>b−1</sub>, h<sub>b</sub>)]. Near 0 = the block hardly turns its input.',
          values: m.blockInfluence,
          plot: (v) => v,
          yLabel: 'block influence',
          highlight: smallest(m.blockInfluence, (v) => v, k),
          width: 560,
          height: 230,
        },
        r.blocks,
      ),
    );
  }
  return (
    `<section id="per-block"><div class="section-head"><h2>Per-block change</h2>` +
    `<p class="muted">How much each block changes the representation it receives. Highlighted in orange: the ${k === 1 ? 'block' : `${k} blocks`} with the least change in each measure.</p></div>` +
    charts.join('') +
    (half.length ? `<div class="grid2">${half.join('')}</div>` : '') +
    `</section>`
  );
}

function drSection(r: AnalysisReport): string {
  const dr: DrInfo | null = r.metrics.dr;
  const head = `<div class="section-head"><h2>Diffused redundancy</h2>`;
  if (!dr) {
    return `<section id="diffused">${head}<p class="muted">Not computed for this run.</p></div></section>`;
  }
  const block = r.blocks[dr.block];
  const fullIdx = dr.fractions.findIndex((f) => Math.abs(f - 1) < 1e-9);
  const full = fullIdx >= 0 && finite(dr.mean[fullIdx]) ? dr.mean[fullIdx]! : 1;
  const curves: string[] = [
    curveChart({
      key: 'dr',
      title: 'Similarity of a random neuron subset to the whole layer',
      about: `CKA(subset, full layer) for random subsets of block #${esc(dr.block)}'s neurons.`,
      fractions: dr.fractions,
      mean: dr.mean,
      std: dr.std,
      full,
      delta: dr.delta,
      value: dr.value,
      yLabel: 'CKA to full layer',
      tone: 'a',
      seeds: dr.seeds,
    }),
  ];
  let probeHtml = '';
  if (dr.probe) {
    const p: ProbeDrInfo = dr.probe;
    curves.push(
      curveChart({
        key: 'probe',
        title: 'Linear-probe accuracy from a neuron subset',
        about: `Held-out accuracy of a linear probe trained on the subset (${esc(p.classes)} classes).`,
        fractions: p.fractions,
        mean: p.mean,
        std: p.std,
        full: p.fullAccuracy,
        delta: p.delta,
        value: p.value,
        yLabel: 'probe accuracy',
        tone: 'b',
        seeds: dr.seeds,
      }),
    );
    const rows = p.fractions.map((f, i) => ({
      label: pct(f),
      values: p.perClass[i] ?? [],
      extra: [pct1(p.mean[i]), fmt(p.gini[i], 3), fmt(p.cv[i], 3)],
    }));
    probeHtml =
      `<figure class="card" data-per-class>` +
      `<figcaption><h3>Per-class probe accuracy by fraction of neurons</h3>` +
      `<p class="muted">Each row is one subset size; each column one class${p.classes > MAX_CLASS_COLUMNS ? ` (here a group of ${Math.ceil(p.classes / MAX_CLASS_COLUMNS)} consecutive classes)` : ''}. Gini and CV measure how unevenly accuracy is spread over classes — rising values at small fractions mean some classes lose out first.</p></figcaption>` +
      classStrip('probe', rows, ['mean', 'Gini', 'CV'], p.classes, 'neurons') +
      `</figure>`;
  }
  return (
    `<section id="diffused">${head}` +
    `<p class="muted">Measured on block #${esc(dr.block)}${block ? ` <code>${esc(block.name)}</code>` : ''} with ${esc(dr.seeds)} random subsets per size. DR(δ) = 1 − the smallest fraction of neurons whose mean score reaches δ × the full layer's score: high DR means the information is spread over many neurons.</p></div>` +
    `<div class="grid2">${curves.join('')}</div>${probeHtml}</section>`
  );
}

function accuracySection(r: AnalysisReport): string {
  const a = r.modelAccuracy;
  if (!a?.perClass?.length) return '';
  return (
    `<figure class="card" data-model-accuracy><figcaption><h3>Model accuracy per class</h3>` +
    `<p class="muted">Overall ${esc(pct1(a.accuracy))} on ${esc(fmtInt(a.samples))} samples.</p></figcaption>` +
    classStrip('model', [{ label: 'model', values: a.perClass, extra: [pct1(a.accuracy)] }], ['overall'], a.perClass.length, '') +
    `</figure>`
  );
}

function blockTable(r: AnalysisReport): string {
  const m = r.metrics;
  const hl = new Set(mostRedundantByBr(r));
  const changes = m.br.filter(finite).map((v) => Math.abs(v));
  const maxChange = changes.length ? Math.max(...changes) : 0;
  const hasRel = !!m.relativeMse;
  const hasBi = !!m.blockInfluence;
  const rows = r.blocks.map((b, i) => {
    const br = m.br[i];
    const bar = finite(br) && maxChange > 0 ? `<span class="mini"><i style="width:${c((Math.abs(br) / maxChange) * 100)}%"></i></span>` : '';
    return (
      `<tr${hl.has(i) ? ' class="hl"' : ''}>` +
      `<td class="num">${i}</td>` +
      `<td class="name"><code>${esc(b.name)}</code></td>` +
      `<td class="name"><code>${esc(b.output)}</code></td>` +
      `<td class="num" title="${esc(fmtInt(b.parameters))}">${esc(fmtCompact(b.parameters))}</td>` +
      `<td class="num"><span class="br-wrap">${bar}<span>${esc(fmt(br, 4))}</span></span></td>` +
      (hasRel ? `<td class="num">${esc(fmt(m.relativeMse![i], 3))}</td>` : '') +
      (hasBi ? `<td class="num">${esc(fmt(m.blockInfluence![i], 3))}</td>` : '') +
      `</tr>`
    );
  });
  return (
    `<section id="blocks"><div class="section-head"><h2>Blocks</h2>` +
    `<p class="muted">${esc(r.blocks.length)} blocks in order. Highlighted rows have the highest BR (least change). The bar in the BR column is |BR| relative to the largest.</p></div>` +
    `<div class="card table-card"><table class="blocks"><thead><tr><th class="num">#</th><th>Block</th><th>Output tensor</th><th class="num">Params</th><th class="num">BR</th>` +
    (hasRel ? `<th class="num">rel. MSE</th>` : '') +
    (hasBi ? `<th class="num">BI</th>` : '') +
    `</tr></thead><tbody>${rows.join('')}</tbody></table></div></section>`
  );
}

function jsonish(v: unknown): string {
  if (typeof v === 'string') return v;
  if (typeof v === 'number') return fmt(v, 4);
  try {
    return JSON.stringify(v, (_k, x) => (typeof x === 'number' ? Number(x.toPrecision(4)) : x)) ?? String(v);
  } catch {
    return String(v);
  }
}

function runSection(r: AnalysisReport): string {
  const cal = r.calibration;
  const calItems = [
    kv('source', `<span class="badge${cal.source === 'synthetic' ? ' badge-synth' : ''}">${esc(cal.source)}</span>`),
    ...(cal.path ? [kv('path', mono(cal.path))] : []),
    kv('samples', esc(fmtInt(cal.samples))),
    kv('batch size', esc(fmtInt(cal.batchSize))),
    kv('seed', esc(cal.seed)),
    ...(cal.heldOut !== undefined ? [kv('held out', esc(pct(cal.heldOut)))] : []),
    ...(cal.labels ? [kv('labels', `${esc(cal.labels.source)} · ${esc(cal.labels.classes)} classes`)] : []),
    ...cal.inputs.map((inp) =>
      kv(`input`, `${mono(inp.name)} <span class="muted">${esc(inp.dtype)} [${esc(inp.shape.join(' × '))}]${inp.fill ? ` · ${esc(inp.fill)}` : ''}</span>`),
    ),
    ...(cal.checksum ? [kv('checksum', mono(cal.checksum.slice(0, 12) + (cal.checksum.length > 12 ? '…' : '')), cal.checksum)] : []),
    ...Object.entries(cal.preprocessing ?? {}).map(([k, v]) => kv(k, mono(jsonish(v)))),
    ...(cal.note ? [kv('note', esc(cal.note))] : []),
  ];
  const p = r.pooling;
  const poolItems = [
    kv('used', `<span class="badge">${esc(p.used)}</span>${p.requested !== p.used ? ` <span class="muted">(requested ${esc(p.requested)})</span>` : ''}`),
    kv('why', esc(p.reason)),
  ];
  const d = r.detection;
  const detItems = [
    kv('method', `<span class="badge">${esc(d.method)}</span>`),
    kv('how', esc(d.explanation)),
    kv('block input', d.blockInput === null ? '<span class="muted">unknown</span>' : mono(d.blockInput)),
  ];
  let timings = '';
  if (r.timings && Object.keys(r.timings).length) {
    const entries = Object.entries(r.timings).filter(([, v]) => finite(v));
    const max = Math.max(1e-9, ...entries.map(([, v]) => v));
    const total = entries.reduce((s, [, v]) => s + v, 0);
    timings =
      `<div class="card" data-timings><h3>Timings</h3><table class="timings"><tbody>` +
      entries
        .map(
          ([k, v]) =>
            `<tr><td>${esc(k)}</td><td class="tbar"><span class="mini wide"><i style="width:${c((v / max) * 100)}%"></i></span></td><td class="num">${esc(fmtMs(v))}</td></tr>`,
        )
        .join('') +
      `<tr class="total"><td>total</td><td></td><td class="num">${esc(fmtMs(total))}</td></tr></tbody></table></div>`;
  }
  return (
    `<section id="run"><div class="section-head"><h2>Run details</h2></div><div class="grid3">` +
    `<div class="card"><h3>Calibration</h3><dl class="kvs">${calItems.join('')}</dl></div>` +
    `<div class="card"><h3>Pooling</h3><dl class="kvs">${poolItems.join('')}</dl><h3 class="spaced">Block detection</h3><dl class="kvs">${detItems.join('')}</dl></div>` +
    (timings || `<div class="card"><h3>Timings</h3><p class="muted">Not recorded.</p></div>`) +
    `</div></section>`
  );
}

function overviewStrip(r: AnalysisReport): string {
  const cal = r.calibration;
  return (
    `<section class="overview">` +
    `<div><span class="ov-label">Calibration</span> <span class="badge${cal.source === 'synthetic' ? ' badge-synth' : ''}">${esc(cal.source)}</span> ${esc(fmtInt(cal.samples))} samples${cal.path ? ` · <code>${esc(baseName(cal.path))}</code>` : ''}</div>` +
    `<div><span class="ov-label">Pooling</span> <span class="badge">${esc(r.pooling.used)}</span> ${esc(r.pooling.reason)}</div>` +
    `<div><span class="ov-label">Blocks found by</span> <span class="badge">${esc(r.detection.method)}</span> ${esc(r.detection.explanation)}</div>` +
    `</section>`
  );
}

function footer(r: AnalysisReport): string {
  const t = Date.parse(r.createdAt);
  const when = Number.isNaN(t) ? r.createdAt : new Date(t).toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC').replace(/Z$/, ' UTC');
  return (
    `<footer>${esc(r.tool.name)} ${esc(r.tool.version)} · report schema v${esc(r.schemaVersion)}` +
    `${r.schemaVersion !== SCHEMA_VERSION ? ` (this page renders v${SCHEMA_VERSION})` : ''} · created <time datetime="${esc(r.createdAt)}">${esc(when)}</time></footer>`
  );
}

// ───────────────────────────── page ─────────────────────────────

const CSS = `
:root{color-scheme:light dark;--bg:#f4f5f7;--card:#ffffff;--fg:#1a1f29;--muted:#5e6878;--line:#e1e5eb;--grid:#eceff3;--axis:#9aa3b0;
--bar:#7b93b8;--accent:#e06a1b;--accent-soft:#fdf1e7;--warn-bg:#fff8e8;--warn-line:#e3a93b;--info-bg:#edf4fc;--info-line:#4f8ad0;
--na-bg:#eef0f3;--na-line:#b9c0ca;--a:#3567b5;--a-band:rgba(53,103,181,.16);--b:#1f8f68;--b-band:rgba(31,143,104,.16);--thr:#b0413e;--code:#f0f2f5}
@media (prefers-color-scheme:dark){:root{--bg:#121419;--card:#1b1e25;--fg:#e5e8ee;--muted:#99a3b3;--line:#2c313b;--grid:#262a33;--axis:#5c6573;
--bar:#7f97c0;--accent:#ff8c3a;--accent-soft:#3a2818;--warn-bg:#2e2614;--warn-line:#c9942f;--info-bg:#172333;--info-line:#5d97dc;
--na-bg:#262a31;--na-line:#4a515d;--a:#79a6ef;--a-band:rgba(121,166,239,.18);--b:#4fc79a;--b-band:rgba(79,199,154,.16);--thr:#e2716d;--code:#242833}}
*{box-sizing:border-box}
html{-webkit-text-size-adjust:100%}
body{margin:0;background:var(--bg);color:var(--fg);font:14px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;font-variant-numeric:tabular-nums}
main{max-width:1240px;margin:0 auto;padding:28px 32px 40px}
h1{font-size:28px;line-height:1.2;margin:2px 0 2px;font-weight:650;letter-spacing:-.01em;word-break:break-all}
h2{font-size:19px;margin:0 0 4px;font-weight:650}
h3{font-size:14.5px;margin:0 0 2px;font-weight:620}
h3.spaced{margin-top:18px}
p{margin:0}
code{font:12.5px/1.4 ui-monospace,"SF Mono",Menlo,Consolas,"Liberation Mono",monospace;background:var(--code);padding:1px 5px;border-radius:4px;word-break:break-all}
a{color:var(--a);text-decoration:none}
a:hover{text-decoration:underline}
.muted{color:var(--muted)}
.brand{font-size:12px;font-weight:600;letter-spacing:.08em;text-transform:uppercase;color:var(--muted)}
.path{color:var(--muted);font-size:13px;margin-bottom:14px;word-break:break-all}
.page-head{margin-bottom:18px}
.meta{display:flex;flex-wrap:wrap;gap:8px;margin:0 0 14px}
.meta .kv{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:6px 12px;min-width:86px}
.meta dt{font-size:11px;text-transform:uppercase;letter-spacing:.06em;color:var(--muted)}
.meta dd{margin:0;font-weight:600}
.toc{display:flex;gap:4px;flex-wrap:wrap;border-bottom:1px solid var(--line);padding-bottom:10px}
.toc a{padding:3px 10px;border-radius:999px;font-size:13px;color:var(--muted)}
.toc a:hover{background:var(--card);color:var(--fg);text-decoration:none}
.callout{display:flex;gap:12px;border-radius:10px;padding:12px 16px;margin:0 0 14px;border:1px solid}
.callout p{margin-top:2px;color:var(--muted)}
.callout ul{margin:4px 0 0;padding-left:18px}
.callout li+li{margin-top:2px}
.callout-icon{flex:none;width:22px;height:22px;border-radius:50%;display:grid;place-items:center;font-weight:700;font-size:13px;color:#fff;margin-top:1px}
.callout.info{background:var(--info-bg);border-color:var(--info-line)}
.callout.info .callout-icon{background:var(--info-line)}
.callout.warn{background:var(--warn-bg);border-color:var(--warn-line)}
.callout.warn .callout-icon{background:var(--warn-line)}
.overview{display:grid;gap:6px;background:var(--card);border:1px solid var(--line);border-radius:10px;padding:12px 16px;margin-bottom:16px;font-size:13.5px}
.ov-label{display:inline-block;min-width:120px;color:var(--muted);font-size:12px;text-transform:uppercase;letter-spacing:.05em}
.badge{display:inline-block;padding:0 8px;border-radius:999px;background:var(--code);border:1px solid var(--line);font-size:12.5px;font-weight:600;margin-right:4px}
.badge-synth{background:var(--info-bg);border-color:var(--info-line)}
.kpis{display:grid;grid-template-columns:repeat(auto-fit,minmax(210px,1fr));gap:14px;margin:0 0 30px}
.kpi{background:var(--card);border:1px solid var(--line);border-radius:12px;padding:14px 16px;display:flex;flex-direction:column;gap:2px;min-width:0}
.kpi-label{font-size:12px;text-transform:uppercase;letter-spacing:.06em;color:var(--muted)}
.kpi-value{font-size:30px;font-weight:650;line-height:1.15;letter-spacing:-.01em}
.kpi-sub{font-size:13px;overflow:hidden;text-overflow:ellipsis}
.kpi-foot{font-size:12px;color:var(--muted);margin-top:auto;padding-top:4px}
.gauge{height:6px;border-radius:3px;background:var(--grid);overflow:hidden;margin:6px 0 2px}
.gauge i{display:block;height:100%;background:var(--a)}
section{margin:0 0 34px}
.section-head{margin:0 0 14px;max-width:900px}
.section-head p{margin-top:2px}
.grid2{display:grid;grid-template-columns:repeat(auto-fit,minmax(500px,1fr));gap:18px}
.grid3{display:grid;grid-template-columns:repeat(auto-fit,minmax(320px,1fr));gap:18px;align-items:start}
.card{background:var(--card);border:1px solid var(--line);border-radius:12px;padding:16px 18px;margin:0 0 18px;min-width:0}
.grid2>.card,.grid3>.card{margin:0}
.grid2+.card,.card+.grid2{margin-top:18px}
figure{margin:0}
figcaption{margin-bottom:10px}
figcaption p{font-size:13px}
.heatmap-card figcaption{min-height:62px}
svg.chart{display:block;max-width:100%;height:auto;margin:0 auto;overflow:visible}
svg text{fill:var(--muted);font-family:inherit}
svg .tick{font-size:11px}
svg .tick.strong{font-weight:600;fill:var(--fg)}
svg .axis-title{font-size:12px;fill:var(--fg);font-weight:550}
svg .grid{stroke:var(--grid);stroke-width:1}
svg .axis{stroke:var(--axis);stroke-width:1}
svg .frame{stroke:var(--line)}
svg .legend-tick{stroke:var(--axis)}
svg .na-bg{fill:var(--na-bg)}
svg .na-line{stroke:var(--na-line);stroke-width:1.6}
svg .na-text{fill:var(--muted)}
svg .ink-light{fill:#ffffff}svg .ink-dark{fill:#14161a}
svg rect.c:hover{stroke:var(--fg);stroke-width:1.5}
svg .bar{fill:var(--bar)}
svg .bar.hl{fill:var(--accent)}
svg .bar:hover{opacity:.8}
svg .band{stroke:none}
svg.tone-a .band{fill:var(--a-band)}svg.tone-b .band{fill:var(--b-band)}
svg .line{fill:none;stroke-width:2.2;stroke-linejoin:round}
svg.tone-a .line{stroke:var(--a)}svg.tone-b .line{stroke:var(--b)}
svg .pt{stroke:var(--card);stroke-width:1.5}
svg.tone-a .pt{fill:var(--a)}svg.tone-b .pt{fill:var(--b)}
svg .threshold{stroke:var(--thr);stroke-width:1.3;stroke-dasharray:5 4}
svg .threshold-label{fill:var(--thr);font-size:11px}
svg .dr-line{stroke:var(--accent);stroke-width:1.3;stroke-dasharray:2 3}
svg .dr-pt{fill:var(--accent);stroke:var(--card);stroke-width:2}
svg .dr-label{fill:var(--accent);font-size:13px;font-weight:650}
svg .dr-sub{font-size:11px}
svg .halo{paint-order:stroke;stroke:var(--card);stroke-width:4px;stroke-linejoin:round}
.chart-note{font-size:12.5px;color:var(--muted);margin-top:8px;display:flex;flex-wrap:wrap;align-items:center;gap:6px}
.na-swatch,.legend-swatch{display:inline-block;width:12px;height:12px;border-radius:2px;vertical-align:-2px}
.na-swatch{background:repeating-linear-gradient(45deg,var(--na-line) 0 1.5px,var(--na-bg) 1.5px 5px);border:1px solid var(--line)}
.legend-swatch.hl{background:var(--accent)}
.legend-line{display:inline-block;width:18px;height:0;border-top:2.5px solid}
.legend-line.tone-a{border-color:var(--a)}.legend-line.tone-b{border-color:var(--b)}
.legend-band{display:inline-block;width:18px;height:10px;border-radius:2px;margin-left:8px}
.legend-band.tone-a{background:var(--a-band)}.legend-band.tone-b{background:var(--b-band)}
.legend-dash{display:inline-block;width:18px;border-top:1.5px dashed var(--thr);margin-left:8px}
.chip{display:inline-block;padding:0 8px;border-radius:999px;border:1px solid var(--line);font-size:12px;font-weight:600}
.hl-chip{background:var(--accent-soft);border-color:var(--accent)}
.table-card{padding:4px 0;overflow-x:auto}
table{border-collapse:collapse;width:100%}
table.blocks th,table.blocks td{padding:6px 14px;text-align:left;border-bottom:1px solid var(--line);vertical-align:middle}
table.blocks th{font-size:12px;text-transform:uppercase;letter-spacing:.05em;color:var(--muted);font-weight:600;position:sticky;top:0;background:var(--card)}
table.blocks tbody tr:last-child td{border-bottom:none}
table.blocks tbody tr:hover{background:var(--bg)}
table.blocks tr.hl td{background:var(--accent-soft)}
table.blocks tr.hl td:first-child{box-shadow:inset 3px 0 0 var(--accent)}
td.name code{background:none;padding:0}
table.blocks .num,table.timings .num{text-align:right;white-space:nowrap}
.br-wrap{display:inline-flex;align-items:center;gap:8px}
.mini{display:inline-block;width:64px;height:6px;border-radius:3px;background:var(--grid);overflow:hidden}
.mini.wide{width:100%}
.mini i{display:block;height:100%;background:var(--bar)}
tr.hl .mini i{background:var(--accent)}
.kvs{margin:8px 0 0;display:grid;grid-template-columns:max-content 1fr;gap:5px 14px;font-size:13.5px}
.kvs .kv{display:contents}
.kvs dt{color:var(--muted)}
.kvs dd{margin:0;min-width:0;overflow-wrap:anywhere}
table.timings{margin-top:8px;font-size:13.5px}
table.timings td{padding:4px 0}
table.timings td:first-child{padding-right:12px;color:var(--muted);white-space:nowrap}
table.timings td.tbar{width:100%}
table.timings td.num{padding-left:12px}
table.timings tr.total td{border-top:1px solid var(--line);padding-top:7px;font-weight:600;color:var(--fg)}
footer{border-top:1px solid var(--line);padding-top:14px;color:var(--muted);font-size:12.5px}
@media print{body{background:#fff}.card,.kpi{break-inside:avoid}}
`;

/** Render the report as a single self-contained HTML page (no scripts, no network). */
export function renderReportHtml(report: AnalysisReport): string {
  const r = report;
  const title = `BlockLens · ${baseName(r.model.path)}`;
  const body = [
    header(r),
    syntheticBanner(r),
    warningsBlock(r),
    overviewStrip(r),
    summary(r),
    similaritySection(r),
    perBlockSection(r),
    drSection(r),
    accuracySection(r) ? `<section id="accuracy"><div class="section-head"><h2>Model accuracy</h2></div>${accuracySection(r)}</section>` : '',
    blockTable(r),
    runSection(r),
    footer(r),
  ].join('\n');
  return (
    `<!doctype html>\n<html lang="en"><head><meta charset="utf-8">` +
    `<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">` +
    `<meta name="viewport" content="width=device-width, initial-scale=1">` +
    `<meta name="color-scheme" content="light dark">` +
    `<meta name="generator" content="${esc(r.tool.name)} ${esc(r.tool.version)}">` +
    `<title>${esc(title)}</title><style>${CSS}</style></head>\n` +
    `<body><main>\n${body}\n</main></body></html>\n`
  );
}
