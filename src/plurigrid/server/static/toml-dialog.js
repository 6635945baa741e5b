// A dialog showing a world's TOML, with a link that downloads it as a file.

import { h } from './dom.js';

/**
 * @param {string} fileName
 * @param {string} toml
 */
export function showTomlDialog(fileName, toml) {
  const url = URL.createObjectURL(new Blob([toml], { type: 'application/toml' }));
  const dialog = h('dialog', { class: 'toml-dialog', 'data-testid': 'toml-dialog' },
    h('h3', {}, fileName),
    h('textarea', { readOnly: true, rows: 24, value: toml, 'data-testid': 'toml-text', spellcheck: false }),
    h('div', { class: 'dialog-actions' },
      h('a', { class: 'button primary', href: url, download: fileName, 'data-testid': 'download-toml' }, 'Download'),
      h('button', { 'data-testid': 'close-dialog', autofocus: true, onclick: () => dialog.close() }, 'Close')));
  dialog.addEventListener('close', () => {
    URL.revokeObjectURL(url);
    dialog.remove();
  });
  document.body.append(dialog);
  dialog.showModal();
}
