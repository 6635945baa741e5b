// The grid designer: draw an inline grid on the canvas (buses, lines, transformers, switches), attach
// participants with their assets, set the world and the market; every change is checked by the API
// (POST /api/validate) and its error shown on the field it names. Saves, runs, imports and exports worlds.

import { ApiError } from './api.js';
import { fromApiDiagram, fromSpec, layoutOf, emptyDiagram } from './diagram-data.js';
import { DiagramPanel } from './diagram-panel.js';
import { dropDraft, keepDraft, keptDraft } from './draft.js';
import { h, replaceChildren } from './dom.js';
import { elementPanel, marketPanel, worldPanel } from './inspector.js';
import { clearFieldErrors, showFieldError } from './schema-form.js';
import {
  addBus, addLine, addParticipant, addSwitch, addTransformer, blankWorldSpec, elementList, elementOfPath,
  moveBus, removeElement, renameBus, renameLine, simbenchWorldSpec,
} from './spec-edit.js';
import { getAtPath, setAtPath } from './spec-path.js';
import { showTomlDialog } from './toml-dialog.js';

/** @typedef {import('./api.js').Api} Api */
/** @typedef {import('./api.js').Spec} Spec */
/** @typedef {import('./api.js').SpecError} SpecError */
/** @typedef {import('./api.js').Validation} Validation */
/** @typedef {import('./api.js').StdTypes} StdTypes */
/** @typedef {import('./schema-form.js').SchemaForms} SchemaForms */
/** @typedef {import('./diagram-view.js').ElementRef} ElementRef */
/** @typedef {'select' | 'bus' | 'line' | 'trafo' | 'switch'} Tool */
/** @typedef {'element' | 'world' | 'market'} Tab */
/**
 * What to open: a saved world, a library world, a SimBench grid, a new world, or else what was being designed.
 * @typedef {{world?: string, library?: string, simbench?: string, fresh?: boolean}} DesignerParams
 */
/** @typedef {{api: Api, forms: SchemaForms, stdTypes: StdTypes}} DesignerServices */

const VALIDATE_DELAY_MS = 350;
const TOOLS = /** @type {const} */ ([['select', 'Select'], ['bus', 'Bus'], ['line', 'Line'], ['trafo', 'Transformer'], ['switch', 'Switch']]);

/**
 * @param {HTMLElement} container
 * @param {DesignerServices} services
 * @param {DesignerParams} params
 * @returns {{unmount: () => void}}
 */
export function mountDesigner(container, services, params) {
  const designer = new Designer(container, services);
  designer.open(params);
  return { unmount: () => designer.destroy() };
}

class Designer {
  /**
   * @param {HTMLElement} container
   * @param {DesignerServices} services
   */
  constructor(container, services) {
    this.api = services.api;
    this.forms = services.forms;
    this.stdTypes = services.stdTypes;
    /** @type {Spec} */
    this.spec = blankWorldSpec();
    /** @type {string | null} the saved world being edited */
    this.worldId = null;
    /** @type {string | null} the library world opened, while unchanged (its TOML is the library's) */
    this.libraryName = null;
    this.readOnlyGrid = false;
    this.dirty = false;
    /** @type {Map<string, [number, number]>} positions of buses without diagram_xy (the API's layout) */
    this.layout = new Map();
    /** @type {import('./diagram-data.js').DiagramData} the API's diagram of a referenced grid */
    this.referencedDiagram = emptyDiagram();
    /** @type {ElementRef | null} */
    this.selection = null;
    /** @type {Tab} */
    this.tab = 'element';
    /** @type {Tool} */
    this.tool = 'select';
    this.pendingBus = -1;
    /** @type {SpecError | null} */
    this.error = null;
    this.validating = false;
    this.validateAgain = false;
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    this.validateTimer = undefined;

    this.diagram = new DiagramPanel({
      describe: (ref) => this.describe(ref),
      onFind: (bus) => this.select({ kind: 'bus', index: bus }),
    });
    this.diagram.view.onClick = (ref, world) => this.canvasClick(ref, world);
    this.diagram.view.onDragBus = (bus, world) => {
      moveBus(this.spec, bus, world);
      this.changed();
    };
    this.title = h('span', { class: 'world-title', 'data-testid': 'world-title' });
    this.status = h('div', { class: 'statusbar', 'data-testid': 'validation-status', role: 'status' });
    this.panelBody = h('div', { class: 'panel-body', 'data-testid': 'side-panel' });
    this.tabButtons = h('div', { class: 'tabs' },
      /** @type {[Tab, string][]} */ ([['element', 'Element'], ['world', 'World'], ['market', 'Market']]).map(([tab, label]) =>
        h('button', { class: 'tab', 'data-tab': tab, 'data-testid': `tab-${tab}`, onclick: () => this.showTab(tab) }, label)));
    this.options = this.createToolOptions();
    this.toolButtons = h('div', { class: 'tool-group', role: 'toolbar' },
      TOOLS.map(([tool, label]) => h('button', { class: 'tool', 'data-tool': tool, 'data-testid': `tool-${tool}`, onclick: () => this.setTool(tool) }, label)));
    this.importInput = h('input', { type: 'file', accept: '.toml,.json', hidden: true, 'data-testid': 'import-toml', onchange: () => this.importFile() });
    this.toolbar = this.buildToolbar();
    this.onKey = (/** @type {KeyboardEvent} */ event) => this.key(event);
    document.addEventListener('keydown', this.onKey);
    replaceChildren(container, h('div', { class: 'designer', 'data-testid': 'designer' },
      this.toolbar,
      h('div', { class: 'designer-body' },
        h('div', { class: 'diagram-area' }, this.diagram.element),
        h('aside', { class: 'side-panel' }, this.tabButtons, this.panelBody)),
      this.status));
  }

  destroy() {
    clearTimeout(this.validateTimer);
    document.removeEventListener('keydown', this.onKey);
    this.diagram.destroy();
  }

  // ------------------------------------------------------------------ toolbar

  /** The inputs of the toolbar: what new buses, lines and transformers are made of. */
  createToolOptions() {
    const lineTypes = Object.keys(this.stdTypes.line ?? {});
    const trafoTypes = Object.keys(this.stdTypes.transformer ?? {});
    return {
      busKv: h('input', { type: 'number', step: 'any', value: '0.4', class: 'narrow', 'data-testid': 'new-bus-kv', title: 'vn_kv of new buses' }),
      lineType: h('select', { 'data-testid': 'new-line-std-type', title: 'standard type of new lines' },
        lineTypes.map((name) => h('option', { value: name, selected: name === 'NAYY 4x150 SE' }, name))),
      lineLength: h('input', { type: 'number', step: 'any', value: '0.1', class: 'narrow', 'data-testid': 'new-line-length', title: 'length_km of new lines' }),
      trafoType: h('select', { 'data-testid': 'new-trafo-std-type', title: 'standard type of new transformers' },
        trafoTypes.map((name) => h('option', { value: name, selected: name === '0.4 MVA 20/0.4 kV' }, name))),
    };
  }

  buildToolbar() {
    const options = this.options;
    return h('div', { class: 'toolbar' },
      h('div', { class: 'tool-group' },
        h('button', { 'data-testid': 'new-world', onclick: () => { location.hash = `#/designer?new=${Date.now()}`; } }, 'New'),
        h('a', { class: 'button', href: '#/worlds', 'data-testid': 'open-world' }, 'Open…'),
        h('button', { 'data-testid': 'import-button', onclick: () => this.importInput.click() }, 'Import TOML'),
        this.importInput,
        h('button', { 'data-testid': 'export-toml', onclick: () => this.exportToml() }, 'Export TOML'),
        h('button', { 'data-testid': 'save-world', onclick: () => this.save() }, 'Save'),
        h('button', { class: 'primary', 'data-testid': 'run-world', onclick: () => this.run() }, 'Run ▶')),
      this.toolButtons,
      h('div', { class: 'tool-group tool-options' },
        h('label', {}, 'bus kV ', options.busKv),
        h('label', {}, 'line ', options.lineType),
        h('label', {}, 'km ', options.lineLength),
        h('label', {}, 'transformer ', options.trafoType)),
      this.title);
  }

  /** @param {Tool} tool */
  setTool(tool) {
    this.tool = this.readOnlyGrid ? 'select' : tool;
    this.setPending(-1);
    for (const button of this.toolButtons.querySelectorAll('button')) {
      button.classList.toggle('active', button.dataset.tool === this.tool);
      button.disabled = this.readOnlyGrid && button.dataset.tool !== 'select';
    }
    this.diagram.view.canDragBuses = !this.readOnlyGrid && this.tool === 'select';
    this.diagram.canvas.dataset.tool = this.tool;
  }

  /** @param {number} bus */
  setPending(bus) {
    this.pendingBus = bus;
    this.diagram.view.setPendingBus(bus);
  }

  // ------------------------------------------------------------------ opening

  /** @param {DesignerParams} params */
  async open(params) {
    this.setStatus('Loading…', 'busy');
    try {
      if (params.world) {
        const world = await this.api.get(`worlds/${encodeURIComponent(params.world)}`);
        this.spec = world.spec;
        this.worldId = world.id;
        await this.loadLayout(`world=${encodeURIComponent(world.id)}`);
      } else if (params.library) {
        const entry = await this.api.get(`library/${encodeURIComponent(params.library)}`);
        this.spec = entry.spec;
        this.libraryName = entry.name;
        await this.loadLayout(`library=${encodeURIComponent(entry.name)}`);
      } else if (params.simbench) {
        this.spec = simbenchWorldSpec(params.simbench);
        await this.loadLayout(`simbench=${encodeURIComponent(params.simbench)}`);
      } else if (params.fresh) {
        dropDraft();
      } else {
        await this.restoreDraft();
      }
    } catch (err) {
      this.setStatus(`Could not open: ${describeError(err)}`, 'error');
      return;
    }
    this.readOnlyGrid = Boolean(this.spec.grid?.source);
    this.keep();
    this.setTool('select');
    this.refreshDiagram(true);
    this.showTab(this.readOnlyGrid || this.worldId || this.libraryName ? 'world' : 'element');
    this.updateTitle();
    if (params.simbench) {
      this.setStatus(`SimBench grid ${params.simbench}: ${this.referencedDiagram.busIds.length} buses. Save it as a world to run it.`, 'ok');
    } else {
      this.validateNow();
    }
  }

  /** Takes up the world that was being designed in this tab, if any. */
  async restoreDraft() {
    const draft = keptDraft();
    if (!draft) return;
    this.spec = draft.spec;
    this.worldId = draft.worldId;
    this.libraryName = draft.libraryName;
    this.dirty = draft.dirty;
    this.layout = new Map(draft.layout);
    const source = this.spec.grid?.source;
    if (typeof source === 'string' && source.startsWith('simbench:')) {
      await this.loadLayout(`simbench=${encodeURIComponent(source.slice('simbench:'.length))}`);
    } else if (source && this.worldId) {
      await this.loadLayout(`world=${encodeURIComponent(this.worldId)}`);
    } else if (source && this.libraryName) {
      await this.loadLayout(`library=${encodeURIComponent(this.libraryName)}`);
    }
  }

  /**
   * The API's drawing of a grid: the whole diagram of a referenced grid, or the positions of inline buses
   * that have no diagram_xy (without it, they are drawn on a circle).
   * @param {string} query
   */
  async loadLayout(query) {
    const inline = !this.spec.grid?.source;
    if (inline && (this.spec.grid?.bus ?? []).every((/** @type {Record<string, any>} */ b) => b.diagram_xy)) return;
    if (!inline) {
      this.referencedDiagram = fromApiDiagram(await this.api.get(`diagram?${query}`));
      return;
    }
    try {
      this.layout = layoutOf(fromApiDiagram(await this.api.get(`diagram?${query}`)));
    } catch {
      this.layout = new Map();
    }
  }

  keep() {
    keepDraft({ spec: this.spec, worldId: this.worldId, libraryName: this.libraryName, dirty: this.dirty, layout: [...this.layout] });
  }

  updateTitle() {
    const name = this.spec.world?.name ?? '';
    const where = this.worldId ? `world ${this.worldId}` : this.libraryName ? `library: ${this.libraryName}` : 'not saved';
    this.title.textContent = `${name} · ${where}${this.dirty ? ' · changed' : ''}`;
  }

  // ------------------------------------------------------------------ canvas

  /** @param {boolean} [fit] */
  refreshDiagram(fit = false) {
    const data = this.readOnlyGrid ? this.referencedDiagram : fromSpec(this.spec, this.layout);
    this.diagram.view.setData(data, { fit });
    this.diagram.view.setSelected(this.selection);
  }

  /**
   * @param {ElementRef | null} ref
   * @param {[number, number]} world
   */
  canvasClick(ref, world) {
    if (this.readOnlyGrid || this.tool === 'select') {
      this.select(ref);
      return;
    }
    if (this.tool === 'bus') {
      if (ref?.kind === 'bus') {
        this.select(ref);
        return;
      }
      const index = addBus(this.spec, world, Number(this.options.busKv.value) || 0.4);
      this.changed();
      this.select({ kind: 'bus', index });
      return;
    }
    if (ref?.kind === 'line' && this.tool === 'switch' && this.pendingBus >= 0) {
      const index = addSwitch(this.spec, this.busId(this.pendingBus), { line: elementList(this.spec, 'line')[ref.index].id });
      this.afterAdd({ kind: 'switch', index });
      return;
    }
    if (ref?.kind !== 'bus' || ref.index === this.pendingBus) {
      this.setPending(-1);
      return;
    }
    if (this.pendingBus < 0) {
      this.setPending(ref.index);
      return;
    }
    const from = this.busId(this.pendingBus);
    const to = this.busId(ref.index);
    if (this.tool === 'line') {
      this.afterAdd({ kind: 'line', index: addLine(this.spec, from, to, this.options.lineType.value, Number(this.options.lineLength.value) || 0.1) });
    } else if (this.tool === 'trafo') {
      const rating = this.stdTypes.transformer[this.options.trafoType.value];
      this.afterAdd({ kind: 'trafo', index: addTransformer(this.spec, from, to, rating) });
    } else {
      this.afterAdd({ kind: 'switch', index: addSwitch(this.spec, from, { toBus: to }) });
    }
  }

  /** @param {ElementRef} ref */
  afterAdd(ref) {
    this.setPending(-1);
    this.changed();
    this.select(ref);
  }

  /** @param {number} index */
  busId(index) {
    return String(elementList(this.spec, 'bus')[index].id);
  }

  /** @param {ElementRef} ref @returns {string} */
  describe(ref) {
    const d = this.diagram.view.data;
    switch (ref.kind) {
      case 'bus': return `${d.busIds[ref.index]} · ${d.vnKv[ref.index]} kV`;
      case 'participant': {
        const p = d.participants[ref.index];
        return `${p.id} · ${p.kind}${p.assets.length ? ` · ${p.assets.join(', ')}` : ''}`;
      }
      case 'line': {
        if (this.readOnlyGrid) return `line ${d.lineIds[ref.index]}`;
        const line = elementList(this.spec, 'line')[ref.index];
        return `line ${line.id} · ${line.std_type ?? 'impedances'} · ${line.length_km ?? 1} km`;
      }
      case 'trafo': return `transformer ${d.trafoIds[ref.index]}`;
      default: return `switch ${d.switchIds[ref.index]} · ${d.switchClosed[ref.index] ? 'closed' : 'open'}`;
    }
  }

  // ------------------------------------------------------------------ selection and panel

  /** @param {ElementRef | null} ref */
  select(ref) {
    this.selection = ref;
    this.diagram.view.setSelected(ref);
    this.showTab('element');
  }

  /** @param {Tab} tab */
  showTab(tab) {
    this.tab = tab;
    for (const button of this.tabButtons.querySelectorAll('button')) button.classList.toggle('active', button.dataset.tab === tab);
    this.renderPanel();
  }

  renderPanel() {
    /** @type {import('./inspector.js').InspectorContext} */
    const ctx = {
      spec: this.spec,
      forms: this.forms,
      stdTypes: this.stdTypes,
      diagram: this.diagram.view.data,
      readOnlyGrid: this.readOnlyGrid,
      edit: (path, value) => this.edit(path, value),
      restructure: () => {
        this.refreshDiagram();
        this.renderPanel();
      },
      select: (ref) => this.select(ref),
      remove: (ref) => this.remove(ref),
      addParticipant: (bus) => {
        const index = addParticipant(this.spec, bus);
        this.changed();
        this.select({ kind: 'participant', index });
      },
    };
    const body = this.tab === 'world' ? worldPanel(ctx) : this.tab === 'market' ? marketPanel(ctx) : elementPanel(ctx, this.selection);
    replaceChildren(this.panelBody, body);
    this.showError();
  }

  /** @param {ElementRef} ref */
  remove(ref) {
    if (this.readOnlyGrid) return;
    removeElement(this.spec, ref.kind, ref.index);
    this.selection = null;
    this.changed();
    this.select(null);
  }

  /** @param {KeyboardEvent} event */
  key(event) {
    const typing = event.target instanceof HTMLInputElement || event.target instanceof HTMLSelectElement || event.target instanceof HTMLTextAreaElement;
    if (typing) return;
    if (event.key === 'Escape') {
      this.setPending(-1);
      this.select(null);
    } else if ((event.key === 'Delete' || event.key === 'Backspace') && this.selection) {
      this.remove(this.selection);
    }
  }

  // ------------------------------------------------------------------ editing and validation

  /**
   * A field changed: ids are renamed everywhere they are referenced (and in the panel's title).
   * @param {string} path
   * @param {unknown} value
   */
  edit(path, value) {
    const previous = getAtPath(this.spec, path);
    if (/^grid\.bus\[\d+\]\.id$/.test(path) && typeof value === 'string') renameBus(this.spec, String(previous), value);
    if (/^grid\.line\[\d+\]\.id$/.test(path) && typeof value === 'string') renameLine(this.spec, String(previous), value);
    setAtPath(this.spec, path, value);
    this.changed();
    if (path.endsWith('.id')) this.renderPanel();
  }

  /** The spec changed: redraw, mark unsaved, check it again soon. */
  changed() {
    this.dirty = true;
    this.libraryName = null;
    this.keep();
    if (!this.readOnlyGrid) this.refreshDiagram();
    this.updateTitle();
    clearTimeout(this.validateTimer);
    this.validateTimer = setTimeout(() => this.validateNow(), VALIDATE_DELAY_MS);
  }

  /**
   * Checks the spec as it is now. One check at a time: changes made while one runs are checked once it
   * is back (compiling a referenced grid of thousands of buses takes the server seconds).
   */
  async validateNow() {
    if (this.validating) {
      this.validateAgain = true;
      return;
    }
    this.validating = true;
    this.validateAgain = false;
    this.status.dataset.state = 'busy';
    try {
      /** @type {Validation} */
      const result = await this.api.post('validate', { spec: this.spec });
      if (!this.validateAgain) this.setValidation(result);
    } catch (err) {
      if (!this.validateAgain) this.setStatus(`Could not check the world: ${describeError(err)}`, 'error');
    } finally {
      this.validating = false;
    }
    if (this.validateAgain) this.validateNow();
  }

  /** @param {Validation} result */
  setValidation(result) {
    if (result.valid) {
      this.error = null;
      this.setStatus(`Valid · ${result.participants} participants · ${result.buses} buses · ${result.steps} steps`, 'ok');
    } else {
      this.error = result.error;
      const reveal = h('button', { class: 'link', 'data-testid': 'reveal-error', onclick: () => this.reveal(result.error.path) }, 'show');
      this.setStatus(result.error.line || `${result.error.path}: ${result.error.message}`, 'error', reveal);
    }
    this.showError();
  }

  /** Puts the error on its field in the panel, and a red ring on its element in the diagram. */
  showError() {
    clearFieldErrors(this.panelBody);
    const error = this.error;
    this.diagram.view.setMarked(error ? elementOfPath(error.path) : null);
    if (error) showFieldError(this.panelBody, error.path, error.message);
  }

  /** Opens the element or section a field path is about. @param {string} path */
  reveal(path) {
    const ref = elementOfPath(path);
    if (ref) this.select(ref);
    else this.showTab(path.startsWith('market') ? 'market' : 'world');
  }

  /**
   * @param {string} text
   * @param {'ok' | 'error' | 'busy'} state
   * @param {HTMLElement} [action]
   */
  setStatus(text, state, action) {
    this.status.dataset.state = state;
    replaceChildren(this.status, h('span', { 'data-testid': 'status-text' }, text), action ?? null);
  }

  // ------------------------------------------------------------------ saving, running, TOML

  /** @returns {Promise<boolean>} whether it was saved */
  async save() {
    this.setStatus('Saving…', 'busy');
    try {
      const world = this.worldId
        ? await this.api.put(`worlds/${encodeURIComponent(this.worldId)}`, { spec: this.spec })
        : await this.api.post('worlds', { spec: this.spec });
      this.worldId = world.id;
      this.dirty = false;
      this.libraryName = null;
      this.keep();
      history.replaceState(null, '', `#/designer?world=${encodeURIComponent(world.id)}`);
      this.updateTitle();
      this.setStatus(`Saved as world ${world.id}`, 'ok');
      return true;
    } catch (err) {
      const specError = err instanceof ApiError ? err.specError : null;
      if (specError) {
        this.setValidation({ valid: false, error: specError });
        this.reveal(specError.path);
      } else {
        this.setStatus(`Not saved: ${describeError(err)}`, 'error');
      }
      return false;
    }
  }

  async run() {
    if ((this.dirty || !this.worldId) && !(await this.save())) return;
    try {
      const run = await this.api.post('runs', { world: this.worldId });
      location.hash = `#/runs/${encodeURIComponent(run.id)}`;
    } catch (err) {
      this.setStatus(`Could not start the run: ${describeError(err)}`, 'error');
    }
  }

  async exportToml() {
    try {
      let toml;
      if (this.libraryName && !this.dirty) {
        toml = (await this.api.get(`library/${encodeURIComponent(this.libraryName)}`)).toml;
      } else {
        if ((this.dirty || !this.worldId) && !(await this.save())) return;
        toml = await this.api.getText(`worlds/${encodeURIComponent(String(this.worldId))}/toml`);
      }
      showTomlDialog(`${this.spec.world?.name ?? 'world'}.toml`, toml);
    } catch (err) {
      this.setStatus(`Could not export: ${describeError(err)}`, 'error');
    }
  }

  async importFile() {
    const file = this.importInput.files?.[0];
    if (!file) return;
    const text = await file.text();
    this.importInput.value = '';
    try {
      const body = file.name.endsWith('.json') ? { spec: JSON.parse(text) } : { toml: text };
      const world = await this.api.post('worlds', body);
      location.hash = `#/designer?world=${encodeURIComponent(world.id)}`;
    } catch (err) {
      const specError = err instanceof ApiError ? err.specError : null;
      this.setStatus(`${file.name} was not imported: ${specError?.line || describeError(err)}`, 'error');
    }
  }
}

/** @param {unknown} err */
function describeError(err) {
  return err instanceof Error ? err.message : String(err);
}
