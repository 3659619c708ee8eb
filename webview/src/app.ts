// The report page: composes the sections, and owns what is interactive: heatmap + metric switch,
// the selection and its export, the span and block tables, verification and compare.
import type { AnalysisReport } from '../../src/engine/report/schema.js';
import type { ToWebviewMessage, VerificationFigures } from '../../src/protocol/webview.js';
import { barChart } from './charts.js';
import { h } from './dom.js';
import { standaloneSvg, svgToPngBase64 } from './export-image.js';
import { baseName, finite, fmt, fmtBytes, fmtCompact, fmtInt, fmtMs, pct, pct1 } from './format.js';
import { heatmap, type Heatmap } from './heatmap.js';
import type { Host, UiState } from './host.js';
import { accuracy, banners, code, dr, footer, kpis, kv, overview, runDetails } from './sections.js';
import { highlightCount, leastChange, matrixOf, METRICS, readExcludedSpans, readSpans, sameSpan, type MetricKey, type Span, type SpanRow } from './state.js';
import { createTooltip, type Tooltip } from './tooltip.js';

const present = (...xs: (Node | null)[]): Node[] => xs.filter((x): x is Node => x !== null);
const button = (label: string, attrs: Record<string, string | boolean | undefined> = {}) => h('vscode-button', attrs, label);

export class ReportView {
  private report: AnalysisReport | null = null;
  private compareReport: { report: AnalysisReport; label?: string } | null = null;
  private state: UiState;
  private readonly tooltip: Tooltip;
  private heat: Heatmap | null = null;
  private spans: SpanRow[] = [];
  private verification: VerificationFigures | null = null;
  private exporting: Span | null = null;
  private readonly statusEl = h('div', { class: 'status', role: 'status', 'aria-live': 'polite', hidden: true });
  private readonly errorEl = h('div', { class: 'callout error', role: 'alert', hidden: true, 'data-error': true });

  constructor(
    private readonly root: HTMLElement,
    private readonly host: Host,
  ) {
    this.state = host.getState();
    this.tooltip = createTooltip();
    root.replaceChildren(this.statusEl, this.errorEl, h('p', { class: 'muted loading' }, 'Waiting for the report…'));
    window.addEventListener('scroll', () => this.save({ scrollY: Math.round(window.scrollY) }), { passive: true });
  }

  private save(patch: Partial<UiState>): void {
    this.state = { ...this.state, ...patch };
    this.host.setState(this.state);
  }

  handle(msg: ToWebviewMessage): void {
    switch (msg.type) {
      case 'init':
        if (msg.capabilities) this.host.capabilities = msg.capabilities;
        // A fresh report ends whatever was running (analysis, re-run).
        this.statusEl.hidden = true;
        this.errorEl.hidden = true;
        this.exporting = null;
        try {
          this.render(msg.report);
        } catch (e) {
          // A report this renderer cannot draw (hand-edited, or from a newer schema): say so, keep the page alive.
          this.root.replaceChildren(this.statusEl, this.errorEl);
          this.handle({ type: 'error', message: `This report could not be drawn (schema v${String((msg.report as { schemaVersion?: unknown })?.schemaVersion)}): ${(e as Error).message}` });
        }
        return;
      case 'progress':
        this.statusEl.hidden = false;
        this.statusEl.replaceChildren(
          ...present(h('span', {}, msg.phase),
          finite(msg.done) && finite(msg.total) && msg.total > 0 ? h('progress', { max: msg.total, value: msg.done, 'aria-label': msg.phase }) : null,
          finite(msg.done) && finite(msg.total) ? h('span', { class: 'muted' }, ` ${fmtInt(msg.done)} / ${fmtInt(msg.total)}`) : null),
        );
        return;
      case 'error':
        this.exporting = null;
        this.statusEl.hidden = true;
        this.errorEl.hidden = false;
        this.errorEl.replaceChildren(h('strong', {}, msg.file ? `${msg.file}: ` : 'Error: '), msg.message);
        this.renderSelection();
        return;
      case 'verification':
        this.exporting = null;
        this.statusEl.hidden = true;
        this.verification = msg.figures;
        this.renderSelection();
        return;
      case 'compare':
        this.compareReport = { report: msg.report, label: msg.label };
        this.renderCompare();
        return;
      default:
        // Unknown message types are ignored: the protocol only grows.
        return;
    }
  }

  // ───────────────────────── page ─────────────────────────

  render(report: AnalysisReport): void {
    this.report = report;
    this.spans = readSpans(report);
    const L = report.blocks.length;
    if (this.state.selection && (this.state.selection.to >= L || this.state.selection.from < -1)) this.state.selection = null;
    document.title = `BlockLens · ${baseName(report.model.path)}`;
    const main = h(
      'main',
      {},
      this.header(report),
      this.statusEl,
      this.errorEl,
      banners(report),
      overview(report),
      kpis(report),
      this.similarity(report),
      this.spans.length ? this.spanTable() : null,
      this.perBlock(report),
      dr(report, this.tooltip),
      accuracy(report, this.tooltip),
      this.blockTable(report),
      runDetails(report),
      h('section', { id: 'compare', hidden: true }),
      footer(report),
    );
    this.root.replaceChildren(main);
    this.renderSelection();
    this.renderCompare();
    if (finite(this.state.scrollY) && this.state.scrollY > 0) window.scrollTo(0, this.state.scrollY);
  }

  private header(r: AnalysisReport): HTMLElement {
    const m = r.model;
    const items = [
      kv('sha256', code(m.sha256.slice(0, 12) + (m.sha256.length > 12 ? '…' : '')), m.sha256),
      kv('opset', String(m.opsetVersion), `IR version ${m.irVersion}`),
      kv('IR', String(m.irVersion)),
      kv('parameters', fmtCompact(m.parameters), `${fmtInt(m.parameters)} parameters`),
      m.sizeBytes !== undefined ? kv('size', fmtBytes(m.sizeBytes), `${fmtInt(m.sizeBytes)} bytes`) : null,
      m.producer ? kv('producer', m.producer) : null,
      kv('blocks', String(r.blocks.length)),
    ].filter((x): x is HTMLElement => !!x);
    const actions = h('div', { class: 'actions' });
    const caps = this.host.capabilities;
    if (caps.rerun) {
      const b = button('Re-run analysis', { secondary: true, 'data-action': 'rerun' });
      b.addEventListener('click', () => this.host.post({ type: 'rerun' }));
      actions.append(b);
    }
    if (caps.analyzeNew) {
      const b = button('Analyze new model…', { secondary: true, 'data-action': 'analyze-new' });
      b.addEventListener('click', () => this.host.post({ type: 'analyzeNew' }));
      actions.append(b);
    }
    return h(
      'header',
      { class: 'page-head' },
      h('div', { class: 'brand' }, 'BlockLens · block redundancy report'),
      h('h1', {}, baseName(m.path)),
      h('p', { class: 'path', title: m.path }, m.path),
      h('dl', { class: 'meta' }, ...items),
      actions.childElementCount ? actions : null,
      h(
        'nav',
        { class: 'toc', 'aria-label': 'Sections' },
        ...[
          ['#similarity', 'Similarity'],
          ...(this.spans.length ? [['#spans', 'Spans']] : []),
          ['#per-block', 'Per-block change'],
          ['#diffused', 'Diffused redundancy'],
          ['#blocks', 'Blocks'],
          ['#run', 'Run details'],
        ].map(([href, t]) => h('a', { href: href! }, t!)),
      ),
    );
  }




  // ───────────────────────── similarity + selection ─────────────────────────

  private similarity(r: AnalysisReport): HTMLElement {
    const metric: MetricKey = METRICS.some((m) => m.key === this.state.metric) ? this.state.metric! : 'cka';
    const group = h('vscode-radio-group', { 'aria-label': 'Metric', class: 'metric-switch', 'data-metric-switch': true });
    for (const m of METRICS) group.append(h('vscode-radio', { name: 'metric', value: m.key, checked: m.key === metric, 'data-metric': m.key }, m.label));
    const slot = h('div', { class: 'heatmap-slot' });
    const svgBtn = button('Export SVG', { secondary: true, 'data-action': 'export-svg' });
    const pngBtn = button('Export PNG', { secondary: true, 'data-action': 'export-png' });
    svgBtn.addEventListener('click', () => this.exportHeatmap('svg'));
    pngBtn.addEventListener('click', () => void this.exportHeatmap('png'));
    // Clicks fire `change`; the group's arrow keys set `checked` without an event, so read it back after keys too.
    const sync = () => {
      const on = [...group.querySelectorAll<HTMLElement & { value: string; checked: boolean }>('vscode-radio')].find((x) => x.checked);
      const key = on?.value as MetricKey | undefined;
      if (key && key !== (this.state.metric ?? 'cka') && METRICS.some((m) => m.key === key)) this.setMetric(key);
    };
    group.addEventListener('change', sync);
    group.addEventListener('keydown', () => setTimeout(sync, 0));
    const selection = h('aside', { class: 'card selection-panel', id: 'selection', 'aria-live': 'polite', 'aria-label': 'Selected span' });
    const section = h(
      'section',
      { id: 'similarity' },
      h(
        'div',
        { class: 'section-head' },
        h('h2', {}, 'Similarity between blocks'),
        h('p', { class: 'muted' }, `Each cell compares the outputs of two blocks (pooling: ${r.pooling.used}). A bright square on the diagonal is a run of blocks that barely change the representation — a candidate span to replace by one linear map. Click a cell (i, j) or press Enter on it to select span i→j. Hatched cells have no value (n/a).`),
      ),
      h('div', { class: 'toolbar' }, h('span', { class: 'toolbar-label', id: 'metric-label' }, 'Metric'), group, h('span', { class: 'spacer' }), svgBtn, pngBtn),
      h('div', { class: 'similarity-grid' }, slot, selection),
    );
    group.setAttribute('aria-labelledby', 'metric-label');
    this.mountHeatmap(slot, metric);
    return section;
  }

  private mountHeatmap(slot: HTMLElement, key: MetricKey): void {
    const r = this.report!;
    const spec = METRICS.find((m) => m.key === key)!;
    const L = r.blocks.length;
    const f = this.state.focus && this.state.focus.i < L && this.state.focus.j < L ? this.state.focus : { i: 0, j: 0 };
    this.heat = heatmap({
      metric: spec,
      matrix: matrixOf(r, key),
      blocks: r.blocks,
      selection: this.state.selection ?? null,
      focus: f,
      tooltip: this.tooltip,
      onSelect: (span) => this.select(span),
      onFocus: (cell) => this.save({ focus: cell }),
    });
    slot.replaceChildren(this.heat.element);
  }

  setMetric(key: MetricKey): void {
    this.save({ metric: key });
    const slot = this.root.querySelector<HTMLElement>('.heatmap-slot');
    if (slot) this.mountHeatmap(slot, key);
    for (const radio of this.root.querySelectorAll<HTMLElement & { checked: boolean; value: string }>('vscode-radio[data-metric]')) radio.checked = radio.value === key;
  }

  select(span: Span): void {
    const L = this.report?.blocks.length ?? 0;
    if (span.to < 0 || span.to >= L || span.from < -1 || span.from >= span.to) return;
    this.save({ selection: span });
    this.host.post({ type: 'selectSpan', from: span.from, to: span.to });
    this.renderSelection();
  }

  private renderSelection(): void {
    const panel = this.root.querySelector<HTMLElement>('#selection');
    const r = this.report;
    if (!panel || !r) return;
    const span = this.state.selection ?? null;
    this.heat?.setSelection(span);
    for (const row of this.root.querySelectorAll<HTMLTableRowElement>('tr[data-span]')) {
      const on = row.dataset.span === (span ? `${span.from}:${span.to}` : '');
      row.setAttribute('aria-selected', String(on));
      row.classList.toggle('selected', on);
    }
    if (!span) {
      panel.replaceChildren(h('h3', {}, 'No span selected'), h('p', { class: 'muted' }, 'Click a heatmap cell, a bar or a row of the span table to select the blocks to replace with one linear map.'));
      return;
    }
    const removed = Array.from({ length: span.to - span.from }, (_, k) => span.from + 1 + k);
    const params = removed.reduce((a, b) => a + (r.blocks[b]?.parameters ?? 0), 0);
    const row = this.spans.find((s) => sameSpan(s, span));
    const fromName = span.from < 0 ? 'the input of block 0' : `block ${span.from} (${r.blocks[span.from]?.name ?? ''})`;
    const items: (HTMLElement | null)[] = [
      kv('map', `from the output of ${fromName} to the output of block ${span.to} (${r.blocks[span.to]?.name ?? ''})`),
      kv('replaces', removed.length === 1 ? `block ${removed[0]}` : `blocks ${removed[0]}–${removed[removed.length - 1]} (${removed.length})`),
      kv('block parameters', fmtCompact(params), `${fmtInt(params)} parameters in the replaced blocks`),
    ];
    for (const m of METRICS) {
      const v = span.from >= 0 ? matrixOf(r, m.key)[span.from]?.[span.to] : null;
      if (span.from >= 0) items.push(kv(m.label, fmt(v ?? null, 4)));
    }
    if (row) {
      items.push(kv('linear map', `rel. err ${fmt(row.relErr, 3)} · R² ${fmt(row.r2, 3)}`));
      if (row.relErrAtLast !== null) items.push(kv('at last block', `rel. err ${fmt(row.relErrAtLast, 3)}`, "the map's error carried to the last block's output"));
      items.push(kv('skip', `rel. err ${fmt(row.skipRelErr, 3)} · R² ${fmt(row.skipR2, 3)}`));
    }
    const label = `Replace blocks ${span.from}→${span.to} with linear map`;
    const exportBtn = button(this.exporting ? 'Exporting…' : label, { 'data-action': 'export-span', disabled: !this.host.capabilities.exportSpan || !!this.exporting });
    exportBtn.addEventListener('click', () => {
      if (!this.host.capabilities.exportSpan || this.exporting) return;
      this.exporting = span;
      this.verification = null;
      this.errorEl.hidden = true;
      this.host.post({ type: 'exportSpan', from: span.from, to: span.to, method: 'linear' });
      this.renderSelection();
    });
    const cli = `blocklens rba ${r.model.path.includes(' ') ? JSON.stringify(r.model.path) : r.model.path} --from ${span.from} --to ${span.to}`;
    panel.replaceChildren(
      ...present(h('h3', {}, `Span ${span.from}→${span.to}`),
      h('dl', { class: 'kvs' }, ...items.filter((x): x is HTMLElement => !!x)),
      h('div', { class: 'actions' }, exportBtn),
      this.host.capabilities.exportSpan ? null : h('p', { class: 'muted small' }, 'From a terminal: ', h('code', { class: 'cmd' }, cli)),
      this.verificationView()),
    );
  }

  private verificationView(): HTMLElement | null {
    const v = this.verification;
    if (!v) return null;
    const ba = (label: string, x: { before: number | null; after: number | null } | undefined, f: (n: number | null) => string) =>
      x ? h('tr', {}, h('th', { scope: 'row' }, label), h('td', { class: 'num' }, f(x.before)), h('td', { class: 'num' }, f(x.after))) : null;
    const one = (label: string, x: number | null | undefined, f: (n: number | null) => string) =>
      x === undefined ? null : h('tr', {}, h('th', { scope: 'row' }, label), h('td', { class: 'num', colspan: 2 }, f(x)));
    const caps = this.host.capabilities;
    const actions = h('div', { class: 'actions' });
    if (caps.reveal) {
      const b = button('Reveal in Explorer', { secondary: true, 'data-action': 'reveal' });
      b.addEventListener('click', () => this.host.post({ type: 'reveal', path: v.output }));
      actions.append(b);
    }
    if (caps.analyzeNew) {
      const b = button('Analyze new model', { secondary: true, 'data-action': 'analyze-exported' });
      b.addEventListener('click', () => this.host.post({ type: 'analyzeNew', path: v.output }));
      actions.append(b);
    }
    if (caps.compare) {
      const b = button('Compare', { secondary: true, 'data-action': 'compare' });
      b.addEventListener('click', () => this.host.post({ type: 'compare', path: v.output }));
      actions.append(b);
    }
    const pctOrNa = (n: number | null) => pct(n, 4);
    return h(
      'div',
      { class: 'verification', 'data-verification': true },
      h('h3', {}, 'Verification'),
      h('p', { class: 'muted small' }, 'Wrote ', code(v.output), v.samples ? ` · ${fmtInt(v.samples)} held-out samples` : ''),
      h(
        'table',
        { class: 'figures' },
        h('thead', {}, h('tr', {}, h('th', {}, ''), h('th', { class: 'num', scope: 'col' }, 'original'), h('th', { class: 'num', scope: 'col' }, 'new'))),
        h(
          'tbody',
          {},
          one('output rel. MSE', v.relMse, (n) => fmt(n, 3)),
          one('output CKA', v.cka, (n) => fmt(n, 4)),
          one('top-1 agreement', v.top1Agreement, pctOrNa),
          ba('accuracy', v.accuracy, pct1),
          ba('parameters', v.parameters, (n) => (finite(n) ? fmtCompact(n) : 'n/a')),
          ba('file size', v.sizeBytes, (n) => (finite(n) ? fmtBytes(n) : 'n/a')),
          ba('median latency', v.latencyMs, (n) => (finite(n) ? fmtMs(n) : 'n/a')),
        ),
      ),
      actions.childElementCount ? actions : null,
    );
  }

  private async exportHeatmap(kind: 'svg' | 'png'): Promise<void> {
    const svg = this.heat?.svg;
    const r = this.report;
    if (!svg || !r) return;
    const metric = this.state.metric ?? 'cka';
    const bg = getComputedStyle(this.root.querySelector('.heatmap-card') ?? document.body).backgroundColor || '#ffffff';
    const text = standaloneSvg(svg, bg);
    const stem = `${baseName(r.model.path).replace(/\.onnx$/i, '')}-${metric}`.replace(/[^\w.\- ]/g, '_').slice(0, 100);
    if (kind === 'svg') {
      this.host.save({ fileName: `${stem}.svg`, mime: 'image/svg+xml', encoding: 'utf8', data: text });
      return;
    }
    try {
      const vb = svg.viewBox.baseVal;
      const data = await svgToPngBase64(text, vb.width, vb.height, 2);
      this.host.save({ fileName: `${stem}.png`, mime: 'image/png', encoding: 'base64', data });
    } catch (e) {
      this.handle({ type: 'error', message: `PNG export failed: ${(e as Error).message}` });
    }
  }

  // ───────────────────────── spans ─────────────────────────

  private spanTable(): HTMLElement {
    const r = this.report!;
    const atLast = this.spans.some((sp) => sp.relErrAtLast !== null);
    const rows = this.spans.map((sp) => {
      const tr = h(
        'tr',
        { tabindex: 0, 'data-span': `${sp.from}:${sp.to}`, 'aria-selected': 'false' },
        h('td', { class: 'num' }, String(sp.rank)),
        h('td', {}, `${sp.from}→${sp.to}`),
        h('td', { class: 'num' }, String(sp.to - sp.from)),
        h('td', { class: 'num' }, fmt(sp.relErr, 3)),
        h('td', { class: 'num' }, fmt(sp.r2, 3)),
        atLast ? h('td', { class: 'num' }, fmt(sp.relErrAtLast, 3)) : null,
        h('td', { class: 'num' }, fmt(sp.skipRelErr, 3)),
        h('td', { class: 'num' }, fmt(sp.skipR2, 3)),
        h('td', { class: 'num' }, finite(sp.paramsSaved) ? fmtCompact(sp.paramsSaved) : 'n/a'),
      );
      return pickableRow(tr, () => this.select({ from: sp.from, to: sp.to }));
    });
    const est = this.spans.find((s) => s.estimate)?.estimate;
    const fitRows = this.spans.find((s) => s.rows)?.rows;
    const nRows = fitRows
      ? [finite(fitRows.train) ? `${fmtInt(fitRows.train)} train` : '', finite(fitRows.heldOut) ? `${fmtInt(fitRows.heldOut)} held-out` : ''].filter(Boolean).join(' / ')
      : '';
    const excluded = readExcludedSpans(r);
    return h(
      'section',
      { id: 'spans' },
      h(
        'div',
        { class: 'section-head' },
        h('h2', {}, 'Candidate spans'),
        h('p', { class: 'muted' }, `Ranked spans i→j: one linear map from block i's output to block j's output replaces blocks i+1…j. Held-out relative error and R² of the map and of skipping the span${est ? `; estimate from ${est === 'pooled' ? 'pooled rows (one per sample)' : est === 'token-subsample' ? 'a token subsample' : 'all tokens'}` : ''}${nRows ? `, ${nRows} rows` : ''}. Select a row (click, Enter) to export it.${excluded ? ` ${excluded} span${excluded === 1 ? ' was' : 's were'} left out by the memory budget.` : ''}`),
      ),
      h(
        'div',
        { class: 'card table-card' },
        h(
          'table',
          { class: 'blocks spans', 'aria-label': `${this.spans.length} candidate spans of ${r.blocks.length} blocks` },
          h(
            'thead',
            {},
            h(
              'tr',
              {},
              ...['#', 'span', 'blocks', 'rel. err', 'R²', ...(atLast ? ['at last block'] : []), 'skip rel. err', 'skip R²', 'params saved'].map((t, k) =>
                h('th', { class: k === 1 ? '' : 'num', scope: 'col', title: t === 'at last block' ? "the map's error carried to the last block's output" : null }, t),
              ),
            ),
          ),
          h('tbody', {}, ...rows),
        ),
      ),
    );
  }

  // ───────────────────────── per-block, DR, accuracy ─────────────────────────

  private perBlock(r: AnalysisReport): HTMLElement {
    const L = r.blocks.length;
    const k = highlightCount(L);
    const m = r.metrics;
    const pick = (b: number) => this.select({ from: b - 1, to: b });
    const bars = (key: string, title: string, about: string, values: (number | null)[], plot: (v: number) => number, yLabel: string): HTMLElement =>
      barChart({ key, title, about, values, plot, yLabel, highlight: leastChange(values, plot, k), width: 400, height: 240 }, r.blocks, this.tooltip, pick);
    const charts: HTMLElement[] = [
      bars(
        'br',
        'Block redundancy (BR)',
        'Bars show −BR = mean squared change ‖hᵢ − hᵢ₋₁‖² per feature. Short bars: the block barely changes its input. Raw BR grows with the activation norm; compare with the scale-free measures beside it.',
        m.br,
        (v) => -v,
        '−BR (mean sq. change)',
      ),
    ];
    if (m.relativeMse) {
      charts.push(bars('relativeMse', 'Relative change', 'Scale-free BR: ‖Δ‖² / ‖hᵢ₋₁‖². Comparable across depths where the residual stream grows.', m.relativeMse, (v) => v, 'relative MSE'));
    }
    if (m.blockInfluence) {
      charts.push(bars('blockInfluence', 'Block influence', 'ShortGPT BI = 1 − E[cos(hᵢ₋₁, hᵢ)]. Near 0: the block hardly turns its input.', m.blockInfluence, (v) => v, 'block influence'));
    }
    return h(
      'section',
      { id: 'per-block' },
      h(
        'div',
        { class: 'section-head' },
        h('h2', {}, 'Per-block change'),
        h('p', { class: 'muted' }, `How much each block changes the representation it receives. Highlighted: the ${k === 1 ? 'block' : `${k} blocks`} with the least change in each measure. Click a bar to select that block.`),
      ),
      h('div', { class: 'grid3 charts' }, ...charts),
    );
  }



  private blockTable(r: AnalysisReport): HTMLElement {
    const m = r.metrics;
    const hl = new Set(leastChange(m.br, (v) => -v, highlightCount(r.blocks.length)));
    const changes = m.br.filter(finite).map((v) => Math.abs(v));
    const maxChange = changes.length ? Math.max(...changes) : 0;
    const rows = r.blocks.map((b, i) => {
      const br = m.br[i];
      const bar = finite(br) && maxChange > 0 ? h('meter', { class: 'mini', min: 0, max: 1, value: Math.abs(br) / maxChange, 'aria-hidden': 'true' }) : null;
      const tr = h(
        'tr',
        { class: hl.has(i) ? 'hl' : null, tabindex: 0, 'data-block': i, 'data-span': `${i - 1}:${i}` },
        h('td', { class: 'num' }, String(i)),
        h('td', { class: 'name' }, code(b.name)),
        h('td', { class: 'name' }, code(b.output)),
        h('td', { class: 'num', title: fmtInt(b.parameters) }, fmtCompact(b.parameters)),
        h('td', { class: 'num' }, h('span', { class: 'br-wrap' }, bar, h('span', {}, fmt(br, 4)))),
        m.relativeMse ? h('td', { class: 'num' }, fmt(m.relativeMse[i], 3)) : null,
        m.blockInfluence ? h('td', { class: 'num' }, fmt(m.blockInfluence[i], 3)) : null,
      );
      return pickableRow(tr, () => this.select({ from: i - 1, to: i }));
    });
    return h(
      'section',
      { id: 'blocks' },
      h('div', { class: 'section-head' }, h('h2', {}, 'Blocks'), h('p', { class: 'muted' }, `${r.blocks.length} blocks in order. Highlighted rows have the highest BR (least change). Select a row to select that block as a span.`)),
      h(
        'div',
        { class: 'card table-card' },
        h(
          'table',
          { class: 'blocks' },
          h(
            'thead',
            {},
            h(
              'tr',
              {},
              h('th', { class: 'num', scope: 'col' }, '#'),
              h('th', { scope: 'col' }, 'Block'),
              h('th', { scope: 'col' }, 'Output tensor'),
              h('th', { class: 'num', scope: 'col' }, 'Params'),
              h('th', { class: 'num', scope: 'col' }, 'BR'),
              m.relativeMse ? h('th', { class: 'num', scope: 'col' }, 'rel. MSE') : null,
              m.blockInfluence ? h('th', { class: 'num', scope: 'col' }, 'BI') : null,
            ),
          ),
          h('tbody', {}, ...rows),
        ),
      ),
    );
  }


  private renderCompare(): void {
    const sec = this.root.querySelector<HTMLElement>('#compare');
    const a = this.report;
    const c = this.compareReport;
    if (!sec || !a || !c) return;
    const b = c.report;
    const row = (label: string, f: (r: AnalysisReport) => string) => h('tr', {}, h('th', { scope: 'row' }, label), h('td', { class: 'num' }, f(a)), h('td', { class: 'num' }, f(b)));
    sec.hidden = false;
    sec.replaceChildren(
      h('div', { class: 'section-head' }, h('h2', {}, 'Compare'), h('p', { class: 'muted' }, `This report beside ${c.label ?? baseName(b.model.path)}.`)),
      h(
        'div',
        { class: 'card table-card' },
        h(
          'table',
          { class: 'figures compare', 'data-compare': true },
          h('thead', {}, h('tr', {}, h('th', {}, ''), h('th', { class: 'num', scope: 'col' }, baseName(a.model.path)), h('th', { class: 'num', scope: 'col' }, c.label ?? baseName(b.model.path)))),
          h(
            'tbody',
            {},
            row('blocks', (r) => String(r.blocks.length)),
            row('parameters', (r) => fmtCompact(r.model.parameters)),
            row('size', (r) => (r.model.sizeBytes !== undefined ? fmtBytes(r.model.sizeBytes) : 'n/a')),
            row('MSRS', (r) => fmt(r.metrics.msrs.value, 4)),
            row('MSRS normalised', (r) => fmt(r.metrics.msrs.normalized, 3)),
            row('DR · CKA', (r) => fmt(r.metrics.dr?.value ?? null, 3)),
            row('model accuracy', (r) => pct1(r.modelAccuracy?.accuracy)),
          ),
        ),
      ),
      h('div', { class: 'grid2 compare-charts' }, this.compareBars(a, baseName(a.model.path)), this.compareBars(b, c.label ?? baseName(b.model.path))),
    );
  }

  /** Per-block change of one report for the side-by-side view: the scale-free measure when present. */
  private compareBars(r: AnalysisReport, label: string): HTMLElement {
    const rel = r.metrics.relativeMse;
    return barChart(
      {
        key: `compare-${rel ? 'relativeMse' : 'br'}`,
        title: label,
        about: `${r.blocks.length} blocks · ${rel ? 'relative change per block' : '−BR per block'}`,
        values: rel ?? r.metrics.br,
        plot: rel ? (v) => v : (v) => -v,
        yLabel: rel ? 'relative MSE' : '−BR',
        highlight: [],
        width: 540,
        height: 220,
      },
      r.blocks,
      this.tooltip,
      () => undefined,
    );
  }

}

/** A table row that picks on click, Enter or Space, and moves focus with the arrow keys. */
function pickableRow(tr: HTMLElement, pick: () => void): HTMLElement {
  tr.addEventListener('click', pick);
  tr.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' || e.key === ' ') {
      e.preventDefault();
      pick();
    } else if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
      e.preventDefault();
      ((e.key === 'ArrowDown' ? tr.nextElementSibling : tr.previousElementSibling) as HTMLElement | null)?.focus();
    }
  });
  return tr;
}
