// Edits of a microworld spec made in the designer: adding, moving, renaming and removing grid elements and
// participants. Each function changes the spec in place and keeps its references (bus ids) consistent.

/** @typedef {import('./api.js').Spec} Spec */
/** @typedef {'bus' | 'line' | 'trafo' | 'switch' | 'participant'} ElementKind */

const LIST_KINDS = /** @type {const} */ ({
  'grid.bus': 'bus', 'grid.line': 'line', 'grid.transformer': 'trafo', 'grid.switch': 'switch', participant: 'participant',
});

/**
 * The element a field path is about: "participant[2].assets.battery.capacity_kwh" → participant 2.
 * @param {string} path
 * @returns {{kind: ElementKind, index: number} | null}
 */
export function elementOfPath(path) {
  const match = path.match(/^(grid\.bus|grid\.line|grid\.transformer|grid\.switch|participant)\[(\d+)\]/);
  if (!match) return null;
  return { kind: LIST_KINDS[/** @type {keyof typeof LIST_KINDS} */ (match[1])], index: Number(match[2]) };
}

/**
 * A new world: one day in 15-minute steps, an inline grid still to be drawn, the flat default tariff.
 * @returns {Spec}
 */
export function blankWorldSpec() {
  return {
    world: { name: 'new-world', start: '2024-06-21T00:00:00', duration: '1d', resolution: '15min' },
    grid: { bus: [], line: [], transformer: [], switch: [] },
    market: { mechanism: 'pay-as-clear', import_price_eur_per_kwh: 0.3, export_price_eur_per_kwh: 0.08 },
    participant: [],
  };
}

/**
 * A world on a referenced grid (SimBench), its participants generated from the grid's loads.
 * @param {string} code
 * @returns {Spec}
 */
export function simbenchWorldSpec(code) {
  return {
    world: { name: code, duration: '1d', resolution: '15min' },
    grid: { source: `simbench:${code}` },
    market: { mechanism: 'tariff' },
  };
}

/**
 * The list of one kind of element (created when missing).
 * @param {Spec} spec
 * @param {ElementKind} kind
 * @returns {Record<string, any>[]}
 */
export function elementList(spec, kind) {
  if (kind === 'participant') return (spec.participant ??= []);
  spec.grid ??= {};
  const key = { bus: 'bus', line: 'line', trafo: 'transformer', switch: 'switch' }[kind];
  return (spec.grid[key] ??= []);
}

/**
 * The first free id of the form prefix1, prefix2, ...
 * @param {string} prefix
 * @param {Record<string, any>[]} list
 */
function freeId(prefix, list) {
  const taken = new Set(list.map((e) => String(e.id)));
  let n = list.length + 1;
  for (let k = 1; k <= n; k++) {
    if (!taken.has(`${prefix}${k}`)) return `${prefix}${k}`;
  }
  while (taken.has(`${prefix}${n}`)) n++;
  return `${prefix}${n}`;
}

/**
 * @param {Spec} spec
 * @param {[number, number]} xy where it is drawn
 * @param {number} vnKv
 * @returns {number} its index
 */
export function addBus(spec, xy, vnKv) {
  const buses = elementList(spec, 'bus');
  buses.push({ id: freeId('bus', buses), vn_kv: vnKv, diagram_xy: [Math.round(xy[0]), Math.round(xy[1])] });
  return buses.length - 1;
}

/**
 * @param {Spec} spec
 * @param {string} fromBus
 * @param {string} toBus
 * @param {string} stdType a pandapower line standard type
 * @param {number} lengthKm
 */
export function addLine(spec, fromBus, toBus, stdType, lengthKm) {
  const lines = elementList(spec, 'line');
  lines.push({ id: freeId('line', lines), from_bus: fromBus, to_bus: toBus, std_type: stdType, length_km: lengthKm });
  return lines.length - 1;
}

/**
 * A transformer between two buses, the higher voltage on its hv side, its ratings from a standard type.
 * @param {Spec} spec
 * @param {string} busA
 * @param {string} busB
 * @param {{sn_mva: number, r_pu: number, x_pu: number}} rating
 */
export function addTransformer(spec, busA, busB, rating) {
  const kv = (/** @type {string} */ id) => Number(elementList(spec, 'bus').find((b) => b.id === id)?.vn_kv ?? 0);
  const [hv, lv] = kv(busA) >= kv(busB) ? [busA, busB] : [busB, busA];
  const trafos = elementList(spec, 'trafo');
  trafos.push({ id: freeId('trafo', trafos), hv_bus: hv, lv_bus: lv, sn_mva: rating.sn_mva, r_pu: rating.r_pu, x_pu: rating.x_pu });
  return trafos.length - 1;
}

/**
 * A switch from a bus to another bus, or at the bus's end of a line.
 * @param {Spec} spec
 * @param {string} bus
 * @param {{toBus: string} | {line: string}} target
 */
export function addSwitch(spec, bus, target) {
  const switches = elementList(spec, 'switch');
  const id = freeId('switch', switches);
  switches.push('toBus' in target ? { id, bus, to_bus: target.toBus, closed: true } : { id, bus, line: target.line, closed: true });
  return switches.length - 1;
}

/**
 * @param {Spec} spec
 * @param {string} bus
 */
export function addParticipant(spec, bus) {
  const participants = elementList(spec, 'participant');
  participants.push({ id: freeId('p', participants), bus, kind: 'household', strategy: 'truthful', assets: {} });
  return participants.length - 1;
}

/**
 * @param {Spec} spec
 * @param {number} index
 * @param {[number, number]} xy
 */
export function moveBus(spec, index, xy) {
  elementList(spec, 'bus')[index].diagram_xy = [Math.round(xy[0]), Math.round(xy[1])];
}

/**
 * Renames a bus and every reference to it.
 * @param {Spec} spec
 * @param {string} from
 * @param {string} to
 */
export function renameBus(spec, from, to) {
  const swap = (/** @type {Record<string, any>} */ obj, /** @type {string} */ key) => {
    if (obj && obj[key] === from) obj[key] = to;
  };
  for (const line of elementList(spec, 'line')) { swap(line, 'from_bus'); swap(line, 'to_bus'); }
  for (const trafo of elementList(spec, 'trafo')) { swap(trafo, 'hv_bus'); swap(trafo, 'lv_bus'); }
  for (const sw of elementList(spec, 'switch')) { swap(sw, 'bus'); swap(sw, 'to_bus'); }
  for (const p of elementList(spec, 'participant')) swap(p, 'bus');
  swap(spec.grid?.connection, 'bus');
}

/**
 * Renames a line and the switches on it.
 * @param {Spec} spec
 * @param {string} from
 * @param {string} to
 */
export function renameLine(spec, from, to) {
  for (const sw of elementList(spec, 'switch')) if (sw.line === from) sw.line = to;
  for (const event of spec.event ?? []) if (event.line === from) event.line = to;
}

/**
 * Removes an element; a bus takes its lines, transformers, switches, participants and connection with it.
 * @param {Spec} spec
 * @param {ElementKind} kind
 * @param {number} index
 */
export function removeElement(spec, kind, index) {
  const list = elementList(spec, kind);
  const [removed] = list.splice(index, 1);
  if (!removed) return;
  if (kind === 'bus') {
    const id = removed.id;
    const keep = (/** @type {ElementKind} */ k, /** @type {(e: Record<string, any>) => boolean} */ test) => {
      const items = elementList(spec, k);
      const kept = items.filter(test);
      const lost = items.filter((e) => !test(e)).map((e) => e.id);
      items.splice(0, items.length, ...kept);
      return lost;
    };
    const lostLines = keep('line', (l) => l.from_bus !== id && l.to_bus !== id);
    keep('trafo', (t) => t.hv_bus !== id && t.lv_bus !== id);
    keep('switch', (s) => s.bus !== id && s.to_bus !== id && !lostLines.includes(s.line));
    keep('participant', (p) => p.bus !== id);
    if (spec.grid?.connection?.bus === id) delete spec.grid.connection;
  } else if (kind === 'line') {
    const items = elementList(spec, 'switch');
    items.splice(0, items.length, ...items.filter((s) => s.line !== removed.id));
  }
}
