// Reading a run's results from the API, page by page where the API pages them.

/** @typedef {import('./api.js').Api} Api */
/** @typedef {{total: number, offset: number, time: string[], columns: Record<string, (number | null)[]>}} TimeseriesPage */
/** @typedef {{step: number, time: string, steps: number, total: number, bus: string[], vm_pu: (number | null)[]}} BusesPage */
/** @typedef {{name: string[], loading_pct: (number | null)[]}} BranchLoadings */
/** @typedef {{step: number, time: string, steps: number, line?: BranchLoadings, trafo?: BranchLoadings}} Branches */
/**
 * One participant's settlement: their bill against what the tariff alone would have cost.
 * @typedef {{participant: string, kind?: string, bus?: string | number, bill: number, baseline: number, savings: number,
 *   imported_wh?: number, exported_wh?: number}} Settlement
 */

const STEPS_PAGE = 5000; // rows of the time series per request
const BUSES_PAGE = 10000; // buses per request (the API answers up to 20,000)

/**
 * Every row of the run's time series.
 * @param {Api} api
 * @param {string} runId
 * @returns {Promise<{time: string[], columns: Record<string, (number | null)[]>}>}
 */
export async function fetchTimeseries(api, runId) {
  /** @type {string[]} */
  const time = [];
  /** @type {Record<string, (number | null)[]>} */
  const columns = {};
  for (let offset = 0; ; offset += STEPS_PAGE) {
    /** @type {TimeseriesPage} */
    const page = await api.get(`runs/${encodeURIComponent(runId)}/timeseries?offset=${offset}&limit=${STEPS_PAGE}`);
    time.push(...page.time);
    for (const [name, values] of Object.entries(page.columns)) (columns[name] ??= []).push(...values);
    if (page.time.length === 0 || time.length >= page.total) break;
  }
  return { time, columns };
}

/**
 * Every bus's voltage at one step.
 * @param {Api} api
 * @param {string} runId
 * @param {number} step
 * @returns {Promise<BusesPage>}
 */
export async function fetchBusVoltages(api, runId, step) {
  /** @type {BusesPage | null} */
  let all = null;
  for (let offset = 0; ; offset += BUSES_PAGE) {
    /** @type {BusesPage} */
    const page = await api.get(`runs/${encodeURIComponent(runId)}/buses?step=${step}&offset=${offset}&limit=${BUSES_PAGE}`);
    if (all === null) all = page;
    else {
      all.bus.push(...page.bus);
      all.vm_pu.push(...page.vm_pu);
    }
    if (page.bus.length === 0 || all.bus.length >= (page.total ?? all.bus.length)) break;
  }
  return /** @type {BusesPage} */ (all);
}

/**
 * Line and transformer loadings at one step.
 * @param {Api} api
 * @param {string} runId
 * @param {number} step
 * @returns {Promise<Branches>}
 */
export function fetchBranches(api, runId, step) {
  return api.get(`runs/${encodeURIComponent(runId)}/branches?step=${step}`);
}

/**
 * @param {Api} api
 * @param {string} runId
 * @returns {Promise<Settlement[]>}
 */
export function fetchSettlements(api, runId) {
  return api.get(`runs/${encodeURIComponent(runId)}/settlements`);
}

/**
 * Values by element id, in the order of a diagram's ids (NaN where the run has none).
 * @param {string[]} ids the diagram's element ids
 * @param {string[]} names the result's element names
 * @param {(number | null)[]} values
 */
export function alignValues(ids, names, values) {
  const byName = new Map(names.map((name, i) => [String(name), values[i]]));
  return Float32Array.from(ids, (id) => byName.get(id) ?? NaN);
}
