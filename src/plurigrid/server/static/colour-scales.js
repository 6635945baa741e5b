// Colour scales of the diagram (bus voltage, branch loading, voltage level) and their legends.

import { h } from './dom.js';

/**
 * A value range cut into equal bins, one colour each; values beyond the range take the end colours.
 * @typedef {Object} ColourScale
 * @property {string} label
 * @property {number} min
 * @property {number} max
 * @property {string[]} colours
 */

/** @type {ColourScale} */
export const VOLTAGE_SCALE = {
  label: 'bus voltage (pu)',
  min: 0.9,
  max: 1.1,
  colours: ['#3b0f70', '#2c3fb8', '#2a7fd4', '#21a6c4', '#1fa37a', '#2e9e3e', '#8fbf2f', '#e0b020', '#ef7d22', '#dc3b26', '#9e0d26'],
};

/** @type {ColourScale} */
export const LOADING_SCALE = {
  label: 'branch loading (%)',
  min: 0,
  max: 110,
  colours: ['#6f8f9e', '#4fa36b', '#58b04a', '#8dbd3a', '#c4c52f', '#e8b325', '#f08c22', '#ea6220', '#db3a22', '#b81d24', '#7d0b1f'],
};

/** The colour of elements that have no value (no result for this bus, or no overlay). */
export const NO_VALUE_COLOUR = '#9aa3ad';

/**
 * The bin of a value: 0 .. colours.length − 1, or −1 when there is no value.
 * @param {ColourScale} scale
 * @param {number} value
 */
export function binOf(scale, value) {
  if (!Number.isFinite(value)) return -1;
  const n = scale.colours.length;
  const bin = Math.floor(((value - scale.min) / (scale.max - scale.min)) * n);
  return Math.min(n - 1, Math.max(0, bin));
}

/**
 * Voltage levels as a scale of their own, so that a grid without results is coloured by level.
 * @type {ColourScale}
 */
export const LEVEL_SCALE = {
  label: 'voltage level',
  min: 0,
  max: 4,
  colours: ['#4a5560', '#2f6fb0', '#a3479c', '#b23a2e'],
};

/**
 * The level bin of a nominal voltage: low (< 1 kV), medium (< 60 kV), high (< 200 kV), extra high.
 * @param {number} vnKv
 */
export function levelOf(vnKv) {
  if (vnKv < 1) return 0;
  if (vnKv < 60) return 1;
  if (vnKv < 200) return 2;
  return 3;
}

/**
 * A legend: the scale's colours in a bar with its ends and middle labelled.
 * @param {ColourScale} scale
 * @param {number} [decimals]
 */
export function legend(scale, decimals = 2) {
  const stops = scale.colours.map((c, i) => `${c} ${(100 * i) / scale.colours.length}% ${(100 * (i + 1)) / scale.colours.length}%`);
  return h('div', { class: 'legend' },
    h('span', { class: 'legend-label' }, scale.label),
    h('span', { class: 'legend-bar', style: `background: linear-gradient(to right, ${stops.join(', ')})` }),
    h('span', { class: 'legend-ticks' },
      h('span', {}, scale.min.toFixed(decimals)),
      h('span', {}, ((scale.min + scale.max) / 2).toFixed(decimals)),
      h('span', {}, scale.max.toFixed(decimals))));
}
