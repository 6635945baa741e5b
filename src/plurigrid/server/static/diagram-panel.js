// The diagram with what surrounds it on every page: the canvas, a tooltip naming the element under the
// pointer, a box to find a bus by id, and a slot for the colour legend.

import { h, replaceChildren } from './dom.js';
import { DiagramView } from './diagram-view.js';

/** @typedef {import('./diagram-view.js').ElementRef} ElementRef */

export class DiagramPanel {
  /**
   * @param {{describe: (ref: ElementRef) => string, onFind?: (bus: number) => void}} options
   *   describe: the tooltip's text for an element; onFind: a bus was found by its id
   */
  constructor(options) {
    this.canvas = h('canvas', { class: 'diagram-canvas', 'data-testid': 'diagram-canvas' });
    this.tooltip = h('div', { class: 'diagram-tooltip', 'data-testid': 'diagram-tooltip', hidden: true });
    this.findInput = h('input', {
      type: 'search', class: 'find-bus', placeholder: 'Find bus by id…', 'data-testid': 'find-bus',
      onkeydown: (/** @type {KeyboardEvent} */ e) => { if (e.key === 'Enter') this.find(); },
      onchange: () => this.find(),
    });
    this.legendSlot = h('div', { class: 'legend-slot', 'data-testid': 'diagram-legend' });
    this.element = h('div', { class: 'diagram-panel' },
      this.canvas, this.tooltip, h('div', { class: 'diagram-overlay-top' }, this.findInput), this.legendSlot);
    this.view = new DiagramView(this.canvas);
    this.describe = options.describe;
    this.onFind = options.onFind ?? (() => {});
    this.view.onHover = (ref, [x, y]) => this.showTooltip(ref, x, y);
  }

  /**
   * @param {ElementRef | null} ref
   * @param {number} x
   * @param {number} y
   */
  showTooltip(ref, x, y) {
    if (!ref) {
      this.tooltip.hidden = true;
      this.canvas.style.cursor = '';
      return;
    }
    this.tooltip.textContent = this.describe(ref);
    this.tooltip.style.left = `${x + 14}px`;
    this.tooltip.style.top = `${y + 14}px`;
    this.tooltip.hidden = false;
    this.canvas.style.cursor = 'pointer';
  }

  find() {
    const wanted = this.findInput.value.trim();
    if (!wanted) return;
    const ids = this.view.data.busIds;
    let bus = this.view.data.busIndex.get(wanted) ?? -1;
    if (bus < 0) {
      const lower = wanted.toLowerCase();
      bus = ids.findIndex((id) => id.toLowerCase().includes(lower));
    }
    this.findInput.classList.toggle('invalid', bus < 0);
    this.findInput.title = bus < 0 ? `no bus ${wanted}` : '';
    if (bus < 0) return;
    this.view.focusBus(bus);
    this.onFind(bus);
  }

  /** @param {...(Node | null)} legends */
  setLegends(...legends) {
    replaceChildren(this.legendSlot, ...legends);
  }

  destroy() {
    this.view.destroy();
  }
}
