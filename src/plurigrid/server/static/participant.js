// The participant's own app: their bill against the tariff, their energy, battery, EV and comfort in their
// latest run, their preferences (comfort band, EV departure, green premium) and their data policy (who sees
// which of their data, how finely). It shows
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
 */
/**
 * @typedef {Object} Privacy
 * @property {Record<string, Record<string, string | number | null>>} policy  kind → audience → granularity (and retention_days)
 * @property {number} version
 * @property {string} digest
 */

/** The kinds of data and the audiences a data policy names (the node acting for the participant sees everything). */
const DATA_KINDS = [['meter', 'Meter readings'], ['forecast', 'Forecasts'], ['bids', 'Bids and setpoints'],
  ['preferences', 'Preferences'], ['location', 'Location'], ['devices', 'Devices']];
const AUDIENCES = [['coalition', 'Coalition'], ['lattice', 'Lattice nodes'], ['operator', 'Operator'], ['public', 'Public']];
const GRANULARITIES = [['interval', 'each interval'], ['hourly', 'per hour'], ['daily', 'per day'],
  ['aggregate', 'only in totals'], ['none', 'not at all']];

/** The preferences a participant sets, with what they mean to them. */
const PREFERENCE_FIELDS = /** @type {const} */ ([
  ['comfort_min_c', 'Comfort band: lowest indoor temperature (°C)', 'number'],
  ['comfort_max_c', 'Comfort band: highest indoor temperature (°C)', 'number'],
  ['ev_departure', 'EV charged by (departure time)', 'time'],
  ['local_renewable_premium_eur_per_mwh', 'Green premium: extra paid for the community’s own renewables (per MWh)', 'number'],
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
  const runPart = h('div', { class: 'participant-grid', 'data-testid': 'my-run' }, 'Loading your latest run…');
  const preferencesPart = h('section', { class: 'card', 'data-testid': 'my-preferences' }, 'Loading your preferences…');
  const privacyPart = h('section', { class: 'card', 'data-testid': 'my-privacy' }, 'Loading your data policy…');
  replaceChildren(container, h('div', { class: 'participant-page', 'data-testid': 'participant-page' },
    h('h2', { 'data-testid': 'my-name' }, `Your energy · ${me.participant ?? ''}`),
    chatPanel(api), runPart, preferencesPart, privacyPart));
  /** @type {Promise<Preferences>} */
  const preferences = api.get('me/preferences');
  loadRun(api, preferences, runPart, charts);
  loadPreferences(api, preferences, preferencesPart);
  loadPrivacy(api, privacyPart);
  return { unmount: () => charts.forEach((c) => c.destroy()) };
}

/**
 * @param {Api} api
 * @param {Promise<Preferences>} preferences
 * @param {HTMLElement} slot
 * @param {LineChart[]} charts
 */
async function loadRun(api, preferences, slot, charts) {
  try {
    /** @type {import('./api.js').Run[]} */
    const runs = await api.get('me/runs');
    const latest = runs.find((r) => r.status === 'done');
    if (!latest) {
      replaceChildren(slot, h('p', { class: 'muted', 'data-testid': 'no-runs' }, 'No finished run yet.'));
      return;
    }
    const data = await api.get(`me/runs/${encodeURIComponent(latest.id)}`);
    const prefs = await preferences.catch(() => ({}));
    replaceChildren(slot, ...runSections(data, prefs, charts));
  } catch (err) {
    replaceChildren(slot, h('p', { class: 'error' }, `Could not load your run: ${err instanceof Error ? err.message : err}`));
  }
}

/**
 * @param {{settlement: Record<string, number> | null, time: string[], columns: Record<string, (number | null)[]>}} data
 * @param {Preferences} prefs
 * @param {LineChart[]} charts
 * @returns {HTMLElement[]}
 */
function runSections(data, prefs, charts) {
  const s = data.settlement ?? {};
  const figure = (/** @type {string} */ key, /** @type {number} */ value, /** @type {string} */ label) => h('div', { class: 'kpi' },
    h('span', { class: 'kpi-value', 'data-testid': `my-${key}`, 'data-value': value }, formatNumber(value, 2)),
    h('span', { class: 'kpi-name' }, label));
  const sections = [
    h('section', { class: 'card' }, h('h3', {}, 'Your bill'),
      h('div', { class: 'kpis' }, figure('bill', s.bill, 'your bill'), figure('baseline', s.baseline, 'on the tariff alone'),
        figure('savings', s.savings, 'saved'))),
    h('section', { class: 'card' }, h('h3', {}, 'Your energy'),
      h('div', { class: 'kpis' }, figure('imported_wh', s.imported_wh / 1000, 'kWh bought'), figure('exported_wh', s.exported_wh / 1000, 'kWh sold'))),
  ];
  /** @type {[string, string, string, string[]][]} */
  const chartsWanted = [
    ['my-energy-chart', 'Your meter: net import', 'kW', ['net_kw']],
    ['my-battery-chart', 'Your battery: charge', 'kWh', ['soc_kwh']],
    ['my-ev-chart', 'Your EV: charging', 'kW', ['ev_kw']],
    ['my-comfort-chart', 'Your comfort: indoor temperature', '°C', ['indoor_c']],
  ];
  for (const [testid, title, unit, columns] of chartsWanted) {
    const present = columns.filter((c) => hasValues(data.columns[c]));
    if (present.length === 0) continue;
    const chart = new LineChart({ title, unit, testid });
    sections.push(h('section', { class: 'card' }, chart.element));
    /** @type {import('./charts.js').Series[]} */
    const series = present.map((c) => ({ label: c, values: data.columns[c], colour: '#0b6bcb' }));
    if (testid === 'my-comfort-chart') series.push(...comfortBand(prefs, data.time.length));
    chart.setData(data.time, series);
    charts.push(chart);
  }
  const evDeparture = prefs.ev_departure;
  if (evDeparture) {
    sections.push(h('section', { class: 'card', 'data-testid': 'my-ev' }, h('h3', {}, 'Your EV'),
      h('p', {}, 'Charged by ', h('strong', { 'data-testid': 'my-ev-departure' }, evDeparture),
        ' every day; its charging is part of your meter above.')));
  }
  return sections;
}

/**
 * The comfort band as two flat lines, as it is set now.
 * @param {Preferences} prefs
 * @param {number} steps
 * @returns {import('./charts.js').Series[]}
 */
function comfortBand(prefs, steps) {
  const flat = (/** @type {number | null | undefined} */ v) => new Array(steps).fill(v ?? null);
  if (prefs.comfort_min_c === null || prefs.comfort_min_c === undefined) return [];
  return [{ label: 'lowest', values: flat(prefs.comfort_min_c), colour: '#9aa3ad' },
    { label: 'highest', values: flat(prefs.comfort_max_c), colour: '#d1495b' }];
}

/** @param {(number | null)[] | undefined} values */
function hasValues(values) {
  return Boolean(values?.some((v) => v !== null && Number.isFinite(v) && v !== 0));
}

/**
 * @param {Api} api
 * @param {Promise<Preferences>} preferences
 * @param {HTMLElement} slot
 */
async function loadPreferences(api, preferences, slot) {
  /** @type {Preferences} */
  let stored;
  try {
    stored = await preferences;
  } catch (err) {
    replaceChildren(slot, h('p', { class: 'error' }, `Could not load your preferences: ${err instanceof Error ? err.message : err}`));
    return;
  }
  const status = h('p', { class: 'status-line', 'data-testid': 'preferences-status' });
  /** @type {Map<string, HTMLInputElement | HTMLSelectElement>} */
  const inputs = new Map();
  const fields = PREFERENCE_FIELDS.filter(([key]) => stored[key] !== null && stored[key] !== undefined).map(([key, label, type]) => {
    const value = stored[key];
    const input = h('input', { type: type === 'time' ? 'time' : 'number', step: 'any', value: String(value) });
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
      const message = err instanceof ApiError ? err.specError?.message ?? err.message : String(err);
      for (const key of refusedPreferences(err)) showFieldError(form, key, message);
      status.textContent = `Not saved: ${message}`;
      status.dataset.state = 'error';
    }
  });
  replaceChildren(slot, h('h3', {}, 'Your preferences'), form);
}

/**
 * The preferences a refusal is about: the API names a field of the request (FastAPI's checks) or a field path
 * of the world's spec ("participant[3].assets.hvac": the comfort band; "...assets.ev.departure").
 * @param {unknown} err
 * @returns {string[]}
 */
function refusedPreferences(err) {
  if (!(err instanceof ApiError)) return [];
  if (Array.isArray(err.detail)) return err.detail.map((e) => String(e?.loc?.[1] ?? ''));
  const path = err.specError?.path ?? '';
  const last = path.split('.').pop() ?? '';
  if (path.includes('.assets.hvac')) return last.startsWith('comfort_') ? [last] : ['comfort_min_c', 'comfort_max_c'];
  if (path.includes('.assets.ev')) return ['ev_departure'];
  return [last];
}

/**
 * The data policy as a table: for each kind of data, how finely each audience may see it. Saving sends the
 * changed cells; the API stores them as the policy's next version (refused, with the cell, where it cannot hold).
 * @param {Api} api
 * @param {HTMLElement} slot
 */
async function loadPrivacy(api, slot) {
  /** @type {Privacy} */
  let stored;
  try {
    stored = await api.get('me/privacy');
  } catch (err) {
    replaceChildren(slot, h('p', { class: 'error' }, `Could not load your data policy: ${err instanceof Error ? err.message : err}`));
    return;
  }
  const status = h('p', { class: 'status-line', 'data-testid': 'privacy-status' });
  const version = h('p', { class: 'muted', 'data-testid': 'privacy-version' });
  const showVersion = () => { version.textContent = `Version ${stored.version} · consent ${stored.digest.slice(0, 12)}… (recorded in the next run’s ledger)`; };
  showVersion();
  /** @type {Map<string, HTMLSelectElement>} */
  const cells = new Map();
  const rows = DATA_KINDS.map(([kind, label]) => h('tr', {}, h('th', { scope: 'row' }, label), ...AUDIENCES.map(([audience]) => {
    const select = h('select', { 'data-testid': `privacy-${kind}-${audience}`, 'data-path': `${kind}.${audience}` },
      GRANULARITIES.map(([v, text]) => h('option', { value: v, selected: v === stored.policy[kind][audience] }, text)));
    cells.set(`${kind}.${audience}`, /** @type {HTMLSelectElement} */ (select));
    return h('td', {}, select);
  })));
  const table = h('table', { class: 'privacy-table' },
    h('thead', {}, h('tr', {}, h('th', {}, 'Who sees'), ...AUDIENCES.map(([, label]) => h('th', { scope: 'col' }, label)))),
    h('tbody', {}, ...rows));
  const form = h('form', { class: 'privacy-form', 'data-testid': 'privacy-form' }, table,
    h('button', { type: 'submit', class: 'primary', 'data-testid': 'save-privacy' }, 'Save data policy'), status, version);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    /** @type {Record<string, Record<string, string>>} */
    const changes = {};
    for (const [path, select] of cells) {
      const [kind, audience] = path.split('.');
      select.classList.remove('invalid');
      if (select.value !== stored.policy[kind][audience]) (changes[kind] ??= {})[audience] = select.value;
    }
    if (Object.keys(changes).length === 0) {
      status.textContent = 'Nothing changed.';
      status.dataset.state = 'ok';
      return;
    }
    try {
      stored = await api.put('me/privacy', changes);
      showVersion();
      status.textContent = 'Saved: it applies from the next run.';
      status.dataset.state = 'ok';
    } catch (err) {
      const message = err instanceof ApiError ? err.specError?.message ?? err.message : String(err);
      const path = err instanceof ApiError ? (err.specError?.path ?? '').split('.privacy.').pop() ?? '' : '';
      cells.get(path)?.classList.add('invalid');
      status.textContent = `Not saved: ${message}`;
      status.dataset.state = 'error';
    }
  });
  replaceChildren(slot, h('h3', {}, 'Your data'),
    h('p', { class: 'muted' }, 'Who may see which of your data, and how finely. Your own node always sees everything it acts on; your bills stay with the operator, who bills you.'),
    form);
}

/**
 * Ask your node: a conversation in any of its languages (English, German, Spanish, Georgian, Swahili). Every
 * number in an answer is computed by the node; a change is stored only after you answer yes.
 * @param {Api} api
 * @returns {HTMLElement}
 */
function chatPanel(api) {
  const log = h('div', { class: 'chat-log', 'data-testid': 'chat-log', 'aria-live': 'polite' });
  const input = /** @type {HTMLInputElement} */ (h('input', { type: 'text', maxlength: '500', 'data-testid': 'chat-input',
    placeholder: 'Why did I pay what I paid? · Warum …? · ¿Por qué …? · რატომ …? · Kwa nini …?' }));
  const say = (/** @type {string} */ who, /** @type {string} */ text, /** @type {string} */ lang) => {
    log.append(h('p', { class: `chat-message chat-${who}`, 'data-testid': `chat-${who}`, lang }, text));
    log.scrollTop = log.scrollHeight;
  };
  const form = h('form', { class: 'chat-form' }, input, h('button', { type: 'submit', class: 'primary', 'data-testid': 'chat-send' }, 'Ask'));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const message = input.value.trim();
    if (!message) return;
    input.value = '';
    say('you', message, '');
    try {
      /** @type {{text: string, language: string, tool: string, pending: boolean}} */
      const answer = await api.post('me/chat', { message });
      say('node', answer.text, answer.language);
      form.dataset.pending = String(answer.pending);
    } catch (err) {
      say('error', err instanceof Error ? err.message : String(err), '');
    }
  });
  return h('section', { class: 'card chat', 'data-testid': 'my-chat' }, h('h3', {}, 'Ask your node'), log, form);
}
