// Line charts of time series on a canvas: one or more series over the run's steps, a cursor at a step, and a
// readout of the values under the pointer.

import { h, formatNumber } from './dom.js';

/** @typedef {{label: string, values: ArrayLike<number | null>, colour: string}} Series */

const MARGIN = { left: 52, right: 12, top: 10, bottom: 24 };

export class LineChart {
  /**
   * @param {{title: string, unit: string, testid: string}} options
   */
  constructor(options) {
    this.unit = options.unit;
    this.canvas = h('canvas', { class: 'chart-canvas' });
    this.readout = h('div', { class: 'chart-readout', 'data-testid': `${options.testid}-readout` });
    this.legend = h('div', { class: 'chart-legend' });
    this.element = h('figure', { class: 'chart', 'data-testid': options.testid },
      h('figcaption', {}, `${options.title} (${options.unit})`), this.canvas, this.legend, this.readout);
    /** @type {string[]} */
    this.times = [];
    /** @type {Series[]} */
    this.series = [];
    /** @type {number | null} */
    this.cursor = null;
    this.resizeObserver = new ResizeObserver(() => this.draw());
    this.resizeObserver.observe(this.canvas);
    this.canvas.addEventListener('pointermove', (event) => this.showReadout(event));
  }

  /**
   * @param {string[]} times ISO times, one per step
   * @param {Series[]} series
   */
  setData(times, series) {
    this.times = times;
    this.series = series;
    this.legend.replaceChildren(...series.map((s) => h('span', { class: 'swatch-item' },
      h('span', { class: 'swatch', style: `background:${s.colour}` }), s.label)));
    this.draw();
  }

  /** @param {number | null} step */
  setCursor(step) {
    this.cursor = step;
    this.draw();
  }

  destroy() {
    this.resizeObserver.disconnect();
  }

  /** @returns {[number, number]} */
  valueRange() {
    let min = Infinity;
    let max = -Infinity;
    for (const s of this.series) {
      for (let i = 0; i < s.values.length; i++) {
        const v = s.values[i];
        if (v === null || !Number.isFinite(v)) continue;
        if (v < min) min = v;
        if (v > max) max = v;
      }
    }
    if (min === Infinity) return [0, 1];
    if (min === max) return [min - 1, max + 1];
    const pad = (max - min) * 0.05;
    return [min - pad, max + pad];
  }

  draw() {
    const rect = this.canvas.getBoundingClientRect();
    if (rect.width === 0 || rect.height === 0) return;
    const ratio = window.devicePixelRatio || 1;
    this.canvas.width = Math.round(rect.width * ratio);
    this.canvas.height = Math.round(rect.height * ratio);
    const ctx = /** @type {CanvasRenderingContext2D} */ (this.canvas.getContext('2d'));
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, rect.width, rect.height);
    const plotW = rect.width - MARGIN.left - MARGIN.right;
    const plotH = rect.height - MARGIN.top - MARGIN.bottom;
    const [lo, hi] = this.valueRange();
    const n = Math.max(this.times.length, 1);
    const xOf = (/** @type {number} */ i) => MARGIN.left + (n === 1 ? 0 : (i / (n - 1)) * plotW);
    const yOf = (/** @type {number} */ v) => MARGIN.top + (1 - (v - lo) / (hi - lo)) * plotH;

    ctx.font = '11px system-ui, sans-serif';
    ctx.fillStyle = '#5b6670';
    ctx.strokeStyle = '#e3e7eb';
    ctx.lineWidth = 1;
    ctx.textAlign = 'right';
    ctx.textBaseline = 'middle';
    for (let k = 0; k <= 4; k++) {
      const v = lo + ((hi - lo) * k) / 4;
      const y = yOf(v);
      ctx.beginPath();
      ctx.moveTo(MARGIN.left, y);
      ctx.lineTo(MARGIN.left + plotW, y);
      ctx.stroke();
      ctx.fillText(formatNumber(v, Math.abs(hi - lo) < 1 ? 3 : 1), MARGIN.left - 6, y);
    }
    ctx.textBaseline = 'top';
    for (const [i, align] of /** @type {[number, CanvasTextAlign][]} */ ([[0, 'left'], [Math.floor((n - 1) / 2), 'center'], [n - 1, 'right']])) {
      ctx.textAlign = align;
      if (this.times[i]) ctx.fillText(shortTime(this.times[i]), xOf(i), MARGIN.top + plotH + 6);
    }
    for (const s of this.series) {
      ctx.beginPath();
      let pen = false;
      for (let i = 0; i < s.values.length; i++) {
        const v = s.values[i];
        if (v === null || !Number.isFinite(v)) {
          pen = false;
          continue;
        }
        if (pen) ctx.lineTo(xOf(i), yOf(v));
        else ctx.moveTo(xOf(i), yOf(v));
        pen = true;
      }
      ctx.strokeStyle = s.colour;
      ctx.lineWidth = 1.8;
      ctx.stroke();
    }
    if (this.cursor !== null) {
      ctx.strokeStyle = '#27313b';
      ctx.setLineDash([3, 3]);
      ctx.beginPath();
      ctx.moveTo(xOf(this.cursor), MARGIN.top);
      ctx.lineTo(xOf(this.cursor), MARGIN.top + plotH);
      ctx.stroke();
      ctx.setLineDash([]);
    }
  }

  /** @param {PointerEvent} event */
  showReadout(event) {
    const rect = this.canvas.getBoundingClientRect();
    const plotW = rect.width - MARGIN.left - MARGIN.right;
    const n = this.times.length;
    if (n === 0) return;
    const i = Math.max(0, Math.min(n - 1, Math.round(((event.clientX - rect.left - MARGIN.left) / plotW) * (n - 1))));
    const parts = this.series.map((s) => `${s.label} ${formatNumber(s.values[i], 3)}`);
    this.readout.textContent = `${shortTime(this.times[i])}: ${parts.join(' · ')} ${this.unit}`;
  }
}

/** "2024-06-21T13:15:00+02:00" → "06-21 13:15". @param {string} time */
function shortTime(time) {
  const match = /^\d{4}-(\d{2}-\d{2})[T ](\d{2}:\d{2})/.exec(time);
  return match ? `${match[1]} ${match[2]}` : time;
}
