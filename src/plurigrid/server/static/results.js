// The results of a run: its progress while it runs (Server-Sent Events), then its KPIs, the grid coloured by
// bus voltage and branch loading at a step chosen on a slider, price and power charts, and each participant's
// bill against the tariff.

import { LineChart } from './charts.js';
import { LOADING_SCALE, VOLTAGE_SCALE, legend } from './colour-scales.js';
import { fromApiDiagram } from './diagram-data.js';
import { DiagramPanel } from './diagram-panel.js';
import { h, formatNumber, replaceChildren } from './dom.js';
import { alignValues, fetchBranches, fetchBusVoltages, fetchSettlements, fetchTimeseries } from './run-data.js';

/** @typedef {import('./api.js').Api} Api */
/** @typedef {import('./api.js').Run} Run */
/** @typedef {import('./run-data.js').Settlement} Settlement */
/** @typedef {import('./diagram-view.js').ElementRef} ElementRef */

const FINISHED = ['done', 'failed', 'cancelled'];
const MAX_BUS_TABLE = 200;

/**
 * @param {HTMLElement} container
 * @param {{api: Api}} services
 * @param {string} runId
 * @returns {{unmount: () => void}}
 */
export function mountResults(container, services, runId) {
  const page = new ResultsPage(container, services.api, runId);
  page.start();
  return { unmount: () => page.destroy() };
}

class ResultsPage {
  /**
   * @param {HTMLElement} container
   * @param {Api} api
   * @param {string} runId
   */
  constructor(container, api, runId) {
    this.api = api;
    this.runId = runId;
    this.progress = h('progress', { max: 1, value: 0, 'data-testid': 'run-progress' });
    this.statusText = h('span', { class: 'run-status', 'data-testid': 'run-status' });
    this.body = h('div', { class: 'results-body' });
    this.root = h('div', { class: 'results', 'data-testid': 'results' },
      h('div', { class: 'run-header' },
        h('h2', { 'data-testid': 'run-title' }, `Run ${runId}`),
        this.progress, this.statusText,
        h('button', { class: 'small', 'data-testid': 'cancel-run', onclick: () => this.cancel() }, 'Cancel')),
      this.body);
    replaceChildren(container, this.root);
    /** @type {EventSource | null} */
    this.events = null;
    /** @type {ReturnType<typeof setInterval> | undefined} */
    this.pollTimer = undefined;
    /** @type {DiagramPanel | null} */
    this.diagram = null;
    /** @type {LineChart[]} */
    this.charts = [];
    this.step = 0;
    this.loadingStep = false;
    /** @type {Float32Array} */ this.busValues = new Float32Array(0);
    /** @type {Float32Array} */ this.lineValues = new Float32Array(0);
    /** @type {Float32Array} */ this.trafoValues = new Float32Array(0);
    /** @type {ElementRef | null} */
    this.selected = null;
    this.resultsLoaded = false;
  }

  destroy() {
    this.events?.close();
    clearInterval(this.pollTimer);
    this.diagram?.destroy();
    for (const chart of this.charts) chart.destroy();
  }

  async start() {
    try {
      const run = await this.api.get(`runs/${encodeURIComponent(this.runId)}`);
      this.show(run);
      if (FINISHED.includes(run.status)) this.finish(run);
      else this.follow();
    } catch (err) {
      this.statusText.textContent = `Could not load the run: ${err instanceof Error ? err.message : err}`;
    }
  }

  /** Follows the run's progress events; polls instead if the event stream fails. */
  follow() {
    const events = new EventSource(this.api.runEventsUrl(this.runId));
    this.events = events;
    events.addEventListener('progress', (event) => {
      const run = JSON.parse(/** @type {MessageEvent} */ (event).data);
      this.show(run);
      if (FINISHED.includes(run.status)) {
        events.close();
        this.finish(run);
      }
    });
    events.onerror = () => {
      events.close();
      if (!this.resultsLoaded) this.poll();
    };
  }

  poll() {
    clearInterval(this.pollTimer);
    this.pollTimer = setInterval(async () => {
      const run = await this.api.get(`runs/${encodeURIComponent(this.runId)}`);
      this.show(run);
      if (FINISHED.includes(run.status)) {
        clearInterval(this.pollTimer);
        this.finish(run);
      }
    }, 1000);
  }

  /** @param {Run} run */
  show(run) {
    const total = run.steps_total ?? 0;
    const done = run.steps_done ?? 0;
    const finished = FINISHED.includes(run.status);
    if (total > 0 || finished) {
      this.progress.value = total > 0 ? done / total : 1;
      this.statusText.textContent = `${run.status} · ${done} / ${total} steps`;
    } else {
      this.progress.removeAttribute('value'); // indeterminate while the world is compiled
      this.statusText.textContent = `${run.status} · preparing the world…`;
    }
    if (!finished && this.body.childElementCount === 0) {
      this.body.append(h('p', { class: 'muted' }, 'The results appear here when the run is done.'));
    }
    this.root.dataset.status = run.status;
  }

  async cancel() {
    try {
      await this.api.delete(`runs/${encodeURIComponent(this.runId)}`);
    } catch (err) {
      this.statusText.textContent = `Could not cancel: ${err instanceof Error ? err.message : err}`;
    }
  }

  /** @param {Run} run */
  async finish(run) {
    if (this.resultsLoaded) return;
    this.resultsLoaded = true;
    this.root.querySelector('[data-testid="cancel-run"]')?.remove();
    if (run.status !== 'done') {
      replaceChildren(this.body, h('p', { class: 'error', 'data-testid': 'run-error' }, run.error ?? `The run was ${run.status}.`));
      return;
    }
    replaceChildren(this.body, h('p', { class: 'muted' }, 'Loading results…'));
    const id = encodeURIComponent(this.runId);
    const diagramQuery = run.world ? `world=${encodeURIComponent(run.world)}` : run.microworld ? `library=${encodeURIComponent(run.microworld)}` : null;
    try {
      const [summary, settlements, series, diagram] = await Promise.all([
        this.api.get(`runs/${id}/summary`),
        fetchSettlements(this.api, this.runId),
        fetchTimeseries(this.api, this.runId),
        diagramQuery ? this.api.get(`diagram?${diagramQuery}`) : Promise.resolve(null),
      ]);
      this.steps = series.time.length;
      this.times = series.time;
      const grid = diagram ? fromApiDiagram(diagram) : null;
      replaceChildren(this.body,
        kpiSection(summary),
        grid ? this.gridSection(grid) : null,
        this.chartSection(series),
        settlementSection(summary.currency ?? 'EUR', settlements, grid ? busesOfParticipants(grid) : new Map(),
          (p) => this.showParticipant(p)),
        h('div', { class: 'participant-detail', 'data-testid': 'participant-detail' }));
      if (grid) await this.setStep(0);
    } catch (err) {
      replaceChildren(this.body, h('p', { class: 'error', 'data-testid': 'run-error' }, `Could not load the results: ${err instanceof Error ? err.message : err}`));
    }
  }

  // ------------------------------------------------------------------ grid at a step

  /** @param {import('./diagram-data.js').DiagramData} data */
  gridSection(data) {
    this.diagram = new DiagramPanel({
      describe: (ref) => this.describe(ref),
      onFind: (bus) => this.selectElement({ kind: 'bus', index: bus }),
    });
    this.diagram.view.setData(data, { fit: true });
    this.diagram.view.onClick = (ref) => this.selectElement(ref);
    this.diagram.setLegends(legend(VOLTAGE_SCALE), legend(LOADING_SCALE, 0));
    const steps = this.steps ?? 1;
    this.slider = h('input', {
      type: 'range', min: 0, max: Math.max(0, steps - 1), step: 1, value: 0, 'data-testid': 'step-slider',
      oninput: () => this.setStep(Number(/** @type {HTMLInputElement} */ (this.slider).value)),
    });
    this.stepLabel = h('span', { class: 'step-label', 'data-testid': 'step-label' });
    this.selectionInfo = h('div', { class: 'selection-info', 'data-testid': 'selected-element' }, 'Click a bus or line to see its value.');
    this.busTable = h('div', { class: 'bus-table-wrap' });
    return h('section', { class: 'grid-section' },
      h('h3', {}, 'Grid'),
      h('div', { class: 'step-controls' }, h('label', {}, 'Step ', this.slider), this.stepLabel),
      h('div', { class: 'grid-with-info' }, h('div', { class: 'results-diagram' }, this.diagram.element),
        h('div', { class: 'grid-side' }, this.selectionInfo, this.busTable)));
  }

  /**
   * Shows the grid at a step; a step asked for while another loads is loaded after it.
   * @param {number} step
   */
  async setStep(step) {
    this.step = step;
    if (this.stepLabel) this.stepLabel.textContent = `${step} · ${this.times?.[step] ?? ''}`;
    for (const chart of this.charts) chart.setCursor(step);
    if (this.loadingStep) return;
    this.loadingStep = true;
    try {
      let loaded = -1;
      while (loaded !== this.step) {
        loaded = this.step;
        const [buses, branches] = await Promise.all([
          fetchBusVoltages(this.api, this.runId, loaded), fetchBranches(this.api, this.runId, loaded)]);
        this.applyStep(buses, branches);
      }
      this.root.dataset.step = String(loaded);
    } finally {
      this.loadingStep = false;
    }
  }

  /**
   * @param {import('./run-data.js').BusesPage} buses
   * @param {import('./run-data.js').Branches} branches
   */
  applyStep(buses, branches) {
    const view = /** @type {DiagramPanel} */ (this.diagram).view;
    const d = view.data;
    this.busValues = alignValues(d.busIds, buses.bus, buses.vm_pu);
    this.lineValues = branches.line ? alignValues(d.lineIds, branches.line.name, branches.line.loading_pct) : new Float32Array(d.lineIds.length).fill(NaN);
    this.trafoValues = branches.trafo ? alignValues(d.trafoIds, branches.trafo.name, branches.trafo.loading_pct) : new Float32Array(d.trafoIds.length).fill(NaN);
    view.setOverlays({
      bus: { values: this.busValues, scale: VOLTAGE_SCALE },
      line: { values: this.lineValues, scale: LOADING_SCALE },
      trafo: { values: this.trafoValues, scale: LOADING_SCALE },
    });
    this.renderBusTable();
    this.renderSelection();
  }

  renderBusTable() {
    const d = /** @type {DiagramPanel} */ (this.diagram).view.data;
    if (!this.busTable || d.busIds.length > MAX_BUS_TABLE) return;
    replaceChildren(this.busTable, h('table', { class: 'data-table', 'data-testid': 'bus-table' },
      h('thead', {}, h('tr', {}, h('th', {}, 'bus'), h('th', {}, 'vn kV'), h('th', {}, 'vm pu'))),
      h('tbody', {}, d.busIds.map((id, i) => h('tr', {},
        h('td', {}, id), h('td', {}, String(d.vnKv[i])),
        h('td', { class: 'num', 'data-testid': `bus-vm-${id}`, 'data-value': this.busValues[i] }, formatNumber(this.busValues[i], 4)))))));
  }

  /** @param {ElementRef | null} ref */
  selectElement(ref) {
    this.selected = ref;
    this.diagram?.view.setSelected(ref);
    this.renderSelection();
  }

  renderSelection() {
    if (!this.selectionInfo || !this.selected) return;
    this.selectionInfo.textContent = this.describe(this.selected);
    this.selectionInfo.dataset.value = String(this.valueOf(this.selected));
  }

  /** @param {ElementRef} ref */
  valueOf(ref) {
    if (ref.kind === 'bus') return this.busValues[ref.index];
    if (ref.kind === 'line') return this.lineValues[ref.index];
    if (ref.kind === 'trafo') return this.trafoValues[ref.index];
    return NaN;
  }

  /** @param {ElementRef} ref @returns {string} */
  describe(ref) {
    const d = /** @type {DiagramPanel} */ (this.diagram).view.data;
    const value = this.valueOf(ref);
    switch (ref.kind) {
      case 'bus': return `bus ${d.busIds[ref.index]} · ${formatNumber(value, 4)} pu`;
      case 'line': return `line ${d.lineIds[ref.index]} · ${formatNumber(value, 1)} %`;
      case 'trafo': return `transformer ${d.trafoIds[ref.index]} · ${formatNumber(value, 1)} %`;
      case 'switch': return `switch ${d.switchIds[ref.index]} · ${d.switchClosed[ref.index] ? 'closed' : 'open'}`;
      default: return `participant ${d.participants[ref.index].id}`;
    }
  }

  // ------------------------------------------------------------------ charts

  /** @param {{time: string[], columns: Record<string, (number | null)[]>}} series */
  chartSection(series) {
    const price = new LineChart({ title: 'Prices', unit: 'per kWh', testid: 'price-chart' });
    price.setData(series.time, presentSeries(series.columns, [
      ['price_eur_per_kwh', 'market price', '#0b6bcb'], ['import_eur_per_kwh', 'import tariff', '#d1495b'], ['export_eur_per_kwh', 'export tariff', '#3b8d5a']]));
    const power = new LineChart({ title: 'Power', unit: 'kW', testid: 'power-chart' });
    power.setData(series.time, presentSeries(series.columns, [
      ['demand_kw', 'demand', '#27313b'], ['renewable_kw', 'renewables', '#e2a400'], ['upstream_kw', 'upstream', '#0b6bcb'],
      ['battery_kw', 'batteries', '#7b4fc9'], ['thermal_kw', 'thermal', '#c46a12']]));
    this.charts = [price, power];
    return h('section', { class: 'charts' }, price.element, power.element);
  }

  /** @param {string} participant */
  async showParticipant(participant) {
    const slot = /** @type {HTMLElement} */ (this.body.querySelector('[data-testid="participant-detail"]'));
    try {
      const data = await this.api.get(`runs/${encodeURIComponent(this.runId)}/participants/${encodeURIComponent(participant)}`);
      const chart = new LineChart({ title: `${participant}: meter and storage`, unit: 'kW, kWh', testid: 'participant-chart' });
      replaceChildren(slot, chart.element);
      chart.setData(data.time, presentSeries(data.columns, [['net_kw', 'net import kW', '#0b6bcb'], ['soc_kwh', 'battery kWh', '#7b4fc9'], ['served_kw', 'served kW', '#27313b']]));
      this.charts.push(chart);
    } catch (err) {
      replaceChildren(slot, h('p', { class: 'muted' }, `${participant}: ${err instanceof Error ? err.message : err}`));
    }
  }
}

/**
 * The series of a chart that the run has.
 * @param {Record<string, (number | null)[]>} columns
 * @param {[string, string, string][]} wanted column, label, colour
 */
function presentSeries(columns, wanted) {
  return wanted.filter(([column]) => columns[column]).map(([column, label, colour]) => ({ label, values: columns[column], colour }));
}

/** @param {Record<string, any>} summary */
function kpiSection(summary) {
  /** @type {Record<string, number>} */
  const kpis = summary.kpis ?? {};
  return h('section', { class: 'kpis', 'data-testid': 'kpis' },
    Object.entries(kpis).map(([name, value]) => h('div', { class: 'kpi', 'data-testid': `kpi-${name}` },
      h('span', { class: 'kpi-value', 'data-value': value }, typeof value === 'number' ? formatNumber(value, kpiDecimals(value)) : String(value)),
      h('span', { class: 'kpi-name' }, name.replaceAll('_', ' ')))));
}

/** Whole numbers as they are, large ones to one decimal, small ones to three. @param {number} value */
function kpiDecimals(value) {
  if (Number.isInteger(value)) return 0;
  return Math.abs(value) >= 100 ? 1 : 3;
}

/**
 * The bus of each participant, by id, as the diagram places them.
 * @param {import('./diagram-data.js').DiagramData} data
 * @returns {Map<string, string>}
 */
function busesOfParticipants(data) {
  return new Map(data.participants.filter((p) => p.bus >= 0).map((p) => [p.id, data.busIds[p.bus]]));
}

/**
 * @param {string} currency
 * @param {Settlement[]} settlements
 * @param {Map<string, string>} busOf the bus id of each participant
 * @param {(participant: string) => void} onPick
 */
function settlementSection(currency, settlements, busOf, onPick) {
  const kwh = (/** @type {number | undefined} */ wh) => formatNumber(wh === undefined ? NaN : wh / 1000, 3);
  return h('section', { class: 'settlements' },
    h('h3', {}, `Bills against the tariff (${currency})`),
    h('table', { class: 'data-table', 'data-testid': 'settlements' },
      h('thead', {}, h('tr', {}, ['participant', 'kind', 'bus', 'imported kWh', 'exported kWh', 'bill', 'tariff only', 'savings'].map((t) => h('th', {}, t)))),
      h('tbody', {}, settlements.map((s) => h('tr', { 'data-testid': `settlement-row-${s.participant}`, class: 'clickable', onclick: () => onPick(s.participant) },
        h('td', {}, s.participant), h('td', {}, s.kind ?? ''), h('td', {}, busOf.get(s.participant) ?? String(s.bus ?? '')),
        h('td', { class: 'num' }, kwh(s.imported_wh)), h('td', { class: 'num' }, kwh(s.exported_wh)),
        h('td', { class: 'num', 'data-testid': `bill-${s.participant}`, 'data-value': s.bill }, formatNumber(s.bill, 2)),
        h('td', { class: 'num', 'data-testid': `baseline-${s.participant}`, 'data-value': s.baseline }, formatNumber(s.baseline, 2)),
        h('td', { class: `num ${s.savings >= 0 ? 'good' : 'bad'}`, 'data-testid': `savings-${s.participant}`, 'data-value': s.savings }, formatNumber(s.savings, 2)))))));
}
