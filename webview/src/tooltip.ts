// One tooltip element shared by every chart: shown on pointer hover and on keyboard focus.
import { h } from './dom.js';

export interface Tooltip {
  show(anchor: Element, lines: string[]): void;
  hide(): void;
  readonly element: HTMLElement;
}

export function createTooltip(): Tooltip {
  const el = h('div', { class: 'tooltip', role: 'tooltip', id: 'blocklens-tooltip', hidden: true });
  document.body.append(el);
  return {
    element: el,
    show(anchor, lines) {
      el.replaceChildren(...lines.map((l, k) => h('div', { class: k === 0 ? 'tt-head' : 'tt-line' }, l)));
      el.hidden = false;
      const a = anchor.getBoundingClientRect();
      const t = el.getBoundingClientRect();
      let x = a.left + a.width / 2 - t.width / 2;
      let y = a.top - t.height - 8;
      if (y < 4) y = a.bottom + 8;
      x = Math.max(4, Math.min(x, window.innerWidth - t.width - 4));
      el.style.setProperty('left', `${Math.round(x + window.scrollX)}px`);
      el.style.setProperty('top', `${Math.round(y + window.scrollY)}px`);
    },
    hide() {
      el.hidden = true;
    },
  };
}
