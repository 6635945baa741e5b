// The participant's own app: their bill against the tariff, their energy, battery, EV and comfort in their
// latest run, and their preferences (comfort band, EV departure, green premium, data sharing). It shows
// nothing of anyone else: every route it calls is one of /api/me/*.

import { ApiError } from './api.js';
import { LineChart } from './charts.js';
import { h, formatNumber, replaceChildren } from './dom.js';
import { showFieldError, clearFieldErrors } from './schema-form.js';

/** @typedef {import('./api.js').Api} Api */
/** @typedef {import('./api.js').Me} Me */
/**
 * @typedef {Object} Preferences
 * @property {number | null} [comfort_min_c]
 * @property {number | null} [comfort_max_c]
 * @property {string | null} [ev_departure]
 * @property {number | null} [local_renewable_premium_eur_per_mwh]
 * @property {string | null} [data_sharing]
 */

/** The preferences a participant sets, with what they mean to them. */
const PREFERENCE_FIELDS = /** @type {const} */ ([
  ['comfort_min_c', 'Comfort band: lowest indoor temperature (°C)', 'number'],
  ['comfort_max_c', 'Comfort band: highest indoor temperature (°C)', 'number'],
  ['ev_departure', 'EV charged by (departure time)', 'time'],
  ['local_renewable_premium_eur_per_mwh', 'Green premium: extra paid for the community’s own renewables (per MWh)', 'number'],
  ['data_sharing', 'What the operator sees of my meter', 'sharing'],
]);

/**
 * @param {HTMLElement} container
 * @param {{api: Api, me: Me}} services
 * @returns {{unmount: () => void}}
 */
export function mountParticipantApp(container, services) {
  const { api, me } = services;
  /** @type {LineChart[]} */
  const charts = [];
  const runPart = h('div', { class: 'my-run', 'data-testid': 'my-run' }, 'Loading your latest run…');
  const preferencesPart = h('section', { class: 'card', 'data-testid': 'my-preferences' }, 'Loading your preferences…');
  replaceChildren(container, h('div', { class: 'participant-page', 'data-testid': 'participant-page' },
    h('h2', { 'data-testid': 'my-name' }, `Your energy · ${me.participant ?? ''}`),
    runPart, preferencesPart));
  loadRun(api, runPart, charts);
  loadPreferences(api, preferencesPart);
  return { unmount: () => charts.forEach((c) => c.destroy()) };
}

/**
 * @param {Api} api
 * @param {HTMLElement} slot
 * @param {LineChart[]} charts
 */
async function loadRun(api, slot, charts) {
  try {
    const listed = await api.get('me/runs');
    /** @type {{id?: string, run?: string, status?: string}[]} */
    const runs = Array.isArray(listed) ? listed : listed.runs ?? [];
    const latest = runs.find((r) => (r.status ?? 'done') === 'done');
    if (!latest) {
      replaceChildren(slot, h('p', { class: 'muted', 'data-testid': 'no-runs' }, 'No finished run yet.'));
      return;
    }
    const data = await api.get(`me/runs/${encodeURIComponent(String(latest.id ?? latest.run))}`);
    replaceChildren(slot, ...runSections(data, charts));
  } catch (err) {
    replaceChildren(slot, h('p', { class: 'error' }, `Could not load your run: ${err instanceof Error ? err.message : err}`));
  }
}

/**
 * @param {{run: unknown, settlement: Record<string, number>, time: string[], columns: Record<string, (number | null)[]>}} data
 * @param {LineChart[]} charts
 * @returns {HTMLElement[]}
 */
function runSections(data, charts) {
  const s = data.settlement ?? {};
  const money = (/** @type {string} */ key, /** @type {string} */ label) => h('div', { class: 'kpi' },
    h('span', { class: 'kpi-value', 'data-testid': `my-${key}`, 'data-value': s[key] }, formatNumber(s[key], 2)),
    h('span', { class: 'kpi-name' }, label));
  const energy = (/** @type {string} */ key, /** @type {string} */ label) => h('div', { class: 'kpi' },
    h('span', { class: 'kpi-value', 'data-testid': `my-${key}`, 'data-value': s[key] }, formatNumber(s[key] / 1000, 2)),
    h('span', { class: 'kpi-name' }, label));
  const sections = [
    h('section', { class: 'card' }, h('h3', {}, 'Your bill'),
      h('div', { class: 'kpis' }, money('bill', 'your bill'), money('baseline', 'on the tariff alone'), money('savings', 'saved'))),
    h('section', { class: 'card' }, h('h3', {}, 'Your energy'),
      h('div', { class: 'kpis' }, energy('imported_wh', 'kWh bought'), energy('exported_wh', 'kWh sold'))),
  ];
  /** @type {[string, string, string, string[]][]} */
  const chartsWanted = [
    ['my-energy-chart', 'Your meter', 'kW', ['net_kw']],
    ['my-battery-chart', 'Your battery', 'kWh', ['soc_kwh']],
    ['my-ev-chart', 'Your EV', 'kWh', Object.keys(data.columns).filter((c) => c.startsWith('ev_'))],
    ['my-comfort-chart', 'Your comfort', '°C', ['indoor_c']],
  ];
  const colours = ['#0b6bcb', '#7b4fc9', '#3b8d5a', '#d1495b'];
  for (const [testid, title, unit, columns] of chartsWanted) {
    const present = columns.filter((c) => hasValues(data.columns[c]));
    if (present.length === 0) continue;
    const chart = new LineChart({ title, unit, testid });
    sections.push(h('section', { class: 'card' }, chart.element));
    chart.setData(data.time, present.map((c, i) => ({ label: c, values: data.columns[c], colour: colours[i % colours.length] })));
    charts.push(chart);
  }
  return sections;
}

/** @param {(number | null)[] | undefined} values */
function hasValues(values) {
  return Boolean(values?.some((v) => v !== null && Number.isFinite(v) && v !== 0));
}

/**
 * @param {Api} api
 * @param {HTMLElement} slot
 */
async function loadPreferences(api, slot) {
  /** @type {Preferences} */
  let stored;
  try {
    stored = await api.get('me/preferences');
  } catch (err) {
    replaceChildren(slot, h('p', { class: 'error' }, `Could not load your preferences: ${err instanceof Error ? err.message : err}`));
    return;
  }
  const status = h('p', { class: 'status-line', 'data-testid': 'preferences-status' });
  /** @type {Map<string, HTMLInputElement | HTMLSelectElement>} */
  const inputs = new Map();
  const fields = PREFERENCE_FIELDS.filter(([key]) => stored[key] !== null && stored[key] !== undefined).map(([key, label, type]) => {
    const value = stored[key];
    const input = type === 'sharing'
      ? h('select', {}, [['detail', 'every 15-minute reading'], ['bills', 'my bills only']].map(([v, text]) => h('option', { value: v, selected: v === value }, text)))
      : h('input', { type: type === 'time' ? 'time' : 'number', step: 'any', value: String(value) });
    input.dataset.testid = `pref-${key}`;
    inputs.set(key, input);
    return h('label', { class: 'field', 'data-path': key }, h('span', { class: 'field-label' }, label), input,
      h('span', { class: 'field-error', 'data-testid': 'field-error' }));
  });
  const form = h('form', { class: 'preferences-form', 'data-testid': 'preferences-form' },
    fields.length ? fields : h('p', { class: 'muted' }, 'You have no preferences to set.'),
    h('button', { type: 'submit', class: 'primary', 'data-testid': 'save-preferences', disabled: fields.length === 0 }, 'Save preferences'),
    status);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    /** @type {Record<string, unknown>} */
    const changes = {};
    for (const [key, input] of inputs) {
      const now = input instanceof HTMLInputElement && input.type === 'number' ? Number(input.value) : input.value;
      if (now !== stored[/** @type {keyof Preferences} */ (key)]) changes[key] = now;
    }
    clearFieldErrors(form);
    try {
      await api.put('me/preferences', changes);
      stored = await api.get('me/preferences');
      status.textContent = Object.keys(changes).length ? 'Saved: they apply from the next run.' : 'Nothing changed.';
      status.dataset.state = 'ok';
    } catch (err) {
      const specError = err instanceof ApiError ? err.specError : null;
      if (specError) showFieldError(form, specError.path.split('.').pop() ?? specError.path, specError.message);
      status.textContent = `Not saved: ${specError?.message ?? (err instanceof Error ? err.message : err)}`;
      status.dataset.state = 'error';
    }
  });
  replaceChildren(slot, h('h3', {}, 'Your preferences'), form);
}
