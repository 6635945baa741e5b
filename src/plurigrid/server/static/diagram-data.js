// The grid as typed arrays for drawing: built from the API's diagram columns or from an inline spec.

/** @typedef {import('./api.js').ApiDiagram} ApiDiagram */
/** @typedef {import('./api.js').Spec} Spec */

/**
 * @typedef {Object} DiagramParticipant
 * @property {string} id
 * @property {number} bus index of its bus, -1 if unknown
 * @property {string} kind
 * @property {string[]} assets
 */
/**
 * Positions are drawing coordinates with y pointing down (longitude/latitude are projected).
 * Element arrays keep the order of their source (the spec's lists or the API's columns); a reference to an
 * unknown bus is -1 and is not drawn.
 * @typedef {Object} DiagramData
 * @property {boolean} geo
 * @property {string[]} busIds
 * @property {Map<string, number>} busIndex
 * @property {Float64Array} x
 * @property {Float64Array} y
 * @property {Float64Array} vnKv
 * @property {string[]} lineIds
 * @property {Int32Array} lineFrom
 * @property {Int32Array} lineTo
 * @property {string[]} trafoIds
 * @property {Int32Array} trafoHv
 * @property {Int32Array} trafoLv
 * @property {string[]} switchIds
 * @property {Int32Array} switchBus
 * @property {Int32Array} switchTo the bus at the switch's other side (for a line switch: the line's far end)
 * @property {Uint8Array} switchJoinsBuses 1 for a bus-bus switch (drawn with its own connector), 0 for a line switch
 * @property {Float32Array} switchAt where along bus → to the switch is drawn (0.5 between buses, 0.25 on a line)
 * @property {Uint8Array} switchClosed
 * @property {DiagramParticipant[]} participants
 * @property {number} slackBus index of the upstream connection's bus, -1 if none
 */

/** @returns {DiagramData} */
export function emptyDiagram() {
  return fromColumns(false, [], [], [], []);
}

/**
 * @param {boolean} geo
 * @param {string[]} busIds
 * @param {ArrayLike<number>} x
 * @param {ArrayLike<number>} y
 * @param {ArrayLike<number>} vnKv
 * @returns {DiagramData}
 */
function fromColumns(geo, busIds, x, y, vnKv) {
  return {
    geo,
    busIds,
    busIndex: new Map(busIds.map((id, i) => [id, i])),
    x: Float64Array.from(x),
    y: Float64Array.from(y),
    vnKv: Float64Array.from(vnKv),
    lineIds: [], lineFrom: new Int32Array(0), lineTo: new Int32Array(0),
    trafoIds: [], trafoHv: new Int32Array(0), trafoLv: new Int32Array(0),
    switchIds: [], switchBus: new Int32Array(0), switchTo: new Int32Array(0), switchJoinsBuses: new Uint8Array(0),
    switchAt: new Float32Array(0), switchClosed: new Uint8Array(0),
    participants: [],
    slackBus: -1,
  };
}

/**
 * The API's diagram; longitude/latitude become an equirectangular projection around the grid's mean latitude.
 * @param {ApiDiagram} diagram
 * @returns {DiagramData}
 */
export function fromApiDiagram(diagram) {
  const bus = diagram.bus;
  const n = bus.id.length;
  let x = Float64Array.from(bus.x, (v) => v ?? NaN);
  let y = Float64Array.from(bus.y, (v) => v ?? NaN);
  if (diagram.geo) {
    let latSum = 0;
    let count = 0;
    for (let i = 0; i < n; i++) if (Number.isFinite(y[i])) { latSum += y[i]; count++; }
    const shrink = Math.cos(((count ? latSum / count : 0) * Math.PI) / 180);
    x = x.map((lon) => lon * shrink);
    y = y.map((lat) => -lat);
  }
  const data = fromColumns(diagram.geo, bus.id.map(String), x, y, bus.vn_kv);
  const line = diagram.line ?? { id: [], from: [], to: [] };
  data.lineIds = line.id.map(String);
  data.lineFrom = Int32Array.from(line.from, indexOrNone);
  data.lineTo = Int32Array.from(line.to, indexOrNone);
  const trafo = diagram.trafo ?? { id: [], hv: [], lv: [] };
  data.trafoIds = trafo.id.map(String);
  data.trafoHv = Int32Array.from(trafo.hv, indexOrNone);
  data.trafoLv = Int32Array.from(trafo.lv, indexOrNone);
  const sw = diagram.switch ?? { id: [], bus: [], to: [], closed: [] };
  data.switchIds = sw.id.map(String);
  data.switchBus = Int32Array.from(sw.bus, indexOrNone);
  data.switchTo = Int32Array.from(sw.to, indexOrNone);
  data.switchJoinsBuses = Uint8Array.from(sw.id, (_, i) => (sw.et?.[i] === 'b' ? 1 : 0));
  data.switchAt = Float32Array.from(data.switchJoinsBuses, (joins) => (joins ? 0.5 : 0.25));
  data.switchClosed = Uint8Array.from(sw.closed, (c) => (c ? 1 : 0));
  data.participants = (diagram.participant ?? []).map((p) => ({
    id: String(p.id), bus: indexOrNone(p.bus), kind: p.kind, assets: p.assets ?? [],
  }));
  return data;
}

/** @param {number | null | undefined} value */
function indexOrNone(value) {
  return value === null || value === undefined || !Number.isInteger(value) ? -1 : value;
}

/**
 * An inline grid of a spec. A bus is drawn at its `diagram_xy`, else where `layout` puts it (the API's layout of
 * a saved or library world), else on a circle.
 * @param {Spec} spec
 * @param {Map<string, [number, number]>} layout
 * @returns {DiagramData}
 */
export function fromSpec(spec, layout) {
  const grid = spec.grid ?? {};
  /** @type {Record<string, any>[]} */
  const buses = grid.bus ?? [];
  const busIds = buses.map((b) => String(b.id ?? ''));
  const x = new Float64Array(buses.length);
  const y = new Float64Array(buses.length);
  buses.forEach((b, i) => {
    const xy = b.diagram_xy ?? layout.get(busIds[i]) ?? circlePosition(i, buses.length);
    x[i] = xy[0];
    y[i] = xy[1];
  });
  const data = fromColumns(false, busIds, x, y, buses.map((b) => Number(b.vn_kv) || 0));
  const at = (/** @type {unknown} */ id) => data.busIndex.get(String(id)) ?? -1;

  /** @type {Record<string, any>[]} */
  const lines = grid.line ?? [];
  data.lineIds = lines.map((l) => String(l.id ?? ''));
  data.lineFrom = Int32Array.from(lines, (l) => at(l.from_bus));
  data.lineTo = Int32Array.from(lines, (l) => at(l.to_bus));
  /** @type {Record<string, any>[]} */
  const trafos = grid.transformer ?? [];
  data.trafoIds = trafos.map((t) => String(t.id ?? ''));
  data.trafoHv = Int32Array.from(trafos, (t) => at(t.hv_bus));
  data.trafoLv = Int32Array.from(trafos, (t) => at(t.lv_bus));
  /** @type {Record<string, any>[]} */
  const switches = grid.switch ?? [];
  const lineIndex = new Map(data.lineIds.map((id, i) => [id, i]));
  data.switchIds = switches.map((s) => String(s.id ?? ''));
  data.switchBus = Int32Array.from(switches, (s) => at(s.bus));
  data.switchTo = Int32Array.from(switches, (s, k) => {
    if (s.to_bus !== undefined && s.to_bus !== null) return at(s.to_bus);
    const li = lineIndex.get(String(s.line));
    if (li === undefined) return -1;
    return data.lineFrom[li] === data.switchBus[k] ? data.lineTo[li] : data.lineFrom[li];
  });
  data.switchJoinsBuses = Uint8Array.from(switches, (s) => (s.to_bus !== undefined && s.to_bus !== null ? 1 : 0));
  data.switchAt = Float32Array.from(data.switchJoinsBuses, (joins) => (joins ? 0.5 : 0.25));
  data.switchClosed = Uint8Array.from(switches, (s) => (s.closed === false ? 0 : 1));
  /** @type {Record<string, any>[]} */
  const participants = spec.participant ?? [];
  data.participants = participants.map((p) => ({
    id: String(p.id ?? ''),
    bus: typeof p.bus === 'number' ? p.bus : at(p.bus),
    kind: String(p.kind ?? 'household'),
    assets: Object.keys(p.assets ?? {}),
  }));
  data.slackBus = grid.connection ? at(grid.connection.bus) : -1;
  return data;
}

/**
 * @param {number} i
 * @param {number} n
 * @returns {[number, number]}
 */
function circlePosition(i, n) {
  const angle = (2 * Math.PI * i) / Math.max(n, 1);
  const radius = 40 + 25 * n;
  return [radius * Math.cos(angle), radius * Math.sin(angle)];
}

/**
 * The positions of a diagram by bus id (to draw buses of a spec that have no `diagram_xy`).
 * @param {DiagramData} data
 * @returns {Map<string, [number, number]>}
 */
export function layoutOf(data) {
  return new Map(data.busIds.map((id, i) => [id, [data.x[i], data.y[i]]]));
}
