// The sign-in screen: paste a token; it is checked against GET /api/me before it is kept.

import { Api } from './api.js';
import { h, replaceChildren } from './dom.js';

/**
 * @param {HTMLElement} container
 * @param {string} message why sign-in is asked for (empty the first time)
 * @param {(token: string) => void} onSignedIn
 */
export function showSignIn(container, message, onSignedIn) {
  const input = h('input', { type: 'password', autocomplete: 'off', placeholder: 'token', 'data-testid': 'token-input', required: true });
  const error = h('p', { class: 'error', 'data-testid': 'sign-in-error' }, message);
  const form = h('form', { class: 'signin card', 'data-testid': 'sign-in-form' },
    h('h2', {}, 'Sign in'),
    h('p', {}, 'Paste the token you were given: an operator’s (from ', h('code', {}, 'plurigrid serve'), ' or ',
      h('code', {}, 'plurigrid token issue'), ') or your own participant token.'),
    input,
    h('button', { type: 'submit', class: 'primary', 'data-testid': 'sign-in' }, 'Sign in'),
    error);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const token = input.value.trim();
    try {
      await new Api(token).me();
      onSignedIn(token);
    } catch (err) {
      error.textContent = `Not signed in: ${err instanceof Error ? err.message : err}`;
    }
  });
  replaceChildren(container, form);
  input.focus();
}
