// A block-by-block heatmap: band scales on both axes, a viridis colour scale, d3 axes with block
// names, a colour legend. Cells are focusable (roving tabindex; arrow keys, Home/End, Enter or
// Space selects the span), hover and focus show the value in the shared tooltip.
import { axisBottom, axisLeft, axisRight } from 'd3-axis';
import { scaleBand, scaleLinear, scaleLog } from 'd3-scale';
import { select } from 'd3-selection';
import type { BlockInfo, Matrix } from '../../src/engine/report/schema.js';
import { colourScale, inkOn, matrixValues } from './colour.js';
import { h, hiddenTable, s, uniqueId } from './dom.js';
import { finite, fmt, labelledIndices, shortBlockName } from './format.js';
import { spanOfCell, type MetricSpec, type Span } from './state.js';
import type { Tooltip } from './tooltip.js';

export interface HeatmapOptions {
  metric: MetricSpec;
  matrix: Matrix;
  blocks: BlockInfo[];
  selection: Span | null;
  focus: { i: number; j: number };
  tooltip: Tooltip;
  onSelect(span: Span, cell: { i: number; j: number }): void;
  onFocus(cell: { i: number; j: number }): void;
}

export interface Heatmap {
  element: HTMLElement;
  svg: SVGSVGElement;
  setSelection(span: Span | null): void;
  focusCell(i: number, j: number): void;
}

/** Above this many blocks the hidden value table is left out (it would be L² cells). */
const MAX_TABLE_BLOCKS = 64;

function blockLabel(blocks: BlockInfo[], i: number): string {
  const b = blocks[i];
  return b ? `${i} · ${b.name}` : `${i}`;
}

export function heatmap(o: HeatmapOptions): Heatmap {
  const L = o.matrix.length;
  const values = matrixValues(o.matrix);
  const scale = colourScale(o.metric.scale, values);
  const id = uniqueId(`hm-${o.metric.key}`);

  const grid = Math.min(480, Math.max(1, L) * 44);
  const cell = L > 0 ? grid / L : grid;
  const labelChars = Math.min(20, Math.max(3, ...o.blocks.map((b, i) => `${i} ${shortBlockName(b.name)}`.length)));
  const left = Math.round(14 + labelChars * 6.4);
  const top = 8;
  const bottom = 44;
  const legendW = 12;
  const legendGap = 22;
  const right = legendGap + legendW + 56;
  const W = left + grid + right;
  const H = top + grid + bottom;

  const x = scaleBand<number>().domain(Array.from({ length: L }, (_, k) => k)).range([0, grid]);
  const y = scaleBand<number>().domain(Array.from({ length: L }, (_, k) => k)).range([0, grid]);

  const svg = s('svg', {
    class: 'chart heatmap',
    viewBox: `0 0 ${W.toFixed(1)} ${H}`,
    width: W.toFixed(1),
    height: H,
    role: 'group',
    'aria-label': `${o.metric.title} heatmap, ${L} × ${L} blocks. Arrow keys move between cells, Enter selects the span.`,
    'data-heatmap': o.metric.key,
  }) as SVGSVGElement;
  const defs = s('defs');
  const hatch = s('pattern', { id: `${id}-hatch`, width: 6, height: 6, patternUnits: 'userSpaceOnUse', patternTransform: 'rotate(45)' });
  hatch.append(s('rect', { class: 'na-bg', width: 6, height: 6 }), s('line', { class: 'na-line', x1: 0, y1: 0, x2: 0, y2: 6 }));
  const grad = s('linearGradient', { id: `${id}-ramp`, x1: 0, y1: 1, x2: 0, y2: 0 });
  for (let k = 0; k <= 10; k++) grad.append(s('stop', { offset: k / 10, 'stop-color': scale.ramp(k / 10) }));
  defs.append(hatch, grad);
  svg.append(defs);

  const plot = s('g', { transform: `translate(${left},${top})` });
  svg.append(plot);
  const cellsG = s('g', { class: 'cells' });
  plot.append(cellsG);

  const showValues = cell >= 30;
  const rects: SVGRectElement[] = new Array(L * L);
  let nulls = 0;
  for (let i = 0; i < L; i++) {
    for (let j = 0; j < L; j++) {
      const v = o.matrix[i]?.[j];
      const ok = finite(v);
      if (!ok) nulls++;
      const colour = ok ? scale.colour(v) : `url(#${id}-hatch)`;
      const r = s('rect', {
        class: ok ? 'c' : 'c na',
        x: x(j)!.toFixed(2),
        y: y(i)!.toFixed(2),
        width: x.bandwidth().toFixed(2),
        height: y.bandwidth().toFixed(2),
        fill: colour,
        tabindex: -1,
        role: 'button',
        'data-i': i,
        'data-j': j,
        'aria-label': `${blockLabel(o.blocks, i)} and ${blockLabel(o.blocks, j)}: ${o.metric.label} ${ok ? fmt(v, 4) : 'n/a'}`,
      }) as SVGRectElement;
      rects[i * L + j] = r;
      cellsG.append(r);
      if (showValues) {
        const t = s(
          'text',
          {
            class: `cell-value ${ok ? inkOn(colour) : 'na-text'}`,
            x: (x(j)! + cell / 2).toFixed(2),
            y: (y(i)! + cell / 2).toFixed(2),
            'text-anchor': 'middle',
            'dominant-baseline': 'central',
            'aria-hidden': 'true',
          },
          ok ? fmt(v, o.metric.scale === 'log' ? 2 : 2) : 'n/a',
        );
        cellsG.append(t);
      }
    }
  }
  const selRect = s('rect', { class: 'selection', fill: 'none', visibility: 'hidden', 'pointer-events': 'none' }) as SVGRectElement;
  const focusRect = s('rect', { class: 'focus-ring', fill: 'none', visibility: 'hidden', 'pointer-events': 'none' }) as SVGRectElement;
  plot.append(selRect, focusRect);

  // Axes from the band scales; labels thin out when cells get small.
  const rowTicks = labelledIndices(L, cell, 13);
  const colTicks = labelledIndices(L, cell, 22);
  const yAxis = s('g', { class: 'axis y-axis' });
  plot.append(yAxis);
  select(yAxis as SVGGElement).call(
    axisLeft(y)
      .tickValues(rowTicks)
      .tickSize(3)
      .tickFormat((i) => `${i} ${o.blocks[i] ? shortBlockName(o.blocks[i]!.name) : ''}`.trim()),
  );
  yAxis.querySelectorAll('.tick').forEach((t, k) => {
    const i = rowTicks[k]!;
    t.append(s('title', {}, blockLabel(o.blocks, i)));
  });
  const xAxis = s('g', { class: 'axis x-axis', transform: `translate(0,${grid})` });
  plot.append(xAxis);
  select(xAxis as SVGGElement).call(axisBottom(x).tickValues(colTicks).tickSize(3).tickFormat((i) => String(i)));
  xAxis.querySelectorAll('.tick').forEach((t, k) => t.append(s('title', {}, blockLabel(o.blocks, colTicks[k]!))));
  plot.append(s('text', { class: 'axis-title', x: grid / 2, y: grid + 34, 'text-anchor': 'middle' }, 'block'));

  // Legend: a gradient bar with an axis on the value scale the colours come from.
  const lg = s('g', { class: 'legend', transform: `translate(${grid + legendGap},0)` });
  lg.append(s('rect', { x: 0, y: 0, width: legendW, height: grid, fill: `url(#${id}-ramp)`, class: 'legend-bar' }));
  const [d0, d1] = scale.legendDomain;
  const legendAxis = s('g', { class: 'axis legend-axis', transform: `translate(${legendW},0)` });
  lg.append(legendAxis);
  if (scale.log) {
    // Values ≤ 0: the axis runs over |v| on a log scale and labels carry the sign.
    const sign = d0 < 0 ? -1 : 1;
    const ls = scaleLog().domain([Math.abs(d0), Math.abs(d1)]).range([grid, 0]);
    select(legendAxis as SVGGElement).call(axisRight(ls).ticks(4).tickSize(3).tickFormat((v) => fmt(sign * Number(v), 2)));
    // Keep the legend readable: at most ~6 labels.
    const ticks = legendAxis.querySelectorAll('.tick');
    const every = Math.ceil(ticks.length / 6);
    ticks.forEach((t, k) => {
      if (k % every !== 0) t.querySelector('text')?.remove();
    });
  } else {
    const ls = scaleLinear().domain([d0, d1]).range([grid, 0]);
    select(legendAxis as SVGGElement).call(axisRight(ls).ticks(5).tickSize(3).tickFormat((v) => fmt(Number(v), 2)));
  }
  lg.append(s('text', { class: 'legend-caption', x: 0, y: grid + 34 }, scale.caption));
  svg.append(lg);
  lg.setAttribute('transform', `translate(${left + grid + legendGap},${top})`);

  // Interaction.
  let focus = { i: Math.min(o.focus.i, L - 1), j: Math.min(o.focus.j, L - 1) };
  if (L > 0) rects[focus.i * L + focus.j]!.setAttribute('tabindex', '0');
  const cellOf = (el: EventTarget | null): { i: number; j: number } | null => {
    const r = el as Element | null;
    if (!r || !(r instanceof SVGRectElement) || !r.classList.contains('c')) return null;
    return { i: Number(r.dataset.i), j: Number(r.dataset.j) };
  };
  const tipLines = (i: number, j: number): string[] => {
    const v = o.matrix[i]?.[j];
    const span = spanOfCell(i, j);
    return [
      `${blockLabel(o.blocks, i)}  ×  ${blockLabel(o.blocks, j)}`,
      `${o.metric.label} ${finite(v) ? fmt(v, 4) : 'n/a'}`,
      `Click or Enter: select span ${span.from}→${span.to}`,
    ];
  };
  const placeRing = (ring: SVGRectElement, i0: number, j0: number, i1: number, j1: number, pad: number) => {
    ring.setAttribute('x', (x(j0)! - pad).toFixed(2));
    ring.setAttribute('y', (y(i0)! - pad).toFixed(2));
    ring.setAttribute('width', (x(j1)! + x.bandwidth() - x(j0)! + 2 * pad).toFixed(2));
    ring.setAttribute('height', (y(i1)! + y.bandwidth() - y(i0)! + 2 * pad).toFixed(2));
    ring.setAttribute('visibility', 'visible');
  };
  const focusCell = (i: number, j: number, moveFocus = true) => {
    const prev = rects[focus.i * L + focus.j];
    prev?.setAttribute('tabindex', '-1');
    focus = { i, j };
    const r = rects[i * L + j]!;
    r.setAttribute('tabindex', '0');
    if (moveFocus) r.focus();
    o.onFocus(focus);
  };
  svg.addEventListener('pointerover', (e) => {
    const c = cellOf(e.target);
    if (c) o.tooltip.show(e.target as Element, tipLines(c.i, c.j));
  });
  svg.addEventListener('pointerleave', () => o.tooltip.hide());
  svg.addEventListener('click', (e) => {
    const c = cellOf(e.target);
    if (!c) return;
    focusCell(c.i, c.j);
    o.onSelect(spanOfCell(c.i, c.j), c);
  });
  svg.addEventListener('focusin', (e) => {
    const c = cellOf(e.target);
    if (!c) return;
    placeRing(focusRect, c.i, c.j, c.i, c.j, 0);
    o.tooltip.show(e.target as Element, tipLines(c.i, c.j));
  });
  svg.addEventListener('focusout', () => {
    focusRect.setAttribute('visibility', 'hidden');
    o.tooltip.hide();
  });
  svg.addEventListener('keydown', (e) => {
    const c = cellOf(e.target);
    if (!c) return;
    let { i, j } = c;
    switch (e.key) {
      case 'ArrowUp': i = Math.max(0, i - 1); break;
      case 'ArrowDown': i = Math.min(L - 1, i + 1); break;
      case 'ArrowLeft': j = Math.max(0, j - 1); break;
      case 'ArrowRight': j = Math.min(L - 1, j + 1); break;
      case 'Home': j = 0; if (e.ctrlKey) i = 0; break;
      case 'End': j = L - 1; if (e.ctrlKey) i = L - 1; break;
      case 'Enter':
      case ' ':
        e.preventDefault();
        o.onSelect(spanOfCell(i, j), { i, j });
        return;
      case 'Escape':
        o.tooltip.hide();
        return;
      default:
        return;
    }
    e.preventDefault();
    focusCell(i, j);
  });

  const setSelection = (span: Span | null) => {
    if (!span || L === 0) {
      selRect.setAttribute('visibility', 'hidden');
      return;
    }
    const a = Math.max(0, Math.min(L - 1, span.from));
    const b = Math.max(0, Math.min(L - 1, span.to));
    placeRing(selRect, a, a, b, b, 1);
    for (const r of rects) r?.removeAttribute('aria-pressed');
    rects[a * L + b]?.setAttribute('aria-pressed', 'true');
  };
  setSelection(o.selection);

  const figure = h(
    'figure',
    { class: 'card heatmap-card', 'data-metric': o.metric.key },
    h('figcaption', {}, h('h3', {}, o.metric.title), h('p', { class: 'muted' }, o.metric.about)),
    h('div', { class: 'chart-scroll' }, svg),
    h(
      'p',
      { class: 'chart-note' },
      nulls ? h('span', { class: 'na-swatch', 'aria-hidden': 'true' }) : null,
      nulls ? `${nulls} n/a · ` : '',
      `${L} × ${L} · colour ${scale.caption}`,
    ),
    // Text alternative: the whole matrix as a table (each cell also has its own label).
    L > MAX_TABLE_BLOCKS
      ? h('p', { class: 'sr-only' }, `${L} × ${L} values; each cell of the heatmap carries its value as a label, and the report JSON has the full matrix.`)
      : hiddenTable(
      `${o.metric.title}, block by block`,
      ['block', ...o.blocks.map((_, j) => `block ${j}`)],
      o.blocks.map((_, i) => [blockLabel(o.blocks, i), ...o.blocks.map((__, j) => fmt(o.matrix[i]?.[j] ?? null, 4))]),
    ),
  );
  return { element: figure, svg, setSelection, focusCell: (i, j) => focusCell(i, j) };
}
