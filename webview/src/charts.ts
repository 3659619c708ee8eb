// Per-block bar charts and the DR curves: d3 scales and axes, SVG marks, a hidden table each.
import { axisBottom, axisLeft } from 'd3-axis';
import { scaleBand, scaleLinear, scaleLog, scaleSequential } from 'd3-scale';
import { interpolateViridis } from 'd3-scale-chromatic';
import { select } from 'd3-selection';
import type { BlockInfo } from '../../src/engine/report/schema.js';
import { inkOn } from './colour.js';
import { h, hiddenTable, s } from './dom.js';
import { finite, fmt, labelledIndices, pct, pct1 } from './format.js';
import type { Tooltip } from './tooltip.js';

export interface BarSpec {
  key: string;
  title: string;
  about: string;
  values: (number | null)[];
  /** Value → bar height (e.g. −BR). */
  plot: (v: number) => number;
  yLabel: string;
  highlight: number[];
  width: number;
  height: number;
}

export function barChart(spec: BarSpec, blocks: BlockInfo[], tooltip: Tooltip, onPick: (block: number) => void): HTMLElement {
  const L = spec.values.length;
  const left = 64;
  const right = 12;
  const top = 12;
  const bottom = 40;
  const iw = spec.width - left - right;
  const ih = spec.height - top - bottom;
  const plotted = spec.values.map((v) => (finite(v) ? spec.plot(v) : null));
  const maxV = Math.max(0, ...plotted.filter(finite));
  const minV = Math.min(0, ...plotted.filter(finite));
  const x = scaleBand<number>().domain(Array.from({ length: L }, (_, k) => k)).range([0, iw]).padding(L > 40 ? 0.1 : 0.2);
  // Values spanning more than two decades (all positive) get a log axis, so small bars stay visible.
  const positive = plotted.filter((v): v is number => finite(v) && v > 0);
  const log = positive.length === plotted.filter(finite).length && positive.length > 1 && Math.max(...positive) / Math.min(...positive) > 100;
  const y = log
    ? scaleLog().domain([Math.min(...positive) / 3, Math.max(...positive) * 1.2]).range([ih, 0])
    : scaleLinear().domain([minV, maxV || 1]).nice().range([ih, 0]);
  const hl = new Set(spec.highlight);
  const svg = s('svg', {
    class: 'chart bars',
    viewBox: `0 0 ${spec.width} ${spec.height}`,
    width: spec.width,
    height: spec.height,
    role: 'img',
    'aria-label': `${spec.title}: bar chart of ${spec.yLabel} for ${L} blocks; the values are in the table that follows.`,
    'data-bars': spec.key,
    'data-scale': log ? 'log' : 'linear',
  });
  const g = s('g', { transform: `translate(${left},${top})` });
  svg.append(g);
  const yAxis = s('g', { class: 'axis y-axis' });
  g.append(yAxis);
  select(yAxis as SVGGElement).call(axisLeft(y as ReturnType<typeof scaleLinear<number>>).ticks(log ? 4 : 5).tickSize(-iw).tickFormat((v) => fmt(Number(v), 2)));
  yAxis.querySelectorAll('.tick line').forEach((l) => l.setAttribute('class', 'grid'));
  if (log) {
    // d3 log ticks label every minor step; keep about five labels.
    const t = yAxis.querySelectorAll('.tick');
    const every = Math.ceil(t.length / 5);
    t.forEach((tick, k) => k % every !== 0 && tick.remove());
  }
  const xAxis = s('g', { class: 'axis x-axis', transform: `translate(0,${ih})` });
  g.append(xAxis);
  const ticks = labelledIndices(L, x.step(), 24);
  select(xAxis as SVGGElement).call(axisBottom(x).tickValues(ticks).tickSize(3).tickFormat((i) => String(i)));
  g.append(s('text', { class: 'axis-title', x: iw / 2, y: ih + 34, 'text-anchor': 'middle' }, 'block'));
  g.append(s('text', { class: 'axis-title', transform: `translate(${-50},${ih / 2}) rotate(-90)`, 'text-anchor': 'middle' }, spec.yLabel));
  const bars = s('g', { class: 'bar-marks' });
  g.append(bars);
  plotted.forEach((p, i) => {
    if (p === null) return;
    const y0 = log ? y(p) : y(Math.max(0, p));
    const y1 = log ? ih : y(Math.min(0, p));
    const bar = s('rect', {
      class: hl.has(i) ? 'bar hl' : 'bar',
      x: x(i)!.toFixed(2),
      y: y0.toFixed(2),
      width: x.bandwidth().toFixed(2),
      height: Math.max(0.5, y1 - y0).toFixed(2),
      'data-block': i,
    });
    bars.append(bar);
  });
  svg.addEventListener('pointerover', (e) => {
    const t = e.target as Element;
    if (!t.classList?.contains('bar')) return;
    const i = Number((t as SVGElement).dataset.block);
    tooltip.show(t, [`${i} · ${blocks[i]?.name ?? ''}`, `${spec.yLabel} ${fmt(spec.values[i] !== null ? spec.plot(spec.values[i]!) : null, 4)}`, 'Click: select this block']);
  });
  svg.addEventListener('pointerleave', () => tooltip.hide());
  svg.addEventListener('click', (e) => {
    const t = e.target as Element;
    if (t.classList?.contains('bar')) onPick(Number((t as SVGElement).dataset.block));
  });
  return h(
    'figure',
    { class: 'card', 'data-chart': spec.key },
    h('figcaption', {}, h('h3', {}, spec.title), h('p', { class: 'muted' }, spec.about)),
    h('div', { class: 'chart-scroll' }, svg),
    log ? h('p', { class: 'chart-note' }, 'log scale: the values span more than two decades') : null,
    hiddenTable(spec.title, ['block', spec.yLabel], spec.values.map((v, i) => [`${i} · ${blocks[i]?.name ?? ''}`, fmt(v, 4)])),
  );
}

export interface CurveSpec {
  key: string;
  title: string;
  about: string;
  fractions: number[];
  mean: (number | null)[];
  std: (number | null)[];
  full: number;
  delta: number;
  value: number | null;
  yLabel: string;
  tone: 'a' | 'b';
  seeds: number;
}

/** Mean ± std over seeds per fraction of neurons, with error bars, the δ·full threshold and the DR point. */
export function curveChart(spec: CurveSpec, tooltip: Tooltip): HTMLElement {
  const W = 540;
  const H = 280;
  const left = 56;
  const right = 16;
  const top = 14;
  const bottom = 42;
  const iw = W - left - right;
  const ih = H - top - bottom;
  const pts = spec.fractions.map((f, k) => ({ f, m: spec.mean[k], sd: spec.std[k] ?? 0 })).filter((p): p is { f: number; m: number; sd: number } => finite(p.m));
  const yMax = Math.max(spec.full, ...pts.map((p) => p.m + (p.sd ?? 0)));
  const yMin = Math.min(0, ...pts.map((p) => p.m - (p.sd ?? 0)));
  const x = scaleLinear().domain([0, 1]).range([0, iw]);
  const y = scaleLinear().domain([yMin, yMax]).nice().range([ih, 0]);
  const svg = s('svg', {
    class: `chart curve tone-${spec.tone}`,
    viewBox: `0 0 ${W} ${H}`,
    width: W,
    height: H,
    role: 'img',
    'aria-label': `${spec.title}: ${spec.yLabel} against the fraction of neurons kept, mean ± std over ${spec.seeds} seeds. DR = ${fmt(spec.value, 3)}. The values are in the table that follows.`,
    'data-curve': spec.key,
  });
  const g = fractionAxes(svg, left, top, x, y, iw, ih);
  g.append(s('text', { class: 'axis-title', transform: `translate(${-42},${ih / 2}) rotate(-90)`, 'text-anchor': 'middle' }, spec.yLabel));
  const thr = spec.delta * spec.full;
  g.append(s('line', { class: 'threshold', x1: 0, x2: iw, y1: y(thr).toFixed(2), y2: y(thr).toFixed(2) }));
  g.append(s('text', { class: 'threshold-label', x: iw - 4, y: (y(thr) - 5).toFixed(2), 'text-anchor': 'end' }, `δ = ${fmt(spec.delta)} × full`));
  // Error bars (± one std over seeds) with caps, then the mean line and points.
  for (const p of pts) {
    if (!(p.sd > 0)) continue;
    const cx = x(p.f);
    const a = y(p.m - p.sd);
    const b = y(p.m + p.sd);
    g.append(
      s('path', {
        class: 'errbar',
        d: `M${cx.toFixed(2)},${a.toFixed(2)}V${b.toFixed(2)}M${(cx - 4).toFixed(2)},${a.toFixed(2)}h8M${(cx - 4).toFixed(2)},${b.toFixed(2)}h8`,
      }),
    );
  }
  g.append(s('path', { class: 'line', d: pts.map((p, k) => `${k ? 'L' : 'M'}${x(p.f).toFixed(2)},${y(p.m).toFixed(2)}`).join('') }));
  for (const p of pts) {
    const pt = s('circle', { class: 'pt', cx: x(p.f).toFixed(2), cy: y(p.m).toFixed(2), r: 3.5, 'data-f': p.f });
    g.append(pt);
  }
  if (finite(spec.value)) {
    const f = 1 - spec.value;
    g.append(s('line', { class: 'dr-line', x1: x(f).toFixed(2), x2: x(f).toFixed(2), y1: 0, y2: ih }));
    g.append(s('text', { class: 'dr-label halo', x: (x(f) + 6).toFixed(2), y: (ih - 10).toFixed(2) }, `DR = ${fmt(spec.value, 3)}`));
  }
  svg.addEventListener('pointerover', (e) => {
    const t = e.target as Element;
    if (!t.classList?.contains('pt')) return;
    const f = Number((t as SVGElement).dataset.f);
    const p = pts.find((q) => q.f === f);
    if (p) tooltip.show(t, [`${pct(f)} of neurons`, `${spec.yLabel} ${fmt(p.m, 4)} ± ${fmt(p.sd, 2)}`]);
  });
  svg.addEventListener('pointerleave', () => tooltip.hide());
  return h(
    'figure',
    { class: 'card', 'data-chart': spec.key },
    h('figcaption', {}, h('h3', {}, spec.title), h('p', { class: 'muted' }, spec.about)),
    h('div', { class: 'chart-scroll' }, svg),
    h(
      'p',
      { class: 'chart-note' },
      h('span', { class: `legend-line tone-${spec.tone}`, 'aria-hidden': 'true' }),
      `mean over ${spec.seeds} seeds, bars ± 1 std · `,
      h('span', { class: 'legend-dash', 'aria-hidden': 'true' }),
      ` threshold δ · full = ${fmt(thr, 3)}`,
    ),
    hiddenTable(spec.title, ['fraction', 'mean', 'std'], spec.fractions.map((f, k) => [pct(f), fmt(spec.mean[k] ?? null, 4), fmt(spec.std[k] ?? null, 3)])),
  );
}

/** Gini (and CV) of per-class probe accuracy against the fraction of neurons. */
export function giniChart(fractions: number[], gini: number[], cv: number[], tooltip: Tooltip): HTMLElement {
  const W = 540;
  const H = 240;
  const left = 56;
  const right = 16;
  const top = 14;
  const bottom = 42;
  const iw = W - left - right;
  const ih = H - top - bottom;
  const x = scaleLinear().domain([0, 1]).range([0, iw]);
  const y = scaleLinear()
    .domain([0, Math.max(0.05, ...gini.filter(finite), ...cv.filter(finite))])
    .nice()
    .range([ih, 0]);
  const svg = s('svg', {
    class: 'chart curve',
    viewBox: `0 0 ${W} ${H}`,
    width: W,
    height: H,
    role: 'img',
    'aria-label': 'Gini and coefficient of variation of per-class probe accuracy against the fraction of neurons kept; the values are in the table that follows.',
    'data-curve': 'gini',
  });
  const g = fractionAxes(svg, left, top, x, y, iw, ih);
  const series: [string, number[], string][] = [
    ['Gini', gini, 'tone-a'],
    ['CV', cv, 'tone-b'],
  ];
  for (const [name, vals, tone] of series) {
    const pts = fractions.map((f, k) => ({ f, v: vals[k] })).filter((p): p is { f: number; v: number } => finite(p.v));
    const sg = s('g', { class: tone });
    sg.append(s('path', { class: 'line', d: pts.map((p, k) => `${k ? 'L' : 'M'}${x(p.f).toFixed(2)},${y(p.v).toFixed(2)}`).join('') }));
    for (const p of pts) sg.append(s('circle', { class: 'pt', cx: x(p.f).toFixed(2), cy: y(p.v).toFixed(2), r: 3, 'data-f': p.f, 'data-series': name }));
    g.append(sg);
  }
  svg.addEventListener('pointerover', (e) => {
    const t = e.target as SVGElement;
    if (!t.classList?.contains('pt')) return;
    const f = Number(t.dataset.f);
    const k = fractions.indexOf(f);
    tooltip.show(t, [`${pct(f)} of neurons`, `Gini ${fmt(gini[k] ?? null, 3)} · CV ${fmt(cv[k] ?? null, 3)}`]);
  });
  svg.addEventListener('pointerleave', () => tooltip.hide());
  return h(
    'figure',
    { class: 'card', 'data-chart': 'gini' },
    h('figcaption', {}, h('h3', {}, 'Per-class Gini of probe accuracy'), h('p', { class: 'muted' }, 'How unevenly probe accuracy is spread over classes. Rising values at small fractions mean some classes lose out first.')),
    h('div', { class: 'chart-scroll' }, svg),
    h('p', { class: 'chart-note' }, h('span', { class: 'legend-line tone-a', 'aria-hidden': 'true' }), ' Gini ', h('span', { class: 'legend-line tone-b', 'aria-hidden': 'true' }), ' CV'),
    hiddenTable('Per-class spread of probe accuracy', ['fraction', 'Gini', 'CV'], fractions.map((f, k) => [pct(f), fmt(gini[k] ?? null, 3), fmt(cv[k] ?? null, 3)])),
  );
}

const MAX_CLASS_COLUMNS = 100;

/** Rows × classes of accuracies as a strip of viridis cells; classes beyond 100 are grouped. */
export function classStrip(key: string, rows: { label: string; values: number[]; extra: string[] }[], extraHead: string[], classes: number, tooltip: Tooltip): HTMLElement {
  const group = Math.max(1, Math.ceil(classes / MAX_CLASS_COLUMNS));
  const cols = Math.ceil(classes / group);
  const cw = Math.max(6, Math.min(28, Math.floor(600 / Math.max(1, cols))));
  const rh = 20;
  const left = 64;
  const extraW = 64;
  const W = left + cols * cw + 12 + extraHead.length * extraW;
  const H = 22 + rows.length * rh + 8;
  const colour = scaleSequential(interpolateViridis).domain([0, 1]).clamp(true);
  const svg = s('svg', {
    class: 'chart strip',
    viewBox: `0 0 ${W} ${H}`,
    width: W,
    height: H,
    role: 'img',
    'aria-label': `Per-class accuracy, ${rows.length} rows by ${classes} classes; the values are in the table that follows.`,
    'data-strip': key,
  });
  extraHead.forEach((t, k) => svg.append(s('text', { class: 'tick strong', x: left + cols * cw + 12 + k * extraW + extraW - 8, y: 14, 'text-anchor': 'end' }, t)));
  svg.append(s('text', { class: 'tick', x: left, y: 14 }, group > 1 ? `classes (groups of ${group})` : 'classes'));
  rows.forEach((row, r) => {
    const y0 = 22 + r * rh;
    svg.append(s('text', { class: 'tick', x: left - 8, y: y0 + rh / 2, 'text-anchor': 'end', 'dominant-baseline': 'central' }, row.label));
    for (let c = 0; c < cols; c++) {
      const slice = row.values.slice(c * group, (c + 1) * group).filter(finite);
      const v = slice.length ? slice.reduce((a, b) => a + b, 0) / slice.length : null;
      const fill = v === null ? 'none' : colour(v);
      const cell = s('rect', { class: 'sc', x: left + c * cw, y: y0, width: cw - 1, height: rh - 2, fill, 'data-v': v ?? '', 'data-c': c, 'data-r': r });
      svg.append(cell);
      if (cw >= 26 && v !== null) svg.append(s('text', { class: `cell-value ${inkOn(fill)}`, x: left + c * cw + cw / 2, y: y0 + rh / 2 - 1, 'text-anchor': 'middle', 'dominant-baseline': 'central', 'aria-hidden': 'true' }, String(Math.round(v * 100))));
    }
    row.extra.forEach((t, k) => svg.append(s('text', { class: 'tick strong', x: left + cols * cw + 12 + k * extraW + extraW - 8, y: y0 + rh / 2, 'text-anchor': 'end', 'dominant-baseline': 'central' }, t)));
  });
  svg.addEventListener('pointerover', (e) => {
    const t = e.target as SVGElement;
    if (!t.classList?.contains('sc')) return;
    const c = Number(t.dataset.c);
    const r = Number(t.dataset.r);
    const label = group > 1 ? `classes ${c * group}–${Math.min(classes, (c + 1) * group) - 1}` : `class ${c}`;
    tooltip.show(t, [`${rows[r]!.label} · ${label}`, `accuracy ${pct1(t.dataset.v === '' ? null : Number(t.dataset.v))}`]);
  });
  svg.addEventListener('pointerleave', () => tooltip.hide());
  return h(
    'div',
    { class: 'chart-scroll' },
    svg,
    hiddenTable('Per-class accuracy', ['row', ...Array.from({ length: classes }, (_, c) => `class ${c}`), ...extraHead], rows.map((row) => [row.label, ...row.values.map((v) => pct1(v)), ...row.extra])),
  );
}

/** The plot area of a curve against the fraction of neurons kept: y grid and x axis (0–100 %), titled. */
function fractionAxes(svg: SVGElement, left: number, top: number, x: ReturnType<typeof scaleLinear<number>>, y: ReturnType<typeof scaleLinear<number>>, iw: number, ih: number): SVGElement {
  const g = s('g', { transform: `translate(${left},${top})` });
  svg.append(g);
  const yAxis = s('g', { class: 'axis y-axis' });
  g.append(yAxis);
  select(yAxis as SVGGElement).call(axisLeft(y).ticks(5).tickSize(-iw).tickFormat((v) => fmt(Number(v), 2)));
  yAxis.querySelectorAll('.tick line').forEach((l) => l.setAttribute('class', 'grid'));
  const xAxis = s('g', { class: 'axis x-axis', transform: `translate(0,${ih})` });
  g.append(xAxis);
  select(xAxis as SVGGElement).call(axisBottom(x).ticks(5).tickSize(3).tickFormat((v) => pct(Number(v), 2)));
  g.append(s('text', { class: 'axis-title', x: iw / 2, y: ih + 36, 'text-anchor': 'middle' }, 'fraction of neurons kept'));
  return g;
}
