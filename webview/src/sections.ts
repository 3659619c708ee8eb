// The report's read-only sections: built from the report alone (and the shared tooltip), no UI state.
import type { AnalysisReport, ProbeDrInfo } from '../../src/engine/report/schema.js';
import { SCHEMA_VERSION, SYNTHETIC_DATA_WARNING } from '../../src/engine/report/schema.js';
import { classStrip, curveChart, giniChart } from './charts.js';
import { h } from './dom.js';
import { baseName, finite, fmt, fmtInt, fmtMs, fmtTime, pct, pct1 } from './format.js';
import { highlightCount, leastChange } from './state.js';
import type { Tooltip } from './tooltip.js';

export function kv(label: string, value: Node | string, title?: string): HTMLElement {
  return h('div', { class: 'kv' }, h('dt', {}, label), h('dd', title ? { title } : {}, value));
}
export const code = (t: string) => h('code', {}, t);

/** The synthetic-data note and the report's warnings. */
export function banners(r: AnalysisReport): DocumentFragment {
  const f = document.createDocumentFragment();
  if (r.calibration.source === 'synthetic') {
    f.append(
      h(
        'aside',
        { class: 'callout info', role: 'note', 'data-synthetic': true },
        h('div', { class: 'callout-icon', 'aria-hidden': 'true' }, 'i'),
        h(
          'div',
          {},
          h('strong', {}, 'Synthetic calibration data — synthetic data shows structure, not task behaviour.'),
          h('p', {}, 'These numbers describe how the network transforms random inputs. Before removing blocks, re-run with real inputs (an .npy/.npz file, an image folder or token ids).'),
        ),
      ),
    );
  }
  // The synthetic-data warning is the note above, not a second box.
  const warnings = r.warnings.filter((w) => !(r.calibration.source === 'synthetic' && w === SYNTHETIC_DATA_WARNING));
  if (warnings.length) {
    f.append(
      h(
        'aside',
        { class: 'callout warn', role: 'note', 'data-warnings': true },
        h('div', { class: 'callout-icon', 'aria-hidden': 'true' }, '!'),
        h('div', {}, h('strong', {}, warnings.length === 1 ? '1 warning' : `${warnings.length} warnings`), h('ul', {}, ...warnings.map((w) => h('li', {}, w)))),
      ),
    );
  }
  return f;
}

/** One line each: calibration, pooling, how the blocks were found. */
export function overview(r: AnalysisReport): HTMLElement {
  const cal = r.calibration;
  const badge = (t: string, synth = false) => h('span', { class: synth ? 'badge badge-synth' : 'badge' }, t);
  return h(
    'section',
    { class: 'overview' },
    h('div', {}, h('span', { class: 'ov-label' }, 'Calibration'), ' ', badge(cal.source, cal.source === 'synthetic'), ` ${fmtInt(cal.samples)} samples`, cal.path ? ' · ' : '', cal.path ? code(baseName(cal.path)) : null),
    h('div', {}, h('span', { class: 'ov-label' }, 'Pooling'), ' ', badge(r.pooling.used), ` ${r.pooling.reason}`),
    h('div', {}, h('span', { class: 'ov-label' }, 'Blocks found by'), ' ', badge(r.detection.method), ` ${r.detection.explanation}`),
  );
}

/** The summary cards: MSRS, least change, DR, probe DR, model accuracy. */
export function kpis(r: AnalysisReport): HTMLElement {
  const L = r.blocks.length;
  const cards: HTMLElement[] = [];
  const ms = r.metrics.msrs;
  const pairs = (L * (L - 1)) / 2;
  const card = (key: string, label: string, value: string, ...rest: (Node | null)[]) =>
    h('div', { class: 'kpi', 'data-kpi': key }, h('div', { class: 'kpi-label' }, label), h('div', { class: 'kpi-value' }, value), ...rest);
  const gauge = finite(ms.normalized) ? h('meter', { class: 'gauge', min: 0, max: 1, value: Math.min(1, Math.max(0, ms.normalized)), 'aria-label': `normalised MSRS ${fmt(ms.normalized, 4)}` }) : null;
  cards.push(
    card(
      'msrs',
      'MSRS',
      fmt(ms.value, 4),
      h('div', { class: 'kpi-sub' }, `L = ${ms.layers} block${ms.layers === 1 ? '' : 's'} · ${fmtInt(pairs)} pair${pairs === 1 ? '' : 's'}`),
      h('div', { class: 'kpi-sub' }, 'normalised ', h('b', {}, fmt(ms.normalized, 3))),
      gauge,
      h('div', { class: 'kpi-foot' }, `β = ${fmt(ms.beta)}, τ = ${fmt(ms.tau)}, unbiased CKA`),
    ),
  );
  const top = leastChange(r.metrics.br, (v) => -v, highlightCount(L));
  if (top.length) {
    const b = top[0]!;
    cards.push(
      card(
        'most-redundant',
        'Least change',
        `#${b}`,
        h('div', { class: 'kpi-sub' }, code(r.blocks[b]?.name ?? '')),
        h('div', { class: 'kpi-foot' }, `highest BR ${fmt(r.metrics.br[b], 3)}${top.length > 1 ? ` · then ${top.slice(1).map((i) => `#${i}`).join(', ')}` : ''}`),
      ),
    );
  }
  const dr = r.metrics.dr;
  if (dr) {
    cards.push(
      card(
        'dr',
        'DR · CKA',
        fmt(dr.value, 3),
        h('div', { class: 'kpi-sub' }, `block #${dr.block} · δ = ${fmt(dr.delta)}`),
        h('div', { class: 'kpi-foot' }, finite(dr.value) ? `${pct(1 - dr.value)} of neurons keep ${pct(dr.delta, 2)} of the similarity` : 'threshold not reached'),
      ),
    );
    if (dr.probe) {
      const p = dr.probe;
      cards.push(
        card(
          'probe-dr',
          'DR · linear probe',
          fmt(p.value, 3),
          h('div', { class: 'kpi-sub' }, `block #${dr.block} · full-layer accuracy ${pct1(p.fullAccuracy)}`),
          h('div', { class: 'kpi-foot' }, `${p.classes} classes · ${fmtInt(p.trainSamples)} train / ${fmtInt(p.testSamples)} test`),
        ),
      );
    }
  }
  if (r.modelAccuracy) {
    const a = r.modelAccuracy;
    cards.push(
      card(
        'accuracy',
        'Model accuracy',
        pct1(a.accuracy),
        h('div', { class: 'kpi-sub' }, `on ${fmtInt(a.samples)} labelled samples`),
        h('div', { class: 'kpi-foot' }, a.perClass ? `${a.perClass.length} classes, per class below` : ''),
      ),
    );
  }
  return h('section', { class: 'kpis', 'aria-label': 'Summary' }, ...cards);
}

/** Diffused redundancy: the DR curve with error bars, the probe curve, per-class Gini and accuracy. */
export function dr(r: AnalysisReport, tooltip: Tooltip): HTMLElement {
  const dr = r.metrics.dr;
  const head = (p: string) => h('div', { class: 'section-head' }, h('h2', {}, 'Diffused redundancy'), h('p', { class: 'muted' }, p));
  if (!dr) return h('section', { id: 'diffused' }, head('Not computed for this run.'));
  const fullIdx = dr.fractions.findIndex((f) => Math.abs(f - 1) < 1e-9);
  const full = fullIdx >= 0 && finite(dr.mean[fullIdx]) ? dr.mean[fullIdx]! : 1;
  const figs: HTMLElement[] = [
    curveChart(
      {
        key: 'dr',
        title: 'Similarity of a random neuron subset to the whole layer',
        about: `CKA(subset, full layer) for random subsets of block #${dr.block}'s neurons.`,
        fractions: dr.fractions,
        mean: dr.mean,
        std: dr.std,
        full,
        delta: dr.delta,
        value: dr.value,
        yLabel: 'CKA to full layer',
        tone: 'a',
        seeds: dr.seeds,
      },
      tooltip,
    ),
  ];
  const extra: HTMLElement[] = [];
  if (dr.probe) {
    const p: ProbeDrInfo = dr.probe;
    figs.push(
      curveChart(
        {
          key: 'probe',
          title: 'Linear-probe accuracy from a neuron subset',
          about: `Held-out accuracy of a linear probe trained on the subset (${p.classes} classes).`,
          fractions: p.fractions,
          mean: p.mean,
          std: p.std,
          full: p.fullAccuracy,
          delta: p.delta,
          value: p.value,
          yLabel: 'probe accuracy',
          tone: 'b',
          seeds: dr.seeds,
        },
        tooltip,
      ),
    );
    extra.push(giniChart(p.fractions, p.gini, p.cv, tooltip));
    extra.push(
      h(
        'figure',
        { class: 'card', 'data-per-class': true },
        h('figcaption', {}, h('h3', {}, 'Per-class probe accuracy by fraction of neurons'), h('p', { class: 'muted' }, 'Each row is one subset size; each column one class.')),
        classStrip(
          'probe',
          p.fractions.map((f, i) => ({ label: pct(f), values: p.perClass[i] ?? [], extra: [pct1(p.mean[i]), fmt(p.gini[i], 3)] })),
          ['mean', 'Gini'],
          p.classes,
          tooltip,
        ),
      ),
    );
  }
  const block = r.blocks[dr.block];
  return h(
    'section',
    { id: 'diffused' },
    head(
      `Measured on block #${dr.block}${block ? ` ${block.name}` : ''} with ${dr.seeds} random subsets per size. DR(δ) = 1 − the smallest fraction of neurons whose mean score reaches δ × the full layer's score: high DR means the information is spread over many neurons.`,
    ),
    h('div', { class: 'grid2' }, ...figs),
    extra.length ? h('div', { class: 'grid2' }, ...extra) : null,
  );
}

/** Model accuracy per class, when labels were given. */
export function accuracy(r: AnalysisReport, tooltip: Tooltip): HTMLElement | null {
  const a = r.modelAccuracy;
  if (!a?.perClass?.length) return null;
  return h(
    'section',
    { id: 'accuracy' },
    h('div', { class: 'section-head' }, h('h2', {}, 'Model accuracy')),
    h(
      'figure',
      { class: 'card', 'data-model-accuracy': true },
      h('figcaption', {}, h('h3', {}, 'Model accuracy per class'), h('p', { class: 'muted' }, `Overall ${pct1(a.accuracy)} on ${fmtInt(a.samples)} samples.`)),
      classStrip('model', [{ label: 'model', values: a.perClass, extra: [pct1(a.accuracy)] }], ['overall'], a.perClass.length, tooltip),
    ),
  );
}

/** Calibration, pooling, detection and timings. */
export function runDetails(r: AnalysisReport): HTMLElement {
  const cal = r.calibration;
  const jsonish = (v: unknown) => (typeof v === 'string' ? v : typeof v === 'number' ? fmt(v, 4) : JSON.stringify(v, (_k, x) => (typeof x === 'number' ? Number(x.toPrecision(4)) : x)) ?? String(v));
  const calItems = [
    kv('source', h('span', { class: cal.source === 'synthetic' ? 'badge badge-synth' : 'badge' }, cal.source)),
    cal.path ? kv('path', code(cal.path)) : null,
    kv('samples', fmtInt(cal.samples)),
    kv('batch size', fmtInt(cal.batchSize)),
    kv('seed', String(cal.seed)),
    cal.heldOut !== undefined ? kv('held out', pct(cal.heldOut)) : null,
    cal.labels ? kv('labels', `${cal.labels.source} · ${cal.labels.classes} classes`) : null,
    ...cal.inputs.map((inp) => kv('input', h('span', {}, code(inp.name), h('span', { class: 'muted' }, ` ${inp.dtype} [${inp.shape.join(' × ')}]${inp.fill ? ` · ${inp.fill}` : ''}`)))),
    cal.checksum ? kv('checksum', code(cal.checksum.slice(0, 12) + (cal.checksum.length > 12 ? '…' : '')), cal.checksum) : null,
    ...Object.entries(cal.preprocessing ?? {}).map(([k, v]) => kv(k, code(jsonish(v)))),
    cal.note ? kv('note', cal.note) : null,
  ].filter((x): x is HTMLElement => !!x);
  const p = r.pooling;
  const d = r.detection;
  let timings: HTMLElement = h('div', { class: 'card' }, h('h3', {}, 'Timings'), h('p', { class: 'muted' }, 'Not recorded.'));
  const entries = Object.entries(r.timings ?? {}).filter(([, v]) => finite(v));
  if (entries.length) {
    const max = Math.max(1e-9, ...entries.map(([, v]) => v));
    const total = entries.reduce((a, [, v]) => a + v, 0);
    timings = h(
      'div',
      { class: 'card', 'data-timings': true },
      h('h3', {}, 'Timings'),
      h(
        'table',
        { class: 'timings' },
        h(
          'tbody',
          {},
          ...entries.map(([k, v]) => h('tr', {}, h('td', {}, k), h('td', { class: 'tbar' }, h('meter', { class: 'mini wide', min: 0, max: 1, value: v / max, 'aria-hidden': 'true' })), h('td', { class: 'num' }, fmtMs(v)))),
          h('tr', { class: 'total' }, h('td', {}, 'total'), h('td', {}), h('td', { class: 'num' }, fmtMs(total))),
        ),
      ),
    );
  }
  return h(
    'section',
    { id: 'run' },
    h('div', { class: 'section-head' }, h('h2', {}, 'Run details')),
    h(
      'div',
      { class: 'grid3' },
      h('div', { class: 'card' }, h('h3', {}, 'Calibration'), h('dl', { class: 'kvs' }, ...calItems)),
      h(
        'div',
        { class: 'card' },
        h('h3', {}, 'Pooling'),
        h('dl', { class: 'kvs' }, kv('used', h('span', {}, h('span', { class: 'badge' }, p.used), p.requested !== p.used ? h('span', { class: 'muted' }, ` (requested ${p.requested})`) : null)), kv('why', p.reason)),
        h('h3', { class: 'spaced' }, 'Block detection'),
        h('dl', { class: 'kvs' }, kv('method', h('span', { class: 'badge' }, d.method)), kv('how', d.explanation), kv('block input', d.blockInput === null ? h('span', { class: 'muted' }, 'unknown') : code(d.blockInput))),
      ),
      timings,
    ),
  );
}

export function footer(r: AnalysisReport): HTMLElement {
  return h(
    'footer',
    {},
    `${r.tool.name} ${r.tool.version} · report schema v${r.schemaVersion}${r.schemaVersion !== SCHEMA_VERSION ? ` (this page renders v${SCHEMA_VERSION})` : ''} · created `,
    h('time', { datetime: r.createdAt }, fmtTime(r.createdAt)),
  );
}
