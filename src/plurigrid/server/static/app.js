// The web app's entry: signs the user in, then routes by the URL's hash to the operator's pages (designer,
// worlds, runs, results) or to the participant's app.

import { Api, ApiError, fetchMicroworldSchema } from './api.js';
import { mountDesigner } from './designer.js';
import { h, replaceChildren } from './dom.js';
import { mountParticipantApp } from './participant.js';
import { mountResults } from './results.js';
import { mountRuns } from './runs.js';
import { SchemaForms } from './schema-form.js';
import { forgetToken, storeToken, storedToken } from './session.js';
import { showSignIn } from './signin.js';
import { mountWorlds } from './worlds.js';

/** @typedef {import('./api.js').Me} Me */
/** @typedef {{unmount: () => void}} Page */

const page = /** @type {HTMLElement} */ (document.getElementById('page'));
const nav = /** @type {HTMLElement} */ (document.getElementById('nav'));
const who = /** @type {HTMLElement} */ (document.getElementById('who'));

/** @type {Page | null} */
let current = null;
/** Counts route changes, so that a page still loading when the user moves on is not mounted. */
let routeCount = 0;
/** @type {Promise<{forms: SchemaForms, stdTypes: import('./api.js').StdTypes}> | null} */
let designerServices = null;

/** @param {string} message */
function signIn(message) {
  current?.unmount();
  current = null;
  replaceChildren(nav);
  replaceChildren(who);
  showSignIn(page, message, (token) => {
    storeToken(token);
    start();
  });
}

async function start() {
  const token = storedToken();
  if (!token) {
    signIn('');
    return;
  }
  const api = new Api(token);
  /** @type {Me} */
  let me;
  try {
    me = await api.me();
  } catch (err) {
    if (err instanceof ApiError && (err.status === 401 || err.status === 403)) forgetToken();
    signIn(`Please sign in again (${err instanceof Error ? err.message : err}).`);
    return;
  }
  showNavigation(me);
  window.onhashchange = () => route(api, me);
  route(api, me);
}

/** @param {Me} me */
function showNavigation(me) {
  const links = me.role === 'operator'
    ? [['#/designer', 'Designer'], ['#/worlds', 'Worlds'], ['#/runs', 'Runs']]
    : [['#/me', 'My energy']];
  replaceChildren(nav, links.map(([href, label]) => h('a', { href, 'data-testid': `nav-${label.toLowerCase().replace(' ', '-')}` }, label)));
  replaceChildren(who,
    h('span', { 'data-testid': 'role' }, me.role === 'operator' ? 'operator' : `participant ${me.participant ?? ''}`),
    h('button', {
      class: 'small', 'data-testid': 'sign-out', onclick: () => {
        forgetToken();
        signIn('');
      },
    }, 'Sign out'));
}

/**
 * @param {Api} api
 * @param {Me} me
 */
async function route(api, me) {
  const [path, query] = location.hash.replace(/^#\/?/, '').split('?');
  const params = new URLSearchParams(query ?? '');
  const parts = path.split('/').filter(Boolean);
  const thisRoute = ++routeCount;
  current?.unmount();
  current = null;
  for (const link of nav.querySelectorAll('a')) link.classList.toggle('active', link.getAttribute('href') === `#/${parts[0] ?? 'designer'}`);
  if (me.role !== 'operator') {
    current = mountParticipantApp(page, { api, me });
    return;
  }
  if (parts[0] === 'worlds') {
    current = mountWorlds(page, { api });
  } else if (parts[0] === 'runs' && parts[1]) {
    current = mountResults(page, { api }, decodeURIComponent(parts[1]));
  } else if (parts[0] === 'runs') {
    current = mountRuns(page, { api });
  } else {
    replaceChildren(page, h('p', { class: 'muted' }, 'Loading the designer…'));
    designerServices ??= Promise.all([fetchMicroworldSchema(), api.get('std_types')])
      .then(([schema, stdTypes]) => ({ forms: new SchemaForms(schema), stdTypes }));
    let services;
    try {
      services = await designerServices;
    } catch (err) {
      designerServices = null;
      replaceChildren(page, h('p', { class: 'error' }, `Could not load the designer: ${err instanceof Error ? err.message : err}`));
      return;
    }
    if (thisRoute !== routeCount) return;
    current = mountDesigner(page, { api, ...services }, {
      world: params.get('world') ?? undefined,
      library: params.get('library') ?? undefined,
      simbench: params.get('simbench') ?? undefined,
      fresh: params.has('new'),
    });
  }
}

start();
