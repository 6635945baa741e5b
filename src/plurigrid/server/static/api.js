// The client of Plurigrid's HTTP API (docs/http-api.md): JSON in and out, the token as a Bearer header.

/**
 * A microworld spec as JSON (the structure of a microworld TOML file).
 * @typedef {Record<string, any>} Spec
 */
/** @typedef {{role: 'operator' | 'participant', world: string | null, participant: string | null}} Me */
/** @typedef {{path: string, message: string, line?: string}} SpecError */
/** @typedef {{valid: true, participants: number, buses: number, steps: number} | {valid: false, error: SpecError}} Validation */
/** @typedef {{id: string, name: string, description?: string, created?: number, updated?: number}} WorldSummary */
/** @typedef {{id: string, name: string, spec: Spec, toml: string, created?: number, updated?: number}} World */
/** @typedef {{name: string, description: string}} LibraryEntry */
/**
 * @typedef {Object} Run
 * @property {string} id
 * @property {string | null} [world]
 * @property {string | null} [microworld]
 * @property {'queued' | 'running' | 'done' | 'failed' | 'cancelled'} status
 * @property {number} [steps_done]
 * @property {number} [steps_total]
 * @property {string | null} [error]
 * @property {number} [created] seconds since 1970
 * @property {number | null} [finished]
 */
/**
 * The grid drawn, as columns (GET /api/diagram).
 * @typedef {Object} ApiDiagram
 * @property {string} [name]
 * @property {boolean} geo
 * @property {{id: string[], vn_kv: number[], x: number[], y: number[]}} bus
 * @property {{id: string[], from: number[], to: number[], std_type?: (string | null)[], length_km?: number[]}} [line]
 * @property {{id: string[], hv: number[], lv: number[], sn_mva?: number[]}} [trafo]
 * @property {{id: string[], bus: number[], to: (number | null)[], et?: string[], closed: boolean[]}} [switch] et: 'b' bus-bus, 'l' line
 * @property {{id: string, bus: number, kind: string, assets: string[]}[]} [participant]
 */
/**
 * @typedef {Object} StdTypes
 * @property {Record<string, {r_ohm_per_km: number, x_ohm_per_km: number, c_nf_per_km: number, max_i_ka: number}>} line
 * @property {Record<string, {sn_mva: number, r_pu: number, x_pu: number, vn_hv_kv: number, vn_lv_kv: number}>} transformer
 */

export class ApiError extends Error {
  /**
   * @param {number} status
   * @param {unknown} detail the response's "detail": a line of text, a spec error, or FastAPI's list of errors
   */
  constructor(status, detail) {
    super(describeDetail(detail) || `HTTP ${status}`);
    this.status = status;
    this.detail = detail;
  }

  /** The spec error when the API refused a spec (422 with a field path), else null. @returns {SpecError | null} */
  get specError() {
    const d = /** @type {any} */ (this.detail);
    return d && typeof d === 'object' && typeof d.path === 'string' ? d : null;
  }
}

/** @param {unknown} detail */
function describeDetail(detail) {
  if (typeof detail === 'string') return detail;
  if (Array.isArray(detail)) return detail.map((e) => e?.msg ?? JSON.stringify(e)).join('; ');
  if (detail && typeof detail === 'object') {
    const d = /** @type {any} */ (detail);
    if (typeof d.message === 'string') return d.path ? `${d.path}: ${d.message}` : d.message;
    return JSON.stringify(detail);
  }
  return '';
}

export class Api {
  /** @param {string} token */
  constructor(token) {
    this.token = token;
  }

  /**
   * @param {string} method
   * @param {string} route a path below /api/, e.g. "worlds/3"
   * @param {unknown} [body]
   * @returns {Promise<Response>}
   */
  async send(method, route, body) {
    /** @type {Record<string, string>} */
    const headers = { Authorization: `Bearer ${this.token}` };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const response = await fetch(`api/${route}`, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (!response.ok) {
      let detail = null;
      try {
        detail = (await response.json()).detail;
      } catch {
        detail = response.statusText;
      }
      throw new ApiError(response.status, detail);
    }
    return response;
  }

  /** @param {string} route @returns {Promise<any>} */
  async get(route) {
    return (await this.send('GET', route)).json();
  }

  /** @param {string} route @returns {Promise<string>} */
  async getText(route) {
    return (await this.send('GET', route)).text();
  }

  /** @param {string} route @param {unknown} body @returns {Promise<any>} */
  async post(route, body) {
    return (await this.send('POST', route, body)).json();
  }

  /** @param {string} route @param {unknown} body @returns {Promise<any>} */
  async put(route, body) {
    return (await this.send('PUT', route, body)).json();
  }

  /** @param {string} route */
  async delete(route) {
    await this.send('DELETE', route);
  }

  /** @returns {Promise<Me>} */
  me() {
    return this.get('me');
  }

  /**
   * The URL of a run's progress events; EventSource cannot send headers, so the token rides in the query.
   * @param {string} runId
   */
  runEventsUrl(runId) {
    return `api/runs/${encodeURIComponent(runId)}/events?token=${encodeURIComponent(this.token)}`;
  }
}

/** The microworld JSON Schema (no token needed). @returns {Promise<Record<string, any>>} */
export async function fetchMicroworldSchema() {
  const response = await fetch('api/schema/microworld');
  if (!response.ok) throw new ApiError(response.status, response.statusText);
  return response.json();
}
