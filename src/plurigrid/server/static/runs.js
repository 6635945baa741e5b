// The list of runs, newest first, each linked to its results.

import { formatTime, h, replaceChildren } from './dom.js';

/** @typedef {import('./api.js').Api} Api */
/** @typedef {import('./api.js').Run} Run */

/**
 * @param {HTMLElement} container
 * @param {{api: Api}} services
 * @returns {{unmount: () => void}}
 */
export function mountRuns(container, services) {
  const list = h('div', {}, 'Loading…');
  replaceChildren(container, h('div', { class: 'runs-page', 'data-testid': 'runs-page' }, h('h2', {}, 'Runs'), list));
  services.api.get('runs').then((/** @type {Run[]} */ runs) => {
    replaceChildren(list, runs.length === 0 ? h('p', { class: 'muted' }, 'No runs yet: open a world and run it.')
      : h('table', { class: 'data-table', 'data-testid': 'runs-table' },
        h('thead', {}, h('tr', {}, ['run', 'world', 'status', 'steps', 'created', 'finished'].map((t) => h('th', {}, t)))),
        h('tbody', {}, runs.map((run) => h('tr', { 'data-testid': `run-${run.id}` },
          h('td', {}, h('a', { href: `#/runs/${encodeURIComponent(run.id)}` }, run.id)),
          h('td', {}, run.world ?? run.microworld ?? ''),
          h('td', { class: `status-${run.status}` }, run.status),
          h('td', { class: 'num' }, `${run.steps_done ?? 0} / ${run.steps_total ?? 0}`),
          h('td', {}, formatTime(run.created)),
          h('td', {}, formatTime(run.finished)))))));
  }).catch((err) => replaceChildren(list, h('p', { class: 'error' }, err instanceof Error ? err.message : String(err))));
  return { unmount: () => {} };
}
