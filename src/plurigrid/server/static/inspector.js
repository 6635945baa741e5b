// The designer's side panel: the fields of the selected element, of the world and of the market, generated
// from the schema and tagged with the API's field paths.

import { h } from './dom.js';
import { ASSET_STARTERS, profileStarter } from './starters.js';

/** @typedef {import('./api.js').Spec} Spec */
/** @typedef {import('./api.js').StdTypes} StdTypes */
/** @typedef {import('./schema-form.js').SchemaForms} SchemaForms */
/** @typedef {import('./diagram-data.js').DiagramData} DiagramData */
/** @typedef {import('./diagram-view.js').ElementRef} ElementRef */

/**
 * What the panel reads and how it reports edits.
 * @typedef {Object} InspectorContext
 * @property {Spec} spec
 * @property {SchemaForms} forms
 * @property {StdTypes} stdTypes
 * @property {DiagramData} diagram the grid as drawn (for a referenced grid: the API's)
 * @property {boolean} readOnlyGrid the grid is referenced (SimBench): its elements are shown, not edited
 * @property {(path: string, value: unknown) => void} edit a field changed
 * @property {() => void} restructure something changed that changes the panel itself
 * @property {(ref: ElementRef | null) => void} select
 * @property {(ref: ElementRef) => void} remove
 * @property {(bus: string) => void} addParticipant
 */

const IMPEDANCE_FIELDS = ['r_ohm_per_km', 'x_ohm_per_km', 'c_nf_per_km', 'r_pu', 'x_pu', 'b_pu'];

/**
 * @param {InspectorContext} ctx
 * @param {ElementRef | null} ref
 * @returns {HTMLElement}
 */
export function elementPanel(ctx, ref) {
  if (!ref) {
    return h('div', { class: 'panel-hint', 'data-testid': 'panel-hint' },
      ctx.readOnlyGrid ? 'Click a bus to see its participants.' : 'Pick a tool above and click on the canvas: add buses, then join them with lines. Select an element to edit it.');
  }
  if (ctx.readOnlyGrid) return referencedElementPanel(ctx, ref);
  switch (ref.kind) {
    case 'bus': return busPanel(ctx, ref.index);
    case 'line': return linePanel(ctx, ref.index);
    case 'trafo': return trafoPanel(ctx, ref.index);
    case 'switch': return switchPanel(ctx, ref.index);
    default: return participantPanel(ctx, ref.index);
  }
}

/**
 * @param {InspectorContext} ctx
 * @param {string} title
 * @param {ElementRef} ref
 * @param {...HTMLElement} body
 */
function panel(ctx, title, ref, ...body) {
  return h('div', { class: 'element-panel', 'data-testid': `panel-${ref.kind}` },
    h('div', { class: 'panel-head' },
      h('h3', {}, title),
      h('button', { class: 'danger small', 'data-testid': 'delete-element', onclick: () => ctx.remove(ref) }, 'Delete')),
    ...body);
}

/** @param {InspectorContext} ctx @param {string} path @param {unknown} value @param {boolean} optional */
function busSelect(ctx, path, value, optional) {
  /** @type {string[]} */
  const ids = (ctx.spec.grid?.bus ?? []).map((/** @type {Record<string, any>} */ b) => String(b.id));
  const select = h('select', { onchange: () => ctx.edit(path, select.value === '' ? undefined : select.value) },
    optional ? h('option', { value: '', selected: value === undefined || value === null }, '—') : null,
    ids.map((id) => h('option', { value: id, selected: id === value }, id)));
  return fieldOf(path, select);
}

/**
 * @param {string} path
 * @param {HTMLElement} control
 * @param {string} [label]
 */
function fieldOf(path, control, label) {
  return h('label', { class: 'field', 'data-path': path },
    h('span', { class: 'field-label' }, label ?? path.split('.').pop() ?? path),
    control,
    h('span', { class: 'field-error', 'data-testid': 'field-error' }));
}

/** @param {InspectorContext} ctx @param {number} i */
function busPanel(ctx, i) {
  const bus = ctx.spec.grid.bus[i];
  const path = `grid.bus[${i}]`;
  /** @type {Record<string, any>[]} */
  const participants = ctx.spec.participant ?? [];
  const here = participants.map((p, k) => ({ p, k })).filter(({ p }) => p.bus === bus.id);
  return panel(ctx, `Bus ${bus.id}`, { kind: 'bus', index: i },
    h('div', { class: 'fields', 'data-path': path },
      ...ctx.forms.fields('Bus', bus, path, { onChange: ctx.edit, skip: ['diagram_xy'] })),
    h('h4', {}, 'Participants at this bus'),
    h('ul', { class: 'participant-links' },
      here.map(({ p, k }) => h('li', {},
        h('button', { class: 'link', 'data-testid': `participant-link-${p.id}`, onclick: () => ctx.select({ kind: 'participant', index: k }) },
          `${p.id} · ${p.kind ?? 'household'} · ${Object.keys(p.assets ?? {}).join(', ') || 'no assets'}`)))),
    h('button', { 'data-testid': 'add-participant', onclick: () => ctx.addParticipant(bus.id) }, '+ Add participant'));
}

/** @param {InspectorContext} ctx @param {number} i */
function linePanel(ctx, i) {
  const line = ctx.spec.grid.line[i];
  const path = `grid.line[${i}]`;
  const stdNames = Object.keys(ctx.stdTypes.line ?? {});
  const stdSelect = h('select', {
    'data-testid': 'line-std-type-field',
    onchange: () => {
      ctx.edit(`${path}.std_type`, stdSelect.value === '' ? undefined : stdSelect.value);
      if (stdSelect.value !== '') for (const key of IMPEDANCE_FIELDS) ctx.edit(`${path}.${key}`, undefined);
      ctx.restructure();
    },
  },
  h('option', { value: '', selected: !line.std_type }, '— impedances below —'),
  stdNames.map((name) => h('option', { value: name, selected: name === line.std_type }, name)));
  const skip = line.std_type ? IMPEDANCE_FIELDS : [];
  return panel(ctx, `Line ${line.id}`, { kind: 'line', index: i },
    h('div', { class: 'fields', 'data-path': path },
      ...ctx.forms.fields('Line', line, path, {
        onChange: ctx.edit,
        skip,
        custom: {
          from_bus: (p, v) => busSelect(ctx, p, v, false),
          to_bus: (p, v) => busSelect(ctx, p, v, false),
          std_type: (p) => fieldOf(p, stdSelect),
        },
      })));
}

/** @param {InspectorContext} ctx @param {number} i */
function trafoPanel(ctx, i) {
  const trafo = ctx.spec.grid.transformer[i];
  const path = `grid.transformer[${i}]`;
  const types = ctx.stdTypes.transformer ?? {};
  const typeSelect = h('select', {
    'data-testid': 'trafo-std-type-field',
    onchange: () => {
      const rating = types[typeSelect.value];
      if (!rating) return;
      ctx.edit(`${path}.sn_mva`, rating.sn_mva);
      ctx.edit(`${path}.r_pu`, rating.r_pu);
      ctx.edit(`${path}.x_pu`, rating.x_pu);
      ctx.restructure();
    },
  },
  h('option', { value: '' }, 'fill sn_mva, r_pu, x_pu from…'),
  Object.keys(types).map((name) => h('option', { value: name }, name)));
  return panel(ctx, `Transformer ${trafo.id}`, { kind: 'trafo', index: i },
    fieldOf(`${path}.standard_type`, typeSelect, 'standard type'),
    h('div', { class: 'fields', 'data-path': path },
      ...ctx.forms.fields('Transformer', trafo, path, {
        onChange: ctx.edit,
        custom: { hv_bus: (p, v) => busSelect(ctx, p, v, false), lv_bus: (p, v) => busSelect(ctx, p, v, false) },
      })));
}

/** @param {InspectorContext} ctx @param {number} i */
function switchPanel(ctx, i) {
  const sw = ctx.spec.grid.switch[i];
  const path = `grid.switch[${i}]`;
  /** @type {string[]} */
  const lineIds = (ctx.spec.grid.line ?? []).map((/** @type {Record<string, any>} */ l) => String(l.id));
  const lineSelect = (/** @type {string} */ p, /** @type {unknown} */ v) => {
    const select = h('select', { onchange: () => ctx.edit(p, select.value === '' ? undefined : select.value) },
      h('option', { value: '', selected: !v }, '—'),
      lineIds.map((id) => h('option', { value: id, selected: id === v }, id)));
    return fieldOf(p, select);
  };
  return panel(ctx, `Switch ${sw.id}`, { kind: 'switch', index: i },
    h('div', { class: 'fields', 'data-path': path },
      ...ctx.forms.fields('Switch', sw, path, {
        onChange: ctx.edit,
        custom: { bus: (p, v) => busSelect(ctx, p, v, false), to_bus: (p, v) => busSelect(ctx, p, v, true), line: lineSelect },
      })));
}

/** @param {InspectorContext} ctx @param {number} i */
function participantPanel(ctx, i) {
  const participant = ctx.spec.participant[i];
  const path = `participant[${i}]`;
  const strategies = ctx.forms.enumOf('Participant', 'strategy').filter((s) => s !== 'module' || participant.strategy === 'module');
  const strategySelect = h('select', {
    onchange: () => {
      ctx.edit(`${path}.strategy`, strategySelect.value);
      ctx.restructure();
    },
  }, strategies.map((s) => h('option', { value: s, selected: s === (participant.strategy ?? 'passive') }, s)));
  return panel(ctx, `Participant ${participant.id}`, { kind: 'participant', index: i },
    h('div', { class: 'fields', 'data-path': path },
      ...ctx.forms.fields('Participant', participant, path, {
        onChange: ctx.edit,
        skip: ['assets', 'preferences', ...(participant.strategy === 'module' ? [] : ['module'])],
        custom: { bus: (p, v) => busSelect(ctx, p, v, false), strategy: (p) => fieldOf(p, strategySelect) },
      })),
    assetSections(ctx, participant, `${path}.assets`),
    h('fieldset', { class: 'subform', 'data-path': `${path}.preferences` },
      h('legend', {}, 'preferences'),
      h('div', { class: 'field-error', 'data-testid': 'field-error' }),
      ...ctx.forms.fields('Preferences', participant.preferences, `${path}.preferences`, { onChange: ctx.edit })));
}

/**
 * One section per kind of asset, ticked when the participant has it.
 * @param {InspectorContext} ctx
 * @param {Record<string, any>} participant
 * @param {string} path
 */
function assetSections(ctx, participant, path) {
  const assets = participant.assets ?? {};
  const kinds = Object.keys(ctx.forms.definition('Assets').properties);
  return h('div', { class: 'assets', 'data-path': path },
    h('h4', {}, 'Assets'),
    kinds.map((kind) => {
      const assetPath = `${path}.${kind}`;
      const has = assets[kind] !== undefined && assets[kind] !== null;
      const toggle = h('input', {
        type: 'checkbox', checked: has, 'data-testid': `asset-toggle-${kind}`,
        onchange: () => {
          ctx.edit(assetPath, toggle.checked ? structuredClone(ASSET_STARTERS[kind] ?? {}) : undefined);
          ctx.restructure();
        },
      });
      const schema = ctx.forms.definition('Assets').properties[kind];
      return h('fieldset', { class: `subform asset ${has ? '' : 'off'}`, 'data-path': assetPath, 'data-testid': `asset-${kind}` },
        h('legend', {}, h('label', {}, toggle, ` ${kind}`)),
        h('div', { class: 'field-error', 'data-testid': 'field-error' }),
        has ? ctx.forms.fields(schema, assets[kind], assetPath, { onChange: ctx.edit, starter: profileStarter }) : null);
    }));
}

/**
 * A bus or participant of a referenced grid: what it is, read only.
 * @param {InspectorContext} ctx
 * @param {ElementRef} ref
 */
function referencedElementPanel(ctx, ref) {
  const d = ctx.diagram;
  /** @type {[string, string][]} */
  let rows = [];
  let title = '';
  if (ref.kind === 'bus') {
    title = `Bus ${d.busIds[ref.index]}`;
    const here = d.participants.filter((p) => p.bus === ref.index);
    rows = [['id', d.busIds[ref.index]], ['vn_kv', String(d.vnKv[ref.index])],
      ['participants', here.map((p) => `${p.id} (${p.kind}: ${p.assets.join(', ')})`).join('; ') || 'none']];
  } else if (ref.kind === 'participant') {
    const p = d.participants[ref.index];
    title = `Participant ${p.id}`;
    rows = [['id', p.id], ['kind', p.kind], ['bus', d.busIds[p.bus] ?? ''], ['assets', p.assets.join(', ')]];
  } else {
    const ids = { line: d.lineIds, trafo: d.trafoIds, switch: d.switchIds }[ref.kind];
    title = `${ref.kind} ${ids[ref.index]}`;
    rows = [['id', ids[ref.index]]];
  }
  return h('div', { class: 'element-panel', 'data-testid': `panel-${ref.kind}` },
    h('h3', {}, title),
    h('dl', { class: 'facts', 'data-testid': 'element-facts' }, rows.map(([k, v]) => [h('dt', {}, k), h('dd', { 'data-testid': `fact-${k}` }, v)])),
    h('p', { class: 'muted' }, 'A referenced grid: its elements come from the grid file and are not edited here.'));
}

/** @param {InspectorContext} ctx */
export function worldPanel(ctx) {
  const spec = ctx.spec;
  const grid = spec.grid ?? {};
  /** @type {HTMLElement[]} */
  const sections = [
    h('h3', {}, 'World'),
    h('div', { class: 'fields', 'data-path': 'world' }, ...ctx.forms.fields('WorldSection', spec.world, 'world', { onChange: ctx.edit })),
  ];
  if (grid.source) {
    sections.push(h('h3', {}, 'Grid'), h('p', { 'data-testid': 'grid-source' }, `Referenced grid: ${grid.source}`),
      h('div', { class: 'fields', 'data-path': 'grid' }, ...ctx.forms.fields('GridSection', grid, 'grid', {
        onChange: ctx.edit, skip: ['source', 'bus', 'line', 'transformer', 'switch', 'connection', 'rule'],
      })));
  } else {
    const connection = grid.connection;
    /** @type {string[]} */
    const busIds = (grid.bus ?? []).map((/** @type {Record<string, any>} */ b) => String(b.id));
    const select = h('select', {
      'data-testid': 'connection-bus',
      onchange: () => {
        ctx.edit('grid.connection', select.value === '' ? undefined : { ...(connection ?? {}), bus: select.value });
        ctx.restructure();
      },
    },
    h('option', { value: '', selected: !connection }, '— none: an island —'),
    busIds.map((id) => h('option', { value: id, selected: id === connection?.bus }, id)));
    sections.push(h('h3', {}, 'Upstream connection (slack)'),
      h('fieldset', { class: 'subform', 'data-path': 'grid.connection' },
        h('div', { class: 'field-error', 'data-testid': 'field-error' }),
        fieldOf('grid.connection.bus', select, 'bus'),
        connection ? ctx.forms.fields('Connection', connection, 'grid.connection', { onChange: ctx.edit, skip: ['bus'] }) : null),
      h('div', { class: 'fields', 'data-path': 'grid' }, ...ctx.forms.fields('GridSection', grid, 'grid', {
        onChange: ctx.edit, skip: ['source', 'bus', 'line', 'transformer', 'switch', 'connection', 'rule', 'default_strategy'],
      })));
  }
  return h('div', { class: 'world-panel', 'data-testid': 'panel-world' }, ...sections);
}

/** @param {InspectorContext} ctx */
export function marketPanel(ctx) {
  return h('div', { class: 'market-panel', 'data-testid': 'panel-market' },
    h('h3', {}, 'Market'),
    h('div', { class: 'fields', 'data-path': 'market' }, ...ctx.forms.fields('MarketSection', ctx.spec.market, 'market', { onChange: ctx.edit })));
}
