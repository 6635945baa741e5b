// Where worlds are opened: the saved worlds, the library's microworlds and the SimBench grids; import a TOML
// file as a new world.

import { ApiError } from './api.js';
import { formatTime, h, replaceChildren } from './dom.js';

/** @typedef {import('./api.js').Api} Api */
/** @typedef {import('./api.js').WorldSummary} WorldSummary */
/** @typedef {import('./api.js').LibraryEntry} LibraryEntry */

/**
 * @param {HTMLElement} container
 * @param {{api: Api}} services
 * @returns {{unmount: () => void}}
 */
export function mountWorlds(container, services) {
  const api = services.api;
  const status = h('p', { class: 'status-line', 'data-testid': 'worlds-status' });
  const saved = h('div', { 'data-testid': 'saved-worlds' }, 'Loading…');
  const library = h('div', { 'data-testid': 'library-worlds' }, 'Loading…');
  const simbench = h('div', { 'data-testid': 'simbench-grids' }, 'Loading…');
  const importInput = h('input', {
    type: 'file', accept: '.toml,.json', 'data-testid': 'import-toml',
    onchange: async () => {
      const file = importInput.files?.[0];
      if (!file) return;
      try {
        const text = await file.text();
        const world = await api.post('worlds', file.name.endsWith('.json') ? { spec: JSON.parse(text) } : { toml: text });
        location.hash = `#/designer?world=${encodeURIComponent(world.id)}`;
      } catch (err) {
        const line = err instanceof ApiError ? err.specError?.line : null;
        status.textContent = `${file.name} was not imported: ${line || (err instanceof Error ? err.message : err)}`;
        status.dataset.state = 'error';
      }
    },
  });
  replaceChildren(container, h('div', { class: 'worlds-page', 'data-testid': 'worlds-page' },
    h('section', {},
      h('div', { class: 'section-head' }, h('h2', {}, 'Saved worlds'),
        h('a', { class: 'button primary', href: '#/designer?new', 'data-testid': 'design-new' }, 'New world'),
        h('label', { class: 'button file-button' }, 'Import TOML…', importInput)),
      status, saved),
    h('section', {}, h('h2', {}, 'Library'), library),
    h('section', {}, h('h2', {}, 'SimBench grids'), simbench)));

  /** Starts a run and shows its progress. @param {{world: string} | {library: string}} what */
  const run = async (what) => {
    try {
      const started = await api.post('runs', what);
      location.hash = `#/runs/${encodeURIComponent(started.id)}`;
    } catch (err) {
      status.textContent = `Could not start the run: ${err instanceof Error ? err.message : err}`;
      status.dataset.state = 'error';
    }
  };

  /** @param {WorldSummary} world */
  const savedRow = (world) => h('li', { 'data-testid': `world-${world.id}` },
    h('a', { href: `#/designer?world=${encodeURIComponent(world.id)}` }, world.name),
    h('span', { class: 'muted' }, ` ${world.description ?? ''} · ${formatTime(world.updated)}`),
    h('button', { class: 'small', onclick: () => run({ world: world.id }) }, 'Run'),
    h('button', {
      class: 'small danger', onclick: async () => {
        if (!confirm(`Delete world ${world.name}?`)) return;
        await api.delete(`worlds/${encodeURIComponent(world.id)}`);
        refreshSaved();
      },
    }, 'Delete'));

  const refreshSaved = async () => {
    /** @type {WorldSummary[]} */
    const worlds = await api.get('worlds');
    replaceChildren(saved, worlds.length ? h('ul', { class: 'entries' }, worlds.map(savedRow)) : h('p', { class: 'muted' }, 'No saved worlds yet.'));
  };

  /** @param {unknown} err */
  const failed = (err) => h('p', { class: 'error' }, err instanceof Error ? err.message : String(err));
  refreshSaved().catch((err) => replaceChildren(saved, failed(err)));
  api.get('library').then((/** @type {LibraryEntry[]} */ entries) => replaceChildren(library, h('ul', { class: 'entries' },
    entries.map((entry) => h('li', { 'data-testid': `library-${entry.name}` },
      h('a', { href: `#/designer?library=${encodeURIComponent(entry.name)}` }, entry.name),
      h('span', { class: 'muted' }, ` ${entry.description}`),
      h('button', { class: 'small', onclick: () => run({ library: entry.name }) }, 'Run'))))))
    .catch((err) => replaceChildren(library, failed(err)));
  api.get('grids/simbench').then((/** @type {unknown[]} */ codes) => replaceChildren(simbench, h('ul', { class: 'entries columns' },
    codes.map((entry) => {
      const code = typeof entry === 'string' ? entry : String(/** @type {any} */ (entry).code ?? entry);
      return h('li', { 'data-testid': `simbench-${code}` }, h('a', { href: `#/designer?simbench=${encodeURIComponent(code)}` }, code));
    }))))
    .catch((err) => replaceChildren(simbench, failed(err)));
  return { unmount: () => {} };
}
