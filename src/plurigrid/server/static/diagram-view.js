// The grid diagram on a 2D canvas: pan (drag), zoom (wheel), hover and click on elements, colour overlays.
// Each frame is drawn in one pass over typed arrays, one path per colour, so 10,000 buses stay interactive;
// no element has a DOM node of its own.

import { binOf, levelOf, LEVEL_SCALE, NO_VALUE_COLOUR } from './colour-scales.js';
import { emptyDiagram } from './diagram-data.js';

/** @typedef {import('./diagram-data.js').DiagramData} DiagramData */
/** @typedef {import('./colour-scales.js').ColourScale} ColourScale */
/** @typedef {'bus' | 'line' | 'trafo' | 'switch' | 'participant'} ElementKind */
/** @typedef {{kind: ElementKind, index: number}} ElementRef */
/** A value per element (NaN: none) and the scale that colours it. @typedef {{values: ArrayLike<number>, scale: ColourScale}} Overlay */
/** Elements drawn in one colour each: `order` lists element indices colour by colour, colour c from starts[c] to starts[c + 1]. @typedef {{order: Int32Array, starts: Int32Array, palette: string[]}} ColourGroups */

const PICK_RADIUS_PX = 7;
const MAX_PARTICIPANT_GLYPHS = 2000;
const DENSE_BUSES = 2000; // above: thin lines, small buses, transformer symbols only when zoomed in
const MAX_LABELS = 400;
const MAX_CLOSED_SWITCHES = 60;
const LABEL_CELL = /** @type {const} */ ([90, 16]);
const BACKGROUND_GRID = 50;
const CLICK_SLOP_PX = 4;

export class DiagramView {
  /** @param {HTMLCanvasElement} canvas */
  constructor(canvas) {
    this.canvas = canvas;
    this.ctx = /** @type {CanvasRenderingContext2D} */ (canvas.getContext('2d'));
    /** @type {DiagramData} */
    this.data = emptyDiagram();
    this.centerX = 0;
    this.centerY = 0;
    this.scale = 1;
    this.fitScale = 1;
    this.width = 0;
    this.height = 0;
    this.needsFit = false;
    /** @type {Overlay | null} */ this.busOverlay = null;
    /** @type {Overlay | null} */ this.lineOverlay = null;
    /** @type {Overlay | null} */ this.trafoOverlay = null;
    /** @type {ElementRef | null} */ this.selected = null;
    /** @type {ElementRef | null} */ this.marked = null;
    /** @type {number} */ this.pendingBus = -1;
    this.canDragBuses = false;
    /** @type {(ref: ElementRef | null, world: [number, number]) => void} */
    this.onClick = () => {};
    /** @type {(ref: ElementRef | null, screen: [number, number]) => void} */
    this.onHover = () => {};
    /** @type {(bus: number, world: [number, number]) => void} */
    this.onDragBus = () => {};
    this.screenX = new Float32Array(0);
    this.screenY = new Float32Array(0);
    this.frameRequested = false;
    this.regroup();
    this.listen();
    this.resizeObserver = new ResizeObserver(() => this.resize());
    this.resizeObserver.observe(canvas);
  }

  /**
   * @param {DiagramData} data
   * @param {{fit?: boolean}} [options] fit: zoom to show the whole grid (else keep the view, as when editing)
   */
  setData(data, options = {}) {
    const busCountChanged = data.busIds.length !== this.data.busIds.length;
    this.data = data;
    if (busCountChanged) {
      this.busOverlay = null;
    }
    this.lineOverlay = this.lineOverlay && this.lineOverlay.values.length === data.lineIds.length ? this.lineOverlay : null;
    this.trafoOverlay = this.trafoOverlay && this.trafoOverlay.values.length === data.trafoIds.length ? this.trafoOverlay : null;
    if (options.fit) this.needsFit = true;
    this.regroup();
    this.redraw();
  }

  /**
   * Colours buses, lines and transformers by values (null: by voltage level).
   * @param {{bus?: Overlay | null, line?: Overlay | null, trafo?: Overlay | null}} overlays
   */
  setOverlays(overlays) {
    if (overlays.bus !== undefined) this.busOverlay = overlays.bus;
    if (overlays.line !== undefined) this.lineOverlay = overlays.line;
    if (overlays.trafo !== undefined) this.trafoOverlay = overlays.trafo;
    this.regroup();
    this.redraw();
  }

  /** @param {ElementRef | null} ref */
  setSelected(ref) {
    this.selected = ref;
    this.redraw();
  }

  /** The element a validation error is about, drawn with a red ring. @param {ElementRef | null} ref */
  setMarked(ref) {
    this.marked = ref;
    this.redraw();
  }

  /** The first bus clicked with a two-bus tool (line, transformer, switch), or −1. @param {number} bus */
  setPendingBus(bus) {
    this.pendingBus = bus;
    this.redraw();
  }

  /**
   * Brings a bus into view: a large grid is centred on it and zoomed in to where its neighbours stand apart;
   * a small one moves only if the bus is off the canvas.
   * @param {number} bus
   */
  focusBus(bus) {
    const [sx, sy] = this.screenPosition(bus);
    const large = this.data.busIds.length > 50;
    if (large || sx < 0 || sy < 0 || sx > this.width || sy > this.height) {
      this.centerX = this.data.x[bus];
      this.centerY = this.data.y[bus];
    }
    if (large) this.scale = Math.max(this.scale, this.fitScale * 24);
    this.redraw();
  }

  /** The bus's position on the canvas, in CSS pixels. @param {number} bus @returns {[number, number]} */
  screenPosition(bus) {
    return this.toScreen(this.data.x[bus], this.data.y[bus]);
  }

  /** @param {number} x @param {number} y @returns {[number, number]} */
  toScreen(x, y) {
    return [(x - this.centerX) * this.scale + this.width / 2, (y - this.centerY) * this.scale + this.height / 2];
  }

  /** @param {number} sx @param {number} sy @returns {[number, number]} */
  toWorld(sx, sy) {
    return [(sx - this.width / 2) / this.scale + this.centerX, (sy - this.height / 2) / this.scale + this.centerY];
  }

  redraw() {
    if (this.frameRequested) return;
    this.frameRequested = true;
    requestAnimationFrame(() => {
      this.frameRequested = false;
      this.draw();
    });
  }

  destroy() {
    this.resizeObserver.disconnect();
  }

  // ------------------------------------------------------------------ layout

  resize() {
    const rect = this.canvas.getBoundingClientRect();
    const ratio = window.devicePixelRatio || 1;
    this.width = rect.width;
    this.height = rect.height;
    this.canvas.width = Math.max(1, Math.round(rect.width * ratio));
    this.canvas.height = Math.max(1, Math.round(rect.height * ratio));
    this.redraw();
  }

  fit() {
    const { x, y } = this.data;
    let minX = Infinity, maxX = -Infinity, minY = Infinity, maxY = -Infinity;
    for (let i = 0; i < x.length; i++) {
      if (!Number.isFinite(x[i]) || !Number.isFinite(y[i])) continue;
      if (x[i] < minX) minX = x[i];
      if (x[i] > maxX) maxX = x[i];
      if (y[i] < minY) minY = y[i];
      if (y[i] > maxY) maxY = y[i];
    }
    if (minX === Infinity) {
      this.centerX = 0;
      this.centerY = 0;
      this.scale = this.fitScale = 1;
      return;
    }
    this.centerX = (minX + maxX) / 2;
    this.centerY = (minY + maxY) / 2;
    const spanX = maxX - minX;
    const spanY = maxY - minY;
    const scale = Math.min(spanX > 0 ? (this.width * 0.86) / spanX : Infinity, spanY > 0 ? (this.height * 0.8) / spanY : Infinity);
    this.scale = this.fitScale = Number.isFinite(scale) ? scale : 1;
  }

  // ------------------------------------------------------------------ colours

  regroup() {
    const d = this.data;
    const levelColour = (/** @type {number} */ bus) => (bus < 0 ? -1 : levelOf(d.vnKv[bus]));
    this.busGroups = groupByColour(d.busIds.length, this.busOverlay, (i) => levelOf(d.vnKv[i]));
    this.lineGroups = groupByColour(d.lineIds.length, this.lineOverlay, (i) => levelColour(d.lineFrom[i]));
    this.trafoGroups = groupByColour(d.trafoIds.length, this.trafoOverlay, (i) => levelColour(d.trafoLv[i]));
    this.participantSlots = slotsAtBuses(d);
  }

  // ------------------------------------------------------------------ drawing

  draw() {
    if (this.width === 0 || this.height === 0) return;
    if (this.needsFit) {
      this.fit();
      this.needsFit = false;
    }
    const ctx = this.ctx;
    const ratio = this.canvas.width / this.width;
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, this.width, this.height);
    this.drawBackgroundGrid();
    this.project();
    const d = this.data;
    const dense = d.busIds.length > DENSE_BUSES;
    const zoomedIn = this.scale > this.fitScale * 6;
    ctx.lineCap = 'round';
    this.drawBranches(d.lineFrom, d.lineTo, /** @type {ColourGroups} */ (this.lineGroups), dense ? 1 : 2.5);
    this.drawBranches(d.trafoHv, d.trafoLv, /** @type {ColourGroups} */ (this.trafoGroups), dense ? 2 : 3.5);
    if (!dense || zoomedIn) this.drawTrafoSymbols();
    this.drawSwitches();
    this.drawBuses(dense && !zoomedIn ? 3 : dense ? 5 : 10);
    this.drawSlack();
    if (this.showsParticipants()) this.drawParticipants();
    this.drawLabels();
    this.drawHighlights();
    this.canvas.dataset.painted = String(d.busIds.length);
  }

  project() {
    const { x, y } = this.data;
    const n = x.length;
    if (this.screenX.length !== n) {
      this.screenX = new Float32Array(n);
      this.screenY = new Float32Array(n);
    }
    const halfW = this.width / 2;
    const halfH = this.height / 2;
    for (let i = 0; i < n; i++) {
      this.screenX[i] = (x[i] - this.centerX) * this.scale + halfW;
      this.screenY[i] = (y[i] - this.centerY) * this.scale + halfH;
    }
  }

  /**
   * @param {Int32Array} from
   * @param {Int32Array} to
   * @param {ColourGroups} groups
   * @param {number} width
   */
  drawBranches(from, to, groups, width) {
    const ctx = this.ctx;
    const sx = this.screenX;
    const sy = this.screenY;
    ctx.lineWidth = width;
    this.eachColour(groups, (i) => {
      const a = from[i];
      const b = to[i];
      if (a < 0 || b < 0) return;
      ctx.moveTo(sx[a], sy[a]);
      ctx.lineTo(sx[b], sy[b]);
    }, (colour) => {
      ctx.strokeStyle = colour;
      ctx.stroke();
    });
  }

  /**
   * One canvas path per colour: `trace(i)` adds element i to the path, `paint(colour)` strokes or fills it.
   * @param {ColourGroups} groups
   * @param {(i: number) => void} trace
   * @param {(colour: string) => void} paint
   */
  eachColour(groups, trace, paint) {
    for (let c = 0; c < groups.palette.length; c++) {
      const start = groups.starts[c];
      const end = groups.starts[c + 1];
      if (start === end) continue;
      this.ctx.beginPath();
      for (let k = start; k < end; k++) trace(groups.order[k]);
      paint(groups.palette[c]);
    }
  }

  drawTrafoSymbols() {
    const ctx = this.ctx;
    const { trafoHv, trafoLv } = this.data;
    ctx.lineWidth = 1.5;
    ctx.strokeStyle = '#27313b';
    ctx.fillStyle = '#ffffff';
    for (let i = 0; i < trafoHv.length; i++) {
      const a = trafoHv[i];
      const b = trafoLv[i];
      if (a < 0 || b < 0) continue;
      const mx = (this.screenX[a] + this.screenX[b]) / 2;
      const my = (this.screenY[a] + this.screenY[b]) / 2;
      const len = Math.hypot(this.screenX[b] - this.screenX[a], this.screenY[b] - this.screenY[a]) || 1;
      const ux = (this.screenX[b] - this.screenX[a]) / len;
      const uy = (this.screenY[b] - this.screenY[a]) / len;
      for (const side of [-1, 1]) {
        ctx.beginPath();
        ctx.arc(mx + side * 3.5 * ux, my + side * 3.5 * uy, 5.5, 0, 2 * Math.PI);
        ctx.fill();
        ctx.stroke();
      }
    }
  }

  /** Switches as squares, filled when closed; a bus-bus switch with a connector of its own, dashed when open. */
  drawSwitches() {
    const ctx = this.ctx;
    const { switchBus, switchTo, switchClosed, switchJoinsBuses } = this.data;
    const size = 7;
    ctx.lineWidth = 1.5;
    ctx.strokeStyle = '#27313b';
    for (let i = 0; i < switchBus.length; i++) {
      if (!switchJoinsBuses[i] || !Number.isFinite(this.switchMarker(i)[0])) continue;
      ctx.setLineDash(switchClosed[i] ? [] : [4, 4]);
      ctx.beginPath();
      ctx.moveTo(this.screenX[switchBus[i]], this.screenY[switchBus[i]]);
      ctx.lineTo(this.screenX[switchTo[i]], this.screenY[switchTo[i]]);
      ctx.stroke();
    }
    ctx.setLineDash([]);
    for (let i = 0; i < switchBus.length; i++) {
      const [x, y] = this.switchMarker(i);
      if (!Number.isFinite(x)) continue;
      ctx.fillStyle = switchClosed[i] ? '#27313b' : '#ffffff';
      ctx.fillRect(x - size / 2, y - size / 2, size, size);
      ctx.strokeRect(x - size / 2, y - size / 2, size, size);
    }
  }

  /**
   * Where a switch is drawn; NaN if it is not. Open switches are always drawn (they cut the grid); closed ones
   * when there are few, or once zoomed in, so that a grid with a switch at each line end stays readable.
   * @param {number} i
   * @returns {[number, number]}
   */
  switchMarker(i) {
    const closedShown = this.data.switchIds.length <= MAX_CLOSED_SWITCHES || this.scale > this.fitScale * 3;
    return !closedShown && this.data.switchClosed[i] ? [NaN, NaN] : this.switchPosition(i);
  }

  /** @param {number} i @returns {[number, number]} */
  switchPosition(i) {
    const a = this.data.switchBus[i];
    const b = this.data.switchTo[i];
    if (a < 0 || b < 0) return [NaN, NaN];
    const f = this.data.switchAt[i];
    return [this.screenX[a] + f * (this.screenX[b] - this.screenX[a]), this.screenY[a] + f * (this.screenY[b] - this.screenY[a])];
  }

  /** @param {number} size */
  drawBuses(size) {
    const ctx = this.ctx;
    const sx = this.screenX;
    const sy = this.screenY;
    const half = size / 2;
    const w = this.width;
    const hgt = this.height;
    this.eachColour(/** @type {ColourGroups} */ (this.busGroups), (i) => {
      const x = sx[i];
      const y = sy[i];
      if (x < -size || y < -size || x > w + size || y > hgt + size) return;
      ctx.rect(x - half, y - half, size, size);
    }, (colour) => {
      ctx.fillStyle = colour;
      ctx.fill();
    });
  }

  drawSlack() {
    const bus = this.data.slackBus;
    if (bus < 0) return;
    const ctx = this.ctx;
    const x = this.screenX[bus];
    const y = this.screenY[bus];
    ctx.beginPath();
    ctx.moveTo(x, y - 10);
    ctx.lineTo(x, y - 22);
    ctx.moveTo(x - 9, y - 22);
    ctx.lineTo(x + 9, y - 22);
    ctx.moveTo(x - 6, y - 26);
    ctx.lineTo(x + 6, y - 26);
    ctx.moveTo(x - 3, y - 30);
    ctx.lineTo(x + 3, y - 30);
    ctx.lineWidth = 2;
    ctx.strokeStyle = '#27313b';
    ctx.stroke();
  }

  drawParticipants() {
    const ctx = this.ctx;
    const participants = this.data.participants;
    for (let i = 0; i < participants.length; i++) {
      const [x, y] = this.participantPosition(i);
      if (!Number.isFinite(x)) continue;
      ctx.beginPath();
      ctx.moveTo(this.screenX[participants[i].bus], this.screenY[participants[i].bus]);
      ctx.lineTo(x, y);
      ctx.strokeStyle = '#b7c0c8';
      ctx.lineWidth = 1;
      ctx.stroke();
      ctx.beginPath();
      ctx.arc(x, y, 5, 0, 2 * Math.PI);
      ctx.fillStyle = participantColour(participants[i]);
      ctx.fill();
    }
  }

  /** Participants are drawn in drawn diagrams (on a map they would cover the buses below), when few enough. */
  showsParticipants() {
    return !this.data.geo && this.data.participants.length <= MAX_PARTICIPANT_GLYPHS;
  }

  /** Participants hang in a row below their bus. @param {number} i @returns {[number, number]} */
  participantPosition(i) {
    const bus = this.data.participants[i].bus;
    if (bus < 0 || bus >= this.screenX.length) return [NaN, NaN];
    const slots = /** @type {{slot: Int32Array, count: Int32Array}} */ (this.participantSlots);
    const offset = (slots.slot[i] - (slots.count[bus] - 1) / 2) * 13;
    return [this.screenX[bus] + offset, this.screenY[bus] + 20];
  }

  /** Bus ids beside the buses, where they do not overlap one another (placed greedily on a coarse grid). */
  drawLabels() {
    const d = this.data;
    /** @type {number[]} */
    const visible = [];
    for (let i = 0; i < d.busIds.length; i++) {
      const x = this.screenX[i];
      const y = this.screenY[i];
      if (x >= 0 && y >= 0 && x <= this.width && y <= this.height) {
        visible.push(i);
        if (visible.length > MAX_LABELS) return;
      }
    }
    const ctx = this.ctx;
    ctx.font = '11px system-ui, sans-serif';
    ctx.fillStyle = '#27313b';
    ctx.textBaseline = 'bottom';
    const taken = new Set();
    const [cellW, cellH] = LABEL_CELL;
    for (const i of visible) {
      const x = this.screenX[i] + 7;
      const y = this.screenY[i] - 6;
      const col = Math.floor(x / cellW);
      const row = Math.floor(y / cellH);
      const cells = [`${col},${row}`, `${col + 1},${row}`];
      const around = [-1, 0, 1].flatMap((dr) => [`${col},${row + dr}`, `${col + 1},${row + dr}`]);
      if (around.some((c) => taken.has(c))) continue;
      for (const c of cells) taken.add(c);
      ctx.fillText(d.busIds[i], x, y);
    }
  }

  /** A faint grid behind a drawn (not geographic) diagram, the paper the designer draws on. */
  drawBackgroundGrid() {
    if (this.data.geo) return;
    let step = BACKGROUND_GRID;
    while (step * this.scale < 24) step *= 2;
    const [x0, y0] = this.toWorld(0, 0);
    const [x1, y1] = this.toWorld(this.width, this.height);
    const ctx = this.ctx;
    ctx.beginPath();
    for (let x = Math.ceil(x0 / step) * step; x <= x1; x += step) {
      const [sx] = this.toScreen(x, 0);
      ctx.moveTo(Math.round(sx) + 0.5, 0);
      ctx.lineTo(Math.round(sx) + 0.5, this.height);
    }
    for (let y = Math.ceil(y0 / step) * step; y <= y1; y += step) {
      const [, sy] = this.toScreen(0, y);
      ctx.moveTo(0, Math.round(sy) + 0.5);
      ctx.lineTo(this.width, Math.round(sy) + 0.5);
    }
    ctx.strokeStyle = '#eef1f4';
    ctx.lineWidth = 1;
    ctx.stroke();
  }

  drawHighlights() {
    if (this.pendingBus >= 0) this.ring({ kind: 'bus', index: this.pendingBus }, '#e08a00', [4, 3]);
    if (this.selected) this.ring(this.selected, '#0b6bcb', []);
    if (this.marked) this.ring(this.marked, '#d11f2f', []);
  }

  /**
   * @param {ElementRef} ref
   * @param {string} colour
   * @param {number[]} dash
   */
  ring(ref, colour, dash) {
    const ctx = this.ctx;
    ctx.save();
    ctx.setLineDash(dash);
    ctx.strokeStyle = colour;
    ctx.lineWidth = 3;
    ctx.beginPath();
    const d = this.data;
    if (ref.kind === 'bus' && ref.index < d.busIds.length) {
      ctx.arc(this.screenX[ref.index], this.screenY[ref.index], 10, 0, 2 * Math.PI);
    } else if (ref.kind === 'participant' && ref.index < d.participants.length) {
      const [x, y] = this.participantPosition(ref.index);
      ctx.arc(x, y, 8, 0, 2 * Math.PI);
    } else if (ref.kind === 'switch' && ref.index < d.switchIds.length) {
      const [x, y] = this.switchPosition(ref.index);
      ctx.rect(x - 8, y - 8, 16, 16);
    } else if (ref.kind === 'line' || ref.kind === 'trafo') {
      const [from, to] = ref.kind === 'line' ? [d.lineFrom, d.lineTo] : [d.trafoHv, d.trafoLv];
      const a = from[ref.index];
      const b = to[ref.index];
      if (a >= 0 && b >= 0) {
        ctx.lineWidth = 7;
        ctx.globalAlpha = 0.45;
        ctx.moveTo(this.screenX[a], this.screenY[a]);
        ctx.lineTo(this.screenX[b], this.screenY[b]);
      }
    }
    ctx.stroke();
    ctx.restore();
  }

  // ------------------------------------------------------------------ picking

  /**
   * The element under a point of the canvas (CSS pixels), the nearest within a few pixels.
   * @param {number} px
   * @param {number} py
   * @returns {ElementRef | null}
   */
  pick(px, py) {
    const d = this.data;
    if (this.screenX.length !== d.busIds.length) this.project();
    const r2 = PICK_RADIUS_PX * PICK_RADIUS_PX;
    if (this.showsParticipants()) {
      const hit = nearest(d.participants.length, (i) => this.participantPosition(i), px, py, r2);
      if (hit >= 0) return { kind: 'participant', index: hit };
    }
    const busHit = nearest(d.busIds.length, (i) => [this.screenX[i], this.screenY[i]], px, py, r2);
    if (busHit >= 0) return { kind: 'bus', index: busHit };
    const switchHit = nearest(d.switchIds.length, (i) => this.switchMarker(i), px, py, r2);
    if (switchHit >= 0) return { kind: 'switch', index: switchHit };
    const trafoHit = this.nearestBranch(d.trafoHv, d.trafoLv, px, py);
    if (trafoHit >= 0) return { kind: 'trafo', index: trafoHit };
    const lineHit = this.nearestBranch(d.lineFrom, d.lineTo, px, py);
    if (lineHit >= 0) return { kind: 'line', index: lineHit };
    return null;
  }

  /**
   * @param {Int32Array} from
   * @param {Int32Array} to
   * @param {number} px
   * @param {number} py
   */
  nearestBranch(from, to, px, py) {
    let best = -1;
    let bestD2 = (PICK_RADIUS_PX - 2) ** 2;
    for (let i = 0; i < from.length; i++) {
      const a = from[i];
      const b = to[i];
      if (a < 0 || b < 0) continue;
      const d2 = segmentDistance2(px, py, this.screenX[a], this.screenY[a], this.screenX[b], this.screenY[b]);
      if (d2 < bestD2) {
        bestD2 = d2;
        best = i;
      }
    }
    return best;
  }

  // ------------------------------------------------------------------ input

  listen() {
    const canvas = this.canvas;
    /** @type {{x: number, y: number, startX: number, startY: number, bus: number, moved: boolean, centerX: number, centerY: number} | null} */
    let drag = null;
    canvas.addEventListener('pointerdown', (event) => {
      if (event.button !== 0) return;
      const [x, y] = localPoint(canvas, event);
      const hit = this.pick(x, y);
      drag = {
        x, y, startX: x, startY: y, moved: false, centerX: this.centerX, centerY: this.centerY,
        bus: this.canDragBuses && hit?.kind === 'bus' ? hit.index : -1,
      };
      canvas.setPointerCapture(event.pointerId);
    });
    canvas.addEventListener('pointermove', (event) => {
      const [x, y] = localPoint(canvas, event);
      if (!drag) {
        this.onHover(this.pick(x, y), [x, y]);
        return;
      }
      if (!drag.moved && Math.hypot(x - drag.startX, y - drag.startY) < CLICK_SLOP_PX) return;
      drag.moved = true;
      if (drag.bus >= 0) {
        this.onDragBus(drag.bus, this.toWorld(x, y));
      } else {
        this.centerX = drag.centerX - (x - drag.startX) / this.scale;
        this.centerY = drag.centerY - (y - drag.startY) / this.scale;
        this.redraw();
      }
    });
    canvas.addEventListener('pointerup', (event) => {
      if (!drag) return;
      const [x, y] = localPoint(canvas, event);
      if (!drag.moved) this.onClick(this.pick(x, y), this.toWorld(x, y));
      drag = null;
    });
    canvas.addEventListener('pointerleave', () => this.onHover(null, [0, 0]));
    canvas.addEventListener('wheel', (event) => {
      event.preventDefault();
      const [x, y] = localPoint(canvas, event);
      const [wx, wy] = this.toWorld(x, y);
      const factor = Math.exp(-event.deltaY * (event.deltaMode === 1 ? 0.05 : 0.0015));
      this.scale = Math.min(this.fitScale * 5000, Math.max(this.fitScale / 20, this.scale * factor));
      this.centerX = wx - (x - this.width / 2) / this.scale;
      this.centerY = wy - (y - this.height / 2) / this.scale;
      this.redraw();
    }, { passive: false });
  }
}

/**
 * @param {HTMLElement} el
 * @param {MouseEvent} event
 * @returns {[number, number]}
 */
function localPoint(el, event) {
  const rect = el.getBoundingClientRect();
  return [event.clientX - rect.left, event.clientY - rect.top];
}

/**
 * Counting sort of elements by colour: the elements of one colour are drawn as one path.
 * @param {number} count
 * @param {Overlay | null} overlay
 * @param {(i: number) => number} fallbackBin the bin without an overlay (voltage level), −1: no colour
 * @returns {ColourGroups}
 */
function groupByColour(count, overlay, fallbackBin) {
  const colours = overlay ? overlay.scale.colours : LEVEL_SCALE.colours;
  const palette = [...colours, NO_VALUE_COLOUR];
  const noValue = colours.length;
  const bins = new Int32Array(count);
  for (let i = 0; i < count; i++) {
    const bin = overlay ? binOf(overlay.scale, overlay.values[i]) : fallbackBin(i);
    bins[i] = bin < 0 ? noValue : bin;
  }
  const starts = new Int32Array(palette.length + 1);
  for (let i = 0; i < count; i++) starts[bins[i] + 1]++;
  for (let c = 0; c < palette.length; c++) starts[c + 1] += starts[c];
  const next = starts.slice(0, palette.length);
  const order = new Int32Array(count);
  for (let i = 0; i < count; i++) order[next[bins[i]]++] = i;
  return { order, starts, palette };
}

/**
 * Each participant's place in the row below its bus.
 * @param {DiagramData} d
 */
function slotsAtBuses(d) {
  const count = new Int32Array(d.busIds.length);
  const slot = new Int32Array(d.participants.length);
  d.participants.forEach((p, i) => {
    if (p.bus >= 0 && p.bus < count.length) slot[i] = count[p.bus]++;
  });
  return { slot, count };
}

/** @param {import('./diagram-data.js').DiagramParticipant} p */
function participantColour(p) {
  if (p.assets.includes('battery') && !p.assets.includes('load')) return '#7b4fc9';
  if (p.kind === 'producer' || p.assets.includes('thermal')) return '#c46a12';
  if (p.assets.includes('pv')) return '#e2a400';
  return '#3b8d5a';
}

/**
 * @param {number} count
 * @param {(i: number) => [number, number]} position
 * @param {number} px
 * @param {number} py
 * @param {number} maxD2
 */
function nearest(count, position, px, py, maxD2) {
  let best = -1;
  let bestD2 = maxD2;
  for (let i = 0; i < count; i++) {
    const [x, y] = position(i);
    const d2 = (x - px) ** 2 + (y - py) ** 2;
    if (d2 <= bestD2) {
      bestD2 = d2;
      best = i;
    }
  }
  return best;
}

/**
 * @param {number} px @param {number} py @param {number} ax @param {number} ay @param {number} bx @param {number} by
 */
function segmentDistance2(px, py, ax, ay, bx, by) {
  const dx = bx - ax;
  const dy = by - ay;
  const len2 = dx * dx + dy * dy;
  const t = len2 === 0 ? 0 : Math.max(0, Math.min(1, ((px - ax) * dx + (py - ay) * dy) / len2));
  return (px - ax - t * dx) ** 2 + (py - ay - t * dy) ** 2;
}
